"""Provenance: objects that only one function can make and that nobody can change, forge or copy changed.

adtarget's promises rest on a few objects that must come from one code path: ``EventBatch`` from ``ingest``,
``EligibleEvents`` from ``apply_gate``, ``InterestProfiles`` from ``build_profiles``, ``SegmentAssignments``
from a segmenter's ``assign``, ``CellCounts`` from ``count_cells``. Each is a :class:`Sealed` handle:

* its state (a frozen record) lives in a module registry keyed by the handle's identity, not on the handle,
  and nothing on the handle leads to it: a handle made with ``object.__new__`` has none,
  ``object.__setattr__`` finds no attribute to set, the handle takes no weak references (a weak reference's
  callback would lead to a registry), and the class refuses subclasses (which could override what a reader
  sees). A handle's ``__del__`` removes its entry, so an identity is never reused while registered;
* it is not a dataclass (``dataclasses.replace`` refuses it), and ``copy``/``deepcopy`` return the handle;
* its arrays are copies in memory the process maps read-only (a sealed Linux ``memfd``, ``PROT_READ``):
  ``setflags(write=True)`` on them or their ``.base`` is refused, and a writable array made from their
  address (``__array_interface__``) faults on the first write instead of changing the data. Where memfd is
  missing (not Linux) they are views on a :class:`_ReadOnlyMemory`, which refuses the first two but not
  the third;
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
import mmap
import os
import pickle
import secrets
from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import numpy as np

from adtarget.exceptions import ProvenanceError

try:
    import fcntl
except ImportError:  # not POSIX: arrays fall back to _ReadOnlyMemory views
    fcntl = None  # type: ignore[assignment]

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
    """An array's memory exported read-only through numpy's array interface (zero-byte arrays, and the
    fallback where sealed memory is missing).

    An array made on it has this object as its base: not an array, no buffer protocol, so numpy never lets a
    view of it become writable. It keeps the owner alive.
    """

    __slots__ = ("__array_interface__", "_owner")

    def __init__(self, owner: np.ndarray) -> None:
        interface = dict(owner.__array_interface__)
        interface["data"] = (interface["data"][0], True)
        self.__array_interface__ = interface
        self._owner = owner


def _held(arr: np.ndarray) -> np.ndarray:
    out = np.asarray(_ReadOnlyMemory(arr))
    return out.view(arr.dtype) if out.dtype != arr.dtype else out  # the interface loses structured dtypes


_ALIGN = 64
_SEALS = (fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
          if hasattr(fcntl, "F_ADD_SEALS") else 0) if fcntl is not None else 0


def _sealed_memory(chunks: list[tuple[int, np.ndarray]], size: int) -> mmap.mmap | None:
    """``size`` bytes holding each (offset, C-contiguous array), mapped read-only; None without memfd."""
    if not (_SEALS and hasattr(os, "memfd_create")):
        return None
    fd = os.memfd_create("adtarget-sealed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size, access=mmap.ACCESS_WRITE) as writable:
            for offset, arr in chunks:
                writable.seek(offset)
                writable.write(arr.reshape(-1).view(np.uint8).data)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)  # no writable mapping, write() or resize ever again
        return mmap.mmap(fd, size, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)


def _sealed_copies(arrays: list[np.ndarray]) -> dict[int, np.ndarray]:
    """id(array) → its read-only copy, all in one mapping (one per sealed object, not per array)."""
    unique = {id(a): a for a in arrays}
    if any(a.dtype.hasobject for a in unique.values()):
        raise ProvenanceError("readonly: object arrays cannot be sealed; convert to a fixed-width dtype")
    plain = {k: np.ascontiguousarray(a) for k, a in unique.items()}
    offsets, size = {}, 0
    for k, a in plain.items():
        offsets[k] = size
        size += -(-a.nbytes // _ALIGN) * _ALIGN
    memory = _sealed_memory([(offsets[k], a) for k, a in plain.items() if a.nbytes], size) if size else None
    if memory is None:
        return {k: _held(a) for k, a in plain.items()}
    return {k: np.frombuffer(memory, dtype=a.dtype, count=a.size, offset=offsets[k]).reshape(a.shape)
            for k, a in plain.items()}


def _arrays(value: Any, out: list[np.ndarray]) -> list[np.ndarray]:
    """Every array inside ``value`` (arrays, mappings, plain tuples)."""
    if isinstance(value, np.ndarray):
        out.append(value)
    elif isinstance(value, Mapping):
        for v in value.values():
            _arrays(v, out)
    elif isinstance(value, tuple) and not hasattr(value, "_fields"):
        for v in value:
            _arrays(v, out)
    return out


def _replaced(value: Any, copies: dict[int, np.ndarray]) -> Any:
    if isinstance(value, np.ndarray):
        return copies[id(value)]
    if isinstance(value, Mapping):
        return MappingProxyType({k: _replaced(v, copies) for k, v in value.items()})
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return tuple(_replaced(v, copies) for v in value)
    return value


def readonly(array: Any) -> np.ndarray:
    """A copy of ``array`` that cannot be written (see the module doc)."""
    arr = np.asarray(array)
    return _sealed_copies([arr])[id(arr)]


def frozen(value: Any) -> Any:
    """``value`` with every array a read-only copy (:func:`readonly`, one mapping for all), mappings as
    read-only proxies, tuples deep."""
    return _replaced(value, _sealed_copies(_arrays(value, [])))


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

    __slots__ = ()
    _maker: ClassVar[str] = ""

    def __init_subclass__(cls, *, maker: str = "", **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if Sealed not in cls.__bases__ or not maker:
            raise TypeError(f"{cls.__name__}: {cls.__mro__[1].__name__} cannot be subclassed")
        if cls.__dict__.get("__slots__") != ():
            raise TypeError(f"{cls.__name__}: a sealed type declares __slots__ = () (no instance attributes)")
        cls._maker = maker

    def __new__(cls, *args: Any, **kwargs: Any) -> Sealed:
        raise ProvenanceError(f"{cls.__name__} can only be made by {cls._maker}")

    @classmethod
    def _issue(cls: type[_S], state: Any) -> _S:
        """A new handle on ``state`` (a frozen dataclass), its arrays made read-only. Owner module only."""
        if is_dataclass(state):
            values = {f.name: getattr(state, f.name) for f in fields(state)}
            sealed = _replaced(values, _sealed_copies(_arrays(tuple(values.values()), [])))
            for name, value in sealed.items():
                object.__setattr__(state, name, value)
        handle = object.__new__(cls)
        _STATES[id(handle)] = (cls, state)
        return handle

    @classmethod
    def _state_of(cls, obj: Any, what: str = "") -> Any:
        """The state of ``obj`` if this class issued it; else ProvenanceError naming ``what`` and the maker."""
        state = _state(obj) if type(obj) is cls else None
        if state is None:
            got = type(obj).__name__ if type(obj) is not cls else f"a {cls.__name__} not made by {cls._maker}"
            raise ProvenanceError(f"{what or 'argument'}: must be a {cls.__name__} made by {cls._maker}; "
                                  f"got {got}")
        return state

    @classmethod
    def _is_issued(cls, obj: Any) -> bool:
        return type(obj) is cls and _state(obj) is not None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        state = _state(self)
        if state is None:
            raise ProvenanceError(f"this {type(self).__name__} was not made by {self._maker}: it holds nothing")
        if name.startswith("_") or name not in _field_names(state):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(state, name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __del__(self) -> None:
        states = _STATES  # a module global: None-d out while the interpreter shuts down
        entry = states.get(id(self)) if isinstance(states, dict) else None
        if entry is not None and entry[0] is type(self):
            del states[id(self)]

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


#: id(handle) → (its class, its state); an entry lives exactly as long as its handle (``Sealed.__del__``)
_STATES: dict[int, tuple[type, Any]] = {}


def _state(handle: Any) -> Any:
    entry = _STATES.get(id(handle))
    return entry[1] if entry is not None and entry[0] is type(handle) else None


def _field_names(state: Any) -> frozenset[str]:
    names = _FIELDS.get(type(state))
    if names is None:
        names = _FIELDS[type(state)] = frozenset(f.name for f in fields(state))
    return names


_FIELDS: dict[type, frozenset[str]] = {}
