"""The ``adtarget.segment_report/v1`` JSON Schema and the built-in validator of the subset it uses.

Two readings of the same rules: :func:`_validate` walks a document and names every violation (JSON path and
rule, never a string's content); :func:`_compiled_schema` is a closure tree built once from the schema that
only accepts or rejects, at a fraction of the cost. :func:`schema_errors` runs the compiled check and walks
only when it rejects, so a valid report costs one fast pass. The compiled check is never more lenient than
the walk (it may be stricter, e.g. on ``int`` subclasses, which then just take the walk); tests compare them.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable
from importlib import resources
from typing import Any

from adtarget.exceptions import ReportValidationError
from adtarget.reference._breakdowns import BreakdownDimension, breakdown_dimensions

__all__ = ["SCHEMA_VERSIONS", "breakdowns_schema", "load_schema", "schema_errors", "schema_version"]

_TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict), "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str), "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
}


#: the report schemas this version reads, oldest first; it writes the last
SCHEMA_VERSIONS: tuple[int, ...] = (1, 2)


def load_schema(version: int = SCHEMA_VERSIONS[-1]) -> dict[str, Any]:
    """The JSON Schema of ``adtarget.segment_report/v<version>`` (draft 2020-12; default the one written): the
    bundled file, its ``breakdowns`` object made from the breakdown dimensions' table (they agree for the
    shipped table; a test checks it)."""
    if version not in SCHEMA_VERSIONS:
        raise ReportValidationError(f"$.schema: version {version!r} is not one of {list(SCHEMA_VERSIONS)}")
    return _schema(breakdown_dimensions(), version)


def schema_version(doc: Any) -> int:
    """The version a document names (``adtarget.segment_report/v<N>``); the newest when it names none, so its
    own schema's ``const`` reports the mistake."""
    name = doc.get("schema") if isinstance(doc, dict) else None
    for version in SCHEMA_VERSIONS:
        if name == f"adtarget.segment_report/v{version}":
            return version
    return SCHEMA_VERSIONS[-1]


@functools.cache
def _schema(dimensions: tuple[BreakdownDimension, ...], version: int) -> dict[str, Any]:
    text = resources.files("adtarget").joinpath(f"data/segment_report_v{version}.schema.json").read_text("utf-8")
    schema = json.loads(text)
    schema["$defs"]["segment"]["properties"]["breakdowns"]["properties"] = breakdowns_schema(dimensions)
    return schema


def breakdowns_schema(dimensions: tuple[BreakdownDimension, ...]) -> dict[str, Any]:
    """The ``breakdowns`` object's properties: a closed object of a fixed dimension's values, else cells."""
    count = {"$ref": "#/$defs/count"}
    return {d.name: {"type": "object", "additionalProperties": False,
                     "properties": dict.fromkeys(d.fixed_values, count)}
            if d.values == "fixed" else {"$ref": "#/$defs/cells"} for d in dimensions}


# --- the built-in validator (the subset of JSON Schema the bundled schema uses) ------------------------
def _shown(value: Any) -> str:
    """A value for an error message: never a string's content (it might be a pseudonym)."""
    if isinstance(value, str):
        return f"a string of length {len(value)}"
    if isinstance(value, bool) or value is None or (isinstance(value, int | float) and abs(value) < 2**32):
        return repr(value)
    return f"a {type(value).__name__}"


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ReportValidationError(f"schema: unsupported $ref {ref!r}")
        schema = root["$defs"][ref[len("#/$defs/"):]]
    return schema


def _check_scalar(v: Any, s: dict[str, Any], path: str, errors: list[str]) -> None:
    if "const" in s and v != s["const"]:
        errors.append(f"{path}: must be {s['const']!r}, got {_shown(v)}")
    if "enum" in s and v not in s["enum"]:
        errors.append(f"{path}: must be one of {s['enum']}, got {_shown(v)}")
    if isinstance(v, str):
        if "pattern" in s and re.search(s["pattern"], v) is None:
            errors.append(f"{path}: must match {s['pattern']}, got {_shown(v)}")
    elif _TYPES["number"](v):
        for key, ok in (("minimum", lambda b: v >= b), ("maximum", lambda b: v <= b),
                        ("exclusiveMinimum", lambda b: v > b), ("exclusiveMaximum", lambda b: v < b)):
            if key in s and not ok(s[key]):
                errors.append(f"{path}: must satisfy {key} {s[key]}, got {_shown(v)}")


def _check_object(v: dict[str, Any], s: dict[str, Any], root: dict[str, Any], path: str,
                  errors: list[str]) -> None:
    props = s.get("properties", {})
    for key in s.get("required", ()):
        if key not in v:
            errors.append(f"{path}: missing required field {key!r}")
    for n, (key, item) in enumerate(v.items()):
        # a key the schema names is shown; any other (a breakdown value, a hand-edited field) by its position
        where = f"{path}.{key}" if key in props else f"{path}[key {n}]"
        if "propertyNames" in s:
            _validate(key, s["propertyNames"], root, f"{where} (key)", errors)
        if key in props:
            _validate(item, props[key], root, where, errors)
        elif s.get("additionalProperties", True) is False:
            errors.append(f"{path}: unknown field {n} ({_shown(key)})")
        elif isinstance(s.get("additionalProperties"), dict):
            _validate(item, s["additionalProperties"], root, where, errors)


def _validate(v: Any, schema: dict[str, Any], root: dict[str, Any], path: str, errors: list[str]) -> None:
    s = _resolve(schema, root)
    kind = s.get("type")
    if kind is not None and not _TYPES[kind](v):
        errors.append(f"{path}: must be of type {kind}, got {type(v).__name__}")
        return
    _check_scalar(v, s, path, errors)
    if isinstance(v, dict):
        _check_object(v, s, root, path, errors)
    elif isinstance(v, list):
        if "maxItems" in s and len(v) > s["maxItems"]:
            errors.append(f"{path}: must have at most {s['maxItems']} items, got {len(v)}")
        for i, item in enumerate(v):
            _validate(item, s.get("items", {}), root, f"{path}[{i}]", errors)


def schema_errors(doc: Any) -> list[str]:
    """Violations of the bundled JSON Schema (empty when valid).

    A compiled accept-only check runs first; the walk above, which names every violation, runs only when
    it rejects (it is never more lenient than the walk: ``tests/test_report.py`` compares them).
    """
    version = schema_version(doc)
    if _compiled(breakdown_dimensions(), version)(doc):
        return []
    errors: list[str] = []
    schema = load_schema(version)
    _validate(doc, schema, schema, "$", errors)
    return errors


# --- the compiled accept-only check: same rules as _validate, no paths, no messages -----------------------
_Check = Callable[[Any], bool]


def _compiled_schema(version: int = SCHEMA_VERSIONS[-1]) -> _Check:
    return _compiled(breakdown_dimensions(), version)


@functools.cache
def _compiled(dimensions: tuple[BreakdownDimension, ...], version: int) -> _Check:
    schema = _schema(dimensions, version)
    return _compile(schema, schema)


def _compile(schema: dict[str, Any], root: dict[str, Any]) -> _Check:
    s = _resolve(schema, root)
    if s.keys() == {"type", "minimum"} and s["type"] == "integer":  # a count: one call per cell
        return _Count(s["minimum"])
    checks = [_TYPES[s["type"]]] if "type" in s else []
    if "const" in s:
        checks.append(lambda v, c=s["const"]: v == c)
    if "enum" in s:
        checks.append(lambda v, e=tuple(s["enum"]): v in e)
    if "pattern" in s:
        checks.append(lambda v, r=re.compile(s["pattern"]): not isinstance(v, str) or r.search(v) is not None)
    if any(k in s for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
        checks.append(_compile_bounds(s))
    if "properties" in s or "required" in s or "additionalProperties" in s or "propertyNames" in s:
        checks.append(_compile_object(s, root))
    if "items" in s or "maxItems" in s:
        checks.append(_compile_array(s, root))
    return _all_of(checks)


def _all_of(checks: list[_Check]) -> _Check:
    if not checks:
        return lambda v: True
    if len(checks) == 1:
        return checks[0]
    first, rest = checks[0], _all_of(checks[1:])
    return lambda v: first(v) and rest(v)


def _compile_bounds(s: dict[str, Any]) -> _Check:
    lo, hi = s.get("minimum", -math.inf), s.get("maximum", math.inf)
    xlo, xhi = s.get("exclusiveMinimum", -math.inf), s.get("exclusiveMaximum", math.inf)
    return lambda v: not _TYPES["number"](v) or (lo <= v <= hi and (xlo == -math.inf or v > xlo)
                                                 and (xhi == math.inf or v < xhi))


def _compile_array(s: dict[str, Any], root: dict[str, Any]) -> _Check:
    most, item = s.get("maxItems", math.inf), _compile(s.get("items", {}), root)
    return lambda v: not isinstance(v, list) or (len(v) <= most and all(item(x) for x in v))


class _Count:
    """An integer >= ``lo`` (exactly ``int``: subclasses, bool included, are left to the walk)."""

    def __init__(self, lo: int) -> None:
        self.lo = lo

    def __call__(self, v: Any) -> bool:
        return v.__class__ is int and v >= self.lo

    def all(self, values: Any) -> bool:
        """Every value passes (at C speed)."""
        return set(map(type, values)) <= {int} and (not values or min(values) >= self.lo)


def _compile_object(s: dict[str, Any], root: dict[str, Any]) -> _Check:
    props = {k: _compile(sub, root) for k, sub in s.get("properties", {}).items()}
    required, extra = tuple(s.get("required", ())), s.get("additionalProperties", True)
    other = _compile(extra, root) if isinstance(extra, dict) else None
    names = _compile(s["propertyNames"], root) if "propertyNames" in s else None
    good_names: set[str] = set()  # property names already accepted (region and service keys repeat)
    subs = [*props.values(), *([other] if other is not None else [])]
    los = [f.lo for f in subs if isinstance(f, _Count)]
    counts = _Count(los[0]) if subs and len(los) == len(subs) and len(set(los)) == 1 else None  # all counts

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        if any(k not in v for k in required):
            return False
        if names is not None and not good_names.issuperset(v):
            for key in v:
                if key not in good_names and not names(key):
                    return False
            if len(good_names) < 100_000:
                good_names.update(v)
        if counts is not None and counts.all(v.values()) and (extra is not False or v.keys() <= props.keys()):
            return True
        for key, item in v.items():
            sub = props.get(key, other)
            if (sub is None and extra is False) or (sub is not None and not sub(item)):
                return False
        return True
    return check
