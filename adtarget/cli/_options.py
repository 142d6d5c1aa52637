"""Options shared by several commands: their argparse types (which reject bad values before any work is done)
and the library objects built from them (taxonomy, sensitivity profile, policy, run settings)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

__all__ = ["add_policy_options", "advertiser", "delta", "epsilon", "non_negative_int", "policy", "positive_int",
           "run_settings", "safe_taxonomy", "services", "window_end"]

MECHANISMS = ("discrete_laplace", "discrete_gaussian")


def _number(text: str, what: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None


def epsilon(text: str) -> float:
    """ε: a finite number > 0."""
    value = _number(text, "epsilon")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"epsilon must be a finite number > 0, got {text!r}")
    return value


def delta(text: str) -> float:
    """δ: a number in [0, 1)."""
    value = _number(text, "delta")
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"delta must be a number in [0, 1), got {text!r}")
    return value


def _integer(text: str, what: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be an integer, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"{what} must be an integer >= {low}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1."""
    return _integer(text, "value", 1)


def non_negative_int(text: str) -> int:
    """An integer >= 0 (seeds)."""
    return _integer(text, "value", 0)


def open_fraction(text: str) -> float:
    """A number strictly between 0 and 1 (shares and rates; the spec checks the exact range)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number between 0 and 1, got {text!r}")
    return value


def snapshot_id(text: str) -> str:
    """A data snapshot's name: 1-200 printable characters without edge whitespace."""
    if not 1 <= len(text) <= 200 or not text.isprintable() or text != text.strip():
        raise argparse.ArgumentTypeError("must be 1-200 printable characters without leading or trailing spaces")
    return text


def window_end(text: str) -> int:
    """The data window's end: ``today`` (00:00 UTC today), ``now``, an ISO date (00:00 UTC that day) or an ISO
    datetime with a time zone, as epoch seconds."""
    import datetime as dt
    import time

    if text in ("today", "now"):
        now = int(time.time())
        return now if text == "now" else now - now % 86_400
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"window end must be 'today', 'now', an ISO date or an ISO datetime, "
                                         f"got {text!r}") from None
    if len(text) == 10:
        when = when.replace(tzinfo=dt.timezone.utc)
    if when.tzinfo is None:
        raise argparse.ArgumentTypeError(f"window end must name its time zone (e.g. ...T00:00:00Z), got {text!r}")
    return int(when.timestamp())


def advertiser(text: str) -> str:
    """An advertiser's canonical id (NFKC, case-folded; 1-200 characters, no control characters)."""
    from adtarget.budget._ledger import checked_advertiser
    from adtarget.exceptions import ParameterError

    try:
        return checked_advertiser(text)
    except ParameterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_policy_options(parser: argparse.ArgumentParser) -> None:
    """``--taxonomy``, ``--sensitivity-profile``, ``--min-age``, ``--unknown-age``, ``--adult-age``."""
    parser.add_argument("--taxonomy", default="iab-2.2", metavar="NAME|PATH",
                        help="bundled taxonomy (iab-2.2, topics-v2, iab-audience-1.1) or a .tsv/.csv/.json file "
                             "(default: iab-2.2)")
    parser.add_argument("--sensitivity-profile", default="default", metavar="NAME",
                        help="sensitive categories removed before profiles exist: default, gdpr_art9, "
                             "strict_minors (default: default)")
    parser.add_argument("--min-age", type=int, default=13, metavar="N",
                        help="persons younger than N are excluded; at least 13 (default: 13)")
    parser.add_argument("--unknown-age", choices=("exclude", "include"), default="exclude",
                        help="what to do with persons whose birth year is unknown (default: exclude)")
    parser.add_argument("--adult-age", type=int, default=18, metavar="N",
                        help="for persons younger than N (or of unknown age) the age-restricted categories "
                             "(alcohol, tobacco, gambling, dating, weapons, nightlife) are never used; at least 18 "
                             "(default: 18)")


def safe_taxonomy(args: argparse.Namespace) -> Any:
    """The SafeTaxonomy of ``--taxonomy`` under ``--sensitivity-profile``."""
    from adtarget.reference._sensitivity import SafeTaxonomy, SensitivityProfile
    from adtarget.reference._taxonomy import Taxonomy

    profile = SensitivityProfile.named(args.sensitivity_profile)
    return SafeTaxonomy(Taxonomy.load(args.taxonomy), profile)


def policy(args: argparse.Namespace) -> Any:
    """The EligibilityPolicy of ``--min-age``, ``--unknown-age`` and ``--adult-age``."""
    from adtarget.gate._policy import EligibilityPolicy

    return EligibilityPolicy(min_age=args.min_age, unknown_age=args.unknown_age, adult_age=args.adult_age)


def services(path: Path | None) -> Any:
    """The ServiceRegistry of ``--services FILE`` (default: the synthetic registry)."""
    from adtarget.reference._services import ServiceRegistry

    return ServiceRegistry.synthetic() if path is None else ServiceRegistry.from_csv(path)


def run_settings(args: argparse.Namespace) -> Any:
    """RunSettings from the options of ``adtarget run``; the settings and the policy check themselves."""
    from adtarget.engine._run import RunSettings

    return RunSettings(advertiser=args.advertiser, epsilon=args.epsilon, delta=args.delta,
                       mechanism=args.mechanism, max_segments_per_person=args.max_segments_per_person,
                       min_reported_size=args.min_size, size_share=args.size_share,
                       false_segment_rate=args.false_segment_rate, sensitivity_profile=args.sensitivity_profile,
                       policy=policy(args), target_service=args.target_service)
