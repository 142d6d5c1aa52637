"""The buffer cache (adtarget/_core/_buffers.py, adtarget/_core/_memory.c): scoped, reusing, bounded, and never wrong."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adtarget
from adtarget import buffer_cache_limit, buffer_stats, release_buffers
from adtarget._core import _buffers, _memory
from adtarget._core._buffers import reusing_buffers

MIB = 1 << 20
HANDLER = "adtarget_buffer_cache"


def handler_name(array: np.ndarray | None = None) -> str:
    from numpy._core.multiarray import get_handler_name

    return get_handler_name() if array is None else get_handler_name(array)


@pytest.fixture(autouse=True)
def clean_cache():
    limit = buffer_cache_limit()
    release_buffers()
    yield
    buffer_cache_limit(limit)
    release_buffers()


def test_the_handler_is_scoped_nested_and_restored_on_error():
    outside = handler_name()
    assert outside != HANDLER
    with reusing_buffers():
        assert handler_name() == HANDLER
        with reusing_buffers():
            assert handler_name() == HANDLER
        assert handler_name() == HANDLER
        inner = np.empty(4 * MIB, dtype=np.uint8)
    assert handler_name() == outside
    assert handler_name(inner) == HANDLER
    assert handler_name(np.empty(4 * MIB, dtype=np.uint8)) == outside
    with pytest.raises(KeyError), reusing_buffers():
        raise KeyError("boom")
    assert handler_name() == outside


def test_a_freed_large_block_serves_the_next_request_of_its_size():
    with reusing_buffers():
        first = np.empty(8 * MIB, dtype=np.uint8)
        address = first.ctypes.data
        del first
        before = buffer_stats()
        assert before["idle_blocks"] == 1
        second = np.empty(8 * MIB - 4096, dtype=np.uint8)  # within the 25 % slack: reused
        assert second.ctypes.data == address
        after = buffer_stats()
        assert after["hits"] == before["hits"] + 1 and after["hit_bytes"] == before["hit_bytes"] + second.nbytes
        assert after["miss_bytes"] == before["miss_bytes"]
        del second
        third = np.empty(2 * MIB, dtype=np.uint8)  # far smaller: a fresh block, the big one stays idle
        assert third.ctypes.data != address


def test_a_block_is_not_spent_on_a_much_smaller_request():
    with reusing_buffers():
        big = np.empty(32 * MIB, dtype=np.uint8)
        address = big.ctypes.data
        del big
        small = np.empty(8 * MIB, dtype=np.uint8)
        assert small.ctypes.data != address
        assert buffer_stats()["idle_blocks"] == 1


def test_zeros_from_a_reused_dirty_block_are_zeros():
    with reusing_buffers():
        dirty = np.full(MIB, 7, dtype=np.int64)
        address = dirty.ctypes.data
        del dirty
        zeros = np.zeros(MIB, dtype=np.int64)
        assert zeros.ctypes.data == address
        assert not zeros.any()


def test_arrays_freed_outside_the_scope_return_to_the_cache():
    with reusing_buffers():
        kept = np.ones(4 * MIB, dtype=np.uint8)
    del kept
    assert buffer_stats()["idle_blocks"] == 1


def test_small_arrays_are_never_cached():
    with reusing_buffers():
        for _ in range(100):
            np.empty(1000, dtype=np.float64)
    assert buffer_stats()["idle_blocks"] == 0


def test_the_limit_bounds_idle_bytes_and_evicts_the_oldest_first():
    buffer_cache_limit(10 * MIB)
    with reusing_buffers():
        blocks = [np.empty(4 * MIB, dtype=np.uint8) for _ in range(3)]
        addresses = [b.ctypes.data for b in blocks]
        evictions = buffer_stats()["evictions"]
        del blocks[0]
        del blocks[0]
        del blocks[0]  # the third does not fit beside the first two: the oldest goes
        stats = buffer_stats()
        assert stats["idle_blocks"] == 2 and stats["idle_bytes"] <= 10 * MIB
        assert stats["evictions"] == evictions + 1
        again = [np.empty(4 * MIB, dtype=np.uint8) for _ in range(2)]
        assert {a.ctypes.data for a in again} == set(addresses[1:])


def test_a_zero_limit_keeps_nothing_and_lowering_the_limit_frees_at_once():
    with reusing_buffers():
        block = np.empty(4 * MIB, dtype=np.uint8)
    del block
    assert buffer_stats()["idle_bytes"] >= 4 * MIB
    buffer_cache_limit(0)
    assert buffer_stats()["idle_bytes"] == 0
    with reusing_buffers():
        block = np.empty(4 * MIB, dtype=np.uint8)
    del block
    assert buffer_stats()["idle_bytes"] == 0


def test_release_buffers_frees_every_idle_block_and_says_how_much():
    with reusing_buffers():
        blocks = [np.empty(n * MIB, dtype=np.uint8) for n in (2, 3)]
    del blocks
    idle = buffer_stats()["idle_bytes"]
    assert idle >= 5 * MIB
    assert release_buffers() == idle
    assert buffer_stats()["idle_bytes"] == 0


def test_purge_frees_only_blocks_idle_long_enough():
    with reusing_buffers():
        block = np.empty(4 * MIB, dtype=np.uint8)
    del block
    assert _memory.purge(3600.0) == 0
    assert buffer_stats()["idle_blocks"] == 1
    _buffers._free_idle()  # what the idle timer runs: the block has not been idle for IDLE_SECONDS
    assert buffer_stats()["idle_blocks"] == 1
    assert _memory.purge(0.0) >= 4 * MIB  # idle long enough for a zero-second threshold: freed
    assert buffer_stats()["idle_blocks"] == 0


def test_limit_and_environment_are_validated_by_name(monkeypatch):
    for bad in (-1, True, 1.5, "1", 1 << 64):
        with pytest.raises(adtarget.exceptions.ParameterError, match="limit_bytes"):
            buffer_cache_limit(bad)  # type: ignore[arg-type]
    monkeypatch.setenv("ADTARGET_BUFFER_CACHE_MB", "lots")
    with pytest.raises(adtarget.exceptions.ParameterError, match="ADTARGET_BUFFER_CACHE_MB"):
        _buffers._default_limit()
    monkeypatch.setenv("ADTARGET_BUFFER_CACHE_MB", "-3")
    with pytest.raises(adtarget.exceptions.ParameterError, match="ADTARGET_BUFFER_CACHE_MB"):
        _buffers._default_limit()
    monkeypatch.setenv("ADTARGET_BUFFER_CACHE_MB", str(1 << 50))  # overflowed the C size_t (OverflowError)
    with pytest.raises(adtarget.exceptions.ParameterError, match="ADTARGET_BUFFER_CACHE_MB"):
        _buffers._default_limit()
    monkeypatch.setenv("ADTARGET_BUFFER_CACHE_MB", "64")
    assert _buffers._default_limit() == 64 * MIB
    with pytest.raises(TypeError, match="capsule"):
        _memory.set_handler(object())


def test_the_public_names_are_the_module_functions():
    assert adtarget.release_buffers is release_buffers
    assert adtarget.buffer_cache_limit is buffer_cache_limit
    assert adtarget.buffer_stats is buffer_stats


# --- properties: any sequence of allocations, frees, resizes and zeroings keeps every array's contents -----
_SIZES = st.sampled_from([1, 100, MIB // 2, MIB - 8, MIB, MIB + 8, 3 * MIB, 5 * MIB // 4, 4 * MIB, 9 * MIB])
_OPS = st.lists(st.tuples(st.sampled_from(["empty", "zeros", "free", "grow", "shrink", "limit"]), _SIZES,
                          st.integers(0, 7)), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(_OPS)
def test_contents_survive_any_sequence_of_operations(ops):
    live = buffer_stats()["live_blocks"]
    _exercise(ops)
    assert buffer_stats()["live_blocks"] == live  # every tracked block came back


def _exercise(ops: list[tuple[str, int, int]]) -> None:
    arrays: list[tuple[np.ndarray, int]] = []  # (array, the byte every element was filled with)
    with reusing_buffers():
        for step, (op, size, pick) in enumerate(ops):
            fill = step % 251 + 1
            if op in ("empty", "zeros"):
                array = np.empty(size, dtype=np.uint8) if op == "empty" else np.zeros(size, dtype=np.uint8)
                assert op == "empty" or not array.any()
                array.fill(fill)
                arrays.append((array, fill))
            elif op == "limit":
                buffer_cache_limit(size * 4)
            elif arrays:
                array, value = arrays.pop(pick % len(arrays))
                if op in ("grow", "shrink"):
                    kept = min(array.size, size if op == "grow" else max(1, array.size // (pick + 2)))
                    array.resize(size if op == "grow" else kept, refcheck=False)  # realloc via the handler
                    assert (array[:kept] == value).all()
                    array.fill(fill)
                    arrays.append((array, fill))
            for array, value in arrays:
                assert array[0] == value and array[-1] == value
            stats = buffer_stats()
            assert stats["idle_bytes"] <= stats["limit_bytes"]
        for array, value in arrays:
            assert (array == value).all()


def test_resize_keeps_the_prefix_when_growing_and_shrinking():
    with reusing_buffers():
        array = np.arange(MIB, dtype=np.int64)
        array.resize(3 * MIB, refcheck=False)
        assert (array[:MIB] == np.arange(MIB)).all()
        array.resize(MIB // 8, refcheck=False)
        assert (array == np.arange(MIB // 8)).all()


def test_threads_allocating_and_freeing_at_once_never_share_a_block():
    errors: list[str] = []
    live = buffer_stats()["live_blocks"]

    def work(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with reusing_buffers():
            for _ in range(60):
                sizes = rng.integers(MIB, 6 * MIB, size=3)
                blocks = [np.full(int(n), seed, dtype=np.uint8) for n in sizes]
                for block in blocks:
                    if not (block == seed).all():
                        errors.append(f"thread {seed}: a block was overwritten")

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert buffer_stats()["live_blocks"] == live


def test_the_stages_allocate_from_the_cache(pseudonymizer):
    n = 300_000  # columns of 1 MiB and more
    now = 1_790_000_000
    events = {"person_id": np.arange(n, dtype=np.int64) % 5000, "service": np.array(["video"] * n, dtype=object),
              "ts": np.full(n, now - 86_400, dtype=np.int64), "category": np.array(["239"] * n, dtype=object)}
    before = buffer_stats()
    batch = adtarget.ingest(events, pseudonymizer=pseudonymizer, now=now).batch
    after = buffer_stats()
    # the stage's large working arrays were requested from the cache (served from an idle block or fresh) ...
    assert (after["hits"] + after["misses"]) - (before["hits"] + before["misses"]) > 0
    # ... while the sealed batch owns its columns: read-only copies outside NumPy's allocator (issue 14, finding 6)
    assert not batch.ts.flags.writeable and handler_name(batch.ts) != HANDLER
    assert handler_name() != HANDLER


@pytest.mark.timeout(60)  # without the fork handlers the child can hang on the inherited lock
def test_a_forked_child_can_allocate_while_the_parent_frees_from_another_thread():
    import os
    import warnings

    stop = threading.Event()

    def churn() -> None:
        with reusing_buffers():
            while not stop.is_set():
                np.empty(2 * MIB, dtype=np.uint8)
                release_buffers()

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(20):
            with warnings.catch_warnings():  # Python 3.12+ warns that forking a threaded process may deadlock
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the child: would hang here if it inherited the lock held
                try:
                    with reusing_buffers():
                        np.ones(2 * MIB, dtype=np.uint8)
                finally:  # never return into pytest in the child
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert status == 0
    finally:
        stop.set()
        worker.join()


def test_only_the_outermost_scope_arms_the_idle_timer(monkeypatch):
    armed: list[bool] = []
    monkeypatch.setattr(_buffers, "_arm_idle_timer", lambda: armed.append(True))
    with reusing_buffers():
        with reusing_buffers():
            pass
        assert armed == []
    assert armed == [True]


_GC_UNDER_THE_LOCK = """
import gc, sys
import numpy as np
from adtarget._core import _memory
from adtarget._core._buffers import reusing_buffers

gc.disable()
class Box:
    pass
with reusing_buffers():
    box = Box()
    box.me, box.array = box, np.empty(4 << 20, dtype=np.uint8)  # cyclic garbage holding a cached block
del box
dicts, lists = [{} for _ in range(500)], [[] for _ in range(500)]  # empty the free lists: the next is new
gc.set_threshold(1)
gc.enable()
getattr(_memory, sys.argv[1])()  # its dict or list runs the collector, which frees the block
print("done")
"""


@pytest.mark.parametrize("function", ["stats", "idle_capacities"])
def test_reporting_never_holds_the_lock_while_python_may_free_an_array(function):
    import subprocess
    import sys

    try:
        done = subprocess.run([sys.executable, "-c", _GC_UNDER_THE_LOCK, function], capture_output=True,
                              text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"_memory.{function}() deadlocked: the collector freed an array while the lock was held")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"


@pytest.mark.timeout(60)
def test_a_forked_child_ends_a_stage_though_the_parent_held_the_timer_lock():
    import os
    import time
    import warnings

    with _buffers._timer_lock:  # as another thread arming the timer at the moment of the fork
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: its first stage would hang as it ends, arming the timer
            try:
                with reusing_buffers():
                    np.ones(2 * MIB, dtype=np.uint8)
            finally:
                os._exit(0)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail("the forked child hung on the inherited timer lock")
        time.sleep(0.05)
    assert status == 0


def test_an_impossible_request_is_a_memory_error_not_a_hang():
    with reusing_buffers(), pytest.raises(MemoryError):
        np.empty(2**57, dtype=np.uint8)
