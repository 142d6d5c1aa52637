"""Column-name checks shared by every contract (events, consent): identifying columns are refused by name,
always; unknown columns unless the caller drops them; duplicates and missing required columns are errors."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from adtarget.exceptions import RefusedColumnError, SchemaError

__all__ = ["check_contract_columns", "identifying_columns", "listed_columns"]

# Tokens that make a column identifying wherever they appear in its name ("user_email", "IPAddress",
# "device-id", "geo_lat", "date_of_birth"). Matching is by token, so "lat" is caught but "category" is not.
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
        "ssn", "passport", "nationalid", "dob", "birthdate", "birthday", "dateofbirth",
        "addr", "remoteaddr", "location", "geolocation", "geo", "advertising", "adid", "advertisingid", "cookie",
        "cookieid", "fingerprint", "hostname", "ssid", "bssid", "useragent", "serialnumber",
    }
)
# Words that mark a column wherever a longer token starts or ends with them ("phonenumber", "emailaddress",
# "homeaddress", "devicemodel"): long enough that no harmless word begins or ends with one by chance.
_IDENTIFYING_STEMS = (
    "phone", "email", "mobile", "address", "device", "street", "contact", "passport", "latitude", "longitude",
    "location", "cookie", "fingerprint", "advertising", "birthdate", "birthday", "username", "firstname",
    "lastname", "surname", "fullname", "recipient", "telephone", "postcode", "zipcode",
)
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _tokens(column: str) -> set[str]:
    """Lower-case tokens of a column name, by separators and camelCase; also the joined form."""
    parts = [t.lower() for t in _TOKEN.findall(column)]
    return {*parts, "".join(parts)}


def identifying_columns(columns: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """The columns outside ``allowed`` whose names mark them as identifying (P1, P11), in input order."""
    known = set(allowed)
    return tuple(c for c in columns if c not in known and _identifying(_tokens(c)))


def _identifying(tokens: set[str]) -> bool:
    return bool(tokens & _IDENTIFYING_TOKENS) or any(t.startswith(_IDENTIFYING_STEMS) or t.endswith(_IDENTIFYING_STEMS)
                                                     for t in tokens)


def listed_columns(names: Iterable[str], most: int = 5) -> str:
    """Column names for a message: at most ``most``, each printable and at most 40 characters."""
    names = list(names)
    shown = ["".join(c if c.isprintable() else "?" for c in n)[:40] for n in names[:most]]
    return str(shown) + (f" (and {len(names) - most} more)" if len(names) > most else "")


def check_contract_columns(
    columns: Iterable[str],
    *,
    what: str,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    drop_unknown_columns: bool = False,
    refusal: str,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Validate column names against a contract; return ``(contract columns present, unknown columns)``.

    ``refusal`` is the sentence that says why identifying columns are refused (it goes into the error).
    """
    names = tuple(str(c) for c in columns)
    if names and not set(required) & set(names):  # a file without its header row: the names are data
        raise SchemaError(f"{what}: none of the required columns {list(required)} is in the header (is the header "
                          f"row missing?)")
    counts = Counter(names)
    duplicated = sorted(c for c, k in counts.items() if k > 1)
    if duplicated:
        raise SchemaError(f"{what}: duplicate column(s) {listed_columns(duplicated)}; each column may appear once")
    known = (*required, *optional)
    refused = identifying_columns(names, known)
    if refused:
        raise RefusedColumnError(f"{what}: identifying column(s) {listed_columns(refused)} refused: {refusal}", refused)
    unknown = tuple(c for c in names if c not in known)
    if unknown and not drop_unknown_columns:
        allowed = f"{list(required)}" + (f" and optionally {list(optional)}" if optional else "")
        raise RefusedColumnError(
            f"{what}: unknown column(s) {listed_columns(unknown)}; the contract allows {allowed} (pass "
            "drop_unknown_columns=True to drop unknown, non-identifying columns)", unknown)
    missing = [c for c in required if c not in names]
    if missing:
        raise SchemaError(f"{what}: missing required column(s) {missing}; required are {list(required)}")
    return tuple(c for c in names if c in known), unknown
