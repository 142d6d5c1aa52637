"""Building a taxonomy tree from id/parent columns: validation, parent indices, ancestors, Euler tour, digest.

Every function takes whole columns (numpy arrays over nodes) and is vectorised; loops run over tiers only.
Errors name the taxonomy and the offending row through ``row_label`` (a file line, a JSON node, or ``row k``).
:class:`adtarget.reference._taxonomy.Taxonomy` calls these once, in its constructor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from adtarget.exceptions import TaxonomyError

__all__ = [
    "ancestor_chain", "ancestor_matrix", "check_columns", "check_duplicates", "content_digest", "euler_tour",
    "parent_index",
]

_MAX_TIER = 127  # tiers are int8


def check_columns(name: str, ids: np.ndarray, parents: np.ndarray, names: np.ndarray, scd: np.ndarray,
                  row_label: Callable[[int], str]) -> None:
    """One value per node in every column; no empty id or name."""
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


def check_duplicates(name: str, sorted_ids: np.ndarray, sorted_pos: np.ndarray,
                     row_label: Callable[[int], str]) -> None:
    """No id twice (``sorted_ids`` is the ids sorted stably, ``sorted_pos`` their rows)."""
    dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
    if dup.size:
        k = int(dup[0])
        first, second = sorted(int(p) for p in sorted_pos[k : k + 2])
        raise TaxonomyError(f"taxonomy {name!r}: duplicate id {str(sorted_ids[k])!r} at {row_label(first)} "
                            f"and {row_label(second)}")


def parent_index(name: str, ids: np.ndarray, parent_ids: np.ndarray, sorted_ids: np.ndarray,
                 sorted_pos: np.ndarray, row_label: Callable[[int], str]) -> np.ndarray:
    """Parent row of each node (int32, -1 for roots); every non-empty parent id must be a node."""
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


def ancestor_chain(name: str, parent: np.ndarray, ids: np.ndarray,
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


def ancestor_matrix(chain: np.ndarray, tier: np.ndarray) -> np.ndarray:
    """``Taxonomy.ancestor_at_tier`` from the ancestor chain: column t-1 is the ancestor at tier t."""
    max_tier = int(tier.max())
    t = np.arange(1, max_tier + 1)[None, :]
    k = tier.astype(np.int64)[:, None] - t  # how many steps up to reach tier t
    nodes = np.arange(tier.size)[:, None]
    anc = chain[np.clip(k, 0, chain.shape[0] - 1), np.broadcast_to(nodes, k.shape)]
    return np.where(k >= 0, anc, nodes).astype(np.int32)


def euler_tour(anc: np.ndarray, tier: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Depth-first order by lexsorting root-to-node paths (shallower prefix first); subtree sizes by counts."""
    n, max_tier = anc.shape
    t = np.arange(1, max_tier + 1)[None, :]
    padded = np.where(t <= tier[:, None], anc, -1)
    preorder = np.lexsort(padded.T[::-1]).astype(np.int32)
    tin = np.empty(n, dtype=np.int32)
    tin[preorder] = np.arange(n, dtype=np.int32)
    size = np.bincount(padded[padded >= 0], minlength=n)
    return preorder, tin, (tin + size).astype(np.int32)


def content_digest(ids: np.ndarray, parents: np.ndarray, names: np.ndarray, scd: np.ndarray) -> str:
    """BLAKE2b-128 of the content (ids, stripped parents, names, scd flags), hex."""
    h = hashlib.blake2b(digest_size=16, person=b"adtarget-taxo")
    for arr in (ids, np.char.strip(parents), names):
        h.update("\x1f".join(arr.tolist()).encode("utf-8") + b"\x1e")
    h.update(np.packbits(scd).tobytes())
    return h.hexdigest()
