"""The batch sampler is diffprivlib's mechanism over a vector: fed the same uniforms, the same integers.

diffprivlib's per-value ``randomise(0)`` is the reference. Seeded: two identical RandomStates, one per path;
the outputs and the states afterwards must be equal. Secure: ``random._urandom`` (what ``SystemRandom.random``
and ``randbytes`` read) is replaced by one deterministic byte stream for both paths.
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np
import pytest
from diffprivlib.mechanisms import GaussianDiscrete, Geometric  # imported before random._urandom is replaced
from hypothesis import given
from hypothesis import strategies as st

from adtarget.reports import _noise
from adtarget.reports._noise import UniformStream, batch_randomise, uniforms_from_bytes


def _geometric(epsilon: float, rng: object) -> object:
    return Geometric(epsilon=epsilon, sensitivity=1, random_state=rng)


def _gaussian(sigma: float, rng: object) -> object:
    mech = GaussianDiscrete(epsilon=1.0, delta=1e-6, sensitivity=0, random_state=rng)
    mech._scale = sigma
    return mech


def _per_value(mech: object, size: int) -> np.ndarray:
    return np.array([mech.randomise(0) for _ in range(size)], dtype=np.int64)  # type: ignore[attr-defined]


def _same_on_seeded_streams(make: Callable[[float, object], object], param: float, size: int, seed: int) -> None:
    ref_mech, batch_mech = make(param, np.random.RandomState(seed)), make(param, np.random.RandomState(seed))
    ref, got = _per_value(ref_mech, size), batch_randomise(batch_mech, size)
    assert got.dtype == np.int64 and got.shape == (size,)
    np.testing.assert_array_equal(got, ref)
    assert ref_mech._rng.random() == batch_mech._rng.random()  # type: ignore[attr-defined]  # same uniforms used


@given(epsilon=st.floats(1e-3, 20.0), size=st.integers(0, 400), seed=st.integers(0, 2**32 - 1))
def test_geometric_batch_equals_diffprivlib_per_value(epsilon: float, size: int, seed: int) -> None:
    _same_on_seeded_streams(_geometric, epsilon, size, seed)


@given(sigma=st.floats(0.05, 40.0), size=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_discrete_gaussian_batch_equals_diffprivlib_per_value(sigma: float, size: int, seed: int) -> None:
    _same_on_seeded_streams(_gaussian, sigma, size, seed)


@pytest.mark.parametrize(("make", "param"), [(_geometric, 0.3), (_gaussian, 2.5), (_gaussian, 0.0)])
def test_edge_sizes_and_noise_free_scale(make: Callable[[float, object], object], param: float) -> None:
    for size in (0, 1, 5000):
        _same_on_seeded_streams(make, param, size, 7)


def test_a_short_gamma_table_is_extended_without_changing_the_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    table, calls = _noise._gamma_table, []

    def short_first(tau: float, sigma2: float, n: int) -> np.ndarray:
        calls.append(n)
        return table(tau, sigma2, 2 if len(calls) == 1 else n)

    monkeypatch.setattr(_noise, "_gamma_table", short_first)
    _same_on_seeded_streams(_gaussian, 6.0, 300, 11)
    assert len(calls) > 1


def test_small_buffers_resume_mid_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_noise, "_MAX_BUFFER", 3)  # most draws are cut short and redone from the next buffer
    _same_on_seeded_streams(_gaussian, 4.0, 200, 5)


class _Bytes:
    """A deterministic stand-in for os.urandom, shared by the per-value and the batch path."""

    def __init__(self, seed: int) -> None:
        self.data = np.random.RandomState(seed).bytes(1 << 20)
        self.at = 0

    def __call__(self, n: int) -> bytes:
        out = self.data[self.at:self.at + n]
        self.at += n
        return out


@pytest.mark.parametrize(("make", "param"), [(_geometric, 0.5), (_gaussian, 3.0)])
def test_secure_path_reads_the_bytes_systemrandom_would(make: Callable[[float, object], object], param: float,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(random, "_urandom", _Bytes(3))
    ref = _per_value(make(param, None), 300)
    monkeypatch.setattr(random, "_urandom", _Bytes(3))
    got = batch_randomise(make(param, None), 300)
    np.testing.assert_array_equal(got, ref)


@given(st.binary(min_size=0, max_size=7 * 64).map(lambda b: b[:len(b) // 7 * 7]))
def test_uniforms_from_bytes_is_systemrandom_random(raw: bytes) -> None:
    expected = [(int.from_bytes(raw[i:i + 7], "big") >> 3) * 2.0**-53 for i in range(0, len(raw), 7)]
    assert uniforms_from_bytes(raw).tolist() == expected


def test_uniform_extremes() -> None:
    out = uniforms_from_bytes(b"\x00" * 7 + b"\xff" * 7)
    assert out.tolist() == [0.0, 1.0 - 2.0**-53]


def test_a_geometric_uniform_of_one_half_is_redrawn() -> None:
    class Half(random.SystemRandom):
        def __init__(self) -> None:
            super().__init__()
            self.first = True

        def randbytes(self, n: int) -> bytes:
            if self.first:  # 0.5 exactly, then ordinary bytes
                self.first = False
                return (1 << 55).to_bytes(7, "big") * (n // 7)
            return super().randbytes(n)

    noise = _noise.geometric_noise(-1.0, UniformStream(Half()), 3)
    assert noise.dtype == np.int64 and noise.shape == (3,)


def test_seeded_unread_rewinds_to_the_first_unused_uniform() -> None:
    rng, twin = np.random.RandomState(9), np.random.RandomState(9)
    stream = UniformStream(rng)
    batch = stream.draw(10)
    stream.unread(batch, 4)
    assert stream.draw(3).tolist() == twin.random_sample(10)[4:7].tolist()


def test_secure_stream_never_drops_a_given_back_uniform() -> None:
    """A shorter draw after ``unread`` keeps the rest for later: dropping uniforms a rejection sampler had
    already looked at would bias it (found in review: the tail was discarded)."""
    stream = UniformStream(random.SystemRandom())
    batch = stream.draw(10)
    stream.unread(batch, 2)
    assert stream.draw(3).tolist() == batch[2:5].tolist()
    assert stream.draw(5).tolist() == batch[5:10].tolist()
    assert stream.draw(2).size == 2  # then fresh bytes
