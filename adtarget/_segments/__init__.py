"""Interest segments: rule-based (data-independent taxonomy definitions) and DP-learned (DP k-means).

Modules: ``_info`` (SegmentInfo, SegmentAssignments), ``_rules`` (TopicSegment, AllOf, AnyOf, SegmentCatalog),
``_dp_kmeans`` (DPKMeansSegmenter, InMemoryAccountant), ``_naming`` (readable segment names) and
``_assignments_io`` (pandas / Parquet export of assignments, Personal Information).
"""
