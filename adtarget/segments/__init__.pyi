"""Type stub of adtarget.segments: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._assignments_read import read_assignments_parquet as read_assignments_parquet
from ._dp_kmeans import DPKMeansSegmenter as DPKMeansSegmenter
from ._dp_kmeans import LearnedModel as LearnedModel
from ._info import SegmentAssignments as SegmentAssignments
from ._info import SegmentInfo as SegmentInfo
from ._rules import AllOf as AllOf
from ._rules import AnyOf as AnyOf
from ._rules import SegmentCatalog as SegmentCatalog
from ._rules import TopicSegment as TopicSegment
from ._screen import ProxyScreen as ProxyScreen

__all__ = ["AllOf", "AnyOf", "DPKMeansSegmenter", "LearnedModel", "ProxyScreen", "SegmentAssignments",
           "SegmentCatalog", "SegmentInfo", "TopicSegment", "read_assignments_parquet"]
