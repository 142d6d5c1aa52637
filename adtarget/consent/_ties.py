"""Records of one person with the same ``updated_at`` (a tie): they combine field by field into the most
restrictive state, so the result never depends on the order the rows came in.

Per field: ``deleted``, ``terminated`` and ``location_deleted`` if any record says so; ``opted_in`` and
``cross_service`` only if every record says so; ``birth_year`` unknown if any record has it unknown (a person of
unknown age is excluded as a minor would be, and a tied known year must not lift that), else the youngest (the
stricter age rule); the oldest ``policy_version`` (the stricter ``min_policy_version`` check); the first known
``jurisdiction`` in sort order (the ledger does not know which jurisdiction a build treats more strictly, so
the rule is only order-independent). A deletion is not merged: it erases the records it ties with (``_store``), so a tie that
holds a deletion is the latest deletion record as it is (scrubbed). The same rule is written once here for
numpy (imports, snapshots as of a time) and once as SQL (:data:`TIE_SET`, the upsert into ``current``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["TIE_CHANGES", "TIE_SET", "latest_merged"]

_ANY = ("deleted", "terminated", "location_deleted")
_ALL = ("opted_in", "cross_service")


def latest_merged(persons: np.ndarray, updated_at: np.ndarray, seq: np.ndarray,
                  fields: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``(rows, merged)``: per person (sorted by pseudonym) the index of its latest row (largest ``seq`` at its
    largest ``updated_at``) and its state: the fields of the records at that ``updated_at``, merged.

    ``fields`` holds ``birth_year`` (0 unknown), ``policy_version``, ``jurisdiction`` ("" unknown) and the
    booleans ``opted_in``, ``cross_service``, ``deleted``, ``terminated``, ``location_deleted``.
    """
    if not persons.size:
        return np.zeros(0, dtype=np.int64), {name: values[:0] for name, values in fields.items()}
    order = np.lexsort((seq, updated_at, persons))
    p, t = persons[order], updated_at[order]
    last = np.append(p[1:] != p[:-1], True)
    group = np.cumsum(np.append(True, p[1:] != p[:-1])) - 1
    at_latest = t == t[last][group]
    rows = order[last]
    if int(at_latest.sum()) == rows.size:  # no ties: each person's latest record as it is
        return rows, {name: values[rows] for name, values in fields.items()}
    tied = order[at_latest]
    g = group[at_latest]
    starts = np.flatnonzero(np.append(True, g[1:] != g[:-1]))
    merged = {name: np.logical_or.reduceat(np.asarray(fields[name], bool)[tied], starts) for name in _ANY}
    merged.update({name: np.logical_and.reduceat(np.asarray(fields[name], bool)[tied], starts) for name in _ALL})
    birth = fields["birth_year"][tied]
    unknown_age = np.logical_or.reduceat(birth == 0, starts)  # unknown (0) wins: it is the stricter age rule
    merged["birth_year"] = np.where(unknown_age, 0, np.maximum.reduceat(birth, starts))
    policy = fields["policy_version"][tied]
    merged["policy_version"] = policy[np.lexsort((policy.astype(str), g))[starts]]
    place = fields["jurisdiction"][tied]
    text = place.astype(str)
    merged["jurisdiction"] = place[np.lexsort((text, text == "", g))[starts]]
    deletion = _latest_deletion(np.asarray(fields["deleted"], bool)[tied], starts)
    with_deletion = deletion >= 0
    out = {name: merged[name].astype(values.dtype, copy=False) for name, values in fields.items()}
    for name, values in fields.items():  # a tie that holds a deletion: the latest deletion record as it is
        out[name][with_deletion] = values[tied[deletion[with_deletion]]]
    return rows, out


def _latest_deletion(deleted: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per group (rows in ``seq`` order within it), the position of its last deletion row, or -1."""
    position = np.where(deleted, np.arange(deleted.size), -1)
    return np.maximum.reduceat(position, starts) if deleted.size else position


def _tie(field: str, e: str, c: str) -> str:
    merged = {
        "deleted": f"max({e}.deleted, {c}.deleted)",
        "terminated": f"max({e}.terminated, {c}.terminated)",
        "location_deleted": f"max({e}.location_deleted, {c}.location_deleted)",
        "cross_service": f"min({e}.cross_service, {c}.cross_service)",
        "ads_personalization": f"CASE WHEN {e}.ads_personalization = 'opt_in' AND {c}.ads_personalization = "
                               f"'opt_in' THEN 'opt_in' ELSE 'opt_out' END",
        "policy_version": f"min({e}.policy_version, {c}.policy_version)",
        "birth_year": f"CASE WHEN {e}.birth_year IS NULL OR {c}.birth_year IS NULL THEN NULL "
                      f"ELSE max({e}.birth_year, {c}.birth_year) END",
        "jurisdiction": f"COALESCE(min({e}.jurisdiction, {c}.jurisdiction), {e}.jurisdiction, {c}.jurisdiction)",
    }[field]
    return f"CASE WHEN {e}.deleted = 1 THEN {e}.{field} WHEN {c}.deleted = 1 THEN {c}.{field} ELSE {merged} END"


_MERGED = ("birth_year", "ads_personalization", "cross_service", "policy_version", "deleted", "terminated",
           "location_deleted", "jurisdiction")
#: the SET clause of the upsert into ``current``: a newer record replaces the row, a tied one merges into it
TIE_SET = ",\n        ".join(
    [f"{f} = CASE WHEN excluded.updated_at > current.updated_at THEN excluded.{f} ELSE "
     f"{_tie(f, 'excluded', 'current')} END" for f in _MERGED]
    + ["updated_at = excluded.updated_at", "seq = max(excluded.seq, current.seq)"])
#: a tied record changes ``current`` only if it is stricter in some field (so ``applied`` counts real changes)
TIE_CHANGES = (
    "(excluded.deleted = 1 OR (current.deleted = 0 AND (excluded.terminated > current.terminated "
    "OR excluded.location_deleted > current.location_deleted OR excluded.cross_service < current.cross_service "
    "OR (excluded.ads_personalization <> 'opt_in' AND current.ads_personalization = 'opt_in') "
    "OR excluded.policy_version < current.policy_version "
    "OR excluded.birth_year > current.birth_year "
    "OR (current.birth_year IS NOT NULL AND excluded.birth_year IS NULL) "
    "OR excluded.jurisdiction < current.jurisdiction "
    "OR (current.jurisdiction IS NULL AND excluded.jurisdiction IS NOT NULL))))"
)
