"""``release``: the one path from eligible events and segment assignments to an advertiser's SegmentReport.

Order: check the spec against public facts (types, provenance, segments, window) → exact bounded counts
(``count_cells``, which stay inside) → check the counts' recorded bounds against the spec → query key from
public facts only (the spec, the data window, the data owner's snapshot id, the segment definitions, the
policy fields) → charge the budget ledger, with each DP-derived definition the segments depend on (an
identical earlier query returns its stored report, without new spending) → a random report id → discrete
noise, DP partition selection of non-public region keys, post-processing, thresholds (``noisy_release``, the
only reader of exact counts) → the document from noised counts and public parameters (``report_document``)
→ validate → store it in the ledger → return it. The spend is recorded before anything is emitted, and no
field, reuse decision or error of the release depends on exact data. See docs/privacy/release.md.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from adtarget._core._buffers import uses_buffers
from adtarget.budget._ledger import BudgetLedger
from adtarget.exceptions import ParameterError
from adtarget.reports._cells import (
    CellCounts,
    ReleaseFacts,
    count_cells,
    counting_bounds,
    counts_state,
    report_policy,
)
from adtarget.reports._document import new_report_id, report_created_at, report_document
from adtarget.reports._explain import ReleaseExplanation, _bounds, _num, sensitivity
from adtarget.reports._postprocess import as_rng, noises, noisy_release
from adtarget.reports._report import SegmentReport, validate_report
from adtarget.reports._spec import ReleaseSpec, _iso, checked_spec

if TYPE_CHECKING:
    from adtarget._core._types import SeedLike
    from adtarget.budget._spec import ReleaseAccounting
    from adtarget.gate._gate import EligibleEvents
    from adtarget.gate._policy import EligibilityPolicy
    from adtarget.segments._info import SegmentAssignments

__all__ = ["ReleaseResult", "check_ledger", "default_window", "query_key", "release", "release_accounting",
           "release_counts", "report_policy"]


@dataclass(frozen=True)
class ReleaseResult:
    """What ``release`` returns: the advertiser's report and the explanation of it (both advertiser-safe)."""

    report: SegmentReport
    explanation: ReleaseExplanation

    def __iter__(self) -> Any:
        return iter((self.report, self.explanation))


def query_key(spec: ReleaseSpec, facts: ReleaseFacts) -> str:
    """The ledger's idempotency key: BLAKE2b of public facts only — the spec's fingerprint, the data window,
    the snapshot id, the segment definitions (ids, names, paths), the policy fields and the DP-derived
    definitions. Never of the data: two releases are "the same question" when these are equal."""
    segments = [(s.segment_id, s.name, tuple(s.path)) for s in facts.segments]
    definitions = sorted(a for a, _ in facts.definitions)
    text = repr((spec.fingerprint(), facts.window, facts.snapshot_id, segments, facts.policy, definitions))
    return "rq-" + hashlib.blake2b(text.encode(), digest_size=16, person=b"adtarget-query").hexdigest()


def default_window(policy: EligibilityPolicy, window_end: int) -> tuple[int, int]:
    """The data window of a gate run: its end minus the longest retention (data-independent; the earliest
    eligible event would reveal a person's timestamp)."""
    return (int(window_end) - max(policy.retention_seconds()), int(window_end))


def _check_spec(spec: Any, allow_infinite_epsilon: bool) -> ReleaseSpec:
    spec = checked_spec(spec)
    if math.isinf(spec.epsilon) and not allow_infinite_epsilon:
        raise ParameterError("spec.epsilon is inf (no privacy): only tests may pass allow_infinite_epsilon=True")
    return spec


def _check_window(spec: ReleaseSpec, window: tuple[int, int]) -> None:
    """``spec.data_window``, if given, must be the window of the data (both public parameters)."""
    if spec.data_window is not None and tuple(spec.data_window) != tuple(window):
        raise ParameterError(f"spec.data_window {_iso(spec.data_window[0])}..{_iso(spec.data_window[1])} must equal "
                             f"the data window {_iso(window[0])}..{_iso(window[1])} (the gate's window_end minus "
                             f"the longest retention); gate with that window_end and retention instead")


def _check_bounds(spec: ReleaseSpec, recorded: Any) -> None:
    """The counts were bounded as the spec says (else the noise would be calibrated to other bounds)."""
    wanted = counting_bounds(spec)
    for name in ("segment_ids", "breakdowns", "max_segments_per_person", "max_cells_per_person",
                 "bounding_salt"):
        got, want = getattr(recorded, name), getattr(wanted, name)
        if got != want:
            shown = "" if name == "bounding_salt" else f": counted with {got!r}, the spec says {want!r}"
            raise ParameterError(f"cells were not counted with this spec's {name}{shown}; count them with "
                                 f"count_cells(eligible, assignments, spec) for this spec")


@uses_buffers
def release(eligible: EligibleEvents, assignments: SegmentAssignments, spec: ReleaseSpec, *, ledger: BudgetLedger,
            random_state: SeedLike = None,
            allow_infinite_epsilon: bool = False, created_at: datetime | None = None) -> ReleaseResult:
    """Release DP segment sizes and breakdowns to an advertiser, charging the budget ledger first.

    Parameters
    ----------
    eligible : EligibleEvents
        The gate's output (the only accepted input of events).
    assignments : SegmentAssignments
        Derived by a segmenter's ``assign`` from ``eligible``; the requested segments must be among them.
    spec : ReleaseSpec
    ledger : BudgetLedger
        Charged with (spec.epsilon, spec.delta), and with each DP-derived definition the segments depend on,
        before anything is emitted; holds the stored reports. ``spec.advertiser`` must be registered in it.
    random_state : None, int or numpy.random.RandomState, default None
        None draws secure noise and a secure report id. A seed (tests, notebooks) makes both reproducible and
        warns.
    allow_infinite_epsilon : bool, default False
        Tests only: lets ``spec.epsilon`` be ``math.inf`` (no noise, no ledger charge, exact counts).
    created_at : aware datetime, optional
        The report's ``created_at`` (default now); fixed only for reproducible tests.

    Returns
    -------
    ReleaseResult
        ``(report, explanation)``.

    Raises
    ------
    ProvenanceError
        ``eligible`` or ``assignments`` were not made by adtarget.
    ParameterError
        The spec does not fit the public facts (segments, window, bounds), or the advertiser is unregistered.
    BudgetExhaustedError
        A cap would be exceeded; nothing was spent or emitted.

    Privacy
    -------
    (spec.epsilon, spec.delta)-DP with respect to one person (all their events in the window), by basic
    composition of the count stage (sensitivity ``S·(1 + Σ k)``) and partition selection; thresholds and
    consistency are post-processing. The report id is random, reuse is keyed on public facts, and no error
    raised here depends on exact data. Segments screened as sensitive proxies never reach a release: the
    catalog leaves them out (docs/privacy/audit.md).
    """
    from adtarget.gate._gate import eligible_state

    spec = _check_spec(spec, allow_infinite_epsilon)
    check_ledger(ledger)
    events = eligible_state(eligible)
    _check_window(spec, (int(events.window_start), int(events.window_end)))
    cells = count_cells(eligible, assignments, spec)
    return release_counts(cells, spec, ledger=ledger, random_state=random_state,
                          allow_infinite_epsilon=allow_infinite_epsilon, created_at=created_at)


def check_ledger(ledger: Any) -> BudgetLedger:
    """The project's own ledger, not a stand-in (a duck-typed ``charge`` that spends nothing is no bound)."""
    if type(ledger) is not BudgetLedger:
        raise ParameterError(f"ledger must be an adtarget BudgetLedger (not a subclass or a stand-in), got "
                             f"{type(ledger).__name__}")
    return ledger


def release_accounting(spec: ReleaseSpec) -> ReleaseAccounting:
    """How a release of ``spec`` spends its (ε, δ), for the ledger's Rényi-DP accounting: the noise multiplier
    σ/Δ2 of each discrete-Gaussian block (sizes, breakdown cells), or the ε of each pure discrete-Laplace block,
    and partition selection as the (ε, δ) remainder (None without a region breakdown). Public parameters only.
    """
    from adtarget.budget._spec import PrivacyBudget, ReleaseAccounting

    blocks = [n for n in noises(spec) if n is not None]
    p_eps, p_delta = spec.partition_budget
    basic = PrivacyBudget(p_eps, p_delta) if spec.needs_partition_selection else None
    if spec.mechanism == "discrete_gaussian":
        return ReleaseAccounting(gaussian_noise_multipliers=tuple(n.sigma / n.l2_sensitivity for n in blocks),
                                 basic=basic)
    return ReleaseAccounting(pure_epsilons=tuple(n.epsilon for n in blocks), basic=basic)


def _charge(ledger: BudgetLedger, spec: ReleaseSpec, key: str, definitions: Sequence[Any]) -> Any:
    """Charge (spec.epsilon, spec.delta), described by :func:`release_accounting`, and the definitions; None for
    the test-only ε = ∞ release."""
    from adtarget.budget._spec import PrivacyBudget

    if math.isinf(spec.epsilon):
        return None
    return BudgetLedger.charge(ledger, spec.advertiser, PrivacyBudget(spec.epsilon, spec.delta), key,
                               definitions=tuple(definitions), accounting=release_accounting(spec))


@uses_buffers
def release_counts(cells: CellCounts, spec: ReleaseSpec, *, ledger: BudgetLedger, random_state: SeedLike = None,
                   allow_infinite_epsilon: bool = False, created_at: datetime | None = None) -> ReleaseResult:
    """``release`` from exact counts summed over partitions of persons (what a distributed engine has).

    ``cells`` must come from :func:`count_cells` with this spec (or be a sum of such counts over disjoint
    partitions); they carry the public facts the report states (segment names, policy, window, snapshot id),
    and the bounds they were counted with, which must be this spec's. Privacy as in :func:`release`.
    """
    spec = _check_spec(spec, allow_infinite_epsilon)
    check_ledger(ledger)
    state = counts_state(cells)
    _check_bounds(spec, state.bounds)
    _check_window(spec, state.facts.window)
    key = query_key(spec, state.facts)
    charge = _charge(ledger, spec, key, state.facts.definitions)
    if charge is not None and charge.report_json is not None:
        return ReleaseResult(SegmentReport.from_json(charge.report_json), ReleaseExplanation.for_reused(spec, key))
    return _emit(cells, spec, state.facts, key=key, charge=charge, ledger=ledger,
                 rng=as_rng(random_state), allow_infinite_epsilon=allow_infinite_epsilon,
                 created_at=report_created_at(created_at))


def _emit(cells: CellCounts, spec: ReleaseSpec, facts: ReleaseFacts, *, key: str, charge: Any, ledger: Any,
          rng: np.random.RandomState | None, allow_infinite_epsilon: bool, created_at: str) -> ReleaseResult:
    """Report id → noise → partition selection → post-process → threshold → document → validate → store."""
    report_id = new_report_id(rng)  # first: the id and the noise draws never depend on data
    sens = sensitivity(spec)
    noisy = noisy_release(cells, spec, random_state=rng, allow_infinite_epsilon=allow_infinite_epsilon)
    remaining = BudgetLedger.remaining(ledger, spec.advertiser)
    doc = report_document(noisy.counts, spec, facts, report_id=report_id, created_at=created_at,
                          remaining=remaining)
    validate_report(doc)  # the one validation of this document
    report = SegmentReport._of_validated(doc)
    if charge is not None:
        text = report.to_json(indent=None)
        stored = BudgetLedger._store_report(ledger, charge.charge_id, text)
        if stored != text:  # another process stored its report for this charge first: emit that one
            report = SegmentReport.from_json(stored)
    counts = noisy.counts
    explanation = ReleaseExplanation(
        str(spec), key, False, ReleaseExplanation.stages_of(spec),
        {"epsilon": _num(float(spec.epsilon)), "delta": float(spec.delta),
         "new_spend": bool(charge is not None and charge.new_spend),  # False when completing a crashed run
         **ReleaseExplanation.accounting_of(charge)},
        bounds=_bounds(spec), sensitivity=sens, noise=dict(noisy.noise),
        partition_selection=dict(noisy.partition_selection),
        suppression={"requested": len(counts.segment_ids), "reported": len(doc["segments"]),
                     "below_threshold": counts.suppressed,
                     "cells_left_out": int(sum((~m[counts.reported]).sum() for m in counts.cell_reported.values()))},
        budget_remaining={"advertiser": str(remaining[0]), "global": str(remaining[1])},
        definitions=_definitions(facts, charge))
    return ReleaseResult(report, explanation)


def _definitions(facts: ReleaseFacts, charge: Any) -> dict[str, Any]:
    """The DP-derived definitions the segments depend on, and which of them this release charged."""
    used = [{"artefact_id": a, "epsilon": b.epsilon, "delta": b.delta} for a, b in facts.definitions]
    charged = list(getattr(charge, "definitions_charged", ()) or ()) if charge is not None else []
    return {"used": used, "charged": charged} if used else {}
