"""The public API as a user's type checker sees it: mypy on a snippet of user code must find real types (not
``Any``) for the main names, and must reject a name that does not exist instead of typing it ``Any``."""

from __future__ import annotations

import re
import textwrap

import pytest

mypy_api = pytest.importorskip("mypy.api")

USER_CODE = textwrap.dedent('''
    import adtarget
    from adtarget import ReleaseSpec, SegmentCatalog, ingest, run
    from adtarget.reports import count_cells
    from adtarget.segments import ProxyScreen

    reveal_type(adtarget.ingest)
    reveal_type(ingest)
    reveal_type(ReleaseSpec)
    reveal_type(run)
    reveal_type(SegmentCatalog.default)
    reveal_type(count_cells)
    reveal_type(ProxyScreen)
    reveal_type(adtarget.synth.generate)
    reveal_type(adtarget.Taxonomy.default())
''')


def _mypy(tmp_path, code):
    snippet = tmp_path / "user_code.py"
    snippet.write_text(code)
    out, err, _ = mypy_api.run([str(snippet), "--no-incremental", "--cache-dir", str(tmp_path / ".mypy"),
                                "--ignore-missing-imports", "--no-error-summary"])
    return out + err


def test_users_type_checker_sees_real_types(tmp_path):
    out = _mypy(tmp_path, USER_CODE)
    revealed = re.findall(r'Revealed type is "(.*)"', out)
    assert len(revealed) == 9, out
    assert not [r for r in revealed if r == "Any"], out
    assert revealed[0] == revealed[1] and revealed[0].endswith("-> adtarget.events._ingest.IngestResult")
    assert "pseudonymizer: adtarget.events._pseudonym.Pseudonymizer" in revealed[0]
    assert "adtarget.reports._spec.ReleaseSpec" in revealed[2]
    assert "RunResult" in revealed[3]
    assert "SegmentCatalog" in revealed[4]
    assert "CellCounts" in revealed[5]
    assert "ProxyScreen" in revealed[6]
    assert "SyntheticData" in revealed[7]
    assert revealed[8] == "adtarget.reference._taxonomy.Taxonomy"


def test_an_unknown_or_moved_name_is_an_error_not_any(tmp_path):
    out = _mypy(tmp_path, "import adtarget\nadtarget.NoSuchName\nadtarget.CellCounts\n")
    assert out.count('has no attribute') == 2, out


def test_the_main_functions_parameters_are_typed(tmp_path):
    """A wrong argument to ``run``, ``release`` or ``SegmentCatalog`` is a type error in the user's code."""
    code = textwrap.dedent('''
        import adtarget
        from adtarget import SegmentCatalog, release, run

        run("events.parquet", "consent.sqlite", pseudonymizer=b"key", budget="budget.sqlite")
        release("events.parquet", None, None, ledger="budget.sqlite", random_state="seed")
        SegmentCatalog([], "iab-2.2", screen=["iab-2.2:1"])
    ''')
    out = _mypy(tmp_path, code)
    wrong = re.findall(r'Argument (?:\d+|"\w+") to "(\w+)"', out)
    assert sorted(wrong) == sorted(["run"] * 3 + ["release"] * 5 + ["SegmentCatalog"] * 2), out
