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
from functools import cache
from typing import Any

from adtarget.exceptions import ParameterError

__all__ = ["canonical_advertiser", "skeleton"]

_MAX_LENGTH = 200
# 16 hex digits in a row is the shape of a pseudonym: an advertiser name never looks like one (the leak scan
# of reports would not tell them apart)
_PSEUDONYM_SHAPE = re.compile(r"[0-9a-f]{16}")


def canonical_advertiser(value: Any) -> str:
    """The canonical advertiser id of a name: NFKC → casefold → NFKC, checked.

    Raises ParameterError (naming the parameter ``advertiser``) for a non-string, an empty or over-long name,
    control, format or surrogate characters, leading or trailing whitespace, or a run of 16 hex digits.
    """
    if not isinstance(value, str):
        raise ParameterError(f"advertiser must be a string, got {type(value).__name__}")
    name = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", value).casefold())
    if not 1 <= len(name) <= _MAX_LENGTH:
        raise ParameterError(f"advertiser must have 1 to {_MAX_LENGTH} characters, got {len(name)}")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co", "Cn") for c in name):
        raise ParameterError(f"advertiser must not contain control, format or unassigned characters, "
                             f"got {value!r}")
    if name != name.strip():
        raise ParameterError(f"advertiser must not start or end with whitespace, got {value!r}")
    if _PSEUDONYM_SHAPE.search(name):
        raise ParameterError(f"advertiser must not contain 16 hexadecimal digits in a row (the shape of a "
                             f"pseudonym), got {value!r}")
    return name


def _canonical_char(c: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", c).casefold())


@cache
def _representative(c: str) -> str:
    """The smallest code point among ``c`` and its direct single-character homoglyphs, each in canonical form.

    Not a transitive closure: chaining "looks like" joins unrelated letters (``c`` … ``0`` … ``z``), so,
    as UTS #39's skeleton does, each character maps to one prototype in one step.
    """
    from confusable_homoglyphs.confusables import confusables_data

    forms = {c} | {_canonical_char(g["c"]) for g in confusables_data.get(c, ())}
    return min(f for f in forms if len(f) == 1)


def skeleton(canonical_id: str) -> str:
    """The look-alike key of a canonical id: equal skeletons look the same to a reader."""
    return "".join(_representative(c) for c in canonical_id)
