"""``adtarget synth``: write synthetic events and consent records (adtarget.synth; docs/synth.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._config import output_dir
from adtarget.cli._errors import EXIT_OK
from adtarget.cli._output import Output, printable

__all__ = ["add_parser"]


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("synth", parents=[common], help="write synthetic events and consent records",
                              description="Write DIR/events.<fmt> and DIR/consent.<fmt> from adtarget.synth.")
    p.add_argument("--events", type=opt.positive_int, required=True, metavar="N", help="number of events")
    p.add_argument("--seed", type=opt.non_negative_int, default=0, metavar="S", help="seed (default: 0)")
    p.add_argument("--persons", type=opt.positive_int, metavar="M", help="persons (default: N // 20)")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet",
                   help="events file format (default: parquet); consent is written as CSV")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.set_defaults(handler=_synth)


def _synth(args: argparse.Namespace, out: Output) -> int:
    from adtarget import synth

    config = synth.SyntheticConfig(n_events=args.events, n_persons=args.persons, seed=args.seed)
    out_dir = output_dir(args.out)
    with out.steps(3, "adtarget synth") as step:
        step("generate")
        data = synth.generate(config)
        step("write events")
        events = synth.write_events(data, out_dir / f"events.{args.format}")
        step("write consent")
        consent = synth.write_consent(data, out_dir / "consent.csv")
    data_doc = {"ok": True, "events": str(events), "consent": str(consent), "n_events": data.n_events,
                "n_persons": data.n_persons, "n_consent_records": int(data.consent["person_id"].size),
                "seed": args.seed}
    out.result(data_doc, f"wrote {data.n_events} events of {data.n_persons} persons to {printable(events)}\n"
                         f"wrote {data_doc['n_consent_records']} consent records to {printable(consent)}")
    return EXIT_OK
