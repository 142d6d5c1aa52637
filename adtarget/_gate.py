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
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from adtarget._buffers import uses_buffers
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
_EVENT_COLUMNS: tuple[str, ...] = ("person", "service", "ts", "category", "kind", "region", "weight")


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


@uses_buffers
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

    Notes
    -----
    Person rules are evaluated once per batch person (numpy); the event rules, the exclusion counts and the
    eligible columns come from one blocked compiled pass over the events (``adtarget/_kernels/_gate.py``).
    """
    policy = policy if policy is not None else EligibilityPolicy()
    _check_inputs(batch, safe_taxonomy, services, target_service)
    end = int(snapshot.as_of if window_end is None else window_end)
    found, at = _snapshot_rows(batch.persons, snapshot)
    persons = _PersonTables(
        state=_person_state(batch, snapshot, policy, found, at, target_service, end),
        profile=_person_profiles(batch, snapshot, policy, found, at),
        birth_year=_birth_years(snapshot, found, at),
    )
    return _build(batch, persons, _sensitive_table(batch, snapshot, safe_taxonomy, policy), safe_taxonomy,
                  policy, target_service, end)


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


class _PersonTables(NamedTuple):
    """Per batch person: ``state`` (int8: a person rule code, or ``-1 - flags`` when eligible; see
    ``adtarget/_kernels/_gate.py``), ``profile`` (int16 row of the sensitive table, or empty when the policy
    has no jurisdiction profiles) and ``birth_year`` (int16, 0 = unknown or no consent record)."""

    state: np.ndarray
    profile: np.ndarray
    birth_year: np.ndarray


def _snapshot_rows(pseudonyms: np.ndarray, snapshot: ConsentSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """Per batch person: whether it has a consent record, and its snapshot row (0 where it has none)."""
    if not snapshot.persons.size:
        return np.zeros(pseudonyms.size, dtype=bool), np.zeros(pseudonyms.size, dtype=np.int64)
    from adtarget._kernels import _gate as kernels

    rows, ok = kernels.sorted_rows(pseudonyms, snapshot.persons)
    if not ok:  # batch persons not strictly increasing: look each one up
        at = np.searchsorted(snapshot.persons, pseudonyms)
        at = np.minimum(at, snapshot.persons.size - 1)
        found = snapshot.persons[at] == pseudonyms
        return found, at
    found = rows >= 0
    return found, np.where(found, rows, 0)


def _person_state(batch: EventBatch, snapshot: ConsentSnapshot, policy: EligibilityPolicy, found: np.ndarray,
                  at: np.ndarray, target_service: str | None, end: int) -> np.ndarray:
    """Per batch person: the first person rule it breaks, or ``-1 - flags`` (cross-service, location) if none."""
    from adtarget._kernels import _gate as kernels

    flags = np.zeros(batch.persons.size, dtype=np.int8)
    if snapshot.persons.size:
        flags[found & np.asarray(snapshot.location_deleted)[at].astype(bool)] |= kernels.REDACT_LOCATION
    if target_service is not None:
        cross = found & np.asarray(snapshot.cross_service)[at].astype(bool) if snapshot.persons.size else found
        flags[~cross] |= kernels.NO_CROSS_SERVICE
    rule = _person_rules(snapshot, policy, found, at, end)
    return np.where(rule >= 0, rule, -1 - flags).astype(np.int8)


def _person_rules(snapshot: ConsentSnapshot, policy: EligibilityPolicy, found: np.ndarray, at: np.ndarray,
                  end: int) -> np.ndarray:
    """Per batch person: the first person-level rule it breaks (-1 none)."""
    rule = np.full(found.size, -1, dtype=np.int8)

    def flag(name: str, mask: np.ndarray) -> None:
        rule[(rule < 0) & mask] = _RULE[name]

    def col(name: str) -> np.ndarray:
        return np.asarray(getattr(snapshot, name))[at]

    flag("no_consent_record", ~found)
    if snapshot.persons.size:
        flag("deleted", col("deleted").astype(bool))
        flag("terminated", col("terminated").astype(bool))
        flag("opted_out", ~col("opted_in").astype(bool))
        birth_year = col("birth_year").astype(np.int64)
        known = birth_year > 0
        min_age = _min_age_per_person(snapshot, at, policy)
        youngest_age = _dt.datetime.fromtimestamp(end, tz=_dt.timezone.utc).year - birth_year - 1
        flag("under_min_age", known & (youngest_age < min_age))
        if policy.unknown_age == "exclude":
            flag("unknown_age", ~known)
        if policy.min_policy_version is not None:
            flag("policy_version", col("policy_version").astype(str) < policy.min_policy_version)
    return rule


def _min_age_per_person(snapshot: ConsentSnapshot, at: np.ndarray, policy: EligibilityPolicy) -> np.ndarray:
    if not policy.jurisdiction_min_age:
        return np.full(at.size, policy.min_age, dtype=np.int64)
    codes, inverse = np.unique(np.asarray(snapshot.jurisdiction)[at].astype(str), return_inverse=True)
    ages = np.array([policy.jurisdiction_min_age.get(c, policy.min_age) for c in codes], dtype=np.int64)
    return ages[inverse]


def _person_profiles(batch: EventBatch, snapshot: ConsentSnapshot, policy: EligibilityPolicy, found: np.ndarray,
                     at: np.ndarray) -> np.ndarray:
    """Per batch person: 1 + the index of its jurisdiction's stricter profile, 0 for none (empty: no profiles)."""
    profile = np.zeros(0, dtype=np.int16)
    if not policy.jurisdiction_profiles or not snapshot.persons.size:
        return profile
    jurisdiction = np.where(found, np.asarray(snapshot.jurisdiction)[at].astype(str), "")
    profile = np.zeros(batch.persons.size, dtype=np.int16)
    for row, code in enumerate(policy.jurisdiction_profiles, start=1):
        profile[jurisdiction == code] = row
    return profile


def _sensitive_table(batch: EventBatch, snapshot: ConsentSnapshot, safe_taxonomy: SafeTaxonomy,
                     policy: EligibilityPolicy) -> np.ndarray:
    """Sensitive nodes (bool, profiles x nodes): row 0 the build's profile, row k also jurisdiction profile k."""
    base = ~np.asarray(safe_taxonomy.safe_mask, dtype=bool)
    rows = [base]
    if policy.jurisdiction_profiles and snapshot.persons.size:
        from adtarget._sensitivity import SensitivityProfile

        for profile_name in policy.jurisdiction_profiles.values():
            stricter = SensitivityProfile.named(profile_name).sensitive_mask(batch.taxonomy)
            rows.append(base | np.asarray(stricter, dtype=bool))
    return np.ascontiguousarray(np.stack(rows))


def _birth_years(snapshot: ConsentSnapshot, found: np.ndarray, at: np.ndarray) -> np.ndarray:
    if not snapshot.persons.size:
        return np.zeros(found.size, dtype=np.int16)
    return np.where(found, np.asarray(snapshot.birth_year)[at], 0).astype(np.int16)


def _build(batch: EventBatch, persons: _PersonTables, sensitive: np.ndarray, safe_taxonomy: SafeTaxonomy,
           policy: EligibilityPolicy, target_service: str | None, end: int) -> EligibleEvents:
    from adtarget._kernels import _gate as kernels

    permitted = np.asarray(batch.services.ads_permitted, dtype=bool)
    oldest = end - np.asarray(policy.retention_seconds(), dtype=np.int64)
    lengths = {getattr(batch, name).size for name in _EVENT_COLUMNS}
    if len(lengths) != 1:
        raise ParameterError("batch columns must all have one value per event; build EventBatch with "
                             "adtarget.ingest")
    region = batch.region
    if region.size and (int(region.min()) < -1 or int(region.max()) >= len(batch.regions)):
        raise ParameterError("batch holds a region index out of range; build EventBatch with adtarget.ingest")
    if not kernels.indices_in_range(batch.person, batch.n_persons, batch.service, permitted.size, batch.category,
                                    sensitive.shape[1], batch.kind, oldest.size):
        raise ParameterError("batch holds a person, service, category or kind index out of range; "
                             "build EventBatch with adtarget.ingest")
    columns = tuple(getattr(batch, name) for name in _EVENT_COLUMNS)
    out = tuple(np.empty(batch.n_events, dtype=np.int32 if name == "person" else column.dtype)
                for name, column in zip(_EVENT_COLUMNS, columns))
    audit = (np.empty(batch.n_events, dtype=np.int32), np.empty(batch.n_events, dtype=np.int8))
    rules = (persons.state, persons.profile, permitted,
             -1 if target_service is None else batch.services.names.index(target_service), sensitive, oldest, end,
             len(PERSON_RULES))
    n_eligible, n_audit, redacted, counts = kernels.filter_events(
        columns, rules, np.asarray(safe_taxonomy.sensitive_class, dtype=np.int8), out, audit)
    for column in out:  # shrink in place: the pages past n_eligible were never written, so never resident
        column.resize(n_eligible, refcheck=False)
    keep, new_index = kernels.renumber_persons(out[0], batch.n_persons)
    n_audit = kernels.compact_audit(audit[0], audit[1], n_audit, new_index)
    return EligibleEvents(
        **dict(zip(_EVENT_COLUMNS, out)),
        persons=batch.persons[keep],
        birth_year=persons.birth_year[keep],
        regions=batch.regions,
        safe_taxonomy=safe_taxonomy,
        services=batch.services,
        window_start=end - max(policy.retention_seconds()),
        window_end=end,
        target_service=target_service,
        policy=policy,
        exclusions=_exclusions(counts),
        input_events=batch.n_events,
        region_redacted=int(redacted),
        sensitive_audit=_audit(audit[0][:n_audit], audit[1][:n_audit], safe_taxonomy),
        _token=_GATE_TOKEN,
    )


def _exclusions(counts: np.ndarray) -> Mapping[str, int]:
    """Events excluded per named rule, from the kernel's counts per code (sensitive-only events are sensitive)."""
    from adtarget._kernels import _gate as kernels

    base = len(PERSON_RULES)
    offset = {"service_not_permitted": kernels.SERVICE_NOT_PERMITTED,
              "cross_service_not_permitted": kernels.CROSS_SERVICE_NOT_PERMITTED,
              "sensitive_category": kernels.SENSITIVE_CATEGORY, "outside_retention": kernels.OUTSIDE_RETENTION,
              "after_window_end": kernels.AFTER_WINDOW_END}
    named = {name: int(counts[code]) for code, name in enumerate(PERSON_RULES)}
    named.update({name: int(counts[base + offset[name]]) for name in EVENT_RULES})
    named["sensitive_category"] += int(counts[base + kernels.SENSITIVE_ONLY])
    return MappingProxyType(named)


def _audit(person: np.ndarray, sensitive_class: np.ndarray, safe_taxonomy: SafeTaxonomy) -> SensitiveAudit:
    """Sensitive events whose only failing rule is the sensitive category, of persons who stay eligible."""
    person, sensitive_class = person.copy(), sensitive_class.copy()  # not views of the kernel's larger buffers
    audit = SensitiveAudit(person=person, sensitive_class=sensitive_class,
                           classes=tuple(safe_taxonomy.profile.classes))
    person.flags.writeable = False
    return audit
