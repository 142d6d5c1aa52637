"""``adtarget consent import|show|opt-out|forget|export``: the consent ledger from the command line
(promises P3, P7, P8; docs/cli.md "consent").

Person ids given here are pseudonymised at once with ``ADTARGET_PSEUDONYM_KEY`` and never printed; the export
shows the pseudonym, as an access request needs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from adtarget.cli._config import (
    default_consent_ledger,
    existing_file,
    ledger_path,
    pseudonymizer_from_env,
)
from adtarget.cli._errors import EXIT_OK, CommandInputError
from adtarget.cli._output import Output, printable

__all__ = ["add_parser"]

_IMPORT_HINT = "import consent records first: adtarget consent import FILE"


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("consent", parents=[common], help="import and manage consent records",
                              description="The consent ledger (default: $ADTARGET_HOME/consent.sqlite).")
    sub = p.add_subparsers(dest="consent_command", metavar="ACTION", required=True)
    imp = _action(sub, common, "import", "import consent records from CSV or Parquet", _import)
    imp.add_argument("file", type=Path, metavar="PATH", help="consent records (.csv, .parquet, .pq, or a Parquet "
                     "dataset directory)")
    imp.add_argument("--lenient", action="store_true", help="import the good rows and report the bad ones "
                     "(default: any bad row rejects the whole file)")
    imp.add_argument("--drop-unknown-columns", action="store_true",
                     help="ignore columns outside the consent contract (identifying columns are always refused)")
    show = _action(sub, common, "show", "ledger counts, or one person's current consent", _show)
    show.add_argument("person_id", nargs="?", metavar="PERSON_ID", help="show this person's current record")
    _action(sub, common, "opt-out", "record that a person opted out of ads personalisation",
            _opt_out).add_argument("person_id", metavar="PERSON_ID")
    forget = _action(sub, common, "forget", "erase a person from the ledger and from event and assignment files "
                     "(deletion request)", _forget)
    forget.add_argument("person_id", metavar="PERSON_ID")
    _add_data_files(forget, "rewrite without the person's rows")
    exp = _action(sub, common, "export", "everything held about one person (access request)", _export)
    exp.add_argument("person_id", metavar="PERSON_ID")
    _add_data_files(exp, "also count the person's events / list their segments in")
    exp.add_argument("--output", type=Path, metavar="FILE", help="write the export to FILE instead of stdout")


def _add_data_files(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--events", type=Path, action="append", default=[], metavar="PARQUET",
                        help=f"{what} this events Parquet file or dataset directory (repeatable)")
    parser.add_argument("--assignments", type=Path, action="append", default=[], metavar="PARQUET",
                        help=f"{what} this assignments.parquet of a run (repeatable)")


def _action(sub: Any, common: argparse.ArgumentParser, name: str, text: str, handler: Any,
            ) -> argparse.ArgumentParser:
    p = sub.add_parser(name, parents=[common], help=text, description=text)
    p.add_argument("--ledger", type=Path, metavar="PATH",
                   help="consent ledger (default: $ADTARGET_HOME/consent.sqlite, ~/.adtarget/consent.sqlite)")
    p.set_defaults(handler=handler)
    return p


def _open(args: argparse.Namespace, *, create: bool = False) -> Any:
    """The consent ledger of ``--ledger`` (created only by ``import``), keyed by ADTARGET_PSEUDONYM_KEY."""
    from adtarget.consent import ConsentLedger

    path = args.ledger if args.ledger is not None else default_consent_ledger()
    if create:
        path = ledger_path(args.ledger, default_consent_ledger(), "consent ledger")
    else:
        existing_file(path, "consent ledger", hint=_IMPORT_HINT)
    pseudonymizer = pseudonymizer_from_env()
    return ConsentLedger(path, pseudonymizer), pseudonymizer


def _data_files(args: argparse.Namespace) -> tuple[list[Path], list[Path]]:
    for path in [*args.events, *args.assignments]:
        if not path.exists():
            raise CommandInputError(f"{str(path)!r} does not exist", hint="check the --events/--assignments paths")
    return list(args.events), list(args.assignments)


def _import(args: argparse.Namespace, out: Output) -> int:
    dataset = args.file.is_dir()  # a Parquet dataset directory (its files' columns checked as one union)
    name = args.file.name.lower() if dataset else existing_file(args.file, "consent file").name.lower()
    if not dataset and not name.endswith((".csv", ".parquet", ".pq")):
        raise CommandInputError(f"consent file {str(args.file)!r} must end in .csv, .parquet or .pq (or be a "
                                "Parquet dataset directory)", hint="export the consent records as CSV or Parquet")
    ledger, _ = _open(args, create=True)
    with ledger:
        read = ledger.import_csv if not dataset and name.endswith(".csv") else ledger.import_parquet
        report = read(args.file, strict=not args.lenient, drop_unknown_columns=args.drop_unknown_columns)
        data = {"ok": True, "ledger": str(ledger.path), "rows": report.input_rows, "accepted": report.accepted,
                "rejected": report.rejected, "rejected_reasons": report.reasons(), "applied": report.applied,
                "erased": report.erased, "dropped_columns": list(report.dropped_columns)}
    shown = dataclasses.replace(report, source=printable(report.source))  # a file name may hold a newline
    out.result(data, f"{shown}\nledger: {printable(data['ledger'])}")
    return EXIT_OK


def _show(args: argparse.Namespace, out: Output) -> int:
    ledger, _ = _open(args)
    with ledger:
        if args.person_id is None:
            stats = ledger.stats()
            out.result({"ok": True, "ledger": str(ledger.path), **stats},
                       f"consent ledger {printable(ledger.path)}\n"
                       + "\n".join(f"  {k:<17} {v}" for k, v in stats.items()))
            return EXIT_OK
        current = ledger.export_person(args.person_id)["current"]
    text = "no consent record for this person" if current is None else json.dumps(current, indent=2)
    out.result({"ok": True, "current": current}, text)
    return EXIT_OK


def _opt_out(args: argparse.Namespace, out: Output) -> int:
    ledger, _ = _open(args)
    with ledger:
        applied = ledger.opt_out(args.person_id, source="cli")
    out.result({"ok": True, "applied": bool(applied)},
               "opt-out recorded" if applied else "opt-out not applied: a newer record stays current, or the person "
               "was forgotten (and is excluded from everything already)")
    return EXIT_OK


def _forget(args: argparse.Namespace, out: Output) -> int:
    from adtarget.rights._purge import forget_everywhere

    events, assignments = _data_files(args)
    ledger, pseudonymizer = _open(args)
    with ledger:
        purged = forget_everywhere([args.person_id], ledger=ledger, pseudonymizer=pseudonymizer, events=events,
                                   assignments=assignments)
    data = {"ok": True, "forgotten": True, "files_rewritten": purged.files, "rows_removed": purged.removed_forgotten}
    out.result(data, "person erased from the consent ledger (a scrubbed deletion record remains so that later "
                     f"imports cannot bring them back); {purged.removed_forgotten} row(s) removed from "
                     f"{purged.files} file(s)")
    return EXIT_OK


def _export(args: argparse.Namespace, out: Output) -> int:
    from adtarget._core._atomic import write_private_text
    from adtarget.rights._access import access_export

    events, assignments = _data_files(args)
    ledger, pseudonymizer = _open(args)
    with ledger:
        doc = access_export(args.person_id, ledger=ledger, pseudonymizer=pseudonymizer, events=events,
                            assignments=assignments)
    text = json.dumps(doc, indent=2, sort_keys=True)
    if args.output is not None:
        write_private_text(args.output, text + "\n")  # personal data: readable by its owner only
        out.result({"ok": True, "output": str(args.output)}, f"export written to {printable(args.output)}")
    elif out.json_mode or not out.quiet:
        print(text, file=out.stdout)
    return EXIT_OK
