"""``segments.png``: exact versus released segment sizes (matplotlib Agg, imported only here).

The exact sizes are the data owner's pre-noise counts: the figure is for the data owner, never an advertiser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from adtarget._core._atomic import atomic_path

__all__ = ["plot_segment_sizes", "true_and_released_sizes"]


def true_and_released_sizes(result: Any) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(names, exact, released)`` of the released segments, largest first."""
    cells = result.aggregates.cells
    exact = dict(zip(cells.segment_ids, np.asarray(cells.sizes).tolist()))
    segments = sorted(result.report.segments, key=lambda s: -s.size)
    names = [s.name for s in segments]
    return (names, np.array([exact.get(s.segment_id, 0) for s in segments], dtype=np.int64),
            np.array([s.size for s in segments], dtype=np.int64))


def plot_segment_sizes(result: Any, path: Path, *, top: int = 25) -> Path:
    """Write a two-panel PNG: released vs exact sizes of every released segment, and the ``top`` largest."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names, exact, released = true_and_released_sizes(result)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1, 1.4]})
    _scatter(left, exact, released, result.report.privacy)
    _bars(right, names[:top], exact[:top], released[:top])
    fig.suptitle(f"Segment sizes released to {result.report.advertiser!r}: "
                 f"{len(names)} released, {result.report.suppressed_segments} suppressed")
    fig.tight_layout()
    with atomic_path(path) as temporary:  # exact sizes beside the released ones: internal, 0600
        fig.savefig(temporary, dpi=100, format="png")
    plt.close(fig)
    return path


def _scatter(ax: Any, exact: np.ndarray, released: np.ndarray, privacy: dict[str, Any]) -> None:
    if exact.size:
        ax.scatter(exact, released, s=14, alpha=0.7)
        hi = float(max(exact.max(), released.max())) * 1.05
        ax.plot([0, hi], [0, hi], color="grey", linewidth=1, label="released = exact")
    ax.axhline(privacy["min_reported_size"], color="red", linestyle=":", label="min reported size")
    ax.set_xlabel("exact size (bounded contributions, before noise)")
    ax.set_ylabel("released size (DP noise, post-processed)")
    ax.set_title(f"ε={privacy['epsilon']}, δ={privacy['delta']}, {privacy['mechanism']}")
    ax.legend(loc="upper left")


def _bars(ax: Any, names: list[str], exact: np.ndarray, released: np.ndarray) -> None:
    y = np.arange(len(names))
    ax.barh(y - 0.2, exact, height=0.4, label="exact")
    ax.barh(y + 0.2, released, height=0.4, label="released")
    ax.set_yticks(y, [n if len(n) <= 32 else n[:31] + "…" for n in names], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("persons")
    ax.set_title(f"the {len(names)} largest released segments")
    ax.legend(loc="lower right")
