"""The synthetic-data model's public types: what to generate (SyntheticConfig) and what was generated."""

from __future__ import annotations

import datetime as _dt
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from adtarget.exceptions import ParameterError
from adtarget.reference._taxonomy import Taxonomy

__all__ = ["GroundTruth", "SyntheticConfig", "SyntheticData", "version_epoch"]

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
            _check_int(f"policy_versions date {version!r} (epoch s)", version_epoch(version), _MIN_END,
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


def version_epoch(version: str) -> int:
    """Epoch seconds of 00:00 UTC on a policy version's ISO date."""
    try:
        day = _dt.date.fromisoformat(version)
    except ValueError:
        raise ParameterError(f"SyntheticConfig.policy_versions: {version!r} is not a valid ISO date") from None
    return int(_dt.datetime(day.year, day.month, day.day, tzinfo=_dt.timezone.utc).timestamp())
