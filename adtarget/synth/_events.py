"""Synthetic events: each group's interest mixture, then every event's time, category, service, kind and region.

:func:`draw_interests` and :func:`draw_sensitive` give each latent group its mixture over safe and sensitive
nodes, :func:`joint_tables` turns them into quantile tables over (node, service) pairs, and :func:`draw_events`
draws the event columns (event contract, DESIGN.md §3) from them. Loops run over groups and sensitive classes,
never over events or persons.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adtarget.events._schema import EVENT_KINDS
from adtarget.synth._model import SyntheticConfig
from adtarget.synth._persons import People
from adtarget.synth._world import SERVICES, World, draw, freeze_columns, quantile_table

__all__ = ["draw_events", "draw_interests", "draw_sensitive", "joint_tables"]

_HOUR_WEIGHT = (0.3, 0.2, 0.15, 0.12, 0.12, 0.2, 0.4, 0.7, 0.9, 1, 1, 1, 1.1, 1.1, 1, 1, 1.1, 1.3, 1.6, 1.8,
                1.9, 1.7, 1.2, 0.6)
_WEEKDAY_WEIGHT = (1.0, 0.97, 0.97, 1.0, 1.08, 1.25, 1.2)  # Monday first
_TRAVEL_SHARE = 0.03
_SECOND_GROUP_SHARE = 0.2  # share of a person's events drawn from their second group's mixture


def draw_interests(config: SyntheticConfig, world: World,
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


def draw_sensitive(config: SyntheticConfig, world: World, people: People,
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


def joint_tables(config: SyntheticConfig, world: World, interest: np.ndarray, sensitive: np.ndarray,
                 rate: np.ndarray) -> np.ndarray:
    """Per group, a quantile table over (node, service) pairs, coded ``node * n_services + service``."""
    keep = 1.0 - config.background_share - rate
    node_p = keep[:, None] * interest + config.background_share * world.background + rate[:, None] * sensitive
    joint = node_p[:, :, None] * world.service_given_node[None, :, :]
    return np.stack([quantile_table(j.reshape(-1)) for j in joint])


def _slot_weights(config: SyntheticConfig) -> np.ndarray:
    """Weight of each hour of the window: hour of day x day of week x a 10% upward trend."""
    slot_start = config.start + 3600 * np.arange(config.days * 24, dtype=np.int64)
    hour = (slot_start // 3600) % 24
    weekday = (slot_start // 86_400 + 3) % 7  # 1970-01-01 was a Thursday
    trend = 1.0 + 0.1 * np.linspace(0.0, 1.0, slot_start.size)
    w = np.asarray(_HOUR_WEIGHT)[hour] * np.asarray(_WEEKDAY_WEIGHT)[weekday] * trend
    return w / w.sum()


def draw_events(config: SyntheticConfig, world: World, people: People, tables: np.ndarray,
                rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Event columns (read-only) and, per string column, (strings, int codes, vocabulary) for the writers."""
    person = np.repeat(np.arange(people.counts.size, dtype=np.int32), people.counts)
    rng.shuffle(person)  # rows get hour slots in time order below, so persons interleave
    ts = _timestamps(config, rng)
    second = rng.random(config.n_events, dtype=np.float32) < _SECOND_GROUP_SHARE
    code = draw(tables, np.where(second, people.second_group[person], people.group[person]), rng)
    node, service = np.divmod(code, np.int16(len(SERVICES)))
    codes = {"service": service, "category": node, "kind": draw(world.kind_table, service, rng),
             "region": _regions(people, person, rng)}
    return _event_columns(world, people, person, ts, codes, _weights(config.n_events, rng))


def _timestamps(config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Event times (int64 epoch s) in hour-slot order: slot counts are multinomial, seconds uniform in a slot."""
    n = config.n_events
    slot = np.repeat(np.arange(config.days * 24, dtype=np.int64), rng.multinomial(n, _slot_weights(config)))
    return config.start + 3600 * slot + rng.integers(0, 3600, n, dtype=np.int64)


def _regions(people: People, person: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The person's home region, or a travel region (popularity-weighted) for a few events."""
    region = people.home[person]
    travel = np.flatnonzero(rng.random(person.size, dtype=np.float32) < _TRAVEL_SHARE)
    region[travel] = draw(people.travel_table[None, :], np.zeros(travel.size, np.int8), rng)
    return region


def _weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """Event weights: 1, except 5% drawn from 0.5, 2 and 3."""
    weight = np.ones(n)
    heavy = np.flatnonzero(rng.random(n, dtype=np.float32) < 0.05)
    weight[heavy] = np.array([0.5, 2.0, 3.0])[rng.integers(0, 3, heavy.size)]
    return weight


def _event_columns(world: World, people: People, person: np.ndarray, ts: np.ndarray, codes: dict[str, np.ndarray],
                   weight: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The event contract's columns, strings decoded from ``codes``; and the codes kept for the writers."""
    vocab = {"service": SERVICES, "category": tuple(world.taxonomy.ids.tolist()), "kind": EVENT_KINDS,
             "region": people.regions}
    strings = {col: np.asarray(vocab[col])[codes[col]] for col in codes}
    events = {"person_id": people.account[person], "service": strings["service"], "ts": ts,
              "category": strings["category"], "kind": strings["kind"], "region": strings["region"],
              "weight": weight}
    return freeze_columns(events), {col: (strings[col], codes[col], vocab[col]) for col in codes}
