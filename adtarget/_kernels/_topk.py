"""Compiled kernel of rule-based segment assignment: per-person tier rollups, top-k ranks and shares in one pass.

:func:`leaf_rows` replaces, row by row, what ``leaf_membership`` did with whole-matrix scipy calls (a sparse
matmul per tier, one global sort for the ranks, column selections, a stack) and writes the same CSR, entry
order included:

* a tier-``t`` score is the sum of the person's profile entries whose column rolls up to a tier-``t`` node,
  added in stored order starting from 0.0, zero sums dropped (scipy's ``csr_matmat``, which also lists a
  row's nodes in reverse order of first touch: the order of the ``share`` blocks);
* the rank of a node in its row is 1 + the number of nodes with a greater score or an equal score and a
  lower index (NaN above everything, NaNs equal, as ``np.unique`` orders them); ``top_k`` blocks list the row's
  nodes in ascending order;
* each node's leaves come in a block's emission order (``emit_ptr``/``emit_leaf``, computed by the caller with
  the ``np.argsort`` scipy's column selection uses).

The row loop has few data-dependent branches (they are what costs here: a row has ~10 entries): first touches
are counted, not tested; ranks are counted over integer keys that order like the scores; a leaf is written and
kept or overwritten. Blocks are (tier, rule) groups of leaves, in the caller's order. Kernels trust their inputs.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["leaf_rows"]

_NAN_KEY = np.iinfo(np.int64).max  # NaN ranks above everything, NaNs equal
_LOW_BITS = np.int64(np.iinfo(np.int64).max)


@numba.njit(cache=True, nogil=True)
def _tier_scores(indices: np.ndarray, data: np.ndarray, start: int, stop: int, target: np.ndarray, tier: int,
                 stamp: int, seen: np.ndarray, sums: np.ndarray, touched: np.ndarray) -> int:
    """Add the row's entries into ``sums`` (zero on entry); ``touched[:m]`` lists nodes in first-touch order.

    ``target[tier]`` maps a column to its node, or to the sentinel node ``seen.size - 1`` (stamped by the
    caller, so never listed) when the column does not count at this tier.
    """
    m = 0
    for jj in range(start, stop):
        node = target[tier, indices[jj]]
        touched[m] = node
        m += seen[node] != stamp
        seen[node] = stamp
        sums[node] += data[jj]
    return m


@numba.njit(cache=True, nogil=True)
def _nonzero(touched: np.ndarray, m: int, sums: np.ndarray, cand: np.ndarray, score: np.ndarray) -> tuple[int, bool]:
    """The touched nodes with a non-zero score, in first-touch order, into ``cand``/``score``; zeroes ``sums``.

    Returns their number and whether first-touch order is ascending.
    """
    n, ascending, last = 0, True, -1
    for i in range(m):
        x = touched[i]
        s = sums[x]
        cand[n], score[n], sums[x] = x, s, 0.0
        ascending &= x > last
        last = x
        n += s != 0
    return n, ascending


@numba.njit(cache=True, nogil=True)
def _sort_by_node(cand: np.ndarray, score: np.ndarray, n: int, first_cand: np.ndarray,
                  first_score: np.ndarray) -> None:
    """Sort ``cand[:n]`` (distinct nodes) ascending, scores alongside; first-touch order kept in ``first_*``."""
    for j in range(n):
        x, s, i = cand[j], score[j], j
        first_cand[j], first_score[j] = x, s
        while i > 0 and cand[i - 1] > x:
            cand[i], score[i] = cand[i - 1], score[i - 1]
            i -= 1
        cand[i], score[i] = x, s


@numba.njit(cache=True, nogil=True)
def _ranks(score: np.ndarray, bits: np.ndarray, n: int, min_k: int, key: np.ndarray, rank: np.ndarray) -> None:
    """Rank of each of ``score[:n]`` (nodes ascending): 1 + the greater scores + the equal ones before it.

    ``bits`` is ``score`` viewed as int64; a key orders like the score (sign-magnitude to two's complement).
    With at most ``min_k`` scores every rank is within every leaf's k: they are all set to 1.
    """
    if n <= min_k:
        for i in range(n):
            rank[i] = 1
        return
    for i in range(n):
        b = bits[i]
        key[i] = _NAN_KEY if score[i] != score[i] else b ^ ((b >> 63) & _LOW_BITS)
    for i in range(n):
        ki, r = key[i], 1
        for j in range(n):
            r += (key[j] > ki) | ((key[j] == ki) & (j < i))
        rank[i] = r


@numba.njit(cache=True, nogil=True)
def _emit_top_k(cand: np.ndarray, rank: np.ndarray, n: int, emit_ptr: np.ndarray, b: int, emit_leaf: np.ndarray,
                k: np.ndarray, out: np.ndarray, nnz: int) -> int:
    """Append the row's ``top_k`` memberships of one block (nodes ascending); returns the new ``nnz``."""
    for i in range(n):
        for e in range(emit_ptr[b, cand[i]], emit_ptr[b, cand[i] + 1]):
            leaf = emit_leaf[e]
            out[nnz] = leaf
            nnz += rank[i] <= k[leaf]
    return nnz


@numba.njit(cache=True, nogil=True)
def _emit_share(cand: np.ndarray, score: np.ndarray, n: int, total: float, emit_ptr: np.ndarray, b: int,
                emit_leaf: np.ndarray, min_share: np.ndarray, out: np.ndarray, nnz: int) -> int:
    """Append the row's ``share`` memberships of one block (nodes in reverse first-touch order)."""
    for i in range(n - 1, -1, -1):
        for e in range(emit_ptr[b, cand[i]], emit_ptr[b, cand[i] + 1]):
            leaf = emit_leaf[e]
            out[nnz] = leaf
            nnz += score[i] >= min_share[leaf] * total
    return nnz


@numba.njit(cache=True, nogil=True)
def leaf_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, targets: np.ndarray,
              block_tier: np.ndarray, block_top_k: np.ndarray, block_k: np.ndarray, emit_ptr: np.ndarray,
              emit_leaf: np.ndarray, k: np.ndarray, min_share: np.ndarray, total: np.ndarray,
              out_indptr: np.ndarray, out: np.ndarray) -> int:
    """Persons × leaves membership as CSR into ``out_indptr`` and ``out`` (scipy's entry order); returns nnz.

    Parameters
    ----------
    indptr, indices, data : the profile matrix (CSR; ``data`` float64)
    targets : int32 array (n_tiers, n_columns)
        Tier-``t`` node of each profile column, -1 when the column does not count at that tier.
    block_tier : int64 array (n_blocks,), row of ``targets``; blocks of one tier are consecutive
    block_top_k : bool array (n_blocks,), rule of the block (``top_k``, else ``share``)
    block_k : int64 array (n_blocks,), the smallest ``k`` of a ``top_k`` block's leaves
    emit_ptr : int64 array (n_blocks, n_nodes + 1); emit_leaf : int32 array
        The leaves of node ``x`` in block ``b``: ``emit_leaf[emit_ptr[b, x]:emit_ptr[b, x + 1]]``.
    k, min_share : per leaf; total : float64 per row (row sums; read only by ``share`` blocks)
    out_indptr : int32 or int64 array (n_rows + 1,)
    out : int32 array, at least the number of memberships plus one (a dropped leaf is written, then overwritten)
    """
    n_nodes = emit_ptr.shape[1] - 1
    target = np.where(targets < 0, n_nodes, targets).astype(np.int32)  # n_nodes: the sentinel node
    seen, sums = np.zeros(n_nodes + 1, dtype=np.int64), np.zeros(n_nodes + 1, dtype=np.float64)
    touched, key, rank = np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.int64), np.empty(n_nodes + 1, np.int64)
    cand, first_cand = np.empty(n_nodes + 1, dtype=np.int32), np.empty(n_nodes + 1, dtype=np.int32)
    score, first_score = np.empty(n_nodes + 1, dtype=np.float64), np.empty(n_nodes + 1, dtype=np.float64)
    bits = score.view(np.int64)
    nnz, stamp, n, ascending = 0, 0, 0, True
    out_indptr[0] = 0
    for row in range(indptr.size - 1):
        for b in range(block_tier.size):
            if b == 0 or block_tier[b] != block_tier[b - 1]:
                stamp += 1
                seen[n_nodes] = stamp
                m = _tier_scores(indices, data, indptr[row], indptr[row + 1], target, block_tier[b], stamp, seen,
                                 sums, touched)
                n, ascending = _nonzero(touched, m, sums, cand, score)
                if not ascending:
                    _sort_by_node(cand, score, n, first_cand, first_score)
            if block_top_k[b]:
                _ranks(score, bits, n, block_k[b], key, rank)
                nnz = _emit_top_k(cand, rank, n, emit_ptr, b, emit_leaf, k, out, nnz)
            elif ascending:
                nnz = _emit_share(cand, score, n, total[row], emit_ptr, b, emit_leaf, min_share, out, nnz)
            else:
                nnz = _emit_share(first_cand, first_score, n, total[row], emit_ptr, b, emit_leaf, min_share, out,
                                  nnz)
        out_indptr[row + 1] = nnz
    return nnz
