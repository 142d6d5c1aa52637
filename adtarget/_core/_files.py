"""Input files read defensively, for events and consent alike.

* Only regular files are opened: a FIFO nobody writes would block forever and a device (``/dev/zero``) never
  ends, so both are refused by ``stat`` before anything is read — in a dataset directory, file by file.
* A Parquet dataset is read with the union of its files' schemas, so a column that only a later file adds is
  seen (and checked against the contract) instead of silently dropped; a caller may also require columns in
  each file (consent: a file without ``birth_year`` would otherwise read as nulls, unknown ages).
* Nested Arrow types (lists, structs, maps, unions) are refused by column name: the contracts are flat.
* Error descriptions never quote the input: :func:`describe` keeps the start of a library's message up to its
  first ``": "`` (where pyarrow appends the offending row or value), printable and capped.
"""

from __future__ import annotations

import os
import re
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from adtarget.exceptions import InputFormatError, SchemaError

__all__ = ["dataset_files", "describe", "flat_columns", "holds_utf16", "parquet_schema", "read_parquet_table",
           "regular_file"]

_KINDS = ((stat.S_ISFIFO, "FIFO"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
          (stat.S_ISSOCK, "socket"), (stat.S_ISDIR, "directory"))
_MAX_DESCRIPTION = 160


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|b'[^']*'")


def describe(exc: BaseException) -> str:
    """A short, printable description of ``exc`` that quotes no input (see the module docstring)."""
    if isinstance(exc, UnicodeError):
        return "not UTF-8 text"  # the codec's message quotes a byte of the input
    lines = str(exc).strip().splitlines()
    text = lines[0].split(": ")[0] if lines else ""
    text = _QUOTED.sub("'…'", text)  # pyarrow quotes the value before the first ": " ("Could not convert 'x'")
    text = "".join(c if c.isprintable() else "?" for c in text)[:_MAX_DESCRIPTION].strip()
    return text or type(exc).__name__


def _shown_path(path: Path) -> str:
    """A path for a message, printable (a file name may hold control characters)."""
    return "".join(c if c.isprintable() else "?" for c in str(path))


def regular_file(path: Path, what: str) -> Path:
    """``path`` if it names a regular file (symbolic links followed); InputFormatError otherwise."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise InputFormatError(f"{what}: {path} does not exist") from None
    except OSError as exc:
        raise InputFormatError(f"{what}: {path} cannot be read ({describe(exc)})") from None
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "special file")
        raise InputFormatError(f"{what}: {path} is not a regular file (a {kind}); give a file or a dataset "
                               f"directory of files")
    return path


def holds_utf16(path: Path) -> bool:
    """Whether a text file is UTF-16: a byte-order mark (``FF FE`` or ``FE FF``) and text after it (its first
    64 KiB decode as UTF-16 into printable characters and line breaks), so other bytes that happen to start
    alike are left to the reader's own error."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    if head[:2] not in (b"\xff\xfe", b"\xfe\xff"):
        return False
    try:
        text = head[:len(head) & ~1].decode("utf-16")
    except UnicodeDecodeError:
        return False
    if len(head) == 1 << 16:
        text = text[:-1]  # the last code unit may be half of a pair cut by the read
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def dataset_files(directory: Path, what: str) -> list[Path]:
    """The data files of a dataset directory, as Arrow discovers them (names starting with ``.`` or ``_`` are
    not data), each checked to be a regular file; InputFormatError when there are none, and for a directory
    that cannot be listed or a symbolic link to a directory inside it (neither is skipped in silence: a file
    left out would drop its rows, an opt-out among them)."""
    def unreadable(error: OSError) -> None:
        raise InputFormatError(f"{what}: {error.filename} inside {directory} cannot be read "
                               f"({error.strerror or 'error'}); fix its permissions") from None

    files = []
    for root, dirs, names in os.walk(directory, onerror=unreadable, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        linked = [d for d in dirs if (Path(root) / d).is_symlink()]
        if linked:
            raise InputFormatError(f"{what}: {Path(root) / linked[0]} inside {directory} is a symbolic link to a "
                                   f"directory, which adtarget does not follow; give the real directory")
        files += [Path(root) / n for n in sorted(names) if not n.startswith((".", "_"))]
    if not files:
        raise InputFormatError(f"{what}: {directory} is a directory without data files")
    return [regular_file(f, what) for f in files]


def flat_columns(schema: Any, what: str) -> None:
    """Refuse a schema with a nested column (the contracts hold scalars only), naming the column."""
    import pyarrow as pa

    for field in schema:
        kind = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_nested(kind):
            shown = str(kind)[:80]
            raise InputFormatError(f"{what}: column {field.name!r} has the nested type {shown}; adtarget reads "
                                   f"flat columns only (strings, integers, floats, booleans, timestamps)")


def read_parquet_table(path: Path, what: str, *, dictionary_strings: bool = False,
                       required_in_each: tuple[str, ...] = ()) -> Any:
    """A Parquet file or dataset directory as one Arrow table with the union of its files' schemas.

    ``dictionary_strings`` reads string columns dictionary-encoded (what ingest codes fastest).
    ``required_in_each``: columns that, when any file of a dataset has them, every file must have (in its
    schema or as a partition directory ``key=value`` above it); SchemaError naming the file and the column
    otherwise, instead of the nulls the union would read for it. A column no file has is left to the caller's
    contract check.
    """
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    files, schema, partition = _files_and_schema(path, what, required_in_each)
    if dictionary_strings:
        schema = pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), f.type))
                            if pa.types.is_string(f.type) and f.name not in partition.names else f for f in schema])
    try:
        if not path.is_dir():
            return pq.read_table(files[0], schema=schema)
        partitioning = pads.partitioning(partition, flavor="hive")
        return pads.dataset([str(f) for f in files], schema=schema, format="parquet", partitioning=partitioning,
                            partition_base_dir=str(path)).to_table()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:  # not memory
        raise InputFormatError(f"{what}: {path} is not a readable Parquet file or dataset ({describe(exc)})") from None


def parquet_schema(path: Path, what: str) -> Any:
    """The union schema of a Parquet file or dataset directory (footers and hive partition directories
    ``key=value`` only), checked flat."""
    return _files_and_schema(path, what)[1]


def _files_and_schema(path: Path, what: str, required_in_each: tuple[str, ...] = ()) -> tuple[list[Path], Any, Any]:
    """The data files, the union of their schemas plus the hive partition columns, and those columns (see
    :func:`read_parquet_table` for ``required_in_each``)."""
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.parquet as pq

    files = dataset_files(path, what) if path.is_dir() else [regular_file(path, what)]
    schemas = []
    for f in files:  # one by one, so a bad file of a dataset is named
        try:
            schemas.append(pq.read_schema(f))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
            raise InputFormatError(f"{what}: {_shown_path(f)} is not a readable Parquet file ({describe(exc)})") \
                from None
        twice = [n for n, k in Counter(schemas[-1].names).items() if k > 1]
        if twice:
            raise InputFormatError(f"{what}: {_shown_path(f)} has the column {twice[0][:40]!r} twice")
    try:
        partition = pa.schema([])
        keys = sorted({part.split("=", 1)[0] for f in files if path.is_dir()
                       for part in f.relative_to(path).parent.parts if "=" in part})
        if keys:  # hive directories key=value: their types as Arrow infers them
            found = pads.dataset([str(f) for f in files], format="parquet", partitioning="hive",
                                 partition_base_dir=str(path)).partitioning
            partition = pa.schema([found.schema.field(k) for k in keys if k in found.schema.names])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        raise InputFormatError(f"{what}: {path} is not a readable Parquet file or dataset ({describe(exc)})") from None
    schema = _union(schemas, files, what)
    clash = [n for n in partition.names if n in schema.names]
    if clash:
        raise InputFormatError(f"{what}: column {clash[0]!r} is both a partition directory and a file column")
    schema = pa.schema([*schema, *partition])
    flat_columns(schema, what)
    if path.is_dir():
        _required_in_each(path, files, schemas, [c for c in required_in_each if c in schema.names], what)
    return files, schema, partition


def _required_in_each(directory: Path, files: list[Path], schemas: list[Any], required: list[str], what: str) -> None:
    """Refuse the first file of a dataset that lacks one of ``required`` (neither a column nor a partition)."""
    for f, file_schema in zip(files, schemas):
        keys = {part.split("=", 1)[0] for part in f.relative_to(directory).parent.parts if "=" in part}
        missing = [c for c in required if c not in file_schema.names and c not in keys]
        if missing:
            raise SchemaError(f"{what}: {_shown_path(f)} has no column {missing[0]!r}, which the others have; "
                              f"every file of a dataset must hold every required column")


def _union(schemas: list[Any], files: list[Path], what: str) -> Any:
    """The union of the files' schemas; a column whose type differs between files is named."""
    import pyarrow as pa

    plain = [pa.schema([pa.field(f.name, f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
                        for f in s]) for s in schemas]
    first: dict[str, tuple[Any, Path]] = {}
    for schema, file in zip(plain, files):
        for field in schema:
            seen = first.setdefault(field.name, (field.type, file))
            if seen[0] != field.type:
                raise InputFormatError(f"{what}: column {field.name!r} is {str(seen[0])[:40]} in {seen[1].name} but "
                                       f"{str(field.type)[:40]} in {file.name}; every file of a dataset must agree")
    return pa.unify_schemas(plain)
