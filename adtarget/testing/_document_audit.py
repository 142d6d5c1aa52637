"""A black-box ε audit of whole advertiser documents, not only of the numbers a sampler returns.

An advertiser receives JSON documents, and a leak can sit in any byte of them: a ``report_id`` that hashes the
exact counts, which segments appear, how many were suppressed, whether a stored report is handed back on a
repeated query. :func:`audit_documents` runs a mechanism many times on two neighbouring datasets, turns every
*transcript* (the documents one trial hands out, in order) into output events, and then applies exactly the
statistics of :func:`~adtarget.testing.audit_epsilon`: choose the most distinguishing event on one half of the
trials, bound its two probabilities with Clopper-Pearson on the other half, ``ε >= log((P1_lower - δ) / P2_upper)``.

Events (atoms) of a transcript, all generic (nothing here knows the report schema):

* ``document i bytes hash to blake2b:…`` — the whole document (a deterministic id, a document that never changes);
* ``document i is byte-identical to document j`` (i < j) — a stored report reused;
* ``document i <path> == <value>`` for string, boolean and null leaves, and ``document i has <path>`` for every
  object key and array element (a segment or a breakdown cell appearing);
* ``document i <path> >= t`` / ``<= t`` for numeric leaves, array lengths (``len(<path>)``) and the number of
  documents, with thresholds from quantiles and extremes as in ``audit_epsilon``; a missing value is never in
  a threshold event.

Each categorical atom is also tested negated, and every event in both dataset orders. Paths read like
``segments[iab-2.2:1].size``: arrays whose elements are all objects with distinct ``segment_id`` values are
keyed by that id, other arrays by position. A document that is not valid JSON gives its byte atoms only.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import Any

import numpy as np

from adtarget.exceptions import ParameterError
from adtarget.testing._epsilon_audit import (
    EpsilonAudit,
    EpsilonViolation,
    _beta_bounds,
    _candidates,
    _checked,
    _log_ratio,
    _tail_counts,
    clopper_pearson,
)

__all__ = ["DocumentAudit", "DocumentLeak", "audit_documents"]

DocumentMechanism = Callable[[Any, int], Sequence[str | bytes]]
_SEED_LIMIT = 2**31 - 1
_SHOWN = 40  # characters of a value shown in an event's description


class DocumentLeak(EpsilonViolation):
    """A document audit's lower bound on ε exceeds the claimed ε: some output event of the documents leaks."""


@dataclass(frozen=True)
class DocumentAudit(EpsilonAudit):
    """Outcome of :func:`audit_documents`: the fields of :class:`EpsilonAudit`, where ``event`` names the
    document, the path, the kind of test and the dataset order, e.g. ``document 0 report_id == "9f3c…" (dataset
    vs neighbour)`` (values are shown: test worlds only), and ``n_samples`` counts held-out trials."""

    def raise_if_violated(self) -> DocumentAudit:
        """Return ``self``, or raise :class:`DocumentLeak`."""
        if not self.passed:
            raise DocumentLeak(f"documents leak: ε lower bound {self.epsilon_lower_bound:.3f} exceeds the claimed "
                               f"ε {self.claimed_epsilon:g} at confidence {self.confidence:g} (event {self.event})")
        return self

    def __str__(self) -> str:
        return (f"DocumentAudit(claimed ε={self.claimed_epsilon:g}, lower bound={self.epsilon_lower_bound:.3f} "
                f"at confidence {self.confidence:g}, event {self.event}, {self.n_samples} held-out trials)")


# --- featurisation ---------------------------------------------------------------------------------------------
def _segment_keys(items: list[Any]) -> list[str] | None:
    """The ``segment_id`` of every element, when all are objects with distinct scalar ids; else None."""
    if not items or not all(isinstance(x, dict) and isinstance(x.get("segment_id"), (str, int)) for x in items):
        return None
    keys = [str(x["segment_id"]) for x in items]
    return keys if len(set(keys)) == len(keys) else None


def _children(node: dict[str, Any] | list[Any], path: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of each member of a JSON object or array."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield (f"{path}.{key}" if path else key), child
    else:
        keys = _segment_keys(node)
        for i, child in enumerate(node):
            yield f"{path}[{keys[i] if keys else i}]", child


def _pruned(node: Any, path: str, ignore: frozenset[str]) -> Any:
    """``node`` without the ignored paths (and what lies under them)."""
    if isinstance(node, dict):
        return {key: _pruned(child, p, ignore) for key, (p, child) in zip(node, _children(node, path))
                if p not in ignore}
    if isinstance(node, list):
        return [_pruned(child, p, ignore) for p, child in _children(node, path) if p not in ignore]
    return node


class _Encoder:
    """Turns transcripts into atom ids and numeric columns, one vocabulary shared by both datasets."""

    def __init__(self, ignore: frozenset[str]) -> None:
        self.ignore = ignore
        self.atoms: dict[tuple[Any, ...], int] = {}
        self.columns: dict[tuple[int, str], int] = {}

    def transcript(self, documents: Sequence[bytes]) -> tuple[np.ndarray, dict[int, float]]:
        """(sorted unique atom ids, {column id: value}) of one trial."""
        ids: list[int] = []
        numbers: dict[int, float] = {self._column(-1, "number of documents"): float(len(documents))}
        parsed = [_parsed(raw) for raw in documents]
        forms = [self._form(raw, doc) for raw, doc in zip(documents, parsed)]
        for i, form in enumerate(forms):
            ids.append(self._atom(("bytes", i, hashlib.blake2b(form, digest_size=8).hexdigest())))
            ids.extend(self._atom(("equal", j, i)) for j in range(i) if forms[j] == form)
        for i, doc in enumerate(parsed):
            if doc is not _INVALID:
                self._walk(doc, "", i, ids, numbers)
        return np.unique(np.array(ids, dtype=np.int64)), numbers

    def _form(self, raw: bytes, doc: Any) -> bytes:
        """What the byte atoms see: the raw bytes, or the canonical JSON without the ignored paths."""
        if not self.ignore or doc is _INVALID:
            return raw
        return json.dumps(_pruned(doc, "", self.ignore), sort_keys=True, separators=(",", ":")).encode()

    def _atom(self, key: tuple[Any, ...]) -> int:
        return self.atoms.setdefault(key, len(self.atoms))

    def _column(self, doc: int, path: str) -> int:
        return self.columns.setdefault((doc, path), len(self.columns))

    def _walk(self, node: Any, path: str, doc: int, ids: list[int], numbers: dict[int, float]) -> None:
        if isinstance(node, (dict, list)):
            if isinstance(node, list):
                numbers[self._column(doc, f"len({path})")] = float(len(node))
            for p, child in _children(node, path):
                if p not in self.ignore:
                    ids.append(self._atom(("key", doc, p)))
                    self._walk(child, p, doc, ids, numbers)
        elif _is_number(node) and _finite(node):
            numbers[self._column(doc, path)] = float(node)
        else:  # str, bool, null, and numbers a float cannot hold (kept as their JSON text)
            ids.append(self._atom(("value", doc, path, json.dumps(node) if _is_number(node) else node)))


_INVALID = object()


def _parsed(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return _INVALID


def _is_number(node: Any) -> bool:
    return isinstance(node, (int, float)) and not isinstance(node, bool)


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(float(number))
    except OverflowError:
        return False


class _Side:
    """One dataset's featurised trials: (trial, atom id) pairs and, per numeric column, (trial, value) pairs."""

    def __init__(self, trials: list[tuple[np.ndarray, dict[int, float]]]) -> None:
        self.n = len(trials)
        self.atom_trial = np.repeat(np.arange(self.n), [ids.size for ids, _ in trials])
        self.atom_id = np.concatenate([ids for ids, _ in trials] + [np.zeros(0, np.int64)])
        cols = np.concatenate([np.fromiter(numbers, np.int64, len(numbers)) for _, numbers in trials]
                              + [np.zeros(0, np.int64)])
        values = np.concatenate([np.fromiter(numbers.values(), np.float64, len(numbers)) for _, numbers in trials]
                                + [np.zeros(0)])
        trial = np.repeat(np.arange(self.n), [len(numbers) for _, numbers in trials])
        order = np.argsort(cols, kind="stable")
        self._trial, self._value = trial[order], values[order]
        starts = np.unique(cols[order], return_index=True, return_counts=True)
        self._bounds = {int(c): (int(lo), int(k)) for c, lo, k in zip(*starts)}

    def column(self, col: int, first: int, stop: int) -> np.ndarray:
        """Values of numeric column ``col`` in trials ``first <= t < stop`` (missing ones left out)."""
        lo, count = self._bounds.get(col, (0, 0))
        trial, value = self._trial[lo:lo + count], self._value[lo:lo + count]
        return value[(trial >= first) & (trial < stop)]

    def atom_counts(self, n_atoms: int, first: int, stop: int) -> np.ndarray:
        """How many trials ``first <= t < stop`` hold each atom."""
        keep = (self.atom_trial >= first) & (self.atom_trial < stop)
        return np.bincount(self.atom_id[keep], minlength=n_atoms)


# --- events ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Event:
    """An output event: atom ``index`` present/absent, or numeric column ``index`` ``>=``/``<=`` threshold."""

    test: str
    index: int
    swapped: bool
    threshold: float = 0.0

    def hits(self, side: _Side, n_atoms: int, first: int, stop: int) -> int:
        """Trials ``first <= t < stop`` of ``side`` whose transcript is in the event."""
        if self.test in ("present", "absent"):
            k = int(side.atom_counts(n_atoms, first, stop)[self.index])
            return k if self.test == "present" else stop - first - k
        values = side.column(self.index, first, stop)
        return int(np.count_nonzero(values >= self.threshold if self.test == ">=" else values <= self.threshold))


Candidates = Iterator[tuple[np.ndarray, np.ndarray, Callable[[int], _Event]]]


def _atom_candidates(a: _Side, b: _Side, n_atoms: int, half: int) -> Candidates:
    ka, kb = a.atom_counts(n_atoms, 0, half), b.atom_counts(n_atoms, 0, half)
    for test, ca, cb in (("present", ka, kb), ("absent", half - ka, half - kb)):
        for swapped, k1, k2 in ((False, ca, cb), (True, cb, ca)):
            yield k1, k2, partial(_Event, test, swapped=swapped)


def _threshold_event(test: str, col: int, swapped: bool, thresholds: np.ndarray, i: int) -> _Event:
    return _Event(test, col, swapped, float(thresholds[i]))


def _threshold_candidates(a: _Side, b: _Side, n_columns: int, half: int) -> Candidates:
    for col in range(n_columns):
        xa, xb = a.column(col, 0, half), b.column(col, 0, half)
        if xa.size + xb.size == 0:
            continue
        t = _candidates(xa, xb)
        ge_a, le_a = _tail_counts(xa, t)
        ge_b, le_b = _tail_counts(xb, t)
        for test, ka, kb in ((">=", ge_a, ge_b), ("<=", le_a, le_b)):
            for swapped, k1, k2 in ((False, ka, kb), (True, kb, ka)):
                yield k1, k2, partial(_threshold_event, test, col, swapped, t)


def _best_event(a: _Side, b: _Side, encoder: _Encoder, half: int, alpha: float, delta: float) -> _Event:
    """The event maximising the bound on the selection half (trials ``< half``); bounds are tabulated once."""
    lower, upper = _beta_bounds(np.arange(half + 1), half, alpha)
    best: tuple[float, _Event] = (-np.inf, _Event("present", 0, False))
    n_atoms, n_columns = len(encoder.atoms), len(encoder.columns)
    for k1, k2, make in chain(_atom_candidates(a, b, n_atoms, half), _threshold_candidates(a, b, n_columns, half)):
        if k1.size == 0:
            continue
        score = _log_ratio(lower[k1], upper[k2], delta)
        i = int(np.argmax(score))
        if score[i] > best[0]:
            best = (float(score[i]), make(i))
    return best[1]


def _shown(value: Any) -> str:
    """A leaf value as JSON, a long string cut to its first characters."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return json.dumps(value[:_SHOWN] + "…", ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def _describe(event: _Event, encoder: _Encoder) -> str:
    order = "neighbour vs dataset" if event.swapped else "dataset vs neighbour"
    if event.test in (">=", "<="):
        doc, path = list(encoder.columns)[event.index]
        where = path if doc < 0 else f"document {doc} {path}"
        return f"{where} {event.test} {event.threshold:g} ({order})"
    key = list(encoder.atoms)[event.index]
    if key[0] == "bytes":
        text = f"document {key[1]} bytes hash to blake2b:{key[2][:12]}"
    elif key[0] == "equal":
        text = f"document {key[2]} is byte-identical to document {key[1]}"
    elif key[0] == "key":
        text = f"document {key[1]} has {key[2]}"
    else:
        text = f"document {key[1]} {key[2] or '(root)'} == {_shown(key[3])}"
    return f"{text if event.test == 'present' else f'not ({text})'} ({order})"


# --- the audit ---------------------------------------------------------------------------------------------------
def _checked_documents(mechanism: Any, random_state: Any, ignore: Any) -> frozenset[str]:
    if not callable(mechanism):
        raise ParameterError(f"mechanism must be callable(dataset, seed) -> documents, got {type(mechanism).__name__}")
    if isinstance(random_state, bool) or not isinstance(random_state, int) or not 0 <= random_state < 2**32:
        raise ParameterError(f"random_state must be an integer in [0, 2**32), got {random_state!r}")
    if isinstance(ignore, (str, bytes)) or not isinstance(ignore, (tuple, list, set, frozenset)):
        raise ParameterError(f"ignore must be a tuple of paths (e.g. ('created_at',)), got {ignore!r}")
    if not all(isinstance(p, str) and p for p in ignore):
        raise ParameterError(f"ignore must hold non-empty path strings, got {ignore!r}")
    return frozenset(ignore)


def _seeds(random_state: int, n: int) -> list[int]:
    """``n`` distinct trial seeds derived from ``random_state``."""
    rng, seeds = np.random.RandomState(random_state), dict[int, None]()
    while len(seeds) < n:  # an insertion-ordered set: a repeated draw is dropped and drawn again
        seeds.update(dict.fromkeys(rng.randint(0, _SEED_LIMIT, size=n - len(seeds)).tolist()))
    return list(seeds)


def _documents(mechanism: DocumentMechanism, dataset: Any, seed: int) -> list[bytes]:
    out = mechanism(dataset, seed)
    if isinstance(out, (str, bytes)) or not isinstance(out, Sequence) or \
            not all(isinstance(d, (str, bytes)) for d in out):
        raise ParameterError("mechanism must return a sequence of documents (str or bytes), "
                             f"got {type(out).__name__}")
    return [d.encode("utf-8", "surrogatepass") if isinstance(d, str) else d for d in out]


def audit_documents(mechanism: DocumentMechanism, dataset: Any, neighbour: Any, *, claimed_epsilon: float,
                    claimed_delta: float = 0.0, n_samples: int = 4000, confidence: float = 0.95,
                    random_state: int = 0, ignore: Sequence[str] = ()) -> DocumentAudit:
    """Lower-bound the ε of everything an advertiser receives, from the documents themselves.

    Parameters
    ----------
    mechanism : callable(dataset, seed) -> sequence of str or bytes
        Runs ONE trial with the integer ``seed`` (seed all its noise and ids from it) and returns its
        transcript: the documents an advertiser would receive in that trial, in order (one report; two for a
        repeated query; an error body is a document too).
    dataset, neighbour : any
        Two neighbouring inputs (one person added or removed).
    claimed_epsilon, claimed_delta : float
        The guarantee under test, for the whole transcript.
    n_samples : int, default 4000
        Trials per dataset; the first half choose the event, the second half estimate its probabilities. The
        two datasets are run with the same seed sequence, interleaved trial by trial.
    confidence : float, default 0.95
        Confidence of the bound (Bonferroni over the two one-sided Clopper-Pearson intervals).
    random_state : int, default 0
        Seed of the trial seeds (the audit is reproducible when the mechanism is).
    ignore : tuple of str, default ()
        Paths, or path prefixes (``privacy`` drops all of ``privacy.…``), left out of every atom, including
        the document hashes and equalities, which then compare the canonical JSON without them. A deliberate,
        narrow escape hatch for a field a test cannot control (``created_at`` from a clock): whatever is
        ignored is not audited, so never ignore a field whose value depends on the data.

    Returns
    -------
    DocumentAudit
        ``passed`` is False (and ``raise_if_violated`` raises :class:`DocumentLeak`) when the bound exceeds
        ``claimed_epsilon``.

    Notes
    -----
    A deterministic leak (an event with P1 = 1, P2 = 0) bounds ε at ``log((1 - a) / a)`` with
    ``a = 1 - ((1 - confidence) / 2) ** (1 / m)`` for ``m`` held-out trials: 6.29 at the default
    (``m = 2000``), 5.60 at ``m = 1000``. A pass proves nothing beyond the events searched (single atoms and
    single thresholds, no conjunctions). Every atom seen is scored (the Clopper-Pearson bounds are tabulated
    once for ``k = 0..m``, so an event costs two look-ups) and each numeric path gets at most 192 thresholds.
    Measured on 2 loaded cores: 4000 trials of one 20-segment report (≈ 700 atoms and 200 numeric paths
    each) audit in ≈ 6 s, the mechanism's own time excluded.
    """
    _checked(claimed_epsilon, claimed_delta, n_samples, confidence)
    encoder = _Encoder(_checked_documents(mechanism, random_state, ignore))
    trials_a, trials_b = [], []
    for seed in _seeds(random_state, n_samples):
        trials_a.append(encoder.transcript(_documents(mechanism, dataset, seed)))
        trials_b.append(encoder.transcript(_documents(mechanism, neighbour, seed)))
    a, b = _Side(trials_a), _Side(trials_b)
    half, alpha = n_samples // 2, (1.0 - confidence) / 2.0
    event = _best_event(a, b, encoder, half, alpha, float(claimed_delta))
    first, second = (b, a) if event.swapped else (a, b)
    n_atoms = len(encoder.atoms)
    k1, k2 = (event.hits(side, n_atoms, half, n_samples) for side in (first, second))
    m = n_samples - half
    p1, p2 = clopper_pearson(k1, m, alpha), clopper_pearson(k2, m, alpha)
    bound = float(_log_ratio(np.array([p1[0]]), np.array([p2[1]]), float(claimed_delta))[0])
    return DocumentAudit(float(claimed_epsilon), float(claimed_delta), bound, confidence,
                         _describe(event, encoder), p1, p2, m)
