"""Composition of the charges of one accounting window, per advertiser and globally: the ledger's arithmetic.

Two routes, each a privacy filter that stays valid when advertisers choose each release after seeing earlier
reports (fully adaptive composition):

``basic``
    Basic composition: a window has spent ``(Σ ε, Σ δ)``; a charge fits when both stay under the cap
    (Rogers, Roth, Ullman and Vadhan 2016: basic composition is a valid privacy filter).
``rdp``
    zCDP, a form of Rényi DP: every block of every charge is described by a zCDP ``ρ`` and an approximate-DP
    ``δ`` — a discrete-Gaussian block by ``Δ2² / (2σ²)`` (Canonne, Kamath and Steinke 2020), a pure ε-DP block
    by ``ε² / 2`` (Bun and Steinke 2016, Prop. 3.3), an (ε, δ)-DP block (partition selection, a charge without
    a finer description) by ``ε² / 2`` and ``δ`` (it is a δ-mixture of an ε-DP pair: Kairouz, Oh and
    Viswanath 2015). The window then is ``Σδ``-approximately ``Σρ``-zCDP (Whitehouse, Ramdas, Rogers and Wu
    2023: the approximate-zCDP filter, for budgets fixed in advance), which is ``(ε_ρ, δ_c + Σδ)``-DP with
    ``ε_ρ`` the conversion of ``Σρ`` at ``δ_c`` by dp_accounting's ``RdpAccountant.get_epsilon`` (Canonne,
    Kamath and Steinke 2020, Prop. 12). ``δ_c = RDP_DELTA_SHARE · δ_cap``; a charge fits when
    ``ε_ρ <= ε_cap`` and ``Σδ <= (1 - RDP_DELTA_SHARE) · δ_cap``.

A window's route is chosen once, by the first charge of the window in that scope (from public parameters, before
anything of the window is released): ``rdp`` when that charge has Gaussian blocks and more charges like it fit
under ``rdp`` than under ``basic``, else ``basic``. Taking, at every charge, the smaller of the two routes' ε
would be a bound for a sequence of releases fixed in advance, but not a valid filter when the advertiser can
steer later releases by what it has seen. See docs/privacy/budget-ledger.md "Composition".

dp_accounting is imported only when a zCDP ρ is converted (never by ``import adtarget``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from adtarget.budget._spec import MAX_BLOCKS, PrivacyBudget, ReleaseAccounting, RemainingBudget
from adtarget.exceptions import ParameterError

__all__ = ["RDP_DELTA_SHARE", "ROUTES", "TOLERANCE", "Spend", "check_accounting", "choose_route", "composed",
           "events_json", "fits", "left", "parse_events", "spend_of", "total", "zcdp_epsilon"]

#: relative tolerance of cap comparisons: spent + requested <= cap * (1 + TOLERANCE), so 5 × 0.2 fits 1.0.
TOLERANCE = 1e-12
#: the accounting routes of a window, in the order the ledger documents them
ROUTES = ("basic", "rdp")
#: share of a scope's δ cap at which an ``rdp`` window's Σρ is converted to ε; the rest bounds the δ of its
#: approximate-DP parts (partition selection, definitions)
RDP_DELTA_SHARE = 0.5
#: the most charges like the first one that the route choice counts (a bound on its search, never reached
#: by a real cap: 10^6 releases)
_COPIES_LIMIT = 1_000_000


@dataclass(frozen=True)
class Spend:
    """What some charges spend, in both routes' terms.

    ``epsilon``, ``delta``: the basic-composition sums. ``rho``: the zCDP ρ of every block; ``bad_delta``: the
    δ of the approximate-DP blocks; ``gaussian``: some block is discrete Gaussian.
    """

    epsilon: float = 0.0
    delta: float = 0.0
    rho: float = 0.0
    bad_delta: float = 0.0
    gaussian: bool = False


def spend_of(epsilon: float, delta: float, accounting: ReleaseAccounting | None = None) -> Spend:
    """The Spend of one charge of (ε, δ) described by ``accounting`` (None: one (ε, δ)-DP block)."""
    if accounting is None:
        return Spend(epsilon, delta, epsilon * epsilon / 2.0, delta, False)
    return Spend(epsilon, delta, accounting.rho, accounting.bad_delta, accounting.has_gaussian)


def total(spends: Iterable[Spend]) -> Spend:
    """The Spend of all of ``spends`` (exact float sums, independent of order)."""
    items = list(spends)
    return Spend(math.fsum(s.epsilon for s in items), math.fsum(s.delta for s in items),
                 math.fsum(s.rho for s in items), math.fsum(s.bad_delta for s in items),
                 any(s.gaussian for s in items))


def check_accounting(budget: PrivacyBudget, accounting: Any) -> ReleaseAccounting | None:
    """``accounting`` if it is a ReleaseAccounting consistent with ``budget`` (its parts within the
    basic-composition total; Gaussian blocks only with δ > 0), else ParameterError. None passes."""
    if accounting is None:
        return None
    if type(accounting) is not ReleaseAccounting:
        raise ParameterError(f"accounting must be a ReleaseAccounting or None, got {type(accounting).__name__}")
    listed = math.fsum([*accounting.pure_epsilons, accounting.basic.epsilon if accounting.basic else 0.0])
    if listed > budget.epsilon * (1.0 + TOLERANCE) or accounting.bad_delta > budget.delta * (1.0 + TOLERANCE):
        raise ParameterError(f"accounting lists more than the budget {budget}: pure ε {accounting.pure_epsilons}, "
                             f"basic {accounting.basic}")
    if accounting.has_gaussian and budget.delta == 0:
        raise ParameterError(f"accounting lists Gaussian blocks but the budget {budget} has δ = 0 (Gaussian noise "
                             f"is not pure ε-DP)")
    return accounting


def events_json(accounting: ReleaseAccounting | None) -> str:
    """The ``rdp_events`` column of a spend row: ``[{"kind": "gaussian", "noise_multiplier": z}, ...,
    {"epsilon": e, "kind": "pure"}, ...]`` (keys sorted, no spaces); ``[]`` without accounting."""
    if accounting is None:
        return "[]"
    events: list[dict[str, Any]] = [{"kind": "gaussian", "noise_multiplier": z}
                                    for z in accounting.gaussian_noise_multipliers]
    events += [{"kind": "pure", "epsilon": e} for e in accounting.pure_epsilons]
    return json.dumps(events, sort_keys=True, separators=(",", ":"), allow_nan=False)


def parse_events(text: object) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(Gaussian noise multipliers, pure ε) of a stored ``rdp_events`` value; ValueError for anything the
    ledger does not write (the ledger reports it as a corrupt file)."""
    if not isinstance(text, str) or len(text) > 128 * MAX_BLOCKS:
        raise ValueError("not a JSON list the ledger writes")
    try:
        events = json.loads(text)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(events, list):
        raise ValueError("not a JSON list")
    gaussian: list[float] = []
    pure: list[float] = []
    for e in events:
        if isinstance(e, dict) and set(e) == {"kind", "noise_multiplier"} and e["kind"] == "gaussian" and not pure:
            gaussian.append(_positive(e["noise_multiplier"]))
        elif isinstance(e, dict) and set(e) == {"kind", "epsilon"} and e["kind"] == "pure":
            pure.append(_positive(e["epsilon"]))
        else:
            raise ValueError("an event the ledger does not write")
    try:
        accounting = ReleaseAccounting(tuple(gaussian), tuple(pure)) if events else None
    except ParameterError:
        raise ValueError("an event out of range") from None
    if events_json(accounting) != text:
        raise ValueError("not in the form the ledger writes")
    return tuple(gaussian), tuple(pure)


def _positive(value: object) -> float:
    if not isinstance(value, float) or not math.isfinite(value) or value <= 0:
        raise ValueError("not a finite positive number")
    return value


@lru_cache(maxsize=4096)
def zcdp_epsilon(rho: float, delta: float) -> float:
    """ε of ρ-zCDP at δ: dp_accounting's RdpAccountant of a ``ZCDpEvent(rho)`` (RDP ``α·ρ`` at every order,
    the same curve as composing ``GaussianDpEvent(z)`` events with Σ 1/(2z²) = ρ), ``get_epsilon(delta)``.
    0 for ρ = 0; ∞ for δ = 0."""
    if rho <= 0.0:
        return 0.0
    if delta <= 0.0:
        return math.inf
    from dp_accounting import dp_event, rdp  # lazy: only when a Gaussian window is composed

    accountant = rdp.RdpAccountant()
    accountant.compose(dp_event.ZCDpEvent(rho=float(rho)))
    return float(accountant.get_epsilon(float(delta)))


def _rdp_deltas(cap: PrivacyBudget) -> tuple[float, float]:
    """(δ at which Σρ is converted, δ bound of the approximate-DP parts) of an ``rdp`` window under ``cap``."""
    return cap.delta * RDP_DELTA_SHARE, cap.delta * (1.0 - RDP_DELTA_SHARE)


def composed(route: str, spent: Spend, cap: PrivacyBudget) -> tuple[float, float]:
    """The (ε, δ) a window has spent under ``route``: ``(Σε, Σδ)``, or ``(ε_ρ(Σρ, δ_c), δ_c + Σδ_bad)``."""
    if route == "basic":
        return spent.epsilon, spent.delta
    convert_at, _ = _rdp_deltas(cap)
    return zcdp_epsilon(spent.rho, convert_at), convert_at + spent.bad_delta


def fits(route: str, spent: Spend, cap: PrivacyBudget) -> bool:
    """True when ``spent`` (the window's charges with the new one) is within ``cap`` under ``route``."""
    def under(value: float, limit: float) -> bool:
        return value <= limit * (1.0 + TOLERANCE)

    if route == "basic":
        return under(spent.epsilon, cap.epsilon) and under(spent.delta, cap.delta)
    convert_at, bad = _rdp_deltas(cap)
    return cap.delta > 0 and under(spent.bad_delta, bad) and under(zcdp_epsilon(spent.rho, convert_at), cap.epsilon)


def left(route: str, spent: Spend, cap: PrivacyBudget) -> RemainingBudget:
    """What is left of ``cap`` under ``route``, each clipped at 0."""
    eps, delta = composed(route, spent, cap)
    return RemainingBudget(max(cap.epsilon - eps, 0.0), max(cap.delta - delta, 0.0))


def _copies(route: str, one: Spend, cap: PrivacyBudget) -> int:
    """How many charges equal to ``one`` fit ``cap`` under ``route`` (at most _COPIES_LIMIT)."""
    def n_fit(n: int) -> bool:
        return fits(route, Spend(n * one.epsilon, n * one.delta, n * one.rho, n * one.bad_delta, one.gaussian), cap)

    if not n_fit(1):
        return 0
    lo, hi = 1, 2
    while hi <= _COPIES_LIMIT and n_fit(hi):
        lo, hi = hi, hi * 2
    if hi > _COPIES_LIMIT:
        return _COPIES_LIMIT
    while hi - lo > 1:  # n_fit(lo) and not n_fit(hi): both routes' spend grows with n
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if n_fit(mid) else (lo, mid)
    return lo


def choose_route(first: Spend, cap: PrivacyBudget) -> str:
    """The route of a window whose first charge is ``first``: ``rdp`` when it has Gaussian blocks, the cap has
    δ > 0, and more charges like it fit under ``rdp`` than under ``basic``; else ``basic`` (ties: basic)."""
    if not first.gaussian or cap.delta <= 0:
        return "basic"
    return "rdp" if _copies("rdp", first, cap) > _copies("basic", first, cap) else "basic"
