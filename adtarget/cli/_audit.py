"""``adtarget audit REPORT``: check a report file before it goes to an advertiser: the v1 schema (no unknown
fields), the report's rules (sizes at or above the minimum, no pseudonym-like values), the policy fields and
sensitive segment ids (docs/cli.md "audit"). Exit 5 when anything is wrong."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._errors import EXIT_OK, ReportAuditError
from adtarget.cli._output import Output

__all__ = ["add_parser"]


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("audit", parents=[common], help="check a report file (schema, policy, sensitive)",
                              description="Check a segment report: schema adtarget.segment_report/v1, report "
                                          "rules, policy fields and sensitive segments. Exit 5 if it fails.")
    p.add_argument("report", type=Path, metavar="REPORT", help="report.json to check")
    opt.add_policy_options(p)
    p.set_defaults(handler=_audit)


def _audit(args: argparse.Namespace, out: Output) -> int:
    from adtarget.reports._report import audit_report

    result = audit_report(args.report, opt.policy(args), opt.safe_taxonomy(args))
    data = {"ok": result.ok, "report": result.path, "segments": result.n_segments,
            "problems": list(result.problems)}
    if not result.ok:
        if out.json_mode:
            out.result(data)
            out.json_mode = False  # the error line follows on stderr only
        raise ReportAuditError(str(result), hint="do not send this report; regenerate it with 'adtarget run'")
    out.result(data, str(result))
    return EXIT_OK
