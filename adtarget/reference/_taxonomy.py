"""Interest taxonomies: an immutable tree of categories with vectorised hierarchy operations.

A :class:`Taxonomy` holds one row per node (the node *index*, ``int32``; ``-1`` means none/unknown) and
precomputes everything the hot paths need: the ancestor of every node at every tier (``ancestor_at_tier``)
and an Euler tour (``tin``/``tout``), so that ``rollup``, ``in_subtree`` and ``descendants`` are array
operations. The tree is built and validated by :mod:`adtarget.reference._taxonomy_tree`; the bundled reference
taxonomies and user TSV/CSV/JSON files are read by :mod:`adtarget.reference._taxonomy_files`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from os import PathLike
from typing import Any

import numpy as np

from adtarget._core._provenance import readonly
from adtarget.exceptions import ParameterError, TaxonomyError
from adtarget.reference._taxonomy_tree import (
    ancestor_chain,
    ancestor_matrix,
    check_columns,
    check_duplicates,
    content_digest,
    euler_tour,
    parent_index,
)

__all__ = ["Taxonomy"]

def _row_label(k: int) -> str:
    return f"row {k}"


def _readonly(a: np.ndarray) -> np.ndarray:
    """A copy in sealed read-only memory (``setflags(write=True)`` cannot undo it)."""
    return readonly(a)


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
        check_columns(name, id_arr, parent_ids, name_arr, scd_arr, row_label)
        sorted_pos = np.argsort(id_arr, kind="stable").astype(np.int32)
        sorted_ids = id_arr[sorted_pos]
        check_duplicates(name, sorted_ids, sorted_pos, row_label)
        parent = parent_index(name, id_arr, parent_ids, sorted_ids, sorted_pos, row_label)
        chain, tier = ancestor_chain(name, parent, id_arr, row_label)
        anc = ancestor_matrix(chain, tier)
        preorder, tin, tout = euler_tour(anc, tier)
        int_ids, int_pos = _integer_ids(id_arr)
        state = {
            "name": name, "ids": id_arr, "names": name_arr, "parent": parent, "tier": tier, "scd": scd_arr,
            "n_nodes": n, "max_tier": int(anc.shape[1]), "ancestor_at_tier": anc, "tin": tin, "tout": tout,
            "digest": content_digest(id_arr, parent_ids, name_arr, scd_arr), "_preorder": preorder,
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
        return _bundled("iab-2.2")

    @classmethod
    def chrome_topics_v2(cls) -> Taxonomy:
        """Chrome Topics API taxonomy v2 (name ``"topics-v2"``), cached."""
        return _bundled("topics-v2")

    @classmethod
    def iab_audience_1_1(cls) -> Taxonomy:
        """IAB Audience Taxonomy 1.1 (name ``"iab-audience-1.1"``), cached."""
        return _bundled("iab-audience-1.1")

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
        from adtarget.reference._taxonomy_files import load_path_or_name

        return load_path_or_name(path_or_name, name=name, make=cls)


def rebuilt(taxonomy: Taxonomy) -> Taxonomy:
    """A Taxonomy built again from ``taxonomy``'s ids, parents, names and flags: every derived table (and the
    digest) recomputed, so one changed with ``object.__setattr__`` is either refused or consistent."""
    if type(taxonomy) is not Taxonomy:
        raise ParameterError(f"taxonomy must be a Taxonomy, got {type(taxonomy).__name__}")
    try:
        return _restore(*taxonomy.__reduce__()[1])
    except (AttributeError, TypeError, ValueError, IndexError):
        raise ParameterError("taxonomy was not made by Taxonomy(...) or was changed after it was made") from None


def _restore(name: str, ids: np.ndarray, parents: np.ndarray, names: np.ndarray, scd: np.ndarray) -> Taxonomy:
    return Taxonomy(name, ids, parents, names, scd=scd)


@functools.cache  # the same objects as builtin's cache; this one saves the import on Taxonomy.default()
def _bundled(name: str) -> Taxonomy:
    from adtarget.reference._taxonomy_files import builtin  # on use: only loaders need the bundled files

    return builtin(name, Taxonomy)


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
