"""ReleaseSpec: frozen and self-checking (invalid-input table), literal budget split, stable fingerprint."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pytest

from adtarget import ReleaseSpec
from adtarget.exceptions import ParameterError

IDS = ["iab-2.2:239", "learned:dp-kmeans-1a2b3c4d:3"]


def spec(**kw):
    return ReleaseSpec(**{"advertiser": "acme", "segment_ids": IDS, "epsilon": 1.0, "delta": 1e-6, **kw})


@pytest.mark.parametrize("kw, match", [
    ({"advertiser": ""}, "advertiser"),
    ({"advertiser": "a" * 201}, "advertiser"),
    ({"advertiser": "acme\nco"}, "must not contain control, format"),
    ({"advertiser": "ac\u200bme"}, "must not contain control, format"),
    ({"advertiser": " acme"}, "whitespace"),
    ({"advertiser": "0123456789abcdef"}, "pseudonym"),
    ({"segment_ids": []}, "non-empty"),
    ({"segment_ids": "iab-2.2:239"}, "non-empty sequence"),
    ({"segment_ids": ["iab-2.2:239", "iab-2.2:239"]}, "unique"),
    ({"segment_ids": ["239"]}, "must match"),
    ({"segment_ids": ["iab-2.2:a b"]}, "must match"),
    ({"breakdowns": ("gender",)}, "breakdowns"),
    ({"breakdowns": ("region", "region")}, "breakdowns"),
    ({"epsilon": 0}, "epsilon"),
    ({"epsilon": -1.0}, "epsilon"),
    ({"epsilon": float("nan")}, "epsilon"),
    ({"epsilon": True}, "epsilon"),
    ({"delta": 1.0}, "delta"),
    ({"delta": -1e-9}, "delta"),
    ({"mechanism": "laplace"}, "mechanism"),
    ({"mechanism": "discrete_gaussian", "delta": 0.0}, "delta must be > 0"),
    ({"breakdowns": ("service",), "delta": 1e-6}, "delta must be 0"),
    ({"delta": 0.0}, "partition selection"),
    ({"max_segments_per_person": 0}, "max_segments_per_person"),
    ({"max_segments_per_person": 2.0}, "max_segments_per_person"),
    ({"min_reported_size": 0}, "min_reported_size"),
    ({"max_cells_per_person": {"age_band": 2}}, "one age_band per person"),
    ({"max_cells_per_person": {"region": 0}}, "max_cells_per_person"),
    ({"max_cells_per_person": {"gender": 1}}, "keys"),
    ({"public_regions": "US-CA"}, "public_regions"),
    ({"public_regions": ["US-CA", "US-CA"]}, "unique"),
    ({"partition_share": 1.0}, "partition_share"),
    ({"data_window": (10, 10)}, "before end"),
    ({"data_window": (dt.datetime(2026, 1, 1), 10)}, "timezone-aware"),
    ({"data_window": (1, 2, 3)}, "pair"),
    ({"salt": ""}, "salt"),
])
def test_invalid_specs_are_refused_with_the_parameter_named(kw, match):
    with pytest.raises(ParameterError, match=match):
        spec(**kw)


@pytest.mark.parametrize("name", ["acme", "Acme", "ACME", "\uff41\uff43\uff4d\uff45", "ａｃｍｅ".upper()])
def test_the_advertiser_is_its_canonical_id(name):
    """Issue 14 finding 7: one advertiser, however spelt (NFKC, case-folded); the fingerprint follows."""
    assert spec(advertiser=name).advertiser == "acme"
    assert spec(advertiser=name).fingerprint() == spec().fingerprint()


def test_spec_is_frozen_and_normalised():
    s = spec(breakdowns=["service", "age_band"], public_regions=["US-NY", "CN-GD"],
             max_cells_per_person={"service": 2}, delta=0.0)
    assert s.breakdowns == ("age_band", "service") and s.public_regions == ("CN-GD", "US-NY")
    assert s.max_cells_per_person == (("age_band", 1), ("service", 2))
    assert s.cells_per_person("service") == 2 and s.cells_per_person("region") == 0
    assert s.segment_ids == tuple(IDS) and s.effective_segments_per_person == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.epsilon = 2.0  # type: ignore[misc]


@pytest.mark.parametrize("kw, count, partition", [
    ({"epsilon": 1.0, "delta": 1e-6}, (0.9, 0.0), (0.1, 1e-6)),
    ({"epsilon": 2.0, "delta": 1e-5, "partition_share": 0.25}, (1.5, 0.0), (0.5, 1e-5)),
    ({"epsilon": 1.0, "delta": 1e-6, "mechanism": "discrete_gaussian"}, (0.9, 9e-7), (0.1, 1e-7)),
    ({"epsilon": 0.5, "delta": 0.0, "breakdowns": ("age_band", "service")}, (0.5, 0.0), (0.0, 0.0)),
])
def test_budget_split_is_literal_and_adds_up(kw, count, partition):
    s = spec(**kw)
    assert s.count_budget == pytest.approx(count, rel=1e-15, abs=1e-21)
    assert s.partition_budget == partition
    assert s.count_budget[0] + s.partition_budget[0] == s.epsilon
    assert s.count_budget[1] + s.partition_budget[1] == pytest.approx(s.delta, rel=1e-12)


def test_fingerprint_is_stable_and_covers_every_field():
    base = spec()
    assert base.fingerprint() == spec().fingerprint()
    # pinned: a change re-keys every stored query (v2 of the report added size_share and false_segment_rate)
    assert base.fingerprint() == "d1a7c6e523ca8c7ff794b8a2cf8f887b"
    changes = {"advertiser": "acme2", "segment_ids": IDS[:1], "epsilon": 0.5, "delta": 2e-6,
               "breakdowns": ("age_band", "region"), "mechanism": "discrete_gaussian",
               "max_segments_per_person": 4, "max_cells_per_person": {"region": 2}, "min_reported_size": 51,
               "public_regions": ("US-CA",), "partition_share": 0.2, "size_share": 0.5, "false_segment_rate": 1e-4,
               "data_window": (0, 86_400), "salt": "s"}
    assert set(changes) == {f.name for f in dataclasses.fields(ReleaseSpec)}
    prints = {spec(**{k: v}).fingerprint() for k, v in changes.items()}
    assert len(prints) == len(changes) and base.fingerprint() not in prints
    assert base.bounding_salt == base.fingerprint() and spec(salt="s").bounding_salt == "s"


def test_str_is_readable():
    text = str(spec(data_window=(0, 86_400 * 30)))
    for needle in ("acme", "2 segment(s)", "ε=1", "δ=1e-06", "discrete_laplace", "≤5 segments/person",
                   "region≤1", "min size 50", "1970-01-31T00:00:00Z"):
        assert needle in text


def test_infinite_epsilon_is_representable_for_tests():
    s = spec(epsilon=math.inf)
    assert s.count_budget[0] == math.inf and s.as_dict()["epsilon"] == "inf"
