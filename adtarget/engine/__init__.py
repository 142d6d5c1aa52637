"""The main job and the engines that run it.

``run`` wires the stages in order: events → (ingest → gate → segments → exact counts, per partition of persons) →
summed ``Aggregates`` → ``release_counts`` → report. An engine only moves events and sums aggregates: the
numpy ``LocalEngine`` is the reference (one partition holding every person); ``SparkEngine`` runs the same
per-partition build (``_partition``) on partitions of persons. Both implement the one ``Engine`` protocol.
"""

import lazy_loader as _lazy

# public names: __init__.pyi (what type checkers read); each loads with its module on first use
__getattr__, __dir__, __all__ = _lazy.attach_stub(__name__, __file__)
