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
# ("телефон" reads as "telefon", "电话" as "dianhua", "이름" as "ileum", "纬度" as "weidu"), and national id numbers.
_IDENTIFYING_TOKENS = frozenset(
    {
        # names
        "name", "firstname", "lastname", "fullname", "surname", "username", "givenname", "familyname",
        "nickname", "nick", "screenname", "displayname",
        "vorname", "nachname", "nom", "prenom", "nombre", "apellido", "apellidos", "cognome", "sobrenome", "nome",
        "imie", "nazwisko", "namn", "fornamn", "efternamn", "imia", "imya", "familiia", "familiya", "otchestvo",
        "xingming", "mingzi", "mingqian", "shiming", "namae", "shimei", "ireum", "ileum", "isim", "soyad", "naam",
        "achternaam", "voornaam",
        # phones
        "phone", "mobile", "msisdn", "tel", "telephone", "telefon", "telefono", "telefone", "telefoon",
        "handy", "handynummer", "mobil", "mobilnummer", "rufnummer", "portable", "celular", "cellulare", "movil",
        "cell", "cellphone", "dianhua", "shouji", "denwa", "keitai", "xiedai", "jeonhwa", "hyudae", "hyudaepon",
        "e164", "whatsapp",
        # e-mail
        "email", "mail", "courriel", "correo", "correoelectronico", "pochta", "youxiang", "youjian",
        "dianziyoujian", "meru", "meruadoresu", "imeil", "eposta", "epost",
        # network
        "ip", "ips", "ipv4", "ipv6", "ipaddr", "ipaddress", "ipaddresses", "xforwardedfor", "forwardedfor",
        "clientip", "remoteip", "addr", "remoteaddr", "hostname", "ssid", "bssid", "useragent", "cookie",
        "cookieid", "fingerprint",
        # devices and push channels
        "device", "deviceid", "imei", "imsi", "idfa", "idfv", "gaid", "aaid", "oaid", "udid", "mac", "macaddress",
        "androidid", "maid", "iccid", "meid", "serialnumber", "advertising", "adid", "advertisingid", "hardwareid",
        "hwid", "pushtoken", "fcmtoken", "apnstoken", "licenseplate", "licenceplate", "numberplate",
        # places
        "lat", "lon", "lng", "latitude", "longitude", "latitud", "longitud", "gps", "coordinates", "coords",
        "geohash", "latlon", "latlng", "lnglat", "geolat", "geolon", "geolng", "geopoint", "geoposition", "geopos",
        "location", "geolocation", "geo", "localisation", "localizacion", "localizzazione", "localizacao",
        "ubicacion", "standort", "wohnort", "breitengrad", "langengrad", "laengengrad", "shirota", "dolgota",
        "weidu", "jingdu", "weizhi", "wido", "gyeongdo",
        "address", "street", "postcode", "postal", "zip", "zipcode", "adresse", "adress", "anschrift", "strasse",
        "plz", "postleitzahl", "direccion", "indirizzo", "endereco", "adres", "cep", "dizhi", "dezhi", "zhusuo",
        "jusho", "juso",
        # contacts
        "contact", "contactid", "contacts", "peer", "peerid", "recipient", "receiver", "addressee", "sender",
        "callee", "caller", "empfanger", "empfaenger", "absender",
        # identity documents, payment cards and accounts, dates of birth
        "ssn", "socialsecurity", "passport", "pasport", "reisepass", "personalausweis", "nationalid", "dob",
        "birthdate", "birthday", "dateofbirth", "geburtsdatum", "geboortedatum", "fodelsedatum",
        "fechadenacimiento", "fechanacimiento", "nacimiento", "naissance", "nascita", "nascimento", "urodzenia",
        "rozhdeniya", "datarozhdeniya", "datedenaissance", "chushengriqi", "shengri", "saengnyeonwolil",
        "nhs", "nhsnumber", "nino", "cpf", "dni", "nif", "nie", "bsn", "pesel", "personnummer", "codicefiscale",
        "aadhaar", "steuerid", "shenfen", "shenfenzheng", "shenfenzhenghao", "mynumber", "jumindeunglogbeonho",
        "juminbeonho", "kimlik", "creditcard", "cardnumber", "iban", "bankaccount",
    }
)
# Words that mark a column wherever a longer token starts or ends with them ("phonenumber", "emailaddress",
# "homeaddress", "devicemodel", "gpsfix", "homeaddr"): long enough that no harmless word begins or ends with one
# by chance.
_IDENTIFYING_STEMS = (
    "phone", "email", "mobile", "address", "adress", "device", "street", "contact", "passport", "latitud",
    "longitud", "location", "cookie", "fingerprint", "advertising", "birthdate", "birthday", "username",
    "firstname", "lastname", "surname", "fullname", "recipient", "telephone", "postcode", "zipcode", "telefon",
    "courriel", "adresse", "geburtsdatum", "gps", "addr", "handynummer", "mobilnummer", "rufnummer",
    "shenfenzheng", "jumindeunglog", "adoresu",
)
# Long words that mark a column wherever they occur in its joined name ("customer_date_of_birth",
# "fecha_de_nacimiento_cliente"): seven letters or more, and no harmless name holds one by chance.
_IDENTIFYING_WORDS = (
    "dateofbirth", "birthdate", "birthday", "socialsecurity", "phonenumber", "emailaddress", "creditcard",
    "passport", "fechadenacimiento", "fechanacimiento", "datedenaissance", "geburtsdatum", "geboortedatum",
    "telephone", "latitude", "longitude", "ipaddress", "macaddress", "deviceid", "advertisingid",
    "streetaddress", "homeaddress", "postcode", "zipcode", "licenseplate", "datarozhdeniya",
)
# A token that is identifying alone but not where a neighbour says what it is about ("app_name", "device_type",
# "is_mobile", "geo_region", "gps_enabled", "lat_ms"): the name of a thing that is not a person, a kind of device,
# a flag, a coarse region, a latency. The pair is read as one harmless word, so no joined form is built across it.
_NOT_A_PERSON = frozenset(
    {
        "category", "app", "application", "service", "product", "campaign", "brand", "segment", "page", "file",
        "event", "column", "field", "table", "site", "channel", "show", "program", "series", "genre", "topic",
        "tag", "label", "feature", "experiment", "variant", "metric", "dataset", "project", "item", "offer",
        "package", "bundle", "store", "shop", "merchant", "company", "organization", "org", "publisher",
        "advertiser", "os", "browser", "platform", "carrier", "creative", "placement", "audience", "taxonomy",
    }
)
_EXCUSED_AFTER = {  # token -> the next tokens that make it harmless
    "device": frozenset({"type", "class", "category", "kind", "family"}),
    "geo": frozenset({"region", "country", "continent", "subregion"}),
    "lat": frozenset({"ms", "us", "ns", "sec", "secs", "seconds", "millis", "micros"}),
    "tel": frozenset({"aviv"}),
    "contact": frozenset({"center", "centre"}),
    "peer": frozenset({"review", "reviews", "reviewed", "reviewer"}),
    "address": frozenset({"space", "spaces"}),
}
_FLAG_PREFIXES = frozenset({"is", "has"})
_FLAG_SUFFIXES = frozenset({"enabled", "disabled", "allowed", "supported", "available"})
_TOKEN = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
# right-to-left and left-to-right overrides, embeddings, isolates and marks: "\u202eliame" shows as "email"
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LEET_WORD = re.compile(r"[a-z0-9]+")
_LEET = (str.maketrans("013457", "oleast"), str.maketrans("013457", "oieast"))  # 1 as l, and as i


def _leet(text: str) -> list[str]:
    """``text`` with the digits that stand for letters read as letters ("ph0ne", "ema1l"), in words of two
    letters or more with a digit next to a letter ("1p", "2024" and "e164" keep theirs); one form reads 1 as l,
    one as i."""
    words = [m.group() for m in _LEET_WORD.finditer(text)]
    leet = [w for w in words if sum(c.isalpha() for c in w) >= 2 and re.search(r"[a-z][0-9]|[0-9][a-z]", w)]
    forms = []
    for table in _LEET:
        form = text
        for w in leet:
            form = form.replace(w, w.translate(table))
        forms.append(form)
    return forms


def _forms(column: str) -> set[str]:
    """The ways a name reads: as written, without what shows as nothing, as its ASCII look-alike (full-width,
    Cyrillic or Greek homoglyphs, zero-width characters and accents folded), transliterated (``anyascii``),
    with digits read as the letters they stand for, and, where a bidi control reorders it, reversed."""
    from anyascii import anyascii

    shown = visible(column)
    look = latin_look(column)
    forms = {column, shown, look, anyascii(unicodedata.normalize("NFKC", shown)), *_leet(look)}
    if _BIDI.intersection(column):
        forms.update(f[::-1] for f in (shown, look))
    return forms


def _runs(parts: list[str]) -> list[list[str]]:
    """``parts`` split where a token is excused by its neighbour, without the excused token."""
    excused = set()
    for i, (a, b) in enumerate(zip(parts, parts[1:])):
        if b == "name" and a in _NOT_A_PERSON:
            excused.add(i + 1)
        if b in _EXCUSED_AFTER.get(a, ()):
            excused.add(i)
        if a in _FLAG_PREFIXES:
            excused.add(i + 1)
        if b in _FLAG_SUFFIXES:
            excused.add(i)
    runs: list[list[str]] = [[]]
    for i, part in enumerate(parts):
        if i in excused:
            runs.append([])
        else:
            runs[-1].append(part)
    return [r for r in runs if r]


def _identifying(column: str) -> bool:
    """Whether a column's name marks it as identifying, in any of the ways it reads: a token of the vocabulary,
    a neighbour pair or a joined run of tokens in it, a token starting or ending with a stem, or a long word
    anywhere in the joined name."""
    for form in _forms(column):
        for run in _runs([t.lower() for t in _TOKEN.findall(form)]):
            joined = "".join(run)
            tokens = {*run, *(a + b for a, b in zip(run, run[1:])), joined}
            if tokens & _IDENTIFYING_TOKENS or any(w in joined for w in _IDENTIFYING_WORDS):
                return True
            if any(t.startswith(_IDENTIFYING_STEMS) or t.endswith(_IDENTIFYING_STEMS) for t in tokens):
                return True
    return False


def identifying_columns(columns: Iterable[str], allowed: Iterable[str]) -> tuple[str, ...]:
    """The columns outside ``allowed`` whose names mark them as identifying (P1, P11), in input order."""
    known = set(allowed)
    return tuple(c for c in columns if c not in known and _identifying(c))


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
