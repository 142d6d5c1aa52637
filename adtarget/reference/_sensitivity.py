"""Sensitivity profiles (policy promise P5): which taxonomy nodes reveal special categories of data.

A :class:`SensitivityProfile` names its classes and, per taxonomy (by name), the root node ids of each class.
A node is sensitive when it is a root or descends from one; its class is the class of its deepest such root.
:class:`SafeTaxonomy` binds a taxonomy to a profile: the gate drops events on unsafe nodes, and segment
definitions go through :meth:`SafeTaxonomy.check_node`. The bundled node lists are in
:mod:`adtarget.reference._sensitivity_tables`, each root with its name (a test checks the names, so a mistyped id cannot
slip through); the reasoning for every borderline node is in ``docs/sensitivity.md``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adtarget._core._provenance import frozen, readonly
from adtarget.exceptions import ParameterError, SensitiveCategoryError, TaxonomyError
from adtarget.reference._sensitivity_tables import (
    AGE_RESTRICTED,
    IAB_SCD_NOT_SPECIAL,
    PROFILE_NAMES,
    profile_parts,
)
from adtarget.reference._taxonomy import Taxonomy

__all__ = ["IAB_SCD_NOT_SPECIAL", "PROFILE_NAMES", "SafeTaxonomy", "SensitivityProfile", "age_restricted_mask",
           "checked_profile", "checked_safe_taxonomy"]

_CLASS_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_MAX_CLASSES = int(np.iinfo(np.int8).max)


@dataclass(frozen=True)
class SensitivityProfile:
    """A named set of sensitive classes and their root nodes per taxonomy.

    Parameters
    ----------
    name : str
        Profile name, as it appears in reports (``policy.sensitivity_profile``).
    description : str
        One line saying what the profile protects.
    classes : tuple of str
        Class names (lower-case identifiers, distinct, at most 127); a node's class code is the index here.
    roots : mapping
        ``{taxonomy name: {class: [root node ids]}}``. Every class key must be in ``classes``; a class may
        be absent or empty for a taxonomy that has no such node, but a taxonomy absent from ``roots`` is
        refused by :meth:`class_of` (it is never silently treated as all-safe). An id may be listed under
        one class only per taxonomy; a root may lie below another class's root (the deeper one wins).

    Raises
    ------
    ParameterError
        Bad name, description, classes or roots (the message names which and what was received).
    """

    name: str
    description: str
    classes: tuple[str, ...]
    roots: Mapping[str, Mapping[str, tuple[str, ...]]] = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"SensitivityProfile.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.description, str):
            raise ParameterError(f"SensitivityProfile.description must be a string, got {self.description!r}")
        object.__setattr__(self, "classes", _check_classes(self.name, self.classes))
        object.__setattr__(self, "roots", _normalise_roots(self.name, self.classes, self.roots))

    def __hash__(self) -> int:
        frozen = tuple((t, tuple(m.items())) for t, m in self.roots.items())
        return hash((self.name, self.description, self.classes, frozen))

    def __reduce__(self) -> tuple[Any, ...]:
        plain = {t: dict(m) for t, m in self.roots.items()}
        return (SensitivityProfile, (self.name, self.description, self.classes, plain))

    def __str__(self) -> str:
        return (f"sensitivity profile {self.name!r} ({self.description}): classes {', '.join(self.classes)}; "
                f"taxonomies {', '.join(self.roots) or 'none'}")

    @property
    def taxonomies(self) -> tuple[str, ...]:
        """Names of the taxonomies this profile maps."""
        return tuple(self.roots)

    def covers(self, taxonomy: Taxonomy) -> bool:
        """Whether the profile has a mapping for ``taxonomy`` (by name)."""
        return taxonomy.name in self.roots

    def class_of(self, taxonomy: Taxonomy) -> np.ndarray:
        """Class code per node (int8, read-only): -1 safe, else an index into :attr:`classes`.

        Raises
        ------
        TaxonomyError
            The profile has no mapping for this taxonomy, or one of its root ids is not in the taxonomy.
        """
        return _classify(self, taxonomy)[0]

    def root_of(self, taxonomy: Taxonomy) -> np.ndarray:
        """Per node, the index of the sensitive root it falls under (int32, read-only; -1 for safe nodes)."""
        return _classify(self, taxonomy)[1]

    def sensitive_mask(self, taxonomy: Taxonomy) -> np.ndarray:
        """True for each node that is sensitive under this profile (bool, read-only)."""
        return _classify(self, taxonomy)[2]

    def with_taxonomy(self, taxonomy: Taxonomy, roots: Mapping[str, Sequence[str | int]]) -> SensitivityProfile:
        """A copy of this profile that also maps ``taxonomy`` (same classes; roots checked now)."""
        table = {t: dict(m) for t, m in self.roots.items()}
        table[taxonomy.name] = {c: tuple(str(i) for i in ids) for c, ids in roots.items()}
        profile = SensitivityProfile(self.name, self.description, self.classes, table)
        profile.class_of(taxonomy)
        return profile

    @classmethod
    def from_nodes(cls, name: str, taxonomy: Taxonomy, roots: Mapping[str, Sequence[str | int]], *,
                   description: str = "") -> SensitivityProfile:
        """A profile for one taxonomy from ``{class: [root node ids]}`` (classes in the mapping's order).

        This is the explicit way to use a taxonomy the bundled profiles do not map; an empty mapping is
        allowed and says, on the record, that every node is safe.
        """
        classes = tuple(roots)
        table = {taxonomy.name: {c: tuple(str(i) for i in ids) for c, ids in roots.items()}}
        profile = cls(name, description or f"custom profile for {taxonomy.name}", classes, table)
        profile.class_of(taxonomy)
        return profile

    @classmethod
    def named(cls, name: str) -> SensitivityProfile:
        """A bundled profile: ``"default"``, ``"gdpr_art9"`` or ``"strict_minors"``.

        Raises
        ------
        ParameterError
            Unknown name (the message lists the known ones).
        """
        if name not in PROFILE_NAMES:
            raise ParameterError(f"sensitivity profile must be one of {list(PROFILE_NAMES)}, got {name!r}")
        return _bundled(name)


@dataclass(frozen=True)
class SafeTaxonomy:
    """A taxonomy bound to a sensitivity profile: what may be used for ads and what may not.

    Parameters
    ----------
    taxonomy : Taxonomy
    profile : SensitivityProfile
        Must map ``taxonomy`` (else :class:`~adtarget.exceptions.TaxonomyError`).

    Attributes
    ----------
    safe_mask : numpy.ndarray of bool
        True for nodes that may be used (read-only).
    sensitive_class : numpy.ndarray of int8
        -1 for safe nodes, else the class index into ``profile.classes`` (read-only).
    """

    taxonomy: Taxonomy
    profile: SensitivityProfile
    safe_mask: np.ndarray = field(init=False, repr=False, compare=False)
    sensitive_class: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.taxonomy, Taxonomy):
            raise ParameterError(f"taxonomy must be a Taxonomy, got {type(self.taxonomy).__name__}")
        if not isinstance(self.profile, SensitivityProfile):
            raise ParameterError(f"profile must be a SensitivityProfile, got {type(self.profile).__name__}")
        _check_bundled_pair(self.taxonomy, self.profile)
        cls, _, sensitive = _classify(self.profile, self.taxonomy)
        object.__setattr__(self, "safe_mask", readonly(~sensitive))
        object.__setattr__(self, "sensitive_class", cls)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SafeTaxonomy, (self.taxonomy, self.profile))

    @classmethod
    def default(cls) -> SafeTaxonomy:
        """IAB Content 2.2 under the ``default`` profile."""
        return cls(Taxonomy.default(), SensitivityProfile.named("default"))

    @property
    def classes(self) -> tuple[str, ...]:
        """The profile's class names (``sensitive_class`` indexes them)."""
        return self.profile.classes

    def is_safe(self, nodes: Any) -> np.ndarray:
        """Per node index: may it be used? (bool; -1 and out-of-range indices are not safe)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        valid = (nodes >= 0) & (nodes < self.taxonomy.n_nodes)
        return valid & self.safe_mask[np.where(valid, nodes, 0)]

    def check_node(self, node_id: str | int) -> int:
        """The index of a safe node id.

        Raises
        ------
        TaxonomyError
            ``node_id`` is not in the taxonomy.
        SensitiveCategoryError
            The node is, or descends from, a sensitive root (the message names the class and the root).
        """
        i = int(self.taxonomy.index_of(node_id)) if isinstance(node_id, str | int) else -1
        if i < 0:
            raise TaxonomyError(f"node id {node_id!r} is not in taxonomy {self.taxonomy.name!r}")
        c = int(self.sensitive_class[i])
        if c >= 0:
            root = int(self.profile.root_of(self.taxonomy)[i])
            raise SensitiveCategoryError(
                f"node {node_id!r} ({' > '.join(self.taxonomy.path(i))}) is sensitive under profile "
                f"{self.profile.name!r}: class {self.classes[c]!r}, via root {str(self.taxonomy.ids[root])!r} "
                f"({self.taxonomy.names[root]})")
        return i

    def __str__(self) -> str:
        counts = np.bincount(self.sensitive_class[self.sensitive_class >= 0], minlength=len(self.classes))
        per_class = ", ".join(f"{c} {n}" for c, n in zip(self.classes, counts.tolist(), strict=True) if n)
        n_sensitive = int(np.count_nonzero(~self.safe_mask))
        return (f"{self.taxonomy.name} under sensitivity profile {self.profile.name!r}: {n_sensitive} of "
                f"{self.taxonomy.n_nodes} nodes sensitive ({per_class or 'none'})")


# --- validation and classification ----------------------------------------------------------------------
def _check_classes(profile: str, classes: Any) -> tuple[str, ...]:
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise ParameterError(f"SensitivityProfile {profile!r}: classes must be a sequence of names, "
                             f"got {classes!r}")
    out = tuple(classes)
    bad = [c for c in out if not isinstance(c, str) or not _CLASS_NAME.match(c)]
    if bad:
        raise ParameterError(f"SensitivityProfile {profile!r}: class names must be lower-case identifiers, "
                             f"got {bad[0]!r}")
    if len(set(out)) != len(out) or len(out) > _MAX_CLASSES:
        raise ParameterError(f"SensitivityProfile {profile!r}: classes must be distinct and at most "
                             f"{_MAX_CLASSES}, got {list(out)}")
    return out


def _normalise_roots(profile: str, classes: tuple[str, ...], roots: Any) -> Mapping[str, Mapping[str, tuple]]:
    from types import MappingProxyType

    if not isinstance(roots, Mapping):
        raise ParameterError(f"SensitivityProfile {profile!r}: roots must be a mapping "
                             f"{{taxonomy: {{class: [ids]}}}}, got {type(roots).__name__}")
    out: dict[str, Mapping[str, tuple[str, ...]]] = {}
    for tax, per_class in roots.items():
        if not isinstance(per_class, Mapping):
            raise ParameterError(f"SensitivityProfile {profile!r}: roots[{tax!r}] must be a mapping "
                                 f"{{class: [ids]}}, got {type(per_class).__name__}")
        unknown = [c for c in per_class if c not in classes]
        if unknown:
            raise ParameterError(f"SensitivityProfile {profile!r}: roots[{tax!r}] names class {unknown[0]!r}, "
                                 f"which is not in classes {list(classes)}")
        ids = {c: _id_tuple(profile, tax, c, per_class[c]) for c in classes if c in per_class}
        _check_disjoint(profile, tax, ids)
        out[str(tax)] = MappingProxyType(ids)
    return MappingProxyType(out)


def _id_tuple(profile: str, tax: str, cls: str, ids: Any) -> tuple[str, ...]:
    if isinstance(ids, str) or not isinstance(ids, Sequence | np.ndarray):
        raise ParameterError(f"SensitivityProfile {profile!r}: roots[{tax!r}][{cls!r}] must be a list of "
                             f"node ids, got {ids!r}")
    return tuple(str(i) for i in ids)


def _check_disjoint(profile: str, tax: str, ids: Mapping[str, tuple[str, ...]]) -> None:
    seen: dict[str, str] = {}
    for cls, node_ids in ids.items():
        for node_id in node_ids:
            if node_id in seen:
                raise ParameterError(f"SensitivityProfile {profile!r}: roots[{tax!r}] lists node {node_id!r} "
                                     f"under both {seen[node_id]!r} and {cls!r}")
            seen[node_id] = cls


@functools.lru_cache(maxsize=64)
def _classify(profile: SensitivityProfile, taxonomy: Taxonomy) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(class int8, root int32, sensitive bool) per node: the deepest listed root at or above each node."""
    if taxonomy.name not in profile.roots:
        raise TaxonomyError(
            f"sensitivity profile {profile.name!r} has no mapping for taxonomy {taxonomy.name!r} (it maps "
            f"{list(profile.roots) or 'none'}); an unmapped taxonomy is never treated as all-safe: build one "
            f"with SensitivityProfile.from_nodes(...) or profile.with_taxonomy(...)")
    root_class = np.full(taxonomy.n_nodes, -1, dtype=np.int8)
    for code, cls in enumerate(profile.classes):
        ids = profile.roots[taxonomy.name].get(cls, ())
        idx = taxonomy.index_of(np.asarray(ids, dtype=str)) if ids else np.empty(0, dtype=np.int32)
        if np.any(idx < 0):
            missing = [i for i, k in zip(ids, idx.tolist(), strict=True) if k < 0]
            raise TaxonomyError(f"sensitivity profile {profile.name!r}: class {cls!r} root id(s) {missing} "
                                f"are not in taxonomy {taxonomy.name!r}")
        root_class[idx] = code
    anc = taxonomy.ancestor_at_tier  # column t-1: ancestor at tier t, or the node itself past its tier
    at = root_class[anc]
    has = at >= 0
    deepest = anc.shape[1] - 1 - np.argmax(has[:, ::-1], axis=1)
    rows = np.arange(taxonomy.n_nodes)
    sensitive = has.any(axis=1)
    cls_code = np.where(sensitive, at[rows, deepest], -1).astype(np.int8)
    root = np.where(sensitive, anc[rows, deepest], -1).astype(np.int32)
    sealed: tuple[np.ndarray, np.ndarray, np.ndarray] = frozen((cls_code, root, sensitive))  # cached: shared
    return sealed


def age_restricted_mask(taxonomy: Taxonomy) -> np.ndarray:
    """Per node of ``taxonomy``: is it an age-restricted category (alcohol, tobacco, gambling, dating, adult
    content, weapons, nightlife) or under one? (bool, read-only). The bundled taxonomies map them
    (``AGE_RESTRICTED``); a taxonomy of your own maps none, so for it the per-person rule removes nothing —
    use a profile that lists them (``strict_minors``-like, for everyone) if it has such nodes."""
    if taxonomy.name not in AGE_RESTRICTED or not _is_bundled_taxonomy(taxonomy):
        return readonly(np.zeros(taxonomy.n_nodes, dtype=bool))
    return _classify(_age_restricted_profile(), taxonomy)[2]


def _is_bundled_taxonomy(taxonomy: Taxonomy) -> bool:
    from adtarget.reference._taxonomy_files import builtin_names

    return taxonomy.name in builtin_names() and taxonomy == Taxonomy.load(taxonomy.name)


@functools.cache
def _age_restricted_profile() -> SensitivityProfile:
    roots = {t: {c: tuple(i for i, _ in nodes) for c, nodes in table.items()} for t, table in AGE_RESTRICTED.items()}
    return SensitivityProfile("age_restricted", "age-restricted products and content, for adults only",
                              ("age_restricted",), roots)


@functools.cache
def _bundled(name: str) -> SensitivityProfile:
    return SensitivityProfile(name, *profile_parts(name))


def _check_bundled_pair(taxonomy: Taxonomy, profile: SensitivityProfile) -> None:
    """A bundled profile lists node ids of the bundled taxonomies: a different taxonomy under a bundled name
    (other parents, say) would move sensitive nodes out of their roots' subtrees, so it is refused."""
    from adtarget.reference._taxonomy_files import builtin_names

    bundled = profile.name in PROFILE_NAMES and profile == _bundled(profile.name)
    if bundled and taxonomy.name in builtin_names() and taxonomy != Taxonomy.load(taxonomy.name):
        raise TaxonomyError(f"taxonomy {taxonomy.name!r} is not the bundled one of that name, which the bundled "
                            f"profile {profile.name!r} maps; give it another name and a profile of its own "
                            f"(SensitivityProfile.from_nodes)")


def checked_profile(profile: object, what: str = "profile") -> SensitivityProfile:
    """A SensitivityProfile built again from ``profile``'s fields (the class itself only), so one made by
    ``object.__new__`` or changed with ``object.__setattr__`` is refused or consistent; ParameterError."""
    if type(profile) is not SensitivityProfile:
        raise ParameterError(f"{what} must be a SensitivityProfile, got {type(profile).__name__}")
    try:
        return SensitivityProfile(profile.name, profile.description, profile.classes,
                                  {t: dict(m) for t, m in profile.roots.items()})
    except (AttributeError, TypeError, ValueError):
        raise ParameterError(f"{what}: a SensitivityProfile its constructor did not make (or that was "
                             f"changed)") from None


def checked_safe_taxonomy(safe: object) -> SafeTaxonomy:
    """A SafeTaxonomy built again from its taxonomy and profile (each rebuilt), so its masks are computed, not
    taken from the object: what the gate applies cannot be changed by ``object.__setattr__``."""
    from adtarget.reference._taxonomy import rebuilt

    if type(safe) is not SafeTaxonomy:
        raise ParameterError(f"safe_taxonomy must be a SafeTaxonomy, got {type(safe).__name__}")
    taxonomy, profile = getattr(safe, "taxonomy", None), getattr(safe, "profile", None)
    return SafeTaxonomy(rebuilt(taxonomy), checked_profile(profile, "safe_taxonomy.profile"))  # type: ignore[arg-type]
