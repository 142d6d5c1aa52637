"""Ingestion's compiled Arrow path and its general path give the same batch, quarantine and regions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget.events import ingest
from adtarget.exceptions import InputFormatError

NOW = 1_790_000_000
TS = NOW - 86_400
SERVICES = ["video", "news", "games", "search", "tv", " ", None]
CATEGORIES = ["1", "239", "483", "52", "99999", "", None]
KINDS = ["search", "app_use", "click", "", None]
REGIONS = ["US-CA", "DE", "12.5,3.1", "xx yy", " ", None, "cn-gd"]
IDS = [1, 2, 3, 10**12, -7, 2**63 - 1, -(2**63)]
COLUMNS = ("person", "persons", "service", "ts", "category", "kind", "region", "weight")


@st.composite
def events(draw):
    n = draw(st.integers(0, 60))

    def pick(values):
        return draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))

    return {
        "person_id": pick(IDS),
        "service": pick(SERVICES),
        "ts": pick([TS, TS - 5, 5, NOW + 10_000, -(2**63), 2**63 - 1]),
        "category": pick(CATEGORIES),
        "kind": pick(KINDS),
        "region": pick(REGIONS),
        "weight": pick([1.0, 0.0, 2.5, -1.0, -0.0, np.nan, np.inf]),
    }


def _arrow(cols, n_chunks):
    """As Parquet reads it: int64 ids and ts, float64 weights, strings dictionary-encoded chunk by chunk (each
    chunk its own dictionary)."""
    import pyarrow as pa

    n = len(cols["person_id"])
    bounds = np.linspace(0, n, n_chunks + 1).astype(int)

    def chunked(values, kind):
        parts = [values[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
        if kind == "dict":
            arrays = [pa.array(p, type=pa.string()).dictionary_encode() for p in parts]
            return pa.chunked_array(arrays, type=pa.dictionary(pa.int32(), pa.string()))
        return pa.chunked_array([pa.array(p, type=kind) for p in parts], type=kind)

    strings = ("service", "category", "kind", "region")
    return pa.table({name: chunked(v, "dict" if name in strings else
                                   {"person_id": pa.int64(), "ts": pa.int64(), "weight": pa.float64()}[name])
                     for name, v in cols.items()})


def _general(cols):
    """The same events with ids and strings as object arrays (factorised by the general path); numbers stay
    numeric (an object column of numbers has rules of its own: NaN there is a missing weight)."""
    out = {name: np.array(v, dtype=object) for name, v in cols.items()}
    out["ts"] = np.array(cols["ts"], dtype=np.int64)
    out["weight"] = np.array(cols["weight"], dtype=np.float64)
    return out


def _assert_same(a, b):
    for name in COLUMNS:
        x, y = getattr(a.batch, name), getattr(b.batch, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.batch.regions == b.batch.regions
    np.testing.assert_array_equal(a.quarantine.rows, b.quarantine.rows)
    np.testing.assert_array_equal(a.quarantine.reason, b.quarantine.reason)


@given(events(), st.integers(1, 3))
def test_arrow_path_equals_general_path(pseudonymizer, cols, n_chunks):
    fast = ingest(_arrow(cols, n_chunks), pseudonymizer=pseudonymizer, now=NOW)
    general = ingest(_general(cols), pseudonymizer=pseudonymizer, now=NOW)
    _assert_same(fast, general)


def test_arrow_path_does_not_fall_back(pseudonymizer, monkeypatch):
    import adtarget.events._person_ids as person_ids
    import adtarget.events._validation as columns

    def refuse(*args, **kwargs):
        raise AssertionError("general path taken")

    monkeypatch.setattr(person_ids, "factorize", refuse)
    monkeypatch.setattr(columns, "factorize", refuse)
    monkeypatch.setattr(columns, "parse_timestamps", refuse)
    monkeypatch.setattr(columns, "parse_float", refuse)
    cols = {"person_id": [1, 2, 1], "service": ["video", "news", None], "ts": [TS] * 3,
            "category": ["1", "239", "1"], "kind": ["search"] * 3, "region": ["US-CA", None, "DE"],
            "weight": [1.0, 2.0, 0.5]}
    result = ingest(_arrow(cols, 2), pseudonymizer=pseudonymizer, now=NOW)
    assert result.batch.n_events == 2 and result.quarantine.counts() == {"missing_service": 1}


def test_nulls_in_ts_take_the_general_path_and_its_rules(pseudonymizer):
    import pyarrow as pa

    table = pa.table({"person_id": [1, 2, 3], "service": ["video"] * 3, "ts": pa.array([TS, None, 2**63 - 1]),
                      "category": ["1"] * 3})
    # Nulls make the whole column float (as before): 2**63 - 1 is then unparseable, not in the future.
    assert ingest(table, pseudonymizer=pseudonymizer, now=NOW).quarantine.counts() == {"bad_timestamp": 2}


@pytest.mark.parametrize("chunked", [True, False])
def test_invalid_dictionary_indices_in_a_mapping_are_refused(pseudonymizer, chunked):
    import pyarrow as pa

    service = pa.DictionaryArray.from_arrays(pa.array([0, 5], pa.int32()), pa.array(["video"]), safe=False)
    cols = {"person_id": [1, 2], "service": pa.chunked_array([service]) if chunked else service, "ts": [TS, TS],
            "category": ["1", "1"]}
    with pytest.raises(InputFormatError, match="column 'service' holds invalid Arrow data"):
        ingest(cols, pseudonymizer=pseudonymizer, now=NOW)


def test_the_kernel_checks_dictionary_indices_itself(pseudonymizer):
    import pyarrow as pa

    from adtarget.events._validation import service_column
    from adtarget.reference import ServiceRegistry

    service = pa.DictionaryArray.from_arrays(pa.array([0, 5], pa.int32()), pa.array(["video"]), safe=False)
    reason = np.zeros(2, dtype=np.int8)
    with pytest.raises(InputFormatError, match="outside its dictionary"):
        service_column(pa.chunked_array([service]), ServiceRegistry.synthetic(), reason)


@pytest.mark.parametrize("source", ["pandas", "arrow"])
def test_unused_dictionary_ids_are_neither_hashed_nor_persons(pseudonymizer, source):
    """A categorical/dictionary person_id may list ids no row uses (even a blank one): they are not persons,
    and a blank one must not fail the ingest (found in review)."""
    import pandas as pd
    import pyarrow as pa

    ids = pd.Categorical(["a7", "b9", "a7"], categories=["", "a7", "b9", "never-used"])
    frame = pd.DataFrame({"person_id": ids, "service": ["video"] * 3, "ts": [TS] * 3, "category": ["1"] * 3})
    data = frame if source == "pandas" else pa.Table.from_pandas(frame, preserve_index=False)
    batch = ingest(data, pseudonymizer=pseudonymizer, now=NOW).batch
    assert batch.n_events == 3 and batch.n_persons == 2
    assert np.array_equal(np.sort(batch.persons), np.sort(pseudonymizer.pseudonymize(np.array(["a7", "b9"]))))
