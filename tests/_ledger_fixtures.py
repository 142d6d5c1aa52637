"""Budget ledgers for tests: a release is charged to a registered advertiser only (issue 14, finding 7).

Public names only. ``register`` adds advertisers to a ledger file, e.g. the one a CLI test passes as
``--ledger`` (in-process tests can just use ``BudgetLedger(path, advertisers=[...])``).
"""

from __future__ import annotations

import os

import adtarget

#: the advertiser of ``adtarget run`` without ``--advertiser``, and of ``RunSettings()``
DEMO_ADVERTISER = "demo-advertiser"


def register(path: str | os.PathLike[str], *advertisers: str) -> str:
    """Register ``advertisers`` (default: ``demo-advertiser``) in the budget ledger at ``path`` (created if
    missing); returns ``str(path)`` so it can be used inline in an argument list."""
    adtarget.BudgetLedger(path, advertisers=advertisers or (DEMO_ADVERTISER,))
    return os.fspath(path)
