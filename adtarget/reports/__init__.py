"""The advertiser release: exact counts per segment and breakdown cell under per-person contribution bounds
(``count_cells``), discrete noise (``CountNoise``), DP partition selection of data-derived keys
(``PartitionSelection``), noise-aware thresholds and post-processing, the budget charge before anything exists,
and the one advertiser-facing document (``SegmentReport``, ``adtarget.segment_report/v1``).

``release`` is the one path from eligible events and segment assignments to a report; ``release_counts`` the
same from exact counts summed over partitions (what an engine has). ``audit_proxies`` is the DP sensitive-proxy
audit whose outcome (a ``ProxyScreen``) screens catalogs before any release. Compiled kernels:
``_bounding_kernels`` (bounding and per-cell counts), ``_noise_kernels`` (the discrete Gaussian sampler).
"""

from adtarget.reports._audit import ProxyAudit, audit_proxies
from adtarget.reports._cells import CellCounts, count_cells
from adtarget.reports._explain import ReleaseExplanation
from adtarget.reports._noise import CountNoise
from adtarget.reports._partition import PartitionSelection
from adtarget.reports._release import ReleaseResult, default_window, release, release_counts, report_policy
from adtarget.reports._report import SegmentReport, audit_report, validate_report
from adtarget.reports._spec import ReleaseSpec

__all__ = ["CellCounts", "CountNoise", "PartitionSelection", "ProxyAudit", "ReleaseExplanation", "ReleaseResult",
           "ReleaseSpec", "SegmentReport", "audit_proxies", "audit_report", "count_cells", "default_window",
           "release", "release_counts", "report_policy", "validate_report"]
