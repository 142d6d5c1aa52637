"""SegmentReport and the adtarget.segment_report/v2 schema (v1 still read): a valid report passes the built-in validator and
jsonschema alike, every kind of tampering fails, nothing pseudonym-shaped gets through."""

from __future__ import annotations

import copy
import json
import math

import jsonschema
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtarget.exceptions import InputFormatError, ReportValidationError
from adtarget.reports import SegmentReport, audit_report, load_schema, validate_report
from adtarget.reports._report import report_errors, schema_errors

PSEUDONYM = 0x9F3A5C7E1B2D4F60


def valid_doc():
    """A v2 document (the one written); :func:`v1_doc` is the same in the older schema."""
    doc = v1_doc()
    doc["schema"] = "adtarget.segment_report/v2"
    doc["privacy"].update(false_segment_rate=1e-6, size_threshold=50, cell_threshold=50,
                          budget_split={"sizes": 0.6, "breakdowns": 0.3, "partition_selection": 0.1})
    for seg in doc["segments"]:
        seg["size_interval"] = {"confidence": 0.95, "lower": max(seg["size"] - 25, 0), "upper": seg["size"] + 25}
    return doc


def v1_doc():
    return {
        "schema": "adtarget.segment_report/v1",
        "report_id": "rpt-0123abcd-0123-4567-89ab-0123456789ab",
        "advertiser": "acme",
        "created_at": "2026-11-29T03:00:00Z",
        "data_window": {"start": "2026-08-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        "policy": {"version": "2018-05-14", "sensitivity_profile": "default", "min_age": 13},
        "privacy": {"unit": "person", "epsilon": 1.0, "delta": 1e-06, "mechanism": "discrete_laplace",
                    "max_segments_per_person": 5, "min_reported_size": 50,
                    "budget_remaining": {"advertiser": 4.0, "global": 19.0}},
        "segments": [
            {"segment_id": "iab-2.2:239", "name": "Hobbies & Interests", "path": ["Hobbies & Interests"],
             "size": 12345,
             "breakdowns": {"age_band": {"18-24": 3400}, "region": {"CN-GD": 800}, "service": {"video": 5000}}},
            {"segment_id": "learned:dp-kmeans-1a2b3c4d:3", "name": "Sports + Travel", "path": [], "size": 50,
             "breakdowns": {}},
        ],
        "suppressed_segments": 12,
    }


def jsonschema_ok(doc) -> bool:
    return jsonschema.Draft202012Validator(load_schema()).is_valid(doc)


def test_the_design_example_is_valid_for_both_validators():
    doc = valid_doc()
    assert report_errors(doc) == []
    assert jsonschema_ok(doc)
    jsonschema.Draft202012Validator.check_schema(load_schema())


def test_a_stored_v1_report_stays_readable_and_names_its_schema():
    """Reports written before v2 (stored in budget ledgers, returned for a repeated query) are read as they are."""
    report = SegmentReport(v1_doc())
    assert report.schema == "adtarget.segment_report/v1" and report.segments[0].size_interval is None
    assert SegmentReport(valid_doc()).segments[0].size_interval == (12320, 12370)
    assert jsonschema.Draft202012Validator(load_schema(1)).is_valid(v1_doc())
    mixed = v1_doc()
    mixed["segments"][0]["size_interval"] = {"confidence": 0.95, "lower": 1, "upper": 2}  # a v2 field in v1
    with pytest.raises(ReportValidationError, match="segment_report/v1"):
        SegmentReport(mixed)
    unknown = valid_doc()
    unknown["schema"] = "adtarget.segment_report/v3"
    with pytest.raises(ReportValidationError, match=r"\$\.schema"):
        SegmentReport(unknown)


def test_v2_sizes_must_clear_the_threshold_and_lie_in_their_interval():
    doc = valid_doc()
    doc["privacy"]["size_threshold"] = 100  # the second segment (size 50) is below it
    assert any("size threshold 100" in e for e in report_errors(doc)), report_errors(doc)
    doc = valid_doc()
    doc["segments"][0]["size_interval"]["lower"] = 20000
    assert any("size_interval: must contain the size" in e for e in report_errors(doc))
    doc = valid_doc()
    doc["privacy"]["cell_threshold"] = 1000  # region CN-GD 800 is below it
    assert any("cell threshold 1000" in e for e in report_errors(doc))


def test_every_object_in_the_schema_forbids_unknown_fields():
    def walk(node, path="$"):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False or isinstance(node.get("additionalProperties"),
                                                                               dict), path
                if isinstance(node.get("additionalProperties"), dict):
                    assert "propertyNames" in node, path
            for k, v in node.items():
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    walk(load_schema())


def set_at(doc, path, value):
    *head, last = path
    node = doc
    for key in head:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return doc


DELETE = object()
SEG = ["segments", 0]
# (path, value, does jsonschema catch it too?)
TAMPERING = [
    (["schema"], "adtarget.segment_report/v3", True),
    (["report_id"], "rpt-1", True),
    (["advertiser"], "", True),
    (["advertiser"], "acme\x00", True),
    (["created_at"], "2026-11-29 03:00", True),
    (["data_window", "start"], DELETE, True),
    (["data_window", "extra"], "x", True),
    (["policy", "min_age"], 12, True),
    (["policy", "version"], "latest", True),
    (["privacy", "unit"], "event", True),
    (["privacy", "epsilon"], 0, True),
    (["privacy", "epsilon"], "1.0", True),
    (["privacy", "delta"], 1.0, True),
    (["privacy", "mechanism"], "laplace", True),
    (["privacy", "max_segments_per_person"], 0, True),
    (["privacy", "budget_remaining", "global"], -1.0, True),
    (["privacy", "budget_remaining", "per_user"], 1.0, True),
    (["privacy", "person_ids"], [1, 2], True),
    ([*SEG, "segment_id"], "239", True),
    ([*SEG, "segment_id"], "iab-2.2:239 OR 1=1", True),
    ([*SEG, "size"], -5, True),
    ([*SEG, "size"], 12.5, True),
    ([*SEG, "size"], True, True),
    ([*SEG, "path"], "Hobbies", True),
    ([*SEG, "persons"], ["9f3a5c7e1b2d4f60"], True),
    ([*SEG, "breakdowns", "age_band", "12-17"], 60, True),
    ([*SEG, "breakdowns", "gender"], {"f": 60}, True),
    ([*SEG, "breakdowns", "region", "CN-GD"], "800", True),
    ([*SEG, "breakdowns", "region", "\nbad"], 60, True),
    (["suppressed_segments"], -1, True),
    (["suppressed_segments"], DELETE, True),
    (["pseudonyms"], [], True),
    # rules beyond the schema: only the built-in validator knows them
    ([*SEG, "size"], 49, False),
    ([*SEG, "breakdowns", "region", "CN-GD"], 49, False),
    ([*SEG, "breakdowns", "service", "video"], 20000, False),
    ([*SEG, "breakdowns", "age_band"], {"18-24": 9000, "25-34": 9000}, False),
    (["segments", 1, "segment_id"], "iab-2.2:239", False),
    (["data_window", "start"], "2026-12-01T00:00:00Z", False),
    (["advertiser"], "user 9f3a5c7e1b2d4f60", False),
    ([*SEG, "name"], "deadbeefdeadbeefdeadbeef", False),
    ([*SEG, "breakdowns", "region", "9F3A5C7E1B2D4F60"], 60, False),
]


@pytest.mark.parametrize("path, value, schema_level", TAMPERING,
                         ids=[f"{'.'.join(map(str, p))}={v!r}"[:60] for p, v, _ in TAMPERING])
def test_every_kind_of_tampering_fails(path, value, schema_level):
    doc = set_at(valid_doc(), path, copy.deepcopy(value))
    assert report_errors(doc), "the built-in validator must reject it"
    if schema_level:
        assert schema_errors(doc), "it is a schema violation"
        assert not jsonschema_ok(doc), "jsonschema must agree"
    with pytest.raises(ReportValidationError):
        SegmentReport(doc)


def test_strings_or_numbers_equal_to_a_pseudonym_of_the_data_are_rejected_without_echo():
    persons = np.array([1234567, PSEUDONYM], dtype=np.uint64)
    for path, value in ((["advertiser"], "acme 1234567"), ([*SEG, "name"], f"x{PSEUDONYM}"),
                        (["suppressed_segments"], 1234567)):
        doc = set_at(valid_doc(), path, value)
        assert report_errors(doc) == [] or path[-1] == "name"  # shape alone does not betray a short id
        with pytest.raises(ReportValidationError) as err:
            validate_report(doc, pseudonyms=persons)
        assert "1234567" not in str(err.value) and str(PSEUDONYM) not in str(err.value)
    validate_report(valid_doc(), pseudonyms=persons)


def test_error_messages_never_echo_string_values():
    doc = set_at(valid_doc(), ["advertiser"], "9f3a5c7e1b2d4f60")
    with pytest.raises(ReportValidationError) as err:
        SegmentReport(doc)
    assert "9f3a5c7e1b2d4f60" not in str(err.value) and "advertiser" in str(err.value)


def test_round_trip_write_and_read(tmp_path):
    report = SegmentReport(valid_doc())
    assert SegmentReport.from_json(report.to_json()) == report
    path = report.write(tmp_path / "r.json")
    assert SegmentReport.read(path) == report
    assert json.loads(path.read_text()) == valid_doc()
    assert report.segments[0].breakdowns["region"] == {"CN-GD": 800}
    assert report.privacy["epsilon"] == 1.0 and report.suppressed_segments == 12
    with pytest.raises(AttributeError):
        report.advertiser = "other"


def test_reports_hold_copies_not_views():
    doc = valid_doc()
    report = SegmentReport(doc)
    doc["segments"][0]["size"] = 1
    report.to_dict()["segments"][0]["size"] = 2
    report.privacy["epsilon"] = 5.0
    assert report.segments[0].size == 12345 and report.privacy["epsilon"] == 1.0


def test_non_standard_json_and_infinite_epsilon_are_not_written():
    text = json.dumps(valid_doc()).replace('"epsilon": 1.0', '"epsilon": Infinity')
    with pytest.raises(ReportValidationError, match="not valid JSON"):
        SegmentReport.from_json(text)
    test_only = SegmentReport(set_at(valid_doc(), ["privacy", "epsilon"], math.inf))
    with pytest.raises(ReportValidationError, match="inf"):
        test_only.to_json()


def test_audit_report_checks_schema_policy_and_sensitive_segments(tmp_path):
    from adtarget.gate import EligibilityPolicy
    from adtarget.reference import SafeTaxonomy

    safe = SafeTaxonomy.default()
    good = tmp_path / "good.json"
    SegmentReport(valid_doc()).write(good)
    result = audit_report(good, EligibilityPolicy(), safe)
    assert result.ok and "OK" in str(result)
    sensitive = safe.taxonomy.ids[~np.asarray(safe.safe_mask)][0]
    bad = set_at(valid_doc(), [*SEG, "segment_id"], f"iab-2.2:{sensitive}-top3")
    bad["segments"][1]["size"] = 10
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    result = audit_report(tmp_path / "bad.json", EligibilityPolicy(min_age=16), safe)
    assert not result.ok
    text = " | ".join(result.problems)
    assert "sensitive node" in text and "min_reported_size" in text and "min_age" in text
    (tmp_path / "junk.json").write_text("{not json")
    assert not audit_report(tmp_path / "junk.json", None, safe).ok
    with pytest.raises(InputFormatError):
        audit_report(tmp_path / "missing.json", None, safe)


def test_the_writer_needs_no_jsonschema(tmp_path):
    import subprocess
    import sys

    code = ("import sys; sys.modules['jsonschema'] = None\n"
            "from adtarget.reports._report import SegmentReport, report_errors\n"
            f"doc = {valid_doc()!r}\n"
            f"SegmentReport(doc).write({str(tmp_path / 'r.json')!r})\n"
            "doc['privacy']['unit'] = 'event'\n"
            "assert report_errors(doc)\n"
            "assert 'jsonschema' not in [m for m in sys.modules if sys.modules[m] is not None]\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    assert (tmp_path / "r.json").exists()


# --- the fast accept paths agree with the detailed walks that name the violations --------------------------
def _walk_errors(doc):
    from adtarget.reports._report_schema import _validate

    errors: list[str] = []
    _validate(doc, load_schema(), load_schema(), "$", errors)
    return errors


@pytest.mark.parametrize("path, value, schema_level", TAMPERING, ids=[repr(case)[:60] for case in TAMPERING])
def test_the_compiled_schema_check_rejects_what_the_walk_rejects(path, value, schema_level):
    from adtarget.reports._report import _holds_pseudonym, _pseudonym_problems
    from adtarget.reports._report_schema import _compiled_schema

    doc = set_at(valid_doc(), path, copy.deepcopy(value))
    assert _compiled_schema()(doc) == (not _walk_errors(doc))
    assert _compiled_schema()(valid_doc()) and not _walk_errors(valid_doc())
    persons = np.array([800, PSEUDONYM], dtype=np.uint64)
    for known in (persons, persons[:1], None):
        assert _holds_pseudonym(doc, known) == bool(_pseudonym_problems(doc, known))


def _containers(inner):
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


_JSONISH = st.recursive(st.none() | st.booleans() | st.integers(-5, 2**65) | st.floats(allow_nan=True)
                        | st.text(max_size=20), _containers, max_leaves=12)


@given(where=st.sampled_from([["privacy"], ["segments", 0, "breakdowns"], ["segments", 0, "breakdowns", "region"],
                              ["segments", 1], ["policy"], ["data_window"], []]),
       key=st.sampled_from(["size", "min_age", "epsilon", "region", "CN-GD", "start", "path", "x", "age_band"]),
       value=_JSONISH)
def test_the_compiled_schema_check_agrees_on_random_mutations(where, key, value):
    from adtarget.reports._report_schema import _compiled_schema

    doc = valid_doc()
    set_at(doc, [*where, key], value)
    assert _compiled_schema()(doc) == (not _walk_errors(doc))
