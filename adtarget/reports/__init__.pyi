"""Type stub of adtarget.reports: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._accuracy import ReleaseAccuracy as ReleaseAccuracy
from ._accuracy import accuracy as accuracy
from ._accuracy import epsilon_for as epsilon_for
from ._audit import ProxyAudit as ProxyAudit
from ._audit import audit_proxies as audit_proxies
from ._cells import CellCounts as CellCounts
from ._cells import count_cells as count_cells
from ._explain import ReleaseExplanation as ReleaseExplanation
from ._noise import CountNoise as CountNoise
from ._partition import PartitionSelection as PartitionSelection
from ._release import ReleaseResult as ReleaseResult
from ._release import default_window as default_window
from ._release import release as release
from ._release import release_counts as release_counts
from ._release import report_policy as report_policy
from ._report import SegmentReport as SegmentReport
from ._report import audit_report as audit_report
from ._report import validate_report as validate_report
from ._report_schema import breakdowns_schema as breakdowns_schema
from ._report_schema import load_schema as load_schema
from ._spec import ReleaseSpec as ReleaseSpec

__all__ = ["CellCounts", "CountNoise", "PartitionSelection", "ProxyAudit", "ReleaseAccuracy", "ReleaseExplanation",
           "ReleaseResult", "ReleaseSpec", "SegmentReport", "accuracy", "audit_proxies", "audit_report",
           "breakdowns_schema", "count_cells", "default_window", "epsilon_for", "load_schema", "release",
           "release_counts", "report_policy", "validate_report"]
