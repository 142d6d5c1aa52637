"""The eligibility policy: the settings of the privacy policy's promises that the gate enforces."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, cast

from adtarget._core._numbers import exact_int
from adtarget.events._schema import EVENT_KINDS
from adtarget.exceptions import ParameterError
from adtarget.reference._sensitivity import SensitivityProfile, checked_profile

__all__ = ["ADULT_AGE", "DEFAULT_RETENTION_DAYS", "POLICY_MIN_AGE", "EligibilityPolicy", "checked_policy"]

POLICY_MIN_AGE = 13  # P6: the services are not for children under 13; stricter settings are allowed, laxer not
ADULT_AGE = 18  # age-restricted categories (alcohol, tobacco, gambling, dating, adult, weapons) are for adults only
DEFAULT_RETENTION_DAYS: Mapping[str, int] = MappingProxyType(
    {"app_use": 395, "search": 180, "content_view": 395, "purchase": 730}
)


def _frozen_map(value: Mapping[str, int] | Mapping[str, str]) -> Mapping[str, object]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class EligibilityPolicy:
    """What the gate requires of a person and an event. Frozen and self-checking.

    Parameters
    ----------
    min_age : persons younger than this at the data window's end are excluded (at least 13). Only the birth
        year is known, so a person's age is taken as the youngest it can be (``end_year - birth_year - 1``).
    unknown_age : ``"exclude"`` (default) or ``"include"`` persons whose birth year is unknown.
    retention_days : how long events of each kind may be used, counted back from the window's end.
    min_policy_version : consent given under an older policy version (ISO date strings compare in order)
        is not used; ``None`` accepts every version.
    jurisdiction_min_age : stricter minimum ages per jurisdiction code (e.g. ``{"KR": 14}``).
    jurisdiction_profiles : stricter sensitivity profiles per jurisdiction, applied on top of the build's
        profile: a bundled profile's name (``{"DE": "gdpr_art9"}``) or a :class:`SensitivityProfile` built for
        that jurisdiction (``SensitivityProfile.from_nodes``, or the constructor). Stored as profiles.
    adult_age : for a person younger than this (or of unknown age, when ``unknown_age="include"``), the
        age-restricted categories (``adtarget.reference.age_restricted_mask``: alcohol, tobacco, gambling,
        dating, adult content, weapons, nightlife) are treated as sensitive: never used, never in their
        segments. Adults are untouched. At least 18 (and at least ``min_age``).
    jurisdiction_adult_age : stricter adult ages per jurisdiction code (e.g. ``{"US": 21}``), each at least
        ``adult_age``.
    """

    min_age: int = POLICY_MIN_AGE
    unknown_age: Literal["exclude", "include"] = "exclude"
    retention_days: Mapping[str, int] = field(default_factory=lambda: DEFAULT_RETENTION_DAYS)
    min_policy_version: str | None = None
    jurisdiction_min_age: Mapping[str, int] = field(default_factory=dict)
    jurisdiction_profiles: Mapping[str, str | SensitivityProfile] = field(default_factory=dict)
    adult_age: int = ADULT_AGE
    jurisdiction_adult_age: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        min_age = exact_int(self.min_age)  # plain ints only: an int subclass could answer the checks and lie later
        if min_age is None or min_age < POLICY_MIN_AGE:
            raise ParameterError(f"min_age must be an integer >= {POLICY_MIN_AGE}; got {self.min_age!r}")
        object.__setattr__(self, "min_age", min_age)
        if self.unknown_age not in ("exclude", "include"):
            raise ParameterError(f"unknown_age must be 'exclude' or 'include'; got {self.unknown_age!r}")
        retention = {**DEFAULT_RETENTION_DAYS, **dict(self.retention_days)}
        for kind, days in retention.items():
            if kind not in EVENT_KINDS:
                raise ParameterError(f"retention_days: unknown event kind {kind!r}; kinds are {list(EVENT_KINDS)}")
            if exact_int(days) is None or days <= 0:
                raise ParameterError(f"retention_days[{kind!r}] must be a positive integer; got {days!r}")
        object.__setattr__(self, "retention_days", _frozen_map({k: int(v) for k, v in retention.items()}))
        for code, age in self.jurisdiction_min_age.items():
            if exact_int(age) is None or age < self.min_age:
                raise ParameterError(
                    f"jurisdiction_min_age[{code!r}] must be an integer >= min_age ({self.min_age}); got {age!r}"
                )
        object.__setattr__(self, "jurisdiction_min_age", _codes(self.jurisdiction_min_age, "jurisdiction_min_age"))
        adult = exact_int(self.adult_age)
        if adult is None or adult < max(ADULT_AGE, self.min_age) or adult > 99:
            raise ParameterError(f"adult_age must be an integer in [{max(ADULT_AGE, self.min_age)}, 99]; "
                                 f"got {self.adult_age!r}")
        object.__setattr__(self, "adult_age", adult)
        for code, age in self.jurisdiction_adult_age.items():
            if exact_int(age) is None or not adult <= age <= 99:
                raise ParameterError(
                    f"jurisdiction_adult_age[{code!r}] must be an integer in [adult_age ({adult}), 99]; got {age!r}")
        object.__setattr__(self, "jurisdiction_adult_age", _codes(self.jurisdiction_adult_age, "jurisdiction_adult_age"))
        object.__setattr__(self, "jurisdiction_profiles", MappingProxyType(
            {str(code).strip().upper(): _profile(code, p) for code, p in dict(self.jurisdiction_profiles).items()}))
        if self.min_policy_version is not None:
            _check_version(self.min_policy_version)

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        """Pickle with plain dicts (mapping proxies are not picklable), e.g. for Spark executors."""
        return (EligibilityPolicy, (self.min_age, self.unknown_age, dict(self.retention_days),
                                    self.min_policy_version, dict(self.jurisdiction_min_age),
                                    dict(self.jurisdiction_profiles), self.adult_age,
                                    dict(self.jurisdiction_adult_age)))

    @property
    def profiles(self) -> Mapping[str, SensitivityProfile]:
        """The stricter sensitivity profile of each jurisdiction (``jurisdiction_profiles``, names resolved)."""
        return cast("Mapping[str, SensitivityProfile]", self.jurisdiction_profiles)

    def retention_seconds(self) -> list[int]:
        """Retention per event kind code, in seconds, aligned with ``EVENT_KINDS``."""
        return [int(self.retention_days[k]) * 86_400 for k in EVENT_KINDS]

    def __str__(self) -> str:
        parts = [f"min_age={self.min_age}", f"unknown_age={self.unknown_age}"]
        parts.append("retention_days=" + ",".join(f"{k}:{v}" for k, v in self.retention_days.items()))
        if self.min_policy_version:
            parts.append(f"min_policy_version={self.min_policy_version}")
        if self.jurisdiction_min_age:
            parts.append(f"jurisdiction_min_age={dict(self.jurisdiction_min_age)}")
        if self.jurisdiction_profiles:
            names = {code: p.name for code, p in self.profiles.items()}
            parts.append(f"jurisdiction_profiles={names}")
        parts.append(f"adult_age={self.adult_age}")
        if self.jurisdiction_adult_age:
            parts.append(f"jurisdiction_adult_age={dict(self.jurisdiction_adult_age)}")
        return "EligibilityPolicy(" + ", ".join(parts) + ")"


def checked_policy(policy: object) -> EligibilityPolicy:
    """An EligibilityPolicy built again from ``policy``'s settings (the class itself only), so a policy changed
    with ``object.__setattr__`` (a minimum age of 0, a stand-in profile) is refused; ParameterError."""
    if type(policy) is not EligibilityPolicy:
        raise ParameterError(f"policy must be an EligibilityPolicy, got {type(policy).__name__}")
    try:
        return EligibilityPolicy(*policy.__reduce__()[1])  # type: ignore[arg-type]
    except ParameterError as exc:
        raise ParameterError(f"policy was changed after it was made: {exc}") from None
    except (AttributeError, TypeError, ValueError):
        raise ParameterError("policy was not made by EligibilityPolicy(...) or was changed after") from None


def _codes(ages: Mapping[str, int], name: str) -> Mapping[str, object]:
    """Ages per jurisdiction code, codes upper-cased (consent holds "us-ca" as well as "US-CA"), ages plain."""
    out: dict[str, int] = {}
    for code, age in ages.items():
        if not isinstance(code, str) or not code.strip():
            raise ParameterError(f"{name} keys must be jurisdiction codes (strings); got {code!r}")
        out[code.strip().upper()] = int(age)
    return _frozen_map(out)


def _profile(code: object, profile: object) -> SensitivityProfile:
    """The sensitivity profile a jurisdiction's entry names (bundled name) or is."""
    if not isinstance(code, str):
        raise ParameterError(f"jurisdiction_profiles keys must be jurisdiction codes (strings); got {code!r}")
    if isinstance(profile, str):
        return SensitivityProfile.named(profile)
    return checked_profile(profile, f"jurisdiction_profiles[{code!r}]")


def _check_version(version: str) -> None:
    try:
        _dt.date.fromisoformat(version)
    except (TypeError, ValueError):
        raise ParameterError(
            f"min_policy_version must be an ISO date like '2018-05-14'; got {version!r}"
        ) from None
