"""Rule-based segments: data-independent definitions over the safe taxonomy, assigned by a compiled kernel.

A definition names taxonomy nodes only, never data, so the set of segments is public and costs no privacy
budget. :class:`SegmentCatalog` validates every definition when it is created: a sensitive node (or a
descendant of one) raises :class:`~adtarget.exceptions.SensitiveCategoryError`, an unknown node
:class:`~adtarget.exceptions.TaxonomyError`.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Union

import numpy as np
from scipy import sparse

from adtarget._core._buffers import uses_buffers
from adtarget.exceptions import ParameterError, SensitiveCategoryError, TaxonomyError
from adtarget.profiles._profiles import (
    LEVELS,
    InterestProfiler,
    InterestProfiles,
    is_eligible_events,
    profiles_matrix,
)
from adtarget.segments._info import SegmentAssignments, SegmentInfo, make_assignments
from adtarget.segments._naming import composite_name, topic_name
from adtarget.segments._screen import ProxyScreen

if TYPE_CHECKING:
    from adtarget.gate._gate import EligibleEvents
    from adtarget.reference._sensitivity import SafeTaxonomy

__all__ = ["AllOf", "AnyOf", "SegmentCatalog", "TopicSegment"]

RULES = ("top_k", "share")
DEFAULT_K = 5  # as the Topics API


@dataclass(frozen=True)
class TopicSegment:
    """Persons interested in a taxonomy node's subtree.

    Parameters
    ----------
    node_id : str or int
        The node's id in the taxonomy (e.g. ``"483"``); stored as a string.
    rule : {"top_k", "share"}, default "top_k"
        ``"top_k"``: the subtree is among the person's ``k`` strongest interests at the node's tier (as the
        Topics API does with 5; ties go to the lower node index). ``"share"``: the subtree holds at least
        ``min_share`` of the person's total interest score.
    k : int, default 5
    min_share : float in (0, 1], default 0.1
    """

    node_id: str
    rule: str = "top_k"
    k: int = DEFAULT_K
    min_share: float = 0.1

    def __post_init__(self) -> None:
        node_id = self.node_id
        if isinstance(node_id, numbers.Integral) and not isinstance(node_id, bool):
            node_id = str(int(node_id))
        if not isinstance(node_id, str) or not node_id.strip():
            raise ParameterError(f"node_id must be a non-empty string or an integer, got {self.node_id!r}")
        object.__setattr__(self, "node_id", node_id.strip())
        if self.rule not in RULES:
            raise ParameterError(f"rule of segment {node_id!r} must be one of {RULES}, got {self.rule!r}")
        if isinstance(self.k, bool) or not isinstance(self.k, numbers.Integral) or self.k < 1:
            raise ParameterError(f"k of segment {node_id!r} must be an integer >= 1, got {self.k!r}")
        share = self.min_share
        if isinstance(share, bool) or not isinstance(share, numbers.Real) or math.isnan(share) \
                or not 0 < share <= 1:
            raise ParameterError(f"min_share of segment {node_id!r} must be a number in (0, 1], got {share!r}")

    def __str__(self) -> str:
        rule = f"top {self.k}" if self.rule == "top_k" else f"share >= {self.min_share:g}"
        return f"topic {self.node_id} ({rule})"


#: every composite kind, by its ``kind`` name: filled by the kinds' own declarations (``_Composite`` subclasses)
_KINDS: dict[str, type[_Composite]] = {}
_COMBINE: dict[str, Any] = {}
_KIND = re.compile(r"^[a-z]{2,8}$")


@dataclass(frozen=True, init=False)
class _Composite:
    """A combination of definitions. A kind declares itself: ``kind`` (its prefix in segment ids),
    ``operator`` (the word between part names) and ``combine`` (two boolean membership columns into one).
    A class that declares no new kind (say, a subclass of ``AnyOf``) is not a kind: the catalog refuses it,
    so nothing is ever combined by a rule it did not declare."""

    parts: tuple[Definition, ...]
    kind: ClassVar[str] = ""
    operator: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declared = {name: name in cls.__dict__ for name in ("kind", "operator", "combine")}
        if any(declared.values()):
            if not all(declared.values()) or not _KIND.match(cls.kind) or cls.kind in _KINDS:
                raise TypeError(f"{cls.__name__}: a composite kind declares a new ``kind`` (^[a-z]{{2,8}}$), an "
                                f"``operator`` and ``combine``")
            _KINDS[cls.kind] = cls
            declared_rule = cls.__dict__["combine"]
            _COMBINE[cls.kind] = getattr(declared_rule, "__func__", declared_rule)  # a later assignment changes nothing

    def __init__(self, *parts: Definition) -> None:
        if len(parts) < 2:
            raise ParameterError(f"{type(self).__name__} needs at least 2 definitions, got {len(parts)}")
        for part in parts:  # checked here, copied by the catalog
            _rebuilt(part, f"{type(self).__name__} parts")
        object.__setattr__(self, "parts", tuple(parts))

    @staticmethod
    def combine(a: sparse.csr_matrix, b: sparse.csr_matrix) -> sparse.csr_matrix:
        """Persons in the combination of columns ``a`` and ``b``."""
        raise NotImplementedError


class AllOf(_Composite):
    """Persons in every one of the parts (intersection)."""

    kind = "all"
    operator = "AND"

    @staticmethod
    def combine(a: sparse.csr_matrix, b: sparse.csr_matrix) -> sparse.csr_matrix:
        return a.multiply(b)


class AnyOf(_Composite):
    """Persons in at least one of the parts (union)."""

    kind = "any"
    operator = "OR"

    @staticmethod
    def combine(a: sparse.csr_matrix, b: sparse.csr_matrix) -> sparse.csr_matrix:
        return a.maximum(b)


_MAX_DEPTH = 32


def _rebuilt(definition: Any, what: str, depth: int = 0) -> Definition:
    """A fresh copy of a definition made by its constructors: a TopicSegment, or a declared composite kind of
    such copies. Any other type, a subclass that declares no kind, an object made without ``__init__`` or
    changed since (``object.__new__``, ``object.__setattr__``), or nesting past 32 levels is refused, so what
    the catalog assigns is what it checked."""
    cls = type(definition)
    if depth > _MAX_DEPTH:
        raise ParameterError(f"{what}: composites nest deeper than {_MAX_DEPTH} levels")
    if cls is TopicSegment:
        try:
            return TopicSegment(definition.node_id, definition.rule, definition.k, definition.min_share)
        except AttributeError:
            raise ParameterError(f"{what}: a TopicSegment that its constructor did not make") from None
    if _KINDS.get(getattr(cls, "kind", "")) is not cls:
        names = ["TopicSegment", *(k.__name__ for k in _KINDS.values())]
        raise ParameterError(f"{what} must be {', '.join(names[:-1])} or {names[-1]}, got {cls.__name__}")
    parts = getattr(definition, "parts", None)
    if not isinstance(parts, tuple) or len(parts) < 2:
        raise ParameterError(f"{what}: a {cls.__name__} made without its constructor (no parts)")
    copy = object.__new__(cls)  # the parts are checked (and copied) here, once each: not again by __init__
    object.__setattr__(copy, "parts", tuple(_rebuilt(part, f"{cls.__name__} parts", depth + 1) for part in parts))
    return copy  # type: ignore[return-value]  # a declared kind (AllOf, AnyOf, or one added in the source)


Definition = Union[TopicSegment, AllOf, AnyOf]  # noqa: UP007 - a runtime alias


def _leaves(definition: Definition) -> Iterator[TopicSegment]:
    if isinstance(definition, TopicSegment):
        yield definition
    else:
        for part in definition.parts:
            yield from _leaves(part)


def rule_qualifier(segment: TopicSegment) -> str:
    """``""`` for the default rule (top 5), else ``"top 2"`` or ``"share >= 10%"``."""
    if segment.rule == "top_k":
        return "" if segment.k == DEFAULT_K else f"top {segment.k}"
    return f"share >= {segment.min_share * 100:g}%"


def local_id(definition: Definition) -> str:
    """The part of a segment id after ``<taxonomy>:``, in ``[A-Za-z0-9_-]{1,64}``.

    A top-5 topic segment is its node id (``"483"``); other rules add ``-top<k>`` or ``-share<percent>``;
    composites are written in prefix form with their arity (``"all2-483-597"``), or, past 64 characters,
    as ``"all-"``/``"any-"`` and a 12-hex-digit BLAKE2b digest of that form.
    """
    if isinstance(definition, TopicSegment):
        if definition.rule == "top_k":
            return definition.node_id if definition.k == DEFAULT_K else f"{definition.node_id}-top{definition.k}"
        return f"{definition.node_id}-share{definition.min_share * 100:g}".replace(".", "_")
    op = definition.kind
    full = f"{op}{len(definition.parts)}-" + "-".join(local_id(p) for p in definition.parts)
    if len(full) <= 64:
        return full
    return f"{op}-{hashlib.blake2b(full.encode(), digest_size=6).hexdigest()}"


class SegmentCatalog:
    """An ordered, validated set of rule-based segment definitions over one safe taxonomy.

    Parameters
    ----------
    definitions : iterable of TopicSegment, AllOf, AnyOf
    safe_taxonomy : SafeTaxonomy
    screen : ProxyScreen, optional, keyword-only
        Segments screened as sensitive proxies (from a DP :func:`audit_proxies`, or curated by hand). A
        definition whose segment id the screen blocks is refused; the screen's DP audits become
        ``definitions`` of the assignments, so each advertiser is charged their ε once.

    Raises
    ------
    SensitiveCategoryError
        A definition names a sensitive node or a descendant of one (the message names the class), or its
        segment is blocked by ``screen``.
    TaxonomyError
        A definition names a node the taxonomy does not have.
    ParameterError
        No definitions, or two definitions with the same segment id.
    """

    def __init__(self, definitions: Iterable[Definition], safe_taxonomy: SafeTaxonomy, *,
                 screen: ProxyScreen | None = None) -> None:
        if screen is not None and not isinstance(screen, ProxyScreen):
            raise ParameterError(f"screen must be a ProxyScreen or None, got {type(screen).__name__}")
        self.definitions: tuple[Definition, ...] = tuple(_rebuilt(d, "definitions") for d in definitions)
        self.safe_taxonomy = safe_taxonomy
        self.screen = screen
        if not self.definitions:
            raise ParameterError("definitions must hold at least one segment definition, got none")
        # the catalog's own copies: what it checked is what it assigns, whatever is done to the objects it shows
        self._own = tuple(_rebuilt(d, "definitions") for d in self.definitions)
        self._leaves = tuple(dict.fromkeys(leaf for d in self._own for leaf in _leaves(d)))
        self._leaf_nodes = self._resolve([leaf.node_id for leaf in self._leaves])
        self._leaf_index = {leaf: i for i, leaf in enumerate(self._leaves)}
        self.segments: tuple[SegmentInfo, ...] = tuple(self._describe(d) for d in self._own)
        self._check_unique_ids()
        self._check_screen()
        self._sealed = True

    @classmethod
    def default(cls, safe_taxonomy: SafeTaxonomy, *, k: int = DEFAULT_K,
                screen: ProxyScreen | None = None) -> SegmentCatalog:
        """Every safe tier-1 and tier-2 node as a top-``k`` topic segment (what ``adtarget run`` releases),
        without the segments ``screen`` blocks."""
        taxonomy = safe_taxonomy.taxonomy
        nodes = np.flatnonzero(np.asarray(safe_taxonomy.safe_mask) & (taxonomy.tier <= 2))
        blocked = set(screen.blocked) if isinstance(screen, ProxyScreen) else set()  # __init__ refuses others
        topics = [TopicSegment(str(taxonomy.ids[i]), k=k) for i in nodes]
        kept = [t for t in topics if f"{taxonomy.name}:{local_id(t)}" not in blocked]
        return cls(kept, safe_taxonomy, screen=screen)

    @property
    def taxonomy(self) -> Any:
        return self.safe_taxonomy.taxonomy

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_sealed", False):
            raise AttributeError("SegmentCatalog is immutable: build a new one")
        object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return len(self.definitions)

    def __iter__(self) -> Iterator[Definition]:
        return iter(self.definitions)

    def __repr__(self) -> str:
        return f"SegmentCatalog(n_segments={len(self)}, taxonomy={self.taxonomy.name!r})"

    def _resolve(self, node_ids: list[str]) -> np.ndarray:
        taxonomy = self.taxonomy
        nodes = np.asarray(taxonomy.index_of(np.asarray(node_ids, dtype=str)), dtype=np.int32)
        unknown = np.flatnonzero(nodes < 0)
        if unknown.size:
            raise TaxonomyError(f"node_id {node_ids[unknown[0]]!r} is not a node of taxonomy {taxonomy.name!r} "
                                f"({unknown.size} unknown node ids in the definitions)")
        unsafe = np.flatnonzero(~np.asarray(self.safe_taxonomy.safe_mask)[nodes])
        if unsafe.size:
            self._raise_sensitive(node_ids[unsafe[0]], int(nodes[unsafe[0]]))
        return nodes

    def _raise_sensitive(self, node_id: str, node: int) -> None:
        safe = self.safe_taxonomy
        code = int(np.asarray(safe.sensitive_class)[node])
        cls = safe.profile.classes[code] if code >= 0 else "sensitive"
        raise SensitiveCategoryError(
            f"node_id {node_id!r} ({self.taxonomy.names[node]}) is in the sensitive class {cls!r} of profile "
            f"{safe.profile.name!r}: segments cannot be defined on sensitive categories or their descendants")

    def _describe(self, definition: Definition) -> SegmentInfo:
        taxonomy = self.taxonomy
        local = local_id(definition)
        if isinstance(definition, TopicSegment):
            node = int(self._leaf_nodes[self._leaf_index[definition]])
            name, path = topic_name(taxonomy, node)
            qualifier = rule_qualifier(definition)
            return SegmentInfo(f"{taxonomy.name}:{local}", f"{name} ({qualifier})" if qualifier else name, path)
        return SegmentInfo(f"{taxonomy.name}:{local}",
                           composite_name(definition.operator, [self._describe(p).name for p in definition.parts]))

    def _check_unique_ids(self) -> None:
        seen: dict[str, int] = {}
        for i, info in enumerate(self.segments):
            if info.segment_id in seen:
                raise ParameterError(f"definitions {seen[info.segment_id]} and {i} both define segment "
                                     f"{info.segment_id!r}; segment ids must be unique in a catalog")
            seen[info.segment_id] = i

    def _check_screen(self) -> None:
        if self.screen is None:
            return
        blocked = [s.segment_id for s in self.segments if not self.screen.allows(s.segment_id)]
        if blocked:
            raise SensitiveCategoryError(f"segment {blocked[0]!r} is screened as a sensitive proxy by {self.screen} "
                                         f"({len(blocked)} such definition(s)); leave it out of the catalog")

    # --- assignment ---------------------------------------------------------------------------------------
    @uses_buffers
    def assign(self, data: EligibleEvents | InterestProfiles, *,
               profiler: InterestProfiler | None = None) -> SegmentAssignments:
        """Which eligible person belongs to which segment (sparse, vectorised; no per-person loop).

        Parameters
        ----------
        data : EligibleEvents or InterestProfiles
            Events are first turned into profiles with ``profiler`` (default ``InterestProfiler()``).
        profiler : InterestProfiler, optional
            Cloned before use, never modified.

        Returns
        -------
        SegmentAssignments
            Personal Information, rows aligned with the eligible persons, columns in definition order.
        """
        profiles = self._profiles(data, profiler)
        leaves = leaf_membership(profiles, self._leaf_nodes, self._leaf_params())
        topic = {i: d for i, d in enumerate(self._own) if isinstance(d, TopicSegment)}
        composite = {i: d for i, d in enumerate(self._own) if not isinstance(d, TopicSegment)}
        blocks = [columns(leaves, [self._leaf_index[d] for d in topic.values()])] if topic else []
        blocks += [self._column(d, leaves) for d in composite.values()]
        stacked = blocks[0] if len(blocks) == 1 else sparse.hstack(blocks, format="csr")
        membership = columns(stacked, np.argsort(np.asarray([*topic, *composite]), kind="stable"))
        audits = tuple(self.screen.audits) if self.screen is not None else ()
        return make_assignments(profiles.persons, membership, self.segments, lineage=profiles.lineage,
                                definitions=audits)

    def _leaf_params(self) -> dict[str, np.ndarray]:
        return {"top_k": np.array([leaf.rule == "top_k" for leaf in self._leaves]),
                "k": np.array([leaf.k for leaf in self._leaves], dtype=np.int64),
                "min_share": np.array([leaf.min_share for leaf in self._leaves], dtype=np.float64)}

    def _column(self, definition: Definition, leaves: sparse.csr_matrix) -> sparse.csr_matrix:
        if isinstance(definition, TopicSegment):
            return leaves[:, [self._leaf_index[definition]]]
        columns = [self._column(p, leaves) for p in definition.parts]
        out = columns[0]
        for column in columns[1:]:
            out = _COMBINE[type(definition).kind](out, column)
        return sparse.csr_matrix(out, dtype=bool)

    def _profiles(self, data: Any, profiler: InterestProfiler | None) -> InterestProfiles:
        if is_eligible_events(data):
            from sklearn.base import clone

            data = clone(profiler if profiler is not None else InterestProfiler()).fit_transform(data)
        if not isinstance(data, InterestProfiles):
            raise ParameterError(f"data must be EligibleEvents or InterestProfiles, got {type(data).__name__}")
        profiles_matrix(data)  # refuses profiles build_profiles did not make
        self._check_profiles(data)
        return data

    def _check_profiles(self, profiles: InterestProfiles) -> None:
        safe = profiles.safe_taxonomy
        if safe.taxonomy != self.taxonomy or not np.array_equal(safe.safe_mask, self.safe_taxonomy.safe_mask):
            raise ParameterError(f"data: profiles are over taxonomy {safe.taxonomy.name!r} with another "
                                 f"sensitivity profile or taxonomy than the catalog ({self.taxonomy.name!r})")
        level_tier = LEVELS[profiles.level]
        deepest = int(self.taxonomy.tier[self._leaf_nodes].max())
        if level_tier is not None and level_tier < deepest:
            raise ParameterError(f"data: profiles at level {profiles.level!r} are too coarse for segments on "
                                 f"tier-{deepest} nodes; build them at level 'node' or 'tier{deepest}'")


def columns(matrix: sparse.csr_matrix, cols: Any) -> sparse.csr_matrix:
    """``matrix[:, cols]``, or ``matrix`` itself when ``cols`` selects every column in order (same entries)."""
    cols = np.asarray(cols, dtype=np.int64)
    if np.array_equal(cols, np.arange(matrix.shape[1])):
        return matrix
    return matrix[:, cols]


# --- assignment kernel (inner: it trusts validated catalogs and profiles) -----------------------------------
def leaf_membership(profiles: InterestProfiles, nodes: np.ndarray, params: dict[str, np.ndarray]) -> sparse.csr_matrix:
    """Persons × leaves bool membership of topic segments: one compiled pass over the profile rows.

    Leaves are grouped in blocks by (tier, rule), as the sparse formulation this replaces grouped them, and
    the result has its entry order (see ``adtarget/segments/_kernels.py``).
    """
    from adtarget.segments import _kernels as kernels

    matrix = profiles_matrix(profiles)
    n_nodes = profiles.taxonomy.n_nodes
    blocks = leaf_blocks(profiles.taxonomy.tier[nodes], params["top_k"])
    tier_list = sorted({tier for tier, _, _ in blocks})
    targets = np.stack([column_targets(profiles, t) for t in tier_list])
    leaf_table = emission_table(nodes, blocks, n_nodes, index_dtype(matrix))
    shares = not all(top_k for _, top_k, _ in blocks)
    total = np.asarray(matrix.sum(axis=1), dtype=np.float64).ravel() if shares else np.zeros(0)
    bound = membership_bound(matrix, blocks, leaf_table, params["k"])
    indptr = np.empty(matrix.shape[0] + 1, dtype=np.int32 if bound <= np.iinfo(np.int32).max else np.int64)
    leaf = np.empty(bound + 1, dtype=np.int32)  # + 1: the kernel writes a leaf before it knows it is kept
    nnz = kernels.leaf_rows(
        matrix.indptr, matrix.indices, np.asarray(matrix.data, dtype=np.float64), targets,
        *block_arrays(blocks, tier_list, params["k"]), leaf_table, params["k"], params["min_share"], total,
        indptr, leaf)
    dtype = np.int32 if nnz <= np.iinfo(np.int32).max else np.int64
    return sparse.csr_matrix((np.ones(nnz, dtype=bool), leaf[:nnz].astype(dtype, copy=False),
                              indptr.astype(dtype, copy=False)), shape=(matrix.shape[0], nodes.size))


def membership_bound(matrix: sparse.csr_matrix, blocks: list[tuple[int, bool, np.ndarray]],
                     leaf_table: np.ndarray, k: np.ndarray) -> int:
    """At most how many memberships ``leaf_rows`` finds: per block, no more than the profile entries times the
    block's most leaves per node, nor the rows times the block's leaves (for ``top_k``: times its largest k)."""
    bound = 0
    for b, (_, top_k, sel) in enumerate(blocks):
        per_node = int((leaf_table[b] >= 0).sum(axis=0).max())
        per_row = min(sel.size, int(k[sel].max()) * per_node) if top_k else sel.size
        bound += min(matrix.nnz * per_node, matrix.shape[0] * per_row)
    return bound


def block_arrays(blocks: list[tuple[int, bool, np.ndarray]], tier_list: list[int],
                 k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per block: its row in the kernel's ``targets``, whether it is ``top_k``, the smallest k of its leaves."""
    tier_row = np.array([tier_list.index(tier) for tier, _, _ in blocks], dtype=np.int64)
    top_k = np.array([is_top_k for _, is_top_k, _ in blocks], dtype=bool)
    min_k = np.array([k[sel].min() for _, _, sel in blocks], dtype=np.int64)
    return tier_row, top_k, min_k


def leaf_blocks(tiers: np.ndarray, top_k: np.ndarray) -> list[tuple[int, bool, np.ndarray]]:
    """(tier, is top_k, leaf indices) of each non-empty block, by tier, ``top_k`` before ``share``."""
    blocks = []
    for tier in np.unique(tiers):
        for is_top_k in (True, False):
            sel = np.flatnonzero((tiers == tier) & (top_k == is_top_k))
            if sel.size:
                blocks.append((int(tier), is_top_k, sel))
    return blocks


def column_targets(profiles: InterestProfiles, tier: int) -> np.ndarray:
    """The tier-``tier`` node each profile column counts in (int32), -1 for columns shallower than ``tier``."""
    taxonomy = profiles.taxonomy
    target = taxonomy.rollup(profiles.columns, tier)
    return np.where(taxonomy.tier[target] == tier, target, -1).astype(np.int32)


def index_dtype(matrix: sparse.csr_matrix) -> type:
    """The index dtype scipy gives the tier scores of ``matrix`` (int32 unless its indices need int64)."""
    big = matrix.indices.dtype == np.int64 or matrix.indptr.dtype == np.int64
    return np.int64 if big or matrix.nnz > np.iinfo(np.int32).max else np.int32


def emission_table(nodes: np.ndarray, blocks: list[tuple[int, bool, np.ndarray]], n_nodes: int,
                   idx_dtype: type) -> np.ndarray:
    """Per block, the leaves of each node in the order scipy's column selection emits them (int32).

    ``table[b, :, x]`` lists node ``x``'s leaves in block ``b``, -1 past the last. ``matrix[:, cols]`` writes,
    for each stored node, its positions in ``cols`` in ``np.argsort(cols)`` order (quicksort: equal nodes, i.e.
    one node with several rules, in that sort's order).
    """
    per_block = []
    for _, _, sel in blocks:
        cols: np.ndarray = np.asarray(nodes[sel], dtype=idx_dtype)
        order = np.argsort(cols)
        cols = cols[order]
        layer = np.arange(cols.size) - np.searchsorted(cols, cols)  # the leaf's place among its node's leaves
        per_block.append((cols, layer, sel[order]))
    n_layers = max(int(layer.max()) for _, layer, _ in per_block) + 1
    table = np.full((len(blocks), n_layers, n_nodes), -1, dtype=np.int32)
    for b, (cols, layer, leaves) in enumerate(per_block):
        table[b, layer, cols] = leaves
    return table
