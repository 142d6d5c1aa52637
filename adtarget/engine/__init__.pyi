"""Type stub of adtarget.engine: the names below load on first use (``lazy_loader``, SPEC 1)."""

from ._aggregates import Aggregates as Aggregates
from ._context import BuildContext as BuildContext
from ._protocol import Engine as Engine
from ._protocol import LocalEngine as LocalEngine
from ._run import RunResult as RunResult
from ._run import RunSettings as RunSettings
from ._run import run as run
from ._spark import SparkEngine as SparkEngine

__all__ = ["Aggregates", "BuildContext", "Engine", "LocalEngine", "RunResult", "RunSettings", "SparkEngine", "run"]
