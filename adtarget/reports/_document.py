"""The advertiser's document, built from noised counts and public parameters only.

:func:`report_document` is the one constructor of a released ``adtarget.segment_report/v2`` document. Its
inputs are sealed :class:`~adtarget.reports._postprocess.ReleasedCounts` (which only the noise stage
makes), the spec, the public facts recorded with the counts (segment names, policy, window), a random
report id, the time, and the ledger's remaining budget; nothing exact reaches it, so a field computed from
exact data would need a type error first. What each field is a function of: docs/privacy/release.md.
"""

from __future__ import annotations

import math
import secrets
import uuid
from datetime import datetime, timezone
from itertools import compress
from typing import Any

import numpy as np

from adtarget.exceptions import ParameterError
from adtarget.reports._cells import ReleaseFacts
from adtarget.reports._postprocess import ReleasedCounts, noises, released_state, thresholds
from adtarget.reports._report import SCHEMA_ID
from adtarget.reports._spec import ReleaseSpec, _iso

__all__ = ["CONFIDENCE", "budget_split", "new_report_id", "report_created_at", "report_document"]


def budget_split(spec: ReleaseSpec) -> dict[str, float]:
    """The shares of ε spent on the sizes, the breakdown cells and partition selection (they sum to 1)."""
    if math.isinf(spec.epsilon):
        return {"sizes": 1.0, "breakdowns": 0.0, "partition_selection": 0.0}
    eps = float(spec.epsilon)
    shares = {"sizes": spec.size_budget[0], "breakdowns": spec.breakdown_budget[0],
              "partition_selection": spec.partition_budget[0]}
    return {name: float(f"{part / eps:.12g}") for name, part in shares.items()}


def new_report_id(rng: np.random.RandomState | None) -> str:
    """A random report id (UUID version 4 form): 122 bits from ``secrets``, or from the seeded generator.

    It is drawn before any noise, so a seeded release stays reproducible and the id never depends on data.
    """
    raw = secrets.token_bytes(16) if rng is None else rng.bytes(16)
    return f"rpt-{uuid.UUID(bytes=raw, version=4)}"


def report_created_at(created_at: datetime | None) -> str:
    """``created_at`` (default: now) as the report's UTC timestamp."""
    if created_at is None:
        created_at = datetime.now(timezone.utc)
    if not isinstance(created_at, datetime) or created_at.tzinfo is None:
        raise ParameterError(f"created_at must be a timezone-aware datetime, got {created_at!r}")
    return created_at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


#: the confidence of each size's interval (the schema's constant)
CONFIDENCE = 0.95


def _segment_docs(counts: Any, facts: ReleaseFacts, half_width: int) -> list[dict[str, Any]]:
    cells = {d: (names, counts.cells[d].tolist(), counts.cell_reported[d].tolist())  # Python ints, once
             for d, names in counts.values.items()}
    sizes, reported, docs = counts.sizes.tolist(), counts.reported.tolist(), []
    for i, info in enumerate(facts.segments):
        if not reported[i]:
            continue
        breakdowns = {d: dict(compress(zip(names, values[i]), shown[i])) for d, (names, values, shown) in cells.items()}
        docs.append({"segment_id": info.segment_id, "name": info.name, "path": list(info.path),
                     "size": sizes[i], "breakdowns": breakdowns,
                     "size_interval": {"confidence": CONFIDENCE, "lower": max(sizes[i] - half_width, 0),
                                       "upper": sizes[i] + half_width}})
    return docs


def report_document(counts: ReleasedCounts, spec: ReleaseSpec, facts: ReleaseFacts, *, report_id: str,
                    created_at: str, remaining: tuple[Any, Any]) -> dict[str, Any]:
    """The report document of one release.

    Parameters
    ----------
    counts : ReleasedCounts
        Noised, post-processed counts of ``facts.segments`` (refused unless the noise stage made them).
    spec : ReleaseSpec
    facts : ReleaseFacts
        Segment names and paths, the policy fields and the data window (public).
    report_id : str
        From :func:`new_report_id`.
    created_at : str
        From :func:`report_created_at`.
    remaining : (RemainingBudget, RemainingBudget)
        The advertiser's and the global remaining budget after this release's charge.
    """
    noisy = released_state(counts)
    size_noise, _ = noises(spec)
    size_threshold, cell_threshold = thresholds(spec)
    segments = _segment_docs(noisy, facts, size_noise.half_width(CONFIDENCE))
    return {
        "schema": SCHEMA_ID, "report_id": report_id, "advertiser": spec.advertiser, "created_at": created_at,
        "data_window": {"start": _iso(facts.window[0]), "end": _iso(facts.window[1])},
        "policy": dict(facts.policy),
        "privacy": {"unit": "person", "epsilon": float(spec.epsilon), "delta": float(spec.delta),
                    "mechanism": spec.mechanism, "max_segments_per_person": spec.max_segments_per_person,
                    "min_reported_size": spec.min_reported_size,
                    "false_segment_rate": float(spec.false_segment_rate), "size_threshold": size_threshold,
                    "cell_threshold": cell_threshold, "budget_split": budget_split(spec),
                    "budget_remaining": {"advertiser": float(f"{remaining[0].epsilon:.12g}"),
                                         "global": float(f"{remaining[1].epsilon:.12g}")}},
        "segments": segments, "suppressed_segments": len(facts.segments) - len(segments),
    }
