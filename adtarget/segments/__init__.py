"""Interest segments: rule-based (data-independent definitions over the safe taxonomy) and DP-learned (DP k-means).

Modules: ``_rules`` (TopicSegment, AllOf, AnyOf, SegmentCatalog) with its compiled kernel ``_kernels``;
``_dp_kmeans`` (DPKMeansSegmenter, LearnedModel); ``_info`` (SegmentInfo, SegmentAssignments — Personal
Information, internal only); ``_screen`` (ProxyScreen, the public outcome of a proxy audit); ``_naming``
(readable names); ``_assignments_io`` and ``_assignments_read`` (pandas / Parquet export and import).
"""

from adtarget.segments._assignments_read import read_assignments_parquet
from adtarget.segments._dp_kmeans import DPKMeansSegmenter, LearnedModel
from adtarget.segments._info import SegmentAssignments, SegmentInfo
from adtarget.segments._rules import AllOf, AnyOf, SegmentCatalog, TopicSegment
from adtarget.segments._screen import ProxyScreen

__all__ = ["AllOf", "AnyOf", "DPKMeansSegmenter", "LearnedModel", "ProxyScreen", "SegmentAssignments",
           "SegmentCatalog", "SegmentInfo", "TopicSegment", "read_assignments_parquet"]
