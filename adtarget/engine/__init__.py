"""The main job and the engines that run it.

``run`` wires the stages in order: events → (ingest → gate → segments → exact counts, per partition of persons) →
summed ``Aggregates`` → ``release_counts`` → report. An engine only moves events and sums aggregates: the
numpy ``LocalEngine`` is the reference (one partition holding every person); ``SparkEngine`` runs the same
per-partition build (``_partition``) on partitions of persons. Both implement the one ``Engine`` protocol.
"""

from adtarget.engine._aggregates import Aggregates
from adtarget.engine._context import BuildContext
from adtarget.engine._protocol import Engine, LocalEngine
from adtarget.engine._run import RunResult, RunSettings, run
from adtarget.engine._spark import SparkEngine

__all__ = ["Aggregates", "BuildContext", "Engine", "LocalEngine", "RunResult", "RunSettings", "SparkEngine", "run"]
