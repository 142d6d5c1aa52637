"""SipHash-2-4 (Aumasson & Bernstein, 2012) vectorised over many short messages with numpy.

The kernel behind ``Pseudonymizer(algorithm="siphash24")``. Messages are packed into a zero-padded matrix of
little-endian 64-bit words; rows with the same number of full blocks are compressed together, in chunks that
stay in cache. Inner kernel: trusts its inputs (the caller passes canonical id bytes).
"""

from __future__ import annotations

import numpy as np

__all__ = ["siphash24", "siphash24_buffers", "siphash24_packed"]

_CHUNK = 1 << 16
_INIT = (0x736F6D6570736575, 0x646F72616E646F6D, 0x6C7967656E657261, 0x7465646279746573)


def _rotl(x: np.ndarray, bits: int, tmp: np.ndarray) -> None:
    np.right_shift(x, np.uint64(64 - bits), out=tmp)
    np.left_shift(x, np.uint64(bits), out=x)
    np.bitwise_or(x, tmp, out=x)


def _rounds(v: list[np.ndarray], tmp: np.ndarray, n: int) -> None:
    v0, v1, v2, v3 = v
    for _ in range(n):
        v0 += v1
        _rotl(v1, 13, tmp)
        v1 ^= v0
        _rotl(v0, 32, tmp)
        v2 += v3
        _rotl(v3, 16, tmp)
        v3 ^= v2
        v0 += v3
        _rotl(v3, 21, tmp)
        v3 ^= v0
        v2 += v1
        _rotl(v1, 17, tmp)
        v1 ^= v2
        _rotl(v2, 32, tmp)


def _compress(k0: int, k1: int, words: np.ndarray, lengths: np.ndarray, n_blocks: int) -> np.ndarray:
    """SipHash-2-4 of rows that all have ``n_blocks`` full 8-byte blocks (``words`` has ``n_blocks + 1``
    columns, the last one holding the zero-padded tail)."""
    m = words.shape[0]
    v = [np.full(m, k ^ c, dtype=np.uint64) for k, c in zip((k0, k1, k0, k1), _INIT)]
    tmp = np.empty(m, dtype=np.uint64)
    for b in range(n_blocks + 1):
        block = np.ascontiguousarray(words[:, b])
        if b == n_blocks:
            block = block | ((lengths & 0xFF).astype(np.uint64) << np.uint64(56))
        v[3] ^= block
        _rounds(v, tmp, 2)
        v[0] ^= block
    v[2] ^= np.uint64(0xFF)
    _rounds(v, tmp, 4)
    return v[0] ^ v[1] ^ v[2] ^ v[3]


def siphash24(key: bytes, words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """SipHash-2-4 of each row of ``words`` (``(n, w)`` uint64, little-endian, zero-padded beyond
    ``lengths``, with ``8 * w > lengths.max()``) under a 16-byte ``key``."""
    k0 = int.from_bytes(key[:8], "little")
    k1 = int.from_bytes(key[8:16], "little")
    lengths = np.asarray(lengths, dtype=np.int64)
    out = np.empty(lengths.size, dtype=np.uint64)
    n_blocks = lengths // 8
    for nb in np.unique(n_blocks).tolist():
        rows = np.flatnonzero(n_blocks == nb)
        for start in range(0, rows.size, _CHUNK):
            part = rows[start:start + _CHUNK]
            out[part] = _compress(k0, k1, words[part, : nb + 1], lengths[part], nb)
    return out


def siphash24_packed(key: bytes, messages: np.ndarray | list[bytes]) -> np.ndarray:
    """SipHash-2-4 of each message (a list of bytes, or a numpy ``S`` array whose items hold no trailing
    NUL bytes, such as decimal strings)."""
    if isinstance(messages, np.ndarray):
        lengths = np.char.str_len(messages).astype(np.int64) if messages.size else np.zeros(0, np.int64)
        items: np.ndarray | list[bytes] = messages
    else:
        lengths = np.fromiter(map(len, messages), dtype=np.int64, count=len(messages))
        items = messages
    if lengths.size == 0:
        return np.zeros(0, dtype=np.uint64)
    width = 8 * (int(lengths.max()) // 8 + 1)
    packed = np.array(items, dtype=f"S{width}")
    words = packed.view(np.uint8).reshape(lengths.size, width).view("<u8").astype(np.uint64, copy=False)
    return siphash24(key, words, lengths)


def siphash24_buffers(key: bytes, data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """SipHash-2-4 of each message ``data[offsets[i]:offsets[i + 1]]`` (Arrow's layout), packed vectorised."""
    lengths = np.diff(offsets).astype(np.int64)
    if lengths.size == 0:
        return np.zeros(0, dtype=np.uint64)
    width = 8 * (int(lengths.max()) // 8 + 1)
    packed = np.zeros(lengths.size * width, dtype=np.uint8)
    shift = np.arange(lengths.size, dtype=np.int64) * width - offsets[:-1]
    packed[np.repeat(shift, lengths) + np.arange(offsets[0], offsets[-1])] = data[offsets[0]:offsets[-1]]
    words = packed.view("<u8").reshape(lengths.size, width // 8).astype(np.uint64, copy=False)
    return siphash24(key, words, lengths)
