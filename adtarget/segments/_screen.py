"""ProxyScreen: the segment ids a DP proxy audit (``adtarget.reports.audit_proxies``), or a curator, screened out
as sensitive proxies. A catalog built with a screen leaves them out, so which segments a release offers never
depends on data at release time."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from adtarget._core._atomic import atomic_path
from adtarget.budget._spec import PrivacyBudget
from adtarget.exceptions import InputFormatError, ParameterError

__all__ = ["ProxyScreen"]

_SCREEN_SCHEMA = "adtarget.proxy_screen/v1"


@dataclass(frozen=True)
class ProxyScreen:
    """Segment ids screened out as sensitive proxies, and the DP audits the decision came from.

    A screen is public: a catalog built with it (``SegmentCatalog(..., screen=)``,
    ``SegmentCatalog.default(safe, screen=)``) leaves the screened segments out, so which segments a release
    offers never depends on data at release time.

    Parameters
    ----------
    blocked : iterable of str
        Segment ids to leave out (stored sorted, unique).
    audits : iterable of (str, PrivacyBudget), default ()
        The DP proxy audits behind ``blocked`` (their ``artefact_id`` and budget). Each advertiser is charged
        each audit's ε once, at its first release from a screened catalog. A hand-curated screen has none.
    """

    blocked: tuple[str, ...]
    audits: tuple[tuple[str, PrivacyBudget], ...] = field(default=())

    def __post_init__(self) -> None:
        blocked = self.blocked
        if isinstance(blocked, str) or not isinstance(blocked, Iterable):
            raise ParameterError(f"blocked must be an iterable of segment ids, got {type(blocked).__name__}")
        ids = tuple(sorted(set(blocked)))
        if not all(isinstance(s, str) and s for s in ids):
            raise ParameterError("blocked must hold non-empty segment id strings")
        audits = tuple((str(a), b) for a, b in self.audits)
        if not all(isinstance(b, PrivacyBudget) for _, b in audits):
            raise ParameterError("audits must be (artefact id, PrivacyBudget) pairs")
        object.__setattr__(self, "blocked", ids)
        object.__setattr__(self, "audits", audits)

    def allows(self, segment_id: str) -> bool:
        """Whether ``segment_id`` passes the screen."""
        return segment_id not in set(self.blocked)

    def to_json(self) -> str:
        """The screen as JSON (``adtarget.proxy_screen/v1``)."""
        return json.dumps({"schema": _SCREEN_SCHEMA, "blocked": list(self.blocked),
                           "audits": [{"artefact_id": a, "epsilon": b.epsilon, "delta": b.delta}
                                      for a, b in self.audits]}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> ProxyScreen:
        """Parse :meth:`to_json`; InputFormatError naming what is wrong."""
        try:
            doc = json.loads(text)
            if doc.get("schema") != _SCREEN_SCHEMA:
                raise InputFormatError(f"proxy screen: schema must be {_SCREEN_SCHEMA!r}")
            audits = tuple((str(a["artefact_id"]), PrivacyBudget(float(a["epsilon"]), float(a["delta"])))
                           for a in doc.get("audits", []))
            return cls(tuple(doc["blocked"]), audits)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, InputFormatError):
                raise
            raise InputFormatError(f"proxy screen: not a {_SCREEN_SCHEMA} document ({type(exc).__name__})") \
                from None

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_json` atomically; returns the path."""
        target = Path(path)
        with atomic_path(target) as temporary:
            temporary.write_text(self.to_json() + "\n", encoding="utf-8")
        return target

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ProxyScreen:
        """Read a screen file written by :meth:`write`."""
        p = Path(path)
        if not p.is_file():
            raise InputFormatError(f"proxy screen file {str(p)!r} does not exist or is not a file")
        return cls.from_json(p.read_text("utf-8"))

    def __str__(self) -> str:
        if not self.audits:
            return f"ProxyScreen({len(self.blocked)} segment(s) blocked, hand-curated)"
        spent = math.fsum(b.epsilon for _, b in self.audits)
        return f"ProxyScreen({len(self.blocked)} segment(s) blocked, from {len(self.audits)} DP audit(s), ε={spent:.6g})"
