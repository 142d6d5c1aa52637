"""ReleaseExplanation: how a release was computed — parameters, bounds, mechanism, sensitivity, ε/δ per stage,
suppression counts and DP-derived definitions (after PipelineDP's "explain computation" report).

Every value in it is a public parameter or a post-processed DP output (the suppression counts come from the
noisy sizes), so it may go to the advertiser with its report.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adtarget.reports._spec import ReleaseSpec

__all__ = ["ReleaseExplanation", "sensitivity"]


def sensitivity(spec: ReleaseSpec) -> dict[str, Any]:
    """L1/L2 sensitivity of the sizes and of the breakdown cells with respect to one person.

    A person counts in at most ``S = min(max_segments_per_person, n_segments)`` segments, and in each of them
    in its size and in at most ``k_d`` cells of every breakdown dimension ``d``. Each block has its own noise:
    sizes ``L1 = S``, cells ``L1 = S · Σ_d k_d``, ``L2 = sqrt(L1)`` (each touched count moves by exactly 1);
    ``l1`` and ``l2`` are those of the whole count vector.
    """
    s = spec.effective_segments_per_person
    cells = {d: spec.cells_per_person(d) for d in spec.breakdowns}
    k = sum(cells.values())
    l1 = s * (1 + k)
    return {"segments_per_person": s, "cells_per_person": cells, "l1": l1, "l2": math.sqrt(l1),
            "sizes": {"l1": s, "l2": math.sqrt(s)}, "breakdowns": {"l1": s * k, "l2": math.sqrt(s * k)},
            "formula": "sizes L1 = S; cells L1 = S × Σ cells per dimension; L2 = sqrt(L1)"}


def _num(x: float) -> float | str:
    return "inf" if math.isinf(x) else x


@dataclass(frozen=True)
class ReleaseExplanation:
    """What a release did and spent.

    Attributes
    ----------
    spec : str
        The readable ``ReleaseSpec``.
    query_key : str
        Ledger idempotency key (hash of the spec and the data snapshot).
    reused : bool
        True when an identical earlier query's stored report was returned (nothing new spent).
    stages : tuple of dict
        ``{"stage", "epsilon", "delta", ...}`` per DP stage; their sum is the charged total.
    total : dict
        The (ε, δ) charged to the ledger (basic composition of the stages). With ``"accounting":
        {"advertiser": route, "global": route}`` when a window it was charged to composes by Rényi DP
        (``"rdp"``, zCDP) rather than basic composition (``"basic"``; docs/privacy/budget-ledger.md).
    bounds, sensitivity, noise, partition_selection, suppression, budget_remaining : dict
    definitions : dict
        ``{"used": [...], "charged": [...]}``: the DP-derived definitions (DP k-means fits, proxy audits behind
        a screen) the segments depend on, and those this release charged to the advertiser (empty: none).
    """

    spec: str
    query_key: str
    reused: bool
    stages: tuple[Mapping[str, Any], ...]
    total: Mapping[str, Any]
    bounds: Mapping[str, Any] = field(default_factory=dict)
    sensitivity: Mapping[str, Any] = field(default_factory=dict)
    noise: Mapping[str, Any] = field(default_factory=dict)
    partition_selection: Mapping[str, Any] = field(default_factory=dict)
    suppression: Mapping[str, Any] = field(default_factory=dict)
    budget_remaining: Mapping[str, Any] = field(default_factory=dict)
    definitions: Mapping[str, Any] = field(default_factory=dict)

    @staticmethod
    def stages_of(spec: ReleaseSpec) -> tuple[dict[str, Any], ...]:
        """The DP stages of ``spec`` with their literal (ε, δ)."""
        s_eps, s_delta = spec.size_budget
        stages = [{"stage": "noisy sizes", "epsilon": _num(s_eps), "delta": s_delta, "mechanism": spec.mechanism}]
        if spec.breakdowns:
            b_eps, b_delta = spec.breakdown_budget
            stages.append({"stage": f"noisy breakdown cells ({', '.join(spec.breakdowns)})", "epsilon": _num(b_eps),
                           "delta": b_delta, "mechanism": spec.mechanism})
        if spec.needs_partition_selection:
            p_eps, p_delta = spec.partition_budget
            keys = " and ".join(spec.selected_breakdowns)
            stages.append({"stage": f"partition selection of non-public {keys} keys", "epsilon": _num(p_eps),
                           "delta": p_delta, "mechanism": "thresholded discrete Laplace"})
        return tuple(stages)

    @staticmethod
    def accounting_of(charge: Any) -> dict[str, Any]:
        """The ``total`` entry naming the ledger's accounting routes of ``charge``: ``{"accounting":
        {"advertiser": ..., "global": ...}}`` when either is ``"rdp"``, else nothing (basic composition)."""
        routes = {"advertiser": getattr(charge, "route", "basic"), "global": getattr(charge, "global_route", "basic")}
        return {"accounting": routes} if charge is not None and "rdp" in routes.values() else {}

    @classmethod
    def for_reused(cls, spec: ReleaseSpec, query_key: str) -> ReleaseExplanation:
        """The explanation of a repeated query: the stored report is returned, nothing new is spent."""
        return cls(str(spec), query_key, True, cls.stages_of(spec),
                   {"epsilon": _num(float(spec.epsilon)), "delta": float(spec.delta), "new_spend": False},
                   bounds=_bounds(spec), sensitivity=sensitivity(spec))

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return json.loads(json.dumps({
            "spec": self.spec, "query_key": self.query_key, "reused": self.reused,
            "stages": list(self.stages), "total": dict(self.total), "bounds": dict(self.bounds),
            "sensitivity": dict(self.sensitivity), "noise": dict(self.noise),
            "partition_selection": dict(self.partition_selection), "suppression": dict(self.suppression),
            "budget_remaining": dict(self.budget_remaining), "definitions": dict(self.definitions)},
            default=str))

    def __str__(self) -> str:
        lines = [self.spec]
        if self.reused:
            lines.append("identical earlier query: its stored report was returned, nothing new was spent")
        for st in self.stages:
            lines.append(f"  stage {st['stage']}: ε={st['epsilon']}, δ={st['delta']} ({st['mechanism']})")
        routes = self.total.get("accounting")
        if isinstance(routes, Mapping):
            how = {"rdp": "Rényi DP (zCDP)", "basic": "basic composition"}
            lines.append(f"  total charged: ε={self.total.get('epsilon')}, δ={self.total.get('delta')} (basic "
                         f"composition of the stages); the ledger composes the advertiser's window by "
                         f"{how.get(str(routes.get('advertiser')), '?')}, the global window by "
                         f"{how.get(str(routes.get('global')), '?')}")
        else:
            lines.append(f"  total charged: ε={self.total.get('epsilon')}, δ={self.total.get('delta')} "
                         f"(basic composition)")
        if self.sensitivity:
            s = self.sensitivity
            lines.append(f"  sensitivity: sizes L1={s['sizes']['l1']}, cells L1={s['breakdowns']['l1']} "
                         f"({s['formula']})")
        for block in ("sizes", "breakdowns"):
            noise = self.noise.get(block)
            if isinstance(noise, Mapping) and ("scale" in noise or "sigma" in noise):
                what = f"scale {noise['scale']:.4g}" if "scale" in noise else f"σ {noise['sigma']:.4g}"
                lines.append(f"  noise of the {block}: {noise['mechanism']}, {what}")
        if "size_threshold" in self.noise:
            lines.append(f"  thresholds: a size is shown at >= {self.noise['size_threshold']}, a cell at >= "
                         f"{self.noise.get('cell_threshold', '-')} (false_segment_rate "
                         f"{self.noise['false_segment_rate']:g}: a count below min_reported_size is shown with "
                         f"at most that probability)")
        if self.partition_selection:
            ps = self.partition_selection
            lines.append(f"  partition selection: threshold {ps.get('threshold')}, "
                         f"{ps.get('kept', '?')} non-public key(s) kept")
        if self.suppression:
            sp = self.suppression
            lines.append(f"  segments: {sp['requested']} requested, {sp['reported']} reported, "
                         f"{sp['below_threshold']} below min size; {sp['cells_left_out']} cell(s) below min size "
                         f"left out")
        if self.definitions:
            d = self.definitions
            lines.append(f"  DP-derived definitions: {len(d['used'])} used, {len(d['charged'])} charged to the "
                         f"advertiser by this release")
        if self.budget_remaining:
            b = self.budget_remaining
            lines.append(f"  budget remaining: advertiser {b['advertiser']}, global {b['global']}")
        return "\n".join(lines)


def _bounds(spec: ReleaseSpec) -> dict[str, Any]:
    return {"max_segments_per_person": spec.max_segments_per_person,
            "effective_segments_per_person": spec.effective_segments_per_person,
            "max_cells_per_person": {d: spec.cells_per_person(d) for d in spec.breakdowns},
            "min_reported_size": spec.min_reported_size, "public_regions": list(spec.public_regions),
            "priority": "splitmix64(pseudonym ^ stable64(key) ^ stable64(salt)); keep the k smallest"}
