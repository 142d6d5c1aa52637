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


def race(directory, worker: str, args_of, n: int) -> list[tuple[int, str, str]]:
    """Start ``n`` Python processes running ``worker`` (``args_of(i)`` its argv), wait until each has touched
    ``directory/ready-<i>``, release them all at once by creating ``directory/go``, and return each one's
    ``(returncode, stdout, stderr)``. Processes still running at the end are killed."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    directory, go = Path(directory), Path(directory) / "go"
    procs = [subprocess.Popen([sys.executable, "-c", worker, *map(str, args_of(i))], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(n)]
    try:
        deadline = time.monotonic() + 120
        while len(list(directory.glob("ready-*"))) < n:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, results)]
