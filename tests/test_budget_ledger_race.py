"""The race: 8 real processes charge ε = 0.2 against a cap of 1.0 at the same moment.

"acme" is registered first (a charge goes to a registered advertiser only). Each process opens the ledger,
reports ready, waits for a start file, then charges. Exactly 5 must succeed, 3 must get BudgetExhaustedError,
and the ledger must hold exactly 1.0.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from _ledger_fixtures import race

from adtarget import BudgetLedger, PrivacyBudget

WORKER = """
import sys, time
from pathlib import Path
from adtarget import BudgetLedger, PrivacyBudget
from adtarget.exceptions import BudgetExhaustedError

path, me, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
ledger = BudgetLedger(path)
Path(go.parent, "ready-" + me).touch()
while not go.exists():
    time.sleep(0.001)
try:
    ledger.charge("acme", PrivacyBudget(0.2), "query-" + me)
    print("charged")
except BudgetExhaustedError:
    print("exhausted")
"""


def test_eight_processes_race_for_five_slots(tmp_path: Path) -> None:
    path = tmp_path / "budget.sqlite"
    BudgetLedger(path, advertisers=["acme"]).set_caps(advertiser_cap=PrivacyBudget(1.0), global_cap=PrivacyBudget(10.0))
    results = race(tmp_path, WORKER, lambda i: (path, i, tmp_path / "go"), 8)
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    outcomes = sorted(out.strip() for _, out, _ in results)
    assert outcomes == ["charged"] * 5 + ["exhausted"] * 3
    with closing(sqlite3.connect(path)) as conn:
        spent = [row[0] for row in conn.execute("SELECT epsilon FROM spend")]
    assert len(spent) == 5 and math.fsum(spent) == pytest.approx(1.0, abs=1e-12)
    assert BudgetLedger(path).remaining("acme")[0].epsilon == pytest.approx(0.0, abs=1e-12)
