"""Advertiser identities: one canonical id per advertiser, and a skeleton that look-alike names share.

A budget is only a bound if one advertiser cannot appear as many. ``acme``, ``Acme``, ``ACME`` and the
full-width ``ａｃｍｅ`` are one advertiser: the canonical id is NFKC, then case-folded, then NFKC again (the
"NFKC_Casefold" identity of Unicode's UAX #31 / UTS #39). ``аcme`` with a Cyrillic ``а`` is a different string
that looks the same: its *skeleton* (every character replaced by the smallest code point among it and its
homoglyphs, from Unicode's confusables data as shipped by ``confusable-homoglyphs``) equals the skeleton of
``acme``, and the ledger refuses to register a second advertiser with a registered skeleton.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from adtarget._core._unicode import INVISIBLE, nfkc_casefold, representative
from adtarget.exceptions import ParameterError

__all__ = ["canonical_advertiser", "skeleton"]

_MAX_LENGTH = 200
# 16 hex digits in a row is the shape of a pseudonym: an advertiser name never looks like one (the leak scan
# of reports would not tell them apart)
_PSEUDONYM_SHAPE = re.compile(r"[0-9a-f]{16}")


_REFUSED_CATEGORIES = frozenset(["Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"])
#: scripts whose letters copy Latin ones: a name may use one of them, never two
_LOOK_ALIKE_SCRIPTS = frozenset(["LATIN", "GREEK", "CYRILLIC"])


def canonical_advertiser(value: Any) -> str:
    """The canonical advertiser id of a name: NFKC → casefold → NFKC, checked.

    Raises ParameterError (naming the parameter ``advertiser``) for a non-string, an empty or over-long name,
    control, format, separator, surrogate, private-use, unassigned or invisible characters, leading, trailing
    or doubled whitespace, letters of two look-alike scripts (Latin, Greek, Cyrillic) in one name, or a run of
    16 hex digits.
    """
    from confusable_homoglyphs.categories import alias

    if not isinstance(value, str):
        raise ParameterError(f"advertiser must be a string, got {type(value).__name__}")
    name = nfkc_casefold(value)
    if not 1 <= len(name) <= _MAX_LENGTH:
        raise ParameterError(f"advertiser must have 1 to {_MAX_LENGTH} characters, got {len(name)}")
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES or ord(c) in INVISIBLE for c in name):
        raise ParameterError(f"advertiser must not contain control, format, separator, unassigned or invisible "
                             f"characters, got {value!r}")
    if name != name.strip() or "  " in name:
        raise ParameterError(f"advertiser must not start or end with whitespace or hold two in a row, "
                             f"got {value!r}")
    scripts = {alias(c) for c in unicodedata.normalize("NFKC", value) if c.isalpha()} & _LOOK_ALIKE_SCRIPTS
    if len(scripts) > 1:
        raise ParameterError(f"advertiser must not mix letters of {' and '.join(sorted(scripts))} (look-alike "
                             f"scripts), got {value!r}")
    if _PSEUDONYM_SHAPE.search(name):
        raise ParameterError(f"advertiser must not contain 16 hexadecimal digits in a row (the shape of a "
                             f"pseudonym), got {value!r}")
    return name


def skeleton(canonical_id: str) -> str:
    """The look-alike key of a canonical id: equal skeletons look the same to a reader.

    Combining marks are dropped first (``ạcme``, ``acmé`` and ``acme̶`` share ``acme``'s skeleton): for a
    budget, two advertisers that differ only in accents are one too many.
    """
    base = (c for c in unicodedata.normalize("NFD", canonical_id) if unicodedata.category(c) != "Mn")
    return unicodedata.normalize("NFC", "".join(representative(c) for c in base))
