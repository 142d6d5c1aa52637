"""SegmentAssignments: Personal Information by type, exports (scipy, pandas, Parquet), and provenance: only a
segmenter's ``assign`` makes them, a release accepts only those derived from the events it counts (issue 14,
finding 6), and nothing reaches counts for a segment on a sensitive node."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import numpy as np
import pytest
from _segment_fixtures import eligible_events, random_events, safe_taxonomy
from hypothesis import given
from hypothesis import strategies as st

from adtarget import BudgetLedger, ReleaseSpec, SegmentAssignments, SegmentCatalog, TopicSegment, release
from adtarget.exceptions import InputFormatError, ParameterError, ProvenanceError, SensitiveCategoryError
from adtarget.reports import count_cells
from adtarget.segments import SegmentInfo, read_assignments_parquet
from adtarget.segments._assignments_io import hex_pseudonyms, parse_hex_pseudonyms

MAKER = "SegmentCatalog.assign or DPKMeansSegmenter.assign"


@pytest.fixture(scope="module")
def safe(taxonomy):
    return safe_taxonomy(taxonomy)


@pytest.fixture(scope="module")
def eligible(safe):
    return eligible_events(safe, random_events(safe, n_persons=40, n_events=400, seed=1))


@pytest.fixture(scope="module")
def catalog(safe):
    tax = safe.taxonomy
    tier1 = np.flatnonzero(safe.safe_mask & (tax.tier == 1))[:3]
    return SegmentCatalog([TopicSegment(str(tax.ids[i]), k=2) for i in tier1], safe)


@pytest.fixture(scope="module")
def assignments(catalog, eligible):
    return catalog.assign(eligible)


def spec_for(assignments, advertiser="acme"):
    return ReleaseSpec(advertiser, list(assignments.segment_ids), epsilon=1.0, delta=0.0, breakdowns=())


def test_marked_personal_and_repr_shows_only_shapes(assignments):
    assert SegmentAssignments.classification == "personal" and assignments.classification == "personal"
    assert "Personal Information" in (SegmentAssignments.__doc__ or "")
    text = repr(assignments)
    n = int(assignments.sizes().sum())
    assert text == f"SegmentAssignments(n_persons=40, n_segments=3, memberships={n}; Personal Information)"
    for p in assignments.persons:
        assert f"{int(p):016x}" not in text and str(int(p)) not in text


def test_has_no_report_form(assignments):
    for name in ("to_report", "to_json", "to_dict", "report", "as_report"):
        assert not hasattr(assignments, name)


def test_exports(assignments, eligible):
    np.testing.assert_array_equal(assignments.persons, eligible.persons)
    dense = assignments.membership.toarray()
    assert dense.any() and not dense.all()
    m = assignments.to_scipy()
    assert m.dtype == bool and (m != assignments.membership).nnz == 0 and m is not assignments.membership
    m.data[:] = False  # a writable copy: the assignments are unchanged
    assert assignments.membership.toarray().tolist() == dense.tolist()
    frame = assignments.to_pandas()
    assert list(frame.columns) == ["pseudonym", *assignments.segment_ids]
    assert list(frame["pseudonym"]) == [f"{int(p):016x}" for p in assignments.persons]
    assert frame[assignments.segment_ids[0]].dtype == bool
    assert frame[list(assignments.segment_ids)].to_numpy().tolist() == dense.tolist()
    np.testing.assert_array_equal(assignments.sizes(), dense.sum(axis=0))
    np.testing.assert_array_equal(assignments.segments_per_person(), dense.sum(axis=1))
    assert assignments.membership.data.all()  # no explicit zeros are stored as members


def test_parquet_round_trip_is_marked_personal_and_has_no_lineage(assignments, tmp_path):
    import pyarrow.parquet as pq

    path = tmp_path / "assignments.parquet"
    assignments.to_parquet(path)
    assert pq.read_schema(path).metadata[b"adtarget.classification"] == b"personal"
    back = read_assignments_parquet(path)
    np.testing.assert_array_equal(back.persons, assignments.persons)
    assert back.segments == assignments.segments and (back.membership != assignments.membership).nnz == 0
    assert assignments.lineage is not None and back.lineage is None


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


@pytest.mark.parametrize(("args", "match"), [
    (("483", "Sports"), "segment_id must be a string '<prefix>:<id>', got '483'"),
    (("iab-2.2:483", " "), "name of segment 'iab-2.2:483' must be a non-empty string"),
    (("iab-2.2:483", "Sports", (1,)), "path of segment 'iab-2.2:483' must hold strings"),
])
def test_invalid_segment_info(args, match):
    with pytest.raises(ParameterError, match=match):
        SegmentInfo(*args)


def test_segment_info_is_frozen_and_readable():
    info = SegmentInfo("iab-2.2:483", "Sports", ("Sports",))
    assert str(info) == "iab-2.2:483 (Sports)"
    with pytest.raises(AttributeError):
        info.name = "x"  # type: ignore[misc]


# --- issue 14, finding 6: hand-made memberships are refused --------------------------------------------------
def test_segment_assignments_cannot_be_constructed(assignments):
    with pytest.raises(ProvenanceError, match=f"SegmentAssignments can only be made by {MAKER}"):
        SegmentAssignments(persons=assignments.persons, membership=assignments.membership,
                           segments=assignments.segments)


def test_object_new_assignments_are_refused_by_count_cells_and_release(assignments, eligible):
    forged = object.__new__(SegmentAssignments)
    assert repr(forged) == "SegmentAssignments(<not made by a segmenter>)"
    with pytest.raises(ProvenanceError, match="holds nothing"):
        forged.persons  # noqa: B018
    spec = spec_for(assignments)
    refused = f"assignments: must be a SegmentAssignments made by {MAKER}; got a SegmentAssignments not made by"
    with pytest.raises(ProvenanceError, match=refused):
        count_cells(eligible, forged, spec)
    with pytest.raises(ProvenanceError, match=refused):
        release(eligible, forged, spec, ledger=BudgetLedger(":memory:", advertisers=["acme"]))


def test_subclassed_replaced_copied_or_edited_assignments_are_refused(assignments, eligible):
    with pytest.raises(TypeError, match="cannot be subclassed"):
        type("Forged", (SegmentAssignments,), {"__slots__": ()}, maker="x")
    with pytest.raises(TypeError, match="dataclass"):
        dataclasses.replace(assignments, segments=assignments.segments[:1])
    assert copy.copy(assignments) is assignments and copy.deepcopy(assignments) is assignments
    with pytest.raises(AttributeError, match="immutable"):
        assignments.lineage = None
    membership = assignments.membership
    with pytest.raises(ValueError, match="read-only"):
        membership.indices[:1] = 0
    for array in (membership.data, membership.indices, membership.indptr, assignments.persons):
        with pytest.raises(ValueError, match="WRITEABLE"):
            array.setflags(write=True)
        with pytest.raises(ValueError, match="WRITEABLE"):
            np.asarray(array.base).setflags(write=True)
    blob = pickle.dumps(assignments)
    assert pickle.loads(blob).segment_ids == assignments.segment_ids
    at = blob.index(assignments.segments[0].name.encode())
    edited = blob[:at] + bytes([blob[at] ^ 1]) + blob[at + 1:]
    with pytest.raises(ProvenanceError, match="not sealed by this process"):
        pickle.loads(edited)


def test_assignments_read_from_parquet_are_refused_by_release(assignments, eligible, tmp_path):
    """A file can be edited (here: everybody made a member of every segment), so read-back assignments have no
    lineage and a release refuses them before anything is counted or charged."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "a.parquet"
    assignments.to_parquet(path)
    table = pq.read_table(path)
    for name in assignments.segment_ids:
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(np.ones(table.num_rows, bool)))
    pq.write_table(table, path)
    edited = read_assignments_parquet(path)
    assert edited.sizes().tolist() == [40, 40, 40]
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    before = ledger.remaining("acme")
    with pytest.raises(ParameterError, match="assignments were read from a file: a release counts only assignments "
                                             "that a segmenter's assign"):
        release(eligible, edited, spec_for(edited), ledger=ledger)
    assert ledger.remaining("acme") == before


def test_assignments_of_other_eligible_events_are_refused(assignments, safe):
    other = eligible_events(safe, random_events(safe, n_persons=40, n_events=400, seed=1))  # same events, new gate run
    with pytest.raises(ParameterError, match="were derived from other EligibleEvents"):
        count_cells(other, assignments, spec_for(assignments))


def test_a_catalog_on_a_sensitive_node_is_refused(safe):
    tax = safe.taxonomy
    sensitive = int(np.flatnonzero(~np.asarray(safe.safe_mask))[0])
    with pytest.raises(SensitiveCategoryError, match=f"node_id '{tax.ids[sensitive]}' .* is in the sensitive class"):
        SegmentCatalog([TopicSegment(str(tax.ids[sensitive]))], safe)
    safe_node = int(np.flatnonzero(safe.safe_mask & (tax.tier == 1))[0])
    from adtarget import AnyOf

    with pytest.raises(SensitiveCategoryError, match="segments cannot be defined on sensitive categories"):
        SegmentCatalog([AnyOf(TopicSegment(str(tax.ids[safe_node])), TopicSegment(str(tax.ids[sensitive])))], safe)
