"""What every partition of a build needs: fixed on the driver, shipped (broadcast) to the workers."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from adtarget.exceptions import ParameterError
from adtarget.gate._policy import EligibilityPolicy

if TYPE_CHECKING:
    from adtarget.consent import ConsentSnapshot
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.reference._sensitivity import SafeTaxonomy
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reports._spec import ReleaseSpec

__all__ = ["BuildContext"]


@dataclass(frozen=True, eq=False)
class BuildContext:
    """Inputs of one build that do not depend on the partition.

    ``now`` (the reference for rejecting future timestamps) and ``window_end`` are fixed once on the driver so
    every partition, in every engine, applies identical rules.
    """

    pseudonymizer: Pseudonymizer
    snapshot: ConsentSnapshot
    safe_taxonomy: SafeTaxonomy
    services: ServiceRegistry
    segmenter: Any
    spec: ReleaseSpec
    policy: EligibilityPolicy = EligibilityPolicy()
    target_service: str | None = None
    window_end: int | None = None
    now: float | None = None
    drop_unknown_columns: bool = False
    snapshot_id: str | None = None

    def __post_init__(self) -> None:
        if not hasattr(self.segmenter, "assign"):
            raise ParameterError(
                f"segmenter must have an assign(eligible) method (a SegmentCatalog or a fitted "
                f"DPKMeansSegmenter); got {type(self.segmenter).__name__}"
            )
        if self.window_end is None:
            object.__setattr__(self, "window_end", int(self.snapshot.as_of))
        if self.now is None:
            object.__setattr__(self, "now", time.time())

    def __repr__(self) -> str:
        return (f"BuildContext(taxonomy={self.safe_taxonomy.taxonomy.name!r}, "
                f"profile={self.safe_taxonomy.profile.name!r}, target_service={self.target_service!r}, "
                f"window_end={self.window_end})")
