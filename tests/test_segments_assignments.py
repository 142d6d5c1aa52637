"""SegmentAssignments: Personal Information by type, exports (scipy, pandas, Parquet), validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from adtarget._segments._assignments_io import hex_pseudonyms, parse_hex_pseudonyms, read_assignments_parquet
from adtarget._segments._info import SegmentAssignments, SegmentInfo
from adtarget.exceptions import InputFormatError, ParameterError

PERSONS = np.array([3, 2**40 + 7, 2**63 + 11, 2**64 - 1], dtype=np.uint64)
SEGMENTS = (SegmentInfo("iab-2.2:483", "Sports", ("Sports",)), SegmentInfo("learned:dp-kmeans-0a1b2c3d:0", "Travel"))
MEMBERSHIP = sparse.csr_matrix(np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=bool))


@pytest.fixture
def assignments():
    return SegmentAssignments(persons=PERSONS, membership=MEMBERSHIP, segments=SEGMENTS)


def test_marked_personal_and_repr_shows_only_shapes(assignments):
    assert SegmentAssignments.classification == "personal" and assignments.classification == "personal"
    assert "Personal Information" in (SegmentAssignments.__doc__ or "")
    text = repr(assignments)
    assert text == "SegmentAssignments(n_persons=4, n_segments=2, memberships=4; Personal Information)"
    for p in PERSONS:
        assert f"{int(p):016x}" not in text and str(int(p)) not in text


def test_has_no_report_form(assignments):
    for name in ("to_report", "to_json", "to_dict", "report", "as_report"):
        assert not hasattr(assignments, name)


def test_exports(assignments):
    m = assignments.to_scipy()
    assert m.dtype == bool and (m != MEMBERSHIP).nnz == 0 and m is not assignments.membership
    frame = assignments.to_pandas()
    assert list(frame.columns) == ["pseudonym", "iab-2.2:483", "learned:dp-kmeans-0a1b2c3d:0"]
    assert list(frame["pseudonym"]) == [f"{int(p):016x}" for p in PERSONS]
    assert frame["iab-2.2:483"].dtype == bool and frame["iab-2.2:483"].tolist() == [True, True, False, False]
    np.testing.assert_array_equal(assignments.sizes(), [2, 2])
    np.testing.assert_array_equal(assignments.segments_per_person(), [1, 2, 0, 1])


def test_parquet_round_trip_is_marked_personal(assignments, tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "assignments.parquet"
    assignments.to_parquet(path)
    assert pq.read_schema(path).metadata[b"adtarget.classification"] == b"personal"
    back = read_assignments_parquet(path)
    np.testing.assert_array_equal(back.persons, PERSONS)
    assert back.segments == SEGMENTS and (back.membership != MEMBERSHIP).nnz == 0


def test_reading_another_parquet_file_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"pseudonym": ["00"]}), tmp_path / "other.parquet")
    with pytest.raises(InputFormatError, match="is not a SegmentAssignments Parquet file"):
        read_assignments_parquet(tmp_path / "other.parquet")


@given(st.lists(st.integers(0, 2**64 - 1), max_size=50))
def test_hex_pseudonyms_match_format_and_round_trip(values):
    persons = np.array(values, dtype=np.uint64)
    text = hex_pseudonyms(persons)
    assert list(text) == [f"{v:016x}" for v in values]
    np.testing.assert_array_equal(parse_hex_pseudonyms(text), persons)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"persons": PERSONS.astype(np.int64)}, "persons must be a 1-D uint64 array"),
    ({"membership": MEMBERSHIP[:3]}, r"membership must have shape \(n_persons, n_segments\) = \(4, 2\), got \(3, 2\)"),
    ({"segments": (SEGMENTS[0], SEGMENTS[0])}, r"unique ids, got duplicates \['iab-2.2:483'\]"),
    ({"segments": ("iab-2.2:483", SEGMENTS[1])}, "segments must be SegmentInfo objects"),
])
def test_invalid_assignments(kwargs, match):
    args = {"persons": PERSONS, "membership": MEMBERSHIP, "segments": SEGMENTS, **kwargs}
    with pytest.raises(ParameterError, match=match):
        SegmentAssignments(**args)


@pytest.mark.parametrize(("args", "match"), [
    (("483", "Sports"), "segment_id must be a string '<prefix>:<id>', got '483'"),
    (("iab-2.2:483", " "), "name of segment 'iab-2.2:483' must be a non-empty string"),
    (("iab-2.2:483", "Sports", (1,)), "path of segment 'iab-2.2:483' must hold strings"),
])
def test_invalid_segment_info(args, match):
    with pytest.raises(ParameterError, match=match):
        SegmentInfo(*args)


def test_segment_info_is_frozen_and_readable():
    info = SEGMENTS[0]
    assert str(info) == "iab-2.2:483 (Sports)"
    with pytest.raises(AttributeError):
        info.name = "x"  # type: ignore[misc]


def test_explicit_zeros_in_the_membership_are_not_members():
    stored = sparse.csr_matrix((np.array([True, False, True]), np.array([0, 1, 1]), np.array([0, 2, 2, 2, 3])),
                               shape=(4, 2))
    assert stored.nnz == 3
    membership = SegmentAssignments(persons=PERSONS, membership=stored, segments=SEGMENTS).membership
    assert membership.nnz == 2 and membership.data.all()
    assert membership.toarray().tolist() == [[True, False], [False, False], [False, False], [False, True]]
