"""Budget ledgers for tests: a release is charged to a registered advertiser only (issue 14, finding 7).

Public names only. ``registered_ledger`` opens (or creates) a ledger with advertisers registered;
``register`` adds them to an existing file (e.g. the one a CLI test passes as ``--ledger``);
``REGISTER_SNIPPET`` is the same for the Python code a test runs in a subprocess.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import adtarget

#: the advertiser most tests release to, and the one ``adtarget demo`` / ``adtarget run`` use by default
ACME = "acme"
DEMO_ADVERTISER = "demo-advertiser"


def registered_ledger(path: str | os.PathLike[str], *advertisers: str,
                      clock: Callable[[], float] | None = None, **caps: Any) -> adtarget.BudgetLedger:
    """A BudgetLedger at ``path`` with ``advertisers`` (default: ``acme``) registered; ``caps`` go to set_caps."""
    ledger = adtarget.BudgetLedger(path, advertisers=advertisers or (ACME,), clock=clock)
    if caps:
        ledger.set_caps(**caps)
    return ledger


def register(path: str | os.PathLike[str], *advertisers: str) -> str:
    """Register ``advertisers`` (default: ``demo-advertiser``, the CLI's default) in the ledger file at ``path``;
    returns ``str(path)`` so it can be used inline in an argument list."""
    adtarget.BudgetLedger(path, advertisers=advertisers or (DEMO_ADVERTISER,))
    return os.fspath(path)


#: Python source that registers ``acme`` in the ledger at ``sys.argv[1]`` (for subprocess workers)
REGISTER_SNIPPET = "import sys, adtarget; adtarget.BudgetLedger(sys.argv[1], advertisers=['acme'])\n"
