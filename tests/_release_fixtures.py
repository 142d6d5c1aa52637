"""Helpers for the release tests: small worlds built through ingest, the gate and a segment catalog, and a
pandas oracle.

Everything a release receives is made by adtarget's own public functions: events by ``ingest``, eligible
events by ``apply_gate`` (with an optional public ``snapshot_id``), profiles by ``build_profiles`` and
assignments by ``SegmentCatalog.assign``. The oracle recomputes contribution bounding from its definition
(splitmix64 over Python ints, BLAKE2b ``stable64``) and counts distinct persons with pandas groupby,
independently of the numpy kernel.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import numpy as np

import adtarget

END = int(dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp())
DAY = 86_400
REGIONS = ["US-CA", "US-NY", "CN-GD", "DE-BE", "FR-IDF", "JP-13"]
PERMITTED = ["video", "news", "games", "search", "music", "payments"]
N_SEGMENTS = 8
KEY = bytes(range(32))
#: the advertiser the release tests release to (registered in every ledger they use)
ACME = "acme"


def safe_taxonomy():
    return adtarget.SafeTaxonomy.default()


def segment_nodes(safe, n: int = N_SEGMENTS) -> np.ndarray:
    """Indices of the first ``n`` safe tier-1 IAB nodes (the catalog's segments)."""
    return np.flatnonzero(np.asarray(safe.safe_mask) & (safe.taxonomy.tier == 1))[:n]


def catalog(safe=None, n: int = N_SEGMENTS):
    """Top-k topic segments on the first ``n`` safe tier-1 nodes, ``k`` large enough that every person with an
    eligible event in a node's subtree is a member of its segment."""
    safe = safe if safe is not None else safe_taxonomy()
    ids = safe.taxonomy.ids
    return adtarget.SegmentCatalog([adtarget.TopicSegment(str(ids[i]), k=64) for i in segment_nodes(safe, n)],
                                   safe)


def segment_infos(safe=None, n: int = N_SEGMENTS):
    """SegmentInfo of the catalog's segments (public descriptions of definitions)."""
    return catalog(safe, n).segments


def _people(rng, n: int) -> dict[int, dict]:
    years = rng.integers(1940, 2011, n)
    years[rng.random(n) < 0.08] = 0  # unknown age, included by the test policy
    return {i: {"birth_year": int(years[i - 1])} for i in range(1, n + 1)}


def _rows(rng, ids, nodes, n_events: int, regions=REGIONS, services=PERMITTED):
    person = rng.choice(np.asarray(ids), n_events)
    region = np.asarray(list(regions) + [None], dtype=object)[rng.integers(0, len(regions) + 1, n_events)]
    return {"person_id": person.astype(np.int64),
            "service": np.asarray(services, dtype=object)[rng.integers(0, len(services), n_events)],
            "ts": (END - rng.integers(DAY, 90 * DAY, n_events)).astype(np.int64),
            "category": rng.choice(nodes, n_events).astype(object),
            "region": region}


def _concat(*parts):
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def world_rows(seed: int = 0, n_persons: int = 400, *, excluded: bool = False, extra_sensitive: bool = False):
    """(event columns, consent people) of a small world; optional excluded persons / extra sensitive events.

    Most safe events fall on the catalog's tier-1 nodes (so about half the persons are in each segment), the
    rest anywhere in the safe taxonomy; some events are on a service that is not ads-permitted, some on
    sensitive nodes (the gate drops both).
    """
    rng = np.random.default_rng(seed)
    safe = safe_taxonomy()
    t = safe.taxonomy
    safe_ids = t.ids[np.asarray(safe.safe_mask)]
    sens_ids = t.ids[~np.asarray(safe.safe_mask)]
    seg_ids = t.ids[segment_nodes(safe)]
    people = _people(rng, n_persons)
    ids = list(range(1, n_persons + 1))
    parts = [_rows(rng, ids, seg_ids, 6 * n_persons),
             _rows(rng, ids, safe_ids, 2 * n_persons),
             _rows(rng, ids, safe_ids, n_persons // 2, services=["health_plus"]),  # service not permitted
             _rows(rng, ids[: n_persons // 10], sens_ids, n_persons // 5)]  # sensitive events
    extra_rng = np.random.default_rng(seed + 1000)
    if excluded:
        flags = [{"opted_in": False}, {"birth_year": 2018}, {"deleted": True}, {"terminated": True}]
        for j, f in enumerate(flags * 5):
            people[10_000 + j] = {"birth_year": 1980, **f}
        parts.append(_rows(extra_rng, list(range(10_000, 10_020)), np.concatenate([safe_ids, sens_ids]), 400,
                           regions=[*REGIONS, "ZZ-99"]))
    if extra_sensitive:
        parts.append(_rows(extra_rng, ids, sens_ids, n_persons // 20))
    return _concat(*parts), people


def gate(rows, people, *, snapshot_id: str | None = None, window_end: int = END):
    """EligibleEvents of ``rows`` under a consent snapshot of ``people`` (unknown ages included), through
    ``ingest`` and ``apply_gate``; ``snapshot_id`` is the data owner's public name of the snapshot."""
    from _consent_fixtures import snapshot_of

    pz = adtarget.Pseudonymizer(KEY)
    batch = adtarget.ingest(rows, pseudonymizer=pz, now=END).batch
    snapshot = snapshot_of(pz, people, END)
    return adtarget.apply_gate(batch, snapshot, safe_taxonomy(), adtarget.EligibilityPolicy(unknown_age="include"),
                               window_end=window_end, snapshot_id=snapshot_id)


def assignments_for(eligible, n_segments: int = N_SEGMENTS):
    """SegmentAssignments of ``eligible``: ``SegmentCatalog.assign`` on the profiles ``build_profiles`` made of
    them. A person's memberships depend only on their own eligible events (so they are the same in every world
    where that person's events are)."""
    profiles = adtarget.build_profiles(eligible, half_life_days=30.0)
    return catalog(eligible.safe_taxonomy, n_segments).assign(profiles)


def registered(path=":memory:", *advertisers: str, **caps):
    """A BudgetLedger with ``advertisers`` (default ``acme``) registered; ``caps`` go to ``set_caps``."""
    led = adtarget.BudgetLedger(path, advertisers=advertisers or (ACME,))
    if caps:
        led.set_caps(**caps)
    return led


def _mix(x: int) -> int:
    m = (1 << 64) - 1
    z = (x + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return z ^ (z >> 31)


def _s64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def prio(pseudonym: int, key: str, salt: str) -> int:
    """The bounding priority, from its definition, over Python ints."""
    return _mix(int(pseudonym) ^ _s64(key) ^ _s64(salt))


def band(birth_year: int, end: int = END) -> str:
    if birth_year == 0:
        return "unknown"
    age = dt.datetime.fromtimestamp(end, tz=dt.timezone.utc).year - birth_year - 1
    for hi, name in ((17, "13-17"), (24, "18-24"), (34, "25-34"), (44, "35-44"), (54, "45-54"), (64, "55-64")):
        if 13 <= age <= hi:
            return name
    return "65+" if age >= 65 else "unknown"


def oracle(eligible, assignments, spec):
    """{segment: size} and {(segment, dim, value): count} after bounding, with pandas."""
    import pandas as pd

    salt, persons = spec.bounding_salt, np.asarray(eligible.persons)
    coo = assignments.membership.tocoo()
    ids = [s.segment_id for s in assignments.segments]
    seg = pd.DataFrame({"person": coo.row, "seg": [ids[c] for c in coo.col]})
    seg = seg[seg["seg"].isin(spec.segment_ids)].copy()
    seg["prio"] = [prio(persons[p], s, salt) for p, s in zip(seg["person"], seg["seg"])]
    seg = seg.sort_values(["person", "prio"])
    seg = seg[seg.groupby("person").cumcount() < spec.max_segments_per_person]
    sizes = seg.groupby("seg")["person"].nunique().to_dict()
    counted = set(seg["person"])
    values = {}
    if "age_band" in spec.breakdowns:
        values["age_band"] = pd.DataFrame({"person": np.arange(persons.size),
                                           "value": [band(int(b)) for b in eligible.birth_year]})
    events = pd.DataFrame({"person": eligible.person, "region": eligible.region, "service": eligible.service})
    names = {"region": list(eligible.regions), "service": list(eligible.services.names)}
    for dim in ("region", "service"):
        if dim not in spec.breakdowns:
            continue
        d = events[events[dim] >= 0].drop_duplicates(["person", dim])
        d = d[d["person"].isin(counted)]
        d = pd.DataFrame({"person": d["person"], "value": [names[dim][v] for v in d[dim]]})
        d["prio"] = [prio(persons[p], f"{dim}:{v}", salt) for p, v in zip(d["person"], d["value"])]
        d = d.sort_values(["person", "prio"])
        values[dim] = d[d.groupby("person").cumcount() < spec.cells_per_person(dim)]
    cells = {}
    for dim, v in values.items():
        joined = seg.merge(v[["person", "value"]], on="person")
        for (s, val), n in joined.groupby(["seg", "value"])["person"].nunique().items():
            cells[(s, dim, val)] = int(n)
    return sizes, cells
