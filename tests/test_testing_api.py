"""adtarget.testing: every ``__all__`` name exists and is documented, and importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import adtarget
import adtarget.testing as testing


def test_all_names_exist_and_have_docstrings():
    assert testing.__all__ == sorted(testing.__all__)
    for name in testing.__all__:
        obj = getattr(testing, name)
        assert obj.__doc__ and obj.__doc__.strip(), name


def test_reachable_as_an_attribute_of_adtarget():
    assert adtarget.testing is testing


def test_import_does_not_pull_heavy_libraries():
    code = ("import sys, adtarget.testing; "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'pyspark', 'matplotlib', 'scipy', 'diffprivlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
