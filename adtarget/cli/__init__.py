"""The ``adtarget`` command line: ``demo``, ``synth``, ``run``, ``consent``, ``budget``, ``audit``.

``main(argv)`` returns the exit code (0 ok, 1 other, 2 usage, 3 input, 4 budget exhausted, 5 report invalid);
docs/cli.md is the reference. Heavy libraries are imported only by the command that needs them.
"""

from __future__ import annotations

from adtarget.cli._app import main

__all__ = ["main"]
