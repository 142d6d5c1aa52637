"""``adtarget run``: events + consent in; report.json, summary.json, explanation.json and assignments.parquet
out (docs/cli.md "run")."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from adtarget.cli import _options as opt
from adtarget.cli._config import (
    default_budget_ledger,
    existing_file,
    ledger_path,
    output_dir,
    pseudonymizer_from_env,
)
from adtarget.cli._errors import EXIT_OK, CommandInputError, UsageError
from adtarget.cli._inputs import check_events_path
from adtarget.cli._output import Output, printable

__all__ = ["add_parser", "execute", "open_consent", "result_data", "result_text", "write_outputs"]

_LEDGER_SUFFIXES = (".sqlite", ".sqlite3", ".db")
_RECORD_SUFFIXES = (".csv", ".parquet", ".pq")


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("run", parents=[common], help="build segments and release a DP report",
                              description="Ingest events, apply the eligibility gate, build segments and "
                                          "release a differentially private segment report.")
    p.add_argument("--events", type=Path, required=True, metavar="PATH", help="events: Parquet (file or "
                   "dataset directory) or CSV")
    p.add_argument("--consent", type=Path, required=True, metavar="PATH",
                   help="a consent ledger (.sqlite), or consent records (.csv/.parquet file or Parquet dataset "
                        "directory) to import first")
    p.add_argument("--consent-ledger", type=Path, metavar="PATH",
                   help="where --consent records are imported (default: <out>/consent.sqlite)")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output directory")
    p.add_argument("--advertiser", type=opt.advertiser, default="demo-advertiser", metavar="A",
                   help="who receives the report and is charged (default: demo-advertiser)")
    p.add_argument("--epsilon", type=opt.epsilon, default=1.0, metavar="E", help="ε of the release (default: 1)")
    p.add_argument("--delta", type=opt.delta, default=1e-6, metavar="D", help="δ of the release (default: 1e-6)")
    p.add_argument("--mechanism", choices=opt.MECHANISMS, default="discrete_laplace",
                   help="count noise (default: discrete_laplace)")
    p.add_argument("--engine", choices=("local", "spark"), default="local", help="engine (default: local)")
    p.add_argument("--master", metavar="URL", help="Spark master URL for --engine spark (default: local[2])")
    p.add_argument("--services", type=Path, metavar="FILE", help="service registry CSV (default: the synthetic "
                   "services)")
    opt.add_policy_options(p)
    p.add_argument("--max-segments-per-person", type=opt.positive_int, default=5, metavar="K",
                   help="contribution bound: segments a person counts in (default: 5)")
    p.add_argument("--min-size", type=opt.positive_int, default=50, metavar="N",
                   help="smallest reported segment size or breakdown cell (default: 50)")
    p.add_argument("--false-segment-rate", type=opt.open_fraction, default=1e-6, metavar="R",
                   help="largest probability that a segment or cell whose true count is below --min-size is "
                        "shown; sets the noise-aware thresholds (default: 1e-6)")
    p.add_argument("--size-share", type=opt.open_fraction, default=0.6, metavar="F",
                   help="share of ε spent on the segment sizes when breakdowns are released; the cells get the "
                        "rest (default: 0.6)")
    p.add_argument("--ledger", type=Path, metavar="PATH",
                   help="budget ledger (default: $ADTARGET_HOME/budget.sqlite, ~/.adtarget/budget.sqlite)")
    p.add_argument("--seed", type=opt.non_negative_int, metavar="S",
                   help="seed the noise: reproducible, NOT private; for tests and tutorials only (warns)")
    p.add_argument("--target-service", metavar="S", help="build for ads on this service only (P2)")
    p.add_argument("--window-end", type=opt.window_end, default="today", metavar="WHEN",
                   help="end of the data window: today (00:00 UTC, the default), now, or an ISO date/datetime; "
                        "re-running an identical build returns the stored report without new spending")
    p.add_argument("--snapshot-id", type=opt.snapshot_id, metavar="ID",
                   help="your public name for this data snapshot (e.g. a job run id): a build that repeats an "
                        "earlier one (same settings, window and snapshot id) returns the stored report; "
                        "without it the window alone names the snapshot")
    p.add_argument("--proxy-screen", type=Path, metavar="FILE",
                   help="segments to leave out as sensitive proxies (a ProxyScreen JSON file, e.g. from a DP "
                        "proxy audit: docs/privacy/audit.md)")
    p.set_defaults(handler=run_command)


def run_command(args: argparse.Namespace, out: Output) -> int:
    """Check every option and input, then run the main job and write its outputs."""
    if args.master is not None and args.engine != "spark":
        raise UsageError(f"--master is only used with --engine spark, got --engine {args.engine}",
                         hint="add --engine spark or drop --master")
    settings, safe_taxonomy = _checked_settings(args)
    services = opt.services(existing_file(args.services, "--services") if args.services else None)
    screen = _screen(args.proxy_screen)
    check_events_path(args.events)
    pseudonymizer = pseudonymizer_from_env()
    out_dir = output_dir(args.out)
    with out.steps(4, "adtarget run") as step:
        step("budget ledger")  # first: an unregistered advertiser fails before the consent import writes a file
        budget = _budget_ledger(args.ledger)
        budget.advertiser(args.advertiser)  # UnknownAdvertiserError (exit 2) when it is not registered
        step("consent")
        consent, imported = open_consent(args.consent, args.consent_ledger, out_dir, pseudonymizer)
        step("build and release")
        result = execute(args.events, consent, pseudonymizer=pseudonymizer, budget=budget, settings=settings,
                         safe_taxonomy=safe_taxonomy, services=services, engine=make_engine(args),
                         seed=args.seed, window_end=args.window_end, snapshot_id=args.snapshot_id, screen=screen)
        step("write outputs")
        paths = write_outputs(result, out_dir)
    data = result_data(result, paths)
    if imported is not None:
        data["consent_import"] = imported
    out.result(data, result_text(result, paths))
    return EXIT_OK


def _checked_settings(args: argparse.Namespace) -> tuple[Any, Any]:
    """RunSettings and SafeTaxonomy, with the release spec checked now (ε, δ and mechanism together) rather
    than after the build."""
    from adtarget.exceptions import ParameterError

    try:
        settings, safe_taxonomy = opt.run_settings(args), opt.safe_taxonomy(args)
        taxonomy = safe_taxonomy.taxonomy
        settings.release_spec((f"{taxonomy.name}:{taxonomy.ids[0]}",))
    except ParameterError as exc:
        raise UsageError(str(exc), hint="see 'adtarget run --help'") from None
    return settings, safe_taxonomy


def _screen(path: Path | None) -> Any:
    if path is None:
        return None
    from adtarget.segments._screen import ProxyScreen

    return ProxyScreen.read(existing_file(path, "--proxy-screen"))


def _budget_ledger(path: Path | None) -> Any:
    from adtarget.budget._ledger import BudgetLedger

    return BudgetLedger(ledger_path(path, default_budget_ledger(), "budget ledger"))


def open_consent(path: Path, ledger: Path | None, out_dir: Path, pseudonymizer: Any,
                 ) -> tuple[Any, dict[str, Any] | None]:
    """The consent ledger: ``path`` itself (.sqlite), or a ledger into which ``path``'s records (a CSV or
    Parquet file, or a Parquet dataset directory, as ``consent import`` reads them) are imported."""
    from adtarget.consent import ConsentLedger

    hint = "give a consent ledger (.sqlite), consent records (.csv/.parquet) or a Parquet dataset directory"
    if not path.exists():
        raise CommandInputError(f"--consent {str(path)!r} does not exist", hint=hint)
    dataset = path.is_dir()  # a Parquet dataset directory of consent records
    name = path.name.lower()
    if not dataset and name.endswith(_LEDGER_SUFFIXES):
        return ConsentLedger(path, pseudonymizer), None
    if not dataset and not name.endswith(_RECORD_SUFFIXES):
        raise CommandInputError(f"--consent {str(path)!r} must end in .sqlite, .db, .csv, .parquet or .pq, or be "
                                "a Parquet dataset directory", hint="give a consent ledger or consent records")
    target = ledger_path(ledger, out_dir / "consent.sqlite", "consent ledger")
    consent = ConsentLedger(target, pseudonymizer)
    report = consent.import_csv(path) if not dataset and name.endswith(".csv") else consent.import_parquet(path)
    return consent, {"ledger": str(target), "rows": report.input_rows, "accepted": report.accepted,
                     "rejected": report.rejected, "applied": report.applied}


def make_engine(args: argparse.Namespace) -> Any:
    """LocalEngine, or SparkEngine (imported only when asked for)."""
    if args.engine == "local":
        from adtarget.engine._protocol import LocalEngine

        return LocalEngine()
    try:
        from adtarget.engine._spark import SparkEngine
    except ImportError as exc:
        raise UsageError(f"--engine spark is not available here ({exc})",
                         hint="pip install 'adtarget[spark]' (needs Java 17)") from None
    return SparkEngine(master=args.master or "local[2]")


def execute(events: Path, consent: Any, *, pseudonymizer: Any, budget: Any, settings: Any, safe_taxonomy: Any,
            services: Any, engine: Any, seed: int | None, window_end: int | None = None,
            snapshot_id: str | None = None, screen: Any = None) -> Any:
    """Run the main job (adtarget.engine._run.run); a Spark session this engine started is stopped after."""
    from adtarget.engine._run import run

    source: Any = str(events) if getattr(engine, "name", "") == "spark" else events
    try:
        return run(source, consent, pseudonymizer=pseudonymizer, budget=budget, settings=settings,
                   safe_taxonomy=safe_taxonomy, services=services, engine=engine, window_end=window_end,
                   snapshot_id=snapshot_id, screen=screen, random_state=seed)
    finally:
        stop = getattr(engine, "stop", None)
        if stop is not None:
            stop()


def write_outputs(result: Any, out_dir: Path) -> dict[str, Path]:
    """report.json, explanation.json, summary.json and assignments.parquet (local engine) in ``out_dir``."""
    return dict(result.write(out_dir))


def result_data(result: Any, paths: dict[str, Path]) -> dict[str, Any]:
    """The ``--json`` document of a run."""
    privacy = result.report.privacy
    audience = getattr(result, "AUDIENCE", {})
    return {"ok": True, "files": {k: str(v) for k, v in paths.items()},
            "may_leave_company": [k for k in paths if audience.get(k) == "advertiser"], "summary": result.summary,
            "advertiser": result.report.advertiser, "epsilon": privacy["epsilon"], "delta": privacy["delta"],
            "budget_remaining": privacy["budget_remaining"]}


def result_text(result: Any, paths: dict[str, Path]) -> str:
    """A few lines a person reads after a run."""
    s = result.summary
    rows = s["rows"]
    excluded = sum(s["excluded"].values())
    top = sorted(((n, k) for k, n in s["excluded"].items() if n), reverse=True)[:3]
    why = ", ".join(f"{k} {n}" for n, k in top)
    remaining = result.report.privacy["budget_remaining"]
    spent = ("nothing new (an identical earlier query: its stored report was returned)"
             if s["reused_stored_report"] else f"ε={s['epsilon_spent']}")
    lines = [
        f"events: {rows['input']} read, {rows['quarantined']} quarantined, {excluded} excluded by policy"
        + (f" ({why}, ...)" if why else "") + f", {s['eligible_events']} eligible "
        f"({s['eligible_persons']} persons)",
        f"segments: {s['segments']['released']} released to {result.report.advertiser!r}, "
        f"{s['segments']['suppressed']} suppressed",
        f"privacy budget: spent {spent}; remaining ε: advertiser {remaining['advertiser']}, "
        f"global {remaining['global']}",
    ]
    audience = getattr(result, "AUDIENCE", {})
    shared = [name for name in paths if audience.get(name) == "advertiser"]
    lines.append("may leave the company (noised values and public parameters only): " + ", ".join(shared))
    lines += [f"  {name:<12} {printable(path)}" for name, path in paths.items() if name in shared]
    lines.append("internal (exact counts or pseudonyms; files are readable by their owner only):")
    lines += [f"  {name:<12} {printable(path)}" for name, path in paths.items() if name not in shared]
    return "\n".join(lines)
