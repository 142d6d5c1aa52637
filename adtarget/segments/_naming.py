"""Readable names for segments: taxonomy nodes, composites, and DP centroids' leading categories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["centroid_names", "composite_name", "topic_name"]


def topic_name(taxonomy: Any, node: int) -> tuple[str, tuple[str, ...]]:
    """The node's display name and its path of names from the root."""
    return str(taxonomy.names[node]), tuple(taxonomy.path(int(node)))


def composite_name(operator: str, part_names: Sequence[str]) -> str:
    """``"Sports AND Travel"`` / ``"Sports OR Travel"``; nested composites are parenthesised."""
    wrapped = [f"({n})" if (" AND " in n or " OR " in n) else n for n in part_names]
    return f" {operator} ".join(wrapped)


def leading_categories(centroid: np.ndarray, *, max_parts: int = 2, min_ratio: float = 0.5) -> np.ndarray:
    """Indices of a centroid's leading coordinates: the largest, plus the next ones at >= ``min_ratio`` of it.

    Ties are broken by the lower index, so names are deterministic given the (already DP) centroid.
    """
    order = np.lexsort((np.arange(centroid.size), -centroid))[:max_parts]
    top = centroid[order[0]]
    keep = (centroid[order] >= min_ratio * top) & (centroid[order] > 0)
    keep[0] = True
    return order[keep]


def centroid_names(centroids: np.ndarray, labels: Sequence[str], *, max_parts: int = 2,
                   min_ratio: float = 0.5) -> list[str]:
    """One readable, unique name per centroid from its leading categories, e.g. ``"Sports + Travel"``.

    Centroids are DP outputs, so naming them is post-processing and costs no privacy budget. Duplicate names
    get a suffix `` (2)``, `` (3)``, ... in centroid order.
    """
    names = [" + ".join(str(labels[j]) for j in leading_categories(c, max_parts=max_parts, min_ratio=min_ratio))
             for c in np.asarray(centroids, dtype=np.float64)]
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique
