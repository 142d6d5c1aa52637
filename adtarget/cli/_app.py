"""The ``adtarget`` command: the parser, the global options, and the one place errors become exit codes.

Exit codes (docs/cli.md): 0 ok, 1 other error, 2 usage (bad option or setting, missing key), 3 input error
(missing or malformed file, refused column, bad consent rows, ledger problem), 4 privacy budget exhausted,
5 report invalid. A failure prints one line on stderr, ``adtarget: error: <message> (hint: <what to do>)``;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

from adtarget.cli import _advertiser, _audit, _budget, _consent, _demo, _run, _synth
from adtarget.cli._errors import EXIT_OK, EXIT_OTHER, EXIT_USAGE, UsageError, describe
from adtarget.cli._output import Output, one_line_warnings

__all__ = ["build_parser", "main"]

_COMMANDS = (_demo, _synth, _run, _consent, _advertiser, _budget, _audit)
_EPILOG = ("exit codes: 0 ok, 1 other error, 2 usage, 3 input error, 4 budget exhausted, 5 report invalid. "
           "Environment: ADTARGET_PSEUDONYM_KEY (hex key, for run and consent), ADTARGET_HOME (ledgers; "
           "default ~/.adtarget). Details: docs/cli.md")


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def _common() -> argparse.ArgumentParser:
    """Global options, accepted before or after the command (``adtarget --json run ...`` or ``run ... --json``)."""
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print one machine-readable JSON document on stdout")
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                        help="print nothing on success")
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show a traceback on errors")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The full ``adtarget`` parser."""
    from adtarget import __version__

    common = _common()
    parser = _Parser(prog="adtarget", parents=[common], epilog=_EPILOG,
                     description="Privacy-preserving ad targeting: eligibility gate, interest segments and "
                                 "differentially private segment reports.")
    parser.add_argument("--version", action="version", version=f"adtarget {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=_Parser)
    for module in _COMMANDS:
        module.add_parser(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``adtarget`` command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    out = Output(json_mode="--json" in args_list, quiet="--quiet" in args_list or "-q" in args_list)
    debug = "--debug" in args_list
    try:
        with one_line_warnings():
            args = build_parser().parse_args(args_list)
            out = Output(json_mode=getattr(args, "json", False), quiet=getattr(args, "quiet", False))
            return int(args.handler(args, out))
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        out.error("interrupted", "nothing after the interrupted step was written", 130)
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place errors become exit codes
        return _fail(exc, out, debug)


def _fail(error: Exception, out: Output, debug: bool) -> int:
    code, message, hint = describe(error)
    if debug:
        traceback.print_exception(error, file=out.stderr)
    out.error(message, hint, code)
    return code if code else EXIT_OTHER


def run_module() -> Any:
    """Entry point of ``python -m adtarget.cli``."""
    raise SystemExit(main())
