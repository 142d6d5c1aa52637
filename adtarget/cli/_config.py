"""Where the command line keeps its state, and where the pseudonymisation key comes from.

* ``$ADTARGET_HOME`` (default ``~/.adtarget``) holds ``budget.sqlite`` (the privacy-budget ledger) and
  ``consent.sqlite`` (the consent ledger), both created on first use.
* ``ADTARGET_PSEUDONYM_KEY`` holds the key (hex, 16-64 bytes) that turns account ids into pseudonyms; the
  consent ledger refuses a key other than the one it was created with. It is never printed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from adtarget.cli._errors import CommandInputError, UsageError

__all__ = ["HOME_VAR", "KEY_VAR", "adtarget_home", "default_budget_ledger", "default_consent_ledger",
           "existing_file", "output_dir", "pseudonymizer_from_env"]

HOME_VAR = "ADTARGET_HOME"
KEY_VAR = "ADTARGET_PSEUDONYM_KEY"
_KEY_HINT = ("export ADTARGET_PSEUDONYM_KEY=<hex key>, the key your consent ledger was made with; a new one: "
             "python -c 'import secrets; print(secrets.token_hex(32))'")


def adtarget_home() -> Path:
    """``$ADTARGET_HOME``, or ``~/.adtarget`` when unset."""
    value = os.environ.get(HOME_VAR)
    return Path(value).expanduser() if value else Path.home() / ".adtarget"


def default_budget_ledger() -> Path:
    """``$ADTARGET_HOME/budget.sqlite``."""
    return adtarget_home() / "budget.sqlite"


def default_consent_ledger() -> Path:
    """``$ADTARGET_HOME/consent.sqlite``."""
    return adtarget_home() / "consent.sqlite"


def ledger_path(path: Path | None, default: Path, what: str) -> Path:
    """``path`` (or ``default``) with its directory created, for a ledger created on first use."""
    target = path if path is not None else default
    if target.is_dir():
        raise CommandInputError(f"{what} {str(target)!r} is a directory, not a ledger file",
                                hint="give the path of a .sqlite file")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandInputError(f"cannot create the directory of {what} {str(target)!r}: {exc.strerror}",
                                hint=f"set {HOME_VAR} or pass a writable path") from None
    return target


def existing_file(path: Path, what: str, hint: str | None = None) -> Path:
    """``path`` if it is an existing file, else CommandInputError naming ``what``."""
    if not path.exists():
        raise CommandInputError(f"{what} {str(path)!r} does not exist", hint=hint or "check the path")
    if path.is_dir():
        raise CommandInputError(f"{what} {str(path)!r} is a directory, not a file", hint=hint or "check the path")
    return path


def output_dir(path: Path) -> Path:
    """``path`` created as a directory (with parents); CommandInputError if it is a file or not writable."""
    if path.exists() and not path.is_dir():
        raise CommandInputError(f"--out {str(path)!r} exists and is not a directory", hint="give a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CommandInputError(f"--out {str(path)!r} cannot be created: {exc.strerror}",
                                hint="give a writable directory") from None
    return path


def pseudonymizer_from_env() -> Any:
    """The Pseudonymizer keyed by ``ADTARGET_PSEUDONYM_KEY``; a missing or malformed key is a UsageError."""
    from adtarget.events._pseudonym import Pseudonymizer
    from adtarget.exceptions import ParameterError

    if not os.environ.get(KEY_VAR, "").strip():
        raise UsageError(f"the pseudonymisation key is missing: environment variable {KEY_VAR} is not set",
                         hint=_KEY_HINT)
    try:
        return Pseudonymizer.from_env(KEY_VAR)
    except ParameterError as exc:
        raise UsageError(str(exc), hint=_KEY_HINT) from None
