"""``adtarget audit REPORT``: check a report file before it goes to an advertiser: the v1 schema (no unknown
fields), the report's rules (sizes at or above the minimum, no pseudonym-like values), the policy fields and
sensitive segment ids (docs/cli.md "audit"). Exit 5 when anything is wrong, also when the file's bytes are no
report's text (not UTF-8, too large); exit 3 when REPORT is missing or not a regular file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._errors import EXIT_OK, CommandInputError, ReportAuditError
from adtarget.cli._output import Output, printable
from adtarget.exceptions import InputFormatError

__all__ = ["add_parser"]


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("audit", parents=[common], help="check a report file (schema, policy, sensitive)",
                              description="Check a segment report: schema adtarget.segment_report/v2 (or a stored v1), report "
                                          "rules, policy fields and sensitive segments. Exit 5 if it fails.")
    p.add_argument("report", type=Path, metavar="REPORT", help="report.json to check")
    opt.add_policy_options(p)
    p.set_defaults(handler=_audit)


_PATH_HINT = "give the path of a report file (the report.json that 'adtarget run' wrote)"


def _audit(args: argparse.Namespace, out: Output) -> int:
    from adtarget._core._files import regular_file
    from adtarget.reports._report import ReportAudit, audit_report

    policy, safe_taxonomy = opt.policy(args), opt.safe_taxonomy(args)
    try:
        regular_file(args.report, "report")
    except InputFormatError as exc:  # nothing to audit: exit 3
        raise CommandInputError(str(exc), hint=_PATH_HINT) from None
    try:
        result = audit_report(args.report, policy, safe_taxonomy)
    except InputFormatError as exc:  # a regular file whose bytes are no report's text: a failed audit (exit 5)
        result = ReportAudit(str(args.report), False, 0, (str(exc),))
    data = {"ok": result.ok, "report": result.path, "segments": result.n_segments,
            "problems": list(result.problems)}
    if not result.ok:
        if out.json_mode:
            out.result(data)
            out.json_mode = False  # the error line follows on stderr only
        raise ReportAuditError(str(result), hint="do not send this report; regenerate it with 'adtarget run'")
    out.result(data, printable(result))  # one line, also for a report path holding a newline
    return EXIT_OK
