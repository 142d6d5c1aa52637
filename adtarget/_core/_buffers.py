"""Reuse of large array buffers across stages, chunks and runs.

The stages allocate their column arrays (hundreds of MB per 10^7 events) with NumPy. By default every such
array is a fresh mapping: its pages are faulted in on first write and handed back to the kernel on free, so the
next stage, chunk or run pays the faults again. Inside :func:`reusing_buffers` NumPy allocates through
``adtarget._core._memory`` (a C memory handler, NEP 49) that keeps freed blocks of 1 MiB and more and serves later
requests of a similar size from them. Arrays allocated there stay ordinary NumPy arrays; they return their
block to the cache whenever and wherever they die.

Bounds: at most :func:`buffer_cache_limit` bytes of idle blocks are kept (default :data:`DEFAULT_LIMIT_MB`,
or an eighth of physical memory if that is less; the ``ADTARGET_BUFFER_CACHE_MB`` environment variable
overrides it, 0 turns caching off), and blocks idle for :data:`IDLE_SECONDS` are freed by a daemon timer armed
when a stage ends. Idle blocks are resident memory that the kernel cannot reclaim, so they count in the peak of
the next run: the default trades part of the speed for a peak within the benchmark's 3x goal
(benchmarks/README.md has the measured trade-off).
:func:`release_buffers` frees every idle block at once. Reused blocks are not cleared (``numpy.empty``
semantics); ``numpy.zeros`` still gets zeros.

If the extension is missing (a build without a C compiler), the context manager does nothing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from adtarget.exceptions import ParameterError

try:
    from adtarget._core import _memory
except ImportError:  # pragma: no cover - the extension is built by every install path we support
    _memory = None  # type: ignore[assignment]

__all__ = ["DEFAULT_LIMIT_MB", "IDLE_SECONDS", "buffer_cache_limit", "buffer_stats", "release_buffers",
           "reusing_buffers", "uses_buffers"]

IDLE_SECONDS = 10.0
DEFAULT_LIMIT_MB = 384
_MAX_LIMIT = (1 << 63) - 1  # the C side keeps the limit in a size_t; more than any machine has
_F = TypeVar("_F", bound=Callable[..., Any])
_timer_lock = threading.Lock()
_timer: threading.Timer | None = None


def _default_limit() -> int:
    configured = os.environ.get("ADTARGET_BUFFER_CACHE_MB")
    if configured is not None:
        try:
            megabytes = int(configured)
        except ValueError:
            raise ParameterError(
                f"ADTARGET_BUFFER_CACHE_MB must be a whole number of MB, got {configured!r}") from None
        if not 0 <= megabytes << 20 <= _MAX_LIMIT:
            raise ParameterError(f"ADTARGET_BUFFER_CACHE_MB must be in [0, {_MAX_LIMIT >> 20}], got {megabytes}")
        return megabytes << 20
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        physical = 8 * DEFAULT_LIMIT_MB << 20
    return min(physical // 8, DEFAULT_LIMIT_MB << 20)


if _memory is not None:
    _memory.set_limit(_default_limit())


@contextlib.contextmanager
def reusing_buffers() -> Iterator[None]:
    """Allocate NumPy arrays through the buffer cache in this block (nests; restores the previous handler)."""
    if _memory is None:  # pragma: no cover - see the module docstring
        yield
        return
    previous = _memory.set_handler(_memory.handler)
    try:
        yield
    finally:
        _memory.set_handler(previous)
        if previous is not _memory.handler:  # the outermost scope: the stages have gone quiet
            _arm_idle_timer()


def uses_buffers(fn: _F) -> _F:
    """Decorate a stage so that the arrays it allocates come from the buffer cache."""

    @functools.wraps(fn)
    def stage(*args: Any, **kwargs: Any) -> Any:
        with reusing_buffers():
            return fn(*args, **kwargs)

    return stage  # type: ignore[return-value]


def buffer_cache_limit(limit_bytes: int | None = None) -> int:
    """Return the most bytes of idle blocks kept; with an argument, set it first (0 keeps none; idle blocks
    beyond the new limit are freed at once)."""
    if _memory is None:  # pragma: no cover
        return 0
    if limit_bytes is not None:
        if isinstance(limit_bytes, bool) or not isinstance(limit_bytes, int) or not 0 <= limit_bytes <= _MAX_LIMIT:
            raise ParameterError(f"limit_bytes must be an int in [0, {_MAX_LIMIT}], got {limit_bytes!r}")
        _memory.set_limit(limit_bytes)
    return int(_memory.stats()["limit_bytes"])


def release_buffers() -> int:
    """Free every idle block now; return how many bytes went back to the system."""
    return 0 if _memory is None else int(_memory.purge(0.0))


def buffer_stats() -> dict[str, int]:
    """Idle and live bytes and blocks of the cache, its limit, and so far its hits and misses (requests of
    1 MiB and more served from an idle block or fresh; counts and bytes) and evictions."""
    if _memory is None:  # pragma: no cover
        return dict.fromkeys(("idle_bytes", "idle_blocks", "live_bytes", "live_blocks", "limit_bytes", "hits",
                              "misses", "evictions", "hit_bytes", "miss_bytes"), 0)
    return dict(_memory.stats())


def _arm_idle_timer() -> None:
    """(Re)start the daemon timer that frees blocks idle for IDLE_SECONDS once the stages have gone quiet."""
    global _timer
    with _timer_lock:
        if _timer is not None:
            _timer.cancel()
        _timer = threading.Timer(IDLE_SECONDS, _free_idle)
        _timer.daemon = True
        _timer.start()


def _free_idle() -> None:
    if _memory is not None:
        _memory.purge(IDLE_SECONDS)


def _after_fork_in_child() -> None:
    """A forked child runs only the forking thread: a timer lock another thread held at the fork would stay held
    (the child's first stage would hang as it ends), and the parent's timer thread does not exist."""
    global _timer_lock, _timer
    _timer_lock = threading.Lock()
    _timer = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
