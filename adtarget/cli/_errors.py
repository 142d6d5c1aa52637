"""Exit codes and the one table that maps adtarget's errors to them (docs/cli.md "Exit codes").

A command-line user sees one line, ``adtarget: error: <message> (hint: <what to do>)``, never a traceback
(unless ``--debug``). Messages come from the library, which never puts a person id, a pseudonym or a key in
them; the hints here are fixed text.
"""

from __future__ import annotations

from adtarget.exceptions import (
    AdtargetError,
    BudgetExhaustedError,
    ConsentError,
    InputFormatError,
    LedgerError,
    ParameterError,
    ReportValidationError,
    SchemaError,
    TaxonomyError,
    UnknownAdvertiserError,
)

__all__ = [
    "EXIT_BUDGET",
    "EXIT_INPUT",
    "EXIT_OK",
    "EXIT_OTHER",
    "EXIT_REPORT",
    "EXIT_USAGE",
    "CommandInputError",
    "ReportAuditError",
    "UsageError",
    "describe",
]

EXIT_OK = 0
EXIT_OTHER = 1
EXIT_USAGE = 2
EXIT_INPUT = 3
EXIT_BUDGET = 4
EXIT_REPORT = 5


class UsageError(ParameterError):
    """A command-line argument or setting is wrong (exit 2). ``hint`` says what to do instead."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class CommandInputError(InputFormatError):
    """An input file or ledger named on the command line is missing or unusable (exit 3)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ReportAuditError(ReportValidationError):
    """``adtarget audit`` found problems in a report file (exit 5)."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


# (error class, exit code, default hint): the first matching row wins, so subclasses come first.
_TABLE: tuple[tuple[type[BaseException], int, str], ...] = (
    (BudgetExhaustedError, EXIT_BUDGET,
     "see 'adtarget budget show'; wait for the next accounting window or ask for a smaller --epsilon"),
    (ReportValidationError, EXIT_REPORT, "the report must follow adtarget.segment_report/v2 (or a stored v1) and the policy"),
    (UnknownAdvertiserError, EXIT_USAGE, "register it with 'adtarget advertiser add NAME' (see "
                                         "'adtarget advertiser list')"),
    (ParameterError, EXIT_USAGE, "see 'adtarget <command> --help' for the allowed values"),
    (SchemaError, EXIT_INPUT, "see docs/cli.md 'Input files' for the columns adtarget accepts"),
    (TaxonomyError, EXIT_INPUT, "check --taxonomy and --sensitivity-profile"),
    (ConsentError, EXIT_INPUT, "fix the rejected consent rows, or import them with --lenient"),
    (LedgerError, EXIT_INPUT, "check the ledger path and the ADTARGET_PSEUDONYM_KEY it was made with"),
    (InputFormatError, EXIT_INPUT, "check the file's path and format (Parquet or CSV)"),
    (FileNotFoundError, EXIT_INPUT, "check the path"),
    (PermissionError, EXIT_INPUT, "check the file's permissions"),
    (IsADirectoryError, EXIT_INPUT, "give a file, not a directory"),
    (NotADirectoryError, EXIT_INPUT, "check the path"),
    (AdtargetError, EXIT_OTHER, "rerun with --debug for details"),
    (OSError, EXIT_OTHER, "rerun with --debug for details"),
)


def describe(error: BaseException) -> tuple[int, str, str]:
    """``(exit code, one-line message, hint)`` for an error raised by a command."""
    code, hint = EXIT_OTHER, "this is a bug in adtarget: rerun with --debug and report the traceback"
    for cls, table_code, table_hint in _TABLE:
        if isinstance(error, cls):
            code, hint = table_code, table_hint
            break
    hint = getattr(error, "hint", None) or hint
    message = str(error) if not isinstance(error, OSError) or not error.filename else _os_message(error)
    if code == EXIT_OTHER and not isinstance(error, (AdtargetError, OSError)):
        message = f"unexpected {type(error).__name__}: {message}"
    return code, _one_line(message or type(error).__name__), _one_line(hint)


def _os_message(error: OSError) -> str:
    return f"{error.strerror or type(error).__name__}: {error.filename!s}"


_MAX_LINE = 2000


def _one_line(text: str) -> str:
    """One printable line of at most 2000 characters (a path or a name may hold control characters)."""
    line = "".join(c if c.isprintable() else "?" for c in " ".join(str(text).split()))
    return line if len(line) <= _MAX_LINE else line[:_MAX_LINE - 1] + "…"
