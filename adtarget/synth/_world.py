"""The static side of the synthetic-data model: services, topics and the sampling tables built from them.

Nothing here is random. :func:`world` derives, once per process, everything the draws in
:mod:`adtarget.synth._persons` and :mod:`adtarget.synth._events` read: the bundled IAB Content 2.2 taxonomy
under the ``default`` sensitivity profile, topic popularity, the background interest distribution,
P(service | node) and the per-service event-kind tables. :func:`quantile_table` and :func:`draw` are the
sampler: a uniform draw from a table of 2**16 outcomes repeated in proportion to their probability.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from adtarget.reference._taxonomy import Taxonomy

__all__ = ["SERVICES", "World", "draw", "freeze_columns", "quantile_table", "world"]

#: service -> (base share, tier-1 topics it is about; ``None`` = every topic)
_SERVICE_TOPICS: dict[str, tuple[float, frozenset[str] | None]] = {
    "video": (0.26, frozenset({
        "Movies", "Television", "Pop Culture", "Sports", "Music and Audio", "Video Gaming", "Food & Drink",
        "Hobbies & Interests", "Travel", "Style & Fashion", "Automotive", "Home & Garden", "Pets", "Fine Art",
        "Events and Attractions", "Family and Relationships"})),
    "news": (0.16, frozenset({
        "News and Politics", "Business and Finance", "Science", "Technology & Computing", "Sports",
        "Personal Finance", "Real Estate", "Careers", "Education", "Religion & Spirituality", "Medical Health",
        "Healthy Living"})),
    "games": (0.14, frozenset({"Video Gaming", "Hobbies & Interests", "Sports", "Technology & Computing",
                               "Pop Culture"})),
    "search": (0.08, None),
    "music": (0.20, frozenset({"Music and Audio", "Pop Culture", "Events and Attractions",
                               "Religion & Spirituality", "Fine Art"})),
    "payments": (0.08, frozenset({
        "Shopping", "Style & Fashion", "Travel", "Food & Drink", "Automotive", "Home & Garden", "Real Estate",
        "Personal Finance", "Events and Attractions", "Pets", "Books and Literature", "Video Gaming"})),
    "health_plus": (0.25, frozenset({"Medical Health", "Healthy Living"})),
}
SERVICES: tuple[str, ...] = tuple(_SERVICE_TOPICS)
_OFF_TOPIC = 0.02
#: service -> probabilities of EVENT_KINDS (app_use, search, content_view, purchase)
_SERVICE_KINDS: dict[str, tuple[float, float, float, float]] = {
    "video": (0.10, 0.03, 0.85, 0.02), "news": (0.12, 0.03, 0.85, 0.0), "games": (0.70, 0.02, 0.18, 0.10),
    "search": (0.02, 0.93, 0.05, 0.0), "music": (0.35, 0.05, 0.58, 0.02), "payments": (0.12, 0.03, 0.0, 0.85),
    "health_plus": (0.50, 0.10, 0.38, 0.02),
}
#: popularity of tier-1 topics (others: 1)
_TOPIC_POPULARITY: dict[str, float] = {
    "Music and Audio": 5, "Sports": 5, "Video Gaming": 5, "Movies": 4, "Television": 4, "Food & Drink": 4,
    "Hobbies & Interests": 4, "News and Politics": 4, "Shopping": 4, "Technology & Computing": 4,
    "Automotive": 3, "Business and Finance": 3, "Healthy Living": 3, "Home & Garden": 3, "Personal Finance": 3,
    "Pop Culture": 3, "Style & Fashion": 3, "Travel": 3,
}
_SENSITIVE_CLASS_WEIGHT = {"health": 0.60, "relig": 0.25, "ethnic": 0.15}  # by substring; other classes 0.05
_TABLE_SIZE = 1 << 16  # resolution of the sampling tables (probabilities are multiples of 2**-16)


def freeze_columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Make every array of ``columns`` read-only (in place) and return ``columns``."""
    for array in columns.values():
        array.flags.writeable = False
    return columns


@dataclass(frozen=True, eq=False)
class World:
    """The taxonomy and the data-independent distributions every synthetic dataset is drawn from."""

    taxonomy: Taxonomy
    sensitive_class: np.ndarray  # int8 per node, -1 = safe
    class_weight: np.ndarray  # float64 per sensitive class
    focus_roots: np.ndarray  # int32 tier-1 nodes with safe descendants
    root_popularity: np.ndarray  # float64, aligned with focus_roots
    background: np.ndarray  # float64 over nodes (safe ones only), sums to 1
    service_given_node: np.ndarray  # float64 (n_nodes, n_services), rows sum to 1
    kind_table: np.ndarray  # int8 (n_services, _TABLE_SIZE)

    def safe_subtree(self, root: int) -> np.ndarray:
        """The safe nodes of the subtree of ``root`` (int32, depth-first)."""
        nodes = self.taxonomy.descendants(root)
        return nodes[self.sensitive_class[nodes] < 0]


@functools.cache
def world() -> World:
    """The one :class:`World` (IAB Content 2.2 under the ``default`` profile), built on first use."""
    from adtarget.reference._sensitivity import SensitivityProfile

    taxonomy = Taxonomy.default()
    profile = SensitivityProfile.named("default")
    sensitive_class = np.asarray(profile.class_of(taxonomy), dtype=np.int8)
    class_weight = np.array([_class_weight(c) for c in profile.classes], dtype=np.float64)
    root_of = taxonomy.rollup(np.arange(taxonomy.n_nodes), 1)
    safe = sensitive_class < 0
    roots = np.unique(root_of[safe]).astype(np.int32)
    popularity = np.array([_TOPIC_POPULARITY.get(str(taxonomy.names[r]), 1.0) for r in roots])
    return World(taxonomy, sensitive_class, class_weight, roots, popularity,
                 _background(taxonomy, root_of, safe, roots, popularity),
                 _service_given_node(taxonomy.names[root_of]), _kind_table())


def _class_weight(name: str) -> float:
    return next((w for key, w in _SENSITIVE_CLASS_WEIGHT.items() if key in name.lower()), 0.05)


def _background(taxonomy: Taxonomy, root_of: np.ndarray, safe: np.ndarray, roots: np.ndarray,
                popularity: np.ndarray) -> np.ndarray:
    """Popularity of each safe node: its topic's popularity, shared within the topic (broad nodes 3x leaves)."""
    node_weight = np.where(safe, np.maximum(4 - taxonomy.tier.astype(np.float64), 1.0), 0.0)
    topic_total = np.bincount(root_of, weights=node_weight, minlength=taxonomy.n_nodes)
    topic_pop = np.zeros(taxonomy.n_nodes)
    topic_pop[roots] = popularity
    p = node_weight * topic_pop[root_of] / np.where(topic_total > 0, topic_total, 1.0)[root_of]
    return p / p.sum()


def _service_given_node(topic_names: np.ndarray) -> np.ndarray:
    affinity = np.empty((topic_names.size, len(SERVICES)))
    for s, (base, topics) in enumerate(_SERVICE_TOPICS.values()):  # one pass per service
        on_topic = np.ones(topic_names.size, bool) if topics is None else np.isin(topic_names, sorted(topics))
        affinity[:, s] = base * np.where(on_topic, 1.0, _OFF_TOPIC)
    return affinity / affinity.sum(axis=1, keepdims=True)


def _kind_table() -> np.ndarray:
    return np.stack([quantile_table(np.asarray(_SERVICE_KINDS[s]), np.int8) for s in SERVICES])


def quantile_table(p: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Outcomes repeated in proportion to ``p`` (largest remainders): a uniform draw from it samples ``p``."""
    scaled = p / p.sum() * _TABLE_SIZE
    counts = np.floor(scaled).astype(np.int64)
    short = _TABLE_SIZE - int(counts.sum())
    counts[np.argsort(counts - scaled, kind="stable")[:short]] += 1
    return np.repeat(np.arange(p.size), counts).astype(dtype or (np.int16 if p.size < 2**15 else np.int32))


def draw(tables: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per element of ``row`` from ``tables[row]`` (trusted inputs: rows of quantile tables)."""
    flat = row.astype(np.int32) * np.int32(_TABLE_SIZE) + rng.integers(0, _TABLE_SIZE, row.size, dtype=np.int32)
    return tables.reshape(-1)[flat]
