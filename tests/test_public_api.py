"""Contract tests for the package surface: every __all__ name exists, and `import adtarget` stays light."""

from __future__ import annotations

import json
import subprocess
import sys

import adtarget

HEAVY = ("pandas", "pyarrow", "pyspark", "matplotlib", "sklearn", "diffprivlib", "scipy", "numba")


def test_every_public_name_exists():
    for name in adtarget.__all__:
        assert getattr(adtarget, name) is not None, name


def test_public_names_are_documented():
    for name in adtarget.__all__:
        value = getattr(adtarget, name)
        if callable(value):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_import_adtarget_does_not_import_heavy_modules():
    code = (
        "import sys, json, adtarget; "
        f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == []


def test_errors_also_inherit_the_builtins_users_catch():
    assert issubclass(adtarget.ParameterError, ValueError)
    assert issubclass(adtarget.SchemaError, ValueError)
    assert issubclass(adtarget.BudgetExhaustedError, RuntimeError)
    assert issubclass(adtarget.RefusedColumnError, adtarget.SchemaError)
    for name in adtarget.__all__:
        value = getattr(adtarget, name)
        if (isinstance(value, type) and issubclass(value, Exception) and not issubclass(value, Warning)
                and value is not adtarget.AdtargetError):
            assert issubclass(value, adtarget.AdtargetError), name
