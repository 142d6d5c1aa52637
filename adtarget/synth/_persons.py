"""Synthetic persons and their consent records: accounts, latent groups, activity, homes, ages, policy history.

:func:`draw_people` draws who the persons are (from the ``persons`` stream), :func:`draw_consent` their consent
records in the consent contract (from the ``consent`` stream). Loops run over countries, never over persons.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np

from adtarget.synth._model import SyntheticConfig, version_epoch
from adtarget.synth._world import freeze_columns, quantile_table

__all__ = ["People", "draw_consent", "draw_people"]

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
_AGE_BANDS = ((13, 18, 0.07), (18, 25, 0.15), (25, 35, 0.22), (35, 45, 0.19), (45, 55, 0.15), (55, 65, 0.12),
              (65, 86, 0.10))


@dataclass(frozen=True, eq=False)
class People:
    """Everyone in a synthetic dataset, aligned arrays (one row per person)."""

    account: np.ndarray  # int64 account ids
    group: np.ndarray  # int16
    second_group: np.ndarray  # int16
    group_weights: np.ndarray
    counts: np.ndarray  # int64 events per person
    jurisdiction: np.ndarray  # int16 index into config.jurisdictions, -1 = unknown
    home: np.ndarray  # int16 index into regions
    regions: tuple[str, ...]
    travel_table: np.ndarray  # int16 quantile table over regions


def draw_people(config: SyntheticConfig, rng: np.random.Generator) -> People:
    """Accounts, latent groups, event counts (lognormal activity, some dormant), jurisdictions and homes."""
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
    return People(account, group, second, group_weights, counts, np.where(known, country, -1).astype(np.int16),
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
    return home, tuple(regions), quantile_table(np.asarray(popularity))


def draw_consent(config: SyntheticConfig, people: People,
                 rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Consent records (read-only columns) and, per person, whether they have one."""
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
    return freeze_columns(consent), has


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
    starts = np.asarray([version_epoch(v) for v, _ in pairs], dtype=np.int64)
    stops = np.append(starts[1:], config.end)
    w = np.asarray([w for _, w in pairs], dtype=np.float64)
    v = rng.choice(names.size, m, p=w / w.sum())
    offset = np.floor(rng.random(m) * (stops - starts)[v]).astype(np.int64)
    return names[v], starts[v] + offset
