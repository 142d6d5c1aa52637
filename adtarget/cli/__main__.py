"""``python -m adtarget.cli``."""

from adtarget.cli._app import run_module

run_module()
