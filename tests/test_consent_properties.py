"""Property tests of the ConsentLedger: snapshot(as_of) equals (1) a naive replay of the history table read
with plain sqlite3 and (2) an independent in-memory model of the documented semantics (last writer wins by
(updated_at; tied records merged field by field into the most restrictive state); deletion records are scrubbed and erase what they supersede)."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget.consent import ConsentLedger, ConsentSnapshot
from adtarget.events import Pseudonymizer
from adtarget.events._pseudonym import hex_to_pseudonyms
from adtarget.exceptions import ConsentError

T0 = 1_700_000_000
PZ = Pseudonymizer(bytes(range(32)))
FIELDS = ("birth_year", "opted_in", "cross_service", "policy_version", "deleted", "terminated",
          "location_deleted", "jurisdiction")

rows = st.fixed_dictionaries({
    "person": st.integers(0, 4), "t": st.integers(0, 8), "opted_in": st.booleans(),
    "cross_service": st.booleans(), "deleted": st.booleans() | st.just(False), "terminated": st.booleans(),
    "location_deleted": st.booleans(), "birth_year": st.sampled_from([None, 1970, 2012]),
    "jurisdiction": st.sampled_from([None, "CN", "US-CA"]), "policy_version": st.sampled_from(["2016-01-01",
                                                                                              "2018-05-14"]),
})
ops = st.one_of(
    st.tuples(st.just("import"), st.lists(rows, min_size=1, max_size=8)),
    st.tuples(st.just("opt_out"), st.integers(0, 4), st.integers(0, 8)),
    st.tuples(st.just("cross"), st.integers(0, 4), st.booleans(), st.integers(0, 8)),
    st.tuples(st.just("forget"), st.integers(0, 4)),
)


def _columns(batch: list[dict[str, Any]]) -> dict[str, list[Any]]:
    return {
        "person_id": [f"user-{r['person']}" for r in batch],
        "birth_year": [r["birth_year"] for r in batch],
        "ads_personalization": ["opt_in" if r["opted_in"] else "opt_out" for r in batch],
        "cross_service": [r["cross_service"] for r in batch],
        "policy_version": [r["policy_version"] for r in batch],
        "updated_at": [T0 + r["t"] for r in batch],
        "deleted": [r["deleted"] for r in batch],
        "terminated": [r["terminated"] for r in batch],
        "location_deleted": [r["location_deleted"] for r in batch],
        "jurisdiction": [r["jurisdiction"] for r in batch],
    }


def merge(states: list[dict[str, Any]]) -> dict[str, Any]:
    """Tied records, written plainly: any deletion/termination/location deletion; opted in and cross-service only
    if all are; an unknown birth year if any is unknown, else the youngest; the oldest policy version, the first
    known jurisdiction."""
    deleted = any(s["deleted"] for s in states)
    years = [s["birth_year"] for s in states]
    places = sorted(s["jurisdiction"] for s in states if s["jurisdiction"])
    return {
        "deleted": deleted, "terminated": any(s["terminated"] for s in states),
        "location_deleted": deleted or any(s["location_deleted"] for s in states),
        "opted_in": not deleted and all(s["opted_in"] for s in states),
        "cross_service": not deleted and all(s["cross_service"] for s in states),
        "birth_year": 0 if deleted or 0 in years else max(years),
        "jurisdiction": "" if deleted or not places else places[0],
        "policy_version": min(s["policy_version"] for s in states),
    }


class Model:
    """The documented semantics, written plainly: per person a list of (updated_at, seq, state)."""

    def __init__(self) -> None:
        self.records: dict[int, list[tuple[int, int, dict[str, Any]]]] = {}
        self.seq = 0

    def write(self, person: int, at: int, state: dict[str, Any]) -> None:
        if state["deleted"]:
            state = {**state, "birth_year": 0, "opted_in": False, "cross_service": False,
                     "location_deleted": True, "jurisdiction": ""}
        self.seq += 1
        mine = self.records.setdefault(person, [])
        mine.append((at, self.seq, state))
        deletions = [(a, s) for a, s, st_ in mine if st_["deleted"]]
        if deletions:  # the latest deletion supersedes every record up to its time (a tie: it is stricter)
            keep = max(deletions)
            mine[:] = [r for r in mine if r[0] > keep[0] or (r[0], r[1]) == keep]

    def state(self, person: int, as_of: float = float("inf")) -> tuple[int, int, dict[str, Any]] | None:
        """The latest record; records tied on ``updated_at`` merged (:func:`merge`)."""
        candidates = [r for r in self.records.get(person, []) if r[0] <= as_of]
        if not candidates:
            return None
        at = max(r[0] for r in candidates)
        tied = [r for r in candidates if r[0] == at]
        return at, max(r[1] for r in tied), merge([r[2] for r in tied])

    def snapshot(self, as_of: float = float("inf")) -> dict[int, dict[str, Any]]:
        out = {}
        for person in self.records:
            found = self.state(person, as_of)
            if found is not None:
                out[int(PZ.pseudonymize([f"user-{person}"])[0])] = found[2]
        return out


def _apply(ledger: ConsentLedger, model: Model, op: tuple[Any, ...]) -> None:
    kind = op[0]
    if kind == "import":
        ledger.import_records(_columns(op[1]), now=T0 + 100)
        for r in op[1]:  # the ledger writes a batch sorted by pseudonym, stable: per person, input order
            model.write(r["person"], T0 + r["t"], {f: (r[f] or (0 if f == "birth_year" else "")) if f in (
                "birth_year", "jurisdiction") else r[f] for f in FIELDS})
        return
    person = op[1]
    if kind == "forget":
        ledger.forget(f"user-{person}")
        latest = model.state(person)
        at = max(_now_of(ledger, person), latest[0] if latest else 0)
        base = dict(latest[2]) if latest else _default()
        model.write(person, at, {**base, "deleted": True})
        return
    at = T0 + op[-1]
    base_found = model.state(person, at)
    base = dict(base_found[2]) if base_found else _default()
    change = {"opted_in": False} if kind == "opt_out" else {"cross_service": op[2]}
    if base["deleted"]:
        if kind == "cross" and op[2]:
            try:
                ledger.set_cross_service(f"user-{person}", True, updated_at=at)
            except ConsentError:
                return
            raise AssertionError("reinstating a deleted person by set_cross_service must raise")
        assert not (ledger.opt_out(f"user-{person}", updated_at=at) if kind == "opt_out"
                    else ledger.set_cross_service(f"user-{person}", op[2], updated_at=at))
        return
    if kind == "opt_out":
        ledger.opt_out(f"user-{person}", updated_at=at)
    else:
        ledger.set_cross_service(f"user-{person}", op[2], updated_at=at)
    model.write(person, at, {**base, **change})


def _default() -> dict[str, Any]:
    return {"birth_year": 0, "opted_in": False, "cross_service": False, "policy_version": "", "deleted": False,
            "terminated": False, "location_deleted": False, "jurisdiction": ""}


def _now_of(ledger: ConsentLedger, person: int) -> int:
    """The tombstone time the ledger chose (wall clock at the call): read back from its history."""
    return int(ledger.history(f"user-{person}")[-1]["updated_at"])


def _naive_replay(path: Path, as_of: int | None) -> dict[int, tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        history = conn.execute("SELECT pseudonym, updated_at, seq, birth_year, ads_personalization, cross_service, "
                               "policy_version, deleted, terminated, location_deleted, jurisdiction "
                               "FROM history").fetchall()
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for row in history:
        if as_of is None or row[1] <= as_of:
            rows.setdefault(row[0], []).append(row)
    out = {}
    for key, mine in rows.items():
        at = max(r[1] for r in mine)
        state = merge([{"birth_year": r[3] or 0, "opted_in": r[4] == "opt_in", "cross_service": bool(r[5]),
                        "policy_version": r[6], "deleted": bool(r[7]), "terminated": bool(r[8]),
                        "location_deleted": bool(r[9]), "jurisdiction": r[10] or ""} for r in mine if r[1] == at])
        out[int(hex_to_pseudonyms([key])[0])] = tuple(state[f] for f in FIELDS)
    return out


def _as_dict(snapshot: ConsentSnapshot) -> dict[int, tuple[Any, ...]]:
    return {int(p): (int(snapshot.birth_year[i]), bool(snapshot.opted_in[i]), bool(snapshot.cross_service[i]),
                     str(snapshot.policy_version[i]), bool(snapshot.deleted[i]), bool(snapshot.terminated[i]),
                     bool(snapshot.location_deleted[i]), str(snapshot.jurisdiction[i]))
            for i, p in enumerate(snapshot.persons.tolist())}


def _model_dict(model: Model, as_of: float) -> dict[int, tuple[Any, ...]]:
    return {p: tuple(s[f] for f in FIELDS) for p, s in model.snapshot(as_of).items()}


@settings(max_examples=40, deadline=None)
@given(st.lists(ops, min_size=1, max_size=10))
def test_snapshot_as_of_equals_naive_replay_and_model(operations: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "consent.sqlite"
        model = Model()
        with ConsentLedger(path, PZ) as ledger:
            for op in operations:
                _apply(ledger, model, op)
            for as_of in [None, T0 - 1, *range(T0, T0 + 10)]:
                snap = ledger.snapshot(as_of)
                assert np.all(np.diff(snap.persons.astype(np.float64)) > 0) or len(snap) < 2
                got = _as_dict(snap)
                assert got == _naive_replay(path, as_of)
                assert got == _model_dict(model, float("inf") if as_of is None else as_of)
            current = ledger.snapshot()
            assert current.equals(ledger.snapshot(as_of=2**40))
