"""Column-name checks shared by every contract (events, consent): identifying columns are refused by name,
always; unknown columns unless the caller drops them; duplicates and missing required columns are errors."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

from adtarget._core._unicode import latin_look, visible
from adtarget.exceptions import RefusedColumnError, SchemaError

__all__ = ["check_contract_columns", "identifying_columns", "listed_columns"]

# Tokens that make a column identifying wherever they appear in its name ("user_email", "IPAddress",
# "device-id", "geo_lat", "date_of_birth"). Matching is by token, so "lat" is caught but "category" is not.
# Besides English: the words of the languages the services run in (German, French, Spanish, Italian,
# Portuguese, Dutch, Polish, Swedish, Turkish) and, transliterated, Russian, Chinese, Japanese and Korean ones
# ("телефон" reads as "telefon", "电话" as "dianhua"), and national id numbers.
_IDENTIFYING_TOKENS = frozenset(
    {
        # names
        "name", "firstname", "lastname", "fullname", "surname", "username", "givenname", "familyname",
        "vorname", "nachname", "nom", "prenom", "nombre", "apellido", "apellidos", "cognome", "sobrenome",
        "imia", "imya", "familiia", "xingming", "namae", "shimei", "ireum", "isim", "soyad", "naam", "achternaam",
        # phones
        "phone", "mobile", "msisdn", "tel", "telephone", "telefon", "telefono", "telefone", "telefoon",
        "handy", "handynummer", "portable", "celular", "cellulare", "movil", "cell", "cellphone", "dianhua",
        "shouji", "denwa", "keitai", "jeonhwa", "e164", "whatsapp",
        # e-mail
        "email", "mail", "courriel", "correo", "correoelectronico", "pochta", "youxiang", "meru", "imeil",
        "eposta", "epost",
        # network
        "ip", "ipv4", "ipv6", "ipaddr", "ipaddress", "xforwardedfor", "forwardedfor", "clientip", "remoteip",
        "addr", "remoteaddr", "hostname", "ssid", "bssid", "useragent", "cookie", "cookieid", "fingerprint",
        # devices
        "device", "deviceid", "imei", "imsi", "idfa", "idfv", "gaid", "aaid", "udid", "mac", "macaddress",
        "androidid", "maid", "iccid", "meid", "serialnumber", "advertising", "adid", "advertisingid",
        # places
        "lat", "lon", "lng", "latitude", "longitude", "gps", "coordinates", "coords", "geohash", "latlon",
        "latlng", "lnglat", "geolat", "geolon", "geolng", "location", "geolocation", "geo",
        "address", "street", "postcode", "postal", "zip", "zipcode", "adresse", "anschrift", "strasse", "plz",
        "direccion", "indirizzo", "endereco", "adres", "cep", "dizhi", "dezhi", "zhusuo", "jusho", "juso",
        # contacts
        "contact", "contactid", "contacts", "peer", "peerid", "recipient", "sender", "callee", "caller",
        # identity documents and dates of birth
        "ssn", "passport", "nationalid", "dob", "birthdate", "birthday", "dateofbirth", "geburtsdatum",
        "fechadenacimiento", "datedenaissance", "nhs", "nhsnumber", "nino", "cpf", "dni", "nif", "nie", "bsn",
        "pesel", "personnummer", "codicefiscale", "aadhaar", "steuerid", "shenfenzheng", "mynumber",
    }
)
# Words that mark a column wherever a longer token starts or ends with them ("phonenumber", "emailaddress",
# "homeaddress", "devicemodel", "gpsfix", "homeaddr"): long enough that no harmless word begins or ends with one
# by chance.
_IDENTIFYING_STEMS = (
    "phone", "email", "mobile", "address", "device", "street", "contact", "passport", "latitude", "longitude",
    "location", "cookie", "fingerprint", "advertising", "birthdate", "birthday", "username", "firstname",
    "lastname", "surname", "fullname", "recipient", "telephone", "postcode", "zipcode", "telefon", "courriel",
    "adresse", "geburtsdatum", "gps", "addr", "handynummer",
)
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def _tokens(column: str) -> set[str]:
    """Lower-case tokens of a column name, by separators and camelCase, with each pair of neighbours and all
    of them joined ("x_forwarded_for" also gives "forwardedfor" and "xforwardedfor"); read as written, as its
    ASCII look-alike (full-width, Cyrillic or Greek homoglyphs, zero-width characters and accents folded) and
    transliterated (``anyascii``)."""
    from anyascii import anyascii

    tokens: set[str] = set()
    shown = visible(column)
    for form in {column, shown, latin_look(column), anyascii(unicodedata.normalize("NFKC", shown))}:
        parts = [t.lower() for t in _TOKEN.findall(form)]
        tokens.update(parts, (a + b for a, b in zip(parts, parts[1:])), ["".join(parts)])
    return tokens


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
