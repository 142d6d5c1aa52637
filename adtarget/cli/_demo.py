"""``adtarget demo``: synthetic data → the whole pipeline → DIR/report.json, summary.json,
assignments.parquet, explanation.json and segments.png, in seconds (docs/cli.md "demo").

The demo makes a fresh random pseudonymisation key (never stored) and keeps its consent and budget ledgers in
DIR, recreated on every run, so it can be re-run and never touches ``$ADTARGET_HOME``.
"""

from __future__ import annotations

import argparse
import secrets
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._config import output_dir
from adtarget.cli._errors import EXIT_OK, UsageError
from adtarget.cli._output import Output
from adtarget.cli._run import execute, open_consent, result_data, result_text, write_outputs

__all__ = ["DEFAULT_EVENTS", "add_parser"]

DEFAULT_EVENTS = 200_000
_MAX_EVENTS = 50_000_000
_LEDGER_FILES = ("consent.sqlite", "budget.sqlite")
_DEMO_ADVERTISER = "demo-advertiser"  # registered in the demo's fresh budget ledger


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("demo", parents=[common], help="run the whole pipeline on synthetic data",
                              description="Generate synthetic events and consent, run the whole pipeline with a "
                                          "fresh random key and a budget ledger inside DIR, and plot the result.")
    p.add_argument("--events", type=opt.positive_int, default=DEFAULT_EVENTS, metavar="N",
                   help=f"synthetic events (default: {DEFAULT_EVENTS:,})")
    p.add_argument("--seed", type=opt.non_negative_int, default=0, metavar="S",
                   help="seed of the synthetic data (the noise stays secure) (default: 0)")
    p.add_argument("--out", type=Path, default=Path("demo-output"), metavar="DIR",
                   help="output directory (default: demo-output)")
    p.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace, out: Output) -> int:
    """Generate, write, import, run, write outputs and plot."""
    if args.events > _MAX_EVENTS:
        raise UsageError(f"--events must be at most {_MAX_EVENTS:,} for the demo, got {args.events}",
                         hint="use 'adtarget synth' and 'adtarget run' for larger data")
    from adtarget import synth
    from adtarget.budget._ledger import BudgetLedger
    from adtarget.cli._plot import plot_segment_sizes
    from adtarget.events._pseudonym import Pseudonymizer

    out_dir = output_dir(args.out)
    with out.steps(5, "adtarget demo") as step:
        step("generate synthetic data")
        data = synth.generate(synth.SyntheticConfig(n_events=args.events, seed=args.seed))
        events = synth.write_events(data, out_dir / "events.parquet")
        consent_file = synth.write_consent(data, out_dir / "consent.csv")
        step("import consent")
        _fresh_ledgers(out_dir)
        pseudonymizer = Pseudonymizer(secrets.token_bytes(32))
        consent, _ = open_consent(consent_file, None, out_dir, pseudonymizer)
        step("build and release")
        budget = BudgetLedger(out_dir / "budget.sqlite", advertisers=[_DEMO_ADVERTISER])
        result = execute(events, consent, pseudonymizer=pseudonymizer, budget=budget, settings=opt.run_settings(_demo_args()),
            safe_taxonomy=opt.safe_taxonomy(_demo_args()), services=opt.services(None),
            engine=_local_engine(), seed=None)
        step("write outputs")
        paths = write_outputs(result, out_dir)
        step("plot")
        paths["plot"] = plot_segment_sizes(result, out_dir / "segments.png")
    paths = {"events": events, "consent": consent_file, **paths}
    out.result({**result_data(result, paths), "n_events": data.n_events, "seed": args.seed},
               result_text(result, paths) + f"\nread {out_dir / 'report.json'} first; README.md explains it")
    return EXIT_OK


def _demo_args() -> argparse.Namespace:
    """The settings of ``adtarget run`` at their defaults."""
    return argparse.Namespace(advertiser=_DEMO_ADVERTISER, epsilon=1.0, delta=1e-6, mechanism="discrete_laplace",
                              max_segments_per_person=5, min_size=50, false_segment_rate=1e-6, size_share=0.6,
                              sensitivity_profile="default", taxonomy="iab-2.2", min_age=13, unknown_age="exclude",
                              adult_age=18, target_service=None)


def _fresh_ledgers(out_dir: Path) -> None:
    """Remove the ledgers of an earlier demo in ``out_dir`` (made with another random key)."""
    for name in _LEDGER_FILES:
        for suffix in ("", "-wal", "-shm", "-journal"):
            (out_dir / f"{name}{suffix}").unlink(missing_ok=True)


def _local_engine() -> Any:
    from adtarget.engine._protocol import LocalEngine

    return LocalEngine()
