"""Interest taxonomies: an immutable tree of categories with vectorised hierarchy operations.

A :class:`Taxonomy` holds one row per node (the node *index*, ``int32``; ``-1`` means none/unknown) and
precomputes everything the hot paths need: the ancestor of every node at every tier (``ancestor_at_tier``)
and an Euler tour (``tin``/``tout``), so that ``rollup``, ``in_subtree`` and ``descendants`` are array
operations. Loaders for the bundled reference taxonomies (read with ``importlib.resources``) and for user
TSV/CSV/JSON files are at the bottom of this module.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

import numpy as np

from adtarget.exceptions import ParameterError, TaxonomyError

__all__ = ["Taxonomy"]

_MAX_TIER = 127  # tiers are int8


def _row_label(k: int) -> str:
    return f"row {k}"


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Taxonomy:
    """An immutable tree of interest categories.

    Parameters
    ----------
    name : str
        Short name used as the segment-id prefix (``"iab-2.2"``); must be non-empty and contain no ``:``.
    ids : sequence of str
        Node id strings, unique and non-empty. The node index is the position in this sequence.
    parents : sequence of str
        Parent id of each node, ``""`` for a root.
    names : sequence of str
        Display name of each node (non-empty).
    scd : sequence of bool, optional
        IAB "Special Category Data" flag per node; all False when omitted.

    Attributes
    ----------
    name : str
    ids, names : numpy.ndarray of str
    parent : numpy.ndarray of int32
        Parent index, -1 for roots.
    tier : numpy.ndarray of int8
        1 for roots.
    scd : numpy.ndarray of bool
    n_nodes, max_tier : int
    ancestor_at_tier : numpy.ndarray of int32, shape (n_nodes, max_tier)
        ``ancestor_at_tier[i, t - 1]`` is the ancestor of ``i`` at tier ``t`` (``i`` itself at its own
        tier), or ``i`` when ``i`` is shallower than ``t``.
    tin, tout : numpy.ndarray of int32
        Euler-tour interval: ``j`` is in the subtree of ``i`` iff ``tin[i] <= tin[j] < tout[i]``.
    digest : str
        BLAKE2b digest of the content (ids, parents, names, scd); equality and hash use name + digest.

    Raises
    ------
    TaxonomyError
        Empty taxonomy, empty or duplicate ids, unknown parents, cycles, empty names, more than 127 tiers.
    """

    __slots__ = (
        "name", "ids", "names", "parent", "tier", "scd", "n_nodes", "max_tier",
        "ancestor_at_tier", "tin", "tout", "digest", "_preorder", "_sorted_ids", "_sorted_pos",
        "_int_ids", "_int_pos",
    )

    name: str
    ids: np.ndarray
    names: np.ndarray
    parent: np.ndarray
    tier: np.ndarray
    scd: np.ndarray
    n_nodes: int
    max_tier: int
    ancestor_at_tier: np.ndarray
    tin: np.ndarray
    tout: np.ndarray
    digest: str
    _preorder: np.ndarray
    _sorted_ids: np.ndarray
    _sorted_pos: np.ndarray
    _int_ids: np.ndarray | None
    _int_pos: np.ndarray | None

    def __init__(
        self,
        name: str,
        ids: Sequence[str] | np.ndarray,
        parents: Sequence[str] | np.ndarray,
        names: Sequence[str] | np.ndarray,
        *,
        scd: Sequence[bool] | np.ndarray | None = None,
        row_label: Callable[[int], str] = _row_label,
    ) -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise ParameterError(f"name must be a non-empty string without ':', got {name!r}")
        id_arr, parent_ids, name_arr = (np.asarray(x, dtype=str) for x in (ids, parents, names))
        n = int(id_arr.size)
        scd_arr = np.zeros(n, dtype=bool) if scd is None else np.asarray(scd, dtype=bool)
        _check_columns(name, id_arr, parent_ids, name_arr, scd_arr, row_label)
        sorted_pos = np.argsort(id_arr, kind="stable").astype(np.int32)
        sorted_ids = id_arr[sorted_pos]
        _check_duplicates(name, sorted_ids, sorted_pos, row_label)
        parent = _parent_index(name, id_arr, parent_ids, sorted_ids, sorted_pos, row_label)
        chain, tier = _ancestor_chain(name, parent, id_arr, row_label)
        anc = _ancestor_matrix(chain, tier)
        preorder, tin, tout = _euler_tour(anc, tier)
        int_ids, int_pos = _integer_ids(id_arr)
        state = {
            "name": name, "ids": id_arr, "names": name_arr, "parent": parent, "tier": tier, "scd": scd_arr,
            "n_nodes": n, "max_tier": int(anc.shape[1]), "ancestor_at_tier": anc, "tin": tin, "tout": tout,
            "digest": _digest(id_arr, parent_ids, name_arr, scd_arr), "_preorder": preorder,
            "_sorted_ids": sorted_ids, "_sorted_pos": sorted_pos, "_int_ids": int_ids, "_int_pos": int_pos,
        }
        for key, value in state.items():
            object.__setattr__(self, key, _readonly(value) if isinstance(value, np.ndarray) else value)

    # --- immutability, equality, pickling -------------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Taxonomy is immutable: cannot set {key!r}")

    def __delattr__(self, key: str) -> None:
        raise AttributeError(f"Taxonomy is immutable: cannot delete {key!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        parent_ids = np.where(self.parent >= 0, self.ids[np.maximum(self.parent, 0)], "")
        return (_restore, (self.name, self.ids, parent_ids, self.names, self.scd))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Taxonomy):
            return NotImplemented
        return self.name == other.name and self.digest == other.digest

    def __hash__(self) -> int:
        return hash((self.name, self.digest))

    def __len__(self) -> int:
        return self.n_nodes

    def __contains__(self, node_id: object) -> bool:
        return bool(self.index_of(node_id) >= 0) if isinstance(node_id, str | int) else False

    def __repr__(self) -> str:
        roots = int(np.count_nonzero(self.parent < 0))
        return (f"Taxonomy({self.name!r}, n_nodes={self.n_nodes}, roots={roots}, max_tier={self.max_tier}, "
                f"digest={self.digest[:12]})")

    # --- lookups --------------------------------------------------------------------------------------
    def index_of(self, ids: Any) -> np.ndarray:
        """Map node ids (str or int, scalar or array-like) to node indices; -1 for unknown ids.

        Vectorised: one ``np.searchsorted`` over the sorted ids. Integers are matched by their decimal
        string (numerically when every id is a canonical decimal integer); anything else by its ``str``.
        """
        arr = np.asarray(ids)
        if arr.dtype.kind in "iu" and self._int_ids is not None and self._int_pos is not None:
            return _lookup(self._int_ids, self._int_pos, arr.astype(np.int64, copy=False))
        return _lookup(self._sorted_ids, self._sorted_pos, _as_id_strings(arr))

    def tier_nodes(self, t: int) -> np.ndarray:
        """Indices (int32, ascending) of the nodes at tier ``t``."""
        return np.flatnonzero(self.tier == t).astype(np.int32)

    def path(self, i: int) -> list[str]:
        """Names from the root down to node ``i`` (inclusive)."""
        i = self._check_index(i)
        return [str(s) for s in self.names[self.ancestor_at_tier[i, : self.tier[i]]]]

    def ancestors(self, i: int) -> np.ndarray:
        """Proper ancestors of node ``i`` (int32), root first; empty for a root."""
        i = self._check_index(i)
        return self.ancestor_at_tier[i, : self.tier[i] - 1].copy()

    def descendants(self, i: int) -> np.ndarray:
        """The subtree of node ``i`` (int32, including ``i`` first, in depth-first order)."""
        i = self._check_index(i)
        return self._preorder[self.tin[i] : self.tout[i]].copy()

    def segment_id(self, i: int) -> str:
        """``"<taxonomy name>:<node id>"``, the id of a taxonomy segment in reports."""
        return f"{self.name}:{self.ids[self._check_index(i)]}"

    # --- vectorised hierarchy ops ---------------------------------------------------------------------
    def in_subtree(self, nodes: Any, root: int) -> np.ndarray:
        """Boolean array: is each node (index; -1 allowed) ``root`` or one of its descendants."""
        root = self._check_index(root)
        nodes = np.asarray(nodes, dtype=np.int64)
        t = self.tin[np.where(nodes >= 0, nodes, 0)]
        return (nodes >= 0) & (t >= self.tin[root]) & (t < self.tout[root])

    def rollup(self, nodes: Any, tier: int) -> np.ndarray:
        """Ancestor of each node at ``tier`` (int32), or the node itself when it is shallower; -1 stays -1."""
        if isinstance(tier, bool) or not isinstance(tier, int | np.integer) or tier < 1:
            raise ParameterError(f"tier must be an integer >= 1, got {tier!r}")
        nodes = np.asarray(nodes, dtype=np.int64)
        col = min(int(tier), self.max_tier) - 1
        out = self.ancestor_at_tier[np.where(nodes >= 0, nodes, 0), col]
        return np.where(nodes >= 0, out, -1).astype(np.int32)

    def _check_index(self, i: Any) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < self.n_nodes:
            raise TaxonomyError(f"node index must be an integer in [0, {self.n_nodes}) of taxonomy "
                                f"{self.name!r}, got {i!r}")
        return int(i)

    # --- loaders ---------------------------------------------------------------------------------------
    @classmethod
    def default(cls) -> Taxonomy:
        """IAB Content Taxonomy 2.2 interest categories (name ``"iab-2.2"``), cached."""
        return _builtin("iab-2.2")

    @classmethod
    def chrome_topics_v2(cls) -> Taxonomy:
        """Chrome Topics API taxonomy v2 (name ``"topics-v2"``), cached."""
        return _builtin("topics-v2")

    @classmethod
    def iab_audience_1_1(cls) -> Taxonomy:
        """IAB Audience Taxonomy 1.1 (name ``"iab-audience-1.1"``), cached."""
        return _builtin("iab-audience-1.1")

    @classmethod
    def load(cls, path_or_name: str | PathLike[str], *, name: str | None = None) -> Taxonomy:
        """A bundled taxonomy by name, or a TSV/CSV/JSON file of nodes.

        ``path_or_name`` is ``"iab-2.2"``, ``"topics-v2"``, ``"iab-audience-1.1"``, or the path of a
        ``.tsv``/``.csv`` file whose header holds ``id``, ``parent`` (empty for roots), ``name`` and optionally
        ``scd`` (other columns ignored), or of a ``.json`` list of node objects with those keys (or
        ``{"name": ..., "nodes": [...]}``). ``name`` defaults to the JSON ``name``, else the file stem.

        Raises
        ------
        InputFormatError
            The path does not exist or its extension is not .tsv, .csv or .json.
        TaxonomyError
            Empty file, missing columns, duplicate ids, unknown parents, cycles (naming the line/id).
        """
        return _load_path_or_name(path_or_name, name=name)


def _restore(name: str, ids: np.ndarray, parents: np.ndarray, names: np.ndarray, scd: np.ndarray) -> Taxonomy:
    return Taxonomy(name, ids, parents, names, scd=scd)


@functools.cache
def _builtin(name: str) -> Taxonomy:
    return _BUILTIN_LOADERS[name]()


def _lookup(sorted_keys: np.ndarray, sorted_pos: np.ndarray, query: np.ndarray) -> np.ndarray:
    pos = np.minimum(np.searchsorted(sorted_keys, query), sorted_keys.size - 1)
    return np.where(sorted_keys[pos] == query, sorted_pos[pos], -1).astype(np.int32)


def _integer_ids(ids: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Sorted int64 ids and their node indices when every id is a canonical decimal integer, else None."""
    canonical = np.char.isdigit(ids) & ((np.char.str_len(ids) == 1) | ~np.char.startswith(ids, "0"))
    if not canonical.all() or np.char.str_len(ids).max() > 18:
        return None, None
    try:
        values = ids.astype(np.int64)
    except ValueError:  # non-ASCII digits
        return None, None
    order = np.argsort(values, kind="stable")
    return _readonly(values[order]), _readonly(order.astype(np.int32))


def _as_id_strings(arr: np.ndarray) -> np.ndarray:
    """Query ids as strings: ints by their decimal form, integral floats likewise, bools and NaN match nothing."""
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64).astype(str)
    if arr.dtype.kind == "f":
        ok = np.isfinite(arr) & (arr == np.round(arr))
        return np.where(ok, np.where(ok, arr, 0).astype(np.int64).astype(str), "")
    return np.full(arr.shape, "") if arr.dtype.kind == "b" else arr.astype(str)


def _check_columns(name: str, ids: np.ndarray, parents: np.ndarray, names: np.ndarray, scd: np.ndarray,
                   row_label: Callable[[int], str]) -> None:
    if ids.size == 0:
        raise TaxonomyError(f"taxonomy {name!r} is empty: it must have at least one node")
    for what, arr in (("parents", parents), ("names", names), ("scd", scd)):
        if arr.shape != ids.shape:
            raise TaxonomyError(f"taxonomy {name!r}: {what} must have one value per node ({ids.size}), "
                                f"got shape {arr.shape}")
    for what, arr in (("id", ids), ("name", names)):
        empty = np.flatnonzero(np.char.str_len(np.char.strip(arr)) == 0)
        if empty.size:
            raise TaxonomyError(f"taxonomy {name!r}: {row_label(int(empty[0]))} has an empty {what} "
                                f"({empty.size} such rows)")


def _check_duplicates(name: str, sorted_ids: np.ndarray, sorted_pos: np.ndarray,
                      row_label: Callable[[int], str]) -> None:
    dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if dup.size:
        k = int(dup[0])
        first, second = sorted(int(p) for p in sorted_pos[k : k + 2])
        raise TaxonomyError(f"taxonomy {name!r}: duplicate id {str(sorted_ids[k])!r} at {row_label(first)} "
                            f"and {row_label(second)}")


def _parent_index(name: str, ids: np.ndarray, parent_ids: np.ndarray, sorted_ids: np.ndarray,
                  sorted_pos: np.ndarray, row_label: Callable[[int], str]) -> np.ndarray:
    parent_ids = np.char.strip(parent_ids)
    is_root = parent_ids == ""
    pos = np.minimum(np.searchsorted(sorted_ids, parent_ids), ids.size - 1)
    found = sorted_ids[pos] == parent_ids
    bad = np.flatnonzero(~is_root & ~found)
    if bad.size:
        k = int(bad[0])
        raise TaxonomyError(f"taxonomy {name!r}: {row_label(k)} (id {str(ids[k])!r}) has unknown parent "
                            f"{str(parent_ids[k])!r} ({bad.size} rows with unknown parents)")
    return np.where(is_root, -1, sorted_pos[pos]).astype(np.int32)


def _ancestor_chain(name: str, parent: np.ndarray, ids: np.ndarray,
                    row_label: Callable[[int], str]) -> tuple[np.ndarray, np.ndarray]:
    """Row k of the chain is every node's k-th ancestor (-1 past the root); tier = chain length."""
    chain = [np.arange(parent.size, dtype=np.int32)]
    while np.any(chain[-1] >= 0):
        if len(chain) > _MAX_TIER:
            _raise_cycle_or_depth(name, parent, ids, chain[-1], row_label)
        cur = chain[-1]
        chain.append(np.where(cur >= 0, parent[np.maximum(cur, 0)], -1).astype(np.int32))
    stacked = np.stack(chain[:-1])
    tier = np.count_nonzero(stacked >= 0, axis=0).astype(np.int8)
    return stacked, tier


def _raise_cycle_or_depth(name: str, parent: np.ndarray, ids: np.ndarray, cur: np.ndarray,
                          row_label: Callable[[int], str]) -> None:
    start = int(np.flatnonzero(cur >= 0)[0])
    seen: dict[int, int] = {}
    node = start
    while node >= 0 and node not in seen:
        seen[node] = len(seen)
        node = int(parent[node])
    if node >= 0:
        cycle = list(seen)[seen[node]:]
        shown = " -> ".join(repr(str(ids[c])) for c in cycle[:8])
        raise TaxonomyError(f"taxonomy {name!r}: parent cycle through {row_label(min(cycle))}: {shown}")
    raise TaxonomyError(f"taxonomy {name!r}: {row_label(start)} is deeper than {_MAX_TIER} tiers")


def _ancestor_matrix(chain: np.ndarray, tier: np.ndarray) -> np.ndarray:
    max_tier = int(tier.max())
    t = np.arange(1, max_tier + 1)[None, :]
    k = tier.astype(np.int64)[:, None] - t  # how many steps up to reach tier t
    nodes = np.arange(tier.size)[:, None]
    anc = chain[np.clip(k, 0, chain.shape[0] - 1), np.broadcast_to(nodes, k.shape)]
    return np.where(k >= 0, anc, nodes).astype(np.int32)


def _euler_tour(anc: np.ndarray, tier: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth-first order by lexsorting root-to-node paths (shallower prefix first); subtree sizes by counts."""
    n, max_tier = anc.shape
    t = np.arange(1, max_tier + 1)[None, :]
    padded = np.where(t <= tier[:, None], anc, -1)
    preorder = np.lexsort(padded.T[::-1]).astype(np.int32)
    tin = np.empty(n, dtype=np.int32)
    tin[preorder] = np.arange(n, dtype=np.int32)
    size = np.bincount(padded[padded >= 0], minlength=n)
    return preorder, tin, (tin + size).astype(np.int32)


def _digest(ids: np.ndarray, parents: np.ndarray, names: np.ndarray, scd: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16, person=b"adtarget-taxo")
    for arr in (ids, np.char.strip(parents), names):
        h.update("\x1f".join(arr.tolist()).encode("utf-8") + b"\x1e")
    h.update(np.packbits(scd).tobytes())
    return h.hexdigest()


# --- loaders ---------------------------------------------------------------------------------------------
#: Trees of IAB Content 2.2 that describe the content itself (channel, format, language, origin), not interests.
IAB_NON_INTEREST_ROOTS = frozenset({
    "Content Channel", "Content Type", "Content Source", "Content Media Format", "Content Language",
    "Content Source Geo",
})


def _resource_rows(filename: str) -> list[list[str]]:
    from importlib.resources import files

    text = (files("adtarget") / "data" / "taxonomy" / filename).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def _line_label(lines: Sequence[int], source: str) -> Callable[[int], str]:
    return lambda k: f"line {lines[k]} of {source}"


def _load_iab_content_2_2() -> Taxonomy:
    """Numeric-id interest trees of IAB Content 2.2 (two header lines; columns id, parent, name, tiers, SCD)."""
    source = "iab_content_taxonomy_2.2.tsv"
    rows = _resource_rows(source)
    kept = [(k + 1, r) for k, r in enumerate(rows) if k >= 2 and r[0].isascii() and r[0].isdigit()]
    lines = [k for k, _ in kept]
    cols = list(zip(*(r[:3] + [r[7] if len(r) > 7 else ""] for _, r in kept), strict=True))
    full = Taxonomy("iab-2.2", cols[0], cols[1], cols[2], scd=np.asarray(cols[3]) == "SCD",
                    row_label=_line_label(lines, source))
    keep = ~np.isin(full.names[full.ancestor_at_tier[:, 0]], sorted(IAB_NON_INTEREST_ROOTS))
    idx = np.flatnonzero(keep)
    return Taxonomy("iab-2.2", full.ids[idx], np.asarray(cols[1])[idx], full.names[idx], scd=full.scd[idx],
                    row_label=_line_label([lines[i] for i in idx], source))


def _load_chrome_topics_v2() -> Taxonomy:
    """Chrome Topics v2 (columns id, parent_id, depth, name as a /-path, id_in_v1); names are the last step."""
    source = "chrome_topics_taxonomy_v2.tsv"
    rows = _resource_rows(source)[1:]
    names = [r[3].rsplit("/", 1)[-1] for r in rows]
    return Taxonomy("topics-v2", [r[0] for r in rows], [r[1] for r in rows], names,
                    row_label=_line_label(range(2, len(rows) + 2), source))


def _load_iab_audience_1_1() -> Taxonomy:
    """IAB Audience 1.1 (leading blank column, id, parent, condensed name, Tier 1..6); name = deepest tier."""
    source = "iab_audience_taxonomy_1.1.tsv"
    rows = _resource_rows(source)[1:]
    names = [[t.strip() for t in r[4:10] if t.strip()][-1] for r in rows]
    return Taxonomy("iab-audience-1.1", [r[1] for r in rows], [r[2] for r in rows], names,
                    row_label=_line_label(range(2, len(rows) + 2), source))


_BUILTIN_LOADERS: dict[str, Callable[[], Taxonomy]] = {
    "iab-2.2": _load_iab_content_2_2, "topics-v2": _load_chrome_topics_v2,
    "iab-audience-1.1": _load_iab_audience_1_1,
}


def _load_path_or_name(path_or_name: str | PathLike[str], *, name: str | None) -> Taxonomy:
    from pathlib import Path

    from adtarget.exceptions import InputFormatError

    if isinstance(path_or_name, str) and path_or_name in _BUILTIN_LOADERS:
        return _builtin(path_or_name)
    path = Path(path_or_name)
    if not path.is_file():
        raise InputFormatError(f"path_or_name must be a bundled taxonomy ({', '.join(_BUILTIN_LOADERS)}) or an "
                               f"existing file, got {str(path_or_name)!r}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _load_json(path, name)
    if suffix in (".tsv", ".csv"):
        return _load_table(path, "\t" if suffix == ".tsv" else ",", name)
    raise InputFormatError(f"taxonomy file {path.name!r}: extension must be .tsv, .csv or .json, got {suffix!r}")


_TRUE = frozenset({"1", "true", "yes", "scd"})
_FALSE = frozenset({"", "0", "false", "no"})


def _load_table(path: Any, delimiter: str, name: str | None) -> Taxonomy:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [(k + 1, r) for k, r in enumerate(csv.reader(f, delimiter=delimiter)) if any(c.strip() for c in r)]
    if not rows:
        raise TaxonomyError(f"taxonomy file {path.name!r} is empty: expected a header with id, parent, name")
    header = [c.strip().lower() for c in rows[0][1]]
    missing = [c for c in ("id", "parent", "name") if c not in header]
    if missing:
        raise TaxonomyError(f"taxonomy file {path.name!r}: missing column(s) {missing}; found {header}")
    data = rows[1:]
    if not data:
        raise TaxonomyError(f"taxonomy file {path.name!r} has a header but no nodes")
    width = len(header)
    table = {c: [(r + [""] * width)[header.index(c)].strip() for _, r in data] for c in header}
    lines = [k for k, _ in data]
    scd = _parse_scd(path.name, table["scd"], lines) if "scd" in table else None
    return Taxonomy(name or path.stem, table["id"], table["parent"], table["name"], scd=scd,
                    row_label=_line_label(lines, repr(path.name)))


def _parse_scd(source: str, values: list[str], lines: list[int]) -> np.ndarray:
    low = [v.lower() for v in values]
    for k, v in enumerate(low):
        if v not in _TRUE and v not in _FALSE:
            raise TaxonomyError(f"taxonomy file {source!r}: column 'scd' at line {lines[k]} must be one of "
                                f"{sorted(_TRUE | _FALSE)}, got {values[k]!r}")
    return np.asarray([v in _TRUE for v in low], dtype=bool)


def _load_json(path: Any, name: str | None) -> Taxonomy:
    import json

    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise TaxonomyError(f"taxonomy file {path.name!r} is empty: expected a list of nodes")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaxonomyError(f"taxonomy file {path.name!r} is not valid JSON: {e}") from None
    nodes = doc.get("nodes") if isinstance(doc, dict) else doc
    if not isinstance(nodes, list) or not nodes:
        raise TaxonomyError(f"taxonomy file {path.name!r}: expected a non-empty list of nodes (or an object "
                            f"with a 'nodes' list), got {type(nodes).__name__}")
    for k, node in enumerate(nodes):
        missing = ["id", "name"] if not isinstance(node, dict) else [c for c in ("id", "name") if c not in node]
        if missing:
            raise TaxonomyError(f"taxonomy file {path.name!r}: node {k} must be an object with keys id, name "
                                f"(parent optional); missing {missing} in {type(node).__name__}")
    doc_name = doc.get("name") if isinstance(doc, dict) else None
    parents = ["" if n.get("parent") is None else str(n["parent"]) for n in nodes]
    return Taxonomy(name or (doc_name if isinstance(doc_name, str) else path.stem), [str(n["id"]) for n in nodes],
                    parents, [str(n["name"]) for n in nodes], row_label=lambda k: f"node {k} of {path.name!r}")
