"""Six processes at once update consent (single records and imports), forget persons, charge the budget and
release against the same two ledgers. Invariants: no lost update (each person's final consent is the last
write by updated_at), no overspent budget (per advertiser and globally), every successful charge is recorded,
and no raw sqlite3 error or "database is locked" escapes."""

from __future__ import annotations

import json
import sqlite3

import pytest
from _fault_helpers import KEY, finish, spawn

from adtarget import BudgetLedger, ConsentLedger, PrivacyBudget, Pseudonymizer

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
N_PROCS = 6
N_WRITES = 30
PEOPLE = [f"c{j}" for j in range(40)]
FORGOTTEN = [f"d{j}" for j in range(8)]
BASE = 1_700_000_000
GLOBAL_CAP = PrivacyBudget(6.0, 1e-3)
ADVERTISER_CAP = PrivacyBudget(2.0, 1e-4)


def plan(i: int) -> list[dict]:
    """Process ``i``'s consent writes: full records with globally unique ``updated_at`` per person."""
    writes = []
    for k in range(N_WRITES):
        person = PEOPLE[(i * 7 + k * 3) % len(PEOPLE)]
        writes.append({"person_id": person, "updated_at": BASE + 1000 * k + 10 * i,
                       "ads_personalization": "opt_in" if (i + k) % 2 else "opt_out",
                       "cross_service": (i * k) % 3 == 0, "birth_year": 1950 + (i * 13 + k) % 50,
                       "kind": "import" if k % 5 == 4 else "single"})
    for j, person in enumerate(FORGOTTEN):  # older writes for persons somebody forgets
        writes.append({"person_id": person, "updated_at": BASE + 500 + 10 * i + j, "ads_personalization": "opt_in",
                       "cross_service": True, "birth_year": 1990, "kind": "single"})
    return writes


CHILD = """
sys.path.insert(0, {tests!r})
from _release_fixtures import END, assignments_for, gate, world_rows
from adtarget import BudgetLedger, ConsentLedger, PrivacyBudget, ReleaseSpec, release
from datetime import datetime, timezone
i = {i}
writes = json.loads({writes!r})
rows, people = world_rows(seed=2, n_persons=60)
eligible = gate(rows, people)
assignments = assignments_for(eligible)
consent, budget = ConsentLedger({consent!r}, PZ), BudgetLedger({budget!r})
errors, charged, released = {{}}, [], []
def attempt(fn):
    try:
        return fn()
    except Exception as exc:
        name = type(exc).__module__ + "." + type(exc).__name__
        if "locked" in str(exc) or "busy" in str(exc):
            name += " (locked)"
        errors[name] = errors.get(name, 0) + 1
def iso(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
def single(w):
    return consent.record(w["person_id"], updated_at=w["updated_at"], ads_personalization=w["ads_personalization"],
                          cross_service=w["cross_service"], birth_year=w["birth_year"], policy_version="2018-05-14")
def imported(w):
    cols = {{"person_id": [w["person_id"]], "birth_year": [w["birth_year"]],
            "ads_personalization": [w["ads_personalization"]], "cross_service": [w["cross_service"]],
            "policy_version": ["2018-05-14"], "updated_at": [iso(w["updated_at"])], "deleted": [False],
            "terminated": [False], "location_deleted": [False], "jurisdiction": ["US"]}}
    return consent.import_records(cols)
def charge(k):
    c = budget.charge(f"adv-{{i}}", PrivacyBudget(0.25), f"rq-{{i}}-{{k}}")
    charged.append(c.charge_id)
def do_release(k):
    spec = ReleaseSpec(advertiser=f"adv-{{i}}", segment_ids=tuple(s.segment_id for s in assignments.segments),
                       epsilon=0.25, delta=1e-6, salt=f"s{{i}}x{{k}}")
    result = release(eligible, assignments, spec, ledger=budget)
    released.append(result.report.report_id)
while not os.path.exists({go!r}):
    time.sleep(0.01)
for k, w in enumerate(writes):
    attempt(lambda: imported(w) if w["kind"] == "import" else single(w))
    if k % 4 == 0:
        attempt(lambda: charge(k))
    if k % 6 == 0:
        attempt(lambda: do_release(k))
    if i == 0 and k == 15:
        for person in {forgotten!r}:
            attempt(lambda: consent.forget(person))
print("RESULT " + json.dumps({{"errors": errors, "charged": len(charged), "released": len(released)}}))
"""


@pytest.mark.slow
def test_six_processes_consent_budget_and_release(tmp_path):
    consent_path, budget_path, go = tmp_path / "consent.sqlite", tmp_path / "budget.sqlite", tmp_path / "go"
    ConsentLedger(consent_path, Pseudonymizer(KEY)).close()
    advertisers = [f"adv-{i}" for i in range(N_PROCS)]  # a release goes to a registered advertiser only
    BudgetLedger(budget_path, advertisers=advertisers).set_caps(advertiser_cap=ADVERTISER_CAP, global_cap=GLOBAL_CAP)
    tests_dir = str(__import__("pathlib").Path(__file__).parent)
    procs = [spawn(CHILD.format(i=i, writes=json.dumps(plan(i)), consent=str(consent_path), budget=str(budget_path),
                                go=str(go), forgotten=FORGOTTEN, tests=tests_dir)) for i in range(N_PROCS)]
    go.touch()
    results = []
    for proc in procs:
        code, out, err = finish(proc, timeout=600)
        assert code == 0, err[-3000:]
        results.append(json.loads(out.split("RESULT ", 1)[1]))

    # only budget exhaustion may fail; no sqlite3 error, no LedgerError, nothing "locked"
    for r in results:
        assert set(r["errors"]) <= {"adtarget.exceptions.BudgetExhaustedError"}, r["errors"]
    assert sum(r["released"] for r in results) > 0  # releases reached the ledger (registered advertisers)
    _check_budget(budget_path, results)
    _check_consent(consent_path)


def _check_budget(path, results) -> None:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT advertiser, epsilon, delta, status FROM spend").fetchall()
    assert len(rows) == sum(r["charged"] + r["released"] for r in results)  # nothing lost
    total = sum(eps for _, eps, _, _ in rows)
    assert total <= GLOBAL_CAP.epsilon * (1 + 1e-12)
    assert total == pytest.approx(GLOBAL_CAP.epsilon)  # demand exceeds the cap: it is used up, not overspent
    for adv in {a for a, *_ in rows}:
        assert sum(eps for a, eps, _, _ in rows if a == adv) <= ADVERTISER_CAP.epsilon * (1 + 1e-12)
    assert all(status == "reported" for a, eps, d, status in rows if d > 0)  # every release stored its report


def _check_consent(path) -> None:
    writes = [w for i in range(N_PROCS) for w in plan(i)]
    last = {}
    for w in writes:
        if w["person_id"] in PEOPLE and (w["person_id"] not in last or w["updated_at"] > last[w["person_id"]]["updated_at"]):
            last[w["person_id"]] = w
    pz = Pseudonymizer(KEY)
    with ConsentLedger(path, pz) as ledger:
        ledger.check_integrity()
        for person, w in last.items():
            current = ledger.export_person(person)["current"]
            assert current["updated_at"] == w["updated_at"], person
            assert current["ads_personalization"] == w["ads_personalization"]
            assert current["cross_service"] == w["cross_service"] and current["birth_year"] == w["birth_year"]
        for person in FORGOTTEN:
            assert ledger.export_person(person)["current"]["deleted"] is True
