"""Interest segments: rule-based (data-independent definitions over the safe taxonomy) and DP-learned (DP k-means).

Modules: ``_rules`` (TopicSegment, AllOf, AnyOf, SegmentCatalog) with its compiled kernel ``_kernels``;
``_dp_kmeans`` (DPKMeansSegmenter, LearnedModel); ``_info`` (SegmentInfo, SegmentAssignments — Personal
Information, internal only); ``_screen`` (ProxyScreen, the public outcome of a proxy audit); ``_naming``
(readable names); ``_assignments_io`` and ``_assignments_read`` (pandas / Parquet export and import).
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
