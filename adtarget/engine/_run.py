"""The main job: events and consent in, an advertiser's SegmentReport, the internal assignments and a run
summary out. Each step is one function of its own module; this module only wires them in order.

    events ─ engine.aggregate (ingest → gate → segments → exact counts, per partition) ─► Aggregates
    Aggregates ─ release_counts (budget charge → noise → partition selection → thresholds) ─► report
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from adtarget._core._atomic import write_private_text
from adtarget._core._buffers import uses_buffers
from adtarget.engine._context import BuildContext
from adtarget.engine._protocol import Engine, LocalEngine
from adtarget.exceptions import ParameterError
from adtarget.gate._policy import EligibilityPolicy
from adtarget.reports._release import check_ledger, release_counts
from adtarget.reports._spec import BREAKDOWN_DIMS

if TYPE_CHECKING:
    from adtarget._core._types import EventSource, SeedLike
    from adtarget.budget._ledger import BudgetLedger
    from adtarget.consent import ConsentLedger, ConsentSnapshot
    from adtarget.engine._aggregates import Aggregates
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.reference._sensitivity import SafeTaxonomy
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reports._explain import ReleaseExplanation
    from adtarget.reports._report import SegmentReport
    from adtarget.reports._spec import ReleaseSpec
    from adtarget.segments._dp_kmeans import DPKMeansSegmenter
    from adtarget.segments._info import SegmentAssignments
    from adtarget.segments._rules import SegmentCatalog
    from adtarget.segments._screen import ProxyScreen

__all__ = ["RunResult", "RunSettings", "run"]


@dataclass(frozen=True)
class RunSettings:
    """What a build releases and to whom. Frozen; the release spec and the policy check their own fields.

    The default mechanism is the discrete Laplace (pure ε for the counts); ``delta`` then goes to DP partition
    selection of region keys that are not public. ``"discrete_gaussian"`` is available, but diffprivlib's exact
    sampler costs about 10-40x more per cell (docs/privacy/noise.md).
    """

    advertiser: str = "demo-advertiser"
    epsilon: float = 1.0
    delta: float = 1e-6
    mechanism: str = "discrete_laplace"
    breakdowns: tuple[str, ...] = BREAKDOWN_DIMS
    max_segments_per_person: int = 5
    min_reported_size: int = 50
    public_regions: tuple[str, ...] = ()
    size_share: float = 0.6
    false_segment_rate: float = 1e-6
    sensitivity_profile: str = "default"
    policy: EligibilityPolicy = field(default_factory=EligibilityPolicy)
    target_service: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.policy, EligibilityPolicy):
            raise ParameterError(f"policy must be an EligibilityPolicy; got {type(self.policy).__name__}")

    def release_spec(self, segment_ids: tuple[str, ...]) -> ReleaseSpec:
        from adtarget.reports._spec import ReleaseSpec

        return ReleaseSpec(
            advertiser=self.advertiser,
            segment_ids=segment_ids,
            epsilon=self.epsilon,
            delta=self.delta,
            breakdowns=self.breakdowns,
            mechanism=self.mechanism,
            max_segments_per_person=self.max_segments_per_person,
            min_reported_size=self.min_reported_size,
            public_regions=self.public_regions,
            size_share=self.size_share,
            false_segment_rate=self.false_segment_rate,
        )


@dataclass(frozen=True, eq=False)
class RunResult:
    """A build's outputs: the advertiser's report (Non-Personal), the data owner's explanation and summary,
    and — for the local engine — the internal, Personal segment assignments."""

    report: SegmentReport
    explanation: ReleaseExplanation
    aggregates: Aggregates
    summary: dict[str, Any]
    assignments: SegmentAssignments | None = None

    #: who may receive each output: ``report`` and ``explanation`` are functions of noised values and public
    #: parameters only (they may leave the company); ``summary`` holds exact row counts and ``assignments``
    #: pseudonyms (internal). Every file is written readable by its owner only (0600).
    AUDIENCE: ClassVar[dict[str, str]] = {"report": "advertiser", "explanation": "advertiser",
                                          "summary": "internal", "assignments": "internal"}

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``report.json``, ``explanation.json``, ``summary.json`` and (local engine) ``assignments.parquet``
        into ``out_dir`` (each atomically, mode 0600); returns their paths by name (see :attr:`AUDIENCE`)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"report": out / "report.json", "explanation": out / "explanation.json",
                 "summary": out / "summary.json"}
        self.report.write(paths["report"])
        write_private_text(paths["explanation"],
                           json.dumps(self.explanation.as_dict(), indent=2, sort_keys=True) + "\n")
        write_private_text(paths["summary"], json.dumps(self.summary, indent=2, sort_keys=True) + "\n")
        if self.assignments is not None:
            paths["assignments"] = out / "assignments.parquet"
            self.assignments.to_parquet(paths["assignments"])
        return paths


@uses_buffers
def run(
    events: EventSource,
    consent: ConsentLedger | ConsentSnapshot,
    *,
    pseudonymizer: Pseudonymizer,
    budget: BudgetLedger,
    settings: RunSettings | None = None,
    segmenter: SegmentCatalog | DPKMeansSegmenter | None = None,
    engine: Engine | None = None,
    safe_taxonomy: SafeTaxonomy | None = None,
    services: ServiceRegistry | None = None,
    window_end: int | None = None,
    snapshot_id: str | None = None,
    screen: ProxyScreen | None = None,
    random_state: SeedLike = None,
    allow_infinite_epsilon: bool = False,
    created_at: datetime | None = None,
) -> RunResult:
    """Build segments from events and consent and release a differentially private report.

    Parameters
    ----------
    events : path (Parquet/CSV), Arrow table, pandas DataFrame or mapping of arrays, in the event contract.
    consent : a ConsentLedger (its current snapshot is used) or a ConsentSnapshot.
    pseudonymizer : the keyed hash for person ids (the same key the consent ledger uses).
    budget : the BudgetLedger charged before anything is emitted.
    settings : advertiser, ε, δ, bounds, breakdowns, sensitivity profile, eligibility policy.
    segmenter : a SegmentCatalog or a DPKMeansSegmenter (default: every safe tier-1 and tier-2 node, without
        the segments ``screen`` blocks). An unfitted DPKMeansSegmenter is fitted first on this build's eligible
        events (profiles of the default InterestProfiler; its ε is charged to its own ledger, as every fit
        is, before it reads anything) — local engine only; a fitted one is used as it is.
    engine : LocalEngine (default) or SparkEngine; no other object (the engines are adtarget's own).
    window_end : the data window's end, epoch seconds (default: the consent snapshot's ``as_of``).
    snapshot_id : the data owner's public name of this data snapshot; an identical release (same settings,
        window and snapshot id) returns the stored report without new spending.
    screen : ProxyScreen for the default catalog (segments a DP proxy audit, or a curator, blocked).
    random_state : seed for the noise — for tests and notebooks only (warns); ``None`` uses secure randomness.
    created_at : the report's timestamp (aware datetime; default now) — fixed only for reproducible tests.

    Privacy
    -------
    The report is (ε, δ)-DP for the person (all their events in the window) under the release's bounds; the
    spend is recorded in ``budget`` before the report exists. See docs/privacy/release.md.
    """
    from adtarget.reference._sensitivity import SafeTaxonomy, SensitivityProfile
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy
    from adtarget.segments._rules import SegmentCatalog

    settings = settings if settings is not None else RunSettings()
    engine = _checked_engine(engine)
    if safe_taxonomy is None:
        safe_taxonomy = SafeTaxonomy(Taxonomy.default(), SensitivityProfile.named(settings.sensitivity_profile))
    services = services if services is not None else ServiceRegistry.synthetic()
    if segmenter is not None and screen is not None:
        raise ParameterError("screen applies to the default catalog; pass SegmentCatalog(..., screen=screen) as "
                             "segmenter instead")
    segmenter = segmenter if segmenter is not None else SegmentCatalog.default(safe_taxonomy, screen=screen)
    snapshot = consent.snapshot() if hasattr(consent, "snapshot") else consent
    if _unfitted_learned(segmenter):  # fit on this build's eligible events first (its ε goes to its ledger)
        if type(engine) is not LocalEngine:
            raise ParameterError("segmenter: an unfitted DPKMeansSegmenter is fitted by the local engine only; fit "
                                 "it first (segmenter.fit(profiles)) and pass the fitted one to the Spark engine")
        learned: Any = segmenter
        learned.fit(_eligible_profiles(events, pseudonymizer, snapshot, safe_taxonomy, services, settings,
                                       window_end))
    infos = tuple(_segment_infos(segmenter))
    spec = settings.release_spec(tuple(s.segment_id for s in infos))
    check_ledger(budget).advertiser(spec.advertiser)  # before any work: UnknownAdvertiserError when unregistered
    context = BuildContext(
        pseudonymizer=pseudonymizer, snapshot=snapshot, safe_taxonomy=safe_taxonomy, services=services,
        segmenter=segmenter, spec=spec, policy=settings.policy, target_service=settings.target_service,
        window_end=window_end, snapshot_id=snapshot_id,
    )
    aggregates = type(engine).aggregate(engine, events, context)  # the class's method: not an instance attribute
    result = release_counts(aggregates.cells, spec, ledger=budget, random_state=random_state,
                            allow_infinite_epsilon=allow_infinite_epsilon, created_at=created_at)
    assignments = getattr(getattr(engine, "last_build", None), "assignments", None)
    summary = _summary(aggregates, result, engine)
    return RunResult(result.report, result.explanation, aggregates, summary, assignments)


def _unfitted_learned(segmenter: Any) -> bool:
    from adtarget.segments._dp_kmeans import DPKMeansSegmenter

    return type(segmenter) is DPKMeansSegmenter and getattr(segmenter, "segment_info_", None) is None


def _eligible_profiles(events: Any, pseudonymizer: Any, snapshot: Any, safe_taxonomy: Any, services: Any,
                       settings: RunSettings, window_end: int | None) -> Any:
    """The interest profiles (default profiler) of the build's eligible events: what a learned segmenter
    is fitted on inside ``run``."""
    from adtarget.events._ingest import ingest
    from adtarget.gate._gate import apply_gate
    from adtarget.profiles._profiles import InterestProfiler

    batch = ingest(events, pseudonymizer=pseudonymizer, taxonomy=safe_taxonomy.taxonomy, services=services).batch
    eligible = apply_gate(batch, snapshot, safe_taxonomy, settings.policy, target_service=settings.target_service,
                          window_end=window_end)
    return InterestProfiler().fit_transform(eligible)


def _segment_infos(segmenter: Any) -> Any:
    infos = getattr(segmenter, "segments", None)
    if infos is None:
        infos = getattr(segmenter, "segment_info_", None)
    if infos is None:
        raise ParameterError(f"segmenter {type(segmenter).__name__} does not describe its segments (fit it first)")
    return infos


def _checked_engine(engine: Any) -> Any:
    """LocalEngine or SparkEngine themselves (not subclasses, not stand-ins): the engines are adtarget's own."""
    import sys

    if engine is None:
        return LocalEngine()
    spark = sys.modules.get("adtarget.engine._spark")
    if type(engine) is LocalEngine or (spark is not None and type(engine) is spark.SparkEngine):
        return engine
    raise ParameterError(f"engine must be adtarget's LocalEngine or SparkEngine, got {type(engine).__name__} "
                         "(other engines cannot be plugged in: their counts could not be checked)")


def _summary(aggregates: Any, result: Any, engine: Any) -> dict[str, Any]:
    summary = aggregates.summary()
    explanation = result.explanation
    new_spend = not explanation.reused and explanation.total.get("new_spend", True) is not False
    spent = explanation.total.get("epsilon") if new_spend else 0.0
    summary.update({
        "engine": getattr(engine, "name", type(engine).__name__),
        "segments": {"released": len(result.report.segments),
                     "suppressed": int(result.report.suppressed_segments)},
        "epsilon_spent": spent if isinstance(spent, (int, float)) and math.isfinite(spent) else str(spent),
        "reused_stored_report": bool(explanation.reused),
    })
    return summary
