"""Creating (and owning) the SparkSession the Spark engine runs on.

pyspark is imported only inside functions: ``import adtarget`` never loads it. A session the engine creates is
a classic ``local[N]`` or cluster session with Arrow enabled, the UI off and UTC as the session time zone; a
session the caller passes (classic or Spark Connect) is used as it is and never stopped by adtarget.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "PANDAS_VERSION_WARNING", "active_session", "create_session", "is_connect", "quiet_pyspark_warnings",
    "session_config",
]

#: pyspark 4.x warns (FutureWarning) that it "does not yet fully support pandas >= 3.0.0" when Arrow is set up.
#: The engine moves Arrow record batches, not pandas frames (``mapInArrow``), so the warning does not apply.
PANDAS_VERSION_WARNING = "PySpark does not yet fully support pandas"


def session_config(master: str) -> dict[str, str]:
    """The configuration of a session the engine creates for ``master``.

    Small shuffle partitions (the engine repartitions explicitly), no UI, no console progress bars, WARN logs,
    modest driver memory, and the worker Python set to this interpreter. A ``local`` master also binds the
    driver to the loopback address (no hostname lookup, nothing listening on other interfaces).
    """
    config = {
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.log.level": "WARN",
        "spark.driver.memory": "2g",
        "spark.pyspark.python": sys.executable,
    }
    if master.startswith("local"):
        config["spark.driver.bindAddress"] = "127.0.0.1"
        config["spark.driver.host"] = "127.0.0.1"
    return config


@contextlib.contextmanager
def quiet_pyspark_warnings() -> Iterator[None]:
    """Silence pyspark's pandas-version FutureWarning (only that one) for the duration of the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PANDAS_VERSION_WARNING, category=FutureWarning)
        yield


def create_session(master: str, app_name: str, extra: Mapping[str, str] | None = None) -> Any:
    """Create a classic SparkSession for ``master`` (``getOrCreate``: call :func:`active_session` first).

    Sets ``PYSPARK_PYTHON`` to this interpreter unless it is already set, so local workers import the same
    adtarget, and for a ``local`` master ``SPARK_LOCAL_IP`` to the loopback address unless set. ``extra``
    settings override :func:`session_config`.
    """
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in {**session_config(master), **dict(extra or {})}.items():
        builder = builder.config(key, value)
    with quiet_pyspark_warnings():
        return builder.getOrCreate()


def active_session() -> Any:
    """The SparkSession already active in this process (classic or Connect), or ``None``."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def is_connect(obj: Any) -> bool:
    """Whether a SparkSession or DataFrame is a Spark Connect one (``pyspark.sql.connect``)."""
    return type(obj).__module__.startswith("pyspark.sql.connect")
