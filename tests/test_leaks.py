"""Leak scans: run the pipeline (API and CLI) with recognisable person ids and a recognisable key, then grep
everything produced — files in the output directory, the budget ledger, captured stdout/stderr, logging at
DEBUG, reprs and strs of every object the run returns, and exception messages from a table of bad inputs — for
a raw id, a pseudonym (hex or decimal) or the key. Internal Personal outputs (assignments.parquet, the consent
ledger, access exports) may hold pseudonyms by design, but never a raw id or the key."""

from __future__ import annotations

import base64
import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
from _ledger_fixtures import register

from adtarget import (
    BudgetLedger,
    ConsentLedger,
    LocalEngine,
    PrivacyBudget,
    Pseudonymizer,
    RunResult,
    RunSettings,
    run,
    synth,
)
from adtarget.events._pseudonym import pseudonyms_to_hex
from adtarget.exceptions import AdtargetError

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
KEY = b"K3YMARK-" * 4
PZ = Pseudonymizer(KEY)
MARK = "LEAKID"
END = synth.SyntheticConfig().end
NEWCOMER = f"{MARK}-999999999"  # not in the ledger


def raw_id(i) -> str:
    return f"{MARK}-{int(i):09d}"


class Secrets:
    """Everything that must never appear, with a scan over text or bytes."""

    def __init__(self, ids: np.ndarray) -> None:
        pseudonyms = PZ.pseudonymize(ids)
        self.hex = set(pseudonyms_to_hex(pseudonyms).tolist())
        self.dec = {str(int(p)) for p in pseudonyms}
        self.key_forms = [KEY.decode(), KEY.hex(), base64.b64encode(KEY).decode(), repr(KEY)]

    def in_text(self, text: str, *, pseudonyms_allowed: bool = False) -> list[str]:
        found = [f"raw id {m!r}" for m in re.findall(MARK + r"-\d+", text)[:3]]
        found += [f"key as {k[:12]}…" for k in self.key_forms if k in text]
        if not pseudonyms_allowed:
            found += [f"pseudonym {h}" for h in set(re.findall(r"[0-9a-f]{16}", text)) & self.hex][:3]
            found += [f"pseudonym (decimal) {d}" for d in set(re.findall(r"\d{15,20}", text)) & self.dec][:3]
        return found

    def in_bytes(self, data: bytes, **kwargs) -> list[str]:
        return self.in_text(data.decode("latin-1"), **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("leaks")
    data = synth.generate(synth.SyntheticConfig(n_events=30_000, seed=12))
    events = dict(data.events)
    events["person_id"] = np.array([raw_id(i) for i in events["person_id"]], dtype=object)
    consent = dict(data.consent)
    consent["person_id"] = np.array([raw_id(i) for i in consent["person_id"]], dtype=object)
    consent["updated_at"] = np.array([_iso(t) for t in consent["updated_at"]], dtype=object)
    consent["birth_year"] = np.where(np.isnan(consent["birth_year"]), None, consent["birth_year"]).astype(object)
    with ConsentLedger(d / "consent.sqlite", PZ) as ledger:
        ledger.import_records(consent)
    all_ids = np.unique(np.concatenate([events["person_id"], consent["person_id"], [NEWCOMER]]).astype(str))
    return {"dir": d, "events": events, "consent": d / "consent.sqlite", "secrets": Secrets(all_ids),
            "ids": all_ids}


def _iso(t: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(int(t), tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def run_outputs(world, tmp_path_factory):
    """One run at DEBUG logging, its outputs written; returns (result, engine, out_dir, log_text)."""
    out = tmp_path_factory.mktemp("leak-out")
    handler = _ListHandler()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        engine = LocalEngine()
        with ConsentLedger(world["consent"], PZ) as consent:
            budget = BudgetLedger(out / "budget.sqlite", advertisers=["acme"])
            result = run(world["events"], consent, pseudonymizer=PZ, budget=budget,
                         settings=RunSettings(advertiser="acme"), engine=engine, window_end=END)
        result.write(out / "out")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    assert result.report.segments, "the leak scan needs a non-empty report"
    return result, engine, out, "\n".join(handler.lines)


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_advertiser_facing_files_hold_no_id_pseudonym_or_key(world, run_outputs):
    _, _, out, _ = run_outputs
    shared = sorted(k for k, v in RunResult.AUDIENCE.items() if v == "advertiser")
    assert shared == ["explanation", "report"]  # the files that may leave the company (issue 14, finding 9)
    # summary.json is internal now, but it holds only counts: no pseudonym either
    for name in [f"{k}.json" for k in shared] + ["summary.json"]:
        assert world["secrets"].in_bytes((out / "out" / name).read_bytes()) == [], name
    assert world["secrets"].in_bytes((out / "budget.sqlite").read_bytes()) == []


def test_internal_files_hold_no_raw_id_or_key(world, run_outputs):
    _, _, out, _ = run_outputs
    for path in [out / "out" / "assignments.parquet", world["consent"]]:
        assert world["secrets"].in_bytes(path.read_bytes(), pseudonyms_allowed=True) == [], path.name


def test_logs_at_debug_hold_nothing(world, run_outputs):
    assert world["secrets"].in_text(run_outputs[3]) == []


def _public_objects(result, engine):
    build = engine.last_build
    objects = [result, result.report, result.explanation, result.aggregates, result.aggregates.cells,
               result.summary, result.assignments, build, build.eligible,
               getattr(build.eligible, "sensitive_audit", None), engine, PZ, BudgetLedger(":memory:")]
    objects += list(result.report.segments)
    return [o for o in objects if o is not None]


def test_reprs_and_strs_hold_nothing(world, run_outputs):
    result, engine, _, _ = run_outputs
    for obj in _public_objects(result, engine):
        for text in (repr(obj), str(obj)):
            assert world["secrets"].in_text(text) == [], type(obj).__name__
    explanation = json.dumps(result.explanation.__dict__, default=str)
    assert world["secrets"].in_text(explanation) == []


def test_consent_ledger_reprs(world):
    with ConsentLedger(world["consent"], PZ) as ledger:
        for obj in (ledger, ledger.stats()):
            assert world["secrets"].in_text(repr(obj) + str(obj)) == [], type(obj).__name__


def test_consent_snapshot_repr_holds_no_pseudonym(world):
    with ConsentLedger(world["consent"], PZ) as ledger:
        snapshot = ledger.snapshot()
    assert world["secrets"].in_text(repr(snapshot) + str(snapshot)) == []


def _bad_inputs(world):
    """(label, callable) pairs that must raise an AdtargetError whose message holds no id, pseudonym or key."""
    person = str(world["ids"][0])
    events = world["events"]
    cut = {k: v[:50] for k, v in events.items()}

    def ledger():
        return ConsentLedger(world["consent"], PZ)

    return [
        ("opt in without policy version", lambda: ledger().record(NEWCOMER, ads_personalization="opt_in")),
        ("opt in of a forgotten person", lambda: _forgotten_opt_in(ledger())),
        ("unknown consent field", lambda: ledger().record(person, shoe_size=44)),
        ("future updated_at", lambda: ledger().record(person, updated_at=4_000_000_000, cross_service=True)),
        ("identifying column", lambda: run({**cut, "email": np.array([f"{person}@x"] * 50, dtype=object)},
                                           ledger(), pseudonymizer=PZ, budget=_budget())),
        ("unknown column", lambda: run({**cut, "favourite_colour": np.array([person] * 50)}, ledger(), pseudonymizer=PZ,
                                       budget=_budget())),
        ("unregistered advertiser", lambda: run(cut, ledger(), pseudonymizer=PZ, budget=BudgetLedger(":memory:"),
                                                settings=RunSettings(advertiser="nobody"))),
        ("missing ids", lambda: PZ.pseudonymize(np.array([person, None], dtype=object))),
        ("bad consent rows", lambda: ledger().import_records({"person_id": [person], "birth_year": [1800],
                                                              "ads_personalization": ["maybe"],
                                                              "cross_service": [True],
                                                              "policy_version": ["2018-05-14"],
                                                              "updated_at": ["not a time"], "deleted": [False],
                                                              "terminated": [False], "location_deleted": [False],
                                                              "jurisdiction": ["US"]})),
        ("wrong key for the ledger", lambda: ConsentLedger(world["consent"], Pseudonymizer(b"other-key-16bytes!"))),
        ("budget exhausted", lambda: _exhaust()),
        ("key too short", lambda: Pseudonymizer(KEY[:5])),
    ]


def _forgotten_opt_in(ledger) -> None:
    ledger.forget(NEWCOMER)
    ledger.opt_in(NEWCOMER, policy_version="2018-05-14")


def _budget():
    """An in-memory ledger with RunSettings' default advertiser registered (so run gets past that check)."""
    return BudgetLedger(":memory:", advertisers=["demo-advertiser"])


def _exhaust():
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    ledger.charge("acme", PrivacyBudget(4.0), "rq-a")
    ledger.charge("acme", PrivacyBudget(1.0), "rq-b")


def test_exception_messages_hold_nothing(world):
    checked = 0
    for label, action in _bad_inputs(world):
        with pytest.raises(AdtargetError) as caught:  # noqa: PT012 - the label names the failing case
            action()
            pytest.fail(f"{label}: did not raise")
        text = f"{caught.value}\n{caught.value!r}\n{getattr(caught.value, 'report', '')!r}"
        assert world["secrets"].in_text(text) == [], f"{label}: {text[:300]}"
        checked += 1
    assert checked == len(_bad_inputs(world))


def test_cli_run_leaks_nothing(world, tmp_path, monkeypatch, capsys):
    from adtarget.cli import main

    events = tmp_path / "events.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({k: pa.array(v) for k, v in world["events"].items()}), events)
    monkeypatch.setenv("ADTARGET_PSEUDONYM_KEY", KEY.hex())
    monkeypatch.setenv("ADTARGET_HOME", str(tmp_path / "home"))
    out = tmp_path / "cli-out"
    code = main(["--json", "run", "--events", str(events), "--consent", str(world["consent"]), "--out", str(out),
                 "--advertiser", "acme", "--ledger", register(tmp_path / "budget.sqlite", "acme"),
                 "--window-end", _iso(END)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert world["secrets"].in_text(captured.out + captured.err) == []
    for path in Path(out).rglob("*"):
        if path.is_file():
            allowed = path.suffix == ".parquet" or path.name.endswith(".sqlite")
            assert world["secrets"].in_bytes(path.read_bytes(), pseudonyms_allowed=allowed) == [], path.name
    code = main(["consent", "show", "--person", str(world["ids"][0]), "--ledger", str(world["consent"])])
    captured = capsys.readouterr()
    assert world["secrets"].in_text(captured.out + captured.err, pseudonyms_allowed=True) == []


def test_the_scanner_finds_planted_secrets(world):
    """Positive control: each kind of secret is found when planted."""
    secrets, person = world["secrets"], str(world["ids"][1])
    hex_form = pseudonyms_to_hex(PZ.pseudonymize(np.array([person], dtype=object)))[0]
    decimal = str(int(PZ.pseudonymize(np.array([person], dtype=object))[0]))
    for planted in (person, f"x{hex_form}y", f"[{decimal}]", KEY.hex(), f"key={KEY!r}"):
        assert secrets.in_text(f"... {planted} ..."), planted
    assert secrets.in_text(f"... {hex_form} ...", pseudonyms_allowed=True) == []
