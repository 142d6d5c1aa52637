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
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from adtarget._core._buffers import uses_buffers
from adtarget._core._provenance import Sealed, new_id, readonly
from adtarget.events._ingest import BatchState, EventBatch, EventColumns
from adtarget.exceptions import ParameterError
from adtarget.gate._policy import EligibilityPolicy, checked_policy
from adtarget.gate._rules import EVENT_CODE, EVENT_RULES, EXCLUSION_RULES, PERSON_RULES, SENSITIVE_ONLY
from adtarget.reference._breakdowns import breakdown_by_source
from adtarget.reference._sensitivity import checked_safe_taxonomy

if TYPE_CHECKING:
    from adtarget.consent import ConsentSnapshot
    from adtarget.reference._sensitivity import SafeTaxonomy
    from adtarget.reference._services import ServiceRegistry
    from adtarget.reference._taxonomy import Taxonomy

__all__ = ["EligibleEvents", "EligibleState", "SensitiveAudit", "apply_gate", "eligible_state"]

_RULE = {name: code for code, name in enumerate(EXCLUSION_RULES)}
_EVENT_COLUMNS: tuple[str, ...] = ("person", "service", "ts", "category", "kind", "region", "weight")


@dataclass(frozen=True, eq=False)
class SensitiveAudit:
    """Sensitive events the gate removed from otherwise eligible persons: for the DP proxy audit ONLY.

    ``person`` indexes ``EligibleEvents.persons`` (-1 never occurs), ``sensitive_class`` indexes ``classes``.
    Arrays are read-only.
    """

    person: np.ndarray
    sensitive_class: np.ndarray
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "person", readonly(self.person))
        object.__setattr__(self, "sensitive_class", readonly(self.sensitive_class))

    def __repr__(self) -> str:
        return f"SensitiveAudit(n_events={self.person.size}, classes={self.classes})"


@dataclass(frozen=True, eq=False)
class EligibleState:
    """What EligibleEvents hold (see :class:`EligibleEvents`); made only by :func:`apply_gate`."""

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
    dimension_codes: Mapping[str, np.ndarray]
    dimension_values: Mapping[str, tuple[str, ...]]
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
    snapshot_id: str | None
    lineage: str


class EligibleEvents(EventColumns, Sealed, maker="adtarget.apply_gate"):
    """Events that passed the eligibility gate. Only :func:`apply_gate` makes them.

    Later stages (profiles, segments, releases) accept nothing else and read the gate's own copy, so every
    promise the gate enforces holds for everything derived from it. The object cannot be copied into a changed
    form, built by hand or subclassed, and its arrays cannot be made writable (``adtarget._core._provenance``).

    Attributes
    ----------
    person, service, ts, category, kind, region, weight : read-only event columns (``person`` indexes
        ``persons``; see docs/internals.md).
    persons : sorted uint64 pseudonyms of the eligible persons.
    birth_year : int16 per person (0 unknown).
    regions, safe_taxonomy, services, policy : what the codes mean and what the gate applied.
    dimension_codes, dimension_values : the eligible events' codes and value names of the breakdown dimensions'
        own event columns (``adtarget.reference.BREAKDOWN_DIMENSIONS``), by column.
    window_start, window_end : the data window (epoch seconds; public: the end the caller set, minus the
        longest retention).
    target_service : the one service a cross-service-restricted build targets, or None.
    exclusions, input_events, region_redacted : the gate's accounting (exact: internal).
    sensitive_audit : the sensitive events removed from eligible persons, for the DP proxy audit only.
    snapshot_id : the data owner's name of this data snapshot (public; reports are reused per snapshot).
    lineage : a random id that profiles, assignments and counts derived from these events carry.
    """

    __slots__ = ()
    service: np.ndarray
    ts: np.ndarray
    category: np.ndarray
    kind: np.ndarray
    region: np.ndarray
    weight: np.ndarray
    birth_year: np.ndarray
    regions: tuple[str, ...]
    dimension_codes: Mapping[str, np.ndarray]
    dimension_values: Mapping[str, tuple[str, ...]]
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
    snapshot_id: str | None
    lineage: str

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
        if not EligibleEvents._is_issued(self):
            return "EligibleEvents(<not made by adtarget.apply_gate>)"
        return (
            f"EligibleEvents(n_events={self.n_events}, n_persons={self.n_persons}, "
            f"excluded={sum(self.exclusions.values())}, target_service={self.target_service!r})"
        )


def eligible_state(eligible: object, what: str = "eligible") -> EligibleState:
    """The gate's own record of ``eligible``; ProvenanceError for anything :func:`apply_gate` did not make."""
    state: EligibleState = EligibleEvents._state_of(eligible, what)
    return state


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
    snapshot_id: str | None = None,
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
    snapshot_id : the data owner's public name for this data snapshot (1-200 printable characters, e.g. a
        job run id). A release that repeats an earlier one (same spec, same window, same snapshot id) returns
        the stored report; ``None`` names the snapshot by its window alone (docs/privacy/release.md).

    Notes
    -----
    Person rules are evaluated once per batch person (numpy); the event rules, the exclusion counts and the
    eligible columns come from one blocked compiled pass over the events (``adtarget/gate/_kernels.py``).
    """
    policy = policy if policy is not None else EligibilityPolicy()
    columns = EventBatch._state_of(batch, "batch")
    _check_inputs(columns, snapshot, safe_taxonomy, policy, services, target_service)
    _check_snapshot_id(snapshot_id)
    safe_taxonomy, policy = checked_safe_taxonomy(safe_taxonomy), checked_policy(policy)  # applied as checked
    end = int(snapshot.as_of if window_end is None else window_end)
    found, at = _snapshot_rows(columns.persons, snapshot)
    persons = _PersonTables(
        state=_person_state(columns, snapshot, policy, found, at, target_service, end),
        profile=_person_profiles(columns, snapshot, policy, found, at, end),
        birth_year=_birth_years(snapshot, found, at),
    )
    return _build(columns, persons, _sensitive_table(columns, snapshot, safe_taxonomy, policy), safe_taxonomy,
                  policy, target_service, end, snapshot_id)


def _check_snapshot_id(snapshot_id: object) -> None:
    if snapshot_id is None:
        return
    if not isinstance(snapshot_id, str) or not 1 <= len(snapshot_id) <= 200 or not snapshot_id.isprintable() \
            or snapshot_id != snapshot_id.strip():
        raise ParameterError("snapshot_id must be None or 1-200 printable characters without edge whitespace; "
                             f"got {type(snapshot_id).__name__} of length "
                             f"{len(snapshot_id) if isinstance(snapshot_id, str) else '-'}")


def _check_inputs(batch: BatchState, snapshot: object, safe_taxonomy: object, policy: object,
                  services: ServiceRegistry | None, target_service: str | None) -> None:
    from adtarget.consent import ConsentSnapshot
    from adtarget.reference._sensitivity import SafeTaxonomy

    for name, value, kind in (("snapshot", snapshot, ConsentSnapshot), ("safe_taxonomy", safe_taxonomy, SafeTaxonomy),
                              ("policy", policy, EligibilityPolicy)):
        if not isinstance(value, kind):
            raise ParameterError(f"{name} must be a {kind.__name__}; got {type(value).__name__}")
    assert isinstance(safe_taxonomy, SafeTaxonomy)
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
    ``adtarget/gate/_kernels.py``), ``profile`` (int16 row of the sensitive table, or empty when the policy
    has no jurisdiction profiles) and ``birth_year`` (int16, 0 = unknown or no consent record)."""

    state: np.ndarray
    profile: np.ndarray
    birth_year: np.ndarray


def _snapshot_rows(pseudonyms: np.ndarray, snapshot: ConsentSnapshot) -> tuple[np.ndarray, np.ndarray]:
    """Per batch person: whether it has a consent record, and its snapshot row (0 where it has none)."""
    if not snapshot.persons.size:
        return np.zeros(pseudonyms.size, dtype=bool), np.zeros(pseudonyms.size, dtype=np.int64)
    from adtarget.gate import _kernels as kernels

    rows, ok = kernels.sorted_rows(pseudonyms, snapshot.persons)
    if not ok:  # batch persons not strictly increasing: look each one up
        at = np.searchsorted(snapshot.persons, pseudonyms)
        at = np.minimum(at, snapshot.persons.size - 1)
        found = snapshot.persons[at] == pseudonyms
        return found, at
    found = rows >= 0
    return found, np.where(found, rows, 0)


def _person_state(batch: BatchState, snapshot: ConsentSnapshot, policy: EligibilityPolicy, found: np.ndarray,
                  at: np.ndarray, target_service: str | None, end: int) -> np.ndarray:
    """Per batch person: the first person rule it breaks, or ``-1 - flags`` (cross-service, location) if none."""
    from adtarget.gate import _kernels as kernels

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


def _per_jurisdiction(codes: np.ndarray, values: Mapping[str, Any], default: Any, dtype: Any) -> np.ndarray:
    """``values`` of each person's jurisdiction code (upper-cased; a subdivision such as ``US-CA`` falls back
    to its country ``US`` when only the country is listed), ``default`` for the others."""
    if not values:  # no jurisdiction rule: no per-person look-up (np.unique over every person's code)
        return np.full(len(codes), default, dtype=dtype)
    distinct, inverse = np.unique(np.char.upper(np.asarray(codes, dtype=str)), return_inverse=True)
    table = np.array([values.get(c, values.get(c.split("-")[0], default)) for c in distinct.tolist()], dtype=dtype)
    return table[inverse] if distinct.size else np.zeros(0, dtype=dtype)


def _min_age_per_person(snapshot: ConsentSnapshot, at: np.ndarray, policy: EligibilityPolicy) -> np.ndarray:
    if not policy.jurisdiction_min_age:
        return np.full(at.size, policy.min_age, dtype=np.int64)
    return _per_jurisdiction(np.asarray(snapshot.jurisdiction)[at], policy.jurisdiction_min_age, policy.min_age,
                             np.int64)


def _person_profiles(batch: BatchState, snapshot: ConsentSnapshot, policy: EligibilityPolicy, found: np.ndarray,
                     at: np.ndarray, end: int) -> np.ndarray:
    """Per batch person: the row of the sensitive table (int16): ``1 + k`` for jurisdiction profile ``k``, 0
    for none, plus the number of those rows for a person under the adult age (:func:`_sensitive_table`)."""
    if not snapshot.persons.size:
        return np.zeros(0, dtype=np.int16)
    jurisdiction = np.where(found, np.asarray(snapshot.jurisdiction)[at].astype(str), "")
    rows = {code: row for row, code in enumerate(policy.jurisdiction_profiles, start=1)}
    profile = _per_jurisdiction(jurisdiction, rows, 0, np.int16)
    birth_year = np.where(found, np.asarray(snapshot.birth_year)[at], 0).astype(np.int64)
    adult_age = _per_jurisdiction(jurisdiction, policy.jurisdiction_adult_age, policy.adult_age, np.int64)
    youngest_age = _dt.datetime.fromtimestamp(end, tz=_dt.timezone.utc).year - birth_year - 1
    minor = (birth_year <= 0) | (youngest_age < adult_age)  # unknown age: treated as a minor here
    return (profile + minor * (1 + len(policy.jurisdiction_profiles))).astype(np.int16)


def _sensitive_table(batch: BatchState, snapshot: ConsentSnapshot, safe_taxonomy: SafeTaxonomy,
                     policy: EligibilityPolicy) -> np.ndarray:
    """Sensitive nodes (bool, rows x nodes): row 0 the build's profile, row k also jurisdiction profile k; then
    the same rows for minors, with the age-restricted categories added (``age_restricted_mask``)."""
    from adtarget.reference._sensitivity import age_restricted_mask

    base = ~np.asarray(safe_taxonomy.safe_mask, dtype=bool)
    rows = [base]
    for profile in policy.profiles.values():
        rows.append(base | np.asarray(profile.sensitive_mask(batch.taxonomy), dtype=bool))
    restricted = np.asarray(age_restricted_mask(batch.taxonomy), dtype=bool)
    return np.ascontiguousarray(np.stack([*rows, *(row | restricted for row in rows)]))


def _birth_years(snapshot: ConsentSnapshot, found: np.ndarray, at: np.ndarray) -> np.ndarray:
    if not snapshot.persons.size:
        return np.zeros(found.size, dtype=np.int16)
    return np.where(found, np.asarray(snapshot.birth_year)[at], 0).astype(np.int16)


def _build(batch: BatchState, persons: _PersonTables, sensitive: np.ndarray, safe_taxonomy: SafeTaxonomy,
           policy: EligibilityPolicy, target_service: str | None, end: int, snapshot_id: str | None) -> EligibleEvents:
    """The kernel's pass over the events (inputs trusted: ``ingest`` made the batch, so codes are in range)."""
    from adtarget.gate import _kernels as kernels

    permitted = np.asarray(batch.services.ads_permitted, dtype=bool)
    oldest = end - np.asarray(policy.retention_seconds(), dtype=np.int64)
    n_events = batch.person.size
    columns = tuple(getattr(batch, name) for name in _EVENT_COLUMNS)
    out = tuple(np.empty(n_events, dtype=np.int32 if name == "person" else column.dtype)
                for name, column in zip(_EVENT_COLUMNS, columns))
    dims = tuple(batch.dimension_codes)
    extra = (np.stack([batch.dimension_codes[d] for d in dims]) if dims else np.empty((0, n_events), np.int16),
             np.array([breakdown_by_source(d).location for d in dims], dtype=bool))
    extra_out = np.empty_like(extra[0])
    audit = (np.empty(n_events, dtype=np.int32), np.empty(n_events, dtype=np.int8))
    rules = (persons.state, persons.profile, permitted,
             -1 if target_service is None else batch.services.names.index(target_service), sensitive, oldest, end,
             len(PERSON_RULES))
    n_eligible, n_audit, redacted, counts = kernels.filter_events(
        columns, extra, rules, np.asarray(safe_taxonomy.sensitive_class, dtype=np.int8), (*out, extra_out), audit)
    for column in out:  # shrink in place: the pages past n_eligible were never written, so never resident
        column.resize(n_eligible, refcheck=False)
    dimension_codes = {d: extra_out[r, :n_eligible].copy() for r, d in enumerate(dims)}
    keep, new_index = kernels.renumber_persons(out[0], batch.persons.size)
    n_audit = kernels.compact_audit(audit[0], audit[1], n_audit, new_index)
    state = EligibleState(
        **dict(zip(_EVENT_COLUMNS, out)),
        persons=batch.persons[keep],
        birth_year=persons.birth_year[keep],
        regions=batch.regions,
        dimension_codes=dimension_codes,
        dimension_values=batch.dimension_values,
        safe_taxonomy=safe_taxonomy,
        services=batch.services,
        window_start=end - max(policy.retention_seconds()),
        window_end=end,
        target_service=target_service,
        policy=policy,
        exclusions=_exclusions(counts),
        input_events=n_events,
        region_redacted=int(redacted),
        sensitive_audit=_audit(audit[0][:n_audit], audit[1][:n_audit], safe_taxonomy),
        snapshot_id=snapshot_id,
        lineage=new_id(),
    )
    return EligibleEvents._issue(state)


def _exclusions(counts: np.ndarray) -> Mapping[str, int]:
    """Events excluded per named rule, from the kernel's counts per code (sensitive-only events are sensitive)."""
    base = len(PERSON_RULES)
    named = {name: int(counts[code]) for code, name in enumerate(PERSON_RULES)}
    named.update({name: int(counts[base + EVENT_CODE[name]]) for name in EVENT_RULES})
    named["sensitive_category"] += int(counts[base + SENSITIVE_ONLY])
    return MappingProxyType(named)


def _audit(person: np.ndarray, sensitive_class: np.ndarray, safe_taxonomy: SafeTaxonomy) -> SensitiveAudit:
    """Sensitive events whose only failing rule is the sensitive category, of persons who stay eligible."""
    person, sensitive_class = person.copy(), sensitive_class.copy()  # not views of the kernel's larger buffers
    return SensitiveAudit(person=person, sensitive_class=sensitive_class, classes=tuple(safe_taxonomy.profile.classes))
