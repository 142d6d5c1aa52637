"""The advertiser registry of the budget ledger (issue 14, finding 7) and private internal files (finding 9).

Before issue 14, ``acme``, ``Acme``, ``ACME``, the full-width ``ａｃｍｅ`` and the Cyrillic ``аcme`` each got their
own ε = 4 until the global cap stopped them. Now an advertiser is registered under one canonical id (NFKC,
case-folded, NFKC), look-alikes are refused, and a release or charge to an unregistered name is refused. Public
names only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from _release_fixtures import assignments_for, gate, world_rows

import adtarget
from adtarget import BudgetLedger, PrivacyBudget, ReleaseSpec
from adtarget.budget._ledger import MIGRATIONS  # the schema-v1 statements (not a public name)
from adtarget.exceptions import BudgetExhaustedError, ParameterError, UnknownAdvertiserError

DAY = 86_400
T0 = 1_000 * 30 * DAY + 5 * DAY  # 5 days into a 30-day window aligned on the epoch
SPELLINGS = ("acme", "Acme", "ACME", "\uff41\uff43\uff4d\uff45")  # the last is full-width ａｃｍｅ
LOOK_ALIKES = ("\u0430cme", "acm\u0435")  # Cyrillic а (U+0430), Cyrillic е (U+0435)
KEY_HEX = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def eps(x: float) -> PrivacyBudget:
    return PrivacyBudget(x)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> BudgetLedger:
    return BudgetLedger(tmp_path / "budget.sqlite", advertisers=["acme"], clock=clock)


@pytest.fixture(scope="module")
def world():
    """EligibleEvents and catalog assignments of a small world (through ingest, apply_gate, build_profiles)."""
    rows, people = world_rows(seed=3, n_persons=300)
    eligible = gate(rows, people)
    return eligible, assignments_for(eligible)


def _spec(advertiser: str, assignments, **kwargs) -> ReleaseSpec:
    return ReleaseSpec(advertiser, tuple(s.segment_id for s in assignments.segments),
                       **{"epsilon": 1.0, "delta": 1e-6, **kwargs})


# --- canonical ids: one advertiser, one cap -------------------------------------------------------------------------
def test_every_spelling_registers_the_same_canonical_advertiser(ledger: BudgetLedger) -> None:
    registered = [ledger.register_advertiser(name) for name in SPELLINGS]
    assert {a.advertiser_id for a in registered} == {"acme"}
    assert all(a == registered[0] for a in registered)  # idempotent: the first registration stays
    assert [a.advertiser_id for a in ledger.advertisers()] == ["acme"]
    assert all(ledger.advertiser(name).advertiser_id == "acme" for name in SPELLINGS)
    assert all(ReleaseSpec(name, ("iab-2.2:1",), epsilon=1.0, delta=1e-6).advertiser == "acme" for name in SPELLINGS)


def test_spellings_share_one_cap_and_the_fifth_charge_is_refused(ledger: BudgetLedger) -> None:
    assert ledger.caps.advertiser_cap.epsilon == 4.0
    for i, name in enumerate(SPELLINGS):
        assert ledger.charge(name, eps(1.0), f"q{i}").advertiser == "acme"
    for name in SPELLINGS:
        assert ledger.remaining(name)[0].epsilon == pytest.approx(0.0, abs=1e-12)
        with pytest.raises(BudgetExhaustedError, match="advertiser 'acme'"):
            ledger.charge(name, eps(1.0), f"q-{name}")
    rows = [r for r in ledger.show() if r["scope"] == "advertiser"]
    assert [(r["advertiser"], r["epsilon_spent"]) for r in rows] == [("acme", 4.0)]


def test_releases_to_every_spelling_share_one_cap(world, tmp_path: Path) -> None:
    eligible, assignments = world
    ledger = BudgetLedger(tmp_path / "budget.sqlite", advertisers=["ACME"])
    for i, name in enumerate(SPELLINGS):  # four different questions (salts), ε = 1 each, cap 4
        result = adtarget.release(eligible, assignments, _spec(name, assignments, salt=f"s{i}"), ledger=ledger)
        assert result.report.advertiser == "acme" and result.explanation.total["new_spend"] is True
    with pytest.raises(BudgetExhaustedError, match="advertiser 'acme'"):
        adtarget.release(eligible, assignments, _spec("acme", assignments, salt="s5"), ledger=ledger)
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(0.0, abs=1e-12)


def test_the_same_question_in_another_spelling_is_the_same_question(world) -> None:
    eligible, assignments = world
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    first = adtarget.release(eligible, assignments, _spec("Acme", assignments, salt="same"), ledger=ledger)
    again = adtarget.release(eligible, assignments, _spec("ＡＣＭＥ", assignments, salt="same"), ledger=ledger)
    assert again.report.to_json() == first.report.to_json()  # the stored report, no second spend
    assert again.explanation.total["new_spend"] is False
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(3.0)


# --- look-alikes ------------------------------------------------------------------------------------------------------
def _names_the_look_alike(error: BaseException, look_alike: str) -> None:
    """The refusal names the refused name and says why: it looks like the registered advertiser (same confusable
    skeleton), or it mixes letters of look-alike scripts (Latin with Cyrillic)."""
    message = str(error)
    assert repr(look_alike) in message, message
    assert "looks like the registered advertiser 'acme'" in message or "look-alike scripts" in message, message


@pytest.mark.parametrize("look_alike", LOOK_ALIKES, ids=["cyrillic-a", "cyrillic-ie"])
def test_a_look_alike_cannot_be_registered_nor_charged(ledger: BudgetLedger, look_alike: str) -> None:
    with pytest.raises(ParameterError) as registering:
        ledger.register_advertiser(look_alike)
    _names_the_look_alike(registering.value, look_alike)
    with pytest.raises(ParameterError) as charging:  # UnknownAdvertiserError is a ParameterError
        ledger.charge(look_alike, eps(1.0), "q")
    _names_the_look_alike(charging.value, look_alike)
    with pytest.raises(ParameterError):
        ledger.remaining(look_alike)
    assert [a.advertiser_id for a in ledger.advertisers()] == ["acme"]
    assert ledger.show()[-1]["epsilon_spent"] == 0.0 and ledger.lookup("q") is None


# a look-alike in one script (all Cyrillic, all Greek) is a valid name: the confusable skeleton catches it
SINGLE_SCRIPT = [("ace", "\u0430\u0441\u0435"), ("ace", "\u0410\u0421\u0415"), ("opo", "\u03bf\u03c1\u03bf")]


@pytest.mark.parametrize(("registered", "look_alike"), SINGLE_SCRIPT, ids=["cyrillic", "cyrillic-upper", "greek"])
def test_a_single_script_look_alike_is_caught_by_its_skeleton(registered: str, look_alike: str) -> None:
    ledger = BudgetLedger(":memory:", advertisers=[registered])
    with pytest.raises(ParameterError, match=f"looks like the registered advertiser '{registered}'"):
        ledger.register_advertiser(look_alike)
    with pytest.raises(UnknownAdvertiserError, match=f"looks like the registered advertiser '{registered}'"):
        ledger.charge(look_alike, eps(1.0), "q")
    assert [a.advertiser_id for a in ledger.advertisers()] == [registered]
    assert ledger.show()[-1]["epsilon_spent"] == 0.0


def test_a_look_alike_registered_first_blocks_the_real_name() -> None:
    ledger = BudgetLedger(":memory:", advertisers=["\u0430\u0441\u0435"])  # Cyrillic асе
    with pytest.raises(ParameterError, match="looks like the registered advertiser '\u0430\u0441\u0435'"):
        ledger.register_advertiser("ace")


@pytest.mark.parametrize("look_alike", LOOK_ALIKES, ids=["cyrillic-a", "cyrillic-ie"])
def test_a_release_to_a_look_alike_is_refused(world, look_alike: str) -> None:
    eligible, assignments = world
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    with pytest.raises(ParameterError) as caught:  # noqa: PT012 - refused by the spec or by the ledger
        adtarget.release(eligible, assignments, _spec(look_alike, assignments), ledger=ledger)
    _names_the_look_alike(caught.value, look_alike)
    assert ledger.remaining("acme")[1].epsilon == ledger.caps.global_cap.epsilon  # nothing spent anywhere


def test_a_release_to_a_single_script_look_alike_is_refused_as_unregistered(world) -> None:
    eligible, assignments = world
    ledger = BudgetLedger(":memory:", advertisers=["ace"])
    with pytest.raises(UnknownAdvertiserError, match="looks like the registered advertiser 'ace'"):
        adtarget.release(eligible, assignments, _spec("\u0430\u0441\u0435", assignments), ledger=ledger)
    assert ledger.show()[-1]["epsilon_spent"] == 0.0


# --- unregistered advertisers ------------------------------------------------------------------------------------------
def test_charge_to_an_unregistered_advertiser_is_refused_with_a_clear_message(ledger: BudgetLedger) -> None:
    with pytest.raises(UnknownAdvertiserError) as caught:
        ledger.charge("globex", eps(0.5), "q")
    message = str(caught.value)
    assert "'globex' is not registered" in message and "register it first" in message
    assert "adtarget advertiser add" in message and "register_advertiser" in message
    assert isinstance(caught.value, ParameterError)
    assert ledger.lookup("q") is None
    with pytest.raises(UnknownAdvertiserError):
        ledger.set_advertiser_cap("globex", eps(1.0))
    with pytest.raises(UnknownAdvertiserError):
        ledger.advertiser("globex")


def test_release_to_an_unregistered_advertiser_is_refused(world) -> None:
    eligible, assignments = world
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    with pytest.raises(UnknownAdvertiserError, match="'globex' is not registered"):
        adtarget.release(eligible, assignments, _spec("globex", assignments), ledger=ledger)
    assert ledger.show()[-1]["epsilon_spent"] == 0.0


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Small synthetic events and consent: on disk (for the CLI) and as columns with a consent ledger (API)."""
    d = tmp_path_factory.mktemp("advertisers-data")
    data = adtarget.synth.generate(adtarget.synth.SyntheticConfig(n_events=4_000, seed=5))
    events = adtarget.synth.write_events(data, d / "events.parquet")
    consent_csv = adtarget.synth.write_consent(data, d / "consent.csv")
    pseudonymizer = adtarget.Pseudonymizer(bytes.fromhex(KEY_HEX))
    with adtarget.ConsentLedger(d / "consent.sqlite", pseudonymizer) as consent:
        consent.import_csv(consent_csv)
    return {"data": data, "events": events, "consent_csv": consent_csv, "consent": d / "consent.sqlite",
            "pseudonymizer": pseudonymizer}


@pytest.mark.parametrize("name", ["globex", "\u0430\u0441\u0435"], ids=["unregistered", "look-alike"])
def test_run_to_an_unregistered_advertiser_is_refused_before_any_work(synthetic, name: str) -> None:
    ledger = BudgetLedger(":memory:", advertisers=["acme", "ace"])
    with adtarget.ConsentLedger(synthetic["consent"], synthetic["pseudonymizer"]) as consent, \
            pytest.raises(UnknownAdvertiserError, match="is not registered"):
        adtarget.run(synthetic["data"].events, consent, pseudonymizer=synthetic["pseudonymizer"], budget=ledger,
                     settings=adtarget.RunSettings(advertiser=name))
    assert ledger.show()[-1]["epsilon_spent"] == 0.0


# --- per-advertiser caps ------------------------------------------------------------------------------------------------
def test_an_advertiser_can_have_its_own_cap(ledger: BudgetLedger) -> None:
    small = ledger.register_advertiser("Small", cap=PrivacyBudget(1.0, 1e-6))
    assert small.advertiser_id == "small" and small.display_name == "Small"
    assert small.cap == PrivacyBudget(1.0, 1e-6) and ledger.advertiser("acme").cap is None  # None: ledger default
    assert ledger.remaining("small")[0].epsilon == 1.0 and ledger.remaining("acme")[0].epsilon == 4.0
    ledger.charge("small", eps(0.6), "s1")
    with pytest.raises(BudgetExhaustedError, match=r"remaining ε=0.4.*cap ε=1.0"):
        ledger.charge("SMALL", eps(0.6), "s2")
    row = next(r for r in ledger.show() if r["advertiser"] == "small")
    assert row["epsilon_cap"] == 1.0 and row["delta_cap"] == 1e-6 and row["epsilon_remaining"] == pytest.approx(0.4)


def test_set_advertiser_cap_raises_lowers_and_resets_the_cap(ledger: BudgetLedger) -> None:
    ledger.register_advertiser("small", cap=PrivacyBudget(1.0, 1e-6))
    ledger.charge("small", eps(0.6), "s1")
    assert ledger.set_advertiser_cap("Small", PrivacyBudget(2.0, 1e-6)).cap == PrivacyBudget(2.0, 1e-6)
    ledger.charge("small", eps(0.6), "s2")  # fits under the raised cap
    assert ledger.remaining("small")[0].epsilon == pytest.approx(0.8)
    assert ledger.set_advertiser_cap("small", None).cap is None  # the ledger's advertiser cap again
    assert ledger.remaining("small")[0].epsilon == pytest.approx(4.0 - 1.2)
    ledger.set_advertiser_cap("small", PrivacyBudget(1.0))
    with pytest.raises(BudgetExhaustedError):  # spend already recorded counts against a lowered cap
        ledger.charge("small", eps(0.01), "s3")


def test_registering_again_with_another_cap_is_refused(ledger: BudgetLedger) -> None:
    first = ledger.register_advertiser("small", cap=PrivacyBudget(1.0, 1e-6))
    assert ledger.register_advertiser("SMALL", cap=PrivacyBudget(1.0, 1e-6)) == first
    assert ledger.register_advertiser("small") == first  # no cap given: the registration as it is
    with pytest.raises(ParameterError, match="set_advertiser_cap"):
        ledger.register_advertiser("small", cap=PrivacyBudget(2.0, 1e-6))
    with pytest.raises(ParameterError, match="budget"):
        ledger.register_advertiser("other", cap=1.0)  # type: ignore[arg-type]


def test_an_own_cap_does_not_lift_the_global_cap(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "b.sqlite", advertisers=["acme"])
    ledger.set_caps(global_cap=PrivacyBudget(2.0, 1e-4))
    ledger.register_advertiser("big", cap=PrivacyBudget(10.0, 1e-5))
    ledger.charge("big", eps(1.5), "b1")
    with pytest.raises(BudgetExhaustedError, match="global cap"):
        ledger.charge("big", eps(1.0), "b2")


# --- DP-derived definitions ------------------------------------------------------------------------------------------------
def test_a_definition_is_charged_once_globally_and_once_per_advertiser_per_window(tmp_path: Path, clock: Clock) -> None:
    ledger = BudgetLedger(tmp_path / "b.sqlite", advertisers=["acme", "beta"], clock=clock)
    fit = PrivacyBudget(0.5, 1e-7)
    definitions = [("dp-kmeans:x", fit)]
    assert ledger.charge_definition("dp-kmeans:x", fit) is True  # when the definition is made: global cap
    assert ledger.charge_definition("dp-kmeans:x", fit) is False  # once per window
    assert ledger.show()[-1]["epsilon_spent"] == pytest.approx(0.5)
    first = ledger.charge("acme", eps(1.0), "a1", definitions=definitions)
    assert first.definitions_charged == ("dp-kmeans:x",)
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(4.0 - 1.5)
    second = ledger.charge("Acme", eps(1.0), "a2", definitions=definitions)
    assert second.definitions_charged == ()  # acme received it already this window
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(4.0 - 2.5)
    assert ledger.charge("beta", eps(1.0), "b1", definitions=definitions).definitions_charged == ("dp-kmeans:x",)
    assert ledger.remaining("beta")[0].epsilon == pytest.approx(4.0 - 1.5)
    # globally: the definition once (0.5) and three releases (3.0); not once more per advertiser
    assert ledger.show()[-1]["epsilon_spent"] == pytest.approx(3.5)
    clock.now = T0 + 25 * DAY  # the next window: charged again, once
    assert ledger.charge_definition("dp-kmeans:x", fit) is True
    assert ledger.charge("acme", eps(1.0), "a3", definitions=definitions).definitions_charged == ("dp-kmeans:x",)
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(4.0 - 1.5)


def test_a_definition_first_seen_in_a_charge_is_charged_globally_too(ledger: BudgetLedger) -> None:
    ledger.charge("acme", eps(1.0), "a1", definitions=[("proxy-audit:ab12", PrivacyBudget(0.25))])
    assert ledger.show()[-1]["epsilon_spent"] == pytest.approx(1.25)
    assert ledger.charge_definition("proxy-audit:ab12", PrivacyBudget(0.25)) is False  # already charged globally
    with pytest.raises(ParameterError, match="was charged with"):
        ledger.charge_definition("proxy-audit:ab12", PrivacyBudget(0.5))


def test_a_charge_with_definitions_is_all_or_nothing(ledger: BudgetLedger) -> None:
    ledger.register_advertiser("small", cap=PrivacyBudget(1.0, 1e-6))
    with pytest.raises(BudgetExhaustedError, match="advertiser 'small'"):  # 0.6 + 0.5 > 1.0
        ledger.charge("small", eps(0.6), "s1", definitions=[("dp-kmeans:z", PrivacyBudget(0.5))])
    assert ledger.remaining("small")[0].epsilon == 1.0
    assert ledger.show()[-1]["epsilon_spent"] == 0.0 and ledger.lookup("s1") is None
    assert ledger.charge_definition("dp-kmeans:z", PrivacyBudget(0.5)) is True  # it was not recorded either
    ledger.charge("small", eps(0.5), "s2", definitions=[("dp-kmeans:z", PrivacyBudget(0.5))])  # exactly 1.0
    assert ledger.remaining("small")[0].epsilon == pytest.approx(0.0, abs=1e-12)


def test_a_definition_is_refused_when_the_global_cap_is_spent(ledger: BudgetLedger) -> None:
    ledger.set_caps(global_cap=PrivacyBudget(1.0, 1e-4))
    ledger.charge("acme", eps(0.8), "a1")
    with pytest.raises(BudgetExhaustedError, match="a segment definition"):
        ledger.charge_definition("dp-kmeans:big", PrivacyBudget(0.5))
    assert ledger.charge_definition("dp-kmeans:fits", PrivacyBudget(0.2)) is True


# --- migration of a schema-v1 ledger -----------------------------------------------------------------------------------------
def _v1_ledger(path: Path, spend: list[tuple[str, float]]) -> None:
    """A ledger file as adtarget made it before issue 14: schema 1, free-string advertisers."""
    version, statements = MIGRATIONS[0]
    assert version == 1
    start = (T0 // (30 * DAY)) * 30 * DAY
    with closing(sqlite3.connect(path)) as conn, conn:
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version VALUES (1, 0)")
        conn.executemany("INSERT INTO spend (advertiser, epsilon, delta, query_key, window_start, window_end, "
                         "charged_at, status) VALUES (?, ?, 0.0, ?, ?, ?, ?, 'charged')",
                         [(name, e, f"q{i}", start, start + 30 * DAY, T0) for i, (name, e) in enumerate(spend)])


def test_a_v1_ledger_is_migrated_registering_canonical_ids_and_merging_spend(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "old.sqlite"
    _v1_ledger(path, [("Acme", 1.0), ("acme", 0.5), ("\u0430cme", 0.25), ("Beta", 0.3), ("ACME", 0.5)])
    ledger = BudgetLedger(path, clock=clock)
    assert ledger.schema_version == 3
    who = ledger.advertisers()
    assert [(a.advertiser_id, a.display_name) for a in who] == [("acme", "Acme"), ("beta", "Beta")]
    # Acme, acme, ACME and the Cyrillic look-alike are one advertiser now: their spending adds up under one cap
    assert ledger.remaining("acme")[0].epsilon == pytest.approx(4.0 - 2.25)
    assert ledger.remaining("beta")[0].epsilon == pytest.approx(4.0 - 0.3)
    with closing(sqlite3.connect(path)) as conn:
        assert sorted({r[0] for r in conn.execute("SELECT advertiser FROM spend")}) == ["acme", "beta"]
        with pytest.raises(sqlite3.IntegrityError):  # the spend rows are immutable again after the rename
            conn.execute("UPDATE spend SET advertiser = 'x'")
    with pytest.raises(ParameterError) as caught:
        ledger.register_advertiser("\u0430cme")
    _names_the_look_alike(caught.value, "\u0430cme")
    with pytest.raises(BudgetExhaustedError):
        ledger.charge("ACME", eps(2.0), "after")
    assert BudgetLedger(path, clock=clock).advertisers() == who  # reopening does not migrate again


def test_a_v1_ledger_without_spend_migrates_to_an_empty_registry(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _v1_ledger(path, [])
    ledger = BudgetLedger(path)
    assert ledger.schema_version == 3 and ledger.advertisers() == []
    assert [r["scope"] for r in ledger.show()] == ["global"]


# --- private files (finding 9) --------------------------------------------------------------------------------------------------
def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_a_new_ledger_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite"
    with _umask(0):  # even where the process would make every file world-writable
        ledger = BudgetLedger(path, advertisers=["acme"])
        ledger.charge("acme", eps(0.5), "q")
    assert _mode(path) == 0o600
    for companion in tmp_path.glob("budget.sqlite-*"):  # -wal, -shm
        assert _mode(companion) == 0o600, companion.name


# --- the CLI ---------------------------------------------------------------------------------------------------------------------
@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``adtarget.cli.main`` in process: returns (exit code, stdout, stderr)."""
    from adtarget.cli import main

    monkeypatch.setenv("ADTARGET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ADTARGET_PSEUDONYM_KEY", KEY_HEX)

    def call(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err
    return call


def _one_line_failure(code: int, err: str, expected: int) -> str:
    assert code == expected, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("adtarget: error: ") and "(hint: " in lines[0], err
    return lines[0]


def test_cli_advertiser_add_registers_the_canonical_id(cli, tmp_path) -> None:
    ledger = ["--ledger", str(tmp_path / "b.sqlite")]
    code, out, err = cli("advertiser", "add", "Acme", *ledger)
    assert code == 0, err
    assert f"advertiser 'acme' registered in {tmp_path / 'b.sqlite'} (cap: ledger default)" in out
    code, out, _ = cli("--json", "advertiser", "add", "ＡＣＭＥ", *ledger)  # idempotent, any spelling
    doc = json.loads(out)
    assert code == 0 and doc["ok"] is True and doc["ledger"] == str(tmp_path / "b.sqlite")
    assert doc["advertiser"]["advertiser_id"] == "acme" and doc["advertiser"]["display_name"] == "Acme"
    assert doc["advertiser"]["epsilon_cap"] is None and doc["advertiser"]["delta_cap"] is None
    assert [a.advertiser_id for a in BudgetLedger(tmp_path / "b.sqlite").advertisers()] == ["acme"]


def test_cli_advertiser_add_with_caps_and_the_default_ledger(cli, tmp_path) -> None:
    code, out, err = cli("advertiser", "add", "small", "--epsilon-cap", "1", "--delta-cap", "1e-6")
    assert code == 0 and "cap: ε=1, δ=1e-06" in out, err
    home = tmp_path / "home" / "budget.sqlite"  # $ADTARGET_HOME/budget.sqlite
    assert BudgetLedger(home).advertiser("small").cap == PrivacyBudget(1.0, 1e-6)
    assert _mode(home) == 0o600
    code, _, err = cli("advertiser", "add", "other", "--delta-cap", "1e-6")
    assert "--delta-cap needs --epsilon-cap" in _one_line_failure(code, err, 2)
    code, _, err = cli("advertiser", "add", "small", "--epsilon-cap", "2")  # contradicts the registered cap
    assert "set_advertiser_cap" in _one_line_failure(code, err, 2)


@pytest.mark.parametrize("look_alike", LOOK_ALIKES, ids=["cyrillic-a", "cyrillic-ie"])
def test_cli_advertiser_add_refuses_a_look_alike(cli, tmp_path, look_alike) -> None:
    ledger = ["--ledger", str(tmp_path / "b.sqlite")]
    assert cli("advertiser", "add", "acme", *ledger)[0] == 0
    code, _, err = cli("advertiser", "add", look_alike, *ledger)
    line = _one_line_failure(code, err, 2)
    assert repr(look_alike) in line and ("looks like the registered advertiser 'acme'" in line
                                         or "look-alike scripts" in line), line
    assert [a.advertiser_id for a in BudgetLedger(tmp_path / "b.sqlite").advertisers()] == ["acme"]


def test_cli_advertiser_list_and_show(cli, tmp_path) -> None:
    ledger = ["--ledger", str(tmp_path / "b.sqlite")]
    for name, caps in (("Zeta", ()), ("acme", ("--epsilon-cap", "2", "--delta-cap", "1e-6"))):
        assert cli("advertiser", "add", name, *caps, *ledger)[0] == 0
    BudgetLedger(tmp_path / "b.sqlite").charge("acme", eps(0.5), "q")
    code, out, _ = cli("advertiser", "list", *ledger)
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"budget ledger {tmp_path / 'b.sqlite'}: 2 advertiser(s)"
    assert lines[1].split()[0] == "acme" and "ε=2, δ=1e-06" in lines[1]
    assert lines[2].split()[0] == "zeta" and "ledger default" in lines[2]
    listed = json.loads(cli("--json", "advertiser", "list", *ledger)[1])["advertisers"]
    assert [(a["advertiser_id"], a["display_name"], a["epsilon_cap"]) for a in listed] == [
        ("acme", "acme", 2.0), ("zeta", "Zeta", None)]
    code, out, _ = cli("advertiser", "show", "ACME", *ledger)
    assert code == 0 and out.startswith("advertiser 'acme' (registered as 'acme' at ")
    assert "left in this window: ε=1.5," in out
    shown = json.loads(cli("--json", "advertiser", "show", "zeta", *ledger)[1])
    assert shown["advertiser"]["advertiser_id"] == "zeta" and shown["remaining"]["epsilon"] == 4.0
    assert shown["global_remaining"]["epsilon"] == pytest.approx(19.5)


def test_cli_advertiser_show_of_an_unregistered_name_exits_2(cli, tmp_path) -> None:
    ledger = ["--ledger", str(tmp_path / "b.sqlite")]
    assert cli("advertiser", "add", "acme", *ledger)[0] == 0
    code, out, err = cli("advertiser", "show", "globex", *ledger)
    line = _one_line_failure(code, err, 2)
    assert "'globex' is not registered" in line and "adtarget advertiser add" in line and out == ""
    assert cli("advertiser", "add", "ace", *ledger)[0] == 0
    code, out, err = cli("--json", "advertiser", "show", "\u0430\u0441\u0435", *ledger)  # Cyrillic асе
    assert "looks like the registered advertiser 'ace'" in _one_line_failure(code, err, 2)
    assert json.loads(out)["ok"] is False and json.loads(out)["exit_code"] == 2


def _run_argv(synthetic, out: Path, ledger: Path, advertiser: str) -> list[str]:
    return ["run", "--events", str(synthetic["events"]), "--consent", str(synthetic["consent_csv"]),
            "--out", str(out), "--ledger", str(ledger), "--advertiser", advertiser]


def test_cli_run_to_an_unregistered_advertiser_exits_2_with_the_hint(cli, synthetic, tmp_path) -> None:
    ledger = tmp_path / "b.sqlite"
    for name in ("acme", "ace"):
        assert cli("advertiser", "add", name, "--ledger", str(ledger))[0] == 0
    for name in ("globex", "\u0430\u0441\u0435"):  # unregistered; a single-script look-alike of 'ace'
        code, _, err = cli(*_run_argv(synthetic, tmp_path / "out", ledger, name))
        line = _one_line_failure(code, err, 2)
        assert "is not registered" in line and "(hint: register it with 'adtarget advertiser add NAME'" in line
        # refused before any work: no report, and the consent records were not even imported
        assert not (tmp_path / "out" / "report.json").exists() and not (tmp_path / "out" / "consent.sqlite").exists()
    code, _, err = cli(*_run_argv(synthetic, tmp_path / "out", ledger, "\u0430cme"))  # a mixed-script look-alike
    line = _one_line_failure(code, err, 2)
    assert repr("\u0430cme") in line and not (tmp_path / "out" / "report.json").exists()
    assert BudgetLedger(ledger).show()[-1]["epsilon_spent"] == 0.0


def test_cli_run_writes_internal_files_0600_and_names_what_may_leave(cli, synthetic, tmp_path) -> None:
    ledger, out_dir = tmp_path / "b.sqlite", tmp_path / "out"
    assert cli("advertiser", "add", "Acme", "--ledger", str(ledger))[0] == 0
    with _umask(0o022):  # the usual umask, under which they were 0644 before issue 14
        code, out, err = cli(*_run_argv(synthetic, out_dir, ledger, "ACME"))
    assert code == 0, err
    for name in ("report.json", "explanation.json", "summary.json", "assignments.parquet", "consent.sqlite"):
        assert _mode(out_dir / name) == 0o600, name
    assert _mode(ledger) == 0o600
    lines = out.splitlines()
    shared = lines.index("may leave the company (noised values and public parameters only): report, explanation")
    internal = lines.index("internal (exact counts or pseudonyms; files are readable by their owner only):")
    assert [line.split()[0] for line in lines[shared + 1:internal]] == ["report", "explanation"]
    assert {line.split()[0] for line in lines[internal + 1:]} == {"summary", "assignments"}
    assert "released to 'acme'" in out


def test_cli_run_json_names_what_may_leave(cli, synthetic, tmp_path) -> None:
    ledger = tmp_path / "b.sqlite"
    assert cli("advertiser", "add", "acme", "--ledger", str(ledger))[0] == 0
    code, out, err = cli("--json", *_run_argv(synthetic, tmp_path / "out", ledger, "acme"))
    assert code == 0, err
    doc = json.loads(out)
    assert doc["may_leave_company"] == ["report", "explanation"] and doc["advertiser"] == "acme"
    assert set(doc["files"]) >= {"report", "explanation", "summary", "assignments"}


def test_cli_demo_writes_every_internal_file_0600(cli, tmp_path) -> None:
    out_dir = tmp_path / "demo"
    with _umask(0o022):
        code, out, err = cli("demo", "--events", "3000", "--out", str(out_dir))
    assert code == 0, err
    for name in ("explanation.json", "summary.json", "consent.sqlite", "budget.sqlite", "report.json",
                 "assignments.parquet", "events.parquet", "consent.csv", "segments.png"):
        assert _mode(out_dir / name) == 0o600, name
    assert "may leave the company (noised values and public parameters only): report, explanation" in out
    assert [a.advertiser_id for a in BudgetLedger(out_dir / "budget.sqlite").advertisers()] == ["demo-advertiser"]
