"""``release``: the one path from eligible events and segment assignments to an advertiser's SegmentReport.

Order: validate the spec against the data → exact bounded counts (``count_cells``) and audit counts, which
stay inside → query key (spec fingerprint + digest of those exact counts, so every engine computes the same
key) → charge the budget ledger (an identical earlier query returns its stored report, without new
spending) → discrete noise → DP partition selection of non-public region keys → post-processing →
thresholds → sensitive-proxy audit → build and validate the report → store it in the ledger → return it.
The spend is recorded before anything is emitted. See docs/privacy/release.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import compress
from typing import Any

import numpy as np

from adtarget._buffers import uses_buffers
from adtarget._release._audit import DEFAULT_T, AuditCounts, AuditOutcome, audit_counts, audit_segments
from adtarget._release._cells import CellCounts, count_cells
from adtarget._release._explain import ReleaseExplanation, _bounds, _num, sensitivity
from adtarget._release._postprocess import ReleasedCounts, noisy_release
from adtarget._release._report import SCHEMA_ID, SegmentReport, validate_report
from adtarget._release._spec import ReleaseSpec, _iso
from adtarget.exceptions import ParameterError

__all__ = ["ReleaseContext", "ReleaseResult", "default_window", "query_key", "release", "release_counts",
           "report_policy"]


@dataclass(frozen=True)
class ReleaseResult:
    """What ``release`` returns: the advertiser's report and the data owner's explanation of it."""

    report: SegmentReport
    explanation: ReleaseExplanation

    def __iter__(self) -> Any:
        return iter((self.report, self.explanation))


def query_key(spec: ReleaseSpec, digest: str) -> str:
    """The ledger's idempotency key: BLAKE2b of the spec's fingerprint and the data snapshot digest."""
    text = f"{spec.fingerprint()}|{digest}".encode()
    return "rq-" + hashlib.blake2b(text, digest_size=16, person=b"adtarget-query").hexdigest()


def _hash_arrays(h: Any, *arrays: Any) -> None:
    for a in arrays:
        arr = np.ascontiguousarray(a)
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(arr.data)


def report_policy(policy: Any, safe_taxonomy: Any) -> dict[str, Any]:
    """The report's ``policy`` object: minimum consent policy version ("any"), sensitivity profile, minimum age."""
    return {"version": policy.min_policy_version or "any", "sensitivity_profile": safe_taxonomy.profile.name,
            "min_age": int(policy.min_age)}


def default_window(policy: Any, window_end: int) -> tuple[int, int]:
    """The data window when the spec names none: the gate's end minus the longest retention (data-independent;
    the earliest eligible event would reveal a person's timestamp)."""
    return (int(window_end) - max(policy.retention_seconds()), int(window_end))


def _policy_fields(eligible: Any) -> dict[str, Any]:
    return report_policy(eligible.policy, eligible.safe_taxonomy)


def _data_window(eligible: Any, spec: ReleaseSpec) -> tuple[int, int]:
    end = int(eligible.window_end)
    if spec.data_window is None:
        return default_window(eligible.policy, end)
    start, spec_end = spec.data_window
    if spec_end != end:
        raise ParameterError(f"data_window end must equal the eligible events' window end {_iso(end)}, "
                             f"got {_iso(spec_end)}")
    early = int(np.count_nonzero(eligible.ts < start))
    if early:
        raise ParameterError(f"data_window start {_iso(start)} must not be after any eligible event: {early} "
                             f"eligible event(s) are earlier; gate the events for this window first")
    return (start, end)


def _check_inputs(eligible: Any, assignments: Any, spec: ReleaseSpec, allow_infinite_epsilon: bool) -> None:
    from adtarget._gate import EligibleEvents

    if not isinstance(eligible, EligibleEvents):
        raise ParameterError(f"eligible must be EligibleEvents from adtarget.apply_gate, got "
                             f"{type(eligible).__name__}")
    if not isinstance(spec, ReleaseSpec):
        raise ParameterError(f"spec must be a ReleaseSpec, got {type(spec).__name__}")
    if math.isinf(spec.epsilon) and not allow_infinite_epsilon:
        raise ParameterError("spec.epsilon is inf (no privacy): only tests may pass allow_infinite_epsilon=True")
    for name in ("persons", "membership", "segments"):
        if not hasattr(assignments, name):
            raise ParameterError(f"assignments must be SegmentAssignments (missing {name!r}), got "
                                 f"{type(assignments).__name__}")
    known = {s.segment_id for s in assignments.segments}
    missing = [s for s in spec.segment_ids if s not in known]
    if missing:
        raise ParameterError(f"segment_ids must be segments of the assignments; {len(missing)} are not, "
                             f"e.g. {missing[:3]}")
    assigned, persons = np.asarray(assignments.persons), np.asarray(eligible.persons)  # both sorted
    pos = np.minimum(np.searchsorted(persons, assigned), max(persons.size - 1, 0))
    stray = int(np.count_nonzero(persons[pos] != assigned)) if persons.size else int(assigned.size)
    if stray or assignments.membership.shape[0] != len(assignments.persons):
        raise ParameterError(f"assignments.persons must be among the eligible persons (one membership row "
                             f"each); {stray} are not")


@uses_buffers
def release(eligible: Any, assignments: Any, spec: ReleaseSpec, *, ledger: Any, random_state: Any = None,
            allow_infinite_epsilon: bool = False, created_at: datetime | None = None,
            audit_t: float = DEFAULT_T) -> ReleaseResult:
    """Release DP segment sizes and breakdowns to an advertiser, charging the budget ledger first.

    Parameters
    ----------
    eligible : EligibleEvents
        The gate's output (the only accepted input of events).
    assignments : SegmentAssignments
        Segment membership of the eligible persons; the requested segments must be among its segments.
    spec : ReleaseSpec
    ledger : BudgetLedger
        Charged with (spec.epsilon, spec.delta) before anything is emitted; holds the stored reports.
    random_state : None, int or numpy.random.RandomState, default None
        None draws secure noise. A seed (tests, notebooks) makes the noise reproducible and warns.
    allow_infinite_epsilon : bool, default False
        Tests only: lets ``spec.epsilon`` be ``math.inf`` (no noise, no ledger charge, exact counts).
    created_at : aware datetime, optional
        The report's ``created_at`` (default now); fixed only for reproducible tests.
    audit_t : float, default 0.1
        t of the sensitive-proxy audit.

    Returns
    -------
    ReleaseResult
        ``(report, explanation)``.

    Privacy
    -------
    (spec.epsilon, spec.delta)-DP with respect to one person (all their events in the window), by basic
    composition of the count stage (sensitivity ``S·(1 + Σ k)``) and partition selection; thresholds and
    consistency are post-processing. The audit's blocking decision is not DP (docs/privacy/audit.md).
    """
    _check_inputs(eligible, assignments, spec, allow_infinite_epsilon)
    context = _context(eligible, assignments, spec, _data_window(eligible, spec))
    cells = count_cells(eligible, assignments, spec)
    audit = audit_counts(eligible, assignments)
    return _release(cells, audit, spec, context, ledger=ledger, random_state=random_state,
                    allow_infinite_epsilon=allow_infinite_epsilon, created_at=created_at, audit_t=audit_t)


def _charge(ledger: Any, spec: ReleaseSpec, key: str) -> Any:
    """Charge (spec.epsilon, spec.delta); None for the test-only ε = ∞ release, which bypasses the ledger."""
    from adtarget._release._budget_spec import PrivacyBudget

    if math.isinf(spec.epsilon):
        return None
    return ledger.charge(spec.advertiser, PrivacyBudget(spec.epsilon, spec.delta), key)


def _context(eligible: Any, assignments: Any, spec: ReleaseSpec, window: tuple[int, int]) -> ReleaseContext:
    infos = {s.segment_id: s for s in assignments.segments}
    return ReleaseContext(segments=tuple(infos[s] for s in spec.segment_ids), policy=_policy_fields(eligible),
                          data_window=window, pseudonyms=np.asarray(eligible.persons))


@uses_buffers
def release_counts(cells: CellCounts, audit: AuditCounts, spec: ReleaseSpec, *, segments: Sequence[Any],
                   policy: Mapping[str, Any], data_window: tuple[int, int], ledger: Any,
                   random_state: Any = None, allow_infinite_epsilon: bool = False,
                   created_at: datetime | None = None, audit_t: float = DEFAULT_T) -> ReleaseResult:
    """``release`` from exact counts summed over partitions of persons (what a distributed engine has).

    ``segments`` are the SegmentInfo of ``spec.segment_ids`` (in that order), ``policy`` is
    ``report_policy(eligibility_policy, safe_taxonomy)``, ``data_window`` epoch seconds (``spec.data_window``
    or ``default_window(eligibility_policy, window_end)``). The report is checked
    for pseudonym-shaped strings but, without the persons, not against the data's pseudonyms.
    Privacy as in :func:`release`.
    """
    if math.isinf(spec.epsilon) and not allow_infinite_epsilon:
        raise ParameterError("spec.epsilon is inf (no privacy): only tests may pass allow_infinite_epsilon=True")
    if tuple(s.segment_id for s in segments) != spec.segment_ids or cells.segment_ids != spec.segment_ids:
        raise ParameterError("segments and cells must be those of spec.segment_ids, in that order")
    context = ReleaseContext(tuple(segments), dict(policy), (int(data_window[0]), int(data_window[1])), None)
    return _release(cells, audit, spec, context, ledger=ledger, random_state=random_state,
                    allow_infinite_epsilon=allow_infinite_epsilon, created_at=created_at, audit_t=audit_t)


def _release(cells: CellCounts, audit: AuditCounts, spec: ReleaseSpec, context: ReleaseContext, *, ledger: Any,
             random_state: Any, allow_infinite_epsilon: bool, created_at: datetime | None,
             audit_t: float) -> ReleaseResult:
    """Query key → charge (or the stored report) → emit."""
    counts_digest = _counts_digest(cells, context)
    key = query_key(spec, f"{counts_digest}|{_audit_digest(audit)}|t={audit_t!r}")
    charge = _charge(ledger, spec, key)
    if charge is not None and charge.report_json is not None:
        return ReleaseResult(SegmentReport.from_json(charge.report_json), ReleaseExplanation.for_reused(spec, key))
    return _emit(cells, audit, spec, context, key=key, report_id=_report_id(spec, counts_digest), charge=charge,
                 ledger=ledger, random_state=random_state, allow_infinite_epsilon=allow_infinite_epsilon,
                 created_at=created_at, audit_t=audit_t)


def _counts_digest(cells: CellCounts, context: ReleaseContext) -> str:
    """Digest of everything that decides the report besides the audit: exact counts, names, window, policy."""
    h = hashlib.blake2b(digest_size=16, person=b"adtarget-counts")
    _hash_arrays(h, cells.sizes, np.asarray(context.data_window, dtype=np.int64))
    for dim in sorted(cells.cells):
        h.update("\x1f".join((dim, *cells.values[dim])).encode())
        _hash_arrays(h, cells.cells[dim], cells.value_persons[dim])
    infos = [(s.segment_id, s.name, tuple(s.path)) for s in context.segments]
    h.update(repr((cells.segment_ids, infos, sorted(context.policy.items()))).encode())
    return h.hexdigest()


def _audit_digest(audit: AuditCounts) -> str:
    h = hashlib.blake2b(digest_size=16, person=b"adtarget-audit")
    _hash_arrays(h, audit.members, audit.mass, audit.population)
    h.update(repr((audit.classes, audit.segment_ids, audit.n_population, audit.scale)).encode())
    return h.hexdigest()


@dataclass(frozen=True, eq=False)
class ReleaseContext:
    """What the report needs besides counts: segment infos (in spec order), policy fields, data window, and
    the data's pseudonyms (None when unavailable) that no report value may equal."""

    segments: tuple[Any, ...]
    policy: dict[str, Any]
    data_window: tuple[int, int]
    pseudonyms: np.ndarray | None


def _created_at(created_at: datetime | None) -> str:
    if created_at is None:
        created_at = datetime.now(timezone.utc)
    if not isinstance(created_at, datetime) or created_at.tzinfo is None:
        raise ParameterError(f"created_at must be a timezone-aware datetime, got {created_at!r}")
    return created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _report_id(spec: ReleaseSpec, counts_digest: str) -> str:
    """Deterministic id from the spec and the exact counts (not the audit), formatted like a UUID."""
    text = f"{spec.fingerprint()}|{counts_digest}".encode()
    h = hashlib.blake2b(text, digest_size=16, person=b"adtarget-report").hexdigest()
    return f"rpt-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _segment_docs(counts: ReleasedCounts, context: ReleaseContext, blocked: set[str]) -> list[dict[str, Any]]:
    cells = {d: (names, counts.cells[d].tolist(), counts.cell_reported[d].tolist())  # Python ints, once
             for d, names in counts.values.items()}
    sizes, reported, docs = counts.sizes.tolist(), counts.reported.tolist(), []
    for i, info in enumerate(context.segments):
        if not reported[i] or info.segment_id in blocked:
            continue
        breakdowns = {d: dict(compress(zip(names, values[i]), shown[i])) for d, (names, values, shown) in cells.items()}
        docs.append({"segment_id": info.segment_id, "name": info.name, "path": list(info.path),
                     "size": sizes[i], "breakdowns": breakdowns})
    return docs


def _document(spec: ReleaseSpec, context: ReleaseContext, counts: ReleasedCounts, outcome: AuditOutcome, *,
              report_id: str, created_at: str, remaining: tuple[Any, Any]) -> dict[str, Any]:
    segments = _segment_docs(counts, context, set(outcome.blocked))
    return {
        "schema": SCHEMA_ID, "report_id": report_id, "advertiser": spec.advertiser, "created_at": created_at,
        "data_window": {"start": _iso(context.data_window[0]), "end": _iso(context.data_window[1])},
        "policy": dict(context.policy),
        "privacy": {"unit": "person", "epsilon": float(spec.epsilon), "delta": float(spec.delta),
                    "mechanism": spec.mechanism, "max_segments_per_person": spec.max_segments_per_person,
                    "min_reported_size": spec.min_reported_size,
                    "budget_remaining": {"advertiser": float(f"{remaining[0].epsilon:.12g}"),
                                         "global": float(f"{remaining[1].epsilon:.12g}")}},
        "segments": segments, "suppressed_segments": len(context.segments) - len(segments),
    }


def _suppression(counts: ReleasedCounts, outcome: AuditOutcome, n_reported: int) -> dict[str, int]:
    blocked = set(outcome.blocked)
    shown = np.array([r and s not in blocked for s, r in zip(counts.segment_ids, counts.reported.tolist())],
                     dtype=bool)
    left_out = sum(int((~m[shown]).sum()) for m in counts.cell_reported.values())
    return {"requested": len(counts.segment_ids), "reported": n_reported, "below_threshold": counts.suppressed,
            "audit_blocked": len(outcome.blocked), "cells_left_out": left_out}


def _emit(cells: CellCounts, audit: AuditCounts, spec: ReleaseSpec, context: ReleaseContext, *, key: str,
          report_id: str, charge: Any, ledger: Any, random_state: Any, allow_infinite_epsilon: bool, created_at: datetime | None,
          audit_t: float) -> ReleaseResult:
    """Noise → partition selection → post-process → threshold → audit → report → validate → store."""
    sens = sensitivity(spec)
    noisy = noisy_release(cells, spec, l1_sensitivity=sens["l1"], random_state=random_state,
                          allow_infinite_epsilon=allow_infinite_epsilon)
    counts = noisy.counts
    outcome = audit_segments(audit, [s for s, r in zip(counts.segment_ids, counts.reported) if r], audit_t)
    remaining = ledger.remaining(spec.advertiser)
    doc = _document(spec, context, counts, outcome, report_id=report_id, created_at=_created_at(created_at),
                    remaining=remaining)
    validate_report(doc, pseudonyms=context.pseudonyms)  # the one validation of this document
    report = SegmentReport._of_validated(doc)
    if charge is not None:
        text = report.to_json(indent=None)
        stored = ledger.store_report(charge.charge_id, text)
        if stored != text:  # another process stored its report for this charge first: emit that one
            report = SegmentReport.from_json(stored)
    explanation = ReleaseExplanation(
        str(spec), key, False, ReleaseExplanation.stages_of(spec),
        {"epsilon": _num(float(spec.epsilon)), "delta": float(spec.delta),
         "new_spend": bool(charge is not None and charge.new_spend)},  # False when completing a crashed run
        bounds=_bounds(spec), sensitivity=sens, noise=dict(noisy.noise),
        partition_selection=dict(noisy.partition_selection), audit=outcome.as_dict(),
        suppression=_suppression(counts, outcome, len(doc["segments"])),
        budget_remaining={"advertiser": str(remaining[0]), "global": str(remaining[1])})
    return ReleaseResult(report, explanation)
