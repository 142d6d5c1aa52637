"""Type aliases of the public API's inputs (for users' type checkers; nothing here runs)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, Union

import numpy as np

if TYPE_CHECKING:
    import pandas
    import pyarrow

__all__ = ["EventSource", "PathLike", "SeedLike"]

#: a file path
PathLike: TypeAlias = Union[str, "os.PathLike[str]"]  # noqa: UP007 - a runtime alias
#: what ``ingest`` and ``run`` read: a Parquet/CSV path, an Arrow table, a pandas DataFrame or columns by name
EventSource: TypeAlias = Union[str, "os.PathLike[str]", "pyarrow.Table", "pandas.DataFrame",  # noqa: UP007
                               Mapping[str, Any]]
#: the noise's randomness: None (secure, the default), or a seed / RandomState for tests and notebooks (warns)
SeedLike: TypeAlias = Union[int, np.random.RandomState, None]  # noqa: UP007
