"""SegmentReport: the only advertiser-facing type, exactly the ``adtarget.segment_report/v1`` JSON document.

A report is validated whenever one is made or written: against the bundled JSON Schema (read by a small
built-in validator in ``_report_schema``, so the writer needs no ``jsonschema``) and against checks a schema cannot express
(sizes and cells at or above ``min_reported_size``, cells at most the size, no string shaped like a
pseudonym, and — when the release passes them — no string or integer equal to a pseudonym of the data).
Error messages name the JSON path and the rule, never the offending string.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._core._atomic import atomic_path
from adtarget.exceptions import InputFormatError, ReportValidationError
from adtarget.reference._breakdowns import breakdown_dimensions
from adtarget.reports._report_schema import load_schema, schema_errors
from adtarget.reports._spec import looks_like_pseudonym

if TYPE_CHECKING:
    from adtarget.gate._policy import EligibilityPolicy
    from adtarget.reference._sensitivity import SafeTaxonomy

__all__ = ["SCHEMA_ID", "SCHEMA_IDS", "ReportAudit", "ReportSegment", "SegmentReport", "audit_report", "load_schema",
           "report_errors", "schema_errors", "validate_report"]

SCHEMA_ID = "adtarget.segment_report/v2"
#: every schema this version reads (a stored v1 report is still returned as it was written)
SCHEMA_IDS = ("adtarget.segment_report/v1", SCHEMA_ID)
_MAX_ERRORS = 20


# --- checks beyond the schema ----------------------------------------------------------------------------
def _strings_and_ints(v: Any, path: str) -> list[tuple[str, Any]]:
    if isinstance(v, dict):
        names = _field_names()  # the schema's own field names are shown; other keys only by position
        out = [(f"{path}[<key>]", k) for k in v]
        return out + [x for n, (k, item) in enumerate(v.items())
                      for x in _strings_and_ints(item, f"{path}.{k}" if k in names else f"{path}[key {n}]")]
    if isinstance(v, list):
        return [x for i, item in enumerate(v) for x in _strings_and_ints(item, f"{path}[{i}]")]
    return [(path, v)]


#: a report is a few hundred kilobytes; the limits bound what a hand-made file can cost to read and check
MAX_REPORT_BYTES = 64 << 20
MAX_REPORT_DEPTH = 16


def _report_text(path: Path) -> str:
    """A report file's text: a regular file of at most MAX_REPORT_BYTES, UTF-8."""
    from adtarget._core._files import regular_file

    regular_file(path, "report")
    if path.stat().st_size > MAX_REPORT_BYTES:
        raise InputFormatError(f"report: {path} is larger than {MAX_REPORT_BYTES >> 20} MiB; not a segment report")
    try:
        return path.read_text("utf-8")
    except UnicodeDecodeError:
        raise InputFormatError(f"report: {path} is not UTF-8 text") from None


def parse_report(text: str) -> Any:
    """The JSON document of a report's text, parsed with bounds: at most MAX_REPORT_BYTES and
    MAX_REPORT_DEPTH levels of nesting (the schema needs 6), and no object that repeats a key (JSON leaves
    which of the two counts to the reader); ReportValidationError otherwise."""
    if len(text) > MAX_REPORT_BYTES:
        raise ReportValidationError(f"report is larger than {MAX_REPORT_BYTES >> 20} MiB")
    try:
        doc = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float,
                         object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ReportValidationError(f"report nests deeper than {MAX_REPORT_DEPTH} levels") from None
    except ValueError as exc:
        raise ReportValidationError(f"report is not valid JSON: {exc.__class__.__name__} at position "
                                    f"{getattr(exc, 'pos', '?')}") from None
    stack = [(doc, 0)]
    repeated = False
    while stack:
        value, depth = stack.pop()
        if depth > MAX_REPORT_DEPTH:
            raise ReportValidationError(f"report nests deeper than {MAX_REPORT_DEPTH} levels")
        if isinstance(value, dict):
            repeated = repeated or isinstance(value, _RepeatedKeys)
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)
    if repeated:
        path, key = _repeated_key(doc)
        raise ReportValidationError(f"report is not valid: {path}: duplicate key {key}; each key may appear "
                                    f"once in an object")
    return doc


class _RepeatedKeys(dict[str, Any]):
    """A JSON object that repeats a key (the pairs as read, so the key can be named)."""

    pairs: list[tuple[str, Any]]


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s object hook: a dict, marked when the object repeats a key."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = _RepeatedKeys(obj)
    marked.pairs = pairs
    return marked


def _repeated_key(doc: Any) -> tuple[str, str]:
    """The JSON path of the first object that repeats a key, and the key as it may be shown: a field name of the
    schema quoted, any other key by its position (it may be data)."""
    names = _field_names()
    stack: list[tuple[Any, str]] = [(doc, "$")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, _RepeatedKeys):
            seen: set[str] = set()
            for n, (k, _) in enumerate(value.pairs):
                if k in seen:
                    return path, repr(k) if k in names else f"(key {n})"
                seen.add(k)
        if isinstance(value, dict):
            stack.extend((v, f"{path}.{k}" if k in names else f"{path}[key {n}]")
                         for n, (k, v) in enumerate(value.items()))
        elif isinstance(value, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(value))
    return "$", "(a key)"


def _finite_float(text: str) -> float:
    """A JSON number as a float; one too large for a float (``1e999``, read as infinity) is refused."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large for a float")
    return value


def _field_names() -> frozenset[str]:
    """Every property name the report schema declares (breakdown dimension names included)."""
    names: set[str] = set()
    stack: list[Any] = [load_schema()]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names.update(node.get("properties", {}) if isinstance(node.get("properties"), dict) else ())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(names)


def _leaves(doc: Any, strings: set[str], ints: list[int]) -> None:
    """Every string (keys included) and every int (not bool) of a JSON document, without their paths."""
    stack = [doc]
    while stack:
        v = stack.pop()
        items: Iterable[Any]
        if isinstance(v, dict):
            stack.extend(v)  # keys are leaves too
            items = v.values()
            if set(map(type, items)) == {int}:  # a breakdown's cells: all at once
                ints.extend(items)
                continue
        elif isinstance(v, list):
            items = v
        else:
            items = (v,)
        for item in items:
            if isinstance(item, str):
                strings.add(item)
            elif isinstance(item, int) and not isinstance(item, bool):
                ints.append(item)
            elif isinstance(item, dict | list):
                stack.append(item)


def _sorted_known(pseudonyms: np.ndarray) -> np.ndarray:
    known = np.asarray(pseudonyms, dtype=np.uint64)
    return known if known.size < 2 or (known[1:] > known[:-1]).all() else np.sort(known)


def _holds_pseudonym(doc: Any, pseudonyms: np.ndarray | None) -> bool:
    """Whether :func:`_pseudonym_errors` finds anything: the same tests over the distinct leaves, no paths."""
    strings: set[str] = set()
    ints: list[int] = []
    _leaves(doc, strings, ints)
    if any(looks_like_pseudonym(t) for t in strings):
        return True
    if pseudonyms is None or len(pseudonyms) == 0:
        return False
    tokens = [t for t in ints if 0 <= t < 2**64]
    tokens += [t for text in strings for t in map(int, re.findall(r"[0-9]{1,20}", text)) if t < 2**64]
    known, arr = _sorted_known(pseudonyms), np.array(tokens, dtype=np.uint64)
    return bool((known[np.minimum(np.searchsorted(known, arr), known.size - 1)] == arr).any())


def _pseudonym_errors(doc: Any, pseudonyms: np.ndarray | None) -> list[str]:
    return _pseudonym_problems(doc, pseudonyms) if _holds_pseudonym(doc, pseudonyms) else []


def _pseudonym_problems(doc: Any, pseudonyms: np.ndarray | None) -> list[str]:
    values = _strings_and_ints(doc, "$")
    errors = [f"{p}: holds a run of 16+ hex digits (the form of a pseudonym)"
              for p, v in values if isinstance(v, str) and looks_like_pseudonym(v)]
    if pseudonyms is None or len(pseudonyms) == 0:
        return errors
    known = _sorted_known(pseudonyms)
    where, tokens = [], []
    for p, v in values:
        if isinstance(v, bool) or not isinstance(v, int | str):
            continue
        for t in ([int(t) for t in re.findall(r"[0-9]{1,20}", v)] if isinstance(v, str) else [v]):
            if 0 <= t < 2**64:
                where.append(p)
                tokens.append(t)
    arr = np.array(tokens, dtype=np.uint64)
    pos = np.minimum(np.searchsorted(known, arr), known.size - 1)  # one vectorised lookup for the whole report
    hits = dict.fromkeys(p for p, hit in zip(where, known[pos] == arr) if hit)
    return errors + [f"{p}: holds (the decimal form of) a pseudonym of the data" for p in hits]


def _segment_ok(seg: Mapping[str, Any], size_min: int, cell_min: int) -> bool:
    """Whether :func:`_segment_errors` finds nothing (the same rules, no messages)."""
    size, breakdowns, interval = seg["size"], seg["breakdowns"], seg.get("size_interval")
    return (size >= size_min
            and all(cell_min <= c <= size for cells in breakdowns.values() for c in cells.values())
            and all(sum(breakdowns.get(d, {}).values()) <= size for d in _one_value_per_person())
            and (interval is None or interval["lower"] <= size <= interval["upper"]))


def _one_value_per_person() -> tuple[str, ...]:
    """Dimensions whose cells partition the segment (one value per person), so they sum to at most its size."""
    return tuple(d.name for d in breakdown_dimensions() if d.consistency == "sums_to_size")


def _segment_errors(seg: Mapping[str, Any], i: int, size_min: int, cell_min: int) -> list[str]:
    if _segment_ok(seg, size_min, cell_min):
        return []
    errors, size, interval = [], seg["size"], seg.get("size_interval")
    if size < size_min:
        errors.append(f"$.segments[{i}].size: must be >= the size threshold {size_min} (at least "
                      f"min_reported_size), got {size}")
    if interval is not None and not interval["lower"] <= size <= interval["upper"]:
        errors.append(f"$.segments[{i}].size_interval: must contain the size {size}")
    for dim, cells in seg["breakdowns"].items():
        for n, c in enumerate(cells.values()):
            where = f"$.segments[{i}].breakdowns.{dim}[{n}]"
            if not cell_min <= c <= size:
                errors.append(f"{where}: must be in [the cell threshold {cell_min}, size {size}], got {c}")
    for dim in _one_value_per_person():
        if sum(seg["breakdowns"].get(dim, {}).values()) > size:
            errors.append(f"$.segments[{i}].breakdowns.{dim}: one value per person, so the cells must sum to at "
                          f"most the size {size}")
    return errors


def report_errors(doc: Any, *, pseudonyms: np.ndarray | None = None) -> list[str]:
    """Every violation of the schema and of the report's own rules (empty when valid)."""
    errors = schema_errors(doc)
    if errors:
        return errors + _pseudonym_errors(doc, pseudonyms)
    min_size = doc["privacy"]["min_reported_size"]  # v1 documents have no thresholds
    size_min = max(min_size, doc["privacy"].get("size_threshold", min_size))
    cell_min = max(min_size, doc["privacy"].get("cell_threshold", min_size))
    for i, seg in enumerate(doc["segments"]):
        errors += _segment_errors(seg, i, size_min, cell_min)
    ids = [s["segment_id"] for s in doc["segments"]]
    if len(set(ids)) != len(ids):
        errors.append(f"$.segments: segment ids must be unique, got {len(ids)} with {len(set(ids))} distinct")
    if doc["data_window"]["start"] >= doc["data_window"]["end"]:
        errors.append("$.data_window: start must be before end")
    return errors + _pseudonym_errors(doc, pseudonyms)


def validate_report(doc: Any, *, pseudonyms: np.ndarray | None = None) -> None:
    """Raise ReportValidationError listing the violations of ``doc`` (see :func:`report_errors`)."""
    errors = report_errors(doc, pseudonyms=pseudonyms)
    if errors:
        more = f" (and {len(errors) - _MAX_ERRORS} more)" if len(errors) > _MAX_ERRORS else ""
        raise ReportValidationError(f"report does not conform to {_named_schema(doc)}: "
                                    + "; ".join(errors[:_MAX_ERRORS]) + more)


def _named_schema(doc: Any) -> str:
    from adtarget.reports._report_schema import schema_version

    return f"adtarget.segment_report/v{schema_version(doc)}"


# --- the report type --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReportSegment:
    """One reported segment (read-only view of the JSON); ``size_interval`` is ``(lower, upper)``, the 95 %
    interval of the size (None in a v1 report)."""

    segment_id: str
    name: str
    path: tuple[str, ...]
    size: int
    breakdowns: Mapping[str, Mapping[str, int]]
    size_interval: tuple[int, int] | None = None


class SegmentReport:
    """A validated ``adtarget.segment_report/v2`` document (or a stored v1 one): DP-noised, thresholded
    aggregates only.

    Parameters
    ----------
    doc : mapping
        The JSON document (as ``json.loads`` returns it). It is validated and deep-copied.

    Raises
    ------
    ReportValidationError
        The document breaks the schema or the report's rules.
    """

    __slots__ = ("_doc",)
    _doc: dict[str, Any]

    def __init__(self, doc: Mapping[str, Any]) -> None:
        validate_report(doc)
        object.__setattr__(self, "_doc", copy.deepcopy(dict(doc)))

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("SegmentReport is immutable")

    @classmethod
    def _of_validated(cls, doc: dict[str, Any]) -> SegmentReport:
        """Wrap ``doc`` that :func:`validate_report` has just accepted and that no one else holds (the
        release's own document): no second validation, no copy."""
        report = object.__new__(cls)
        object.__setattr__(report, "_doc", doc)
        return report

    @classmethod
    def from_json(cls, text: str) -> SegmentReport:
        """Parse and validate a report's JSON text."""
        return cls(parse_report(text))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> SegmentReport:
        """Read and validate a report file."""
        return cls.from_json(_report_text(Path(path)))

    def to_dict(self) -> dict[str, Any]:
        """A deep copy of the JSON document."""
        return copy.deepcopy(self._doc)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The JSON text (strict JSON: an ε = ∞ test report cannot be serialised)."""
        if not math.isfinite(self._doc["privacy"]["epsilon"]):
            raise ReportValidationError("$.privacy.epsilon: inf (a test-only, noise-free report) cannot be "
                                        "written as JSON")
        return json.dumps(self._doc, indent=indent, ensure_ascii=False, allow_nan=False)

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Validate again and write atomically (temporary file + rename); returns the path."""
        validate_report(self._doc)
        text = self.to_json() + "\n"
        target = Path(path)
        with atomic_path(target) as temporary:
            temporary.write_text(text, encoding="utf-8")
        return target

    # --- read-only accessors -------------------------------------------------------------------------
    @property
    def report_id(self) -> str:
        return str(self._doc["report_id"])

    @property
    def advertiser(self) -> str:
        return str(self._doc["advertiser"])

    @property
    def created_at(self) -> str:
        return str(self._doc["created_at"])

    @property
    def data_window(self) -> dict[str, str]:
        return dict(self._doc["data_window"])

    @property
    def policy(self) -> dict[str, Any]:
        return dict(self._doc["policy"])

    @property
    def privacy(self) -> dict[str, Any]:
        return copy.deepcopy(self._doc["privacy"])

    @property
    def suppressed_segments(self) -> int:
        return int(self._doc["suppressed_segments"])

    @property
    def segments(self) -> tuple[ReportSegment, ...]:
        return tuple(ReportSegment(s["segment_id"], s["name"], tuple(s["path"]), s["size"],
                                   {d: dict(cells) for d, cells in s["breakdowns"].items()},  # str -> int: a copy
                                   (s["size_interval"]["lower"], s["size_interval"]["upper"])
                                   if "size_interval" in s else None)
                     for s in self._doc["segments"])

    @property
    def schema(self) -> str:
        """The schema the document follows (``adtarget.segment_report/v2``, or v1 for a stored older report)."""
        return str(self._doc["schema"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SegmentReport) and self._doc == other._doc

    def __hash__(self) -> int:
        return hash(json.dumps(self._doc, sort_keys=True, default=str))

    def __repr__(self) -> str:
        return (f"SegmentReport(advertiser={self._doc['advertiser']!r}, segments={len(self._doc['segments'])}, "
                f"suppressed={self._doc['suppressed_segments']}, epsilon={self._doc['privacy']['epsilon']!r})")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


# --- auditing a report file (the CLI's `adtarget audit REPORT`) ------------------------------------------
@dataclass(frozen=True)
class ReportAudit:
    """Outcome of :func:`audit_report`: ``ok`` and the problems found (one line each)."""

    path: str
    ok: bool
    n_segments: int
    problems: tuple[str, ...]

    def __str__(self) -> str:
        if self.ok:
            return f"{self.path}: OK ({self.n_segments} segments)"
        return f"{self.path}: {len(self.problems)} problem(s): " + "; ".join(self.problems)


def _policy_problems(doc: Mapping[str, Any], policy: Any, safe_taxonomy: Any) -> list[str]:
    problems = []
    if policy is not None and doc["policy"]["min_age"] < getattr(policy, "min_age", 13):
        problems.append(f"$.policy.min_age: {doc['policy']['min_age']} is below the policy's {policy.min_age}")
    version = getattr(policy, "min_policy_version", None)
    if version is not None and doc["policy"]["version"] not in (version,):
        problems.append(f"$.policy.version: must be {version!r} under this policy")
    profile = safe_taxonomy.profile.name
    if doc["policy"]["sensitivity_profile"] != profile:
        problems.append(f"$.policy.sensitivity_profile: report says {doc['policy']['sensitivity_profile']!r}, "
                        f"this audit uses {profile!r}")
    return problems


def sensitive_segment_problems(segment_ids: Sequence[str], safe_taxonomy: Any) -> list[str]:
    """Problems with segment ids of ``safe_taxonomy``'s taxonomy that name a sensitive node (or no node)."""
    taxonomy, problems = safe_taxonomy.taxonomy, []
    owners, tokens = [], []  # "483", "483-top3", "all2-483-597": every token that may be a node id
    for i, segment_id in enumerate(segment_ids):
        prefix, _, local = segment_id.partition(":")
        if prefix == taxonomy.name:
            parts = local.split("-")
            owners += [i] * len(parts)
            tokens += parts
    index = np.asarray(taxonomy.index_of(np.asarray(tokens, dtype=str)), dtype=np.int64).reshape(-1)
    safe = np.asarray(safe_taxonomy.safe_mask)
    named = {owners[j] for j in np.flatnonzero(index >= 0)}
    for i in sorted(set(owners) - named):
        local = segment_ids[i].partition(":")[2]
        if not re.match(r"(all|any)[0-9]*-", local):
            problems.append(f"$.segments[{i}].segment_id: {segment_ids[i]!r} names no node of taxonomy "
                            f"{taxonomy.name!r}")
    for j in np.flatnonzero((index >= 0) & ~safe[np.maximum(index, 0)]):
        i = owners[j]
        problems.append(f"$.segments[{i}].segment_id: {segment_ids[i]!r} uses sensitive node {tokens[j]!r}")
    return problems


def _sensitive_problems(segments: Sequence[Mapping[str, Any]], safe_taxonomy: Any) -> list[str]:
    return sensitive_segment_problems([seg["segment_id"] for seg in segments], safe_taxonomy)


def audit_report(path: str | os.PathLike[str], policy: EligibilityPolicy, safe_taxonomy: SafeTaxonomy) -> ReportAudit:
    """Check a report file: schema, report rules (sizes >= min), policy fields and sensitive segment ids.

    Parameters
    ----------
    path : path of the report JSON.
    policy : EligibilityPolicy (or None to skip the policy checks).
    safe_taxonomy : SafeTaxonomy whose sensitive nodes must not appear as segments.

    Returns
    -------
    ReportAudit
        Never raises for a bad report; raises InputFormatError when the file is missing.
    """
    p = Path(path)
    try:
        doc = parse_report(_report_text(p))
    except ReportValidationError as exc:
        return ReportAudit(str(p), False, 0, (str(exc),))
    problems = report_errors(doc)
    if not schema_errors(doc):
        problems += _policy_problems(doc, policy, safe_taxonomy) + _sensitive_problems(doc["segments"],
                                                                                      safe_taxonomy)
    n = len(doc["segments"]) if isinstance(doc, dict) and isinstance(doc.get("segments"), list) else 0
    return ReportAudit(str(p), not problems, n, tuple(problems))
