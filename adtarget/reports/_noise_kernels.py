"""Compiled discrete Gaussian sampler: diffprivlib's ``GaussianDiscrete.randomise`` over a stream of uniforms.

``discrete_gaussian`` is Algorithm 3 of Canonne, Kamath and Steinke (2020) exactly as diffprivlib 0.6.6 writes
it (``GaussianDiscrete.randomise`` and ``bernoulli_neg_exp``), with every ``rng.random()`` call replaced by the
next value of a uniform buffer. Given the same uniforms it returns the same integers in the same order and
consumes the same number of uniforms, so it is the same mechanism, not an approximation; a test feeds one
buffer to both. The only non-IEEE-exact operation of the original, ``(|y| - τσ²) ** 2 / 2 / σ²`` (a ``pow``),
comes precomputed from the caller as a table over ``|y|``. Kernels trust their inputs (checked by the caller).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["discrete_gaussian"]


@numba.njit(cache=True, nogil=True)
def _counter_bit(gamma: float, uniforms: np.ndarray, pos: int) -> tuple[int, int]:
    """``bernoulli_neg_exp`` for gamma <= 1: (bit, next position), or (0, -1) when the buffer runs out."""
    counter = 1
    while True:
        if pos >= uniforms.size:
            return 0, -1
        u = uniforms[pos]
        pos += 1
        if not u <= gamma / counter:
            return counter % 2, pos
        counter += 1


@numba.njit(cache=True, nogil=True)
def _bernoulli_neg_exp(gamma: float, uniforms: np.ndarray, pos: int) -> tuple[int, int]:
    """Bernoulli(exp(-gamma)) as diffprivlib draws it: one exp(-1) trial per unit of gamma above 1, then the rest."""
    while gamma > 1:
        gamma -= 1
        bit, pos = _counter_bit(1.0, uniforms, pos)
        if pos < 0 or bit == 0:
            return 0, pos
    return _counter_bit(gamma, uniforms, pos)


@numba.njit(cache=True, nogil=True)
def _one_sample(tau: float, gammas: np.ndarray, uniforms: np.ndarray, pos: int) -> tuple[int, int, int]:
    """One discrete Gaussian draw from ``pos``: (value, next position, status).

    status 0: done; 1: the buffer ran out; 2: ``|value|`` is beyond the ``gammas`` table (value holds it).
    """
    while True:
        geom_x = 0
        while True:
            bit, pos = _bernoulli_neg_exp(tau, uniforms, pos)
            if pos < 0:
                return 0, pos, 1
            if bit == 0:
                break
            geom_x += 1
        if pos >= uniforms.size:
            return 0, -1, 1
        bern_b = uniforms[pos] < 0.5
        pos += 1
        if bern_b and geom_x == 0:
            continue
        lap_y = -geom_x if bern_b else geom_x
        if geom_x >= gammas.size:
            return geom_x, pos, 2
        bit, pos = _bernoulli_neg_exp(gammas[geom_x], uniforms, pos)
        if pos < 0:
            return 0, pos, 1
        if bit == 1:
            return lap_y, pos, 0


@numba.njit(cache=True, nogil=True)
def discrete_gaussian(tau: float, gammas: np.ndarray, uniforms: np.ndarray, out: np.ndarray,
                      start: int) -> tuple[int, int, int]:
    """Fill ``out[start:]`` with discrete Gaussian draws, reading ``uniforms`` in order.

    Parameters
    ----------
    tau : float
        ``1 / (1 + floor(σ))``, as diffprivlib computes it.
    gammas : float64 array
        ``gammas[k] = (k - τσ²) ** 2 / 2 / σ²`` for ``k < gammas.size`` (diffprivlib's expression).
    uniforms : float64 array
        Values in [0, 1), consumed one per ``rng.random()`` call of the original.
    out : int64 array
    start : int
        First index of ``out`` to fill.

    Returns
    -------
    (filled, used, need) : the next unfilled index of ``out``; the uniforms consumed by the completed draws
    (a draw cut short by the buffer's end consumes nothing); and, when > 0, the ``|y|`` that needs a longer
    ``gammas`` table before the draw at ``filled`` can be redone from ``used``.
    """
    pos = 0
    for i in range(start, out.size):
        value, nxt, status = _one_sample(tau, gammas, uniforms, pos)
        if status == 1:
            return i, pos, 0
        if status == 2:
            return i, pos, value
        out[i] = value
        pos = nxt
    return out.size, pos, 0
