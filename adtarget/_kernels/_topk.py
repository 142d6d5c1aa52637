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

Blocks are (tier, rule) groups of leaves, in the caller's order. Kernels trust their inputs.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["leaf_rows"]


@numba.njit(cache=True, nogil=True)
def _ranks_before(a: float, b: float) -> bool:
    """Whether score ``a`` ranks strictly before score ``b`` (descending; NaN first)."""
    if np.isnan(a):
        return not np.isnan(b)
    return a > b


@numba.njit(cache=True, nogil=True)
def _tier_scores(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, row: int, targets: np.ndarray,
                 tier: int, stamp: int, seen: np.ndarray, sums: np.ndarray, touched: np.ndarray) -> int:
    """Accumulate the row's tier scores into ``sums``; ``touched[:m]`` lists nodes in first-touch order."""
    m = 0
    for jj in range(indptr[row], indptr[row + 1]):
        node = targets[tier, indices[jj]]
        if node < 0:
            continue
        if seen[node] != stamp:
            seen[node] = stamp
            sums[node] = 0.0
            touched[m] = node
            m += 1
        sums[node] += data[jj]
    return m


@numba.njit(cache=True, nogil=True)
def _ascending_nonzero(touched: np.ndarray, m: int, sums: np.ndarray, out: np.ndarray) -> int:
    """The touched nodes with a non-zero score, ascending, into ``out``; returns their number."""
    n = 0
    for i in range(m):
        node = touched[i]
        if sums[node] != 0:
            j = n
            while j > 0 and out[j - 1] > node:
                out[j] = out[j - 1]
                j -= 1
            out[j] = node
            n += 1
    return n


@numba.njit(cache=True, nogil=True)
def _select_top(nodes: np.ndarray, n: int, sums: np.ndarray, depth: int, top: np.ndarray) -> int:
    """The ``depth`` best of ``nodes[:n]`` (ascending) into ``top``, best first; returns how many.

    Best: greater score, or equal score and lower node (nodes come in ascending order, so an equal score
    goes after those already kept). ``top[j]`` has rank ``j + 1``.
    """
    size = 0
    for i in range(n):
        x = nodes[i]
        pos = size
        while pos > 0 and _ranks_before(sums[x], sums[top[pos - 1]]):
            pos -= 1
        if pos >= depth:
            continue
        for j in range(min(size, depth - 1), pos, -1):
            top[j] = top[j - 1]
        top[pos] = x
        size = min(size + 1, depth)
    return size


@numba.njit(cache=True, nogil=True)
def _emit_top_k(nodes: np.ndarray, n: int, sums: np.ndarray, depth: int, min_k: int, top: np.ndarray,
                rank: np.ndarray, emit_ptr: np.ndarray, b: int, emit_leaf: np.ndarray, k: np.ndarray,
                out: np.ndarray, nnz: int) -> int:
    """Append the row's ``top_k`` memberships of one block (nodes ascending); returns the new ``nnz``."""
    if n <= min_k:  # every node's rank is at most n, so within every leaf's k
        for i in range(n):
            for e in range(emit_ptr[b, nodes[i]], emit_ptr[b, nodes[i] + 1]):
                out[nnz] = emit_leaf[e]
                nnz += 1
        return nnz
    size = _select_top(nodes, n, sums, depth, top)  # ranks beyond depth exceed every leaf's k
    for j in range(size):
        rank[top[j]] = j + 1
    for j in range(1, size):  # the kept nodes in ascending order
        x, i = top[j], j
        while i > 0 and top[i - 1] > x:
            top[i] = top[i - 1]
            i -= 1
        top[i] = x
    for j in range(size):
        x = top[j]
        for e in range(emit_ptr[b, x], emit_ptr[b, x + 1]):
            if rank[x] <= k[emit_leaf[e]]:
                out[nnz] = emit_leaf[e]
                nnz += 1
    return nnz


@numba.njit(cache=True, nogil=True)
def _emit_share(touched: np.ndarray, m: int, sums: np.ndarray, total: float, emit_ptr: np.ndarray, b: int,
                emit_leaf: np.ndarray, min_share: np.ndarray, out: np.ndarray, nnz: int) -> int:
    """Append the row's ``share`` memberships of one block (nodes in reverse first-touch order)."""
    for i in range(m - 1, -1, -1):
        x = touched[i]
        if sums[x] == 0:
            continue
        for e in range(emit_ptr[b, x], emit_ptr[b, x + 1]):
            if sums[x] >= min_share[emit_leaf[e]] * total:
                out[nnz] = emit_leaf[e]
                nnz += 1
    return nnz


@numba.njit(cache=True, nogil=True)
def _grow(out: np.ndarray, need: int) -> np.ndarray:
    if need <= out.size:
        return out
    bigger = np.empty(max(need, 2 * out.size), dtype=out.dtype)
    bigger[:out.size] = out
    return bigger


@numba.njit(cache=True, nogil=True)
def leaf_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, targets: np.ndarray,
              block_tier: np.ndarray, block_top_k: np.ndarray, block_k: np.ndarray, emit_ptr: np.ndarray,
              emit_leaf: np.ndarray, k: np.ndarray, min_share: np.ndarray, total: np.ndarray,
              capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Persons × leaves membership as CSR (``out_indptr`` int64, leaf indices int32, in scipy's entry order).

    Parameters
    ----------
    indptr, indices, data : the profile matrix (CSR; ``data`` float64)
    targets : int32 array (n_tiers, n_columns)
        Tier-``t`` node of each profile column, -1 when the column does not count at that tier.
    block_tier : int64 array (n_blocks,), row of ``targets``; blocks of one tier are consecutive
    block_top_k : bool array (n_blocks,), rule of the block (``top_k``, else ``share``)
    block_k : int64 array (n_blocks, 2), the smallest and the largest ``k`` of a ``top_k`` block's leaves
    emit_ptr : int64 array (n_blocks, n_nodes + 1); emit_leaf : int32 array
        The leaves of node ``x`` in block ``b``: ``emit_leaf[emit_ptr[b, x]:emit_ptr[b, x + 1]]``.
    k, min_share : per leaf; total : float64 per row (row sums; read only by ``share`` blocks)
    capacity : int, first guess of the number of memberships (grown when needed)
    """
    n_rows, n_nodes = indptr.size - 1, emit_ptr.shape[1] - 1
    seen = np.zeros(n_nodes, dtype=np.int64)
    sums, rank = np.zeros(n_nodes, dtype=np.float64), np.zeros(n_nodes, dtype=np.int64)
    touched, nodes = np.empty(n_nodes, dtype=np.int32), np.empty(n_nodes, dtype=np.int32)
    top = np.empty(max(1, np.max(block_k)) if block_k.size else 1, dtype=np.int32)
    out_indptr = np.zeros(n_rows + 1, dtype=np.int64)
    out = np.empty(max(capacity, 16), dtype=np.int32)
    per_entry = 0  # memberships per profile entry: one node per tier, its leaves in every block
    for b in range(block_tier.size):
        per_entry += np.max(emit_ptr[b, 1:] - emit_ptr[b, :-1])
    nnz, stamp = 0, 0
    for row in range(n_rows):
        if nnz + (indptr[row + 1] - indptr[row]) * per_entry > out.size:
            out = _grow(out, nnz + (indptr[row + 1] - indptr[row]) * per_entry)
        b = 0
        while b < block_tier.size:
            tier = block_tier[b]
            stamp += 1
            m = _tier_scores(indptr, indices, data, row, targets, tier, stamp, seen, sums, touched)
            n = _ascending_nonzero(touched, m, sums, nodes)
            while b < block_tier.size and block_tier[b] == tier:
                if block_top_k[b]:
                    nnz = _emit_top_k(nodes, n, sums, block_k[b, 1], block_k[b, 0], top, rank, emit_ptr, b,
                                      emit_leaf, k, out, nnz)
                else:
                    nnz = _emit_share(touched, m, sums, total[row], emit_ptr, b, emit_leaf, min_share, out, nnz)
                b += 1
        out_indptr[row + 1] = nnz
    return out_indptr, out[:nnz]
