"""The access export (promise P8): everything the SDK holds or derived about one person, as JSON.

It reads the consent ledger, the events files and the assignments files the SDK wrote; it matches the person
by pseudonym, so raw ids in events files are hashed (distinct ids only) and never copied into the export.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from adtarget.consent._ledger import ConsentLedger
    from adtarget.events._pseudonym import Pseudonymizer

__all__ = ["access_export"]


def access_export(
    person_id: Any,
    *,
    ledger: ConsentLedger,
    pseudonymizer: Pseudonymizer,
    events: Iterable[str | os.PathLike[str]] = (),
    assignments: Iterable[str | os.PathLike[str]] = (),
) -> dict[str, Any]:
    """Consent history, event counts by service and category, and segments of one person.

    The export names the person by pseudonym only; the caller already knows the account id they asked for.
    """
    consent = ledger.export_person(person_id)
    pseudonym = np.uint64(pseudonymizer.pseudonymize_one(person_id))
    counts: dict[tuple[str, str], int] = {}
    for path in events:
        for key, n in _event_counts(path, pseudonymizer, pseudonym).items():
            counts[key] = counts.get(key, 0) + n
    segments = sorted({s for path in assignments for s in _segments(path, consent["pseudonym"])})
    return {
        "schema": "adtarget.access_export/v1",
        "pseudonym": consent["pseudonym"],
        "consent": {"current": consent["current"], "history": consent["history"]},
        "events": [{"service": s, "category": c, "events": n} for (s, c), n in sorted(counts.items())],
        "segments": segments,
    }


def _event_counts(path: str | os.PathLike[str], pseudonymizer: Any, pseudonym: np.uint64) -> dict[Any, int]:
    from adtarget.events._parsing import factorize
    from adtarget.events._sources import read_columns

    columns, _ = read_columns(path, what="events")
    uniques, codes = factorize(columns["person_id"], "person_id")
    hashed, valid = pseudonymizer.pseudonymize_with_mask(uniques)
    match = np.flatnonzero((hashed == pseudonym) & valid)
    rows = np.isin(codes, match)
    if not rows.any():
        return {}
    service = np.asarray(_values(columns["service"]))[rows].astype(str)
    category = np.asarray(_values(columns["category"]))[rows].astype(str)
    pairs, n = np.unique(np.stack([service, category]), axis=1, return_counts=True)
    return {(str(s), str(c)): int(k) for (s, c), k in zip(pairs.T, n)}


def _values(column: Any) -> Any:
    return column.to_numpy(zero_copy_only=False) if hasattr(column, "to_numpy") else column


def _segments(path: str | os.PathLike[str], pseudonym_hex: str) -> list[str]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    row = table.filter(pc.equal(table.column("pseudonym"), pseudonym_hex))
    if row.num_rows == 0:
        return []
    return [name for name in row.column_names if name != "pseudonym" and bool(row.column(name)[0].as_py())]
