"""Service registry (P9): codes, the ads-permitted switch, CSV import and its errors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget.exceptions import InputFormatError, ParameterError
from adtarget.reference import Service, ServiceRegistry

SYNTH_NAMES = ("video", "news", "games", "search", "music", "payments", "health_plus")


def test_synthetic_registry():
    r = ServiceRegistry.synthetic()
    assert r.names == SYNTH_NAMES and len(r) == 7
    assert r.ads_permitted.tolist() == [True] * 6 + [False]
    assert r.own_policy.tolist() == [False] * 6 + [True]
    assert r["health_plus"] == Service("health_plus", ads_permitted=False, own_policy=True)
    assert "video" in r and "radio" not in r
    assert "health_plus (no ads use, own privacy policy)" in str(r)


def test_index_of_is_int16_and_vectorised():
    r = ServiceRegistry.synthetic()
    codes = r.index_of(np.array(["music", "nope", "video", "music", ""]))
    assert codes.dtype == np.int16 and codes.tolist() == [4, -1, 0, 4, -1]
    assert int(r.index_of("health_plus")) == 6
    assert r.index_of(np.array(["video", None], dtype=object)).tolist() == [0, -1]
    assert r.index_of([]).shape == (0,)
    assert ServiceRegistry([]).index_of(["video"]).tolist() == [-1]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from([*SYNTH_NAMES, "x", "Video", "video "]), max_size=50))
def test_index_of_matches_a_dict_lookup(query):
    r = ServiceRegistry.synthetic()
    expected = [SYNTH_NAMES.index(q) if q in SYNTH_NAMES else -1 for q in query]
    assert r.index_of(np.asarray(query, dtype=str)).tolist() == expected


def test_registry_is_frozen_hashable_picklable():
    r = ServiceRegistry.synthetic()
    with pytest.raises(AttributeError):
        r.names = ()  # type: ignore[misc]
    with pytest.raises(ValueError):
        r.ads_permitted[6] = True
    assert r == ServiceRegistry.synthetic() and hash(r) == hash(ServiceRegistry.synthetic())
    assert pickle.loads(pickle.dumps(r)) == r
    assert r.with_service(Service("radio", True)).names[-1] == "radio"


@pytest.mark.parametrize(("kwargs", "pattern"), [
    ({"name": "", "ads_permitted": True}, "Service.name"),
    ({"name": " video", "ads_permitted": True}, "Service.name"),
    ({"name": 3, "ads_permitted": True}, "Service.name"),
    ({"name": "video", "ads_permitted": "yes"}, "Service.ads_permitted of 'video' must be a bool"),
    ({"name": "video", "ads_permitted": True, "own_policy": 1}, "Service.own_policy"),
])
def test_invalid_service(kwargs, pattern):
    with pytest.raises(ParameterError, match=pattern):
        Service(**kwargs)


def test_duplicate_names_and_non_services_refused():
    with pytest.raises(ParameterError, match="distinct names, got 'video' twice"):
        ServiceRegistry([Service("video", True), Service("video", False)])
    with pytest.raises(ParameterError, match="Service objects"):
        ServiceRegistry(["video"])  # type: ignore[list-item]
    with pytest.raises(ParameterError, match="one of"):
        ServiceRegistry.synthetic()["radio"]


def test_from_csv(tmp_path):
    path = tmp_path / "services.csv"
    path.write_text("Service, ads_permitted ,own_policy,notes\nvideo,true,,x\nhealth,No,YES,\n\nnews,1\n",
                    encoding="utf-8")
    r = ServiceRegistry.from_csv(path)
    assert r.names == ("video", "health", "news")
    assert r.ads_permitted.tolist() == [True, False, True] and r.own_policy.tolist() == [False, True, False]


def test_from_csv_without_own_policy_column(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("service,ads_permitted\r\nvideo,false\r\n", encoding="utf-8")
    assert ServiceRegistry.from_csv(path) == ServiceRegistry([Service("video", False)])


INVALID_CSV = [
    ("empty", "", "is empty"),
    ("header only", "service,ads_permitted\n", "no services"),
    ("missing column", "service,own_policy\nvideo,true\n", r"missing column\(s\) \['ads_permitted'\]"),
    ("bad bool", "service,ads_permitted\nvideo,true\nnews,maybe\n", r"line 3, column 'ads_permitted' .*'maybe'"),
    ("missing ads value", "service,ads_permitted\nvideo\n", r"line 2, column 'ads_permitted' .*got ''"),
    ("bad own_policy", "service,ads_permitted,own_policy\nvideo,true,2\n", r"line 2, column 'own_policy'"),
    ("empty name", "service,ads_permitted\n,true\n", r"line 2, column 'service' is empty"),
    ("duplicate", "service,ads_permitted\nvideo,true\nnews,true\nvideo,false\n",
     r"line 4, column 'service' repeats 'video' \(first at line 2\)"),
]


@pytest.mark.parametrize(("case", "text", "pattern"), INVALID_CSV, ids=[c[0] for c in INVALID_CSV])
def test_from_csv_invalid(tmp_path, case, text, pattern):
    path = tmp_path / "services.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputFormatError, match=pattern):
        ServiceRegistry.from_csv(path)


def test_from_csv_missing_file(tmp_path):
    with pytest.raises(InputFormatError, match="does not exist"):
        ServiceRegistry.from_csv(tmp_path / "nope.csv")
