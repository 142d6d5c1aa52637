"""check_neighbouring on adtarget's own release: removing any one person of a small world moves the pre-noise
counts by at most the declared sensitivity and leaves the noise calls unchanged. Negative controls show the
check fails on an unbounded aggregate, an understated sensitivity, and data-dependent control flow."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _release_fixtures import assignments_for, gate, registered, world_rows

from adtarget import ConsentLedger, ReleaseSpec, RunSettings, run
from adtarget.exceptions import ParameterError
from adtarget.reports import CountNoise, count_cells, release_counts
from adtarget.reports._explain import sensitivity
from adtarget.testing import (
    NeighbouringViolation,
    aggregate_vector,
    check_neighbouring,
    record_noise_calls,
)

N_PERSONS = 80


@pytest.fixture(scope="module")
def world():
    rows, people = world_rows(seed=5, n_persons=N_PERSONS)
    eligible = gate(rows, people)
    infos = assignments_for(eligible).segments
    spec = ReleaseSpec(advertiser="acme", segment_ids=tuple(s.segment_id for s in infos), epsilon=1.0,
                       delta=1e-6, max_segments_per_person=3)
    return rows, people, infos, spec


def _without(dataset, person):
    rows, people = dataset
    keep = rows["person_id"] != person
    return {k: v[keep] for k, v in rows.items()}, people


def _release_fn(spec):
    """The real release from exact counts, run inside the recorder; returns the pre-noise counts."""
    def run(dataset):
        eligible = gate(*dataset)
        assignments = assignments_for(eligible)
        cells = count_cells(eligible, assignments, spec)
        release_counts(cells, spec, ledger=registered())
        return cells
    return run


def test_release_counts_respect_declared_sensitivity_for_every_person(world):
    rows, people, _, spec = world
    declared = sensitivity(spec)
    report = check_neighbouring(_release_fn(spec), (rows, people), _without,
                                persons=sorted(people), declared_l1=declared["l1"], declared_l2=declared["l2"])
    report.raise_for_violations()
    assert len(report.results) == N_PERSONS
    assert 0 < report.max_l1 <= declared["l1"]
    # the recorded calls are the noise of the sizes and of the cells (declared calibration), then partition selection
    samplers = [c.sampler for c in report.noise_calls]
    assert samplers == ["CountNoise.add_noise", "CountNoise.add_noise", "PartitionSelection.select"]
    sizes, cells = (dict(c.parameters) for c in report.noise_calls[:2])
    assert sizes["l1_sensitivity"] == declared["sizes"]["l1"] and sizes["epsilon"] == pytest.approx(0.6)
    assert cells["l1_sensitivity"] == declared["breakdowns"]["l1"] and cells["epsilon"] == pytest.approx(0.3)


def test_understated_sensitivity_is_caught(world):
    rows, people, _, spec = world
    report = check_neighbouring(_release_fn(spec), (rows, people), _without, persons=sorted(people)[:20],
                                declared_l1=2, declared_l2=1.0)
    assert not report.ok and report.max_l1 > 2
    with pytest.raises(NeighbouringViolation, match="break the declared sensitivity"):
        report.raise_for_violations()


def test_unbounded_event_count_is_caught(world):
    """Counting events (not distinct persons) per segment: a person moves a count by many."""
    rows, people, _, _ = world

    def events_per_category(dataset):
        eligible = gate(*dataset)
        return np.bincount(eligible.category, minlength=eligible.safe_taxonomy.taxonomy.n_nodes)

    report = check_neighbouring(events_per_category, (rows, people), _without, persons=sorted(people)[:10],
                                declared_l1=1)
    assert report.max_l1 > 1 and len(report.violations) == 10


def test_data_dependent_control_flow_is_caught(world):
    """A 'release' that adds an extra noise call when a count is odd depends on one person."""
    rows, people, _, _ = world

    def leaky(dataset):
        n = int(gate(*dataset).n_persons)
        noise = CountNoise("discrete_laplace", 1.0)
        noise.add_noise(np.array([n]))
        if n % 2:
            noise.add_noise(np.array([n]))
        return np.array([n])

    report = check_neighbouring(leaky, (rows, people), _without, persons=sorted(people)[:4], declared_l1=1)
    assert all(r.within_l1 for r in report.results)
    assert not any(r.same_noise_calls for r in report.results)
    assert not report.ok


def test_recorder_freezes_noise_and_restores_the_samplers():
    noise = CountNoise("discrete_laplace", 1.0)
    real = CountNoise.add_noise
    with record_noise_calls() as calls, warnings.catch_warnings():
        warnings.simplefilter("error")  # frozen: no seeded-noise warning, nothing drawn
        out = noise.add_noise(np.array([3, 4]), random_state=1)
    assert out.tolist() == [3, 4] and len(calls) == 1 and calls[0].shape == (2,)
    assert CountNoise.add_noise is real


def test_aggregate_vector_aligns_values_that_disappear(world):
    rows, people, _, spec = world
    eligible = gate(rows, people)
    cells = count_cells(eligible, assignments_for(eligible), spec)
    vec = aggregate_vector(cells)
    assert sum(v for k, v in vec.items() if k[0] == "size") == cells.sizes.sum()
    assert aggregate_vector({"a": 1}) == {"a": 1.0}
    with pytest.raises(ParameterError, match="aggregates must be"):
        aggregate_vector(np.array(["x"]))


@pytest.mark.parametrize("bad", [-1, math.inf, "1", True])
def test_declared_sensitivity_is_validated(bad):
    with pytest.raises(ParameterError, match="declared_l1"):
        check_neighbouring(lambda d: d, np.zeros(1), lambda d, p: d, persons=[], declared_l1=bad)


def test_whole_pipeline_respects_declared_sensitivity_for_a_random_sample(pseudonymizer, tmp_path):
    """The main job end to end (ingest → gate → default segments → release) on synthetic data, for 12 persons
    drawn at random. Every region is made public so that no key is data-dependent and the noise calls must be
    identical on every neighbour."""
    from adtarget import synth

    data = synth.generate(synth.SyntheticConfig(n_events=6_000, seed=21))
    regions = tuple(sorted({str(r) for r in data.events["region"] if r}))
    settings = RunSettings(advertiser="acme", public_regions=regions)
    with ConsentLedger(tmp_path / "consent.sqlite", pseudonymizer) as ledger:
        ledger.import_records(_consent_records(data.consent))
        snapshot = ledger.snapshot()

    def pipeline(events):
        return run(events, snapshot, pseudonymizer=pseudonymizer, budget=registered(),
                   settings=settings, window_end=synth.SyntheticConfig().end).aggregates

    def without(events, person):
        keep = events["person_id"] != person
        return {k: np.asarray(v)[keep] for k, v in events.items()}

    persons = np.random.default_rng(3).choice(np.unique(data.events["person_id"]), 12, replace=False)
    declared = settings.max_segments_per_person * (1 + len(settings.breakdowns))  # S·(1 + Σ k), k = 1
    report = check_neighbouring(pipeline, data.events, without, persons=persons, declared_l1=declared,
                                declared_l2=math.sqrt(declared))
    report.raise_for_violations()
    s = settings.max_segments_per_person
    counts = [dict(c.parameters) for c in report.noise_calls if c.sampler == "CountNoise.add_noise"]
    assert [c["l1_sensitivity"] for c in counts] == [s, declared - s]  # the sizes', then the cells' noise
    assert report.max_l1 > 0


def _consent_records(consent):
    import datetime as dt

    records = dict(consent)
    records["updated_at"] = np.array([dt.datetime.fromtimestamp(int(t), tz=dt.timezone.utc).isoformat()
                                      for t in consent["updated_at"]], dtype=object)
    years = np.asarray(consent["birth_year"], dtype=float)
    records["birth_year"] = np.where(np.isnan(years), None, years).astype(object)
    return records
