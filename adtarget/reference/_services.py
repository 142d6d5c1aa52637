"""The service registry: which services exist and which of them may feed advertising (policy promise P9).

A service code is the ``int16`` index of a service in :attr:`ServiceRegistry.names`. A service with its own
privacy policy is outside this policy's scope: it contributes nothing unless it is registered as
ads-permitted. The gate reads :attr:`ServiceRegistry.ads_permitted`, the one switch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

import numpy as np

from adtarget.exceptions import InputFormatError, ParameterError

__all__ = ["Service", "ServiceRegistry"]

_MAX_SERVICES = int(np.iinfo(np.int16).max)
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


@dataclass(frozen=True)
class Service:
    """One service of the company.

    Parameters
    ----------
    name : str
        Non-empty, without surrounding whitespace; the value of the events' ``service`` column.
    ads_permitted : bool
        Whether the service's events may be used for advertising.
    own_policy : bool, default False
        The service has its own privacy policy (it is then out of this policy's scope and should stay
        ``ads_permitted=False`` unless its own policy allows ads use).
    """

    name: str
    ads_permitted: bool
    own_policy: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip():
            raise ParameterError(f"Service.name must be a non-empty string without surrounding whitespace, "
                                 f"got {self.name!r}")
        for attr in ("ads_permitted", "own_policy"):
            value = getattr(self, attr)
            if not isinstance(value, bool | np.bool_):
                raise ParameterError(f"Service.{attr} of {self.name!r} must be a bool, got {value!r}")
            object.__setattr__(self, attr, bool(value))

    def __str__(self) -> str:
        scope = "own privacy policy" if self.own_policy else "this policy"
        return f"{self.name} ({'ads permitted' if self.ads_permitted else 'no ads use'}, {scope})"


@dataclass(frozen=True)
class ServiceRegistry:
    """The registered services, in code order.

    Parameters
    ----------
    services : iterable of Service
        Distinct names; at most 32767 services (codes are int16).

    Attributes
    ----------
    names : tuple of str
    ads_permitted, own_policy : numpy.ndarray of bool (read-only), aligned with ``names``.
    """

    services: tuple[Service, ...]
    names: tuple[str, ...] = field(init=False, repr=False, compare=False)
    ads_permitted: np.ndarray = field(init=False, repr=False, compare=False)
    own_policy: np.ndarray = field(init=False, repr=False, compare=False)
    _sorted_names: np.ndarray = field(init=False, repr=False, compare=False)
    _sorted_codes: np.ndarray = field(init=False, repr=False, compare=False)

    def __init__(self, services: Iterable[Service]) -> None:  # accepts any iterable; stored as a tuple
        object.__setattr__(self, "services", tuple(services))
        self.__post_init__()

    def __post_init__(self) -> None:
        _check_services(self.services)
        names = tuple(s.name for s in self.services)
        order = np.argsort(np.asarray(names, dtype=str), kind="stable").astype(np.int16)
        derived = {
            "names": names,
            "ads_permitted": np.asarray([s.ads_permitted for s in self.services], dtype=bool),
            "own_policy": np.asarray([s.own_policy for s in self.services], dtype=bool),
            "_sorted_names": np.asarray(names, dtype=str)[order],
            "_sorted_codes": order,
        }
        for key, value in derived.items():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False
            object.__setattr__(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ServiceRegistry, (self.services,))

    def __len__(self) -> int:
        return len(self.services)

    def __iter__(self) -> Iterator[Service]:
        return iter(self.services)

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __getitem__(self, name: str) -> Service:
        code = int(self.index_of(name))
        if code < 0:
            raise ParameterError(f"service must be one of {list(self.names)}, got {name!r}")
        return self.services[code]

    def __str__(self) -> str:
        return f"ServiceRegistry of {len(self)} services: " + "; ".join(str(s) for s in self.services)

    def index_of(self, names: Any) -> np.ndarray:
        """Service codes (int16) of service names, scalar or array-like; -1 for unknown names.

        Vectorised: one ``np.searchsorted`` into the few sorted names (about log2(n_services) string
        comparisons per value; cheaper than finding the distinct values first, which sorts the query).
        """
        query = np.asarray(names)
        query = query.astype(str) if query.dtype.kind != "U" else query
        if query.size == 0 or not self.services:
            return np.full(query.shape, -1, dtype=np.int16)
        pos = np.minimum(np.searchsorted(self._sorted_names, query), len(self) - 1)
        return np.where(self._sorted_names[pos] == query, self._sorted_codes[pos], -1).astype(np.int16)

    def with_service(self, service: Service) -> ServiceRegistry:
        """A new registry with ``service`` appended (its name must be new)."""
        return ServiceRegistry((*self.services, service))

    @classmethod
    def synthetic(cls) -> ServiceRegistry:
        """The services of ``adtarget.synth``: six ads-permitted services and ``health_plus``.

        ``health_plus`` has its own privacy policy and is not registered as ads-permitted, so its events
        contribute nothing.
        """
        permitted = [Service(n, ads_permitted=True) for n in ("video", "news", "games", "search", "music",
                                                                "payments")]
        return cls([*permitted, Service("health_plus", ads_permitted=False, own_policy=True)])

    @classmethod
    def from_csv(cls, path: str | PathLike[str]) -> ServiceRegistry:
        """Read a registry from a CSV with columns ``service``, ``ads_permitted`` and optional ``own_policy``.

        Booleans are ``true/false``, ``1/0``, ``yes/no`` (any case); an empty ``own_policy`` means false.

        Raises
        ------
        InputFormatError
            Missing or empty file, missing column, bad boolean, empty or duplicate service name — naming
            the line and column.
        """
        return cls(_read_csv(path))


def _check_services(services: tuple[Service, ...]) -> None:
    bad = [s for s in services if not isinstance(s, Service)]
    if bad:
        raise ParameterError(f"services must be Service objects, got {type(bad[0]).__name__}")
    if len(services) > _MAX_SERVICES:
        raise ParameterError(f"services must number at most {_MAX_SERVICES} (int16 codes), got {len(services)}")
    seen: set[str] = set()
    for s in services:
        if s.name in seen:
            raise ParameterError(f"services must have distinct names, got {s.name!r} twice")
        seen.add(s.name)


def _read_csv(path: str | PathLike[str]) -> list[Service]:
    import csv
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise InputFormatError(f"service registry file {str(path)!r} does not exist")
    with open(p, encoding="utf-8-sig", newline="") as f:
        rows = [(k + 1, r) for k, r in enumerate(csv.reader(f)) if any(c.strip() for c in r)]
    if not rows:
        raise InputFormatError(f"service registry file {p.name!r} is empty: expected columns "
                               f"service, ads_permitted[, own_policy]")
    header = [c.strip().lower() for c in rows[0][1]]
    missing = [c for c in ("service", "ads_permitted") if c not in header]
    if missing:
        raise InputFormatError(f"service registry file {p.name!r}: missing column(s) {missing}; found {header}")
    if len(rows) == 1:
        raise InputFormatError(f"service registry file {p.name!r} has a header but no services")
    return _services_from_rows(p.name, header, rows[1:])


def _services_from_rows(source: str, header: list[str], rows: list[tuple[int, list[str]]]) -> list[Service]:
    services: list[Service] = []
    first_line: dict[str, int] = {}
    for line, row in rows:
        cell = dict(zip(header, (c.strip() for c in row), strict=False))
        name = cell.get("service", "")
        if not name:
            raise InputFormatError(f"service registry file {source!r}: line {line}, column 'service' is empty")
        if name in first_line:
            raise InputFormatError(f"service registry file {source!r}: line {line}, column 'service' repeats "
                                   f"{name!r} (first at line {first_line[name]})")
        first_line[name] = line
        flags = {c: _parse_bool(source, line, c, cell.get(c, ""), required=(c == "ads_permitted"))
                 for c in ("ads_permitted", "own_policy")}
        services.append(Service(name, **flags))
    return services


def _parse_bool(source: str, line: int, column: str, value: str, *, required: bool) -> bool:
    low = value.lower()
    if low in _TRUE or low in _FALSE or (low == "" and not required):
        return low in _TRUE
    raise InputFormatError(f"service registry file {source!r}: line {line}, column {column!r} must be "
                           f"true/false (or 1/0, yes/no), got {value!r}")

