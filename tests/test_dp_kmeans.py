"""DPKMeansSegmenter: estimator contract, accounting before fitting and through clone(), bounds, names."""

from __future__ import annotations

import pickle
import re
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from adtarget import BudgetLedger, DPKMeansSegmenter, InMemoryAccountant, PrivacyBudget
from adtarget.exceptions import BudgetExhaustedError, LedgerError, ParameterError, PrivacyLeakWarning

SEEDED = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
#: scikit-learn's check_clustering fits standardised blobs with negative coordinates and does not honour the
#: positive_only tag; interest vectors are non-negative and the public box is [0, bounds_norm]^d, so the
#: segmenter refuses negative data (check_positive_only_tag_during_fit verifies that refusal).
EXPECTED_FAILED = {"check_clustering": "negative data outside the public box [0, bounds_norm]^d is refused"}


def groups_data(n=600, d=6, seed=0):
    """Three latent groups of non-negative, L1-normalised interest vectors; returns X and the group."""
    rng = np.random.default_rng(seed)
    centers = np.array([[8, 1, 1, 1, 1, 1], [1, 1, 8, 8, 1, 1], [1, 1, 1, 1, 1, 8]], dtype=float)[:, :d]
    y = rng.integers(0, 3, n)
    X = np.vstack([rng.dirichlet(centers[g] * 4) for g in y])
    return X, y


def listed(mark):
    """parametrize_with_checks' mark with its generator of checks made a list (newer pytest requires it)."""
    return pytest.mark.parametrize(mark.args[0], list(mark.args[1]), **mark.kwargs)


@listed(parametrize_with_checks(
    [DPKMeansSegmenter(3, epsilon=5.0, random_state=0, ledger=InMemoryAccountant())],
    expected_failed_checks=lambda est: EXPECTED_FAILED,
))
@SEEDED
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_fit_refuses_to_run_without_a_ledger():
    X, _ = groups_data()
    with pytest.raises(ParameterError, match="ledger must be a BudgetLedger .* got None"):
        DPKMeansSegmenter(3).fit(X)


def test_epsilon_is_charged_before_the_data_is_touched(monkeypatch):
    from adtarget.segments import _dp_kmeans

    calls = []
    real = _dp_kmeans.dp_lloyd

    real_charge = InMemoryAccountant.charge_definition

    def spy(self, artefact_id, budget):
        calls.append(("charge_definition", artefact_id, budget))
        return real_charge(self, artefact_id, budget)

    monkeypatch.setattr(InMemoryAccountant, "charge_definition", spy)  # stand-in ledgers are refused
    monkeypatch.setattr(_dp_kmeans, "dp_lloyd", lambda *a, **k: (calls.append(("fit",)), real(*a, **k))[1])
    X, _ = groups_data()
    est = DPKMeansSegmenter(3, epsilon=0.5, ledger=InMemoryAccountant()).fit(X)
    assert [c[0] for c in calls] == ["charge_definition", "fit"]
    assert calls[0][1] == f"dp-kmeans:{est.model_id_}" == est.model_.artefact_id
    assert calls[0][2] == PrivacyBudget(0.5, 0.0) == est.budget_


def test_purpose_is_gone():
    """The fit is charged as a definition, not to an account named by the caller (issue 14, finding 8)."""
    with pytest.raises(TypeError, match="purpose"):
        DPKMeansSegmenter(3, ledger=InMemoryAccountant(), purpose="learned-segments")


def test_a_refused_charge_means_no_fit():
    X, _ = groups_data()
    acc = InMemoryAccountant(epsilon_limit=1.0)
    est = DPKMeansSegmenter(3, epsilon=0.75, ledger=acc).fit(X)
    centers = est.cluster_centers_.copy()
    with pytest.raises(BudgetExhaustedError, match="above epsilon_limit=1.0; nothing was spent"):
        est.fit(X)
    assert acc.spent_epsilon == 0.75 and np.array_equal(est.cluster_centers_, centers)


@pytest.mark.parametrize("bad", ["negative", "too_few_rows", "nan"])
def test_invalid_data_costs_nothing(bad):
    X, _ = groups_data(n=20)
    X = {"negative": -X, "too_few_rows": X[:2], "nan": np.where(X > 0.5, np.nan, X)}[bad]
    acc = InMemoryAccountant()
    with pytest.raises(ValueError):
        DPKMeansSegmenter(3, ledger=acc).fit(X)
    assert acc.charges == ()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"n_clusters": 0}, "n_clusters must be an integer >= 1, got 0"),
    ({"epsilon": 0}, "epsilon must be a number > 0, got 0"),
    ({"epsilon": float("inf")}, "epsilon must be finite"),
    ({"bounds_norm": -1.0}, "bounds_norm must be a finite number > 0, got -1.0"),
    ({"n_iter": 0}, r"n_iter must be an integer in \[1, 100\], got 0"),
    ({"n_iter": 2.0}, r"n_iter must be an integer in \[1, 100\], got 2.0"),
    ({"n_iter": True}, r"n_iter must be an integer in \[1, 100\], got True"),
    ({"random_state": "seed"}, "random_state must be None"),
])
def test_invalid_parameters_are_named(kwargs, match):
    X, _ = groups_data(n=30)
    acc = InMemoryAccountant()
    with pytest.raises(ParameterError, match=match):
        DPKMeansSegmenter(**{"n_clusters": 3, "ledger": acc, **kwargs}).fit(X)
    assert acc.charges == ()


def test_cross_val_score_charges_the_sqlite_ledger_three_times(tmp_path):
    X, _ = groups_data()
    ledger = BudgetLedger(tmp_path / "budget.sqlite")
    scores = cross_val_score(DPKMeansSegmenter(3, epsilon=0.25, ledger=ledger), X, cv=3)
    assert scores.shape == (3,)
    rows = BudgetLedger(tmp_path / "budget.sqlite").show()
    assert [r["scope"] for r in rows] == ["global"]  # a fit is a definition: no advertiser account is made
    assert rows[0]["epsilon_spent"] == pytest.approx(0.75, rel=1e-12) and rows[0]["delta_spent"] == 0.0


def test_cross_val_score_and_grid_search_charge_the_in_memory_accountant():
    X, _ = groups_data()
    acc = InMemoryAccountant()
    cross_val_score(DPKMeansSegmenter(3, epsilon=0.25, ledger=acc), X, cv=3)
    assert acc.spent_epsilon == pytest.approx(0.75, rel=1e-12) and len(acc.charges) == 3
    search = GridSearchCV(DPKMeansSegmenter(epsilon=0.1, ledger=acc), {"n_clusters": [2, 3]}, cv=2).fit(X)
    assert search.best_estimator_.ledger is acc
    assert acc.spent_epsilon == pytest.approx(0.75 + 5 * 0.1, rel=1e-12)  # 2 candidates × 2 folds + refit
    assert len({key for _, _, key in acc.charges}) == 8


def test_clone_keeps_the_same_accounting():
    acc = InMemoryAccountant()
    est = DPKMeansSegmenter(ledger=acc)
    assert clone(est).ledger is acc
    assert clone(DPKMeansSegmenter(ledger=BudgetLedger(":memory:"))).ledger is not None


def test_pickled_accountant_refuses_to_charge_but_fitted_models_pickle():
    X, _ = groups_data()
    acc = InMemoryAccountant()
    est = DPKMeansSegmenter(3, epsilon=1.0, ledger=acc).fit(X)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict(X), est.predict(X))
    with pytest.raises(LedgerError, match="pickled into another process"):
        copy.fit(X)
    assert acc.spent_epsilon == 1.0


def test_unseeded_fit_is_silent_and_seeded_fit_warns():
    X, _ = groups_data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DPKMeansSegmenter(3, ledger=InMemoryAccountant()).fit(X)
    with pytest.warns(PrivacyLeakWarning, match="random_state is set"):
        DPKMeansSegmenter(3, random_state=1, ledger=InMemoryAccountant()).fit(X)


def test_rows_are_clipped_into_the_public_box():
    X, _ = groups_data()
    est = DPKMeansSegmenter(3, epsilon=2.0, bounds_norm=0.5, ledger=InMemoryAccountant()).fit(X * 1000)
    assert est.cluster_centers_.min() >= 0 and est.cluster_centers_.max() <= 0.5
    assert est.transform(X).shape == (X.shape[0], 3)
    assert est.get_params()["bounds_norm"] == 0.5  # constructor arguments are never rewritten


@SEEDED
def test_segment_ids_and_names(taxonomy):
    X, _ = groups_data(n=3000)
    est = DPKMeansSegmenter(3, epsilon=50.0, random_state=3, ledger=InMemoryAccountant()).fit(X)
    ids = [s.segment_id for s in est.segment_info_]
    assert ids == [f"learned:{est.model_id_}:{k}" for k in range(3)]
    assert re.fullmatch(r"dp-kmeans-[0-9a-f]{8}-[0-9a-f]{8}", est.model_id_)
    parts = {frozenset(s.name.split(" + ")) for s in est.segment_info_}
    assert parts == {frozenset({"feature 0"}), frozenset({"feature 2", "feature 3"}), frozenset({"feature 5"})}


def test_public_start_recovers_well_separated_groups():
    from sklearn.metrics import adjusted_rand_score

    X, y = groups_data(n=3000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PrivacyLeakWarning)
        # n_iter=2: what diffprivlib derived for these 3000 rows before the count became public (the default
        # 5 splits ε = 1 into smaller shares and recovers the groups in 8 of 10 seeds)
        ari = [adjusted_rand_score(y, DPKMeansSegmenter(3, epsilon=1.0, n_iter=2, random_state=s,
                                                        ledger=InMemoryAccountant()).fit(X).labels_)
               for s in range(3)]
    assert min(ari) > 0.9


def test_assign_gives_one_learned_segment_per_person(taxonomy):
    from _segment_fixtures import eligible_events, random_events, safe_taxonomy

    from adtarget.profiles import build_profiles

    safe = safe_taxonomy(taxonomy)
    profiles = build_profiles(eligible_events(safe, random_events(safe, n_persons=200, n_events=3000, seed=2)),
                              level="tier1", norm="l2")
    est = DPKMeansSegmenter(4, ledger=InMemoryAccountant()).fit(profiles)
    assignments = est.assign(profiles)
    np.testing.assert_array_equal(assignments.persons, profiles.persons)
    np.testing.assert_array_equal(assignments.segments_per_person(), 1)
    np.testing.assert_array_equal(assignments.membership.indices, est.predict(profiles))
    assert assignments.segments == est.segment_info_
    assert all(s.name in set(safe.taxonomy.names[profiles.columns]) or " + " in s.name for s in est.segment_info_)
    with pytest.raises(ParameterError, match="profiles must be InterestProfiles"):
        est.assign(profiles.matrix)


def test_the_public_start_replaces_diffprivlibs_uniform_start(monkeypatch):
    from adtarget.segments import _dp_kmeans

    starts = []
    real = _dp_kmeans.public_init_centers
    monkeypatch.setattr(_dp_kmeans, "public_init_centers", lambda *a: starts.append(a) or real(*a))
    X, _ = groups_data(n=200)
    DPKMeansSegmenter(3, bounds_norm=0.8, ledger=InMemoryAccountant()).fit(X)
    assert len(starts) == 1 and starts[0][:3] == (3, 6, 0.8)
    centers = real(3, 6, 0.8, np.random.RandomState(0))
    np.testing.assert_allclose(np.linalg.norm(centers, axis=1), 0.4)
    assert np.count_nonzero(centers) == 3 and len(set(np.flatnonzero(centers) % 6)) == 3


def _count_draws(monkeypatch):
    """Record every noise draw of diffprivlib's public mechanism classes as ``(class name, mechanism, ε)``: the
    mechanism object and its public ``epsilon`` attribute, read when ``randomise`` is called."""
    from diffprivlib.mechanisms import GeometricFolded, LaplaceBoundedDomain

    draws = []
    for cls in (GeometricFolded, LaplaceBoundedDomain):
        real = cls.randomise
        monkeypatch.setattr(cls, "randomise", lambda self, value, _real=real, _name=cls.__name__:
                            draws.append((_name, self, self.epsilon)) or _real(self, value))
    return draws


def _spent(draws, d):
    """ε of a DPLloyd run from its draws: per iteration (one count mechanism each), one cluster's count plus
    its d coordinate sums (clusters hold disjoint persons, so they compose in parallel)."""
    count_mechanisms = list(dict.fromkeys(m for name, m, _ in draws if name == "GeometricFolded"))
    count = next(e for name, _, e in draws if name == "GeometricFolded")
    per_dim = next(e for name, _, e in draws if name == "LaplaceBoundedDomain")
    return len(count_mechanisms) * (count + d * per_dim)


@SEEDED
@pytest.mark.parametrize(("d", "k", "n_iter"), [(2, 3, 2), (6, 3, 5), (27, 8, 2), (3, 5, 3)])
def test_one_fit_spends_exactly_epsilon_and_noises_every_cluster_every_iteration(monkeypatch, d, k, n_iter):
    """Every iteration draws, from one count mechanism, cluster by cluster: the noisy count, then d noisy sums;
    k clusters, also empty ones (k = 5 > d = 3 one-hot rows leaves some empty), n_iter iterations, and the
    mechanisms' ε add up to the fit's ε."""
    rng = np.random.default_rng(d)
    X = np.eye(d)[rng.integers(0, d, 2000)] if k > d else rng.dirichlet(np.ones(d), 2000)
    draws = _count_draws(monkeypatch)
    est = DPKMeansSegmenter(k, epsilon=1.0, n_iter=n_iter, random_state=0, ledger=InMemoryAccountant()).fit(X)
    c = np.cbrt(4 * d * 0.225**2)
    count_eps, dim_eps = c / (d + c) / n_iter, 1 / (d + c) / n_iter
    names = ["GeometricFolded"] + ["LaplaceBoundedDomain"] * d
    assert [name for name, _, _ in draws] == names * k * n_iter  # n_iter · k · (1 + d) draws, in this order
    assert len(draws) == n_iter * k * (1 + d)
    counts = [(m, e) for name, m, e in draws if name == "GeometricFolded"]
    assert len({id(m) for m, _ in counts}) == n_iter  # one count mechanism per iteration, used by every cluster
    assert all(counts[i * k][0] is m for i in range(n_iter) for m, _ in counts[i * k:(i + 1) * k])
    assert all(e == pytest.approx(count_eps, rel=1e-12) for _, e in counts)
    assert all(e == pytest.approx(dim_eps, rel=1e-12) for name, _, e in draws if name == "LaplaceBoundedDomain")
    assert _spent(draws, d) == pytest.approx(1.0, rel=1e-12)
    if k > d:
        assert np.bincount(est.labels_, minlength=k).min() == 0  # the case with empty clusters was exercised
        assert np.isfinite(est.cluster_centers_).all()


@SEEDED
@pytest.mark.parametrize("d", [2, 6, 27])
def test_diffprivlibs_own_kmeans_overspends(monkeypatch, d):
    """diffprivlib 0.6.6's KMeans hands its count share to the sums and the reverse: from d = 5 on it spends more
    than ε (1.69 ε at d = 27), read from its mechanisms' public ε. If this starts failing, diffprivlib fixed it."""
    from diffprivlib.accountant import BudgetAccountant
    from diffprivlib.models import KMeans

    draws = _count_draws(monkeypatch)
    X = np.random.default_rng(0).dirichlet(np.ones(d), 5000)
    model = KMeans(3, epsilon=1.0, bounds=(np.zeros(d), np.ones(d)), random_state=0,
                   accountant=BudgetAccountant()).fit(X)
    count = next(e for name, _, e in draws if name == "GeometricFolded")
    per_dim = next(e for name, _, e in draws if name == "LaplaceBoundedDomain")
    c = np.cbrt(4 * d * 0.225**2)
    assert model.n_iter_ * (count + d * per_dim) == pytest.approx((1 + d * c) / (d + c), rel=1e-9)


def test_split_epsilon_gives_the_counts_their_share():
    from adtarget.segments._dp_kmeans import split_epsilon

    for d, n_iter in ((2, 1), (6, 3), (27, 2)):
        count, per_dim = split_epsilon(1.5, d, n_iter)
        c = np.cbrt(4 * d * 0.225**2)
        assert count == pytest.approx(1.5 / n_iter * c / (d + c), rel=1e-12)
        assert n_iter * (count + d * per_dim) == pytest.approx(1.5, rel=1e-12)


def test_an_update_draws_its_noise_in_the_documented_order():
    """noisy_centers equals the update written out with diffprivlib's public mechanisms on the same stream: per
    cluster, the folded geometric count, then the bounded-domain Laplace sum of each coordinate."""
    from diffprivlib.mechanisms import GeometricFolded, LaplaceBoundedDomain

    from adtarget.segments._dp_kmeans import noisy_centers

    X, _ = groups_data(n=500)
    labels = np.random.default_rng(1).integers(0, 4, 500)
    ours = noisy_centers(X, labels, 4, epsilon_count=0.1, epsilon_dim=0.2, bound=1.0, rng=np.random.RandomState(5))
    rng = np.random.RandomState(5)
    counts = GeometricFolded(epsilon=0.1, sensitivity=1, lower=0.5, upper=float("inf"), random_state=rng)
    expected = np.zeros((4, 6))
    for cluster in range(4):
        n = counts.randomise(int((labels == cluster).sum()))
        sums = X[labels == cluster].sum(axis=0)
        expected[cluster] = [LaplaceBoundedDomain(epsilon=0.2, sensitivity=1.0, lower=0.0, upper=n * 1.0,
                                                  random_state=rng).randomise(sums[i]) for i in range(6)]
        expected[cluster] /= n
    np.testing.assert_array_equal(ours, expected)


def test_a_large_epsilon_update_is_close_to_the_cluster_means():
    from adtarget.segments._dp_kmeans import noisy_centers

    X, _ = groups_data(n=3000)
    labels = np.random.default_rng(1).integers(0, 3, 3000)
    centers = noisy_centers(X, labels, 3, epsilon_count=1e4, epsilon_dim=1e4, bound=1.0,
                            rng=np.random.RandomState(0))
    means = np.vstack([X[labels == c].mean(axis=0) for c in range(3)])
    np.testing.assert_allclose(centers, means, atol=1e-3)


@SEEDED
def test_an_empty_cluster_is_noised_like_any_other(monkeypatch):
    """diffprivlib skips an empty cluster: whether a cluster is empty (a fact one person can flip) then decides
    how many draws the noise stream makes and whether the centre moves. Ours draws for every cluster."""
    from adtarget.segments._dp_kmeans import noisy_centers

    X, _ = groups_data(n=500)
    full = np.random.default_rng(1).integers(0, 4, 500)
    emptied = np.where(full == 3, 2, full)  # cluster 3 empty
    draws = _count_draws(monkeypatch)
    update = {"epsilon_count": 0.1, "epsilon_dim": 0.2, "bound": 1.0}
    noisy_centers(X, full, 4, **update, rng=np.random.RandomState(5))
    n_full = len(draws)
    centers = noisy_centers(X, emptied, 4, **update, rng=np.random.RandomState(5))
    assert n_full == len(draws) - n_full == 4 * (1 + 6)  # per cluster: one noisy count, one noisy sum per column
    assert np.isfinite(centers).all() and (centers[3] != 0).any()  # the empty cluster got its noisy sums too


def test_unseeded_noise_does_not_come_from_numpys_global_generator():
    """random_state=None: the mechanisms get random_state=None, diffprivlib's secure generator; only the public
    start reads numpy's global generator, so re-seeding it does not repeat the fit."""
    X, _ = groups_data(n=300)
    fits, state = [], np.random.get_state()  # noqa: NPY002 (the legacy global generator is what is tested)
    try:
        for _ in range(2):
            np.random.seed(0)  # noqa: NPY002
            fits.append(DPKMeansSegmenter(3, ledger=InMemoryAccountant()).fit(X).cluster_centers_)
    finally:
        np.random.set_state(state)  # noqa: NPY002
    assert not np.array_equal(*fits)


@SEEDED
def test_rows_outside_the_box_are_clipped_per_coordinate(monkeypatch):
    """dp_lloyd clips every coordinate into [0, bound] before any sum, so one row moves a sum by at most bound."""
    from adtarget.segments import _dp_kmeans

    X = np.abs(np.random.default_rng(0).normal(size=(300, 4))) * 3
    clipped = np.clip(X, 0.0, 0.5)
    a = _dp_kmeans.dp_lloyd(X, 3, epsilon=1.0, bound=0.5, n_iter=2, rng=np.random.RandomState(4))
    b = _dp_kmeans.dp_lloyd(clipped, 3, epsilon=1.0, bound=0.5, n_iter=2, rng=np.random.RandomState(4))
    np.testing.assert_array_equal(a, b)


@SEEDED
@pytest.mark.parametrize("n_iter", [2, 5])
def test_iterations_are_the_public_n_iter_for_860_and_861_persons(monkeypatch, n_iter):
    """Issue 14, finding 8: diffprivlib derives the iteration count from the exact number of rows (860 persons
    gave 2 iterations, 861 gave 3). Here it is the public ``n_iter``, and so is the number of noise draws."""
    draws = _count_draws(monkeypatch)
    seen = []
    for n in (860, 861):
        X = np.random.default_rng(n).dirichlet(np.ones(2), n)
        before = len(draws)
        est = DPKMeansSegmenter(2, epsilon=1.0, n_iter=n_iter, random_state=0, ledger=InMemoryAccountant()).fit(X)
        seen.append((est.n_iter_, len(draws) - before))
    assert seen == [(n_iter, n_iter * 2 * (1 + 2))] * 2
    assert DPKMeansSegmenter(2).get_params()["n_iter"] == 2  # the public default


@SEEDED
def test_iteration_count_does_not_depend_on_the_data(monkeypatch):
    """Same n_iter and the same number of draws whatever the rows: few or many, spread or all identical."""
    draws = _count_draws(monkeypatch)
    rng = np.random.default_rng(0)
    datasets = [rng.dirichlet(np.ones(3), 5), rng.dirichlet(np.ones(3), 4000), np.full((300, 3), 0.2),
                np.eye(3)[rng.integers(0, 3, 999)]]
    seen = []
    for X in datasets:
        before = len(draws)
        est = DPKMeansSegmenter(4, epsilon=0.7, n_iter=3, random_state=1, ledger=InMemoryAccountant()).fit(X)
        seen.append((est.n_iter_, len(draws) - before))
    assert seen == [(3, 3 * 4 * (1 + 3))] * len(datasets)


def _learned_world(taxonomy, seed=2):
    from _segment_fixtures import eligible_events, random_events, safe_taxonomy

    from adtarget import build_profiles

    safe = safe_taxonomy(taxonomy)
    eligible = eligible_events(safe, random_events(safe, n_persons=300, n_events=3000, seed=seed))
    return eligible, build_profiles(eligible, level="tier1", norm="l2")


@SEEDED
def test_every_advertiser_receiving_learned_segments_is_charged_the_fit(taxonomy):
    """Issue 14, finding 8: the fit is charged once globally (a definition) and once to every advertiser who gets
    a release of its segments; the explanation names the definition and whether this release charged it."""
    import adtarget

    eligible, profiles = _learned_world(taxonomy)
    ledger = BudgetLedger(":memory:", advertisers=["a", "b"])
    start = {name: ledger.remaining(name) for name in ("a", "b")}
    est = DPKMeansSegmenter(3, epsilon=0.4, random_state=0, ledger=ledger).fit(profiles)
    fit_id = f"dp-kmeans:{est.model_id_}"
    assert ledger.remaining("a")[1].epsilon == pytest.approx(start["a"][1].epsilon - 0.4)  # global only
    assert ledger.remaining("a")[0] == start["a"][0] and ledger.remaining("b")[0] == start["b"][0]
    assignments = est.assign(profiles)
    assert assignments.definitions == ((fit_id, PrivacyBudget(0.4)),)
    ids = list(assignments.segment_ids)
    explanations = {}
    for name in ("a", "b"):
        spec = adtarget.ReleaseSpec(name, ids, epsilon=0.5, delta=0.0, breakdowns=())
        explanations[name] = adtarget.release(eligible, assignments, spec, ledger=ledger, random_state=1).explanation
    for name in ("a", "b"):
        assert ledger.remaining(name)[0].epsilon == pytest.approx(start[name][0].epsilon - 0.5 - 0.4, rel=1e-12)
        assert explanations[name].definitions == {"used": [{"artefact_id": fit_id, "epsilon": 0.4, "delta": 0.0}],
                                                  "charged": [fit_id]}
    assert ledger.remaining("a")[1].epsilon == pytest.approx(start["a"][1].epsilon - 0.4 - 2 * 0.5, rel=1e-12)
    # a second release to "a" in the same window (another question) does not charge the fit again
    spec = adtarget.ReleaseSpec("a", ids[:1], epsilon=0.25, delta=0.0, breakdowns=())
    again = adtarget.release(eligible, assignments, spec, ledger=ledger, random_state=2).explanation
    assert again.definitions["charged"] == []
    assert ledger.remaining("a")[0].epsilon == pytest.approx(start["a"][0].epsilon - 0.5 - 0.4 - 0.25, rel=1e-12)


@SEEDED
def test_learned_segments_of_a_matrix_fit_are_not_releasable(taxonomy):
    import adtarget

    eligible, profiles = _learned_world(taxonomy)
    est = DPKMeansSegmenter(3, epsilon=0.4, random_state=0, ledger=InMemoryAccountant()).fit(profiles.matrix)
    assert not est.model_.releasable
    with pytest.raises(ParameterError, match="InterestProfiles"):
        est.assign(profiles.matrix)
    est.columns_ = profiles.columns  # even told the columns, a matrix fit gives assignments without lineage
    assignments = est.assign(profiles)
    assert assignments.lineage is None and assignments.definitions == ()
    ledger = BudgetLedger(":memory:", advertisers=["a"])
    spec = adtarget.ReleaseSpec("a", list(assignments.segment_ids), epsilon=0.5, delta=0.0, breakdowns=())
    with pytest.raises(ParameterError, match="assignments were read from a file"):
        adtarget.release(eligible, assignments, spec, ledger=ledger)


@pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")
def test_run_fits_an_unfitted_learned_segmenter_on_the_builds_eligible_events(tmp_path):
    """``adtarget.run(..., segmenter=DPKMeansSegmenter(...))`` as its docstring says: the fit is charged to the
    segmenter's ledger first (globally, as a DP-derived definition), the release charges the advertiser for it
    once, and the report's segments are the learned ones."""
    import adtarget
    from adtarget import synth

    data = synth.generate(synth.SyntheticConfig(n_events=60_000, seed=5))
    pz = adtarget.Pseudonymizer(bytes(range(32)))
    synth.write_consent(data, tmp_path / "consent.csv")
    with adtarget.ConsentLedger(tmp_path / "c.sqlite", pz) as consent:
        consent.import_csv(tmp_path / "consent.csv")
        snapshot = consent.snapshot()
    budget = adtarget.BudgetLedger(tmp_path / "b.sqlite", advertisers=["demo-advertiser"])
    segmenter = adtarget.DPKMeansSegmenter(n_clusters=3, epsilon=0.5, ledger=budget, random_state=0)
    result = adtarget.run(data.events, snapshot, pseudonymizer=pz, budget=budget, segmenter=segmenter,
                          window_end=synth.SyntheticConfig().end, random_state=1,
                          settings=adtarget.RunSettings(false_segment_rate=0.01))
    assert segmenter.segment_info_ and all(s.segment_id.startswith("learned:") for s in segmenter.segment_info_)
    assert result.summary["segments"]["released"] + result.summary["segments"]["suppressed"] == 3
    assert all(s.segment_id.startswith("learned:") for s in result.report.segments)
    assert result.explanation.definitions["charged"]  # the fit, charged to the advertiser by this release
    advertiser, everyone = budget.remaining("demo-advertiser")
    assert advertiser.epsilon == pytest.approx(4.0 - 1.0 - 0.5) and everyone.epsilon == pytest.approx(20.0 - 1.5)
