"""Provenance: objects that only one function can make and that nobody can change, forge or copy changed.

adtarget's promises rest on a few objects that must come from one code path: ``EventBatch`` from ``ingest``,
``EligibleEvents`` from ``apply_gate``, ``InterestProfiles`` from ``build_profiles``, ``SegmentAssignments``
from a segmenter's ``assign``, ``CellCounts`` from ``count_cells``. Each is a :class:`Sealed` handle:

* its state (a frozen record) lives in a registry of its class, not on the handle: a handle made with
  ``object.__new__`` has none, ``object.__setattr__`` finds no attribute to set, and the class refuses
  subclasses (which could override what a reader sees);
* it is not a dataclass (``dataclasses.replace`` refuses it), and ``copy``/``deepcopy`` return the handle;
* its arrays are read-only views on a :class:`_ReadOnlyMemory`, which is not an array and exports no
  writable buffer, so neither ``setflags(write=True)`` on them nor on anything their ``.base`` leads to
  makes them writable;
* it pickles sealed: a keyed BLAKE2b MAC, under a secret of this process, over the pickled state. Unpickling
  checks the MAC, so a pickle edited by hand is refused. The Spark engine hands the secret to its executors
  inside the task, as it hands them the pseudonym key (:func:`process_secret`, :func:`adopt_secret`).

What Python cannot stop, and this module does not pretend to: code that reads or writes memory below the
object model (``ctypes``, ``gc.get_referents``), sets private attributes, or calls private functions (also
through a crafted pickle, which can call any function). Such code can as well write its own report; against
it the boundary is a process that runs only adtarget's release (docs/threat-model.md).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import pickle
import secrets
import weakref
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import numpy as np

from adtarget.exceptions import ProvenanceError

__all__ = ["Sealed", "adopt_secret", "frozen", "new_id", "process_secret", "readonly"]

_S = TypeVar("_S", bound="Sealed")
_SECRET = bytearray(secrets.token_bytes(32))
_MAC_BYTES = 32


def process_secret() -> bytes:
    """The key this process seals pickles with (for the Spark engine's tasks only)."""
    return bytes(_SECRET)


def adopt_secret(secret: bytes) -> None:
    """Seal and unseal with ``secret`` from now on: a Spark executor adopts its driver's before it loads a task."""
    if not isinstance(secret, bytes) or len(secret) != 32:
        raise ProvenanceError("secret: must be the 32 bytes of process_secret()")
    _SECRET[:] = secret


def new_id() -> str:
    """A fresh random identifier (128 bits, hex): names an object's lineage without revealing anything."""
    return secrets.token_hex(16)


class _ReadOnlyMemory:
    """An array's memory exported read-only through numpy's array interface.

    An array made on it has this object as its base: not an array, no buffer protocol, so numpy never lets a
    view of it become writable. It keeps the owner alive.
    """

    __slots__ = ("__array_interface__", "_owner")

    def __init__(self, owner: np.ndarray) -> None:
        interface = dict(owner.__array_interface__)
        interface["data"] = (interface["data"][0], True)
        self.__array_interface__ = interface
        self._owner = owner


def readonly(array: Any) -> np.ndarray:
    """``array`` as a read-only array that cannot be made writable (no copy unless it holds objects)."""
    arr = np.asarray(array)
    if isinstance(arr.base, _ReadOnlyMemory) and not arr.flags.writeable:
        return arr
    if arr.dtype.hasobject:
        raise ProvenanceError("readonly: object arrays cannot be sealed; convert to a fixed-width dtype")
    out = np.asarray(_ReadOnlyMemory(arr))
    if out.dtype != arr.dtype:  # the interface loses structured dtypes; keep the original
        out = out.view(arr.dtype)
    return out


def frozen(value: Any) -> Any:
    """``value`` with every array read-only (:func:`readonly`), mappings as read-only proxies, tuples deep."""
    if isinstance(value, np.ndarray):
        return readonly(value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: frozen(v) for k, v in value.items()})
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(frozen(v) for v in value)
    return value


def _plain(value: Any) -> Any:
    """The picklable form of a :func:`frozen` value (plain dicts, arrays as they are)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_plain(v) for v in value)
    return value


def _mac(kind: str, blob: bytes) -> bytes:
    h = hashlib.blake2b(key=bytes(_SECRET), digest_size=_MAC_BYTES, person=b"adtarget-seal")
    h.update(kind.encode())
    h.update(b"\x00")
    h.update(blob)
    return h.digest()


def _unseal(module: str, name: str, blob: bytes, mac: bytes) -> Sealed:
    """Rebuild a sealed object from its pickle: refused unless the MAC is this process's (or its driver's)."""
    cls = getattr(importlib.import_module(module), name)
    if not (isinstance(cls, type) and issubclass(cls, Sealed) and cls is not Sealed):
        raise ProvenanceError(f"{module}.{name} is not a sealed adtarget type")
    if not hmac.compare_digest(_mac(f"{module}.{name}", blob), mac):
        raise ProvenanceError(f"{name}: this pickle was not sealed by this process (or it was altered); only "
                              f"{cls._maker} makes a {name}")
    record_type, values = pickle.loads(blob)  # noqa: S301 - authenticated above: bytes this process sealed
    return cls._issue(record_type(**values))


class Sealed:
    """Base of provenance types: a handle whose state only its owning module can set (see the module doc).

    A subclass names its maker (``class EligibleEvents(Sealed, maker="adtarget.apply_gate")``) and declares its
    public attributes as annotations; reading one returns the state's field of that name. The owning module
    makes handles with ``Cls._issue(state)`` and reads the state of an argument with ``Cls._state_of(obj)``,
    which refuses anything it did not issue.
    """

    __slots__ = ("__weakref__",)
    _maker: ClassVar[str] = ""
    _states: ClassVar[weakref.WeakKeyDictionary[Any, Any]]

    def __init_subclass__(cls, *, maker: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if Sealed not in cls.__bases__ or not maker:
            raise TypeError(f"{cls.__name__}: {cls.__mro__[1].__name__} cannot be subclassed")
        if cls.__dict__.get("__slots__") != ():
            raise TypeError(f"{cls.__name__}: a sealed type declares __slots__ = () (no instance attributes)")
        cls._maker = maker
        cls._states = weakref.WeakKeyDictionary()

    def __new__(cls, *args: Any, **kwargs: Any) -> Sealed:
        raise ProvenanceError(f"{cls.__name__} can only be made by {cls._maker}")

    @classmethod
    def _issue(cls: type[_S], state: Any) -> _S:
        """A new handle on ``state`` (a frozen dataclass), its arrays made read-only. Owner module only."""
        if is_dataclass(state):
            for f in fields(state):
                object.__setattr__(state, f.name, frozen(getattr(state, f.name)))
        handle = object.__new__(cls)
        cls._states[handle] = state
        return handle

    @classmethod
    def _state_of(cls, obj: Any, what: str = "") -> Any:
        """The state of ``obj`` if this class issued it; else ProvenanceError naming ``what`` and the maker."""
        state = cls._states.get(obj) if type(obj) is cls else None
        if state is None:
            got = type(obj).__name__ if type(obj) is not cls else f"a {cls.__name__} not made by {cls._maker}"
            raise ProvenanceError(f"{what or 'argument'}: must be a {cls.__name__} made by {cls._maker}; "
                                  f"got {got}")
        return state

    @classmethod
    def _is_issued(cls, obj: Any) -> bool:
        return type(obj) is cls and obj in cls._states

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        state = type(self)._states.get(self)
        if state is None:
            raise ProvenanceError(f"this {type(self).__name__} was not made by {self._maker}: it holds nothing")
        if name.startswith("_") or name not in _field_names(state):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __copy__(self: _S) -> _S:
        return self

    def __deepcopy__(self: _S, memo: dict[int, Any]) -> _S:
        return self

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return object.__hash__(self)

    def __reduce__(self) -> tuple[Any, tuple[str, str, bytes, bytes]]:
        state = type(self)._state_of(self, "pickle")
        values = {f.name: _plain(getattr(state, f.name)) for f in fields(state)}
        blob = pickle.dumps((type(state), values), protocol=pickle.HIGHEST_PROTOCOL)
        kind = f"{type(self).__module__}.{type(self).__qualname__}"
        return (_unseal, (type(self).__module__, type(self).__qualname__, blob, _mac(kind, blob)))


def _field_names(state: Any) -> frozenset[str]:
    names = _FIELDS.get(type(state))
    if names is None:
        names = _FIELDS[type(state)] = frozenset(f.name for f in fields(state))
    return names


_FIELDS: dict[type, frozenset[str]] = {}
