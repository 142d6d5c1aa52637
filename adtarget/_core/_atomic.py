"""Atomic file replacement: write beside the target, fsync, rename. A crash leaves the old file or the new one,
never a truncated mix. Used by every writer of files the SDK owns (reports, assignments, purged datasets)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "private_file", "write_private_text"]


def private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and readable by its owner only (0600) if it does not exist; returns it.

    For files that hold personal or exact data (ledgers): SQLite creates a missing database with the
    process's umask, and its ``-wal``/``-shm`` files with the database's mode, so creating the file first
    keeps all three private.
    """
    target = Path(path)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return target


def write_private_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``target`` atomically, readable by its owner only (0600); returns the path."""
    final = Path(target)
    with atomic_path(final) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return final


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in ``target``'s directory; on success it is fsynced and renamed onto ``target``.

    The temporary file, and so ``target``, is created readable and writable by its owner only (0600).

    On any error (or if the body raises), the temporary file is removed and ``target`` is left untouched.
    """
    final = Path(target)
    fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, final)
        _fsync_directory(final.parent)
    finally:
        temporary.unlink(missing_ok=True)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
