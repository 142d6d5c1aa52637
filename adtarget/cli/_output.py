"""What a command prints: human text on stdout, one JSON document with ``--json``, nothing with ``--quiet``;
progress bars and warnings on stderr, each warning on one line. Every line of human text is printable: a
character that is not (a control character, an escape sequence's ESC) shows as ``?``; a name put into a line
goes through :func:`printable`, so a newline in a file name never starts a line of its own."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

__all__ = ["Output", "one_line_warnings", "printable"]


def printable(text: object) -> str:
    """``text`` as one printable line: every character that is not printable (newlines included) as ``?``."""
    return "".join(c if c.isprintable() else "?" for c in str(text))


class Output:
    """The channel every command writes through.

    Parameters
    ----------
    json_mode : print exactly one JSON document on stdout (and no progress bars).
    quiet : print nothing on success (errors and warnings still go to stderr).
    """

    def __init__(self, *, json_mode: bool = False, quiet: bool = False, stdout: TextIO | None = None,
                 stderr: TextIO | None = None) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr

    def text(self, text: str) -> None:
        """Human-readable output (suppressed by ``--json`` and ``--quiet``), each line printable."""
        if not (self.json_mode or self.quiet):
            print("\n".join(printable(line) for line in text.split("\n")), file=self.stdout)

    def result(self, data: dict[str, Any], text: str | None = None) -> None:
        """A command's result: ``data`` as JSON with ``--json``, else ``text`` (if any)."""
        if self.json_mode:
            print(json.dumps(data, indent=2, sort_keys=True, default=str), file=self.stdout)
        elif text is not None:
            self.text(text)

    def error(self, message: str, hint: str, code: int) -> None:
        """The one stderr line of a failed command (and, with ``--json``, an error document on stdout)."""
        print(f"adtarget: error: {message} (hint: {hint})", file=self.stderr)
        if self.json_mode:
            print(json.dumps({"ok": False, "exit_code": code, "error": message, "hint": hint}), file=self.stdout)

    @contextmanager
    def steps(self, total: int, desc: str) -> Iterator[Any]:
        """A progress bar over ``total`` named steps on stderr; call the yielded function at each step start.

        The bar shows only on a terminal and never with ``--json`` or ``--quiet``.
        """
        from tqdm import tqdm

        disable = True if (self.json_mode or self.quiet) else None  # None: only when stderr is a terminal
        bar = tqdm(total=total, desc=desc, file=self.stderr, disable=disable, leave=False,
                   bar_format="{desc} [{n_fmt}/{total_fmt}] {bar:30} {elapsed}{postfix}")
        started = False

        def step(name: str) -> None:
            nonlocal started
            if started:
                bar.update(1)
            started = True
            bar.set_postfix_str(name)

        try:
            yield step
            if started:
                bar.update(1)
        finally:
            bar.close()


def _show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
          file: TextIO | None = None, line: str | None = None) -> None:
    text = " ".join(str(message).split())
    print(f"adtarget: warning: {category.__name__}: {text}", file=file if file is not None else sys.stderr)


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """Show every warning as one ``adtarget: warning: ...`` line on stderr while a command runs."""
    with warnings.catch_warnings():
        warnings.showwarning = _show
        yield
