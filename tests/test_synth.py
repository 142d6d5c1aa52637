"""adtarget.synth: the synthetic cross-service data generator (contracts, shares, determinism, recoverability)."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget.exceptions import ParameterError
from adtarget.synth import SERVICES, SyntheticConfig, generate, write_consent, write_events

EVENT_COLUMNS = ("person_id", "service", "ts", "category", "kind", "region", "weight")
CONSENT_COLUMNS = ("person_id", "birth_year", "ads_personalization", "cross_service", "policy_version",
                   "updated_at", "deleted", "terminated", "location_deleted", "jurisdiction")
REGION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
CONFIG = SyntheticConfig(n_events=200_000, n_persons=10_000, seed=11)


@pytest.fixture(scope="module")
def data():
    return generate(CONFIG)


@pytest.fixture(scope="module")
def profile():
    from adtarget.reference import SensitivityProfile

    return SensitivityProfile.named("default")


@pytest.fixture(scope="module")
def sensitive_mask(profile, taxonomy):
    return profile.sensitive_mask(taxonomy)


def person_index(data, ids):
    """Row of each id in data.truth.persons (every id must be there)."""
    persons = data.truth.persons
    order = np.argsort(persons)
    pos = order[np.searchsorted(persons[order], ids)]
    assert np.array_equal(persons[pos], ids)
    return pos


# --- contracts -------------------------------------------------------------------------------------------
def test_event_columns_follow_the_contract(data, taxonomy, services):
    ev = data.events
    assert tuple(ev) == EVENT_COLUMNS
    assert {k: v.dtype.kind for k, v in ev.items()} == {
        "person_id": "i", "service": "U", "ts": "i", "category": "U", "kind": "U", "region": "U", "weight": "f"}
    assert all(v.shape == (CONFIG.n_events,) for v in ev.values())
    assert ev["person_id"].dtype == np.int64 and ev["ts"].dtype == np.int64
    assert np.all(taxonomy.index_of(np.unique(ev["category"])) >= 0)
    assert np.all(services.index_of(np.unique(ev["service"])) >= 0)
    assert set(np.unique(ev["kind"])) == {"app_use", "search", "content_view", "purchase"}
    assert all(REGION.match(r) for r in np.unique(ev["region"]))
    assert np.all(np.isfinite(ev["weight"])) and np.all(ev["weight"] >= 0)
    assert 0.9 < np.mean(ev["weight"] == 1.0) < 0.99


def test_at_least_six_services_and_health_plus_has_its_own_policy(data, services):
    used, counts = np.unique(data.events["service"], return_counts=True)
    assert len(used) >= 6 and set(used) == set(SERVICES) == set(services.names)
    assert not services.ads_permitted[services.index_of("health_plus")]
    assert counts.min() / counts.sum() > 0.01


def test_services_correlate_with_topics_and_kinds(data, taxonomy):
    ev = data.events
    topic = taxonomy.names[taxonomy.rollup(taxonomy.index_of(ev["category"]), 1)]
    gaming = topic == "Video Gaming"
    assert np.mean(ev["service"][gaming] == "games") > 3 * np.mean(ev["service"][~gaming] == "games")
    assert np.mean(np.isin(topic[ev["service"] == "health_plus"], ["Medical Health", "Healthy Living"])) > 0.8
    assert np.mean(ev["kind"][ev["service"] == "payments"] == "purchase") > 0.7
    assert np.mean(ev["kind"][ev["service"] == "search"] == "search") > 0.85
    assert len(np.unique(ev["service"][topic == "Sports"])) >= 4  # search and several topical services


def test_timestamps_in_window_with_a_weekly_pattern(data):
    ts = data.events["ts"]
    assert ts.min() >= CONFIG.start and ts.max() < CONFIG.end
    assert CONFIG.end == 1_793_491_200 and CONFIG.end - CONFIG.start == 90 * 86_400
    assert np.all(np.diff(ts // 3600) >= 0)  # rows are ordered by hour
    weekday = (ts // 86_400 + 3) % 7  # Monday = 0
    per_day = np.bincount(weekday, minlength=7) / np.bincount((np.arange(CONFIG.start, CONFIG.end, 86_400)
                                                               // 86_400 + 3) % 7, minlength=7)
    assert per_day[5] > 1.1 * per_day[1]  # Saturday busier than Tuesday
    hour = ts // 3600 % 24
    assert np.mean(hour == 20) > 3 * np.mean(hour == 3)


def test_consent_columns_follow_the_contract(data):
    c = data.consent
    assert tuple(c) == CONSENT_COLUMNS
    n = c["person_id"].size
    assert all(v.shape == (n,) for v in c.values())
    assert np.unique(c["person_id"]).size == n and c["person_id"].dtype == np.int64
    by = c["birth_year"]
    assert by.dtype == np.float64 and np.all(np.isnan(by) | (by == np.round(by)))
    assert np.nanmin(by) >= 2026 - 86 and np.nanmax(by) <= 2026 - 6
    assert set(np.unique(c["ads_personalization"])) == {"opt_in", "opt_out"}
    for col in ("cross_service", "deleted", "terminated", "location_deleted"):
        assert c[col].dtype == np.bool_
    assert not np.any(c["deleted"] & c["terminated"])
    assert set(np.unique(c["policy_version"])) == {"2018-05-14", "2016-01-01"}
    assert c["updated_at"].dtype == np.int64 and c["updated_at"].max() < CONFIG.end
    old = c["policy_version"] == "2016-01-01"
    assert c["updated_at"][old].max() < 1_526_256_000 <= c["updated_at"][~old].min()  # 2018-05-14
    assert set(np.unique(c["jurisdiction"])) == {"", *(code for code, _ in CONFIG.jurisdictions)}


def test_account_ids_look_real_and_are_shared_across_tables(data):
    persons = data.truth.persons
    assert np.unique(persons).size == persons.size and persons.min() >= 10_000_000
    assert not np.all(np.diff(persons) > 0)  # not handed out in order
    ev_persons = np.unique(data.events["person_id"])
    assert np.isin(ev_persons, persons).all() and np.isin(data.consent["person_id"], persons).all()
    counts = np.bincount(person_index(data, data.events["person_id"]), minlength=persons.size)
    assert np.array_equal(counts, data.truth.events_per_person)
    assert np.array_equal(np.isin(persons, data.consent["person_id"]), data.truth.has_consent)


# --- shares ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("column", "share", "expected"), [
    ("ads_personalization", lambda c: np.mean(c["ads_personalization"] == "opt_out"), 0.10),
    ("cross_service", lambda c: np.mean(~c["cross_service"]), 0.20),
    ("birth_year", lambda c: np.mean(np.isnan(c["birth_year"])), 0.03),
    ("birth_year", lambda c: np.mean(2026 - c["birth_year"] < 13), 0.03),
    ("deleted", lambda c: np.mean(c["deleted"] | c["terminated"]), 0.01),
    ("location_deleted", lambda c: np.mean(c["location_deleted"]), 0.02),
    ("jurisdiction", lambda c: np.mean(c["jurisdiction"] == ""), 0.01),
    ("policy_version", lambda c: np.mean(c["policy_version"] == "2018-05-14"), 0.93),
])
def test_consent_shares(data, column, share, expected):
    n = data.consent["person_id"].size
    tolerance = 5 * np.sqrt(expected * (1 - expected) / n) + 1e-3
    assert abs(share(data.consent) - expected) < tolerance, column


def test_sensitive_share_of_events_and_groups_that_act_as_proxies(data, taxonomy, profile, sensitive_mask):
    node = taxonomy.index_of(data.events["category"])
    sensitive = sensitive_mask[node]
    assert abs(sensitive.mean() - CONFIG.sensitive_share) < 0.01
    rate = data.truth.sensitive_rate
    assert rate.max() > 2 * rate.min()
    assert not np.any(data.truth.group_mixture[:, sensitive_mask])
    classes = np.asarray(profile.class_of(taxonomy))[node]
    assert set(np.unique(classes[sensitive])) == set(range(len(profile.classes)))  # every class occurs


def test_some_persons_lack_consent_and_some_consent_has_no_events(data):
    truth = data.truth
    active = truth.events_per_person > 0
    missing = np.mean(~truth.has_consent[active])
    assert 0.002 < missing < 0.01
    assert np.sum(truth.has_consent & ~active) > 0.02 * truth.persons.size
    assert np.all(truth.has_consent[~active])  # persons without events all have a record


def test_activity_is_heavy_tailed(data):
    counts = np.sort(data.truth.events_per_person)[::-1]
    assert counts[: counts.size // 100].sum() > 0.08 * counts.sum()  # top 1% of persons
    assert counts[0] > 20 * np.median(counts[counts > 0])


# --- ground truth ------------------------------------------------------------------------------------------
def test_group_mixtures_concentrate_on_few_tier1_topics(data, taxonomy):
    mixture = data.truth.group_mixture
    assert mixture.shape == (CONFIG.n_groups, taxonomy.n_nodes)
    np.testing.assert_allclose(mixture.sum(axis=1), 1.0)
    for g, roots in enumerate(data.truth.group_roots):
        idx = taxonomy.index_of(list(roots))
        assert 2 <= len(roots) <= 3 and np.all(taxonomy.tier[idx] == 1)
        on_roots = np.isin(taxonomy.rollup(np.arange(taxonomy.n_nodes), 1), idx)
        np.testing.assert_allclose(mixture[g, on_roots].sum(), 1.0)
    assert len({roots[0] for roots in data.truth.group_roots}) == CONFIG.n_groups
    assert 0.8 < np.mean(data.truth.second_group != data.truth.group) < 1.0


def test_regions_follow_the_persons_jurisdiction(data):
    c = data.consent
    known = c["jurisdiction"] != ""
    jurisdiction = dict(zip(c["person_id"][known].tolist(), c["jurisdiction"][known].tolist(), strict=True))
    ev = data.events
    mask = np.isin(ev["person_id"], c["person_id"][known])
    country = np.array([jurisdiction[p] for p in ev["person_id"][mask][:20_000].tolist()])
    region_country = np.char.partition(ev["region"][mask][:20_000], "-")[:, 0]
    assert 0.94 < np.mean(region_country == country) < 0.995  # home region, a few travel events
    assert {"US-CA", "DE-BY", "CN-GD", "FR-IDF", "KR-11", "BR-SP", "IN-MH"} <= set(np.unique(ev["region"]))


def test_latent_groups_are_recoverable_without_privacy(data, taxonomy):
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    person = person_index(data, data.events["person_id"])
    topics, tier1 = np.unique(taxonomy.rollup(taxonomy.index_of(data.events["category"]), 1),
                              return_inverse=True)
    counts = np.zeros((data.truth.persons.size, topics.size))
    np.add.at(counts, (person, tier1), 1.0)
    keep = counts.sum(axis=1) >= 10
    x = counts[keep] / counts[keep].sum(axis=1, keepdims=True)
    labels = KMeans(CONFIG.n_groups, n_init=1, random_state=0).fit_predict(x)
    ari = adjusted_rand_score(data.truth.group[keep], labels)
    assert ari > 0.3, ari


# --- determinism -------------------------------------------------------------------------------------------
def test_same_config_gives_byte_identical_arrays():
    config = SyntheticConfig(n_events=30_000, seed=5)
    a, b = generate(config), generate(config)
    for table in ("events", "consent"):
        for col in getattr(a, table):
            x, y = getattr(a, table)[col], getattr(b, table)[col]
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), (table, col)
    assert a.truth.group.tobytes() == b.truth.group.tobytes()
    assert a.truth.group_mixture.tobytes() == b.truth.group_mixture.tobytes()
    other = generate(SyntheticConfig(n_events=30_000, seed=6))
    assert other.events["category"].tobytes() != a.events["category"].tobytes()


def test_arrays_are_read_only(data):
    with pytest.raises(ValueError, match="read-only"):
        data.events["ts"][0] = 0
    with pytest.raises(ValueError, match="read-only"):
        data.consent["deleted"][0] = True


@given(n_events=st.integers(1, 3_000), n_persons=st.integers(1, 400), days=st.integers(1, 40),
       seed=st.integers(0, 2**32), n_groups=st.integers(1, 40))
def test_any_valid_config_gives_exact_sizes_and_valid_values(n_events, n_persons, days, seed, n_groups):
    config = SyntheticConfig(n_events=n_events, n_persons=n_persons, days=days, seed=seed, n_groups=n_groups)
    data = generate(config)
    ev = data.events
    assert all(v.size == n_events for v in ev.values())
    assert ev["ts"].min() >= config.start and ev["ts"].max() < config.end
    assert np.all(data.truth.taxonomy.index_of(ev["category"]) >= 0)
    assert data.truth.events_per_person.sum() == n_events and data.truth.persons.size == n_persons
    assert np.unique(data.consent["person_id"]).size == data.consent["person_id"].size


# --- writers -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    return generate(SyntheticConfig(n_events=5_000, seed=2))


def test_parquet_round_trip_with_dictionary_strings(small, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(write_events(small, tmp_path / "events.parquet"))
    assert table.column_names == list(EVENT_COLUMNS)
    assert table.schema.field("ts").type == pa.int64()
    for col in ("service", "category", "kind", "region"):
        assert pa.types.is_dictionary(table.schema.field(col).type), col
        assert table.column(col).to_pylist() == small.events[col].tolist()
    for col in ("person_id", "ts", "weight"):
        np.testing.assert_array_equal(table.column(col).to_numpy(), small.events[col])
    consent = pq.read_table(write_consent(small, tmp_path / "consent.pq"))
    assert consent.column_names == list(CONSENT_COLUMNS)
    assert consent.column("birth_year").null_count == np.isnan(small.consent["birth_year"]).sum()
    assert consent.column("jurisdiction").null_count == np.sum(small.consent["jurisdiction"] == "")


def test_csv_round_trip_with_iso_timestamps(small, tmp_path):
    import pyarrow as pa
    import pyarrow.csv as pacsv

    path = write_events(small, tmp_path / "events.csv")
    text = path.read_text().splitlines()
    assert text[0] == ",".join(f'"{c}"' for c in EVENT_COLUMNS) or text[0] == ",".join(EVENT_COLUMNS)
    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(
        column_types={"ts": "string", "category": "string"}))
    ts = np.array(table.column("ts").to_pylist())
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in ts[:100])
    expected = np.datetime_as_string(small.events["ts"].astype("datetime64[s]"), unit="s", timezone="UTC")
    np.testing.assert_array_equal(ts, expected)
    assert table.column("category").to_pylist() == small.events["category"].tolist()
    consent = pacsv.read_csv(write_consent(small, tmp_path / "consent.csv"))
    assert consent.column("birth_year").null_count == np.isnan(small.consent["birth_year"]).sum()
    updated = consent.column("updated_at").cast(pa.timestamp("s", tz="UTC")).cast(pa.int64()).to_numpy()
    np.testing.assert_array_equal(updated, small.consent["updated_at"])


def test_csv_of_modified_columns_is_encoded_from_the_values(small, tmp_path):
    import pyarrow.parquet as pq

    events = dict(small.events, service=np.full(small.n_events, "news"))
    changed = type(small)(small.config, events, small.consent, small.truth, small._codes)
    table = pq.read_table(write_events(changed, tmp_path / "events.parquet"))
    assert set(table.column("service").to_pylist()) == {"news"}


@pytest.mark.parametrize("name", ["events.txt", "events", "events.json"])
def test_writer_refuses_unknown_extension(small, tmp_path, name):
    with pytest.raises(ParameterError, match="path must end in"):
        write_events(small, tmp_path / name)


def test_written_files_pass_the_event_contract(small, tmp_path, pseudonymizer):
    from adtarget.events import ingest

    for source in (small.events, write_events(small, tmp_path / "e.parquet"), write_events(small, tmp_path / "e.csv")):
        result = ingest(source, pseudonymizer=pseudonymizer, now=small.config.end)
        assert len(result.quarantine) == 0 and result.batch.n_events == small.n_events


# --- parameters --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "name"), [
    ({"n_events": 0}, "n_events"),
    ({"n_events": 1.5}, "n_events"),
    ({"n_events": True}, "n_events"),
    ({"n_persons": 0}, "n_persons"),
    ({"n_groups": 0}, "n_groups"),
    ({"days": 0}, "days"),
    ({"end": 10}, "end"),
    ({"seed": -1}, "seed"),
    ({"opt_out_share": 1.5}, "opt_out_share"),
    ({"sensitive_share": -0.1}, "sensitive_share"),
    ({"sensitive_share": 0.5, "background_share": 0.6}, "sensitive_share + background_share"),
    ({"under_13_share": 0.6, "unknown_birth_year_share": 0.6}, "under_13_share + unknown_birth_year_share"),
    ({"dormant_share": 1.0}, "dormant_share"),
    ({"jurisdictions": ()}, "jurisdictions"),
    ({"jurisdictions": (("usa", 1.0),)}, "jurisdictions"),
    ({"jurisdictions": (("US", 0.0),)}, "jurisdictions"),
    ({"jurisdictions": (("US", 1.0), ("US", 2.0))}, "jurisdictions"),
    ({"policy_versions": (("2018-13-40", 1.0),)}, "policy_versions"),
    ({"policy_versions": (("2030-01-01", 1.0),)}, "policy_versions"),
])
def test_invalid_config_is_refused_by_name(kwargs, name):
    with pytest.raises(ParameterError, match=re.escape(f"SyntheticConfig.{name}")):
        SyntheticConfig(**kwargs)


def test_n_persons_defaults_to_a_twentieth_of_events():
    assert SyntheticConfig(n_events=1_000).n_persons == 50
    assert SyntheticConfig(n_events=5).n_persons == 1
    with pytest.raises(ParameterError, match="config must be a SyntheticConfig"):
        generate({"n_events": 10})  # type: ignore[arg-type]


def test_docstring_examples_run():
    import doctest

    from adtarget.synth import _generate

    result = doctest.testmod(_generate)
    assert result.attempted > 0 and result.failed == 0


def test_importing_synth_stays_light():
    code = ("import sys, adtarget.synth; heavy = [m for m in ('pandas', 'pyarrow', 'pyspark', 'matplotlib') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
