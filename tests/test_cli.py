"""The command line as a user drives it: every command on good input, and a table of bad inputs that must each
fail with the documented exit code and exactly one line on stderr, never a traceback.

One small synthetic dataset and one first run are shared by the module (subprocesses, small sizes). A run is
charged to a registered advertiser only: the module registers "acme" in its home ledger with
``adtarget advertiser add``, and every other ledger a test names gets "demo-advertiser" (the run's default).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _ledger_fixtures import register

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
OTHER_KEY = "ff" * 32


def cli(*args: str, env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "adtarget.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A home directory, a key, synthetic data, and one run whose outputs later tests read."""
    root = tmp_path_factory.mktemp("cli")
    env = {**os.environ, "ADTARGET_HOME": str(root / "home"), "ADTARGET_PSEUDONYM_KEY": KEY}
    env.pop("PYTHONWARNINGS", None)
    ok(cli("synth", "--events", "150000", "--seed", "4", "--out", str(root / "data"), env=env))
    ok(cli("advertiser", "add", "Acme", env=env))  # registered as its canonical id, "acme"
    first = ok(cli("--json", "run", "--events", str(root / "data/events.parquet"),
                   "--consent", str(root / "data/consent.csv"), "--out", str(root / "run1"),
                   "--advertiser", "acme", env=env))
    return {"root": root, "env": env, "data": root / "data", "run1": root / "run1",
            "first": json.loads(first.stdout)}


# --- good input ----------------------------------------------------------------------------------------------
def test_help_lists_every_command_and_the_exit_codes(world):
    out = ok(cli("--help", env=world["env"])).stdout
    for command in ("demo", "synth", "run", "consent", "budget", "audit"):
        assert command in out
    assert "4 budget exhausted" in out


def test_console_script_is_installed_and_reports_its_version(world):
    script = shutil.which("adtarget", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the console script is not installed in this environment")
    result = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.startswith("adtarget ")


def test_synth_writes_events_and_consent(world):
    assert (world["data"] / "events.parquet").stat().st_size > 0
    assert (world["data"] / "consent.csv").read_text().startswith("\"person_id\"")


def test_run_writes_every_output_and_accounts_for_every_row(world):
    doc = world["first"]
    assert doc["ok"] is True and doc["advertiser"] == "acme"
    for name in ("report", "summary", "assignments", "explanation"):
        assert Path(doc["files"][name]).is_file()
    s = json.loads((world["run1"] / "summary.json").read_text())
    assert s["rows"]["input"] == 150_000
    assert s["rows"]["input"] == s["rows"]["quarantined"] + sum(s["excluded"].values()) + s["eligible_events"]
    report = json.loads((world["run1"] / "report.json").read_text())
    assert report["schema"] == "adtarget.segment_report/v2" and report["advertiser"] == "acme"
    assert doc["consent_import"]["accepted"] == doc["consent_import"]["rows"] > 0
    assert (world["run1"] / "consent.sqlite").is_file()


def test_an_identical_run_returns_the_stored_report_without_spending(world, tmp_path):
    again = ok(cli("run", "--events", str(world["data"] / "events.parquet"),
                   "--consent", str(world["run1"] / "consent.sqlite"), "--out", str(tmp_path),
                   "--advertiser", "acme", env=world["env"]))
    assert "spent nothing new" in again.stdout
    assert (tmp_path / "report.json").read_text() == (world["run1"] / "report.json").read_text()


def test_budget_show_lists_the_advertiser_and_the_global_row(world):
    rows = json.loads(ok(cli("budget", "show", "--json", env=world["env"])).stdout)["rows"]
    acme = next(r for r in rows if r["advertiser"] == "acme")
    assert acme["epsilon_spent"] == pytest.approx(1.0) and acme["epsilon_cap"] == 4.0
    assert rows[-1]["scope"] == "global"
    text = ok(cli("budget", "show", "--advertiser", "ACME", env=world["env"])).stdout
    assert "acme" in text and "(all advertisers)" in text
    # an unregistered advertiser has no row to show: exit 2 with the hint to register it
    unknown = cli("budget", "show", "--advertiser", "nobody-yet", env=world["env"])
    _check_one_line_failure(unknown, 2)
    assert "'nobody-yet' is not registered" in unknown.stderr and "advertiser add" in unknown.stderr


def test_audit_passes_a_report_the_run_wrote(world):
    result = ok(cli("audit", str(world["run1"] / "report.json"), env=world["env"]))
    assert ": OK (" in result.stdout


def _member(world) -> str:
    """The account id of a person with at least one segment in the first run's assignments."""
    import numpy as np
    import pyarrow.parquet as pq

    from adtarget.events import Pseudonymizer

    table = pq.read_table(world["run1"] / "assignments.parquet")
    columns = [c for c in table.column_names if c != "pseudonym"]
    member = np.zeros(table.num_rows, dtype=bool)
    for c in columns:
        member |= table.column(c).to_numpy(zero_copy_only=False)
    hexes = set(np.asarray(table.column("pseudonym").to_pylist())[member].tolist())
    ids = pq.read_table(world["data"] / "events.parquet", columns=["person_id"]).column("person_id").to_numpy()
    ids = np.unique(ids)
    pseudonyms = Pseudonymizer(bytes.fromhex(KEY)).pseudonymize(ids)
    return str(next(i for i, p in zip(ids.tolist(), pseudonyms.tolist()) if f"{p:016x}" in hexes))


def test_consent_import_show_opt_out(world, tmp_path):
    env, ledger = world["env"], ["--ledger", str(tmp_path / "consent.sqlite")]
    imported = json.loads(ok(cli("consent", "import", str(world["data"] / "consent.csv"), *ledger, "--json",
                                 env=env)).stdout)
    assert imported["accepted"] == imported["rows"] > 0
    stats = json.loads(ok(cli("consent", "show", *ledger, "--json", env=env)).stdout)
    assert stats["persons"] == imported["rows"]
    ok(cli("consent", "opt-out", "4242", *ledger, env=env))
    current = json.loads(ok(cli("consent", "show", "4242", *ledger, "--json", env=env)).stdout)["current"]
    assert current["ads_personalization"] == "opt_out"


def test_consent_export_and_forget_cover_events_and_assignments(world, tmp_path):
    env, person = world["env"], _member(world)
    shutil.copy(world["run1"] / "consent.sqlite", tmp_path / "consent.sqlite")
    shutil.copy(world["data"] / "events.parquet", tmp_path / "events.parquet")
    shutil.copy(world["run1"] / "assignments.parquet", tmp_path / "assignments.parquet")
    files = ["--ledger", str(tmp_path / "consent.sqlite"), "--events", str(tmp_path / "events.parquet"),
             "--assignments", str(tmp_path / "assignments.parquet")]
    export = json.loads(ok(cli("consent", "export", person, *files, env=env)).stdout)
    assert export["schema"] == "adtarget.access_export/v1"
    assert export["events"] and export["segments"] and export["consent"]["current"] is not None
    assert person not in json.dumps(export)  # named by pseudonym only
    forgotten = json.loads(ok(cli("consent", "forget", person, *files, "--json", env=env)).stdout)
    assert forgotten["rows_removed"] == sum(e["events"] for e in export["events"]) + 1
    after = json.loads(ok(cli("consent", "export", person, *files, env=env)).stdout)
    assert after["events"] == [] and after["segments"] == []
    assert after["consent"]["current"] is None or after["consent"]["current"]["deleted"] is True


def test_quiet_prints_nothing_and_seed_warns_on_one_line(world, tmp_path):
    result = ok(cli("run", "--events", str(world["data"] / "events.parquet"), "--consent",
                    str(world["run1"] / "consent.sqlite"), "--out", str(tmp_path), "--quiet", "--seed", "1",
                    "--ledger", register(tmp_path / "budget.sqlite"), env=world["env"]))
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("adtarget: warning: PrivacyLeakWarning") for line in lines)


def test_demo_writes_report_assignments_summary_and_plot(world, tmp_path):
    ok(cli("demo", "--events", "5000", "--out", str(tmp_path / "demo"), "--quiet", env=world["env"]))
    for name in ("report.json", "assignments.parquet", "summary.json", "segments.png"):
        assert (tmp_path / "demo" / name).stat().st_size > 0
    assert (tmp_path / "demo" / "segments.png").read_bytes()[:4] == b"\x89PNG"
    ok(cli("demo", "--events", "5000", "--out", str(tmp_path / "demo"), "--quiet", env=world["env"]))


def test_import_adtarget_cli_stays_light():
    code = ("import sys, adtarget.cli; heavy = [m for m in ('numpy', 'pandas', 'pyarrow', 'pyspark', 'matplotlib', "
            "'sklearn', 'scipy', 'diffprivlib', 'tqdm', 'numba') "
            "if m in sys.modules]; print(heavy)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


# --- bad input: one line on stderr, the documented exit code --------------------------------------------------
def _report_with(world, tmp_path, change) -> str:
    doc = json.loads((world["run1"] / "report.json").read_text())
    change(doc)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(doc))
    return str(path)


def _add_sensitive_segment(doc):
    doc["segments"].append({"segment_id": "iab-2.2:453", "name": "Religion & Spirituality",
                            "path": ["Religion & Spirituality"], "size": 500, "breakdowns": {}})


def _email_events(world, tmp_path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(world["data"] / "events.parquet")
    table = table.append_column("email", pa.array(["someone@example.com"] * table.num_rows))
    pq.write_table(table, tmp_path / "with_email.parquet")
    return str(tmp_path / "with_email.parquet")


def _run_args(world, tmp_path, **changes) -> list[str]:
    """``adtarget run`` on the module's data, charged to demo-advertiser, registered in tmp_path/budget.sqlite."""
    args = {"--events": str(world["data"] / "events.parquet"), "--consent": str(world["run1"] / "consent.sqlite"),
            "--out": str(tmp_path / "out"), "--ledger": register(tmp_path / "budget.sqlite")}
    args.update(changes)
    return ["run", *[x for k, v in args.items() if v is not None for x in (k, v)]]


BAD = {
    # name: (exit code, function (world, tmp_path) -> argv, env changes)
    "missing events file": (3, lambda w, t: _run_args(w, t, **{"--events": str(t / "nope.parquet")}), {}),
    "events in a wrong format": (3, lambda w, t: _run_args(w, t, **{"--events": _write(t / "e.txt", "x")}), {}),
    "parquet data named .csv": (3, lambda w, t: _run_args(w, t, **{"--events": _copy(
        w["data"] / "events.parquet", t / "e.csv")}), {}),
    "events with an email column": (3, lambda w, t: _run_args(w, t, **{"--events": _email_events(w, t)}), {}),
    "empty advertiser name": (2, lambda w, t: _run_args(w, t, **{"--advertiser": ""}), {}),
    "unregistered advertiser": (2, lambda w, t: _run_args(w, t, **{"--advertiser": "nobody"}), {}),
    "look-alike of a registered advertiser": (2, lambda w, t: _run_args(
        w, t, **{"--advertiser": "d\u0435mo-advertiser"}), {}),  # Cyrillic е
    "epsilon 0": (2, lambda w, t: _run_args(w, t, **{"--epsilon": "0"}), {}),
    "epsilon -1": (2, lambda w, t: _run_args(w, t, **{"--epsilon": "-1"}), {}),
    "epsilon nan": (2, lambda w, t: _run_args(w, t, **{"--epsilon": "nan"}), {}),
    "epsilon abc": (2, lambda w, t: _run_args(w, t, **{"--epsilon": "abc"}), {}),
    "delta 1.5": (2, lambda w, t: _run_args(w, t, **{"--delta": "1.5"}), {}),
    "gaussian noise with delta 0": (2, lambda w, t: _run_args(w, t, **{"--mechanism": "discrete_gaussian",
                                                                         "--delta": "0"}), {}),
    "budget ledger that is not a database": (3, lambda w, t: _run_args(
        w, t, **{"--ledger": _write(t / "b.sqlite", "not a database " * 20)}), {}),
    "unknown sensitivity profile": (2, lambda w, t: _run_args(w, t, **{"--sensitivity-profile": "lax"}), {}),
    "min age 10": (2, lambda w, t: _run_args(w, t, **{"--min-age": "10"}), {}),
    "unknown engine": (2, lambda w, t: _run_args(w, t, **{"--engine": "dask"}), {}),
    "--master without spark": (2, lambda w, t: _run_args(w, t, **{"--master": "local[2]"}), {}),
    "missing key": (2, lambda w, t: _run_args(w, t), {"ADTARGET_PSEUDONYM_KEY": None}),
    "key not hex": (2, lambda w, t: _run_args(w, t), {"ADTARGET_PSEUDONYM_KEY": "not-a-hex-key"}),
    "consent ledger of another key": (3, lambda w, t: _run_args(w, t), {"ADTARGET_PSEUDONYM_KEY": OTHER_KEY}),
    "missing consent file": (3, lambda w, t: _run_args(w, t, **{"--consent": str(t / "c.csv")}), {}),
    "consent of an unknown format": (3, lambda w, t: _run_args(w, t, **{"--consent": _write(t / "c.xml", "<")}),
                                     {}),
    "unknown taxonomy": (3, lambda w, t: _run_args(w, t, **{"--taxonomy": "iab-9"}), {}),
    "missing services file": (3, lambda w, t: _run_args(w, t, **{"--services": str(t / "s.csv")}), {}),
    "--out is a file": (3, lambda w, t: _run_args(w, t, **{"--out": _write(t / "f", "x")}), {}),
    "unknown command": (2, lambda w, t: ["publish"], {}),
    "synth of 0 events": (2, lambda w, t: ["synth", "--events", "0", "--out", str(t)], {}),
    "consent show without a ledger": (3, lambda w, t: ["consent", "show", "--ledger", str(t / "x.sqlite")], {}),
    "audit of a missing report": (3, lambda w, t: ["audit", str(t / "report.json")], {}),
    "audit of a report with a sensitive segment": (5, lambda w, t: ["audit", _report_with(
        w, t, _add_sensitive_segment)], {}),
    "audit of a report with an extra field": (5, lambda w, t: ["audit", _report_with(
        w, t, lambda d: d.update(person_ids=[1, 2]))], {}),
    "audit of a report that is not JSON": (5, lambda w, t: ["audit", _write(t / "r.json", "{not json")], {}),
}


def _write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


def _copy(src: Path, dst: Path) -> str:
    shutil.copy(src, dst)
    return str(dst)


def _check_one_line_failure(result: subprocess.CompletedProcess[str], code: int) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("adtarget: error: ") and "(hint: " in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_fails_with_one_line_and_its_exit_code(world, tmp_path, case):
    code, argv, env_changes = BAD[case]
    env = dict(world["env"])
    for name, value in env_changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    result = cli(*argv(world, tmp_path), env=env)
    _check_one_line_failure(result, code)
    assert KEY not in result.stderr and OTHER_KEY not in result.stderr


def test_exhausted_budget_exits_4_and_spends_nothing(world, tmp_path):
    args = _run_args(world, tmp_path)
    ok(cli(*args, "--epsilon", "4", env=world["env"]))
    result = cli(*args, "--epsilon", "0.5", env=world["env"])
    _check_one_line_failure(result, 4)
    assert "budget exhausted" in result.stderr
    rows = json.loads(ok(cli("budget", "show", "--json", "--ledger", str(tmp_path / "budget.sqlite"),
                             env=world["env"])).stdout)["rows"]
    assert rows[-1]["epsilon_spent"] == pytest.approx(4.0)


def test_json_mode_also_prints_the_error_document(world, tmp_path):
    result = cli("--json", *_run_args(world, tmp_path, **{"--epsilon": "0"}), env=world["env"])
    _check_one_line_failure(result, 2)
    assert json.loads(result.stdout) == {"ok": False, "exit_code": 2, "error": result.stderr.split("error: ", 1)[1]
                                         .rsplit(" (hint: ", 1)[0], "hint": json.loads(result.stdout)["hint"]}


def test_debug_shows_the_traceback(world, tmp_path):
    result = cli("--debug", *_run_args(world, tmp_path, **{"--events": str(tmp_path / "nope.parquet")}),
                 env=world["env"])
    assert result.returncode == 3 and "Traceback" in result.stderr


@pytest.mark.slow
@pytest.mark.spark
def test_run_on_the_spark_engine_gives_the_same_accounting(world, tmp_path):
    pytest.importorskip("pyspark")
    pytest.importorskip("adtarget.engine._spark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java")
    result = cli("--json", *_run_args(world, tmp_path), "--engine", "spark", "--master", "local[2]",
                 env=world["env"])
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-2000:]
    summary = json.loads(result.stdout)["summary"]
    local = json.loads((world["run1"] / "summary.json").read_text())
    assert summary["engine"] == "spark"
    for key in ("rows", "excluded", "eligible_events", "eligible_persons"):
        assert summary[key] == local[key]
