"""The event contract's columns: what is allowed, what is refused, and why (DESIGN.md §3, promise P1)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from adtarget.exceptions import RefusedColumnError, SchemaError

__all__ = ["EVENT_KINDS", "OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "check_columns", "identifying_columns"]

EVENT_KINDS: tuple[str, ...] = ("app_use", "search", "content_view", "purchase")
DEFAULT_KIND = EVENT_KINDS.index("content_view")
REQUIRED_COLUMNS: tuple[str, ...] = ("person_id", "service", "ts", "category")
OPTIONAL_COLUMNS: tuple[str, ...] = ("kind", "region", "weight")

# Tokens that make a column identifying wherever they appear in its name ("user_email", "IPAddress",
# "device-id", "geo_lat"). Matching is by token, so "latitude" and "lat" are caught but "category" is not.
_IDENTIFYING_TOKENS = frozenset(
    {
        "name", "firstname", "lastname", "fullname", "surname", "username",
        "phone", "mobile", "msisdn", "tel", "telephone",
        "email", "mail",
        "ip", "ipv4", "ipv6", "ipaddr", "ipaddress",
        "device", "deviceid", "imei", "imsi", "idfa", "idfv", "gaid", "aaid", "udid", "mac", "macaddress",
        "lat", "lon", "lng", "latitude", "longitude", "gps", "coordinates", "coords", "geohash", "latlon",
        "address", "street", "postcode", "postal", "zip", "zipcode",
        "contact", "contactid", "contacts", "peer", "peerid", "recipient", "sender", "callee", "caller",
        "ssn", "passport", "nationalid",
    }
)
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _tokens(column: str) -> set[str]:
    """Split a column name into lower-case tokens, by separators and camelCase; also the joined form."""
    parts = [t.lower() for t in _TOKEN.findall(column)]
    return {*parts, "".join(parts)}


def identifying_columns(columns: Iterable[str]) -> tuple[str, ...]:
    """Return the columns whose names mark them as identifying (P1), in input order."""
    allowed = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    return tuple(c for c in columns if c not in allowed and _tokens(c) & _IDENTIFYING_TOKENS)


def check_columns(columns: Iterable[str], *, drop_unknown_columns: bool = False) -> tuple[str, ...]:
    """Validate input column names against the contract and return the contract columns present.

    Identifying columns are refused always; other unknown columns unless ``drop_unknown_columns``.
    """
    columns = tuple(str(c) for c in columns)
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise SchemaError(f"events: duplicate column(s) {duplicated}; each column may appear once")
    refused = identifying_columns(columns)
    if refused:
        raise RefusedColumnError(
            f"events: identifying column(s) {list(refused)} refused: adtarget never ingests names, contact "
            "details, IP addresses, device ids, precise coordinates or communication peers (policy P1); "
            "remove them before ingestion",
            refused,
        )
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    unknown = tuple(c for c in columns if c not in known)
    if unknown and not drop_unknown_columns:
        raise RefusedColumnError(
            f"events: unknown column(s) {list(unknown)}; the contract allows {list(REQUIRED_COLUMNS)} and "
            f"optionally {list(OPTIONAL_COLUMNS)} (pass drop_unknown_columns=True to drop unknown columns)",
            unknown,
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise SchemaError(f"events: missing required column(s) {missing}; required are {list(REQUIRED_COLUMNS)}")
    return tuple(c for c in columns if c in known)
