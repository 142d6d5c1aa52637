"""Keyed BLAKE2b (RFC 7693) of many short messages, bit-identical to ``hashlib.blake2b(key=..., person=...)``.

The kernel behind ``Pseudonymizer(algorithm="blake2b")``. The parameter block (digest length, key length,
fanout = depth = 1, personalisation) is folded into the initial state in Python (:func:`initial_state`); the
kernels compress the zero-padded key block once per call, then finish each message: one final compression
when it is at most 128 bytes, several for longer ones. Short messages are compressed :data:`LANES` at a time,
one message per lane, so that LLVM vectorises the G function across lanes. Messages are decimal ints
(:func:`blake2b_int64`, :func:`blake2b_uint64`, digits written inside the kernel) or byte strings laid out as
one buffer plus offsets (:func:`blake2b_buffers`, Arrow's string layout). Each kernel returns the first 8
bytes of each digest read little-endian, i.e. ``h[0]``, so it is only meant for ``digest_size=8``.
Inner kernels: they trust their inputs (the caller passes canonical id bytes and a valid state).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["LANES", "blake2b_buffers", "blake2b_int64", "blake2b_uint64", "initial_state"]

LANES = 32  # messages compressed together; 32 measured fastest on AVX2 (16 and 64 are 10-30 % slower)
BLOCK = 128
IV = np.array([0x6A09E667F3BCC908, 0xBB67AE8584CAA73B, 0x3C6EF372FE94F82B, 0xA54FF53A5F1D36F1,
               0x510E527FADE682D1, 0x9B05688C2B3E6C1F, 0x1F83D9ABFB41BD6B, 0x5BE0CD19137E2179], dtype=np.uint64)
SIGMA = np.array([
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0]], dtype=np.int64)
PAIRS = np.array([(48 + r // 10) | (48 + r % 10) << 8 for r in range(100)], dtype=np.uint64)  # "00".."99"


def initial_state(key: bytes, person: bytes, digest_size: int) -> tuple[np.ndarray, np.ndarray]:
    """``(h, key_block)``: the state ``IV ^ parameter block`` and the key zero-padded to 16 words.

    Parameters
    ----------
    key : bytes
        1 to 64 bytes.
    person : bytes
        Personalisation, at most 16 bytes.
    digest_size : int
        Digest length in bytes (the kernels return ``h[0]``, which is the whole digest only when it is 8).
    """
    params = np.zeros(8, dtype=np.uint64)
    params[0] = digest_size | (len(key) << 8) | (1 << 16) | (1 << 24)
    params[6:8] = np.frombuffer(person.ljust(16, b"\0"), dtype="<u8")
    key_block = np.frombuffer(key.ljust(BLOCK, b"\0"), dtype="<u8").astype(np.uint64)
    return IV ^ params, key_block


@numba.njit(cache=True, nogil=True, inline="always")
def _g(v: np.ndarray, m: np.ndarray, a: int, b: int, c: int, d: int, x: int, y: int) -> None:
    for j in range(LANES):
        va, vb, vc, vd = v[a, j], v[b, j], v[c, j], v[d, j]
        va = va + vb + m[x, j]
        vd ^= va
        vd = (vd >> np.uint64(32)) | (vd << np.uint64(32))
        vc = vc + vd
        vb ^= vc
        vb = (vb >> np.uint64(24)) | (vb << np.uint64(40))
        va = va + vb + m[y, j]
        vd ^= va
        vd = (vd >> np.uint64(16)) | (vd << np.uint64(48))
        vc = vc + vd
        vb ^= vc
        vb = (vb >> np.uint64(63)) | (vb << np.uint64(1))
        v[a, j], v[b, j], v[c, j], v[d, j] = va, vb, vc, vd


@numba.njit(cache=True, nogil=True)
def _compress(h: np.ndarray, m: np.ndarray, t: np.ndarray, final: bool, v: np.ndarray, lanes: int) -> None:
    """Compress block ``m[:, j]`` into state ``h[:, j]`` with byte counter ``t[j]``, for lanes ``j < lanes``."""
    for j in range(lanes):
        for k in range(8):
            v[k, j] = h[k, j]
            v[k + 8, j] = IV[k]
        v[12, j] ^= t[j]
        if final:
            v[14, j] = ~v[14, j]
    for r in range(12):
        s = SIGMA[r % 10]
        _g(v, m, 0, 4, 8, 12, s[0], s[1])
        _g(v, m, 1, 5, 9, 13, s[2], s[3])
        _g(v, m, 2, 6, 10, 14, s[4], s[5])
        _g(v, m, 3, 7, 11, 15, s[6], s[7])
        _g(v, m, 0, 5, 10, 15, s[8], s[9])
        _g(v, m, 1, 6, 11, 12, s[10], s[11])
        _g(v, m, 2, 7, 8, 13, s[12], s[13])
        _g(v, m, 3, 4, 9, 14, s[14], s[15])
    for j in range(lanes):
        for k in range(8):
            h[k, j] ^= v[k, j] ^ v[k + 8, j]


@numba.njit(cache=True, nogil=True)
def _scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(h, m, t, v)`` for one batch of lanes: states, message words (zero), byte counters, work vector."""
    return (np.empty((8, LANES), np.uint64), np.zeros((16, LANES), np.uint64), np.empty(LANES, np.uint64),
            np.empty((16, LANES), np.uint64))


@numba.njit(cache=True, nogil=True)
def _keyed(h_init: np.ndarray, key_block: np.ndarray, final: bool) -> np.ndarray:
    """State after compressing the key block (``final``: the digest of the empty message)."""
    h, m, t, v = _scratch()
    h[:, 0] = h_init
    m[:, 0] = key_block
    t[0] = BLOCK
    _compress(h, m, t, final, v, 1)
    return h[:, 0].copy()


@numba.njit(cache=True, nogil=True)
def _finish(h: np.ndarray, m: np.ndarray, t: np.ndarray, v: np.ndarray, keyed: np.ndarray, lanes: int) -> None:
    """Final compression of one-block messages in lanes ``< lanes``, from the keyed state."""
    for j in range(lanes):
        h[:, j] = keyed
    _compress(h, m, t, True, v, lanes)


@numba.njit(cache=True, nogil=True, inline="always")
def _push(w: tuple[np.uint64, np.uint64, np.uint64], value: np.uint64,
          bits: int) -> tuple[np.uint64, np.uint64, np.uint64]:
    """Shift the 24-byte little-endian text ``w`` up by ``bits`` and put ``value`` in its first bytes."""
    up, down = np.uint64(bits), np.uint64(64 - bits)
    return (w[0] << up) | value, (w[1] << up) | (w[0] >> down), (w[2] << up) | (w[1] >> down)


@numba.njit(cache=True, nogil=True)
def _decimal(m: np.ndarray, lane: int, magnitude: np.uint64, negative: bool) -> int:
    """Write ``[-]digits`` of an integer into message words 0-2 of ``lane``; return its length in bytes.

    Digits are produced two at a time from the least significant end, each pushed in front of the text."""
    zero = np.uint64(0)
    w = (zero, zero, zero)
    length = 0
    while magnitude >= np.uint64(100):
        quotient = magnitude // np.uint64(100)
        w = _push(w, PAIRS[magnitude - quotient * np.uint64(100)], 16)
        magnitude = quotient
        length += 2
    if magnitude >= np.uint64(10):
        w = _push(w, PAIRS[magnitude], 16)
        length += 2
    else:
        w = _push(w, np.uint64(48) + magnitude, 8)
        length += 1
    if negative:
        w = _push(w, np.uint64(45), 8)  # '-'
        length += 1
    m[0, lane], m[1, lane], m[2, lane] = w
    return length


@numba.njit(cache=True, nogil=True)
def blake2b_int64(h_init: np.ndarray, key_block: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``h[0]`` of the keyed BLAKE2b of each int64's decimal string (``-`` sign for negatives)."""
    out = np.empty(values.size, np.uint64)
    keyed = _keyed(h_init, key_block, False)
    h, m, t, v = _scratch()
    for start in range(0, values.size, LANES):
        lanes = min(LANES, values.size - start)
        for j in range(lanes):
            x = values[start + j]
            magnitude = np.uint64(-(x + 1)) + np.uint64(1) if x < 0 else np.uint64(x)
            t[j] = BLOCK + _decimal(m, j, magnitude, x < 0)
        _finish(h, m, t, v, keyed, lanes)
        out[start:start + lanes] = h[0, :lanes]
    return out


@numba.njit(cache=True, nogil=True)
def blake2b_uint64(h_init: np.ndarray, key_block: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``h[0]`` of the keyed BLAKE2b of each uint64's decimal string."""
    out = np.empty(values.size, np.uint64)
    keyed = _keyed(h_init, key_block, False)
    h, m, t, v = _scratch()
    for start in range(0, values.size, LANES):
        lanes = min(LANES, values.size - start)
        for j in range(lanes):
            t[j] = BLOCK + _decimal(m, j, values[start + j], False)
        _finish(h, m, t, v, keyed, lanes)
        out[start:start + lanes] = h[0, :lanes]
    return out


@numba.njit(cache=True, nogil=True)
def _pack(m: np.ndarray, lane: int, data: np.ndarray, start: int, stop: int) -> None:
    """Bytes ``data[start:stop]`` (at most 128) into the zero-padded message words of ``lane``."""
    m[:, lane] = 0
    for p in range(stop - start):
        m[p >> 3, lane] |= np.uint64(data[start + p]) << np.uint64(8 * (p & 7))


@numba.njit(cache=True, nogil=True)
def _long(data: np.ndarray, start: int, stop: int, keyed: np.ndarray) -> np.uint64:
    """``h[0]`` of a message longer than one block: every block but the last plain, the last final."""
    h, m, t, v = _scratch()
    h[:, 0] = keyed
    n_blocks = (stop - start + BLOCK - 1) // BLOCK
    for b in range(n_blocks):
        first = start + b * BLOCK
        last = min(first + BLOCK, stop)
        _pack(m, 0, data, first, last)
        t[0] = BLOCK + last - start
        _compress(h, m, t, b == n_blocks - 1, v, 1)
    return h[0, 0]


@numba.njit(cache=True, nogil=True)
def blake2b_buffers(h_init: np.ndarray, key_block: np.ndarray, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``h[0]`` of the keyed BLAKE2b of each message ``data[offsets[i]:offsets[i + 1]]`` (uint8 ``data``)."""
    n = offsets.size - 1
    out = np.empty(max(n, 0), np.uint64)
    keyed = _keyed(h_init, key_block, False)
    empty = _keyed(h_init, key_block, True)[0]
    h, m, t, v = _scratch()
    rows = np.empty(LANES, np.int64)
    lanes = 0
    for i in range(n):
        start, stop = offsets[i], offsets[i + 1]
        if stop == start:
            out[i] = empty
        elif stop - start > BLOCK:
            out[i] = _long(data, start, stop, keyed)
        else:
            _pack(m, lanes, data, start, stop)
            t[lanes] = BLOCK + stop - start
            rows[lanes] = i
            lanes += 1
            if lanes == LANES or i == n - 1:
                _finish(h, m, t, v, keyed, lanes)
                out[rows[:lanes]] = h[0, :lanes]
                lanes = 0
    if lanes:
        _finish(h, m, t, v, keyed, lanes)
        out[rows[:lanes]] = h[0, :lanes]
    return out
