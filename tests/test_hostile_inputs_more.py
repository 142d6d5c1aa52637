"""Hostile input, fourth pass, through the command line where it has a route: identifying column names the
vocabulary missed (and ordinary ones it refused), reports with repeated keys or in UTF-16, control characters
in names printed on stdout, consent datasets whose files lack a column, ``run --consent DIR``, UTF-16 CSV,
single consent updates for ids no import accepts, and ties between a known and an unknown birth year."""

from __future__ import annotations

import codecs
import json
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _fault_helpers import KEY, consent_rows, write_consent_csv
from test_hostile_inputs import (
    IDS,
    _accepted,
    _parquet,
    assert_no_raw_id,
    assert_one_clean_line,
    cli_caller,
    consented_world,
    csv_text,
    run_events,
    tmp_path_csv,
)

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    return cli_caller(tmp_path, monkeypatch, capsys)


@pytest.fixture
def world(tmp_path, cli):
    return consented_world(tmp_path, cli)


# --- 1. identifying column names -----------------------------------------------------------------------------
MISSED = [
    # other languages, as written and transliterated
    "nome", "imię", "nazwisko", "namn", "förnamn", "adress", "geboortedatum", "Mobilnummer", "Rufnummer",
    "Standort", "Breitengrad", "Längengrad", "Empfänger", "Reisepass", "latitud", "longitud", "ubicación",
    "fecha_nacimiento", "localisation", "фамилия", "паспорт", "широта", "дата_рождения", "电子邮件", "邮件",
    "身份证号", "纬度", "位置", "名字", "名前", "氏名", "携帯", "メールアドレス", "이름", "휴대폰", "위도", "주민등록번호",
    # English
    "social_security_number", "credit_card", "iban", "nickname", "screenname", "receiver", "hardware_id",
    "push_token", "oaid", "license_plate", "geopoint",
    # a long word inside a longer name
    "customer_date_of_birth", "date_of_birth_utc", "fecha_de_nacimiento_cliente",
    # disguises: digits for letters, a plural, a right-to-left override that shows "email"
    "ph0ne", "ema1l", "ips", "\u202eliame",
]
STILL_REFUSED = ["device_id", "mobile_number", "user_name", "first_name", "geo_lat", "gps_lat", "contact_id",
                 "peer_id", "ip_address"]
ORDINARY = ["category_name", "app_name", "service_name", "product_name", "campaign_name", "brand_name",
            "segment_name", "page_name", "file_name", "event_name", "device_type", "device_class",
            "device_category", "is_mobile", "geo_region", "geo_country", "gps_enabled", "lat_ms", "tel_aviv",
            "contact_center", "peer_review", "address_space"]


@pytest.mark.parametrize("column", MISSED + STILL_REFUSED)
def test_identifying_names_are_refused_in_events_and_consent(cli, world, column):
    code, out, err = cli("run", "--events", _parquet(world, **{column: pa.array(["x"] * len(IDS))}),
                         "--consent", world / "consent.sqlite", "--out", world / "out")
    assert code == 3, (column, err)
    assert_one_clean_line(err, "identifying column")
    path = tmp_path_csv(world, [{**r, column: "x"} for r in consent_rows(IDS[:3])])
    code, out2, err = cli("consent", "import", path, "--drop-unknown-columns", "--ledger", world / "c2.sqlite")
    assert code == 3, (column, err)
    assert_one_clean_line(err, "identifying column")
    assert_no_raw_id(out, out2, err)


@pytest.mark.parametrize("column", ORDINARY)
def test_names_of_things_kinds_flags_and_regions_are_only_unknown(cli, world, column):
    code, _, err = cli("run", "--events", _parquet(world, **{column: pa.array(["x"] * len(IDS))}),
                       "--consent", world / "consent.sqlite", "--out", world / "out")
    assert code == 3, err
    assert "unknown column" in err and "identifying column(s)" not in err, err
    path = tmp_path_csv(world, [{**r, column: "x"} for r in consent_rows(IDS[:3])])
    code, out, err = cli("--json", "consent", "import", path, "--drop-unknown-columns", "--ledger",
                         world / "c2.sqlite")
    assert code == 0, err
    assert json.loads(out)["dropped_columns"] == [column]


# --- 2. adtarget audit ---------------------------------------------------------------------------------------
@pytest.fixture
def report_text(cli, world) -> str:
    """The text of a report that passes ``adtarget audit``."""
    _accepted(cli, world, _parquet(world))
    path = world / "out" / "report.json"
    assert cli("audit", path)[0] == 0
    return path.read_text(encoding="utf-8")


def test_a_report_that_repeats_a_key_is_refused_naming_the_path(cli, tmp_path, report_text):
    path = tmp_path / "report.json"
    path.write_text('{"advertiser": "someone-else", ' + report_text.lstrip()[1:], encoding="utf-8")
    code, _, err = cli("audit", path)
    assert code == 5, err
    assert_one_clean_line(err, "report.json", "$: duplicate key 'advertiser'")


def test_a_repeated_key_that_is_no_schema_field_is_not_quoted(cli, tmp_path, report_text):
    doc = report_text.rstrip().rstrip("}")
    path = tmp_path / "report.json"
    path.write_text(doc + ', "x": {"SECRET-ID-0001": 1, "SECRET-ID-0001": 2}}', encoding="utf-8")
    code, out, err = cli("audit", path)
    assert code == 5, err
    assert_one_clean_line(err, "report.json", "duplicate key")
    assert_no_raw_id(out, err)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32"])
def test_a_report_in_another_encoding_is_a_failed_audit_exit_5(cli, tmp_path, report_text, codec):
    path = tmp_path / "report.json"
    data = report_text.encode(codec)
    path.write_bytes(codecs.BOM_UTF16_BE + data if codec == "utf-16-be" else data)
    code, out, err = cli("audit", path)
    assert code == 5, (codec, err)
    assert_one_clean_line(err, "report.json", "not UTF-8")
    code, out, _ = cli("--json", "audit", path)
    assert code == 5 and json.loads(out)["ok"] is False


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_a_report_that_is_not_a_file_is_exit_3_with_a_report_hint(cli, tmp_path, kind):
    path = tmp_path / "report.json"
    if kind == "directory":
        path.mkdir()
    code, _, err = cli("audit", path)
    assert code == 3, err
    assert_one_clean_line(err, "report.json", "hint:", "report")
    assert "Parquet or CSV" not in err, err


# --- 3. names with control characters on stdout --------------------------------------------------------------
HOSTILE_NAME = "x\n\x1b[2Jforged: line"


def _printable_lines(out: str) -> list[str]:
    lines = out.splitlines()
    assert all(line.isprintable() for line in lines), out
    assert "\x1b" not in out, out
    return lines


def test_consent_import_prints_a_hostile_file_name_on_its_own_line(cli, tmp_path):
    path = write_consent_csv(tmp_path / f"{HOSTILE_NAME}.csv", consent_rows(IDS[:3]))
    code, out, err = cli("consent", "import", path, "--ledger", tmp_path / "c.sqlite")
    assert code == 0, err
    lines = _printable_lines(out)
    assert len(lines) == 2 and lines[0].startswith("consent import from") and lines[1].startswith("ledger:"), out
    assert not any(line.startswith("forged") for line in lines), out
    assert_no_raw_id(out, err)


def test_run_prints_hostile_output_paths_printable(cli, world):
    events = _parquet(world)
    code, out, err = cli("run", "--events", events, "--consent", world / "consent.sqlite", "--out",
                         world / HOSTILE_NAME, "--ledger", world / "budget.sqlite")
    assert code == 0, err
    lines = _printable_lines(out)
    assert not any(line.startswith("forged") for line in lines), out
    assert any(line.strip().startswith("report") and "x??[2Jforged: line" in line for line in lines), out
    code, out, err = cli("--json", "run", "--events", events, "--consent", world / "consent.sqlite", "--out",
                         world / HOSTILE_NAME, "--ledger", world / "budget.sqlite")
    assert code == 0, err
    assert json.loads(out)["files"]["report"] == str(world / HOSTILE_NAME / "report.json")  # JSON escapes it
    assert_no_raw_id(out, err)


# --- 4. and 5. consent Parquet datasets ----------------------------------------------------------------------
def _consent_dataset(directory: Path, *, drop: str | None = None, parts: int = 2) -> Path:
    directory.mkdir()
    rows = consent_rows(IDS)
    size = len(rows) // parts
    for part in range(parts):
        chunk = rows[part * size:(part + 1) * size]
        table = pa.table({k: pa.array([r[k] for r in chunk]) for k in chunk[0]})
        if drop is not None and part == parts - 1:
            table = table.drop_columns([drop])
        pq.write_table(table, directory / f"part-{part}.parquet")
    return directory


@pytest.mark.parametrize("column", ["birth_year", "jurisdiction", "ads_personalization"])
def test_a_consent_dataset_file_without_a_required_column_is_refused(cli, tmp_path, column):
    directory = _consent_dataset(tmp_path / "consent", drop=column)
    code, out, err = cli("consent", "import", directory, "--ledger", tmp_path / "c.sqlite")
    assert code == 3, err
    assert_one_clean_line(err, "part-1.parquet", repr(column))
    if (tmp_path / "c.sqlite").exists():  # nothing was imported
        assert json.loads(cli("--json", "consent", "show", "--ledger", tmp_path / "c.sqlite")[1])["persons"] == 0
    assert_no_raw_id(out, err)


def test_a_hive_partition_counts_as_the_files_column(cli, tmp_path):
    directory = tmp_path / "consent"
    table = pa.table({k: pa.array([r[k] for r in consent_rows(IDS)]) for k in consent_rows(IDS[:1])[0]})
    (directory / "jurisdiction=US").mkdir(parents=True)
    pq.write_table(table.drop_columns(["jurisdiction"]), directory / "jurisdiction=US" / "part-0.parquet")
    code, out, err = cli("--json", "consent", "import", directory, "--ledger", tmp_path / "c.sqlite")
    assert code == 0, err
    assert json.loads(out)["accepted"] == len(IDS)


def test_run_reads_consent_from_a_parquet_dataset_directory(cli, world):
    directory = _consent_dataset(world / "consent-ds")
    code, out, err = cli("--json", "run", "--events", _parquet(world), "--consent", directory, "--out",
                         world / "out", "--ledger", world / "budget.sqlite")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["consent_import"]["accepted"] == len(IDS)
    assert doc["summary"]["eligible_persons"] == len(IDS)
    assert (world / "out" / "consent.sqlite").exists()
    assert_no_raw_id(out, err, directory=world / "out")


def test_run_still_refuses_a_consent_file_of_another_kind(cli, world):
    path = world / "consent.txt"
    path.write_text("x", encoding="utf-8")
    code, _, err = cli("run", "--events", _parquet(world), "--consent", path, "--out", world / "out", "--ledger",
                       world / "budget.sqlite")
    assert code == 3, err
    assert_one_clean_line(err, "consent.txt", "dataset directory")


# --- 6. UTF-16 CSV -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_a_utf16_events_csv_is_refused_as_utf16(cli, world, codec):
    text = csv_text([[f"{i}", "video", str(int(time.time()) - 86_400), "483"] for i in IDS * 20])
    bom = {"utf-16": b"", "utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}[codec]
    path = world / "events.csv"
    path.write_bytes(bom + text.encode(codec))
    code, out, err = run_events(cli, world, path)
    assert code == 3, err
    assert_one_clean_line(err, "events.csv", "holds UTF-16 text; save it as UTF-8")
    assert_no_raw_id(out, err, directory=world / "out")


def test_a_utf16_consent_csv_is_refused_as_utf16(cli, tmp_path):
    path = write_consent_csv(tmp_path / "consent.csv", consent_rows(IDS))
    path.write_bytes(path.read_text(encoding="utf-8").encode("utf-16"))
    code, out, err = cli("consent", "import", path, "--ledger", tmp_path / "c.sqlite")
    assert code == 3, err
    assert_one_clean_line(err, "consent.csv", "holds UTF-16 text; save it as UTF-8")
    assert_no_raw_id(out, err)


# --- 7. single consent updates for ids no import accepts ---------------------------------------------------
NEVER_IMPORTED = [" ", "\t", "SECRET-ID-1\n2", "SECRET-ID-\x1b[2J"]


@pytest.mark.parametrize("person_id", NEVER_IMPORTED)
def test_consent_opt_out_refuses_an_id_no_import_accepts(cli, world, person_id):
    ledger = world / "consent.sqlite"
    before = cli("--json", "consent", "show", "--ledger", ledger)[1]
    for action in ("opt-out", "forget"):
        code, out, err = cli("consent", action, person_id, "--ledger", ledger)
        assert code == 2, (action, err)
        assert_one_clean_line(err, "person_id")
        assert_no_raw_id(out, err)
    assert cli("--json", "consent", "show", "--ledger", ledger)[1] == before


@pytest.mark.parametrize("person_id", NEVER_IMPORTED)
def test_every_single_update_refuses_an_id_no_import_accepts(tmp_path, person_id):
    from adtarget import ConsentLedger, Pseudonymizer
    from adtarget.exceptions import ParameterError

    with ConsentLedger(tmp_path / "c.sqlite", Pseudonymizer(KEY)) as ledger:
        updates = [lambda: ledger.record(person_id, birth_year=1980), lambda: ledger.opt_out(person_id),
                   lambda: ledger.opt_in(person_id, policy_version="2018-05-14"),
                   lambda: ledger.set_cross_service(person_id, True), lambda: ledger.forget(person_id)]
        for update in updates:
            with pytest.raises(ParameterError, match="^person_id: ") as caught:
                update()
            assert "SECRET" not in str(caught.value)
        assert ledger.stats()["persons"] == 0 and ledger.export_person(person_id)["current"] is None
        ledger.opt_out("SECRET-ID-0001")  # an ordinary id still works
        ledger.forget(" SECRET-ID-0002")  # spaces around an id are part of it, as in imports
        assert ledger.stats()["persons"] == 2


def test_forget_still_erases_such_an_id_stored_before(tmp_path, monkeypatch):
    """A ledger written before these ids were refused may hold one: forgetting it and exporting it still work."""
    from adtarget import ConsentLedger, Pseudonymizer
    from adtarget.consent import _ledger

    with ConsentLedger(tmp_path / "c.sqlite", Pseudonymizer(KEY)) as ledger:
        with monkeypatch.context() as patched:
            patched.setattr(_ledger, "_import_rejects", lambda person_id: None)  # the ledger of old
            ledger.opt_in(" ", policy_version="2018-05-14")
        assert ledger.export_person(" ")["current"]["ads_personalization"] == "opt_in"
        ledger.forget(" ")
        current = ledger.export_person(" ")["current"]
        assert current["deleted"] and current["ads_personalization"] == "opt_out"


# --- 8. a tie between a known and an unknown birth year ----------------------------------------------------
@pytest.mark.parametrize("order", ["unknown first", "unknown last", "separate imports"])
def test_an_unknown_birth_year_wins_a_tie_against_a_known_one(cli, tmp_path, order):
    """A person of unknown age is excluded like a minor; a tied record with a known year must not lift that, in
    the ledger's current state (SQL) and in a snapshot as of a time (numpy), whatever the order."""
    from adtarget import ConsentLedger, Pseudonymizer

    person = IDS[0]
    unknown, known = (consent_rows([person], birth_year=b, updated_at="2024-01-01T00:00:00Z")[0]
                      for b in ("", 1980))
    rows = [unknown, known] if order != "unknown last" else [known, unknown]
    ledger = tmp_path / "c.sqlite"
    files = ([write_consent_csv(tmp_path / f"c{i}.csv", [r]) for i, r in enumerate(rows)]
             if order == "separate imports" else [write_consent_csv(tmp_path / "c.csv", rows)])
    for f in files:
        assert cli("consent", "import", f, "--ledger", ledger)[0] == 0
    code, out, err = cli("--json", "consent", "show", person, "--ledger", ledger)
    assert code == 0, err
    assert json.loads(out)["current"]["birth_year"] is None, out
    with ConsentLedger(ledger, Pseudonymizer(KEY)) as opened:
        for snapshot in (opened.snapshot(), opened.snapshot(as_of=int(time.time()))):
            assert snapshot.birth_year.tolist() == [0], order
