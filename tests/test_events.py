"""The event contract: accepted, quarantined with a reason, or refused with a typed error — nothing lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget.events import QUARANTINE_REASONS, ingest
from adtarget.exceptions import InputFormatError, RefusedColumnError, SchemaError

NOW = 1_790_000_000  # 2026-09-21
TS = NOW - 86_400


def good(n: int = 4, **overrides):
    cols = {
        "person_id": np.arange(1, n + 1, dtype=np.int64) * 1000 + 7,
        "service": np.array(["video", "news", "games", "search"] * n, dtype=object)[:n],
        "ts": np.full(n, TS, dtype=np.int64),
        "category": np.array(["239", "483", "1", "52"] * n, dtype=object)[:n],
    }
    cols.update(overrides)
    return cols


def run(source, pseudonymizer, **kw):
    return ingest(source, pseudonymizer=pseudonymizer, now=NOW, **kw)


def test_good_batch_is_accepted_whole(pseudonymizer, taxonomy):
    result = run(good(), pseudonymizer)
    assert result.input_rows == 4 and result.batch.n_events == 4 and len(result.quarantine) == 0
    batch = result.batch
    assert batch.persons.dtype == np.uint64 and np.all(np.diff(batch.persons.astype(np.float64)) > 0)
    assert list(taxonomy.ids[batch.category]) == ["239", "483", "1", "52"]
    assert list(np.asarray(batch.services.names)[batch.service]) == ["video", "news", "games", "search"]
    assert not batch.ts.flags.writeable


def test_same_batch_from_every_source(pseudonymizer, tmp_path):
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = good(6, kind=np.array(["search", "app_use", None, "purchase", "content_view", "search"], dtype=object),
                region=np.array(["US-CA", None, "DE-BY", "FR", "us-ny", "CN-GD"], dtype=object),
                weight=np.array([1.0, 2.0, 0.5, 1.0, 1.0, 3.0]))
    frame = pd.DataFrame(cols)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table, tmp_path / "e.parquet")
    csv = frame.copy()
    csv["ts"] = pd.to_datetime(csv["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    csv.to_csv(tmp_path / "e.csv", index=False)
    results = [run(s, pseudonymizer) for s in (cols, frame, table, tmp_path / "e.parquet", tmp_path / "e.csv")]
    first = results[0].batch
    for other in results[1:]:
        batch = other.batch
        for name in ("person", "persons", "service", "ts", "category", "kind", "region", "weight"):
            np.testing.assert_array_equal(getattr(batch, name), getattr(first, name), err_msg=name)
        assert batch.regions == first.regions == ("CN-GD", "DE-BY", "FR", "US-CA", "US-NY")


def test_string_and_int_ids_pseudonymise_alike(pseudonymizer):
    a = run(good(3), pseudonymizer).batch
    b = run(good(3, person_id=np.array(["1007", "2007", "3007"], dtype=object)), pseudonymizer).batch
    np.testing.assert_array_equal(a.persons, b.persons)


# --- the invalid-input table: (name, columns overrides or source, expected error or quarantine reason) --------
def _q(reason):
    return ("quarantine", reason)


def _e(error, fragment):
    return ("error", error, fragment)


BAD = [
    ("email column", {"email": ["a@b.c"] * 4}, _e(RefusedColumnError, "email")),
    ("phone column", {"phone": ["1"] * 4}, _e(RefusedColumnError, "phone")),
    ("ip column", {"ip": ["1.2.3.4"] * 4}, _e(RefusedColumnError, "'ip'")),
    ("ip_address column", {"ip_address": ["1.2.3.4"] * 4}, _e(RefusedColumnError, "ip_address")),
    ("camelCase IpAddress", {"IpAddress": ["1.2.3.4"] * 4}, _e(RefusedColumnError, "IpAddress")),
    ("device_id column", {"device_id": ["d"] * 4}, _e(RefusedColumnError, "device_id")),
    ("imei column", {"imei": ["1"] * 4}, _e(RefusedColumnError, "imei")),
    ("lat/lon columns", {"lat": [1.0] * 4, "lon": [2.0] * 4}, _e(RefusedColumnError, "'lat', 'lon'")),
    ("latitude column", {"latitude": [1.0] * 4}, _e(RefusedColumnError, "latitude")),
    ("name column", {"name": ["Ann"] * 4}, _e(RefusedColumnError, "'name'")),
    ("contact_id column", {"contact_id": [1] * 4}, _e(RefusedColumnError, "contact_id")),
    ("peer_id column", {"peer_id": [1] * 4}, _e(RefusedColumnError, "peer_id")),
    ("user_email even when dropping unknown", {"user_email": ["x"] * 4, "_drop": True},
     _e(RefusedColumnError, "user_email")),
    ("unknown column", {"browser": ["x"] * 4}, _e(RefusedColumnError, "browser")),
    ("missing person_id", {"person_id": None}, _e(SchemaError, "person_id")),
    ("missing category", {"category": None}, _e(SchemaError, "category")),
    ("columns of different lengths", {"weight": [1.0, 2.0]}, _e(SchemaError, "different lengths")),
    ("2-d column", {"weight": np.ones((4, 2))}, _e(SchemaError, "one-dimensional")),
    ("boolean ts", {"ts": np.array([True, False, True, True])}, _e(SchemaError, "booleans")),
    ("boolean weight", {"weight": np.array([True, False, True, True])}, _e(SchemaError, "booleans")),
    ("null person id", {"person_id": np.array([None, 2, 3, 4], dtype=object)}, _q("missing_person_id")),
    ("empty-string person id", {"person_id": np.array(["", "2", "3", "4"], dtype=object)}, _q("missing_person_id")),
    ("unknown service", {"service": np.array(["tv", "news", "games", "search"], dtype=object)},
     _q("unknown_service")),
    ("null service", {"service": np.array([None, "news", "games", "search"], dtype=object)}, _q("missing_service")),
    ("unknown category", {"category": np.array(["99999", "483", "1", "52"], dtype=object)},
     _q("unknown_category")),
    ("null category", {"category": np.array([None, "483", "1", "52"], dtype=object)}, _q("missing_category")),
    ("unparseable timestamp", {"ts": np.array(["yesterday", "2026-09-20T00:00:00Z", "2026-09-20T00:00:00Z",
                                               "2026-09-20T00:00:00Z"], dtype=object)}, _q("bad_timestamp")),
    ("NaN timestamp", {"ts": np.array([np.nan, TS, TS, TS], dtype=np.float64)}, _q("bad_timestamp")),
    ("timestamp before 2000", {"ts": np.array([5, TS, TS, TS], dtype=np.int64)}, _q("bad_timestamp")),
    ("future timestamp", {"ts": np.array([NOW + 86_400, TS, TS, TS], dtype=np.int64)}, _q("future_timestamp")),
    ("milliseconds instead of seconds", {"ts": np.array([TS * 1000, TS, TS, TS], dtype=np.int64)},
     _q("future_timestamp")),
    ("unknown kind", {"kind": np.array(["click", "search", "search", "search"], dtype=object)}, _q("unknown_kind")),
    ("negative weight", {"weight": np.array([-1.0, 1, 1, 1])}, _q("negative_weight")),
    ("NaN weight", {"weight": np.array([np.nan, 1, 1, 1])}, _q("non_finite_weight")),
    ("infinite weight", {"weight": np.array([np.inf, 1, 1, 1])}, _q("non_finite_weight")),
    ("non-numeric weight", {"weight": np.array(["heavy", "1", "1", "1"], dtype=object)}, _q("non_finite_weight")),
    ("region as coordinates", {"region": np.array(["37.77,-122.41", "US", "US", "US"], dtype=object)},
     _q("region_looks_like_coordinates")),
    ("region as a street address", {"region": np.array(["1 Main St", "US", "US", "US"], dtype=object)},
     _q("invalid_region")),
]


@pytest.mark.parametrize("name, change, expected", BAD, ids=[b[0] for b in BAD])
def test_invalid_input_table(name, change, expected, pseudonymizer):
    change = dict(change)
    drop = change.pop("_drop", False)
    cols = good()
    for key, value in change.items():
        if value is None:
            cols.pop(key)
        else:
            cols[key] = value
    if expected[0] == "error":
        with pytest.raises(expected[1]) as info:
            run(cols, pseudonymizer, drop_unknown_columns=drop)
        assert expected[2] in str(info.value)
        return
    result = run(cols, pseudonymizer)
    assert result.quarantine.rows.tolist() == [0], name
    assert result.quarantine.reasons().tolist() == [expected[1]]
    assert result.batch.n_events == 3


FILE_CASES = [
    ("missing file", lambda p: p / "nope.parquet", InputFormatError, "does not exist"),
    ("empty file", lambda p: _write(p / "e.csv", b""), InputFormatError, "is empty"),
    ("csv that is parquet", lambda p: _write(p / "e.csv", b"PAR1\x00\x00"), InputFormatError, "holds Parquet"),
    ("parquet that is csv", lambda p: _write(p / "e.parquet", b"a,b\n1,2\n"), InputFormatError, "not a readable"),
    ("unsupported extension", lambda p: _write(p / "e.xlsx", b"x"), InputFormatError, "unsupported extension"),
    ("wrong python type", lambda p: 42, SchemaError, "source must be"),
    ("csv without required columns", lambda p: _write(p / "e.csv", b"a,b\n1,2\n"), SchemaError, "header row missing"),
]


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name, make, error, fragment", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_bad_files_raise_one_typed_error(name, make, error, fragment, tmp_path, pseudonymizer):
    with pytest.raises(error) as info:
        run(make(tmp_path), pseudonymizer)
    assert fragment in str(info.value)


def test_dropping_unknown_columns_is_reported(pseudonymizer):
    result = run(good(browser=np.array(["x"] * 4, dtype=object)), pseudonymizer, drop_unknown_columns=True)
    assert result.dropped_columns == ("browser",) and result.batch.n_events == 4


def test_header_only_csv_gives_an_empty_batch(tmp_path, pseudonymizer):
    path = _write(tmp_path / "e.csv", b"person_id,service,ts,category\n")
    result = run(path, pseudonymizer)
    assert result.input_rows == 0 and result.batch.n_events == 0


def test_raw_ids_are_not_kept(pseudonymizer):
    result = run(good(person_id=np.array(["alice@example.com", "bob", "carol", "dave"], dtype=object)),
                 pseudonymizer)
    text = repr(result.batch) + repr(result.quarantine) + str(result.summary())
    assert "alice" not in text
    assert result.batch.persons.dtype == np.uint64


# --- property tests -----------------------------------------------------------------------------------------
SERVICES = ["video", "news", "games", "search", "music", "payments", "health_plus", "tv", None]
CATEGORIES = ["1", "239", "483", "52", "99999", "", None]
REGIONS = ["US-CA", "DE", "12.5,3.1", "xx yy", None, "cn-gd"]
IDENTIFYING = ["email", "phone", "ip", "device_id", "imei", "lat", "longitude", "contact_id", "peer_id", "name"]


@st.composite
def event_tables(draw):
    n = draw(st.integers(0, 40))
    def pick(values):
        return np.array(draw(st.lists(st.sampled_from(values), min_size=n, max_size=n)), dtype=object)
    ts = draw(st.lists(st.sampled_from([TS, TS - 5, 5, NOW + 10_000, -1]), min_size=n, max_size=n))
    weights = draw(st.lists(st.sampled_from([1.0, 0.0, 2.5, -1.0, np.nan, np.inf]), min_size=n, max_size=n))
    return {
        "person_id": pick([1, 2, 3, "4", None, "", 99]),
        "service": pick(SERVICES),
        "ts": np.array(ts, dtype=np.int64),
        "category": pick(CATEGORIES),
        "region": pick(REGIONS),
        "weight": np.array(weights, dtype=np.float64),
    }


@given(event_tables())
def test_row_accounting_always_adds_up(pseudonymizer, cols):
    result = run(cols, pseudonymizer)
    n = len(cols["person_id"])
    assert result.batch.n_events + len(result.quarantine) == result.input_rows == n
    assert sum(result.quarantine.counts().values()) == len(result.quarantine)
    accepted = np.setdiff1d(np.arange(n), result.quarantine.rows)
    assert accepted.size == result.batch.n_events
    assert set(result.quarantine.reasons()) <= set(QUARANTINE_REASONS)
    assert np.all(np.isfinite(result.batch.weight)) and np.all(result.batch.weight >= 0)


@given(event_tables(), st.sampled_from(IDENTIFYING), st.booleans())
def test_no_identifying_column_ever_reaches_a_batch(pseudonymizer, cols, column, drop):
    cols = dict(cols)
    cols[column] = np.array(["x"] * len(cols["person_id"]), dtype=object)
    with pytest.raises(RefusedColumnError) as info:
        run(cols, pseudonymizer, drop_unknown_columns=drop)
    assert column in info.value.columns


def test_csv_ids_keep_leading_zeros_and_match_consent(tmp_path, pseudonymizer):
    """"007" in an events CSV is the account "007" (as in the consent CSV), not the number 7."""
    path = tmp_path / "e.csv"
    path.write_text(f"person_id,service,ts,category\n007,video,{TS},239\n7,video,{TS},239\n")
    batch = run(path, pseudonymizer).batch
    assert batch.n_persons == 2
    assert set(batch.persons.tolist()) == set(pseudonymizer.pseudonymize(np.array(["007", "7"], dtype=object)).tolist())
