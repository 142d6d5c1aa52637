"""Taxonomy: bundled loaders, vectorised hierarchy ops against a naive parent-walk oracle, invalid files."""

from __future__ import annotations

import csv
import json
import pickle
from importlib.resources import files

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget.exceptions import InputFormatError, ParameterError, TaxonomyError
from adtarget.reference import IAB_NON_INTEREST_ROOTS, Taxonomy


def _raw_rows(filename: str) -> list[list[str]]:
    text = (files("adtarget") / "data" / "taxonomy" / filename).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


# --- naive oracle ------------------------------------------------------------------------------------------
def _walk(parent: np.ndarray, i: int) -> list[int]:
    """Node i and its ancestors, deepest first, by following parent pointers one at a time."""
    out = [i]
    while parent[out[-1]] >= 0:
        out.append(int(parent[out[-1]]))
    return out


def _write_table(path, rows, delimiter="\t", header=("id", "parent", "name")):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delimiter)
        w.writerow(header)
        w.writerows(rows)
    return path


@st.composite
def forests(draw):
    """Random forests: node k's parent is -1 or an earlier node; ids are shuffled distinct integers."""
    n = draw(st.integers(1, 40))
    parent = [draw(st.integers(-1, k - 1)) if k else -1 for k in range(n)]
    perm = draw(st.permutations(range(n)))
    ids = [str(perm[k] * 37) for k in range(n)]  # decimal strings whose text order differs from numeric
    parents = ["" if p < 0 else ids[p] for p in parent]
    return Taxonomy("rand", ids, parents, [f"node {k}" for k in range(n)])


# --- bundled taxonomies ------------------------------------------------------------------------------------
def test_default_is_iab_content_interest_categories():
    t = Taxonomy.default()
    assert t.name == "iab-2.2" and len(t) == t.n_nodes == 698
    assert all(i.isdigit() for i in t.ids)
    roots = set(t.names[t.tier_nodes(1)])
    assert len(roots) == 29 and not roots & IAB_NON_INTEREST_ROOTS
    assert {"Automotive", "Medical Health", "Video Gaming"} <= roots
    assert t.max_tier == 4 and int(t.scd.sum()) == 64
    assert Taxonomy.default() is t  # cached


def test_default_tiers_and_scd_match_the_file_columns():
    """The Parent column is authoritative; IAB's denormalised Tier columns disagree on exactly two rows."""
    t = Taxonomy.default()
    rows = {r[0]: r for r in _raw_rows("iab_content_taxonomy_2.2.tsv")[2:] if r[0].isdigit()}
    mismatched = set()
    for k, node_id in enumerate(t.ids):
        r = rows[node_id]
        assert t.scd[k] == (r[7] == "SCD")
        if t.path(k) != [c for c in r[3:7] if c]:
            mismatched.add(node_id)
    # 328 renamed in the Tier text only; 497 "Horse Racing" has Parent 483 (Sports), Tier text via Equine Sports
    assert mismatched == {"328", "497"}


def test_chrome_topics_v2_depths_and_names():
    t = Taxonomy.chrome_topics_v2()
    rows = _raw_rows("chrome_topics_taxonomy_v2.tsv")[1:]
    assert (t.name, len(t)) == ("topics-v2", 469) and not t.scd.any()
    assert t.tier.tolist() == [int(r[2]) for r in rows]
    assert ["/" + "/".join(t.path(k)) for k in range(len(t))] == [r[3] for r in rows]


def test_iab_audience_1_1_tiers():
    t = Taxonomy.iab_audience_1_1()
    rows = _raw_rows("iab_audience_taxonomy_1.1.tsv")[1:]
    assert (t.name, len(t), t.max_tier) == ("iab-audience-1.1", 1558, 6)
    text_tier = [sum(1 for c in r[4:10] if c.strip()) for r in rows]
    # the Parent ID column is authoritative; IAB's Tier text disagrees with it on these rows
    assert {r[1] for k, r in enumerate(rows) if t.tier[k] != text_tier[k]} == {
        "94", "96", "98", "99", "100", "101", "158", "1391", "1392", "1393"}
    assert set(t.names[t.tier_nodes(1)]) == {"Demographic", "Interest", "Purchase Intent*"}


@pytest.mark.parametrize("name", ["iab-2.2", "topics-v2", "iab-audience-1.1"])
def test_load_by_name_returns_the_cached_builtin(name):
    assert Taxonomy.load(name) is Taxonomy.load(name)
    assert Taxonomy.load(name).name == name


# --- identity, immutability, pickling -----------------------------------------------------------------------
def test_two_loads_of_the_same_file_are_equal(tmp_path):
    rows = [("1", "", "A"), ("2", "1", "B")]
    a = Taxonomy.load(_write_table(tmp_path / "x.tsv", rows))
    b = Taxonomy.load(_write_table(tmp_path / "y.csv", rows, delimiter=","), name="x")
    assert a == b and hash(a) == hash(b) and a is not b
    c = Taxonomy.load(_write_table(tmp_path / "x2.tsv", [("1", "", "A"), ("2", "1", "C")]), name="x")
    assert a != c and a != Taxonomy("other", ["1", "2"], ["", "1"], ["A", "B"])


def test_round_trip_of_the_default_through_csv_and_json(tmp_path):
    t = Taxonomy.default()
    parents = ["" if p < 0 else t.ids[p] for p in t.parent]
    rows = list(zip(t.ids, parents, t.names, np.where(t.scd, "SCD", ""), strict=True))
    assert Taxonomy.load(_write_table(tmp_path / "t.csv", rows, ",", ("id", "parent", "name", "scd")),
                         name="iab-2.2") == t
    nodes = [{"id": int(i), "parent": int(p) if p else None, "name": n} for i, p, n, _ in rows]
    loaded = Taxonomy.load(_json(tmp_path / "t.json", {"name": "iab-2.2", "nodes": nodes}))
    assert loaded.name == "iab-2.2" and loaded.digest != t.digest  # JSON carries no scd flags
    assert np.array_equal(loaded.parent, t.parent)


def _json(path, doc):
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_immutable_and_picklable():
    t = Taxonomy.default()
    with pytest.raises(AttributeError):
        t.name = "x"  # type: ignore[misc]
    with pytest.raises(ValueError):
        t.parent[0] = 5
    u = pickle.loads(pickle.dumps(t))
    assert u == t and np.array_equal(u.tin, t.tin) and np.array_equal(u.scd, t.scd)


def test_repr_is_readable():
    r = repr(Taxonomy.default())
    assert r.startswith("Taxonomy('iab-2.2', n_nodes=698, roots=29, max_tier=4")


# --- lookups ------------------------------------------------------------------------------------------------
def test_index_of_strings_ints_and_unknowns():
    t = Taxonomy.default()
    expected = [0, int(np.flatnonzero(t.ids == "308")[0]), -1]
    assert t.index_of(["1", "308", "nope"]).tolist() == expected
    assert t.index_of(np.array([1, 308, 99999], dtype=np.int64)).tolist() == expected
    assert t.index_of(np.array([1.0, 308.0, np.nan])).tolist() == expected
    assert t.index_of(np.array(["1", 308, None], dtype=object)).tolist() == expected
    assert t.index_of([]).shape == (0,) and t.index_of([]).dtype == np.int32
    assert t.index_of(np.array([["1", "x"]])).shape == (1, 2)
    assert int(t.index_of("308")) == expected[1] and "308" in t and "v9i3On" not in t and "1000" not in t


@pytest.mark.parametrize(("ids", "expected"), [
    (["01", "2", "x"], [-1, 1, -1]),
    (["1", "²", "3"], [0, -1, 2]),
    (["1", "2", "3" * 20], [0, 1, -1]),
])
def test_index_of_ints_on_non_canonical_ids_compares_strings(ids, expected):
    t = Taxonomy("odd", ids, ["", "", ""], ["A", "B", "C"])
    assert t.index_of(np.array([1, 2, 3])).tolist() == expected
    assert t.index_of(ids).tolist() == [0, 1, 2]


def test_path_ancestors_descendants_segment_id():
    t = Taxonomy.default()
    i = int(t.index_of("308"))
    assert t.path(i) == ["Medical Health", "Diseases and Conditions", "Sexual Health", "Sexual Conditions"]
    assert t.ids[t.ancestors(i)].tolist() == ["286", "287", "307"]
    assert t.ancestors(0).size == 0
    d = t.descendants(int(t.index_of("286")))
    assert d[0] == t.index_of("286") and sorted(t.ids[d].astype(int).tolist()) == list(range(286, 324))
    assert t.segment_id(0) == "iab-2.2:1"
    with pytest.raises(TaxonomyError, match="node index"):
        t.path(len(t))


def test_rollup_edge_cases():
    t = Taxonomy.default()
    nodes = t.index_of(["308", "1", "3", "zzz"])
    assert t.ids[t.rollup(nodes[:3], 2)].tolist() == ["287", "1", "2"]
    assert t.rollup(nodes, 1)[-1] == -1
    assert np.array_equal(t.rollup(nodes, 99), nodes)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ParameterError, match="tier"):
            t.rollup(nodes, bad)  # type: ignore[arg-type]


# --- property tests against the oracle ---------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(forests())
def test_hierarchy_ops_match_parent_walk(t):
    n = len(t)
    walks = [_walk(t.parent, i) for i in range(n)]
    assert t.tier.tolist() == [len(w) for w in walks]
    for i, w in enumerate(walks):
        assert t.ancestors(i).tolist() == w[1:][::-1]
        assert sorted(t.descendants(i).tolist()) == [j for j in range(n) if i in walks[j]]
        for tier in range(1, t.max_tier + 2):
            want = w[::-1][tier - 1] if tier <= len(w) else i
            assert t.rollup([i], tier)[0] == want
    nodes = np.arange(-1, n)
    for root in range(n):
        want = [j >= 0 and root in walks[j] for j in nodes]
        assert t.in_subtree(nodes, root).tolist() == want


@settings(max_examples=40, deadline=None)
@given(forests())
def test_index_of_is_inverse_of_ids(t):
    assert np.array_equal(t.index_of(t.ids), np.arange(len(t)))
    assert np.array_equal(t.index_of(t.ids[::-1]), np.arange(len(t))[::-1])


# --- invalid inputs -----------------------------------------------------------------------------------------
INVALID_TABLES = [
    ("empty", None, "is empty"),
    ("header only", [], "no nodes"),
    ("duplicate id", [("1", "", "A"), ("2", "1", "B"), ("1", "", "C")], r"duplicate id '1' at line 2 .* line 4"),
    ("unknown parent", [("1", "", "A"), ("2", "9", "B")], r"line 3 .*id '2'.* unknown parent '9'"),
    ("cycle", [("1", "", "A"), ("2", "3", "B"), ("3", "2", "C")], r"cycle .*'2'.*'3'"),
    ("self parent", [("1", "1", "A")], r"cycle through line 2"),
    ("empty id", [("1", "", "A"), (" ", "1", "B")], r"line 3 .*empty id"),
    ("empty name", [("1", "", "")], r"line 2 .*empty name"),
]


@pytest.mark.parametrize(("case", "rows", "pattern"), INVALID_TABLES, ids=[c[0] for c in INVALID_TABLES])
def test_invalid_tables(tmp_path, case, rows, pattern):
    path = tmp_path / "bad.tsv"
    if rows is None:
        path.write_text("", encoding="utf-8")
    else:
        _write_table(path, rows)
    with pytest.raises(TaxonomyError, match=pattern):
        Taxonomy.load(path)


def test_missing_columns_are_named(tmp_path):
    path = _write_table(tmp_path / "bad.csv", [("1", "A")], ",", ("id", "label"))
    with pytest.raises(TaxonomyError, match=r"missing column\(s\) \['parent', 'name'\]"):
        Taxonomy.load(path)


def test_bad_scd_value_names_line_and_column(tmp_path):
    path = _write_table(tmp_path / "bad.tsv", [("1", "", "A", "maybe")], header=("id", "parent", "name", "scd"))
    with pytest.raises(TaxonomyError, match=r"column 'scd' at line 2 .*'maybe'"):
        Taxonomy.load(path)


def test_deep_chain_is_refused(tmp_path):
    rows = [(str(k), str(k - 1) if k else "", f"n{k}") for k in range(130)]
    with pytest.raises(TaxonomyError, match="deeper than 127 tiers"):
        Taxonomy.load(_write_table(tmp_path / "deep.tsv", rows))


INVALID_JSON = [
    ("empty", "", "is empty"),
    ("not json", "{", "not valid JSON"),
    ("not a list", '{"nodes": 3}', "non-empty list of nodes"),
    ("empty list", "[]", "non-empty list of nodes"),
    ("node not object", '[1]', r"node 0 must be an object .*missing \['id', 'name'\] in int"),
    ("missing key", '[{"id": 1}]', r"node 0 must be .*missing \['name'\] in dict"),
    ("unknown parent", '[{"id": 1, "name": "A"}, {"id": 2, "parent": 7, "name": "B"}]', "node 1 .*parent '7'"),
]


@pytest.mark.parametrize(("case", "text", "pattern"), INVALID_JSON, ids=[c[0] for c in INVALID_JSON])
def test_invalid_json(tmp_path, case, text, pattern):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TaxonomyError, match=pattern):
        Taxonomy.load(path)


def test_missing_path_and_unknown_extension(tmp_path):
    with pytest.raises(InputFormatError, match="bundled taxonomy"):
        Taxonomy.load(tmp_path / "nope.tsv")
    (tmp_path / "t.xlsx").write_text("x", encoding="utf-8")
    with pytest.raises(InputFormatError, match="extension"):
        Taxonomy.load(tmp_path / "t.xlsx")


@pytest.mark.parametrize("name", ["", "a:b", 3])
def test_bad_names(name):
    with pytest.raises(ParameterError, match="name"):
        Taxonomy(name, ["1"], [""], ["A"])  # type: ignore[arg-type]


def test_mismatched_lengths():
    with pytest.raises(TaxonomyError, match="parents must have one value per node"):
        Taxonomy("t", ["1", "2"], [""], ["A", "B"])
