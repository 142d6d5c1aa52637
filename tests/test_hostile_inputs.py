"""Hostile input, one class per row, through the command line: each gets its documented exit code and one clear
line on stderr that names the file, row or column — and no raw person id appears in anything adtarget prints or
writes. Inputs are real: Parquet written with pyarrow's own nested and zoned types, CSV bytes, a FIFO, a
device. (docs/cli.md "What each input gets" lists the same classes.)"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _fault_helpers import KEY, REPO, consent_rows, write_consent_csv

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")

IDS = [f"SECRET-ID-{i:04d}" for i in range(40)]
NOW = int(time.time())
TS = NOW - 3 * 86_400
CATEGORY = "483"


def events_table(**overrides) -> pa.Table:
    n = len(IDS)
    columns = {"person_id": pa.array(IDS), "service": pa.array(["video"] * n), "ts": pa.array([TS] * n),
               "category": pa.array([CATEGORY] * n)}
    columns.update(overrides)
    return pa.table(columns)


def csv_text(rows: list[list[str]] | None = None) -> str:
    rows = rows if rows is not None else [[i, "video", str(TS), CATEGORY] for i in IDS]
    return "\n".join([",".join(["person_id", "service", "ts", "category"]), *(",".join(r) for r in rows)]) + "\n"


def cli_caller(tmp_path, monkeypatch, capsys):
    """``main(argv)`` with ADTARGET_HOME and the key set, returning ``(exit code, stdout, stderr)``."""
    from adtarget.cli import main

    monkeypatch.setenv("ADTARGET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ADTARGET_PSEUDONYM_KEY", KEY.hex())

    def call(*argv: object) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err
    return call


def consented_world(tmp_path, cli):
    """A consent ledger holding IDS (adults, opted in) and a budget ledger with the demo advertiser."""
    consent = write_consent_csv(tmp_path / "consent.csv", consent_rows(IDS))
    assert cli("consent", "import", consent, "--ledger", tmp_path / "consent.sqlite")[0] == 0
    assert cli("advertiser", "add", "demo-advertiser", "--ledger", tmp_path / "budget.sqlite")[0] == 0
    return tmp_path


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    return cli_caller(tmp_path, monkeypatch, capsys)


@pytest.fixture
def world(tmp_path, cli):
    return consented_world(tmp_path, cli)


def run_events(cli, world, events) -> tuple[int, str, str]:
    return cli("--json", "run", "--events", events, "--consent", world / "consent.sqlite", "--out",
               world / "out", "--ledger", world / "budget.sqlite")


def assert_no_raw_id(*texts: str, directory: Path | None = None) -> None:
    blobs = list(texts)
    if directory is not None and directory.exists():
        blobs += [p.read_bytes().decode("latin-1") for p in directory.rglob("*") if p.is_file()]
    for blob in blobs:
        assert "SECRET-ID" not in blob


def assert_one_clean_line(err: str, *mentions: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].isprintable() and len(lines[0]) <= 600, err
    for m in mentions:
        assert m in lines[0], err


# --- files that are refused --------------------------------------------------------------------------------------
def _dataset_with_second_file(directory: Path, extra: str) -> Path:
    directory.mkdir()
    pq.write_table(events_table(), directory / "part-0.parquet")
    pq.write_table(events_table(**{extra: pa.array(["x"] * len(IDS))}), directory / "part-1.parquet")
    return directory


def _partitioned(directory: Path, key: str) -> Path:
    """A hive-partitioned dataset: the column ``key`` lives only in the directory names (``key=value``)."""
    table = events_table()
    for value in ("video", "news"):
        (directory / f"{key}={value}").mkdir(parents=True)
        columns = [c for c in table.column_names if c != key]
        pq.write_table(table.select(columns), directory / f"{key}={value}" / "part-0.parquet")
    return directory


def _nested(column: str) -> pa.Array:
    n = len(IDS)
    if column == "category":
        return pa.array([[CATEGORY]] * n, type=pa.list_(pa.string()))
    if column == "region":
        return pa.array([{"code": "US-CA"}] * n, type=pa.struct([("code", pa.string())]))
    return pa.array([[i] for i in range(n)], type=pa.list_(pa.int64()))


REFUSED = {
    "identifying column in a later file of a dataset": (
        lambda d: _dataset_with_second_file(d / "events", "email"), ["email"]),
    "unknown column in a later file of a dataset": (
        lambda d: _dataset_with_second_file(d / "events", "session_id"), ["session_id"]),
    "identifying column as a partition directory": (lambda d: _partitioned(d / "events", "email"), ["email"]),
    "CSV row with a surplus field": (
        lambda d: _write(d / "events.csv", csv_text([[IDS[0], "video", str(TS), CATEGORY],
                                                     [IDS[1], "video", str(TS), CATEGORY, "surplus"]])),
        ["events.csv", "line 3"]),
    "gzip bytes named .csv": (
        lambda d: _write(d / "events.csv", gzip.compress(csv_text().encode()), binary=True), ["events.csv"]),
    "list<string> categories": (lambda d: _parquet(d, category=_nested("category")), ["'category'"]),
    "struct regions": (lambda d: _parquet(d, region=_nested("region")), ["'region'"]),
    "list<int64> person ids": (lambda d: _parquet(d, person_id=_nested("person_id")), ["'person_id'"]),
}


def _write(path: Path, content, *, binary: bool = False) -> Path:
    path.write_bytes(content) if binary else path.write_text(content, encoding="utf-8")
    return path


def _parquet(directory: Path, **overrides) -> Path:
    path = directory / "events.parquet"
    pq.write_table(events_table(**overrides), path)
    return path


@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_inputs_exit_3_with_one_line_naming_the_file_or_column(cli, world, case):
    make, mentions = REFUSED[case]
    code, out, err = run_events(cli, world, make(world))
    assert code == 3, (code, err)
    assert_one_clean_line(err, *mentions)
    assert_no_raw_id(out, err, directory=world / "out")


# --- files that are read -----------------------------------------------------------------------------------------
def _accepted(cli, world, events) -> dict:
    code, out, err = run_events(cli, world, events)
    assert code == 0, err
    assert_no_raw_id(out, err, directory=world / "out")
    return json.loads((world / "out" / "summary.json").read_text())


def test_a_byte_order_mark_before_the_header_is_stripped(cli, world):
    path = world / "events.csv"
    path.write_bytes(b"\xef\xbb\xbf" + csv_text().encode())
    summary = _accepted(cli, world, path)
    assert summary["rows"]["accepted"] == len(IDS)


def test_a_hive_partition_column_is_read(cli, world):
    summary = _accepted(cli, world, _partitioned(world / "events", "service"))
    assert summary["rows"]["accepted"] == 2 * len(IDS) and summary["eligible_events"] == 2 * len(IDS)


def test_zoned_nanosecond_timestamps_are_converted(cli, world):
    zoned = pa.array([TS * 10**9 + 123_456_789] * len(IDS), type=pa.timestamp("ns", tz="Asia/Shanghai"))
    summary = _accepted(cli, world, _parquet(world, ts=zoned))
    assert summary["rows"]["accepted"] == len(IDS) and summary["eligible_events"] == len(IDS)


def test_control_characters_in_ids_and_categories_are_quarantined(cli, world):
    ids = pa.array([*IDS[:-2], IDS[0] + "\x00", IDS[1] + "\x1b[2J"])
    categories = pa.array([*[CATEGORY] * (len(IDS) - 3), CATEGORY + "\x00", CATEGORY, CATEGORY])
    summary = _accepted(cli, world, _parquet(world, person_id=ids, category=categories))
    assert summary["quarantine_reasons"] == {"invalid_person_id": 2, "unknown_category": 1}
    assert summary["rows"]["accepted"] + summary["rows"]["quarantined"] == summary["rows"]["input"] == len(IDS)


# --- files that must not be read at all (a subprocess, so a hang fails the test instead of stalling it) ---------
def _run_process(world: Path, events: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "ADTARGET_PSEUDONYM_KEY": KEY.hex(),
           "ADTARGET_HOME": str(world / "home")}
    return subprocess.run([sys.executable, "-m", "adtarget.cli", "run", "--events", str(events), "--consent",
                           str(world / "consent.sqlite"), "--out", str(world / "out"), "--ledger",
                           str(world / "budget.sqlite")], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_fifos_and_devices_are_refused_before_reading(world, kind):
    path = world / "events.csv"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    done = _run_process(world, path)
    assert done.returncode == 3, done.stderr
    assert_one_clean_line(done.stderr, "events.csv", "not a regular file")


def test_a_fifo_inside_a_dataset_directory_is_refused(world):
    directory = world / "events"
    directory.mkdir()
    pq.write_table(events_table(), directory / "part-0.parquet")
    os.mkfifo(directory / "part-1.parquet")
    done = _run_process(world, directory)
    assert done.returncode == 3, done.stderr
    assert_one_clean_line(done.stderr, "part-1.parquet", "not a regular file")


# --- consent -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("column", ["phonenumber", "emailaddress", "remote_addr", "advertising_id", "home_location",
                                    "IPAddress", "user_email"])
def test_consent_drop_unknown_columns_never_drops_an_identifying_one(cli, tmp_path, column):
    rows = [{**r, column: "x"} for r in consent_rows(IDS[:3])]
    path = tmp_path / "consent.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(",".join(rows[0]) + "\n" + "\n".join(",".join(str(v) for v in r.values()) for r in rows) + "\n")
    code, out, err = cli("consent", "import", path, "--drop-unknown-columns", "--ledger", tmp_path / "c.sqlite")
    assert code == 3, err
    assert_one_clean_line(err, column, "identifying")
    assert_no_raw_id(out, err)


def test_events_refuse_the_same_identifying_names(cli, world):
    for column in ("phonenumber", "advertising_id", "remote_addr", "home_location"):
        code, _, err = cli("run", "--events", _parquet(world, **{column: pa.array(["x"] * len(IDS))}),
                           "--consent", world / "consent.sqlite", "--out", world / "out")
        assert code == 3 and "identifying column" in err and column in err, err


# --- ledgers and reports -----------------------------------------------------------------------------------------
def test_a_corrupt_budget_cap_is_an_input_error(cli, world):
    import sqlite3

    ledger = world / "budget.sqlite"
    for statement in ("UPDATE settings SET advertiser_epsilon = 'inf'",
                      "UPDATE settings SET advertiser_epsilon = 4.0, global_delta = -1"):
        with sqlite3.connect(ledger) as db:
            db.execute(statement)
        code, out, err = cli("budget", "show", "--ledger", ledger)
        assert code == 3, (statement, code, err)
        assert_one_clean_line(err, "budget.sqlite", "corrupt")


@pytest.mark.parametrize("text", ["[" * 200_000 + "]" * 200_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_a_deeply_nested_report_is_refused_as_input(cli, tmp_path, text):
    path = tmp_path / "report.json"
    path.write_text(text)
    code, _, err = cli("audit", path)
    assert code in (3, 5), (code, err)
    assert_one_clean_line(err, "report.json")


# --- consent ties ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["restrictive first", "restrictive last", "separate imports"])
@pytest.mark.parametrize("field, restrictive, lax", [
    ("ads_personalization", "opt_out", "opt_in"),
    ("deleted", "true", "false"),
    ("location_deleted", "true", "false"),
    ("cross_service", "false", "true"),
])
def test_a_tie_on_updated_at_goes_to_the_most_restrictive_record(tmp_path, order, field, restrictive, lax):
    """Two records of one person with the same ``updated_at``: the more restrictive one is the state, in the
    ledger's current table and in a snapshot as of that time, whatever order they arrive in."""
    from adtarget import ConsentLedger, Pseudonymizer

    base = consent_rows(IDS[:1], updated_at="2024-01-01T00:00:00Z")[0]
    strict, loose = {**base, field: restrictive}, {**base, field: lax}
    ledger = ConsentLedger(tmp_path / "c.sqlite", Pseudonymizer(KEY))
    rows = [strict, loose] if order == "restrictive first" else [loose, strict]
    if order == "separate imports":
        for i, row in enumerate(rows):
            ledger.import_csv(write_consent_csv(tmp_path / f"c{i}.csv", [row]))
    else:
        ledger.import_csv(write_consent_csv(tmp_path / "c.csv", rows))
    name = {"ads_personalization": "opted_in"}.get(field, field)
    expected = {"ads_personalization": False, "deleted": True, "location_deleted": True, "cross_service": False}[field]
    for snapshot in (ledger.snapshot(), ledger.snapshot(as_of=int(time.time()))):
        got = getattr(snapshot, name)
        assert got.size in (0, 1)
        if field == "deleted" and got.size == 0:
            continue
        assert bool(got[0]) is expected, (order, field)


@pytest.mark.parametrize("order", ["given order", "reversed", "separate imports"])
def test_tied_records_merge_field_by_field(tmp_path, order):
    """A tie never loses a restriction held by the record that "loses" it: one record opts out, the other
    deletes the location data; the state is opted out *and* location deleted, and a tied birth year and
    jurisdiction give the same state in every order (the youngest year, the first code in sort order)."""
    from adtarget import ConsentLedger, Pseudonymizer

    base = consent_rows(IDS[:1], updated_at="2024-01-01T00:00:00Z")[0]
    rows = [{**base, "ads_personalization": "opt_out", "location_deleted": "false", "birth_year": "1990",
             "jurisdiction": "US"},
            {**base, "ads_personalization": "opt_in", "location_deleted": "true", "birth_year": "2001",
             "jurisdiction": "DE"}]
    rows = rows[::-1] if order == "reversed" else rows
    ledger = ConsentLedger(tmp_path / "c.sqlite", Pseudonymizer(KEY))
    if order == "separate imports":
        for i, row in enumerate(rows):
            ledger.import_csv(write_consent_csv(tmp_path / f"c{i}.csv", [row]))
    else:
        ledger.import_csv(write_consent_csv(tmp_path / "c.csv", rows))
    for snapshot in (ledger.snapshot(), ledger.snapshot(as_of=int(time.time()))):
        assert not snapshot.opted_in[0] and snapshot.location_deleted[0]
        assert int(snapshot.birth_year[0]) == 2001 and str(snapshot.jurisdiction[0]) == "DE"


# --- identifying names in other languages, look-alike letters and joined forms ---------------------------------
FOREIGN_OR_DISGUISED = ["Telefon", "courriel", "ｅｍａｉｌ", "\u0435mail", "\u0440hone", "e\u200bmail", "gpslat",
                        "homeaddr", "android_id", "maid", "iccid", "x_forwarded_for", "e164", "nhs_number",
                        "телефон", "电话", "Geburtsdatum", "numéro_de_téléphone", "DirecciónIP"]


@pytest.mark.parametrize("column", FOREIGN_OR_DISGUISED)
def test_identifying_names_in_any_language_or_disguise_are_refused(cli, world, column):
    """Refused by name as identifying in events and in consent, also where consent drops unknown columns: NFKC, look-alike
    letters (Cyrillic е, р), zero-width characters, accents, transliteration (телефон) and joined forms."""
    code, out, err = cli("run", "--events", _parquet(world, **{column: pa.array(["x"] * len(IDS))}),
                         "--consent", world / "consent.sqlite", "--out", world / "out")
    assert code == 3, (column, err)
    assert_one_clean_line(err, "identifying column")
    rows = [{**r, column: "x"} for r in consent_rows(IDS[:3])]
    path = tmp_path_csv(world, rows)
    code, out2, err = cli("consent", "import", path, "--drop-unknown-columns", "--ledger", world / "c2.sqlite")
    assert code == 3, (column, err)
    assert_one_clean_line(err, "identifying column")
    assert_no_raw_id(out, out2, err)


def tmp_path_csv(directory: Path, rows: list[dict]) -> Path:
    path = directory / "consent-extra.csv"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(",".join(rows[0]) + "\n" + "\n".join(",".join(str(v) for v in r.values()) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("column", ["session_id", "page_title", "genre", "latency_ms", "nominal_value", "zipper"])
def test_ordinary_unknown_columns_are_still_only_unknown(cli, world, column):
    code, _, err = cli("run", "--events", _parquet(world, **{column: pa.array(["x"] * len(IDS))}),
                       "--consent", world / "consent.sqlite", "--out", world / "out")
    assert code == 3 and "unknown column" in err and "identifying column(s)" not in err, err


# --- person ids that are never valid, alike in events and consent --------------------------------------------
def test_a_fractional_float_id_is_one_quarantined_row_not_a_refused_file(cli, world):
    ids = [float(i) for i in range(len(IDS))]
    ids[3] = 2.5
    summary = _accepted(cli, world, _parquet(world, person_id=pa.array(ids)))
    assert summary["quarantine_reasons"] == {"invalid_person_id": 1}


def test_consent_ids_are_checked_as_events_ids_are(cli, tmp_path):
    rows = consent_rows(IDS[:4])
    rows[1] = {**rows[1], "person_id": "SECRET-ID-\x01x"}
    rows[2] = {**rows[2], "person_id": "NA"}  # a value, as in events: only an empty field is missing
    path = write_consent_csv(tmp_path / "c.csv", rows)
    code, out, err = cli("--json", "consent", "import", path, "--lenient", "--ledger", tmp_path / "c.sqlite")
    assert code == 0, err
    assert json.loads(out)["rejected_reasons"] == {"invalid_person_id": 1}
    table = pa.table({**{k: pa.array([r[k] for r in rows[:3]]) for k in rows[0] if k != "person_id"},
                      "person_id": pa.array([1.0, 2.5, float("nan")])})
    pq.write_table(table, tmp_path / "c.parquet")
    code, out, err = cli("--json", "consent", "import", tmp_path / "c.parquet", "--lenient", "--ledger",
                         tmp_path / "c.sqlite")
    assert code == 0, err
    assert json.loads(out)["rejected_reasons"] == {"invalid_person_id": 1, "missing_person_id": 1}
    assert_no_raw_id(out, err)


def test_a_strict_consent_rejection_names_rows_and_reasons_never_counts(cli, tmp_path):
    rows = consent_rows(IDS[:30])
    for i in (4, 9, 20):
        rows[i] = {**rows[i], "ads_personalization": "maybe"}
    code, _, err = cli("consent", "import", write_consent_csv(tmp_path / "c.csv", rows), "--ledger",
                       tmp_path / "c.sqlite")
    assert code == 3
    assert_one_clean_line(err, "row 5: bad_ads_personalization", "row 21")
    assert "30" not in err and "3 of" not in err and "{" not in err, err


def test_consent_import_reads_a_parquet_dataset_directory(cli, tmp_path):
    directory = tmp_path / "consent"
    directory.mkdir()
    rows = consent_rows(IDS[:6])
    for part in (0, 1):
        chunk = rows[part * 3:(part + 1) * 3]
        pq.write_table(pa.table({k: pa.array([r[k] for r in chunk]) for k in chunk[0]}),
                       directory / f"part-{part}.parquet")
    code, out, err = cli("--json", "consent", "import", directory, "--ledger", tmp_path / "c.sqlite")
    assert code == 0, err
    assert json.loads(out)["accepted"] == 6


def test_a_tampered_advertiser_id_is_a_corrupt_ledger_never_printed(cli, world):
    import sqlite3

    with sqlite3.connect(world / "budget.sqlite") as db:
        db.execute("INSERT INTO advertisers (advertiser, display_name, skeleton, registered_at) "
                   "VALUES ('evil\x1b[31m', 'evil\x1b[31m', 'evil', 0)")
    for argv in (("budget", "show"), ("advertiser", "list")):
        code, out, err = cli(*argv, "--ledger", world / "budget.sqlite")
        assert code == 3, (argv, err)
        assert_one_clean_line(err, "budget.sqlite", "corrupt")
        assert "\x1b" not in out + err
