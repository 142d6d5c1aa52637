"""The event contract's columns: what is allowed, what is refused, and why (DESIGN.md §3, promise P1)."""

from __future__ import annotations

from collections.abc import Iterable

from adtarget.events._header_checks import check_contract_columns
from adtarget.events._header_checks import identifying_columns as _identifying
from adtarget.reference._breakdowns import coded_event_dimensions

__all__ = ["EVENT_KINDS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "check_columns", "identifying_columns",
           "optional_columns"]

EVENT_KINDS: tuple[str, ...] = ("app_use", "search", "content_view", "purchase")
DEFAULT_KIND = EVENT_KINDS.index("content_view")
REQUIRED_COLUMNS: tuple[str, ...] = ("person_id", "service", "ts", "category")
OPTIONAL_COLUMNS: tuple[str, ...] = ("kind", "region", "weight")


def optional_columns() -> tuple[str, ...]:
    """The contract's optional columns plus the event columns of the breakdown dimensions' table."""
    extra = tuple(d.source for d in coded_event_dimensions() if d.source not in OPTIONAL_COLUMNS)
    return (*OPTIONAL_COLUMNS, *extra)


def identifying_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """Return the columns whose names mark them as identifying (P1), in input order."""
    return _identifying(columns, (*REQUIRED_COLUMNS, *optional_columns()))


def check_columns(columns: Iterable[str], *, drop_unknown_columns: bool = False) -> tuple[str, ...]:
    """Validate input column names against the contract and return the contract columns present.

    Identifying columns are refused always; other unknown columns unless ``drop_unknown_columns``.
    """
    kept, _ = check_contract_columns(
        columns, what="events", required=REQUIRED_COLUMNS, optional=optional_columns(),
        drop_unknown_columns=drop_unknown_columns,
        refusal="adtarget never ingests names, contact details, IP addresses, device ids, precise coordinates "
                "or communication peers (policy P1); remove them before ingestion",
    )
    return kept
