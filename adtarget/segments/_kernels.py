"""Compiled kernels of rule-based segments: per-person tier rollups, top-k ranks and shares in one pass
(:func:`leaf_rows`), and the check of a membership matrix's structure (:func:`membership_problem`).

:func:`leaf_rows` replaces, row by row, what ``leaf_membership`` did with whole-matrix scipy calls (a sparse
matmul per tier, one global sort for the ranks, column selections, a stack) and writes the same CSR, entry
order included:

* a tier-``t`` score is the sum of the person's profile entries whose column rolls up to a tier-``t`` node,
  added in stored order starting from 0.0, zero sums dropped (scipy's ``csr_matmat``, which also lists a
  row's nodes in reverse order of first touch: the order of the ``share`` blocks);
* the rank of a node in its row is 1 + the number of nodes with a greater score or an equal score and a
  lower index (NaN above everything, NaNs equal, as ``np.unique`` orders them); ``top_k`` blocks list the row's
  nodes in ascending order;
* each node's leaves come in a block's emission order (``leaf_table``, computed by the caller with the
  ``np.argsort`` scipy's column selection uses).

The row loop has few data-dependent branches (they are what costs here: a row has ~10 entries): first touches
are counted, not tested; ranks are counted over integer keys that order like the scores; a leaf is written and
kept or overwritten. The helpers the loop calls take arrays but call no helper that does: numba increfs and
decrefs every array argument of a function that calls another one (atomic operations, per call: that was most
of this kernel's time). Blocks are (tier, rule) groups of leaves, in the caller's order. Kernels trust their
inputs.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["leaf_rows", "membership_problem"]

_INT64_MAX = int(np.iinfo(np.int64).max)


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
def _key(score: float, bits: int) -> int:
    """An int64 that orders like ``score`` (sign-magnitude to two's complement), NaN above everything."""
    return _INT64_MAX if score != score else bits ^ ((bits >> 63) & _INT64_MAX)


@numba.njit(cache=True, nogil=True)
def _emit_all(cand: np.ndarray, n: int, leaf_table: np.ndarray, b: int, out: np.ndarray, nnz: int) -> int:
    """Append every leaf of ``cand[:n]`` in block ``b`` (a ``top_k`` block whose every k is at least ``n``)."""
    for i in range(n):
        for layer in range(leaf_table.shape[1]):
            leaf = leaf_table[b, layer, cand[i]]
            out[nnz] = leaf
            nnz += leaf >= 0
    return nnz


@numba.njit(cache=True, nogil=True)
def _emit_top_k(cand: np.ndarray, score: np.ndarray, bits: np.ndarray, n: int, key: np.ndarray,
                leaf_table: np.ndarray, b: int, k: np.ndarray, out: np.ndarray, nnz: int) -> int:
    """Append the leaves of ``cand[:n]`` (ascending) in block ``b`` whose k their node's rank is within.

    The rank is 1 + the number of greater scores + the number of equal scores before (counted, not sorted:
    rows are short). A node without a leaf in a layer reads ``k[-1]``, which it ignores.
    """
    for i in range(n):
        key[i] = _key(score[i], bits[i])
    for i in range(n):
        ki, rank = key[i], 1
        for j in range(n):
            rank += (key[j] > ki) | ((key[j] == ki) & (j < i))
        for layer in range(leaf_table.shape[1]):
            leaf = leaf_table[b, layer, cand[i]]
            out[nnz] = leaf
            nnz += (leaf >= 0) & (rank <= k[leaf])
    return nnz


@numba.njit(cache=True, nogil=True)
def _emit_share(cand: np.ndarray, score: np.ndarray, n: int, total: float, leaf_table: np.ndarray, b: int,
                min_share: np.ndarray, out: np.ndarray, nnz: int) -> int:
    """Append the row's ``share`` memberships of one block (nodes in reverse first-touch order)."""
    for i in range(n - 1, -1, -1):
        for layer in range(leaf_table.shape[1]):
            leaf = leaf_table[b, layer, cand[i]]
            out[nnz] = leaf
            nnz += (leaf >= 0) & (score[i] >= min_share[leaf] * total)
    return nnz


@numba.njit(cache=True, nogil=True)
def leaf_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, targets: np.ndarray,
              block_tier: np.ndarray, block_top_k: np.ndarray, block_k: np.ndarray, leaf_table: np.ndarray,
              k: np.ndarray, min_share: np.ndarray, total: np.ndarray, out_indptr: np.ndarray,
              out: np.ndarray) -> int:
    """Persons × leaves membership as CSR into ``out_indptr`` and ``out`` (scipy's entry order); returns nnz.

    Parameters
    ----------
    indptr, indices, data : the profile matrix (CSR; ``data`` float64)
    targets : int32 array (n_tiers, n_columns)
        Tier-``t`` node of each profile column, -1 when the column does not count at that tier.
    block_tier : int64 array (n_blocks,), row of ``targets``; blocks of one tier are consecutive
    block_top_k : bool array (n_blocks,), rule of the block (``top_k``, else ``share``)
    block_k : int64 array (n_blocks,), the smallest ``k`` of a ``top_k`` block's leaves
    leaf_table : int32 array (n_blocks, n_layers, n_nodes)
        The leaves of node ``x`` in block ``b`` in emission order: ``leaf_table[b, :, x]``, -1 past the last.
    k, min_share : per leaf; total : float64 per row (row sums; read only by ``share`` blocks)
    out_indptr : int32 or int64 array (n_rows + 1,)
    out : int32 array, at least the number of memberships plus one (a dropped leaf is written, then overwritten)
    """
    n_nodes = leaf_table.shape[2]
    target = np.where(targets < 0, n_nodes, targets).astype(np.int32)  # n_nodes: the sentinel node
    seen, sums = np.zeros(n_nodes + 1, dtype=np.int64), np.zeros(n_nodes + 1, dtype=np.float64)
    touched, key = np.empty(n_nodes + 1, dtype=np.int64), np.empty(n_nodes + 1, dtype=np.int64)
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
            if block_top_k[b] and n <= block_k[b]:  # every rank is at most n
                nnz = _emit_all(cand, n, leaf_table, b, out, nnz)
            elif block_top_k[b]:
                nnz = _emit_top_k(cand, score, bits, n, key, leaf_table, b, k, out, nnz)
            elif ascending:
                nnz = _emit_share(cand, score, n, total[row], leaf_table, b, min_share, out, nnz)
            else:
                nnz = _emit_share(first_cand, first_score, n, total[row], leaf_table, b, min_share, out, nnz)
        out_indptr[row + 1] = nnz
    return nnz


@numba.njit(cache=True, nogil=True)
def membership_problem(indptr: np.ndarray, indices: np.ndarray, n_cols: int) -> int:
    """0 if every row of the CSR structure holds distinct columns in ``[0, n_cols)``; 1 if a row repeats a
    column (canonicalise before counting); 2 if a column index is out of range (refuse). One pass, any order."""
    seen = np.full(n_cols, -1, np.int64)
    for row in range(indptr.size - 1):
        for j in range(indptr[row], indptr[row + 1]):
            col = indices[j]
            if col < 0 or col >= n_cols:
                return 2
            if seen[col] == row:
                return 1
            seen[col] = row
    return 0
