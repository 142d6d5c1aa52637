"""``adtarget advertiser add|list|show``: the advertisers the budget ledger charges (docs/cli.md "advertiser";
docs/privacy/budget-ledger.md "Advertisers").

A release is charged to a registered advertiser only, under its canonical id (``Acme``, ``ACME`` and
``ａｃｍｅ`` are one advertiser), and a name that looks like a registered one is refused.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._config import default_budget_ledger, ledger_path
from adtarget.cli._errors import EXIT_OK
from adtarget.cli._output import Output, printable

__all__ = ["add_parser"]


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("advertiser", parents=[common], help="register and list advertisers",
                              description="The advertisers of the budget ledger (default: "
                                          "$ADTARGET_HOME/budget.sqlite). Releases go to registered ones only.")
    sub = p.add_subparsers(dest="advertiser_command", metavar="ACTION", required=True)
    ledger_help = "budget ledger (default: $ADTARGET_HOME/budget.sqlite, ~/.adtarget/budget.sqlite)"
    add = sub.add_parser("add", parents=[common], help="register an advertiser (idempotent)")
    add.add_argument("name", metavar="NAME", help="the advertiser's name; its canonical id is NFKC, case-folded")
    add.add_argument("--epsilon-cap", type=opt.epsilon, metavar="E",
                     help="its own ε cap per window (default: the ledger's advertiser cap)")
    add.add_argument("--delta-cap", type=opt.delta, metavar="D", help="its own δ cap (with --epsilon-cap)")
    listing = sub.add_parser("list", parents=[common], help="every registered advertiser")
    show = sub.add_parser("show", parents=[common], help="one advertiser: id, cap, spent and left")
    show.add_argument("name", metavar="NAME", help="any spelling of its canonical id")
    for parser, handler in ((add, _add), (listing, _list), (show, _show)):
        parser.add_argument("--ledger", type=Path, metavar="PATH", help=ledger_help)
        parser.set_defaults(handler=handler)


def _ledger(args: argparse.Namespace) -> tuple[Path, Any]:
    from adtarget.budget._ledger import BudgetLedger

    path = ledger_path(args.ledger, default_budget_ledger(), "budget ledger")
    return path, BudgetLedger(path)


def _as_dict(advertiser: Any) -> dict[str, Any]:
    cap = advertiser.cap
    return {"advertiser_id": advertiser.advertiser_id, "display_name": advertiser.display_name,
            "epsilon_cap": None if cap is None else cap.epsilon, "delta_cap": None if cap is None else cap.delta,
            "registered_at": advertiser.registered_at}


def _cap_text(row: dict[str, Any]) -> str:
    return "ledger default" if row["epsilon_cap"] is None else f"ε={row['epsilon_cap']:g}, δ={row['delta_cap']:g}"


def _add(args: argparse.Namespace, out: Output) -> int:
    from adtarget.budget._spec import PrivacyBudget
    from adtarget.cli._errors import UsageError

    if args.delta_cap is not None and args.epsilon_cap is None:
        raise UsageError("--delta-cap needs --epsilon-cap", hint="give both, or neither for the ledger default")
    cap = None if args.epsilon_cap is None else PrivacyBudget(args.epsilon_cap, args.delta_cap or 0.0)
    path, ledger = _ledger(args)
    row = _as_dict(ledger.register_advertiser(args.name, cap=cap))
    out.result({"ok": True, "ledger": str(path), "advertiser": row},
               f"advertiser {row['advertiser_id']!r} registered in {printable(path)} (cap: {_cap_text(row)})")
    return EXIT_OK


def _list(args: argparse.Namespace, out: Output) -> int:
    path, ledger = _ledger(args)
    rows = [_as_dict(a) for a in ledger.advertisers()]
    lines = [f"budget ledger {printable(path)}: {len(rows)} advertiser(s)",
             *(f"  {r['advertiser_id']:<32} {_cap_text(r):<24} registered {r['registered_at']}" for r in rows)]
    out.result({"ok": True, "ledger": str(path), "advertisers": rows}, "\n".join(lines))
    return EXIT_OK


def _show(args: argparse.Namespace, out: Output) -> int:
    path, ledger = _ledger(args)
    row = _as_dict(ledger.advertiser(args.name))
    left, glob = ledger.remaining(row["advertiser_id"])
    data = {"ok": True, "ledger": str(path), "advertiser": row,
            "remaining": {"epsilon": left.epsilon, "delta": left.delta},
            "global_remaining": {"epsilon": glob.epsilon, "delta": glob.delta}}
    out.result(data, f"advertiser {row['advertiser_id']!r} (registered as {row['display_name']!r} at "
                     f"{row['registered_at']}; cap: {_cap_text(row)})\n"
                     f"  left in this window: ε={left.epsilon:.4g}, δ={left.delta:.3g} "
                     f"(all advertisers: ε={glob.epsilon:.4g}, δ={glob.delta:.3g})")
    return EXIT_OK
