"""Unicode identity of names: the NFKC_Casefold form, the characters that show as nothing, and what one
character looks like (its prototype among its homoglyphs, from Unicode's confusables data as shipped by
``confusable-homoglyphs``). Advertiser ids (``budget``) and the identifying-column check (``events``) read
names the same way: ``ｅｍａｉｌ``, ``е-mail`` with a Cyrillic ``е`` and ``e\\u200bmail`` are all ``email``."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

__all__ = ["INVISIBLE", "latin_look", "nfkc_casefold", "representative", "visible"]

#: characters that show as nothing (or as a blank) although they are not control or format characters
INVISIBLE = frozenset([0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0,
                       *range(0x180B, 0x1810), *range(0xFE00, 0xFE10), *range(0xE0100, 0xE01F0)])
_SMALL_CAPITAL = re.compile(r"LATIN LETTER SMALL CAPITAL ([A-Z])$")


def nfkc_casefold(text: str) -> str:
    """NFKC, then case-folded, then NFKC again (the "NFKC_Casefold" identity of UAX #31 / UTS #39)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _is_ascii_alnum(text: str) -> bool:
    return text.isascii() and text.isalnum()


@cache
def representative(c: str) -> str:
    """What ``c`` looks like, in one step (not a transitive closure: chaining "looks like" joins unrelated
    letters, ``c`` … ``0`` … ``z``), from its homoglyphs in canonical form, as UTS #39's skeleton maps each
    character to one prototype: an ASCII letter or digit it looks like (``а`` → ``a``), a letter pair an ASCII
    letter looks like (``m`` → ``rn``), a small capital's letter (``ᴀ`` → ``a``), else the smallest code point."""
    from confusable_homoglyphs.confusables import confusables_data

    forms = {c} | {nfkc_casefold(g["c"]) for g in confusables_data.get(c, ())}
    pairs = sorted(f for f in forms if len(f) > 1 and _is_ascii_alnum(f))
    if c.isascii() and pairs:
        return pairs[0]
    small = _SMALL_CAPITAL.match(unicodedata.name(c, ""))
    if small:
        return small.group(1).lower()
    single = [f for f in forms if len(f) == 1]
    ascii_forms = [f for f in single if _is_ascii_alnum(f)]
    return min(ascii_forms or single)


def visible(text: str) -> str:
    """``text`` without format characters (zero-width joiners, soft hyphens, bidi marks), control characters
    and the characters in :data:`INVISIBLE`."""
    return "".join(c for c in text if unicodedata.category(c) not in ("Cf", "Cc") and ord(c) not in INVISIBLE)


def latin_look(text: str) -> str:
    """What a name looks like in ASCII: NFKC_Casefold, invisible characters and accents dropped, and each
    other non-ASCII letter replaced by the ASCII letter it looks like when it has one (``рhоnе`` → ``phone``);
    ASCII is kept as is, and letters with no ASCII look-alike stay."""
    base = unicodedata.normalize("NFD", visible(nfkc_casefold(text)))
    out = []
    for c in base:
        if unicodedata.category(c) == "Mn":
            continue
        if not c.isascii():
            look = representative(c)
            c = look if len(look) == 1 and _is_ascii_alnum(look) else c
        out.append(c)
    return "".join(out)
