"""The segment assignment kernel against the sparse scipy formulation it replaced, entry order included.

The reference below is ``leaf_membership`` as written before the kernel (a sparse matmul per tier, one global
sort for the ranks, column selections and a stack); the kernel must give the same CSR arrays: ``indptr``,
``indices`` (in the same order within rows) and ``data``, for any catalog and profiles that ``build_profiles``
made from gated events (the only profiles a catalog accepts: hand-made InterestProfiles are refused, so the
former tests on hand-built matrices with infinite, NaN or repeated entries have no public input left).
"""

from __future__ import annotations

import numpy as np
import pytest
from _segment_fixtures import eligible_events, random_events, safe_taxonomy
from hypothesis import given
from hypothesis import strategies as st
from scipy import sparse

from adtarget import AllOf, AnyOf, SegmentCatalog, TopicSegment, build_profiles
from adtarget.segments._rules import (
    emission_table,
    index_dtype,
    leaf_blocks,
    leaf_membership,
    membership_bound,
)


# --- the reference: the scipy formulation before the kernel ------------------------------------------------
def tier_scores(profiles, tier):
    taxonomy = profiles.taxonomy
    target = taxonomy.rollup(profiles.columns, tier)
    cols = np.flatnonzero(taxonomy.tier[target] == tier)
    rollup = sparse.csr_matrix((np.ones(cols.size), (cols, target[cols])),
                               shape=(profiles.n_columns, taxonomy.n_nodes))
    scores = sparse.csr_matrix(profiles.matrix @ rollup)
    scores.eliminate_zeros()
    return scores


def row_ranks(scores):
    if not scores.has_sorted_indices:
        scores = scores.sorted_indices()
    rows = np.repeat(np.arange(scores.shape[0], dtype=np.int64), np.diff(scores.indptr))
    distinct, inverse = np.unique(scores.data, return_inverse=True)
    order = np.argsort(rows * distinct.size + (distinct.size - 1 - inverse), kind="stable")
    rank = np.empty(scores.nnz, dtype=np.int64)
    rank[order] = np.arange(scores.nnz) - scores.indptr[rows[order]] + 1
    return sparse.csr_matrix((rank, scores.indices, scores.indptr), shape=scores.shape)


def select(matrix, nodes, keep):
    sub = sparse.csr_matrix(matrix[:, nodes])
    rows = np.repeat(np.arange(sub.shape[0]), np.diff(sub.indptr))
    member = sparse.csr_matrix((keep(sub.data, sub.indices, rows), sub.indices, sub.indptr), shape=sub.shape)
    member.eliminate_zeros()
    return member


def reference_leaf_membership(profiles, nodes, params):
    tiers = profiles.taxonomy.tier[nodes]
    total = np.asarray(profiles.matrix.sum(axis=1)).ravel()
    blocks, source = [], []
    for tier in np.unique(tiers):
        scores = tier_scores(profiles, int(tier))
        for is_top_k in (True, False):
            sel = np.flatnonzero((tiers == tier) & (params["top_k"] == is_top_k))
            if not sel.size:
                continue
            if is_top_k:
                k = params["k"][sel]
                blocks.append(select(row_ranks(scores), nodes[sel], lambda r, j, _, k=k: r <= k[j]))
            else:
                low = params["min_share"][sel]
                blocks.append(select(scores, nodes[sel], lambda s, j, i, low=low: s >= low[j] * total[i]))
            source.append(sel)
    return sparse.hstack(blocks, format="csr")[:, np.argsort(np.concatenate(source), kind="stable")]


def reference_assign(catalog, profiles):
    leaves = reference_leaf_membership(profiles, catalog._leaf_nodes, catalog._leaf_params())
    topic = {i: d for i, d in enumerate(catalog.definitions) if isinstance(d, TopicSegment)}
    composite = {i: d for i, d in enumerate(catalog.definitions) if not isinstance(d, TopicSegment)}
    blocks = [leaves[:, [catalog._leaf_index[d] for d in topic.values()]]] if topic else []
    blocks += [catalog._column(d, leaves) for d in composite.values()]
    source = np.asarray([*topic, *composite])
    membership = sparse.csr_matrix(sparse.hstack(blocks, format="csr")[:, np.argsort(source, kind="stable")],
                                   dtype=bool)
    membership.eliminate_zeros()  # as SegmentAssignments does
    return membership


def assert_same_csr(got, want):
    assert got.shape == want.shape and got.dtype == want.dtype
    for name in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name, strict=True)


# --- inputs -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def safe(taxonomy):
    return safe_taxonomy(taxonomy)


def random_profiles(safe, seed, *, n_persons=60, events_per_person=4, level="node", ties=0.2, zero_weights=0.05):
    """Profiles of random gated events (``build_profiles``, no normalisation); ``ties`` is the share of events
    on one of three days (so many persons have tied scores), ``zero_weights`` the share of weight-0 events."""
    events = random_events(safe, n_persons=n_persons, n_events=events_per_person * n_persons, seed=seed,
                           tie_share=ties, zero_weight_share=zero_weights)
    return build_profiles(eligible_events(safe, events), level=level, norm=None)


def random_catalog(safe, seed, n_leaves):
    """Topic leaves on tier-1/2 nodes (some nodes twice with another rule), and two composites."""
    rng = np.random.default_rng(seed)
    tax = safe.taxonomy
    nodes = np.flatnonzero(safe.safe_mask & (tax.tier <= 2))
    picked = rng.choice(nodes, n_leaves)
    leaves = []
    for node in picked:
        if rng.random() < 0.6:
            leaves.append(TopicSegment(str(tax.ids[node]), k=int(rng.integers(1, 8))))
        else:
            leaves.append(TopicSegment(str(tax.ids[node]), rule="share", min_share=float(rng.choice([0.05, 0.2, 1.0]))))
    leaves = list(dict.fromkeys(leaves))  # equal definitions would be refused as duplicate ids
    definitions = leaves + ([AllOf(leaves[0], leaves[-1]), AnyOf(leaves[-1], leaves[0])] if len(leaves) > 1 else [])
    return SegmentCatalog([d for i, d in enumerate(definitions) if i % 3 != 1 or len(definitions) < 4], safe)


# --- tests --------------------------------------------------------------------------------------------------
@given(seed=st.integers(0, 2**32 - 1), n_leaves=st.integers(1, 40), ties=st.sampled_from([0.0, 0.2, 1.0]),
       level=st.sampled_from(["node", "tier2"]))
def test_assign_equals_the_scipy_formulation(safe, seed, n_leaves, ties, level):
    profiles = random_profiles(safe, seed, level=level, ties=ties)
    catalog = random_catalog(safe, seed + 1, n_leaves)
    assert_same_csr(catalog.assign(profiles).membership, reference_assign(catalog, profiles))


@pytest.mark.parametrize("k", [1, 2, 5, 400])
def test_default_catalog_equals_the_scipy_formulation(safe, k):
    profiles = random_profiles(safe, k, n_persons=200, events_per_person=6)
    catalog = SegmentCatalog.default(safe, k=k)  # k=400: more than any row holds, everybody in every topic
    assert_same_csr(catalog.assign(profiles).membership, reference_assign(catalog, profiles))


def test_every_tie_goes_to_the_lower_node(safe):
    profiles = random_profiles(safe, 7, n_persons=50, events_per_person=20, ties=1.0, zero_weights=0.0)
    catalog = SegmentCatalog.default(safe, k=2)
    got = catalog.assign(profiles).membership
    assert got.nnz > 0
    assert_same_csr(got, reference_assign(catalog, profiles))


def test_one_node_under_several_rules_keeps_scipy_order(safe):
    node = str(safe.taxonomy.ids[np.flatnonzero(safe.safe_mask & (safe.taxonomy.tier == 1))[0]])
    rules = [TopicSegment(node, k=k) for k in range(1, 20)] + [
        TopicSegment(node, rule="share", min_share=s) for s in (0.01, 0.5, 1.0)]
    catalog = SegmentCatalog(rules, safe)
    profiles = random_profiles(safe, 3, n_persons=80, events_per_person=10)
    got = catalog.assign(profiles).membership
    assert_same_csr(got, reference_assign(catalog, profiles))
    assert_same_csr(leaf_membership(profiles, catalog._leaf_nodes, catalog._leaf_params()),
                    reference_leaf_membership(profiles, catalog._leaf_nodes, catalog._leaf_params()))


@pytest.mark.parametrize("n_persons", [0, 1])
def test_no_persons_or_one_person(safe, n_persons):
    profiles = random_profiles(safe, 11, n_persons=n_persons, events_per_person=30)
    catalog = random_catalog(safe, 12, 30)
    assert_same_csr(catalog.assign(profiles).membership, reference_assign(catalog, profiles))


def test_empty_profiles_give_no_membership(safe):
    profiles = random_profiles(safe, 1, n_persons=10, zero_weights=1.0)  # every event has weight 0
    catalog = SegmentCatalog.default(safe)
    got = catalog.assign(profiles).membership
    assert got.nnz == 0 and got.shape == (10, len(catalog))
    assert_same_csr(got, reference_assign(catalog, profiles))


@given(seed=st.integers(0, 2**32 - 1), n_leaves=st.integers(1, 40), per_person=st.sampled_from([1, 4, 30]))
def test_membership_bound_holds(safe, seed, n_leaves, per_person):
    profiles = random_profiles(safe, seed, events_per_person=per_person)
    catalog = random_catalog(safe, seed + 1, n_leaves)
    nodes, params = catalog._leaf_nodes, catalog._leaf_params()
    blocks = leaf_blocks(safe.taxonomy.tier[nodes], params["top_k"])
    table = emission_table(nodes, blocks, safe.taxonomy.n_nodes, index_dtype(profiles.matrix))
    assert leaf_membership(profiles, nodes, params).nnz <= membership_bound(profiles.matrix, blocks, table,
                                                                            params["k"])


@given(scores=st.lists(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), min_size=6, max_size=6),
                       min_size=1, max_size=8))
def test_reference_row_ranks_match_a_stable_sort_per_row(scores):
    dense = np.array(scores)
    ranks = row_ranks(sparse.csr_matrix(dense)).toarray()
    for i, row in enumerate(dense):
        order = sorted((-v, j) for j, v in enumerate(row) if v > 0)
        for r, (_, j) in enumerate(order, start=1):
            assert ranks[i, j] == r
        assert np.count_nonzero(ranks[i]) == len(order)
