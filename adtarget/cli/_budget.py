"""``adtarget budget show``: what each advertiser and everyone together spent and have left in the current
accounting window (docs/cli.md "budget"; docs/privacy/budget-ledger.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._config import default_budget_ledger, ledger_path
from adtarget.cli._errors import EXIT_OK
from adtarget.cli._output import Output

__all__ = ["add_parser"]


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("budget", parents=[common], help="show the privacy budget ledger",
                              description="The privacy budget ledger (default: $ADTARGET_HOME/budget.sqlite).")
    sub = p.add_subparsers(dest="budget_command", metavar="ACTION", required=True)
    show = sub.add_parser("show", parents=[common], help="spent, caps and remaining ε/δ in the current window")
    show.add_argument("--ledger", type=Path, metavar="PATH",
                      help="budget ledger (default: $ADTARGET_HOME/budget.sqlite, ~/.adtarget/budget.sqlite)")
    show.add_argument("--advertiser", type=opt.advertiser, metavar="A", help="only this advertiser (and global)")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace, out: Output) -> int:
    from adtarget.budget._ledger import BudgetLedger

    path = ledger_path(args.ledger, default_budget_ledger(), "budget ledger")
    ledger = BudgetLedger(path)
    rows = ledger.show()
    if args.advertiser is not None:
        wanted = ledger.advertiser(args.advertiser).advertiser_id  # UnknownAdvertiserError when unregistered
        rows = [r for r in rows if r["scope"] == "global" or r["advertiser"] == wanted]
    caps = ledger.caps
    data = {"ok": True, "ledger": str(path), "window_days": caps.window_days, "rows": rows}
    out.result(data, _table(data))
    return EXIT_OK


def _table(data: dict[str, Any]) -> str:
    rows = data["rows"]
    lines = [f"budget ledger {data['ledger']}",
             f"window {rows[-1]['window_start']} .. {rows[-1]['window_end']} ({data['window_days']:g} days)",
             f"  {'who':<24} {'ε spent':>9} {'ε cap':>7} {'ε left':>9} {'δ spent':>9} {'δ cap':>7} {'δ left':>9}"]
    for r in rows:
        who = "(all advertisers)" if r["scope"] == "global" else str(r["advertiser"])
        lines.append(f"  {who[:24]:<24} {r['epsilon_spent']:>9.4g} {r['epsilon_cap']:>7.4g} "
                     f"{r['epsilon_remaining']:>9.4g} {r['delta_spent']:>9.3g} {r['delta_cap']:>7.3g} "
                     f"{r['delta_remaining']:>9.3g}")
    return "\n".join(lines)
