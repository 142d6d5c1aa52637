"""Compiled kernels of the eligibility gate: consent look-up by merge, then one blocked pass over the events.

The gate (``adtarget/gate/_gate.py``) evaluates the person rules in numpy over the batch's persons, then
:func:`filter_events` classifies each event by the first rule it
breaks and copies the eligible ones, block by block (a block's codes and columns stay in cache between the
branch-free classification and the compaction). Per-person state is one small int8 table: a person rule code
(>= 0) for an excluded person, or ``-1 - flags`` (:data:`NO_CROSS_SERVICE`, :data:`REDACT_LOCATION`) for a
person who passes every person rule. Event codes: a rule code (``n_person_rules + offset``, offsets below in the
gate's rule order), or ``ELIGIBLE`` / ``ELIGIBLE_REDACTED`` (negative). Kernels trust their inputs: the event
codes come from ``ingest`` (an ``EventBatch`` cannot be made or altered any other way), so gathers are not
bounds-checked.
"""

from __future__ import annotations

import numba
import numpy as np

from adtarget.gate._rules import EVENT_CODE, SENSITIVE_ONLY

__all__ = [
    "AFTER_WINDOW_END",
    "CROSS_SERVICE_NOT_PERMITTED",
    "NO_CROSS_SERVICE",
    "N_EVENT_CODES",
    "OUTSIDE_RETENTION",
    "REDACT_LOCATION",
    "SENSITIVE_CATEGORY",
    "SENSITIVE_ONLY",
    "SERVICE_NOT_PERMITTED",
    "ELIGIBLE",
    "ELIGIBLE_REDACTED",
    "compact_audit",
    "filter_events",
    "renumber_persons",
    "sorted_rows",
]

NO_CROSS_SERVICE = 1  # person flag: may contribute only the target service's events
REDACT_LOCATION = 2  # person flag: location deleted, regions of its events become -1

# event codes: the one table is _rules.py (module constants here, so that numba compiles them in)
SERVICE_NOT_PERMITTED = EVENT_CODE["service_not_permitted"]
CROSS_SERVICE_NOT_PERMITTED = EVENT_CODE["cross_service_not_permitted"]
SENSITIVE_CATEGORY = EVENT_CODE["sensitive_category"]
OUTSIDE_RETENTION = EVENT_CODE["outside_retention"]
AFTER_WINDOW_END = EVENT_CODE["after_window_end"]
N_EVENT_CODES = SENSITIVE_ONLY + 1
ELIGIBLE = -1
ELIGIBLE_REDACTED = -2  # eligible, of a person whose location was deleted: a region >= 0 becomes -1
_BLOCK = 4096  # events per block: the block's columns (about 110 kB) stay in the L2 cache between its loops


@numba.njit(cache=True, nogil=True)
def sorted_rows(needles: np.ndarray, haystack: np.ndarray) -> tuple[np.ndarray, bool]:
    """Row of each needle in ``haystack`` (-1 when absent) by one merge of two sorted arrays.

    Returns ``(rows, ok)``; ``ok`` is False (and ``rows`` unusable) unless ``needles`` is strictly increasing
    and ``haystack`` non-decreasing, where ``rows`` equals ``searchsorted`` (left) checked for equality.
    """
    rows = np.full(needles.size, -1, dtype=np.int64)
    for j in range(1, haystack.size):
        if haystack[j] < haystack[j - 1]:
            return rows, False
    j = 0
    m = haystack.size
    for i in range(needles.size):
        x = needles[i]
        if i > 0 and x <= needles[i - 1]:
            return rows, False
        while j < m and haystack[j] < x:
            j += 1
        if j < m and haystack[j] == x:
            rows[i] = j
    return rows, True


@numba.njit(cache=True, nogil=True)
def _classify(person: np.ndarray, service: np.ndarray, ts: np.ndarray, category: np.ndarray, kind: np.ndarray,
              rules: tuple[np.ndarray, np.ndarray, np.ndarray, int, np.ndarray, np.ndarray, int, int],
              codes: np.ndarray) -> None:
    """``codes[i]``: the first rule event i breaks, or ELIGIBLE(_REDACTED); selects, not branches."""
    person_state, person_profile, permitted, target, sensitive, oldest, end, base = rules
    by_profile = person_profile.size > 0
    for i in range(person.size):
        p = np.uint64(person[i])
        svc = np.uint64(service[i])
        cat = np.uint64(category[i])
        t = ts[i]
        state = np.int64(person_state[p])
        flags = -1 - state
        row = np.uint64(person_profile[p]) if by_profile else np.uint64(0)
        old = t < oldest[np.uint64(kind[i])]
        late = t > end
        code = ELIGIBLE_REDACTED if (flags & REDACT_LOCATION) != 0 else ELIGIBLE
        code = base + AFTER_WINDOW_END if late else code
        code = base + OUTSIDE_RETENTION if old else code
        code = base + (SENSITIVE_CATEGORY if old or late else SENSITIVE_ONLY) if sensitive[row, cat] else code
        no_cross = target >= 0 and (flags & NO_CROSS_SERVICE) != 0 and service[i] != target
        code = base + CROSS_SERVICE_NOT_PERMITTED if no_cross else code
        code = base + SERVICE_NOT_PERMITTED if not permitted[svc] else code
        codes[i] = state if state >= 0 else code


@numba.njit(cache=True, nogil=True)
def _tally(codes: np.ndarray, start: int, person: np.ndarray, category: np.ndarray,
           audit: tuple[np.ndarray, np.ndarray], a: int, sensitive_class: np.ndarray, audit_code: int,
           counts: np.ndarray) -> int:
    """Count block ``start``'s excluded events per code (``counts[code]``) and append its sensitive-only
    events of a class to ``audit`` from row ``a``; returns the next audit row."""
    for k in range(codes.size):
        code = codes[k]
        if code >= 0:
            counts[code] += 1
            if code == audit_code:
                c = sensitive_class[np.uint64(category[start + k])]
                if c >= 0:
                    audit[0][a] = person[start + k]
                    audit[1][a] = c
                    a += 1
    return a


@numba.njit(cache=True, nogil=True)
def _copy_kept(source: np.ndarray, kept: np.ndarray, target: np.ndarray, j: int) -> int:
    """Append ``source[kept]`` to ``target`` from row ``j``; returns the next row. Writes are unconditional
    (only the row advances), so ``target`` needs room for ``source.size`` rows from ``j``."""
    for k in range(source.size):
        target[j] = source[k]
        j += kept[k]
    return j


@numba.njit(cache=True, nogil=True)
def _copy_regions(region: np.ndarray, codes: np.ndarray, target: np.ndarray, j: int) -> int:
    """As :func:`_copy_kept` for the eligible events' regions, -1 for ELIGIBLE_REDACTED events; returns the
    number of regions redacted."""
    redacted = 0
    for k in range(region.size):
        code = codes[k]
        r = region[k]
        hide = (code == ELIGIBLE_REDACTED) & (r >= 0)
        redacted += hide
        target[j] = r | -np.int16(hide)  # -1 when hidden
        j += code < 0
    return redacted


@numba.njit(cache=True, nogil=True)
def filter_events(columns: tuple, extra: tuple[np.ndarray, np.ndarray], rules: tuple, sensitive_class: np.ndarray,
                  out: tuple, audit: tuple[np.ndarray, np.ndarray]) -> tuple[int, int, int, np.ndarray]:
    """Classify every event and copy the eligible ones, block by block.

    ``columns`` are the batch's (person, service, ts, category, kind, region, weight, dimensions); ``extra``
    is (dimension codes (n_dims, n_events) int16, which of them are location data (bool)); ``rules`` are
    (person_state, person_profile, permitted, target, sensitive, oldest, end, base), ``person_profile`` each
    person's row of ``sensitive`` (empty: row 0 for all), ``target`` the target service or -1. ``out`` (same
    order, as long as the batch, dimensions last as one (n_dims, n_events) array) receives the eligible events
    with their batch person index and the regions (and location dimensions) of redacted persons set to -1;
    ``audit`` (person, class; as long as the batch) the events whose only failing
    rule is the sensitive category and whose node has a class in ``sensitive_class``. Returns
    ``(n_eligible, n_audit, n_redacted, counts)``, ``counts[code]`` the events excluded with each code.
    """
    person, service, ts, category, kind, region, weight = columns
    base = rules[7]
    counts = np.zeros(base + N_EVENT_CODES, dtype=np.int64)
    codes_buffer = np.empty(_BLOCK, dtype=np.int8)
    kept_buffer = np.empty(_BLOCK, dtype=np.bool_)
    j = a = redacted = 0
    for start in range(0, person.size, _BLOCK):
        stop = min(start + _BLOCK, person.size)
        codes, kept = codes_buffer[:stop - start], kept_buffer[:stop - start]
        _classify(person[start:stop], service[start:stop], ts[start:stop], category[start:stop],
                  kind[start:stop], rules, codes)
        a = _tally(codes, start, person, category, audit, a, sensitive_class, base + SENSITIVE_ONLY, counts)
        for k in range(codes.size):
            kept[k] = codes[k] < 0
        _copy_kept(person[start:stop], kept, out[0], j)
        _copy_kept(service[start:stop], kept, out[1], j)
        _copy_kept(ts[start:stop], kept, out[2], j)
        _copy_kept(category[start:stop], kept, out[3], j)
        _copy_kept(kind[start:stop], kept, out[4], j)
        redacted += _copy_regions(region[start:stop], codes, out[5], j)
        for r in range(extra[0].shape[0]):
            if extra[1][r]:
                redacted += _copy_regions(extra[0][r, start:stop], codes, out[7][r], j)
            else:
                _copy_kept(extra[0][r, start:stop], kept, out[7][r], j)
        j = _copy_kept(weight[start:stop], kept, out[6], j)
    return j, a, redacted, counts


@numba.njit(cache=True, nogil=True)
def renumber_persons(person: np.ndarray, n_persons: int) -> tuple[np.ndarray, np.ndarray]:
    """Renumber ``person`` in place to the kept persons (those it holds), in order; returns (keep, new_index),
    ``new_index`` -1 for persons not kept."""
    keep = np.zeros(n_persons, dtype=np.bool_)
    for i in range(person.size):
        keep[person[i]] = True
    new_index = np.empty(n_persons, dtype=np.int32)
    k = 0
    for q in range(n_persons):
        new_index[q] = k if keep[q] else -1
        k += keep[q]
    for i in range(person.size):
        person[i] = new_index[person[i]]
    return keep, new_index


@numba.njit(cache=True, nogil=True)
def compact_audit(person: np.ndarray, sensitive_class: np.ndarray, n: int, new_index: np.ndarray) -> int:
    """Keep, in place and in order, the first ``n`` audit events whose person has a new index (>= 0), renumbered;
    returns how many remain."""
    m = 0
    for i in range(n):
        k = new_index[person[i]]
        if k >= 0:
            person[m] = k
            sensitive_class[m] = sensitive_class[i]
            m += 1
    return m
