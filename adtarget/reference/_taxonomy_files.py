"""Taxonomy loaders: the bundled reference taxonomies (cached) and user TSV/CSV/JSON files of nodes.

The bundled files are read with ``importlib.resources`` from ``adtarget/data/taxonomy/``; errors in any file
name the file and its line (or JSON node). :meth:`Taxonomy.default`, :meth:`Taxonomy.load` and the other
loader classmethods of :class:`~adtarget.reference.Taxonomy` call :func:`builtin` and :func:`load_path_or_name`,
passing the class as ``make`` (this module builds node tables; it does not import the class: no cycle).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from adtarget.exceptions import InputFormatError, TaxonomyError

__all__ = ["IAB_NON_INTEREST_ROOTS", "builtin", "load_path_or_name"]

#: the Taxonomy class (its constructor), passed in by its loader classmethods
Make = Callable[..., Any]

#: Trees of IAB Content 2.2 that describe the content itself (channel, format, language, origin), not interests.
IAB_NON_INTEREST_ROOTS = frozenset({
    "Content Channel", "Content Type", "Content Source", "Content Media Format", "Content Language",
    "Content Source Geo",
})


def _resource_rows(filename: str) -> list[list[str]]:
    from importlib.resources import files

    text = (files("adtarget") / "data" / "taxonomy" / filename).read_text(encoding="utf-8")
    return [line.split("\t") for line in text.splitlines()]


def _line_label(lines: Sequence[int], source: str) -> Callable[[int], str]:
    return lambda k: f"line {lines[k]} of {source}"


def _load_iab_content_2_2(make: Make) -> Any:
    """Numeric-id interest trees of IAB Content 2.2 (two header lines; columns id, parent, name, tiers, SCD)."""
    source = "iab_content_taxonomy_2.2.tsv"
    rows = _resource_rows(source)
    kept = [(k + 1, r) for k, r in enumerate(rows) if k >= 2 and r[0].isascii() and r[0].isdigit()]
    lines = [k for k, _ in kept]
    cols = list(zip(*(r[:3] + [r[7] if len(r) > 7 else ""] for _, r in kept), strict=True))
    full = make("iab-2.2", cols[0], cols[1], cols[2], scd=np.asarray(cols[3]) == "SCD",
                    row_label=_line_label(lines, source))
    keep = ~np.isin(full.names[full.ancestor_at_tier[:, 0]], sorted(IAB_NON_INTEREST_ROOTS))
    idx = np.flatnonzero(keep)
    return make("iab-2.2", full.ids[idx], np.asarray(cols[1])[idx], full.names[idx], scd=full.scd[idx],
                    row_label=_line_label([lines[i] for i in idx], source))


def _load_chrome_topics_v2(make: Make) -> Any:
    """Chrome Topics v2 (columns id, parent_id, depth, name as a /-path, id_in_v1); names are the last step."""
    source = "chrome_topics_taxonomy_v2.tsv"
    rows = _resource_rows(source)[1:]
    names = [r[3].rsplit("/", 1)[-1] for r in rows]
    return make("topics-v2", [r[0] for r in rows], [r[1] for r in rows], names,
                    row_label=_line_label(range(2, len(rows) + 2), source))


def _load_iab_audience_1_1(make: Make) -> Any:
    """IAB Audience 1.1 (leading blank column, id, parent, condensed name, Tier 1..6); name = deepest tier."""
    source = "iab_audience_taxonomy_1.1.tsv"
    rows = _resource_rows(source)[1:]
    names = [[t.strip() for t in r[4:10] if t.strip()][-1] for r in rows]
    return make("iab-audience-1.1", [r[1] for r in rows], [r[2] for r in rows], names,
                    row_label=_line_label(range(2, len(rows) + 2), source))


_BUILTIN_LOADERS: dict[str, Callable[[Make], Any]] = {
    "iab-2.2": _load_iab_content_2_2, "topics-v2": _load_chrome_topics_v2,
    "iab-audience-1.1": _load_iab_audience_1_1,
}


def builtin_names() -> tuple[str, ...]:
    """Names of the bundled taxonomies."""
    return tuple(_BUILTIN_LOADERS)


@functools.cache
def builtin(name: str, make: Make) -> Any:
    """The bundled taxonomy ``name`` (``"iab-2.2"``, ``"topics-v2"`` or ``"iab-audience-1.1"``), loaded once."""
    return _BUILTIN_LOADERS[name](make)


def load_path_or_name(path_or_name: str | PathLike[str], *, name: str | None, make: Make) -> Any:
    """A bundled taxonomy by name, or one read from a .tsv/.csv/.json file (see :meth:`Taxonomy.load`)."""
    if isinstance(path_or_name, str) and path_or_name in _BUILTIN_LOADERS:
        return builtin(path_or_name, make)
    path = Path(path_or_name)
    if not path.is_file():
        raise InputFormatError(f"path_or_name must be a bundled taxonomy ({', '.join(_BUILTIN_LOADERS)}) or an "
                               f"existing file, got {str(path_or_name)!r}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _load_json(path, name, make)
    if suffix in (".tsv", ".csv"):
        return _load_table(path, "\t" if suffix == ".tsv" else ",", name, make)
    raise InputFormatError(f"taxonomy file {path.name!r}: extension must be .tsv, .csv or .json, got {suffix!r}")


_TRUE = frozenset({"1", "true", "yes", "scd"})
_FALSE = frozenset({"", "0", "false", "no"})


def _load_table(path: Any, delimiter: str, name: str | None, make: Make) -> Any:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = [(k + 1, r) for k, r in enumerate(csv.reader(f, delimiter=delimiter)) if any(c.strip() for c in r)]
    if not rows:
        raise TaxonomyError(f"taxonomy file {path.name!r} is empty: expected a header with id, parent, name")
    header = [c.strip().lower() for c in rows[0][1]]
    missing = [c for c in ("id", "parent", "name") if c not in header]
    if missing:
        raise TaxonomyError(f"taxonomy file {path.name!r}: missing column(s) {missing}; found {header}")
    data = rows[1:]
    if not data:
        raise TaxonomyError(f"taxonomy file {path.name!r} has a header but no nodes")
    width = len(header)
    table = {c: [(r + [""] * width)[header.index(c)].strip() for _, r in data] for c in header}
    lines = [k for k, _ in data]
    scd = _parse_scd(path.name, table["scd"], lines) if "scd" in table else None
    return make(name or path.stem, table["id"], table["parent"], table["name"], scd=scd,
                    row_label=_line_label(lines, repr(path.name)))


def _parse_scd(source: str, values: list[str], lines: list[int]) -> np.ndarray:
    low = [v.lower() for v in values]
    for k, v in enumerate(low):
        if v not in _TRUE and v not in _FALSE:
            raise TaxonomyError(f"taxonomy file {source!r}: column 'scd' at line {lines[k]} must be one of "
                                f"{sorted(_TRUE | _FALSE)}, got {values[k]!r}")
    return np.asarray([v in _TRUE for v in low], dtype=bool)


def _load_json(path: Any, name: str | None, make: Make) -> Any:
    import json

    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise TaxonomyError(f"taxonomy file {path.name!r} is empty: expected a list of nodes")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise TaxonomyError(f"taxonomy file {path.name!r} is not valid JSON: {e}") from None
    nodes = doc.get("nodes") if isinstance(doc, dict) else doc
    if not isinstance(nodes, list) or not nodes:
        raise TaxonomyError(f"taxonomy file {path.name!r}: expected a non-empty list of nodes (or an object "
                            f"with a 'nodes' list), got {type(nodes).__name__}")
    for k, node in enumerate(nodes):
        missing = ["id", "name"] if not isinstance(node, dict) else [c for c in ("id", "name") if c not in node]
        if missing:
            raise TaxonomyError(f"taxonomy file {path.name!r}: node {k} must be an object with keys id, name "
                                f"(parent optional); missing {missing} in {type(node).__name__}")
    doc_name = doc.get("name") if isinstance(doc, dict) else None
    parents = ["" if n.get("parent") is None else str(n["parent"]) for n in nodes]
    return make(name or (doc_name if isinstance(doc_name, str) else path.stem), [str(n["id"]) for n in nodes],
                    parents, [str(n["name"]) for n in nodes], row_label=lambda k: f"node {k} of {path.name!r}")
