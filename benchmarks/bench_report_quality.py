"""How truthful are advertiser reports? Noise-only segments, size and cell errors, missing segments, interval
coverage and minors' cells, over many seeded releases of one synthetic world, printed as a markdown table.

Usage: ``python benchmarks/bench_report_quality.py [--releases 100] [--coverage-releases N] [--seed 0]
[--audit-seeds 20] [--out /tmp/rq] [--spec-extra key=value ...] [--[no-]pipelinedp]
[--pipelinedp-epsilons 0.5,1,2] [--pipelinedp-gaussian-epsilons 1] [--pipelinedp-releases N]
[--pipelinedp-jobs 2]``; writes ``<out>/report_quality.json``.

The world (numpy, seeded by ``--seed``; built once, not timed per release), through public names only:

- 40 eligible groups of 500 adults; 18 of each person's 20 events fall on one safe IAB Content 2.2 node of
  its own, 2 (10 %) on nodes the default SensitivityProfile marks sensitive (health, religion, ethnic origin).
  The default taxonomy has only 27 safe tier-1 nodes, too few for 40 + the other groups, so each group's node
  is a safe **tier-2** node (a segment of its own, of exactly 500 persons); their tier-1 parents, shared by
  2-3 groups, are eligible segments of 1,000-1,500 persons beside them.
- excluded groups of 3,000 (opted out, under 13, deleted, terminated), each on a tier-1 node of its own, so
  those segments have no eligible member.
- a minors group of 3,000 persons aged 13-17 (eligible: the policy's minimum age is 13) whose events fall on the
  age-restricted segments: catalog nodes named after alcohol, tobacco, gambling, dating or weapons, plus the
  ``age_restricted`` roots of the bundled ``strict_minors`` profile.
- consent for everyone through a ConsentLedger in a temporary directory (``import_records``), a Pseudonymizer
  with a fixed key; ``ingest`` -> ``apply_gate`` -> ``build_profiles`` -> ``SegmentCatalog.default`` (every safe
  tier-1 and tier-2 node: 341 segments, what ``adtarget.run`` releases).

Releases: the spec of the default run (``RunSettings().release_spec``: ε = 1, δ = 1e-6, discrete Laplace, at
most 5 segments per person, min_reported_size 50, breakdowns age_band, region, service), with a fixed bounding
salt, and the same with ``breakdowns=()`` (sizes only, δ = 0, same total ε). Each spec's exact bounded counts
are made once (``count_cells``) and released ``--releases`` times by ``release_counts`` with random_state
``seed + i``, each into a new in-memory BudgetLedger: a new ledger holds no stored report, so every call is a
new, charged query with its own noise (checked: every draw is new spend, the sizes differ, and the spread of
the sizes across draws matches the noise scale of the explanation). The exact reference is the ε = ∞ release
of the same counts (``allow_infinite_epsilon=True``, min_reported_size 1), checked against ``CellCounts.sizes``;
one ``release`` from events is checked to give the very bytes of ``release_counts`` on the counted cells.

Figures: (1) released segments whose exact size is 0, or below min_reported_size ("noise-only"); (2) mean
relative error of the 40 500-person segments; (3) median and mean absolute error of those sizes, breakdowns vs
sizes only, and their ratio; (4) median absolute error of the reported breakdown cells per dimension against
the exact cells; (5) eligible segments missing from a report, and how many of the 40 the DP proxy audit
(``audit_proxies``, ε = 1, t = 0.1, ``--audit-seeds`` seeds) would block — the default run applies no screen;
(6) coverage of a per-size interval, if the report has one (detected generically; ``--coverage-releases``);
(7) age-restricted segments that report a "13-17" age-band cell (and, beside it, any segment that does);
(8) sizes only against PipelineDP's ``PRIVACY_ID_COUNT`` side by side (``--pipelinedp``, on by default when
``pipeline_dp`` is importable): median absolute error of the 40 group sizes at the same ε and L0. adtarget: the
sizes-only spec with only ε changed (discrete Laplace, all ε on the sizes, δ = 0), ``--releases`` seeded draws
per ε. PipelineDP ``LocalBackend``: public partitions = the 40 group segment ids (rule-based segments are
data-independent, so partition selection is not compared), ``max_partitions_contributed`` = the spec's
``max_segments_per_person`` S, ``max_contributions_per_partition = 1``, Laplace (and Gaussian at
``--pipelinedp-gaussian-epsilons``, with the default run's δ, a weaker guarantee than adtarget's δ = 0),
``--pipelinedp-releases`` runs per ε, each with PipelineDP's own unseeded secure noise (its API takes no seed).
PipelineDP is fed every unbounded (pseudonym, segment) membership pair of the catalog (adtarget's bounded pairs
are not public) and bounds L0 = S itself, after dropping non-public partitions; the script checks and records
that no person holds more than S segments, so both bound nothing here and count exactly the same persons
(the pairs' counts equal ``count_cells`` sizes). Only the 40 groups are public partitions because the
LocalBackend takes about 0.5-0.6 s per run (the cost is in its per-pair Python, whatever the partitions); the
runs are spread over ``--pipelinedp-jobs`` (2) forked processes.
Beside the measured medians: each mechanism's theoretical median (adtarget's errors are integers, so its median
is an integer and can sit above PipelineDP's continuous b·ln 2 at some ε), PipelineDP's median once its
floats are rounded to integers (as a published count is), and the ratio of means.
``--spec-extra key=value`` sets a ReleaseSpec field if the installed ReleaseSpec has it (``dataclasses.fields``)
and is otherwise ignored with a note. The spec is the default run's; only the bounding salt is fixed (the run
derives it from the spec's fingerprint), which changes which persons are kept, not the noise.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.util
import inspect
import json
import math
import re
import statistics
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from _peers import segment_pairs  # the benchmarks directory is on the path when run as a script

import adtarget
from adtarget import (
    BudgetLedger,
    ConsentLedger,
    EligibilityPolicy,
    InMemoryAccountant,
    PrivacyLeakWarning,
    Pseudonymizer,
    ReleaseSpec,
    RunSettings,
    SafeTaxonomy,
    SegmentCatalog,
    SensitivityProfile,
    ServiceRegistry,
)
from adtarget.reports import audit_proxies, count_cells, release_counts

KEY = bytes(range(32))
END = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
END_YEAR = 2026
DAY = 86_400
CREATED_AT = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)
ADVERTISER = "report-quality"
SALT = "bench-report-quality"
N_GROUPS, GROUP_SIZE, OTHER_SIZE = 40, 500, 3_000
EVENTS_PER_PERSON, SENSITIVE_PER_PERSON = 20, 2
REGIONS = ("US-CA", "US-NY", "US-TX", "DE-BE", "FR-IDF", "GB-LND", "JP-13", "BR-SP")
#: excluded groups and the consent fields that exclude them (birth years are of adults unless said)
EXCLUDED = {"opted_out": {"ads_personalization": "opt_out"}, "under_13": {}, "deleted": {"deleted": True},
            "terminated": {"terminated": True}}
AGE_RESTRICTED_WORDS = re.compile(r"(?<!non-)\b(alcohol\w*|tobacco|gambling|dating|weapons?)\b", re.IGNORECASE)
MINOR_BAND = "13-17"


# --- the world -----------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """Which taxonomy nodes each kind of person has its events on (node indices)."""

    group_nodes: tuple[int, ...]
    excluded_nodes: dict[str, int]
    restricted_nodes: dict[int, str]  # node -> why it counts as age-restricted
    sensitive_nodes: np.ndarray


@dataclasses.dataclass(frozen=True)
class World:
    """The gated world and the segment ids each measurement looks at."""

    eligible: Any
    assignments: Any
    segment_ids: tuple[str, ...]
    group_segments: tuple[str, ...]
    excluded_segments: tuple[str, ...]
    restricted_segments: dict[str, str]
    description: dict[str, Any]


def age_restricted_nodes(safe: Any) -> dict[int, str]:
    """Catalog nodes (safe, tier <= 2) named after age-restricted products, or age_restricted in strict_minors."""
    tax = safe.taxonomy
    catalog = np.asarray(safe.safe_mask) & (np.asarray(tax.tier) <= 2)
    found = {int(i): "name" for i in np.flatnonzero(catalog) if AGE_RESTRICTED_WORDS.search(str(tax.names[i]))}
    roots = SensitivityProfile.named("strict_minors").roots.get(tax.name, {}).get("age_restricted", ())
    for node in np.asarray(tax.index_of(np.asarray(roots, dtype=str))):
        if node >= 0 and catalog[node]:
            found[int(node)] = "name+strict_minors" if int(node) in found else "strict_minors"
    return dict(sorted(found.items()))


def world_layout(safe: Any) -> Layout:
    """Restricted nodes first (their parents are left to the minors), then one tier-1 node per excluded group,
    then the 40 group nodes: safe tier-2 children of the remaining tier-1 nodes, taken round-robin."""
    tax = safe.taxonomy
    safe_mask, tier, parent = np.asarray(safe.safe_mask), np.asarray(tax.tier), np.asarray(tax.parent)
    restricted = age_restricted_nodes(safe)
    taken = {int(parent[i]) for i in restricted}
    free = [int(i) for i in np.flatnonzero(safe_mask & (tier == 1)) if int(i) not in taken]
    excluded = dict(zip(EXCLUDED, free[: len(EXCLUDED)]))
    children = [[int(c) for c in np.flatnonzero(safe_mask & (parent == p) & (tier == 2))]
                for p in free[len(EXCLUDED):]]
    groups = [c for row in _round_robin(children) for c in row][:N_GROUPS]
    if len(groups) < N_GROUPS:
        raise SystemExit(f"the taxonomy offers {len(groups)} free tier-2 nodes, {N_GROUPS} are needed")
    return Layout(tuple(groups), excluded, restricted, np.flatnonzero(~safe_mask))


def _round_robin(rows: list[list[int]]) -> Iterator[list[int]]:
    for j in range(max(map(len, rows), default=0)):
        yield [row[j] for row in rows if j < len(row)]


def person_table(layout: Layout, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One row per person: id, main node, birth year, kind (group index, excluded name or "minor")."""
    parts: list[tuple[str, np.ndarray, tuple[int, int]]] = []
    adult = (END_YEAR - 80, END_YEAR - 20)  # ages 19..79 at the window's end (age = end year - birth year - 1)
    for g, node in enumerate(layout.group_nodes):
        parts.append((f"group-{g}", np.full(GROUP_SIZE, node), adult))
    for name, node in layout.excluded_nodes.items():
        years = (END_YEAR - 12, END_YEAR - 6) if name == "under_13" else adult
        parts.append((name, np.full(OTHER_SIZE, node), years))
    restricted = np.asarray(list(layout.restricted_nodes))
    parts.append(("minor", restricted[rng.integers(0, restricted.size, OTHER_SIZE)], (END_YEAR - 18, END_YEAR - 14)))
    kinds = np.concatenate([np.full(nodes.size, kind, dtype=object) for kind, nodes, _ in parts])
    years = np.concatenate([rng.integers(lo, hi + 1, nodes.size) for _, nodes, (lo, hi) in parts])
    return {"person_id": np.arange(1, kinds.size + 1, dtype=np.int64), "node": np.concatenate([p[1] for p in parts]),
            "birth_year": years.astype(np.int64), "kind": kinds,
            "region": np.asarray(REGIONS, dtype=object)[rng.integers(0, len(REGIONS), kinds.size)]}


def event_columns(persons: dict[str, np.ndarray], layout: Layout, safe: Any,
                  rng: np.random.Generator) -> dict[str, np.ndarray]:
    """20 events per person: 18 on the person's node, 2 on random sensitive nodes; home region, random
    ads-permitted service, a timestamp in the 90 days before the window's end."""
    n = persons["person_id"].size
    row = np.repeat(np.arange(n), EVENTS_PER_PERSON)
    node = persons["node"][row].copy()
    sensitive = np.tile(np.arange(EVENTS_PER_PERSON) >= EVENTS_PER_PERSON - SENSITIVE_PER_PERSON, n)
    node[sensitive] = rng.choice(layout.sensitive_nodes, int(sensitive.sum()))
    services = np.asarray([s.name for s in ServiceRegistry.synthetic().services if s.ads_permitted], dtype=object)
    return {"person_id": persons["person_id"][row],
            "service": services[rng.integers(0, services.size, row.size)],
            "ts": (END - rng.integers(DAY, 90 * DAY, row.size)).astype(np.int64),
            "category": safe.taxonomy.ids[node].astype(object),
            "region": persons["region"][row]}


def consent_records(persons: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The consent contract's columns: adults opted in, the excluded groups as their names say."""
    n, kind = persons["person_id"].size, persons["kind"]

    def flag(name: str, default: Any) -> np.ndarray:
        out = np.full(n, default, dtype=object)
        for group, fields in EXCLUDED.items():
            if name in fields:
                out[kind == group] = fields[name]
        return out

    return {"person_id": persons["person_id"], "birth_year": persons["birth_year"],
            "ads_personalization": flag("ads_personalization", "opt_in"), "cross_service": np.ones(n, bool),
            "policy_version": np.full(n, "2024-01-01", dtype=object),
            "updated_at": np.full(n, END - 100 * DAY, dtype=np.int64),
            "deleted": flag("deleted", False).astype(bool), "terminated": flag("terminated", False).astype(bool),
            "location_deleted": np.zeros(n, bool), "jurisdiction": np.full(n, "US", dtype=object)}


def consent_snapshot(records: dict[str, np.ndarray], pseudonymizer: Pseudonymizer) -> Any:
    """The current snapshot of a ConsentLedger (temporary directory) that imported ``records``."""
    with tempfile.TemporaryDirectory(prefix="rq-consent-") as directory:
        ledger = ConsentLedger(Path(directory) / "consent.sqlite", pseudonymizer)
        try:
            ledger.import_records(records, now=END)
            return ledger.snapshot()
        finally:
            ledger.close()


def build_world(seed: int) -> World:
    """Events and consent -> ingest -> gate -> profiles -> the default catalog's assignments."""
    rng = np.random.default_rng(seed)
    safe = SafeTaxonomy.default()
    layout = world_layout(safe)
    persons = person_table(layout, rng)
    events = event_columns(persons, layout, safe, rng)
    pseudonymizer = Pseudonymizer(KEY)
    snapshot = consent_snapshot(consent_records(persons), pseudonymizer)
    batch = adtarget.ingest(events, pseudonymizer=pseudonymizer, now=END).batch
    eligible = adtarget.apply_gate(batch, snapshot, safe, EligibilityPolicy(), window_end=END,
                                   snapshot_id=f"report-quality-{seed}")
    assignments = SegmentCatalog.default(safe).assign(adtarget.build_profiles(eligible))
    tax = safe.taxonomy

    def sid(node: int) -> str:
        return str(tax.segment_id(node))

    description = {
        "persons": int(persons["person_id"].size), "events": int(events["person_id"].size),
        "eligible_persons": int(eligible.n_persons), "segments": len(assignments.segments),
        "groups": {sid(n): str(tax.names[n]) for n in layout.group_nodes},
        "excluded": {k: f"{sid(n)} {tax.names[n]}" for k, n in layout.excluded_nodes.items()},
        "age_restricted": {sid(n): f"{tax.names[n]} ({why})" for n, why in layout.restricted_nodes.items()},
        "sensitive_nodes": int(layout.sensitive_nodes.size)}
    return World(eligible, assignments, tuple(s.segment_id for s in assignments.segments),
                 tuple(sid(n) for n in layout.group_nodes), tuple(sid(n) for n in layout.excluded_nodes.values()),
                 {sid(n): str(tax.names[n]) for n in layout.restricted_nodes}, description)


# --- specs and releases ----------------------------------------------------------------------------------------
def spec_extras(pairs: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """``key=value`` options (values parsed as JSON, else kept as text) for the ReleaseSpec fields that exist."""
    known = {f.name for f in dataclasses.fields(ReleaseSpec)}
    extras, notes = {}, []
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"--spec-extra takes key=value, got {pair!r}")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        if key in known:
            extras[key] = value
        else:
            notes.append(f"--spec-extra {key}={text} ignored: ReleaseSpec has no field {key!r}")
    return extras, notes


def release_specs(segment_ids: tuple[str, ...], extras: dict[str, Any]) -> dict[str, ReleaseSpec]:
    """The default run's spec (fixed salt) with its breakdowns, and the same with sizes only (δ = 0)."""
    base = dataclasses.replace(RunSettings(advertiser=ADVERTISER).release_spec(segment_ids), salt=SALT)
    return {"breakdowns": dataclasses.replace(base, **extras),
            "sizes_only": dataclasses.replace(base, breakdowns=(), delta=0.0, **extras)}


def draw(cells: Any, spec: ReleaseSpec, seed: int) -> Any:
    """One release of ``cells`` into a new ledger: a new, charged query (nothing stored to reuse)."""
    ledger = BudgetLedger(":memory:", advertisers=[ADVERTISER])
    return release_counts(cells, spec, ledger=ledger, random_state=seed, created_at=CREATED_AT)


def exact_counts(cells: Any, spec: ReleaseSpec) -> tuple[dict[str, int], dict[tuple[str, str, str], int]]:
    """Sizes and cells of the ε = ∞ release of the same counts (min_reported_size 1: every non-zero count)."""
    exact_spec = dataclasses.replace(spec, epsilon=math.inf, min_reported_size=1)
    result = release_counts(cells, exact_spec, ledger=BudgetLedger(":memory:", advertisers=[ADVERTISER]),
                            allow_infinite_epsilon=True, created_at=CREATED_AT)
    sizes = {sid: 0 for sid in spec.segment_ids}
    found: dict[tuple[str, str, str], int] = {}
    for seg in result.report.to_dict()["segments"]:
        sizes[seg["segment_id"]] = int(seg["size"])
        for dim, values in seg["breakdowns"].items():
            found.update({(seg["segment_id"], dim, v): int(c) for v, c in values.items()})
    return sizes, found


def checks(world: World, spec: ReleaseSpec, cells: Any, sizes: dict[str, int]) -> dict[str, Any]:
    """The measurement's own checks: the ε = ∞ report equals the counts, the fast path equals ``release``, and
    the world is as intended (40 segments of exactly 500, no eligible member in an excluded segment)."""
    from_cells = dict(zip(cells.segment_ids, (int(x) for x in cells.sizes)))
    ledger = BudgetLedger(":memory:", advertisers=[ADVERTISER])
    full = adtarget.release(world.eligible, world.assignments, spec, ledger=ledger, random_state=12345,
                            created_at=CREATED_AT)
    fast = draw(cells, spec, 12345)
    return {"exact_equals_cell_counts": from_cells == sizes,
            "release_counts_equals_release": fast.report.to_json() == full.report.to_json(),
            "group_segments_all_500": all(sizes[s] == GROUP_SIZE for s in world.group_segments),
            "excluded_segments_empty": all(sizes[s] == 0 for s in world.excluded_segments)}


# --- scoring one report --------------------------------------------------------------------------------------
def interval_of(segment: dict[str, Any]) -> tuple[float, float] | None:
    """A per-size interval, however a future schema names it (``size_interval``, ``interval``, ``ci95``...):
    a key naming an interval whose value is ``{lower, upper}`` (or lo/hi, low/high) or a pair."""
    for key, value in segment.items():
        if not re.search(r"interval|(^|_)ci", key):
            continue
        if isinstance(value, dict):
            for lo, hi in (("lower", "upper"), ("lo", "hi"), ("low", "high")):
                if lo in value and hi in value:
                    return float(value[lo]), float(value[hi])
        if isinstance(value, list | tuple) and len(value) == 2:
            return float(value[0]), float(value[1])
    return None


def score(doc: dict[str, Any], world: World, spec: ReleaseSpec, sizes: dict[str, int],
          cells: dict[tuple[str, str, str], int]) -> dict[str, Any]:
    """Figures of one report against the exact counts."""
    segs = {s["segment_id"]: s for s in doc["segments"]}
    threshold = spec.min_reported_size
    eligible = [s for s, n in sizes.items() if n >= threshold]
    groups = set(world.group_segments)
    cell_err: dict[str, list[int]] = {}
    group_cell_err: dict[str, list[int]] = {}
    left_out = {"cells": 0, "of": 0}
    for sid, seg in segs.items():
        for dim, values in seg["breakdowns"].items():
            errors = [abs(int(c) - cells.get((sid, dim, v), 0)) for v, c in values.items()]
            cell_err.setdefault(dim, []).extend(errors)
            if sid in groups:
                group_cell_err.setdefault(dim, []).extend(errors)
    for (sid, dim, value), n in cells.items():
        if sid in groups and sid in segs and n >= threshold:
            left_out["of"] += 1
            left_out["cells"] += value not in segs[sid]["breakdowns"].get(dim, {})
    minor_cell = [s for s, seg in segs.items() if MINOR_BAND in seg["breakdowns"].get("age_band", {})]
    return {
        "released": len(segs),
        "noise_only_zero": sum(sizes[s] == 0 for s in segs),
        "noise_only_below_threshold": sum(sizes[s] < threshold for s in segs),
        "group_abs_errors": [abs(int(segs[s]["size"]) - sizes[s]) for s in world.group_segments if s in segs],
        "group_missing": sum(s not in segs for s in world.group_segments),
        "eligible_missing": sum(s not in segs for s in eligible),
        "cell_errors": cell_err, "group_cell_errors": group_cell_err, "group_cells_left_out": left_out,
        "restricted_with_minor_cell": [s for s in minor_cell if s in world.restricted_segments],
        "any_with_minor_cell": minor_cell,
    }


# --- aggregating over releases -----------------------------------------------------------------------------------
def spread(values: list[int]) -> dict[str, Any]:
    """Mean, min, max and total of a per-release count."""
    return {"mean": round(statistics.fmean(values), 3), "min": min(values), "max": max(values),
            "total": int(sum(values))}


def measure_spec(world: World, spec: ReleaseSpec, seeds: range) -> tuple[dict[str, Any], Any, dict[str, int]]:
    """Every figure of ``spec`` over the seeded releases; also its CellCounts and exact sizes (for coverage)."""
    started = time.perf_counter()
    cells = count_cells(world.eligible, world.assignments, spec)
    count_s = time.perf_counter() - started
    sizes, exact_cells = exact_counts(cells, spec)
    scores, reports, noise, new_spend = [], set(), {}, True
    started = time.perf_counter()
    for seed in seeds:
        result = draw(cells, spec, seed)
        new_spend &= (not result.explanation.reused) and result.explanation.total.get("new_spend") is True
        doc = result.report.to_dict()
        reports.add(tuple((seg["segment_id"], seg["size"]) for seg in doc["segments"]))
        noise = dict(result.explanation.noise)
        scores.append(score(doc, world, spec, sizes, exact_cells))
    release_s = (time.perf_counter() - started) / len(seeds)
    out = summarise(scores, world, spec, sizes, exact_cells)
    out["independence"] = {"draws": len(seeds), "distinct_size_vectors": len(reports), "every_draw_new_spend": new_spend,
                           **noise_spread(scores, noise)}
    out["checks"] = checks(world, spec, cells, sizes)
    out["seconds"] = {"count_cells": round(count_s, 4), "release_counts_mean": round(release_s, 4)}
    return out, cells, sizes


def summarise(scores: list[dict[str, Any]], world: World, spec: ReleaseSpec, sizes: dict[str, int],
              exact_cells: dict[tuple[str, str, str], int]) -> dict[str, Any]:
    """The per-release scores pooled over the releases (errors pooled, counts as spreads)."""
    group_abs = [e for s in scores for e in s["group_abs_errors"]]
    dims = sorted({d for s in scores for d in s["cell_errors"]})
    left = sum(s["group_cells_left_out"]["cells"] for s in scores)
    left_of = sum(s["group_cells_left_out"]["of"] for s in scores)
    minors = [len(s["restricted_with_minor_cell"]) for s in scores]
    any_minor = [len(s["any_with_minor_cell"]) for s in scores]
    return {
        "spec": spec.as_dict(),
        "exact": {"segments_with_members": sum(n > 0 for n in sizes.values()),
                  "segments_at_or_above_threshold": sum(n >= spec.min_reported_size for n in sizes.values()),
                  "segments_empty": sum(n == 0 for n in sizes.values()),
                  "minor_cells_on_restricted": {s: exact_cells.get((s, "age_band", MINOR_BAND), 0)
                                                for s in world.restricted_segments}},
        "released": spread([s["released"] for s in scores]),
        "noise_only_zero": spread([s["noise_only_zero"] for s in scores]),
        "noise_only_below_threshold": spread([s["noise_only_below_threshold"] for s in scores]),
        "group_mean_relative_error": round(statistics.fmean(group_abs) / GROUP_SIZE, 5) if group_abs else None,
        "group_median_abs_error": statistics.median(group_abs) if group_abs else None,
        "group_mean_abs_error": round(statistics.fmean(group_abs), 3) if group_abs else None,
        "group_missing": spread([s["group_missing"] for s in scores]),
        "eligible_missing": spread([s["eligible_missing"] for s in scores]),
        "cell_median_abs_error": {d: _median(s["cell_errors"].get(d, []) for s in scores) for d in dims},
        "group_cell_median_abs_error": {d: _median(s["group_cell_errors"].get(d, []) for s in scores) for d in dims},
        "cells_reported": {d: sum(len(s["cell_errors"].get(d, [])) for s in scores) for d in dims},
        "group_cells_left_out": {"cells": left, "of": left_of, "share": round(left / left_of, 4) if left_of else None},
        "restricted_with_minor_cell": {**spread(minors), "releases_with_any": sum(m > 0 for m in minors),
                                       "segments": len(world.restricted_segments)},
        "any_segment_with_minor_cell": {**spread(any_minor), "segments": sorted(
            {sid for s in scores for sid in s["any_with_minor_cell"]})},
    }


def _median(chunks: Iterable[list[int]]) -> float | None:
    values = [v for chunk in chunks for v in chunk]
    return float(statistics.median(values)) if values else None


def noise_spread(scores: list[dict[str, Any]], noise: dict[str, Any]) -> dict[str, Any]:
    """Root mean square of the group sizes' errors across draws, beside the explanation's noise scale (a
    repeated draw would show a spread of 0)."""
    errors = [e for s in scores for e in s["group_abs_errors"]]
    out: dict[str, Any] = {"group_size_rms_error": round(math.sqrt(statistics.fmean(e * e for e in errors)), 3)
                           if errors else None, "explanation_noise": noise}
    sizes = noise.get("sizes", noise)  # the sizes' own noise when a future release splits the budget
    sizes = sizes if isinstance(sizes, dict) else {}
    scale = sizes.get("scale")
    if sizes.get("mechanism") == "discrete_laplace" and isinstance(scale, int | float) and scale > 0:
        alpha = math.exp(-1.0 / scale)
        out["expected_rms_error"] = round(math.sqrt(2 * alpha) / (1 - alpha), 3)
    return out


# --- the separate measurements ---------------------------------------------------------------------------------
def coverage(world: World, spec: ReleaseSpec, cells: Any, sizes: dict[str, int], seeds: range) -> dict[str, Any]:
    """Share of released segments whose interval covers the exact size (skipped when reports carry none)."""
    first = draw(cells, spec, seeds[0]).report.to_dict()
    if not any(interval_of(s) for s in first["segments"]):
        return {"skipped": f"{first['schema']} reports carry no per-size interval"}
    hits = {"all": [0, 0], "groups": [0, 0], "noise_only": [0, 0]}
    groups = set(world.group_segments)
    for seed in seeds:
        for seg in draw(cells, spec, seed).report.to_dict()["segments"]:
            interval = interval_of(seg)
            if interval is None:
                continue
            covered = interval[0] <= sizes[seg["segment_id"]] <= interval[1]
            scopes = ["all"] + (["groups"] if seg["segment_id"] in groups else []) + \
                (["noise_only"] if sizes[seg["segment_id"]] < spec.min_reported_size else [])
            for scope in scopes:
                hits[scope][0] += covered
                hits[scope][1] += 1
    return {"releases": len(seeds), **{k: {"covered": c, "of": n, "share": round(c / n, 4) if n else None}
                                       for k, (c, n) in hits.items()}}


def proxy_audit(world: World, sizes: dict[str, int], threshold: int, seeds: range) -> dict[str, Any]:
    """How many of the 40 group segments the DP proxy audit (ε = 1, t = 0.1) blocks, per seed; and whether the
    default run applies a screen at all (``adtarget.run``'s ``screen`` defaults to None: no audit)."""
    scopes = {"group_segments": set(world.group_segments),
              "eligible_segments": {s for s, n in sizes.items() if n >= threshold},
              "empty_segments": {s for s, n in sizes.items() if n == 0}}
    blocked: dict[str, list[int]] = {name: [] for name in scopes}
    worst = []
    for seed in seeds:
        audit = audit_proxies(world.eligible, world.assignments, epsilon=1.0, ledger=InMemoryAccountant(),
                              random_state=seed)
        for name, ids in scopes.items():
            blocked[name].append(len(ids & set(audit.blocked)))
        worst.append(max(audit.distance[s] for s in world.group_segments))
    default_screen = inspect.signature(adtarget.run).parameters["screen"].default
    return {"seeds": len(seeds), "t": 0.1, "epsilon": 1.0, "default_run_screen": repr(default_screen),
            **{f"{name}_blocked": {**spread(v), "of": len(scopes[name])} for name, v in blocked.items()},
            "max_group_distance": round(max(worst), 4)}


# --- sizes only against PipelineDP -----------------------------------------------------------------------------
def pipelinedp_privacy_id_count(pairs: list[tuple[int, str]], partitions: list[str], *, epsilon: float,
                                delta: float, max_partitions: int, gaussian: bool) -> dict[str, float]:
    """PipelineDP's PRIVACY_ID_COUNT per public partition (LocalBackend, L0 = ``max_partitions``, Linf = 1)."""
    import pipeline_dp

    accountant = pipeline_dp.NaiveBudgetAccountant(total_epsilon=epsilon, total_delta=delta)
    engine = pipeline_dp.DPEngine(accountant, pipeline_dp.LocalBackend())
    params = pipeline_dp.AggregateParams(
        metrics=[pipeline_dp.Metrics.PRIVACY_ID_COUNT],
        noise_kind=pipeline_dp.NoiseKind.GAUSSIAN if gaussian else pipeline_dp.NoiseKind.LAPLACE,
        max_partitions_contributed=max_partitions, max_contributions_per_partition=1)
    extractors = pipeline_dp.DataExtractors(privacy_id_extractor=lambda row: row[0],
                                            partition_extractor=lambda row: row[1],
                                            value_extractor=lambda row: 0)
    result = engine.aggregate(pairs, params, extractors, public_partitions=partitions)
    accountant.compute_budgets()
    return {key: float(metrics.privacy_id_count) for key, metrics in result}


_PDP_PAIRS: list[tuple[int, str]] = []


def _pdp_init(pairs: list[tuple[int, str]]) -> None:
    global _PDP_PAIRS
    _PDP_PAIRS = pairs


def _pdp_task(task: tuple[tuple[str, ...], float, float, int, bool]) -> dict[str, float]:
    partitions, epsilon, delta, max_partitions, gaussian = task
    return pipelinedp_privacy_id_count(_PDP_PAIRS, list(partitions), epsilon=epsilon, delta=delta,
                                       max_partitions=max_partitions, gaussian=gaussian)


def pipelinedp_runs(pairs: list[tuple[int, str]], tasks: list[Any], jobs: int) -> list[dict[str, float]]:
    """The PipelineDP runs of ``tasks``, in ``jobs`` forked worker processes (each inherits ``pairs``)."""
    if jobs <= 1 or len(tasks) < 2:
        _pdp_init(pairs)
        return [_pdp_task(t) for t in tasks]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork"), initializer=_pdp_init,
                             initargs=(pairs,)) as pool:
        return list(pool.map(_pdp_task, tasks, chunksize=max(1, len(tasks) // (4 * jobs))))


def discrete_laplace_median_abs(scale: float) -> int:
    """Median of |X|, X discrete Laplace with P(k) ∝ exp(-|k|/scale): the least m with P(|X| > m) <= 1/2, where
    P(|X| >= k) = 2 α^k / (1 + α) for k >= 1, α = exp(-1/scale). An integer: the medians of integer errors are
    integers, so at some ε they sit above the continuous b·ln 2 although every mean is below b."""
    alpha = math.exp(-1.0 / scale)
    m = 0
    while 2 * alpha ** (m + 1) / (1 + alpha) > 0.5:
        m += 1
    return m


def _div(x: float | None, y: float | None) -> float | None:
    return round(x / y, 3) if x is not None and y else None


def _errors(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"median_abs_error": None, "mean_abs_error": None, "n": 0}
    return {"median_abs_error": round(float(statistics.median(values)), 3),
            "mean_abs_error": round(statistics.fmean(values), 3), "n": len(values)}


def versus_pipelinedp(world: World, spec: ReleaseSpec, gaussian_delta: float, epsilons: list[float],
                      gaussian_epsilons: list[float], seeds: range, runs: int, jobs: int) -> dict[str, Any]:
    """Median |error| of the 40 group sizes: adtarget sizes only vs PipelineDP PRIVACY_ID_COUNT, per ε."""
    import pipeline_dp

    started = time.perf_counter()
    s = spec.max_segments_per_person
    pairs = segment_pairs(world.assignments)  # unbounded, as benchmarks/_peers.py feeds PipelineDP's COUNT
    per_person: dict[int, int] = {}
    per_segment: dict[str, int] = {}
    for person, sid in pairs:
        per_person[person] = per_person.get(person, 0) + 1
        per_segment[sid] = per_segment.get(sid, 0) + 1
    groups = list(world.group_segments)
    bounded = count_cells(world.eligible, world.assignments, spec)
    exact = dict(zip(bounded.segment_ids, (int(x) for x in bounded.sizes)))
    bounding = {
        "pipelinedp_input": "every unbounded (pseudonym, segment) membership pair; PipelineDP drops non-public "
                            "partitions, then bounds L0 = S itself",
        "pairs": len(pairs), "persons": len(per_person), "S": s,
        "max_segments_of_a_person": max(per_person.values(), default=0),
        "bounding_is_a_no_op": max(per_person.values(), default=0) <= s,
        "pair_counts_equal_bounded_sizes": all(per_segment.get(k, 0) == v for k, v in exact.items()),
        "public_partitions": len(groups)}
    rows = []
    for eps in sorted(set(epsilons) | set(gaussian_epsilons)):
        eps_spec = dataclasses.replace(spec, epsilon=eps)
        cells = count_cells(world.eligible, world.assignments, eps_spec)
        ours: list[float] = []
        missing = 0
        for seed in seeds:
            segs = {g["segment_id"]: int(g["size"]) for g in draw(cells, eps_spec, seed).report.to_dict()["segments"]}
            ours.extend(abs(segs[g] - exact[g]) for g in groups if g in segs)
            missing += sum(g not in segs for g in groups)
        mine = {**_errors(ours), "groups_missing": missing, "mechanism": spec.mechanism, "delta": spec.delta}
        if spec.mechanism == "discrete_laplace":
            mine["expected_median_abs_error"] = discrete_laplace_median_abs(s / eps)
        for kind in [k for k, on in (("laplace", eps in epsilons), ("gaussian", eps in gaussian_epsilons)) if on]:
            delta = gaussian_delta if kind == "gaussian" else 0.0
            raw: list[float] = []
            rounded: list[float] = []
            task = (tuple(groups), eps, delta, s, kind == "gaussian")
            for noisy in pipelinedp_runs(pairs, [task] * runs, jobs):
                raw.extend(abs(noisy[g] - exact[g]) for g in groups)
                rounded.extend(abs(round(noisy[g]) - exact[g]) for g in groups)
            theirs = {**_errors(raw), "noise": kind, "delta": delta,
                      "median_abs_error_rounded": _errors(rounded)["median_abs_error"]}
            if kind == "laplace":  # |Laplace(b)| has median b ln 2, b = L0 * Linf / ε
                theirs["expected_median_abs_error"] = round(s / eps * math.log(2), 3)
            ratio_ = _div(mine["median_abs_error"], theirs["median_abs_error"])
            ratio_rounded = _div(mine["median_abs_error"], theirs["median_abs_error_rounded"])
            rows.append({"epsilon": eps, "adtarget": mine, "pipelinedp": theirs, "ratio_median": ratio_,
                         "ratio_median_to_rounded": ratio_rounded,
                         "ratio_mean": _div(mine["mean_abs_error"], theirs["mean_abs_error"]),
                         "adtarget_at_most_pipelinedp": ratio_ is not None and ratio_ <= 1.0,
                         "adtarget_at_most_pipelinedp_rounded": ratio_rounded is not None and ratio_rounded <= 1.0})
    return {"pipelinedp_version": getattr(pipeline_dp, "__version__", "?"), "adtarget_releases": len(seeds),
            "pipelinedp_runs": runs, "pipelinedp_jobs": jobs, "pipelinedp_seeded": False, "metric": "PRIVACY_ID_COUNT",
            "max_partitions_contributed": s, "max_contributions_per_partition": 1, "bounding": bounding,
            "rows": rows, "seconds": round(time.perf_counter() - started, 2)}


def pipelinedp_markdown(p: dict[str, Any]) -> list[str]:
    """The comparison as a markdown table (empty when it was not run)."""
    if "skipped" in p:
        return ["", f"8. sizes only vs PipelineDP: not measured ({p['skipped']})"]
    b = p["bounding"]
    lines = ["", f"8. Sizes only vs PipelineDP {p['pipelinedp_version']} PRIVACY_ID_COUNT: the 40 group sizes "
             f"(exact 500), L0 = {p['max_partitions_contributed']}, Linf = 1; adtarget {p['adtarget_releases']} "
             f"seeded releases, PipelineDP {p['pipelinedp_runs']} runs (unseeded secure noise); bounding: max "
             f"{b['max_segments_of_a_person']} segments per person (no-op: {b['bounding_is_a_no_op']}), pair "
             f"counts = bounded sizes: {b['pair_counts_equal_bounded_sizes']}", "",
             "| ε | PipelineDP noise (δ) | adtarget median / mean abs err (theory median) | PipelineDP median / "
             "mean abs err (theory median b·ln 2) | PipelineDP rounded to integers: median | ratio of medians "
             "(to rounded) | ratio of means |", "|---|---|---|---|---|---|---|"]
    for r in p["rows"]:
        a, t = r["adtarget"], r["pipelinedp"]
        ours = f" ({a['expected_median_abs_error']})" if "expected_median_abs_error" in a else ""
        theirs = f" ({t['expected_median_abs_error']:g})" if "expected_median_abs_error" in t else ""
        lines.append(f"| {r['epsilon']:g} | {t['noise']} ({t['delta']:g}) | {a['median_abs_error']:g} / "
                     f"{a['mean_abs_error']:g}{ours} | {t['median_abs_error']:g} / {t['mean_abs_error']:g}{theirs} | "
                     f"{t['median_abs_error_rounded']:g} | {r['ratio_median']}× ({r['ratio_median_to_rounded']}×) "
                     f"| {r['ratio_mean']}× |")
    return lines


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


# --- output -------------------------------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    """The figures as a markdown table: one column per spec."""
    b, s = results["specs"]["breakdowns"], results["specs"]["sizes_only"]
    n = results["settings"]["releases"]

    def per(x: dict[str, Any]) -> str:
        return f"{x['mean']:g} [{x['min']}-{x['max']}], total {x['total']}"

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.2f} %"

    def cov(c: dict[str, Any]) -> str:
        if "skipped" in c:
            return "not measured: " + c["skipped"]
        return (f"{pct(c['all']['share'])} of {c['all']['of']} (groups {pct(c['groups']['share'])}, "
                f"noise-only {pct(c['noise_only']['share'])})")

    def num(x: float | None) -> str:
        return "none reported" if x is None else f"{x:g}"

    def share(m: dict[str, Any]) -> str:
        return pct(m["noise_only_zero"]["total"] / m["released"]["total"])

    def blocked(a: dict[str, Any]) -> str:
        if "skipped" in a:
            return "not measured: " + a["skipped"]
        return (f"{a['seeds']} audits at ε={a['epsilon']:g}, t={a['t']:g}: of the 40 groups "
                f"{per(a['group_segments_blocked'])}; of {a['eligible_segments_blocked']['of']} eligible "
                f"{per(a['eligible_segments_blocked'])}; of {a['empty_segments_blocked']['of']} empty "
                f"{a['empty_segments_blocked']['mean']:g}; max distance of a group {a['max_group_distance']}")

    ratio = results["ratio_breakdowns_to_sizes_only"]
    dims = b["cell_median_abs_error"]
    audit = results["proxy_audit"]
    minors = b["restricted_with_minor_cell"]
    rows = [
        ("released segments per release (mean [min-max])", per(b["released"]), per(s["released"])),
        ("1. noise-only released: exact size 0", per(b["noise_only_zero"]), per(s["noise_only_zero"])),
        ("1. noise-only share of the released (all releases)", share(b), share(s)),
        (f"1. noise-only released: exact size < {b['spec']['min_reported_size']}",
         per(b["noise_only_below_threshold"]), per(s["noise_only_below_threshold"])),
        ("2. mean relative error, 40 segments of 500", pct(b["group_mean_relative_error"]),
         pct(s["group_mean_relative_error"])),
        ("3. median / mean abs error of those sizes", f"{b['group_median_abs_error']} / {b['group_mean_abs_error']}",
         f"{s['group_median_abs_error']} / {s['group_mean_abs_error']}"),
        ("3. ratio breakdowns : sizes only (median / mean)", f"{ratio['median']}× / {ratio['mean']}×", ""),
        ("4. median abs error of reported cells: all released (40 groups); cells reported in all",
         ", ".join(f"{d} {num(dims[d])} ({num(b['group_cell_median_abs_error'].get(d))}); "
                   f"{b['cells_reported'][d]}" for d in dims), "-"),
        ("4. cells of the 40 with exact >= min_reported_size left out",
         f"{pct(b['group_cells_left_out']['share'])} of {b['group_cells_left_out']['of']}", "-"),
        ("5. group segments missing per release", per(b["group_missing"]), per(s["group_missing"])),
        ("5. eligible segments (exact >= threshold) missing", per(b["eligible_missing"]), per(s["eligible_missing"])),
        ("5. proxy audit, apart from the run (which has screen=None): blocked per audit", blocked(audit), ""),
        ("6. 95 % interval coverage", cov(results["coverage"]["breakdowns"]), cov(results["coverage"]["sizes_only"])),
        (f"7. age-restricted segments ({minors['segments']}) with a '13-17' cell",
         f"{per(minors)}; in {minors['releases_with_any']} of {n} releases", "-"),
        ("7. any released segment with a '13-17' cell", per(b["any_segment_with_minor_cell"]), "-"),
    ]
    lines = [f"Report quality over {n} seeded releases (world seed {results['settings']['seed']}, ε = "
             f"{b['spec']['epsilon']:g}, {results['world']['segments']} segments)", "",
             "| figure | default breakdowns | sizes only |", "|---|---|---|"]
    lines += [f"| {a} | {x} | {y} |" for a, x, y in rows]
    lines += pipelinedp_markdown(results["pipelinedp"])
    return "\n".join(lines)


def ratio(b: dict[str, Any], s: dict[str, Any]) -> dict[str, float | None]:
    """Size error with breakdowns over size error with sizes only (median and mean absolute errors)."""
    def div(x: float | None, y: float | None) -> float | None:
        return round(x / y, 2) if x is not None and y else None

    return {"median": div(b["group_median_abs_error"], s["group_median_abs_error"]),
            "mean": div(b["group_mean_abs_error"], s["group_mean_abs_error"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=100, help="seeded releases per spec (default 100)")
    parser.add_argument("--coverage-releases", type=int, default=None, help="releases for interval coverage "
                        "(default: --releases)")
    parser.add_argument("--seed", type=int, default=0, help="world seed; releases use seed .. seed + N - 1")
    parser.add_argument("--audit-seeds", type=int, default=20, help="seeds of the proxy audit (0 skips it)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/rq"), help="directory of report_quality.json")
    parser.add_argument("--spec-extra", action="append", default=[], metavar="KEY=VALUE",
                        help="a ReleaseSpec field to set, if the installed ReleaseSpec has it (repeatable)")
    parser.add_argument("--pipelinedp", action=argparse.BooleanOptionalAction, default=None,
                        help="compare sizes only with PipelineDP's PRIVACY_ID_COUNT (default: on if pipeline_dp "
                        "is importable)")
    parser.add_argument("--pipelinedp-epsilons", type=_floats, default=[0.5, 1.0, 2.0], metavar="E,E",
                        help="ε of the Laplace comparison (default 0.5,1,2)")
    parser.add_argument("--pipelinedp-gaussian-epsilons", type=_floats, default=[1.0], metavar="E,E",
                        help="ε of PipelineDP's Gaussian beside it, at the default run's δ (default 1; '' skips)")
    parser.add_argument("--pipelinedp-releases", type=int, default=None,
                        help="PipelineDP runs per ε and noise (default: --releases; about 0.5 s each)")
    parser.add_argument("--pipelinedp-jobs", type=int, default=2,
                        help="worker processes for the PipelineDP runs (default 2; 1 runs them in this process)")
    args = parser.parse_args()
    if args.releases < 1:
        parser.error("--releases must be >= 1")
    if args.pipelinedp_releases is not None and args.pipelinedp_releases < 1:
        parser.error("--pipelinedp-releases must be >= 1")
    warnings.filterwarnings("ignore", category=PrivacyLeakWarning)  # seeded releases warn, by design
    started = time.perf_counter()
    extras, notes = spec_extras(args.spec_extra)
    world = build_world(args.seed)
    world_s = time.perf_counter() - started
    seeds = range(args.seed, args.seed + args.releases)
    coverage_seeds = range(args.seed, args.seed + (args.coverage_releases or args.releases))
    specs = release_specs(world.segment_ids, extras)
    runs = {name: measure_spec(world, spec, seeds) for name, spec in specs.items()}
    measured = {name: figures for name, (figures, _, _) in runs.items()}
    covered = {name: coverage(world, specs[name], cells, sizes, coverage_seeds)
               for name, (_, cells, sizes) in runs.items()}
    sizes, threshold = runs["breakdowns"][2], specs["breakdowns"].min_reported_size
    audit = proxy_audit(world, sizes, threshold, range(args.seed, args.seed + args.audit_seeds)) \
        if args.audit_seeds > 0 else {"skipped": "--audit-seeds 0"}
    use_pdp = importlib.util.find_spec("pipeline_dp") is not None if args.pipelinedp is None else args.pipelinedp
    if use_pdp:
        versus = versus_pipelinedp(world, specs["sizes_only"], specs["breakdowns"].delta, args.pipelinedp_epsilons,
                                   args.pipelinedp_gaussian_epsilons, seeds, args.pipelinedp_releases or args.releases,
                                   args.pipelinedp_jobs)
    else:
        versus = {"skipped": "--no-pipelinedp" if args.pipelinedp is False else "pipeline_dp is not importable"}
    results = {
        "settings": {"releases": args.releases, "coverage_releases": len(coverage_seeds), "seed": args.seed,
                     "audit_seeds": args.audit_seeds, "spec_extra": extras, "adtarget": adtarget.__version__},
        "notes": notes, "world": world.description, "specs": measured,
        "ratio_breakdowns_to_sizes_only": ratio(measured["breakdowns"], measured["sizes_only"]),
        "coverage": covered, "proxy_audit": audit, "pipelinedp": versus,
        "seconds": {"world": round(world_s, 2), "total": round(time.perf_counter() - started, 2)},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "report_quality.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(markdown(results))
    for note in notes:
        print(f"\nnote: {note}")
    pdp_s = f", PipelineDP comparison {versus['seconds']} s" if "seconds" in versus else ""
    print(f"\n{results['seconds']['total']} s (world {world_s:.1f} s{pdp_s}); figures in {path}")


if __name__ == "__main__":
    main()
