"""The ledger's Rényi-DP (zCDP) accounting (issue 17, "Tighter accounting").

What is shown: under the default advertiser cap (ε = 4, δ = 1e-5) the ledger accepts 21 discrete-Gaussian
releases (ε = 1, δ = 1e-6, default breakdowns, 5 segments per person) where basic composition accepts 4; the
composed ε it reports is never below an independent near-exact bound (dp_accounting's PLD accountant) and never
above the classic zCDP bound; pure-ε (Laplace) windows keep basic composition; a window's route is fixed by its
first charge, so mixed windows compose one way; racing processes keep the cap exactly; a stored report spends
nothing new; old ledgers migrate (their rows are all basic); a stored accounting the ledger did not write is a
corrupt ledger. See docs/privacy/budget-ledger.md "Composition".
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from _ledger_fixtures import race
from dp_accounting import dp_event
from dp_accounting.pld import pld_privacy_accountant
from dp_accounting.rdp import rdp_privacy_accountant

from adtarget import BudgetLedger, PrivacyBudget, ReleaseSpec
from adtarget.budget import ReleaseAccounting
from adtarget.budget._composition import RDP_DELTA_SHARE, _copies, spend_of, zcdp_epsilon
from adtarget.budget._ledger import MIGRATIONS, SCHEMA_VERSION  # the schema statements (not public names)
from adtarget.exceptions import BudgetExhaustedError, LedgerError, ParameterError
from adtarget.reports._noise import zcdp_delta
from adtarget.reports._postprocess import noises
from adtarget.reports._release import release_accounting

DAY = 86_400
T0 = 1_000 * 30 * DAY + 5 * DAY  # 5 days into a 30-day window aligned on the epoch
SEGMENTS = tuple(f"iab-2.2:{i}" for i in range(1, 11))  # 10 segments: S = min(5, 10) = 5
CAP = PrivacyBudget(4.0, 1e-5)  # the default advertiser cap


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def spec_of(mechanism: str = "discrete_gaussian", epsilon: float = 1.0, delta: float = 1e-6) -> ReleaseSpec:
    return ReleaseSpec("acme", SEGMENTS, epsilon=epsilon, delta=delta, mechanism=mechanism)


GAUSSIAN = spec_of()
LAPLACE = spec_of("discrete_laplace")


def budget_of(spec: ReleaseSpec) -> PrivacyBudget:
    return PrivacyBudget(spec.epsilon, spec.delta)


def charge(ledger: BudgetLedger, spec: ReleaseSpec, key: str, **kw):
    return ledger.charge("acme", budget_of(spec), key, accounting=release_accounting(spec), **kw)


def charge_until_refused(ledger: BudgetLedger, spec: ReleaseSpec, prefix: str = "q", *,
                         accounting: bool = True) -> int:
    n = 0
    while n < 1000:
        try:
            ledger.charge("acme", budget_of(spec), f"{prefix}{n}",
                          accounting=release_accounting(spec) if accounting else None)
        except BudgetExhaustedError:
            return n
        n += 1
    raise AssertionError("never refused")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> BudgetLedger:
    return BudgetLedger(tmp_path / "budget.sqlite", advertisers=["acme", "beta"], clock=clock)


def advertiser_row(ledger: BudgetLedger) -> dict:
    return next(r for r in ledger.show() if r["advertiser"] == "acme")


# --- the release's accounting -----------------------------------------------------------------------------------
def test_a_gaussian_release_lists_sigma_over_l2_of_each_block_and_partition_selection_as_basic() -> None:
    sizes, cells = noises(GAUSSIAN)
    acc = release_accounting(GAUSSIAN)
    assert acc.gaussian_noise_multipliers == (sizes.sigma / math.sqrt(5), cells.sigma / math.sqrt(15))
    assert acc.pure_epsilons == () and acc.basic == PrivacyBudget(0.1, 1e-7)  # partition selection
    assert acc.rho == pytest.approx(5 / (2 * sizes.sigma**2) + 15 / (2 * cells.sigma**2) + 0.1**2 / 2, rel=1e-12)
    laplace = release_accounting(LAPLACE)
    assert laplace.gaussian_noise_multipliers == () and laplace.pure_epsilons == (0.6, pytest.approx(0.3))
    assert laplace.basic == PrivacyBudget(0.1, 1e-6)
    plain = release_accounting(ReleaseSpec("acme", SEGMENTS, epsilon=0.5, delta=1e-6, mechanism="discrete_gaussian",
                                           breakdowns=("age_band",)))
    assert plain.basic is None and len(plain.gaussian_noise_multipliers) == 2  # no region: no partition selection


# --- the figure: releases that fit the default advertiser cap ---------------------------------------------------
def test_the_default_cap_accepts_21_gaussian_releases_where_basic_composition_accepts_4(ledger: BudgetLedger) -> None:
    """The issue's figure, charged into a real ledger until it refuses: 21 releases by Rényi DP, 4 by basic
    composition (the same releases charged without their accounting), 5.25×; Laplace releases at the same ε: 4."""
    assert ledger.caps.advertiser_cap == CAP
    rdp = charge_until_refused(ledger, GAUSSIAN)
    assert rdp == 21
    assert advertiser_row(ledger)["accounting"] == "rdp"
    assert advertiser_row(ledger)["epsilon_spent"] <= CAP.epsilon
    other = BudgetLedger(ledger._path + ".basic", advertisers=["acme"])
    basic = charge_until_refused(other, GAUSSIAN, accounting=False)
    assert basic == 4 and advertiser_row(other)["accounting"] == "basic"
    assert rdp >= 3 * basic
    third = BudgetLedger(ledger._path + ".laplace", advertisers=["acme"])
    assert charge_until_refused(third, LAPLACE) == 4 and advertiser_row(third)["accounting"] == "basic"


def test_the_figure_is_what_dp_accounting_composes_from_the_gaussian_events() -> None:
    """21 releases convert (at δ_c = δ_cap / 2) to at most ε = 4 and 22 to more, composing the releases' own
    events in dp_accounting's RdpAccountant: GaussianDpEvent(σ/Δ2) per block, ZCDpEvent(ε²/2) for partition
    selection."""
    acc = release_accounting(GAUSSIAN)

    def epsilon(n: int) -> float:
        accountant = rdp_privacy_accountant.RdpAccountant()
        for z in acc.gaussian_noise_multipliers:
            accountant.compose(dp_event.GaussianDpEvent(z), n)
        accountant.compose(dp_event.ZCDpEvent(rho=0.1**2 / 2), n)
        return accountant.get_epsilon(CAP.delta * RDP_DELTA_SHARE)

    assert epsilon(21) <= 4.0 < epsilon(22)
    assert CAP.delta * (1 - RDP_DELTA_SHARE) >= 22 * 1e-7  # the partition selections' δ does not bind


def test_the_ledger_reports_the_composed_epsilon_of_its_window(ledger: BudgetLedger) -> None:
    acc = release_accounting(GAUSSIAN)
    for n in range(1, 8):
        charge(ledger, GAUSSIAN, f"q{n}")
        row = advertiser_row(ledger)
        accountant = rdp_privacy_accountant.RdpAccountant()
        for z in acc.gaussian_noise_multipliers:
            accountant.compose(dp_event.GaussianDpEvent(z), n)
        accountant.compose(dp_event.ZCDpEvent(rho=0.1**2 / 2), n)
        assert row["epsilon_spent"] == pytest.approx(accountant.get_epsilon(5e-6), rel=1e-9)
        assert row["delta_spent"] == pytest.approx(5e-6 + n * 1e-7, rel=1e-12)
        left = ledger.remaining("acme")[0]
        assert left.epsilon == pytest.approx(4.0 - row["epsilon_spent"], rel=1e-12)
        assert left.delta == pytest.approx(5e-6 - n * 1e-7, rel=1e-9)


# --- soundness: never below an independent bound ----------------------------------------------------------------
def pld_epsilon(releases: list[ReleaseSpec], delta: float) -> float:
    """Near-exact ε of the releases' count noise alone (PLD accounting; partition selection left out, so this is
    below the true ε of the releases): per coordinate a person shifts by 1, so a Gaussian block of S counts is
    GaussianDpEvent(σ/√S) and a Laplace block of Δ1 counts Δ1 discrete-Laplace events."""
    accountant = pld_privacy_accountant.PLDAccountant()
    for spec in releases:
        for noise in noises(spec):
            if noise is None:
                continue
            if noise.mechanism == "discrete_gaussian":
                accountant.compose(dp_event.GaussianDpEvent(noise.sigma / noise.l2_sensitivity))
            else:
                accountant.compose(dp_event.DiscreteLaplaceDpEvent(noise.epsilon / noise.l1_sensitivity, 1),
                                   round(noise.l1_sensitivity))
    return accountant.get_epsilon(delta)


def check_sound(ledger: BudgetLedger, releases: list[ReleaseSpec]) -> float:
    row = advertiser_row(ledger)
    assert row["accounting"] == "rdp"
    eps, rho = row["epsilon_spent"], sum(release_accounting(s).rho for s in releases)
    convert_at = CAP.delta * RDP_DELTA_SHARE
    # never below the near-exact ε of the count noise alone, at the whole δ cap
    assert eps >= pld_epsilon(releases, CAP.delta)
    # a valid conversion of Σρ: the exact zCDP → (ε, δ) conversion (any order α) needs at most δ_c at that ε
    assert zcdp_delta(rho, eps) <= convert_at * (1 + 1e-9)
    # and never above the classic zCDP bound ρ + 2√(ρ ln(1/δ))
    assert eps <= rho + 2 * math.sqrt(rho * math.log(1 / convert_at))
    return eps


@pytest.mark.parametrize("n", [1, 2, 5, 21])
def test_the_composed_epsilon_is_never_below_an_independent_bound(ledger: BudgetLedger, n: int) -> None:
    for i in range(n):
        charge(ledger, GAUSSIAN, f"q{i}")
    eps = check_sound(ledger, [GAUSSIAN] * n)
    assert eps < n * GAUSSIAN.epsilon  # and tighter than basic composition (1 release: 0.738 < 1)


def test_a_gaussian_first_window_stays_rdp_and_a_laplace_release_is_charged_its_zcdp(ledger: BudgetLedger) -> None:
    """Mixed window, Gaussian first: the Laplace release is composed by zCDP too (ρ = Σ ε²/2 of its blocks,
    0.23 for ε = 1): sound, and expensive; a window composes one way."""
    first = charge(ledger, GAUSSIAN, "g0")
    assert (first.route, first.global_route) == ("rdp", "rdp")
    mixed = charge(ledger, LAPLACE, "l0")
    assert mixed.route == "rdp"
    assert release_accounting(LAPLACE).rho == pytest.approx(0.6**2 / 2 + 0.3**2 / 2 + 0.1**2 / 2)
    eps = check_sound(ledger, [GAUSSIAN, LAPLACE])
    assert eps == pytest.approx(zcdp_epsilon(release_accounting(GAUSSIAN).rho + 0.23, 5e-6), rel=1e-9)
    with pytest.raises(BudgetExhaustedError, match="Rényi-DP"):
        charge(ledger, LAPLACE, "l1")  # a second one does not fit: 0.48 + 0.016 of ρ
    charge(ledger, GAUSSIAN, "g1")  # Gaussian releases still fit
    check_sound(ledger, [GAUSSIAN, LAPLACE, GAUSSIAN])


def test_a_laplace_first_window_is_basic_and_charges_gaussian_releases_their_epsilon(ledger: BudgetLedger) -> None:
    """Mixed window, Laplace first: pure-ε releases compose better by basic composition at these ε (zCDP would
    admit 1 Laplace release, basic 4), so the window is basic and a Gaussian release in it costs its (ε, δ)."""
    assert _copies("rdp", spend_of(1.0, 1e-6, release_accounting(LAPLACE)), CAP) == 1
    assert _copies("basic", spend_of(1.0, 1e-6, release_accounting(LAPLACE)), CAP) == 4
    assert charge(ledger, LAPLACE, "l0").route == "basic"
    assert charge(ledger, GAUSSIAN, "g0").route == "basic"
    row = advertiser_row(ledger)
    assert (row["accounting"], row["epsilon_spent"], row["delta_spent"]) == ("basic", 2.0, 2e-6)
    assert charge_until_refused(ledger, GAUSSIAN, "more") == 2
    assert ledger.remaining("acme")[0].epsilon == 0.0


def test_basic_composition_is_kept_when_rdp_admits_no_more(tmp_path: Path) -> None:
    """A cap of (1, 1e-6) admits one Gaussian release of (1, 1e-6) either way: the tie goes to basic."""
    ledger = BudgetLedger(tmp_path / "b.sqlite", advertisers=["acme"])
    ledger.set_advertiser_cap("acme", PrivacyBudget(1.0, 1e-6))
    assert charge(ledger, GAUSSIAN, "q").route == "basic"
    assert ledger.remaining("acme")[0].epsilon == 0.0
    # a cap without δ never composes by zCDP (its conversion needs δ > 0)
    zero = BudgetLedger(tmp_path / "z.sqlite", advertisers=["acme"])
    zero.set_caps(advertiser_cap=PrivacyBudget(4.0, 0.0))
    with pytest.raises(BudgetExhaustedError, match="basic composition"):
        charge(zero, GAUSSIAN, "q")


def test_each_window_chooses_its_route_again(ledger: BudgetLedger, clock: Clock) -> None:
    charge(ledger, LAPLACE, "l0")
    assert advertiser_row(ledger)["accounting"] == "basic"
    clock.now += 30 * DAY
    assert advertiser_row(ledger)["accounting"] == "basic"  # nothing charged yet: the cap, in full
    assert ledger.remaining("acme")[0] == ledger.remaining("beta")[0]
    assert charge(ledger, GAUSSIAN, "g0").route == "rdp"
    with closing(sqlite3.connect(ledger._path)) as conn:
        routes = conn.execute("SELECT scope, route FROM window_routes ORDER BY window_start, scope").fetchall()
    assert routes == [("", "basic"), ("acme", "basic"), ("", "rdp"), ("acme", "rdp")]


def test_definitions_in_an_rdp_window_are_charged_their_zcdp(ledger: BudgetLedger) -> None:
    charge(ledger, GAUSSIAN, "g0")
    before = ledger.show()[-1]
    assert ledger.charge_definition("dp-kmeans:a", PrivacyBudget(0.5)) is True
    after = ledger.show()[-1]
    rho = release_accounting(GAUSSIAN).rho
    assert after["accounting"] == "rdp"
    assert after["epsilon_spent"] == pytest.approx(zcdp_epsilon(rho + 0.125, 5e-5), rel=1e-9)
    # early in a window a pure-ε charge costs more than its ε (the conversion is steep at small ρ)
    assert after["epsilon_spent"] - before["epsilon_spent"] > 0.5
    c = charge(ledger, GAUSSIAN, "g1", definitions=[("dp-kmeans:a", PrivacyBudget(0.5))])
    assert c.definitions_charged == ("dp-kmeans:a",)
    assert advertiser_row(ledger)["epsilon_spent"] == pytest.approx(zcdp_epsilon(2 * rho + 0.125, 5e-6), rel=1e-9)


# --- races, reuse -----------------------------------------------------------------------------------------------
WORKER = """
import sys, time
from pathlib import Path
from adtarget import BudgetLedger, PrivacyBudget
from adtarget.budget import ReleaseAccounting
from adtarget.exceptions import BudgetExhaustedError

path, me, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
accounting = ReleaseAccounting(gaussian_noise_multipliers=(float(sys.argv[4]), float(sys.argv[5])),
                               basic=PrivacyBudget(0.1, 1e-7))
ledger = BudgetLedger(path)
Path(go.parent, "ready-" + me).touch()
while not go.exists():
    time.sleep(0.001)
try:
    ledger.charge("acme", PrivacyBudget(1.0, 1e-6), "query-" + me, accounting=accounting)
    print("charged")
except BudgetExhaustedError:
    print("exhausted")
"""


def test_eight_processes_race_for_five_rdp_slots(tmp_path: Path) -> None:
    """As tests/test_budget_ledger_race.py, in an rdp window: the cap is the composed ε of 5.5 releases, so
    exactly 5 of 8 racing charges fit, whoever wins the route choice."""
    acc = release_accounting(GAUSSIAN)
    cap = PrivacyBudget(zcdp_epsilon(5.5 * acc.rho, 5e-6), 1e-5)
    path = tmp_path / "budget.sqlite"
    BudgetLedger(path, advertisers=["acme"]).set_caps(advertiser_cap=cap)
    multipliers = [repr(z) for z in acc.gaussian_noise_multipliers]
    results = race(tmp_path, WORKER, lambda i: (path, i, tmp_path / "go", *multipliers), 8)
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    assert sorted(out.strip() for _, out, _ in results) == ["charged"] * 5 + ["exhausted"] * 3
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM spend").fetchone()[0] == 5
        assert conn.execute("SELECT scope, route FROM window_routes ORDER BY scope").fetchall() == [
            ("", "rdp"), ("acme", "rdp")]
    row = advertiser_row(BudgetLedger(path))
    assert row["epsilon_spent"] == pytest.approx(zcdp_epsilon(5 * acc.rho, 5e-6), rel=1e-12)
    assert row["epsilon_spent"] <= cap.epsilon


def test_a_stored_report_is_reused_without_new_spend(ledger: BudgetLedger) -> None:
    first = charge(ledger, GAUSSIAN, "q")
    assert ledger._store_report(first.charge_id, '{"report": 1}') == '{"report": 1}'
    spent = advertiser_row(ledger)
    again = charge(ledger, GAUSSIAN, "q")
    assert not again.new_spend and again.report_json == '{"report": 1}'
    assert again.accounting == first.accounting and (again.route, again.global_route) == ("rdp", "rdp")
    assert again.charge_id == first.charge_id and advertiser_row(ledger) == spent
    plain = ledger.charge("acme", budget_of(GAUSSIAN), "q")  # the key keeps its stored accounting
    assert not plain.new_spend and plain.accounting == first.accounting
    with pytest.raises(ParameterError, match="charged with"):
        ledger.charge("acme", PrivacyBudget(0.5, 1e-6), "q")


def test_a_gaussian_release_says_how_its_windows_compose(tmp_path: Path) -> None:
    from _release_fixtures import assignments_for, gate, registered, world_rows

    from adtarget import release

    rows, people = world_rows(0)
    eligible = gate(rows, people)
    assignments = assignments_for(eligible)
    ledger = registered(tmp_path / "budget.sqlite")
    spec = ReleaseSpec("acme", [s.segment_id for s in assignments.segments], epsilon=1.0, delta=1e-6,
                       mechanism="discrete_gaussian")
    result = release(eligible, assignments, spec, ledger=ledger)
    assert result.explanation.total == {"epsilon": 1.0, "delta": 1e-6, "new_spend": True,
                                        "accounting": {"advertiser": "rdp", "global": "rdp"}}
    assert "composes the advertiser's window by Rényi DP (zCDP)" in str(result.explanation)
    left = ledger.remaining("acme")[0]
    assert 4.0 - left.epsilon == pytest.approx(zcdp_epsilon(release_accounting(spec).rho, 5e-6), rel=1e-9)
    assert result.report.privacy["budget_remaining"]["advertiser"] == pytest.approx(left.epsilon)
    again = release(eligible, assignments, spec, ledger=ledger)
    assert again.explanation.reused and again.report.to_json() == result.report.to_json()
    assert ledger.remaining("acme")[0] == left
    laplace = release(eligible, assignments, ReleaseSpec("acme", spec.segment_ids, epsilon=1.0, delta=1e-6),
                      ledger=registered(tmp_path / "other.sqlite"))
    assert "accounting" not in laplace.explanation.total and "(basic composition)" in str(laplace.explanation)


# --- validation -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kw", "match"), [
    ({"gaussian_noise_multipliers": (math.inf,)}, "finite"),
    ({"gaussian_noise_multipliers": (0.0,)}, "finite"),
    ({"gaussian_noise_multipliers": (-1.0,)}, "finite"),
    ({"gaussian_noise_multipliers": (True,)}, "finite"),
    ({"gaussian_noise_multipliers": (math.nan,)}, "finite"),
    ({"gaussian_noise_multipliers": "7"}, "tuple"),
    ({"gaussian_noise_multipliers": (1.0,) * 65}, "at most 64"),
    ({"pure_epsilons": (0.0,)}, "finite"),
    ({"basic": 0.1}, "PrivacyBudget"),
    ({"basic": PrivacyBudget(math.inf, allow_infinite_epsilon=True)}, "finite"),
    ({}, "at least one block"),
])
def test_invalid_accountings_are_refused(kw: dict, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        ReleaseAccounting(**kw)


@pytest.mark.parametrize(("budget", "accounting", "match"), [
    (PrivacyBudget(1.0, 1e-6), ReleaseAccounting(pure_epsilons=(0.6, 0.6)), "more than the budget"),
    (PrivacyBudget(1.0, 1e-6), ReleaseAccounting((7.0,), basic=PrivacyBudget(0.1, 2e-6)), "more than the budget"),
    (PrivacyBudget(1.0), ReleaseAccounting((7.0,)), "δ = 0"),
    (PrivacyBudget(1.0, 1e-6), (7.0,), "ReleaseAccounting"),
])
def test_an_accounting_must_fit_its_budget(ledger: BudgetLedger, budget, accounting, match: str) -> None:
    with pytest.raises(ParameterError, match=match):
        ledger.charge("acme", budget, "q", accounting=accounting)
    assert ledger.lookup("q") is None and advertiser_row(ledger)["epsilon_spent"] == 0.0


# --- storage: migration, immutability, corruption ---------------------------------------------------------------
def old_ledger(path: Path, version: int, spend: list[tuple[str, float, float]]) -> None:
    """A ledger file as an older adtarget wrote it: schema ``version`` (1 or 2), spend rows with the old columns
    in the window of T0."""
    start = (T0 // (30 * DAY)) * 30 * DAY
    with closing(sqlite3.connect(path)) as conn, conn:
        for target, statements in MIGRATIONS[:version]:
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, 0)", (target,))
        if version >= 2:
            conn.executemany("INSERT INTO advertisers (advertiser, display_name, skeleton, registered_at) VALUES "
                             "(?, ?, ?, 0)", [(n, n, n) for n in sorted({n for n, _, _ in spend})])
        conn.executemany("INSERT INTO spend (advertiser, epsilon, delta, query_key, window_start, window_end, "
                         "charged_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, 'charged')",
                         [(n, e, d, f"old{i}", start, start + 30 * DAY, T0) for i, (n, e, d) in enumerate(spend)])


@pytest.mark.parametrize("version", [1, 2])
def test_an_old_ledger_migrates_and_its_rows_are_all_basic(tmp_path: Path, clock: Clock, version: int) -> None:
    path = tmp_path / "old.sqlite"
    old_ledger(path, version, [("acme", 1.0, 1e-6), ("acme", 0.5, 0.0)])
    ledger = BudgetLedger(path, clock=clock)
    assert ledger.schema_version == SCHEMA_VERSION == 3
    with closing(sqlite3.connect(path)) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")] == [1, 2, 3]
        assert conn.execute("SELECT rdp_events, basic_epsilon, basic_delta FROM spend ORDER BY id").fetchall() == [
            ("[]", 1.0, 1e-6), ("[]", 0.5, 0.0)]
    assert ledger.remaining("acme")[0].epsilon == 2.5
    found = ledger.charge("acme", PrivacyBudget(1.0, 1e-6), "old0")  # an old key is reused, nothing new spent
    assert not found.new_spend and found.accounting is None and found.route == "basic"
    # this window already held charges when routes began: it stays basic, a Gaussian release costs its (ε, δ)
    assert charge(ledger, GAUSSIAN, "g0").route == "basic"
    assert ledger.remaining("acme")[0].epsilon == 1.5
    clock.now += 30 * DAY  # the next window chooses again
    assert charge(ledger, GAUSSIAN, "g1").route == "rdp"
    assert BudgetLedger(path, clock=clock).schema_version == 3  # reopening does not migrate again


def test_new_spend_columns_and_window_routes_are_append_only(ledger: BudgetLedger) -> None:
    charge(ledger, GAUSSIAN, "q")
    with closing(sqlite3.connect(ledger._path)) as conn:
        for sql in ("UPDATE spend SET rdp_events = '[]'", "UPDATE spend SET basic_epsilon = 0",
                    "UPDATE spend SET basic_delta = 0", "UPDATE window_routes SET route = 'basic'",
                    "DELETE FROM window_routes", "UPDATE spend SET epsilon = 0.001"):
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO window_routes VALUES ('beta', 0, 1, 'fast', 0)")


@pytest.mark.parametrize("events", [
    "not json", "{}", '[{"kind":"gaussian"}]', '[{"kind":"gaussian","noise_multiplier":-1.0}]',
    '[{"kind":"gaussian","noise_multiplier":7}]', '[{"kind":"laplace","noise_multiplier":7.0}]',
    '[{"kind": "gaussian", "noise_multiplier": 7.0}]', '[{"kind":"gaussian","noise_multiplier":NaN}]',
    '[{"epsilon":0.5,"kind":"pure"},{"kind":"gaussian","noise_multiplier":7.0}]', "[" * 100_000,
    '[{"kind":"gaussian","noise_multiplier":true}]', '[{"kind":"gaussian","noise_multiplier":1e-300}]',
])
def test_a_stored_accounting_the_ledger_did_not_write_is_a_corrupt_ledger(ledger: BudgetLedger, events: str) -> None:
    charge(ledger, GAUSSIAN, "q")
    with closing(sqlite3.connect(ledger._path)) as conn, conn:
        conn.execute("DROP TRIGGER spend_amounts_immutable")  # a hand edit
        conn.execute("UPDATE spend SET rdp_events = ?", (events,))
    for call in (lambda: ledger.remaining("acme"), ledger.show, lambda: charge(ledger, GAUSSIAN, "q"),
                 lambda: charge(ledger, GAUSSIAN, "q2")):
        with pytest.raises(LedgerError, match="corrupt"):
            call()


@pytest.mark.parametrize("sql", ["UPDATE spend SET basic_epsilon = 2.0", "UPDATE spend SET basic_delta = 1e-5",
                                 "UPDATE spend SET basic_epsilon = 'x'", "UPDATE spend SET basic_epsilon = 0.0, "
                                 "basic_delta = 0.0, rdp_events = '[]'"])
def test_a_stored_basic_part_beyond_its_budget_is_a_corrupt_ledger(ledger: BudgetLedger, sql: str) -> None:
    charge(ledger, GAUSSIAN, "q")
    with closing(sqlite3.connect(ledger._path)) as conn, conn:
        conn.execute("DROP TRIGGER spend_amounts_immutable")
        conn.execute(sql)
    with pytest.raises(LedgerError, match="corrupt"):
        ledger.remaining("acme")


def test_a_corrupt_accounting_exits_3_on_the_command_line(tmp_path: Path) -> None:
    ledger = BudgetLedger(tmp_path / "budget.sqlite", advertisers=["acme"])  # now: the CLI's window
    charge(ledger, GAUSSIAN, "q")
    with closing(sqlite3.connect(ledger._path)) as conn, conn:
        conn.execute("DROP TRIGGER spend_amounts_immutable")
        conn.execute("""UPDATE spend SET rdp_events = '[{"kind":"gaussian","noise_multiplier":1e9}]'""")
    result = subprocess.run([sys.executable, "-m", "adtarget.cli", "budget", "show", "--ledger", ledger._path],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 3 and "corrupt" in result.stderr and "Traceback" not in result.stderr


# --- lazy import ------------------------------------------------------------------------------------------------
def test_dp_accounting_is_imported_only_to_compose_a_gaussian_window(tmp_path: Path) -> None:
    code = f"""
import sys
import adtarget
from adtarget import BudgetLedger, PrivacyBudget
from adtarget.budget import ReleaseAccounting
assert "dp_accounting" not in sys.modules, "import adtarget"
ledger = BudgetLedger({str(tmp_path / 'b.sqlite')!r}, advertisers=["acme"])
ledger.charge("acme", PrivacyBudget(1.0, 1e-6), "l", accounting=ReleaseAccounting((), (0.6, 0.3),
              PrivacyBudget(0.1, 1e-6)))
ledger.show(); ledger.remaining("acme")
assert "dp_accounting" not in sys.modules, "a Laplace release"
ledger.charge("acme", PrivacyBudget(1.0, 1e-6), "g", accounting=ReleaseAccounting((7.0, 15.0),
              basic=PrivacyBudget(0.1, 1e-7)))
assert "dp_accounting" not in sys.modules, "a Gaussian release in a basic window"
other = BudgetLedger({str(tmp_path / 'c.sqlite')!r}, advertisers=["acme"])
other.charge("acme", PrivacyBudget(1.0, 1e-6), "g", accounting=ReleaseAccounting((7.0, 15.0),
             basic=PrivacyBudget(0.1, 1e-7)))
assert "dp_accounting" in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
