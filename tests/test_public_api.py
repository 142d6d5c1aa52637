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
    assert issubclass(adtarget.exceptions.ParameterError, ValueError)
    assert issubclass(adtarget.exceptions.SchemaError, ValueError)
    assert issubclass(adtarget.exceptions.BudgetExhaustedError, RuntimeError)
    assert issubclass(adtarget.exceptions.RefusedColumnError, adtarget.exceptions.SchemaError)
    for name in adtarget.__all__:
        value = getattr(adtarget, name)
        if (isinstance(value, type) and issubclass(value, Exception) and not issubclass(value, Warning)
                and value is not adtarget.AdtargetError):
            assert issubclass(value, adtarget.AdtargetError), name


def test_provenance_and_advertiser_errors_are_what_callers_catch():
    """Issue 14: a forged or copied provenance object is a TypeError, an unregistered advertiser a ParameterError."""
    assert issubclass(adtarget.exceptions.ProvenanceError, TypeError)
    assert issubclass(adtarget.exceptions.UnknownAdvertiserError, adtarget.exceptions.ParameterError)


def test_the_in_release_audit_is_gone_and_its_replacement_is_public():
    """The release no longer audits (issue 14, finding 3): the old names are gone; audit_proxies and ProxyScreen
    replace them, and run settings have no audit threshold."""
    import dataclasses

    for name in ("audit_counts", "AuditCounts", "audit_segments"):
        assert name not in adtarget.__all__ and not hasattr(adtarget, name)
    for module, name in ((adtarget.reports, "audit_proxies"), (adtarget.reports, "ProxyAudit"),
                         (adtarget.segments, "ProxyScreen"), (adtarget.budget, "Advertiser"),
                         (adtarget.exceptions, "UnknownAdvertiserError")):
        assert name in dir(module)
    assert "audit_t" not in {f.name for f in dataclasses.fields(adtarget.RunSettings)}
