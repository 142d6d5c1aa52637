"""Helpers for the profile and segment tests: random events and their EligibleEvents (through the gate).

Independent pandas oracles for profiles and rule-based segments live here too, so that the tests compare
the vectorised kernels with a plain groupby computation.
"""

from __future__ import annotations

import numpy as np

WINDOW_END = 1_790_000_000  # 2026-09-21
DAY = 86_400


def safe_taxonomy(taxonomy):
    """``taxonomy`` under the ``default`` sensitivity profile."""
    from adtarget.reference import SafeTaxonomy, SensitivityProfile

    return SafeTaxonomy(taxonomy, SensitivityProfile.named("default"))


def random_events(safe, *, n_persons: int, n_events: int, seed: int, days: int = 120,
                  zero_weight_share: float = 0.05, tie_share: float = 0.2) -> dict[str, np.ndarray]:
    """Events on safe nodes; every person has at least one; some timestamps repeat (ties) and some weights are 0."""
    rng = np.random.default_rng(seed)
    safe_nodes = np.flatnonzero(safe.safe_mask)
    n_events = max(n_events, n_persons)
    person = np.concatenate([np.arange(n_persons), rng.integers(0, n_persons, n_events - n_persons)])
    ts = WINDOW_END - rng.integers(0, days * DAY, n_events)
    tied = rng.random(n_events) < tie_share
    ts[tied] = WINDOW_END - DAY * rng.integers(0, 3, int(tied.sum()))
    weight = rng.choice([0.5, 1.0, 2.0], n_events)
    weight[rng.random(n_events) < zero_weight_share] = 0.0
    popular = safe_nodes[rng.permutation(safe_nodes.size)[: max(8, safe_nodes.size // 10)]]
    category = np.where(rng.random(n_events) < 0.7, rng.choice(popular, n_events), rng.choice(safe_nodes, n_events))
    return {"person": person.astype(np.int32), "ts": ts.astype(np.int64), "category": category.astype(np.int32),
            "weight": weight.astype(np.float64)}


def eligible_events(safe, events: dict[str, np.ndarray], *, window_end: int = WINDOW_END):
    """EligibleEvents holding exactly ``events``, built through ingest and the gate (everybody consents).

    ``events["person"]`` are raw account numbers here; the gate's ``person`` indexes its sorted pseudonyms.
    """
    from adtarget.consent import ConsentSnapshot
    from adtarget.events import Pseudonymizer, ingest
    from adtarget.gate import apply_gate

    pseudonymizer = Pseudonymizer(bytes(range(32)))
    n = events["person"].size
    cols = {"person_id": events["person"].astype(np.int64) + 1000, "service": np.full(n, "video", dtype=object),
            "ts": events["ts"], "category": safe.taxonomy.ids[events["category"]].astype(object),
            "weight": events["weight"]}
    batch = ingest(cols, pseudonymizer=pseudonymizer, taxonomy=safe.taxonomy, now=window_end).batch
    assert batch.n_events == n, "test events must all be valid"
    m = batch.persons.size
    snapshot = ConsentSnapshot(
        as_of=window_end, persons=batch.persons, birth_year=np.full(m, 1990, np.int16),
        opted_in=np.ones(m, bool), cross_service=np.ones(m, bool), deleted=np.zeros(m, bool),
        terminated=np.zeros(m, bool), location_deleted=np.zeros(m, bool),
        policy_version=np.full(m, "2018-05-14"), jurisdiction=np.full(m, "US"))
    eligible = apply_gate(batch, snapshot, safe, window_end=window_end)
    assert eligible.n_events == n, "every test event must be eligible"
    return eligible


# --- oracles (pandas groupby, written independently of the kernels) ----------------------------------------
def profile_oracle(eligible, *, level: str, half_life_days: float, cap: int | None):
    """Dense persons × columns profile and its columns, computed with pandas."""
    import pandas as pd

    taxonomy, safe = eligible.safe_taxonomy.taxonomy, eligible.safe_taxonomy
    df = pd.DataFrame({"person": eligible.person, "ts": eligible.ts, "category": eligible.category,
                       "weight": eligible.weight})
    if cap is not None:
        df = df.sort_values(["person", "ts", "weight", "category"], ascending=[True, False, False, True])
        df = df.groupby("person", sort=False).head(cap)
    age_days = (eligible.window_end - df["ts"]).clip(lower=0) / DAY
    df = df.assign(value=df["weight"] * 0.5 ** (age_days / half_life_days))
    tier = {"node": None, "tier1": 1, "tier2": 2}[level]
    if tier is None:
        df["node"] = df["category"]
    else:
        df["node"] = [int(taxonomy.ancestors(int(c))[tier - 1]) if taxonomy.tier[c] > tier else int(c)
                      for c in df["category"]]
    keep = safe.safe_mask & (True if tier is None else taxonomy.tier <= tier)
    columns = np.flatnonzero(keep)
    sums = df.groupby(["person", "node"])["value"].sum()
    dense = np.zeros((eligible.persons.size, columns.size))
    col_of = {int(n): j for j, n in enumerate(columns)}
    for (p, n), v in sums.items():
        dense[int(p), col_of[int(n)]] += v
    return dense, columns


def membership_oracle(profile_dense, columns, taxonomy, node: int, rule: str, k: int, min_share: float):
    """Bool per person: is ``node`` (by subtree score) in the person's top-k at its tier, or over the share."""
    import pandas as pd

    tier = int(taxonomy.tier[node])
    rows, cols = np.nonzero(profile_dense)
    df = pd.DataFrame({"person": rows, "col_node": columns[cols], "score": profile_dense[rows, cols]})
    df["anc"] = [int(taxonomy.ancestors(int(c))[tier - 1]) if taxonomy.tier[c] > tier else int(c)
                 for c in df["col_node"]]
    n = profile_dense.shape[0]
    if rule == "share":
        total = profile_dense.sum(axis=1)
        sub = df[df["anc"] == node].groupby("person")["score"].sum()
        out = np.zeros(n, dtype=bool)
        out[sub.index.to_numpy()] = sub.to_numpy() >= min_share * total[sub.index.to_numpy()]
        return out
    at_tier = df[taxonomy.tier[df["anc"].to_numpy()] == tier]
    scores = at_tier.groupby(["person", "anc"], as_index=False)["score"].sum()
    scores = scores.sort_values(["person", "score", "anc"], ascending=[True, False, True])
    scores["rank"] = scores.groupby("person").cumcount() + 1
    hit = scores[(scores["anc"] == node) & (scores["rank"] <= k)]["person"].to_numpy()
    out = np.zeros(n, dtype=bool)
    out[hit] = True
    return out


# --- synthetic population with latent groups, through the real pipeline --------------------------------------
def synthetic_eligible(config, workdir):
    """(EligibleEvents, latent group per eligible person) for ``adtarget.synth`` data, via ingest, a
    ConsentLedger snapshot and the gate."""
    from adtarget import synth
    from adtarget.consent import ConsentLedger
    from adtarget.events import Pseudonymizer, ingest
    from adtarget.gate import apply_gate
    from adtarget.reference import SafeTaxonomy

    data = synth.generate(config)
    pseudonymizer = Pseudonymizer(bytes(range(32)))
    end = data.config.end
    batch = ingest(data.events, pseudonymizer=pseudonymizer, now=end).batch
    with ConsentLedger(workdir / "consent.sqlite", pseudonymizer) as ledger:
        ledger.import_records(data.consent, strict=False, now=end)
        snapshot = ledger.snapshot(as_of=end)
    eligible = apply_gate(batch, snapshot, SafeTaxonomy.default(), window_end=end)
    truth = pseudonymizer.pseudonymize(data.truth.persons)
    order = np.argsort(truth)
    group = np.asarray(data.truth.group)[order[np.searchsorted(truth[order], eligible.persons)]]
    return eligible, group.astype(np.int64)


# --- small worlds for counting: events with services and regions, a catalog, assignments ---------------------
REGIONS = ("CN-GD", "DE-BE", "US-CA", "US-NY")
SERVICES = ("video", "news", "games", "health_plus")  # health_plus is not ads-permitted: the gate drops it


def world_table(safe, *, n_persons: int, n_events: int, n_segments: int, seed: int,
                health_plus_share: float = 0.0) -> dict[str, np.ndarray]:
    """An event table (raw ``person_id`` 1000 + i, every person with at least one event) on the first
    ``n_segments`` safe tier-1 nodes, with services, regions (some blank) and weight 1."""
    rng = np.random.default_rng(seed)
    nodes = np.flatnonzero(safe.safe_mask & (safe.taxonomy.tier == 1))[:n_segments]
    n_events = max(n_events, n_persons)
    person = np.concatenate([np.arange(n_persons), rng.integers(0, n_persons, n_events - n_persons)])
    service = np.where(rng.random(n_events) < health_plus_share, 3, rng.integers(0, 3, n_events))
    return {"person_id": person.astype(np.int64) + 1000,
            "service": np.asarray(SERVICES, dtype=object)[service],
            "ts": (WINDOW_END - rng.integers(0, 60 * DAY, n_events)).astype(np.int64),
            "category": safe.taxonomy.ids[rng.choice(nodes, n_events)].astype(object),
            "region": np.asarray(("",) + REGIONS, dtype=object)[rng.integers(0, len(REGIONS) + 1, n_events)],
            "weight": np.ones(n_events)}


def gate_table(safe, table: dict[str, np.ndarray], *, birth_seed: int = 0, window_end: int = WINDOW_END,
               snapshot_id: str | None = None, pseudonymizer=None):
    """EligibleEvents of ``table`` through ingest and the gate; everybody consents, birth years depend only on
    the person (so any partition of the persons gates to the same values)."""
    from adtarget import Pseudonymizer, apply_gate, ingest
    from adtarget.consent import ConsentSnapshot

    pseudonymizer = pseudonymizer or Pseudonymizer(bytes(range(32)))
    result = ingest(table, pseudonymizer=pseudonymizer, taxonomy=safe.taxonomy, now=window_end)
    assert len(result.quarantine) == 0, "test events must all be valid"
    batch = result.batch
    m = batch.persons.size
    birth = (1950 + (batch.persons ^ np.uint64(birth_seed)) % np.uint64(60)).astype(np.int16)
    snapshot = ConsentSnapshot(
        as_of=window_end, persons=batch.persons, birth_year=birth, opted_in=np.ones(m, bool),
        cross_service=np.ones(m, bool), deleted=np.zeros(m, bool), terminated=np.zeros(m, bool),
        location_deleted=np.zeros(m, bool), policy_version=np.full(m, "2018-05-14"),
        jurisdiction=np.full(m, "US"))
    return apply_gate(batch, snapshot, safe, window_end=window_end, snapshot_id=snapshot_id)


def world_catalog(safe, n_segments: int):
    """Top-k topic segments on the first ``n_segments`` safe tier-1 nodes, k large enough that every person with
    an event in a node's subtree is a member."""
    from adtarget import SegmentCatalog, TopicSegment

    nodes = np.flatnonzero(safe.safe_mask & (safe.taxonomy.tier == 1))[:n_segments]
    return SegmentCatalog([TopicSegment(str(safe.taxonomy.ids[i]), k=64) for i in nodes], safe)


def rows_of(table: dict[str, np.ndarray], person_ids) -> dict[str, np.ndarray]:
    """The events of the raw persons ``person_ids`` (a partition of persons, as an engine's executor holds)."""
    keep = np.isin(table["person_id"], np.asarray(person_ids))
    return {name: column[keep] for name, column in table.items()}
