"""Synthetic cross-service usage logs and consent records, with the ground truth that produced them.

:func:`generate` draws persons in latent interest groups, their events on seven services (event contract,
DESIGN.md §3) and their consent records (consent contract) as numpy arrays; :func:`write_events` and
:func:`write_consent` put them in Parquet or CSV files. Fully vectorised (loops run over groups, services,
countries, never over events or persons) and deterministic: the same :class:`SyntheticConfig` gives
byte-identical arrays. docs/synth.md describes the generative model and the figures measured.

Consent ``birth_year`` is float64 with NaN for unknown (nullable int16 in Parquet, an empty field in CSV);
``jurisdiction`` is ``""`` when unknown (null in files). An age is ``end_year - birth_year``.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
from dataclasses import dataclass, field, fields
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from adtarget._event_schema import EVENT_KINDS
from adtarget._taxonomy import Taxonomy
from adtarget.exceptions import ParameterError

__all__ = [
    "SERVICES", "GroundTruth", "SyntheticConfig", "SyntheticData", "generate", "write_consent", "write_events",
]

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
#: country -> (coarse regions, weights); a jurisdiction not listed here uses its bare country code
_REGIONS: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "US": (("US-CA", "US-TX", "US-NY", "US-FL", "US-IL", "US-WA", "US-MA", "US-GA"),
           (0.25, 0.18, 0.15, 0.14, 0.08, 0.08, 0.06, 0.06)),
    "DE": (("DE-NW", "DE-BY", "DE-BE", "DE-HH"), (0.35, 0.30, 0.20, 0.15)),
    "FR": (("FR-IDF", "FR-ARA", "FR-PAC", "FR-OCC"), (0.50, 0.20, 0.15, 0.15)),
    "KR": (("KR-11", "KR-41", "KR-26"), (0.50, 0.30, 0.20)),
    "BR": (("BR-SP", "BR-RJ", "BR-MG"), (0.45, 0.30, 0.25)),
    "IN": (("IN-MH", "IN-KA", "IN-DL", "IN-TN"), (0.35, 0.25, 0.25, 0.15)),
    "CN": (("CN-GD", "CN-BJ", "CN-SH"), (0.40, 0.30, 0.30)),
}
_SENSITIVE_CLASS_WEIGHT = {"health": 0.60, "relig": 0.25, "ethnic": 0.15}  # by substring; other classes 0.05
_AGE_BANDS = ((13, 18, 0.07), (18, 25, 0.15), (25, 35, 0.22), (35, 45, 0.19), (45, 55, 0.15), (55, 65, 0.12),
              (65, 86, 0.10))
_HOUR_WEIGHT = (0.3, 0.2, 0.15, 0.12, 0.12, 0.2, 0.4, 0.7, 0.9, 1, 1, 1, 1.1, 1.1, 1, 1, 1.1, 1.3, 1.6, 1.8,
                1.9, 1.7, 1.2, 0.6)
_WEEKDAY_WEIGHT = (1.0, 0.97, 0.97, 1.0, 1.08, 1.25, 1.2)  # Monday first
_TRAVEL_SHARE = 0.03
_SECOND_GROUP_SHARE = 0.2  # share of a person's events drawn from their second group's mixture
_TABLE_SIZE = 1 << 16  # resolution of the sampling tables (probabilities are multiples of 2**-16)
_MIN_END = 946_684_800  # 2000-01-01T00:00:00Z
_MAX_END = 4_102_444_800  # 2100-01-01T00:00:00Z
_DEFAULT_END = 1_793_491_200  # 2026-11-01T00:00:00Z


@dataclass(frozen=True)
class SyntheticConfig:
    """What to generate. Frozen; validates itself; ``n_persons`` defaults to ``max(1, n_events // 20)``.

    Shares are fractions in [0, 1] of persons with a consent record, except ``sensitive_share`` and
    ``background_share`` (of events), ``no_consent_share`` (of persons with events) and ``dormant_share``
    (of persons). ``end`` is the exclusive end of the ``days``-day window, in epoch seconds (UTC).
    ``jurisdictions`` and ``policy_versions`` are ``(value, weight)`` pairs; a policy version is an ISO date.

    Raises
    ------
    ParameterError
        A field is outside its domain; the message names it, the constraint and the value.
    """

    n_events: int = 100_000
    n_persons: int | None = None
    n_groups: int = 12
    days: int = 90
    end: int = _DEFAULT_END
    seed: int = 0
    sensitive_share: float = 0.04
    background_share: float = 0.15
    opt_out_share: float = 0.10
    under_13_share: float = 0.03
    deleted_or_terminated_share: float = 0.01
    no_cross_service_share: float = 0.20
    unknown_birth_year_share: float = 0.03
    location_deleted_share: float = 0.02
    no_consent_share: float = 0.005
    dormant_share: float = 0.02
    unknown_jurisdiction_share: float = 0.01
    jurisdictions: tuple[tuple[str, float], ...] = (
        ("US", 0.38), ("IN", 0.14), ("BR", 0.12), ("DE", 0.10), ("CN", 0.10), ("FR", 0.08), ("KR", 0.08))
    policy_versions: tuple[tuple[str, float], ...] = (("2018-05-14", 0.93), ("2016-01-01", 0.07))

    def __post_init__(self) -> None:
        _check_int("n_events", self.n_events, 1, 2**31 - 1)
        if self.n_persons is None:
            object.__setattr__(self, "n_persons", max(1, self.n_events // 20))
        _check_int("n_persons", self.n_persons, 1, 2**31 - 1)
        _check_int("n_groups", self.n_groups, 1, 1000)
        _check_int("days", self.days, 1, 2730)
        _check_int("end", self.end, _MIN_END + 86_400 * self.days, _MAX_END)
        _check_int("seed", self.seed, 0, 2**63 - 1)
        for f in fields(self):
            if f.name.endswith("_share"):
                _check_share(f.name, getattr(self, f.name))
        _check_share("sensitive_share + background_share", self.sensitive_share + self.background_share, 0.99)
        _check_share("under_13_share + unknown_birth_year_share",
                     self.under_13_share + self.unknown_birth_year_share)
        _check_share("dormant_share", self.dormant_share, 0.99)
        _check_pairs("jurisdictions", self.jurisdictions, re.compile(r"^[A-Z]{2}$"), "a two-letter country code")
        _check_pairs("policy_versions", self.policy_versions, re.compile(r"^\d{4}-\d{2}-\d{2}$"), "an ISO date")
        for version, _ in self.policy_versions:
            _check_int(f"policy_versions date {version!r} (epoch s)", _version_epoch(version), _MIN_END,
                       self.end - 1)

    @property
    def start(self) -> int:
        """Inclusive start of the event window (epoch seconds)."""
        return self.end - 86_400 * self.days


def _check_int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        raise ParameterError(f"SyntheticConfig.{name} must be an integer in [{lo}, {hi}], got {value!r}")


def _check_share(name: str, value: Any, hi: float = 1.0) -> None:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not 0.0 <= float(value) <= hi:
        raise ParameterError(f"SyntheticConfig.{name} must be a number in [0, {hi}], got {value!r}")


def _check_pairs(name: str, pairs: Any, pattern: re.Pattern[str], what: str) -> None:
    if not isinstance(pairs, tuple) or not pairs or not all(isinstance(p, tuple) and len(p) == 2 for p in pairs):
        raise ParameterError(f"SyntheticConfig.{name} must be a non-empty tuple of (value, weight) pairs, "
                             f"got {pairs!r}")
    values = [p[0] for p in pairs]
    for value, weight in pairs:
        if not isinstance(value, str) or not pattern.match(value):
            raise ParameterError(f"SyntheticConfig.{name}: each value must be {what}, got {value!r}")
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight < math.inf:
            raise ParameterError(f"SyntheticConfig.{name}: weight of {value!r} must be a finite number > 0, "
                                 f"got {weight!r}")
    if len(set(values)) != len(values):
        raise ParameterError(f"SyntheticConfig.{name}: values must be unique, got {values}")


def _version_epoch(version: str) -> int:
    try:
        day = _dt.date.fromisoformat(version)
    except ValueError:
        raise ParameterError(f"SyntheticConfig.policy_versions: {version!r} is not a valid ISO date") from None
    return int(_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc).timestamp())


def _readonly(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    for array in columns.values():
        array.flags.writeable = False
    return columns


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """What generated the data, for tests and tutorials (never an input to the SDK).

    ``persons`` (int64 account ids of everyone, with or without events or consent), ``group`` (int16 latent
    group), ``second_group`` (the group 20% of a person's events come from), ``events_per_person`` and
    ``has_consent`` are aligned. Per group: ``group_weights`` (share of
    persons), ``group_roots`` (tier-1 node ids its interests concentrate on, primary first), ``group_mixture``
    (float64, n_groups x taxonomy.n_nodes: interest distribution over the node indices of ``taxonomy``, safe
    nodes only, rows sum to 1) and ``sensitive_rate`` (probability that its event is in a sensitive category).
    """

    persons: np.ndarray
    group: np.ndarray
    second_group: np.ndarray
    events_per_person: np.ndarray
    has_consent: np.ndarray
    group_weights: np.ndarray
    group_roots: tuple[tuple[str, ...], ...]
    group_mixture: np.ndarray
    sensitive_rate: np.ndarray
    taxonomy: Taxonomy = field(repr=False)


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """Generated events (event contract), consent records (consent contract) and the ground truth.

    ``events`` columns: ``person_id`` int64, ``service``/``category``/``kind``/``region`` str, ``ts`` int64 epoch
    seconds, ``weight`` float64. ``consent`` columns: ``person_id`` int64, ``birth_year`` float64 (NaN =
    unknown), ``ads_personalization`` str, ``cross_service`` bool, ``policy_version`` str, ``updated_at`` int64
    epoch seconds, ``deleted``/``terminated``/``location_deleted`` bool, ``jurisdiction`` str (``""`` = unknown).
    All arrays are read-only.
    """

    config: SyntheticConfig
    events: dict[str, np.ndarray]
    consent: dict[str, np.ndarray]
    truth: GroundTruth
    # column -> (the array it encodes, int codes, vocabulary): the writers dictionary-encode without hashing
    _codes: dict[str, tuple[np.ndarray, np.ndarray, tuple[str, ...]]] = field(repr=False, default_factory=dict)

    @property
    def n_events(self) -> int:
        return int(self.events["person_id"].size)

    @property
    def n_persons(self) -> int:
        return int(self.truth.persons.size)


# --- static tables (no randomness) -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _World:
    taxonomy: Taxonomy
    sensitive_class: np.ndarray  # int8 per node, -1 = safe
    class_weight: np.ndarray  # float64 per sensitive class
    focus_roots: np.ndarray  # int32 tier-1 nodes with safe descendants
    root_popularity: np.ndarray  # float64, aligned with focus_roots
    background: np.ndarray  # float64 over nodes (safe ones only), sums to 1
    service_given_node: np.ndarray  # float64 (n_nodes, n_services), rows sum to 1
    kind_table: np.ndarray  # int8 (n_services, _TABLE_SIZE)

    def safe_subtree(self, root: int) -> np.ndarray:
        nodes = self.taxonomy.descendants(root)
        return nodes[self.sensitive_class[nodes] < 0]


@functools.cache
def _world() -> _World:
    from adtarget._sensitivity import SensitivityProfile

    taxonomy = Taxonomy.default()
    profile = SensitivityProfile.named("default")
    sensitive_class = np.asarray(profile.class_of(taxonomy), dtype=np.int8)
    class_weight = np.array([_class_weight(c) for c in profile.classes], dtype=np.float64)
    root_of = taxonomy.rollup(np.arange(taxonomy.n_nodes), 1)
    safe = sensitive_class < 0
    roots = np.unique(root_of[safe]).astype(np.int32)
    popularity = np.array([_TOPIC_POPULARITY.get(str(taxonomy.names[r]), 1.0) for r in roots])
    return _World(taxonomy, sensitive_class, class_weight, roots, popularity,
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
    return np.stack([_quantile_table(np.asarray(_SERVICE_KINDS[s]), np.int8) for s in SERVICES])


def _quantile_table(p: np.ndarray, dtype: Any = None) -> np.ndarray:
    """Outcomes repeated in proportion to ``p`` (largest remainders): a uniform draw from it samples ``p``."""
    scaled = p / p.sum() * _TABLE_SIZE
    counts = np.floor(scaled).astype(np.int64)
    short = _TABLE_SIZE - int(counts.sum())
    counts[np.argsort(counts - scaled, kind="stable")[:short]] += 1
    return np.repeat(np.arange(p.size), counts).astype(dtype or (np.int16 if p.size < 2**15 else np.int32))


def _draw(tables: np.ndarray, row: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw per element of ``row`` from ``tables[row]`` (trusted inputs: rows of quantile tables)."""
    flat = row.astype(np.int32) * np.int32(_TABLE_SIZE) + rng.integers(0, _TABLE_SIZE, row.size, dtype=np.int32)
    return tables.reshape(-1)[flat]


# --- persons ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _People:
    account: np.ndarray  # int64 account ids
    group: np.ndarray  # int16
    second_group: np.ndarray  # int16
    group_weights: np.ndarray
    counts: np.ndarray  # int64 events per person
    jurisdiction: np.ndarray  # int16 index into config.jurisdictions, -1 = unknown
    home: np.ndarray  # int16 index into regions
    regions: tuple[str, ...]
    travel_table: np.ndarray  # int16 quantile table over regions


def _draw_people(config: SyntheticConfig, rng: np.random.Generator) -> _People:
    n = int(config.n_persons or 1)
    account = rng.permutation(10_000_000 + np.cumsum(rng.integers(1, 4000, n, dtype=np.int64)))
    group_weights = rng.dirichlet(np.full(config.n_groups, 4.0))
    group, second = rng.choice(config.n_groups, (2, n), p=group_weights).astype(np.int16)
    activity = rng.lognormal(0.0, 1.4, n)
    activity[rng.random(n) < config.dormant_share] = 0.0
    if not activity.any():
        activity[0] = 1.0
    counts = rng.multinomial(config.n_events, activity / activity.sum()).astype(np.int64)
    country_weight = np.array([w for _, w in config.jurisdictions], dtype=np.float64)
    country = rng.choice(country_weight.size, n, p=country_weight / country_weight.sum()).astype(np.int16)
    known = rng.random(n) >= config.unknown_jurisdiction_share
    home, regions, travel = _home_regions(config, country, rng)
    return _People(account, group, second, group_weights, counts, np.where(known, country, -1).astype(np.int16),
                   home, regions, travel)


def _home_regions(config: SyntheticConfig, country: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Each person's home region within their country; a loop over countries, not persons."""
    regions: list[str] = []
    popularity: list[float] = []
    home = np.empty(country.size, dtype=np.int16)
    total = sum(w for _, w in config.jurisdictions)
    for c, (code, weight) in enumerate(config.jurisdictions):
        names, shares = _REGIONS.get(code, ((code,), (1.0,)))
        p = np.asarray(shares) / sum(shares)
        members = np.flatnonzero(country == c)
        home[members] = len(regions) + rng.choice(p.size, members.size, p=p)
        regions.extend(names)
        popularity.extend(weight / total * p)
    return home, tuple(regions), _quantile_table(np.asarray(popularity))


# --- interests ---------------------------------------------------------------------------------------------
def _draw_interests(config: SyntheticConfig, world: _World,
                    rng: np.random.Generator) -> tuple[np.ndarray, tuple[tuple[str, ...], ...]]:
    """Each group's interest mixture over safe nodes: a primary and 1-2 secondary tier-1 topics (loop over groups)."""
    roots, popularity = world.focus_roots, world.root_popularity
    order = np.argsort(-(np.log(popularity) + rng.gumbel(size=roots.size)), kind="stable")
    mixture = np.zeros((config.n_groups, world.taxonomy.n_nodes))
    chosen_roots = []
    for g in range(config.n_groups):
        primary = int(order[g % roots.size])
        others = popularity.copy()
        others[primary] = 0.0
        k = min(int(rng.integers(1, 3)), roots.size - 1)
        chosen = [primary, *rng.choice(roots.size, k, replace=False, p=others / others.sum()).tolist()]
        for r, w in zip(chosen, rng.dirichlet([4.0] + [1.5] * k), strict=True):
            nodes = world.safe_subtree(int(roots[r]))
            mixture[g, nodes] += w * rng.dirichlet(np.full(nodes.size, 0.3))
        chosen_roots.append(tuple(str(world.taxonomy.ids[roots[r]]) for r in chosen))
    return mixture, tuple(chosen_roots)


def _draw_sensitive(config: SyntheticConfig, world: _World, people: _People,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each group's sensitive mixture (class weights x Dirichlet within class) and rate (mean: sensitive_share)."""
    mixture = np.zeros((config.n_groups, world.taxonomy.n_nodes))
    for c, weight in enumerate(world.class_weight):
        nodes = np.flatnonzero(world.sensitive_class == c)
        if nodes.size:
            mixture[:, nodes] = weight * rng.dirichlet(np.full(nodes.size, 0.5), size=config.n_groups)
    if not mixture.any():
        return mixture, np.zeros(config.n_groups)
    mixture /= mixture.sum(axis=1, keepdims=True)
    multiplier = rng.gamma(2.0, 0.5, config.n_groups)
    group_events = sum(share * np.bincount(g, weights=people.counts, minlength=config.n_groups)
                       for share, g in ((1 - _SECOND_GROUP_SHARE, people.group),
                                        (_SECOND_GROUP_SHARE, people.second_group)))
    rate = config.sensitive_share * multiplier * config.n_events / max(float(multiplier @ group_events), 1e-12)
    return mixture, np.minimum(rate, 1.0 - config.background_share)


def _joint_tables(config: SyntheticConfig, world: _World, interest: np.ndarray, sensitive: np.ndarray,
                  rate: np.ndarray) -> np.ndarray:
    """Per group, a quantile table over (node, service) pairs, coded ``node * n_services + service``."""
    keep = 1.0 - config.background_share - rate
    node_p = keep[:, None] * interest + config.background_share * world.background + rate[:, None] * sensitive
    joint = node_p[:, :, None] * world.service_given_node[None, :, :]
    return np.stack([_quantile_table(j.reshape(-1)) for j in joint])


# --- events and consent ------------------------------------------------------------------------------------
def _slot_weights(config: SyntheticConfig) -> np.ndarray:
    """Weight of each hour of the window: hour of day x day of week x a 10% upward trend."""
    slot_start = config.start + 3600 * np.arange(config.days * 24, dtype=np.int64)
    hour = (slot_start // 3600) % 24
    weekday = (slot_start // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    trend = 1.0 + 0.1 * np.linspace(0.0, 1.0, slot_start.size)
    w = np.asarray(_HOUR_WEIGHT)[hour] * np.asarray(_WEEKDAY_WEIGHT)[weekday] * trend
    return w / w.sum()


def _draw_events(config: SyntheticConfig, world: _World, people: _People, tables: np.ndarray,
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    n = config.n_events
    person = np.repeat(np.arange(people.counts.size, dtype=np.int32), people.counts)
    rng.shuffle(person)  # rows get hour slots in time order below, so persons interleave
    slot = np.repeat(np.arange(config.days * 24, dtype=np.int64), rng.multinomial(n, _slot_weights(config)))
    ts = config.start + 3600 * slot + rng.integers(0, 3600, n, dtype=np.int64)
    second = rng.random(n, dtype=np.float32) < _SECOND_GROUP_SHARE
    code = _draw(tables, np.where(second, people.second_group[person], people.group[person]), rng)
    node, service = np.divmod(code, np.int16(len(SERVICES)))
    kind = _draw(world.kind_table, service, rng)
    region = people.home[person]
    travel = np.flatnonzero(rng.random(n, dtype=np.float32) < _TRAVEL_SHARE)
    region[travel] = _draw(people.travel_table[None, :], np.zeros(travel.size, np.int8), rng)
    weight = np.ones(n)
    heavy = np.flatnonzero(rng.random(n, dtype=np.float32) < 0.05)
    weight[heavy] = np.array([0.5, 2.0, 3.0])[rng.integers(0, 3, heavy.size)]
    vocab = {"service": SERVICES, "category": tuple(world.taxonomy.ids.tolist()), "kind": EVENT_KINDS,
             "region": people.regions}
    codes = {"service": service, "category": node, "kind": kind, "region": region}
    strings = {col: np.asarray(vocab[col])[codes[col]] for col in codes}
    events = {"person_id": people.account[person], "service": strings["service"], "ts": ts,
              "category": strings["category"], "kind": strings["kind"], "region": strings["region"],
              "weight": weight}
    return _readonly(events), {col: (strings[col], codes[col], vocab[col]) for col in codes}


def _draw_consent(config: SyntheticConfig, people: _People,
                  rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    active = np.flatnonzero(people.counts > 0)
    has = np.ones(people.counts.size, dtype=bool)
    has[rng.choice(active, round(config.no_consent_share * active.size), replace=False)] = False
    idx = np.flatnonzero(has)
    m = idx.size
    draw = rng.random((6, m))
    deleted_or_terminated = draw[3] < config.deleted_or_terminated_share
    version, updated_at = _policy_history(config, m, rng)
    jurisdiction_names = np.asarray([c for c, _ in config.jurisdictions] + [""])  # code -1 -> ""
    consent = {
        "person_id": people.account[idx],
        "birth_year": _birth_years(config, draw[4], rng),
        "ads_personalization": np.where(draw[0] < config.opt_out_share, "opt_out", "opt_in"),
        "cross_service": draw[1] >= config.no_cross_service_share,
        "policy_version": version,
        "updated_at": updated_at,
        "deleted": deleted_or_terminated & (draw[2] < 0.5),
        "terminated": deleted_or_terminated & (draw[2] >= 0.5),
        "location_deleted": draw[5] < config.location_deleted_share,
        "jurisdiction": jurisdiction_names[people.jurisdiction[idx]],
    }
    return _readonly(consent), has


def _birth_years(config: SyntheticConfig, u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Birth years (float64, NaN = unknown): unknown, under 13 (ages 6-12), or an adult/teen age band."""
    end_year = _dt.datetime.fromtimestamp(config.end, tz=_dt.timezone.utc).year
    lo, hi, w = (np.asarray(col, dtype=np.float64) for col in zip(*_AGE_BANDS, strict=True))
    band = rng.choice(lo.size, u.size, p=w / w.sum())
    age = np.floor(lo[band] + rng.random(u.size) * (hi - lo)[band])
    child = (u >= config.unknown_birth_year_share) & (u < config.unknown_birth_year_share + config.under_13_share)
    age = np.where(child, rng.integers(6, 13, u.size), age)
    return np.where(u < config.unknown_birth_year_share, np.nan, end_year - age)


def _policy_history(config: SyntheticConfig, m: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Policy version per record and when it was given: between that version's date and the next one's (or end)."""
    pairs = sorted(config.policy_versions, key=lambda p: p[0])
    names = np.asarray([v for v, _ in pairs])
    starts = np.asarray([_version_epoch(v) for v, _ in pairs], dtype=np.int64)
    stops = np.append(starts[1:], config.end)
    w = np.asarray([w for _, w in pairs], dtype=np.float64)
    v = rng.choice(names.size, m, p=w / w.sum())
    offset = np.floor(rng.random(m) * (stops - starts)[v]).astype(np.int64)
    return names[v], starts[v] + offset


def generate(config: SyntheticConfig | None = None) -> SyntheticData:
    """Generate synthetic events, consent records and their ground truth.

    Parameters
    ----------
    config : SyntheticConfig, optional
        What to generate; ``SyntheticConfig()`` (100,000 events) when omitted.

    Returns
    -------
    SyntheticData
        Deterministic in ``config``: the same config gives byte-identical arrays.

    Examples
    --------
    >>> data = generate(SyntheticConfig(n_events=10_000, seed=7))
    >>> data.n_events, sorted(data.events)[:3]
    (10000, ['category', 'kind', 'person_id'])
    """
    config = SyntheticConfig() if config is None else config
    if not isinstance(config, SyntheticConfig):
        raise ParameterError(f"config must be a SyntheticConfig, got {type(config).__name__}")
    world = _world()
    streams = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(config.seed).spawn(4)]
    people = _draw_people(config, streams[0])
    interest, roots = _draw_interests(config, world, streams[1])
    sensitive, rate = _draw_sensitive(config, world, people, streams[1])
    events, codes = _draw_events(config, world, people, _joint_tables(config, world, interest, sensitive, rate),
                                 streams[2])
    consent, has_consent = _draw_consent(config, people, streams[3])
    truth = GroundTruth(people.account, people.group, people.second_group, people.counts, has_consent,
                        people.group_weights, roots, interest, rate, world.taxonomy)
    _readonly({k: v for k, v in vars(truth).items() if isinstance(v, np.ndarray)})
    return SyntheticData(config, events, consent, truth, codes)


# --- writers -----------------------------------------------------------------------------------------------
def write_events(data: SyntheticData, path: str | PathLike[str]) -> Path:
    """Write ``data.events`` as Parquet (``.parquet``/``.pq``) or CSV (``.csv``) by extension.

    Parquet keeps ``ts`` as int64 epoch seconds and dictionary-encodes the string columns; CSV writes ``ts`` as
    ISO-8601 UTC (``2026-10-31T23:59:59Z``). Returns the path written. Needs pyarrow.
    """
    import pyarrow as pa

    fmt, path = _file_format(path)
    ev = data.events
    cols: dict[str, Any] = {"person_id": pa.array(ev["person_id"], type=pa.int64())}
    for col in ("service", "ts", "category", "kind", "region"):
        cols[col] = _timestamps(ev["ts"], fmt) if col == "ts" else _strings(data, col, fmt)
    cols["weight"] = pa.array(ev["weight"], type=pa.float64())
    _write_table(pa.table(cols), path, fmt)
    return path


def write_consent(data: SyntheticData, path: str | PathLike[str]) -> Path:
    """Write ``data.consent`` as CSV (``.csv``) or Parquet (``.parquet``/``.pq``) by extension.

    ``birth_year`` is a nullable integer and an unknown ``jurisdiction`` is null (empty in CSV); ``updated_at``
    is int64 epoch seconds in Parquet and ISO-8601 UTC in CSV. Returns the path written. Needs pyarrow.
    """
    import pyarrow as pa

    fmt, path = _file_format(path)
    c = data.consent
    birth_year = c["birth_year"]
    unknown_year = np.isnan(birth_year)
    cols = {
        "person_id": pa.array(c["person_id"], type=pa.int64()),
        "birth_year": pa.array(np.where(unknown_year, 0, birth_year).astype(np.int16), mask=unknown_year),
        "ads_personalization": pa.array(c["ads_personalization"], type=pa.string()),
        "cross_service": pa.array(c["cross_service"]),
        "policy_version": pa.array(c["policy_version"], type=pa.string()),
        "updated_at": _timestamps(c["updated_at"], fmt),
        **{col: pa.array(c[col]) for col in ("deleted", "terminated", "location_deleted")},
        "jurisdiction": pa.array(c["jurisdiction"], type=pa.string(), mask=c["jurisdiction"] == ""),
    }
    _write_table(pa.table(cols), path, fmt)
    return path


def _file_format(path: str | PathLike[str]) -> tuple[str, Path]:
    p = Path(path)
    name = p.name.lower()
    for fmt, suffixes in (("parquet", (".parquet", ".pq")), ("csv", (".csv",))):
        if name.endswith(suffixes):
            return fmt, p
    raise ParameterError(f"path must end in .parquet, .pq or .csv, got {p.name!r}")


def _strings(data: SyntheticData, col: str, fmt: str) -> Any:
    """A string column: dictionary-encoded from the generator's codes when the array is unchanged."""
    import pyarrow as pa

    array = data.events[col]
    cached = data._codes.get(col)
    if cached is not None and cached[0] is array:
        encoded = pa.DictionaryArray.from_arrays(pa.array(cached[1], type=pa.int32()),
                                                 pa.array(list(cached[2]), type=pa.string()))
    else:
        encoded = pa.array(array, type=pa.string()).dictionary_encode()
    return encoded if fmt == "parquet" else encoded.cast(pa.string())


def _timestamps(ts: np.ndarray, fmt: str) -> Any:
    """int64 epoch seconds for Parquet; ISO-8601 ``YYYY-MM-DDTHH:MM:SSZ`` strings for CSV (vectorised)."""
    import pyarrow as pa

    ts = np.asarray(ts, dtype=np.int64)
    if fmt == "parquet":
        return pa.array(ts, type=pa.int64())
    day, second = np.divmod(ts, 86_400)
    first = int(day.min()) if ts.size else 0
    dates = np.datetime_as_string(np.arange(first, first + (int(day.max()) - first + 1 if ts.size else 1))
                                  .astype("datetime64[D]")).astype("S10")
    out = np.empty((ts.size, 20), dtype=np.uint8)
    out[:, :10] = dates.view(np.uint8).reshape(-1, 10)[day - first]
    out[:, [10, 13, 16, 19]] = np.frombuffer(b"T::Z", dtype=np.uint8)
    for col, value in ((11, second // 3600), (14, second // 60 % 60), (17, second % 60)):
        out[:, col] = 48 + value // 10
        out[:, col + 1] = 48 + value % 10
    return pa.array(out.reshape(-1).view("S20"), type=pa.binary(20)).cast(pa.string())


def _write_table(table: Any, path: Path, fmt: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path)
