"""The eligibility gate: the only constructor of EligibleEvents (promises P2, P3, P5, P6, P7, P9, P10, P12).

Every input event is either eligible or excluded by exactly one named rule, so
``input_events == n_events + sum(exclusions.values())`` always holds. Rules are applied in the order of
``EXCLUSION_RULES``; an event that breaks several rules is counted under the first.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np

from adtarget._events import EventBatch, EventColumns
from adtarget._policy import EligibilityPolicy
from adtarget.exceptions import ParameterError

if TYPE_CHECKING:
    from adtarget._consent import ConsentSnapshot
    from adtarget._sensitivity import SafeTaxonomy
    from adtarget._services import ServiceRegistry
    from adtarget._taxonomy import Taxonomy

__all__ = ["EXCLUSION_RULES", "EligibleEvents", "SensitiveAudit", "apply_gate"]

PERSON_RULES: tuple[str, ...] = (
    "no_consent_record",
    "deleted",
    "terminated",
    "opted_out",
    "under_min_age",
    "unknown_age",
    "policy_version",
)
EVENT_RULES: tuple[str, ...] = (
    "service_not_permitted",
    "cross_service_not_permitted",
    "sensitive_category",
    "outside_retention",
    "after_window_end",
)
EXCLUSION_RULES: tuple[str, ...] = PERSON_RULES + EVENT_RULES
_RULE = {name: code for code, name in enumerate(EXCLUSION_RULES)}
_GATE_TOKEN = object()


@dataclass(frozen=True, eq=False)
class SensitiveAudit:
    """Sensitive events the gate removed from otherwise eligible persons: for the proxy audit ONLY.

    ``person`` indexes ``EligibleEvents.persons`` (-1 never occurs), ``sensitive_class`` indexes ``classes``.
    """

    person: np.ndarray
    sensitive_class: np.ndarray
    classes: tuple[str, ...]

    def __repr__(self) -> str:
        return f"SensitiveAudit(n_events={self.person.size}, classes={self.classes})"


@dataclass(frozen=True, eq=False)
class EligibleEvents(EventColumns):
    """Events that passed the eligibility gate. Only :func:`apply_gate` can construct one.

    Later stages (profiles, segments, releases) accept nothing else, so every promise the gate enforces holds
    for everything derived from it. Fields are described in docs/internals.md; arrays are read-only.
    """

    person: np.ndarray
    service: np.ndarray
    ts: np.ndarray
    category: np.ndarray
    kind: np.ndarray
    region: np.ndarray
    weight: np.ndarray
    persons: np.ndarray
    birth_year: np.ndarray
    regions: tuple[str, ...]
    safe_taxonomy: SafeTaxonomy
    services: ServiceRegistry
    window_start: int
    window_end: int
    target_service: str | None
    policy: EligibilityPolicy
    exclusions: Mapping[str, int]
    input_events: int
    region_redacted: int
    sensitive_audit: SensitiveAudit
    _token: object

    def __post_init__(self) -> None:
        if self._token is not _GATE_TOKEN:
            raise TypeError("EligibleEvents can only be constructed by adtarget.apply_gate")
        self._freeze("birth_year")

    @property
    def taxonomy(self) -> Taxonomy:
        """The SafeTaxonomy's underlying taxonomy (sensitive nodes included; events never hold them)."""
        return self.safe_taxonomy.taxonomy

    def summary(self) -> dict[str, object]:
        return {
            "input_events": self.input_events,
            "eligible_events": self.n_events,
            "eligible_persons": self.n_persons,
            "excluded": dict(self.exclusions),
            "region_redacted": self.region_redacted,
            "target_service": self.target_service,
            "window": {"start": _iso(self.window_start), "end": _iso(self.window_end)},
        }

    def __repr__(self) -> str:
        return (
            f"EligibleEvents(n_events={self.n_events}, n_persons={self.n_persons}, "
            f"excluded={sum(self.exclusions.values())}, target_service={self.target_service!r})"
        )


def _iso(ts: int) -> str:
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def apply_gate(
    batch: EventBatch,
    snapshot: ConsentSnapshot,
    safe_taxonomy: SafeTaxonomy,
    policy: EligibilityPolicy | None = None,
    *,
    services: ServiceRegistry | None = None,
    target_service: str | None = None,
    window_end: int | None = None,
) -> EligibleEvents:
    """Drop every event the privacy policy does not allow for ads, and count each exclusion by rule.

    Parameters
    ----------
    batch : validated events (``ingest``).
    snapshot : the consent ledger's state as of the build (``ConsentLedger.snapshot``).
    safe_taxonomy : the taxonomy and the sensitivity profile; sensitive nodes and descendants are removed.
    policy : minimum age, unknown-age rule, retention, minimum policy version, jurisdiction overrides.
    services : must be the registry the batch was ingested with (the default).
    target_service : for a build that targets one service, persons without cross-service permission
        contribute only that service's events (P2).
    window_end : the data window's end, epoch seconds (default: the snapshot's ``as_of``).
    """
    policy = policy if policy is not None else EligibilityPolicy()
    _check_inputs(batch, safe_taxonomy, services, target_service)
    end = int(snapshot.as_of if window_end is None else window_end)
    person_rule, found, sorted_at = _person_rules(batch, snapshot, policy, end)
    event_rule = person_rule[batch.person]
    sensitive = _sensitive_events(batch, snapshot, safe_taxonomy, policy, found, sorted_at)
    masks = _event_masks(batch, snapshot, policy, found, sorted_at, sensitive, target_service, end)
    only_sensitive = sensitive & (event_rule < 0)
    for name, mask in masks.items():
        if name != "sensitive_category":
            only_sensitive &= ~mask
        event_rule[(event_rule < 0) & mask] = _RULE[name]
    return _build(batch, snapshot, safe_taxonomy, policy, event_rule, only_sensitive, found, sorted_at,
                  target_service, end)


def _check_inputs(batch: EventBatch, safe_taxonomy: SafeTaxonomy, services: ServiceRegistry | None,
                  target_service: str | None) -> None:
    if not isinstance(batch, EventBatch):
        raise ParameterError(f"batch must be an EventBatch from adtarget.ingest; got {type(batch).__name__}")
    if safe_taxonomy.taxonomy != batch.taxonomy:
        raise ParameterError(
            f"safe_taxonomy is over {safe_taxonomy.taxonomy.name!r} but the batch was ingested with "
            f"{batch.taxonomy.name!r}"
        )
    if services is not None and tuple(services.names) != tuple(batch.services.names):
        raise ParameterError("services must be the registry the batch was ingested with")
    if target_service is not None and target_service not in batch.services.names:
        raise ParameterError(
            f"target_service {target_service!r} is not a registered service; known: {list(batch.services.names)}"
        )


def _person_rules(batch: EventBatch, snapshot: ConsentSnapshot, policy: EligibilityPolicy,
                  end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per batch person: the first person-level rule it breaks (-1 none), whether it has a consent record,
    and its row in the snapshot."""
    at = np.searchsorted(snapshot.persons, batch.persons)
    at_clipped = np.minimum(at, max(snapshot.persons.size - 1, 0))
    found = (at < snapshot.persons.size) & (snapshot.persons[at_clipped] == batch.persons) if snapshot.persons.size \
        else np.zeros(batch.persons.size, dtype=bool)
    rule = np.full(batch.persons.size, -1, dtype=np.int8)

    def flag(name: str, mask: np.ndarray) -> None:
        rule[(rule < 0) & mask] = _RULE[name]

    def col(name: str) -> np.ndarray:
        return np.asarray(getattr(snapshot, name))[at_clipped] if snapshot.persons.size else np.zeros(0)

    flag("no_consent_record", ~found)
    if snapshot.persons.size:
        flag("deleted", col("deleted").astype(bool))
        flag("terminated", col("terminated").astype(bool))
        flag("opted_out", ~col("opted_in").astype(bool))
        birth_year = col("birth_year").astype(np.int64)
        known = birth_year > 0
        min_age = _min_age_per_person(col("jurisdiction"), policy)
        youngest_age = _dt.datetime.fromtimestamp(end, tz=_dt.timezone.utc).year - birth_year - 1
        flag("under_min_age", known & (youngest_age < min_age))
        if policy.unknown_age == "exclude":
            flag("unknown_age", ~known)
        if policy.min_policy_version is not None:
            flag("policy_version", col("policy_version").astype(str) < policy.min_policy_version)
    return rule, found, at_clipped


def _min_age_per_person(jurisdiction: np.ndarray, policy: EligibilityPolicy) -> np.ndarray:
    if not policy.jurisdiction_min_age:
        return np.full(jurisdiction.size, policy.min_age, dtype=np.int64)
    codes, inverse = np.unique(jurisdiction.astype(str), return_inverse=True)
    ages = np.array([policy.jurisdiction_min_age.get(c, policy.min_age) for c in codes], dtype=np.int64)
    return ages[inverse]


def _sensitive_events(batch: EventBatch, snapshot: ConsentSnapshot, safe_taxonomy: SafeTaxonomy,
                      policy: EligibilityPolicy, found: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per event: sensitive under the build's profile or the person's jurisdiction profile (bool)."""
    sensitive = ~np.asarray(safe_taxonomy.safe_mask)[batch.category]
    if not policy.jurisdiction_profiles or not snapshot.persons.size:
        return sensitive
    from adtarget._sensitivity import SensitivityProfile

    jurisdiction = np.where(found, np.asarray(snapshot.jurisdiction)[at].astype(str), "")
    for code, profile_name in policy.jurisdiction_profiles.items():
        stricter = SensitivityProfile.named(profile_name).sensitive_mask(batch.taxonomy)
        in_jurisdiction = (jurisdiction == code)[batch.person]
        sensitive |= in_jurisdiction & np.asarray(stricter)[batch.category]
    return sensitive


def _event_masks(batch: EventBatch, snapshot: ConsentSnapshot, policy: EligibilityPolicy, found: np.ndarray,
                 at: np.ndarray, sensitive: np.ndarray, target_service: str | None,
                 end: int) -> dict[str, np.ndarray]:
    permitted = np.asarray(batch.services.ads_permitted, dtype=bool)
    masks = {"service_not_permitted": ~permitted[batch.service]}
    if target_service is not None:
        cross = np.zeros(batch.persons.size, dtype=bool)
        if snapshot.persons.size:
            cross = found & np.asarray(snapshot.cross_service)[at].astype(bool)
        target = batch.services.names.index(target_service)
        masks["cross_service_not_permitted"] = ~cross[batch.person] & (batch.service != target)
    masks["sensitive_category"] = sensitive
    oldest = end - np.asarray(policy.retention_seconds(), dtype=np.int64)
    masks["outside_retention"] = batch.ts < oldest[batch.kind]
    masks["after_window_end"] = batch.ts > end
    return masks


def _build(batch: EventBatch, snapshot: ConsentSnapshot, safe_taxonomy: SafeTaxonomy, policy: EligibilityPolicy,
           event_rule: np.ndarray, only_sensitive: np.ndarray, found: np.ndarray,
           at: np.ndarray, target_service: str | None, end: int) -> EligibleEvents:
    eligible = event_rule < 0
    counts = np.bincount(event_rule[~eligible].astype(np.int64), minlength=len(EXCLUSION_RULES))
    exclusions = MappingProxyType({name: int(n) for name, n in zip(EXCLUSION_RULES, counts)})
    old_person = batch.person[eligible]
    keep = np.zeros(batch.persons.size, dtype=bool)
    keep[old_person] = True
    new_index = np.cumsum(keep) - 1
    person = new_index[old_person].astype(np.int32)
    birth_year = np.zeros(batch.persons.size, dtype=np.int16)
    if snapshot.persons.size:
        birth_year = np.where(found, np.asarray(snapshot.birth_year)[at], 0).astype(np.int16)
    region = batch.region[eligible].copy()
    redacted = np.zeros(batch.persons.size, dtype=bool)
    if snapshot.persons.size:
        redacted = found & np.asarray(snapshot.location_deleted)[at].astype(bool)
    redact_events = redacted[old_person] & (region >= 0)
    region[redact_events] = -1
    ts = batch.ts[eligible]
    return EligibleEvents(
        person=person,
        service=batch.service[eligible],
        ts=ts,
        category=batch.category[eligible],
        kind=batch.kind[eligible],
        region=region,
        weight=batch.weight[eligible],
        persons=batch.persons[keep],
        birth_year=birth_year[keep],
        regions=batch.regions,
        safe_taxonomy=safe_taxonomy,
        services=batch.services,
        window_start=end - max(policy.retention_seconds()),
        window_end=end,
        target_service=target_service,
        policy=policy,
        exclusions=exclusions,
        input_events=batch.n_events,
        region_redacted=int(redact_events.sum()),
        sensitive_audit=_audit(batch, safe_taxonomy, only_sensitive, keep, new_index),
        _token=_GATE_TOKEN,
    )


def _audit(batch: EventBatch, safe_taxonomy: SafeTaxonomy, only_sensitive: np.ndarray, keep: np.ndarray,
           new_index: np.ndarray) -> SensitiveAudit:
    """Sensitive events whose only failing rule is the sensitive category, of persons who stay eligible."""
    classes = np.asarray(safe_taxonomy.sensitive_class)[batch.category]
    mask = only_sensitive & (classes >= 0) & keep[batch.person]
    person = new_index[batch.person[mask]].astype(np.int32)
    audit = SensitiveAudit(person=person, sensitive_class=classes[mask].astype(np.int8),
                           classes=tuple(safe_taxonomy.profile.classes))
    person.flags.writeable = False
    return audit
