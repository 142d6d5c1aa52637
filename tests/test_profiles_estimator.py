"""InterestProfiler: scikit-learn contract (count-matrix path) and the EligibleEvents path."""

from __future__ import annotations

import numpy as np
import pytest
from _segment_fixtures import eligible_events, random_events, safe_taxonomy
from scipy import sparse
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

from adtarget.exceptions import ParameterError
from adtarget.profiles import InterestProfiler, InterestProfiles, build_profiles
from adtarget.reference import SafeTaxonomy, SensitivityProfile
from adtarget.segments import SegmentCatalog


def listed(mark):
    """parametrize_with_checks' mark with its generator of checks made a list (newer pytest requires it)."""
    return pytest.mark.parametrize(mark.args[0], list(mark.args[1]), **mark.kwargs)


@listed(parametrize_with_checks([InterestProfiler(), InterestProfiler(norm="l2", max_events_per_person=3)]))
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def safe(taxonomy):
    return safe_taxonomy(taxonomy)


@pytest.fixture(scope="module")
def eligible(safe):
    return eligible_events(safe, random_events(safe, n_persons=120, n_events=2400, seed=5))


def test_transform_of_eligible_events_is_build_profiles(eligible):
    profiler = InterestProfiler(half_life_days=14, level="tier2", max_events_per_person=10, norm="l1")
    profiles = profiler.fit_transform(eligible)
    expected = build_profiles(eligible, half_life_days=14, level="tier2", max_events_per_person=10, norm="l1")
    assert isinstance(profiles, InterestProfiles)
    assert (profiles.matrix != expected.matrix).nnz == 0
    np.testing.assert_array_equal(profiler.columns_, profiles.columns)
    assert profiler.get_params()["level"] == "tier2"


def test_count_matrix_rows_are_capped_then_normalised():
    X = np.array([[1.0, 3.0, 0.0], [10.0, 0.0, 10.0], [0.0, 0.0, 0.0]])
    capped = InterestProfiler(max_events_per_person=5).fit_transform(X)
    np.testing.assert_allclose(capped, [[1, 3, 0], [2.5, 0, 2.5], [0, 0, 0]])
    out = InterestProfiler(max_events_per_person=5, norm="l1").fit_transform(sparse.csr_matrix(X))
    assert sparse.issparse(out)
    np.testing.assert_allclose(out.toarray(), [[0.25, 0.75, 0], [0.5, 0, 0.5], [0, 0, 0]])


def test_negative_counts_are_refused():
    with pytest.raises(ParameterError, match="Negative values in data passed to InterestProfiler.fit"):
        InterestProfiler().fit(-np.ones((2, 2)))


def test_transform_needs_what_fit_saw(eligible):
    on_events = InterestProfiler().fit(eligible)
    with pytest.raises(ParameterError, match="fitted on EligibleEvents, so transform needs EligibleEvents"):
        on_events.transform(np.ones((2, 3)))
    on_matrix = InterestProfiler().fit(np.ones((2, 3)))
    with pytest.raises(ParameterError, match="fitted on a count matrix"):
        on_matrix.transform(eligible)


def test_transform_refuses_events_of_another_sensitivity_profile(safe, taxonomy):
    strict = SafeTaxonomy(taxonomy, SensitivityProfile.named("gdpr_art9"))
    events = random_events(strict, n_persons=5, n_events=20, seed=9)
    other = eligible_events(strict, events)
    profiler = InterestProfiler().fit(eligible_events(safe, events))
    assert not np.array_equal(strict.safe_mask, safe.safe_mask)
    with pytest.raises(ParameterError, match="another taxonomy or sensitivity profile"):
        profiler.transform(other)


def test_invalid_parameters_fail_in_fit(eligible):
    with pytest.raises(ParameterError, match="level must be one of"):
        InterestProfiler(level="leaf").fit(eligible)


def test_catalog_assigns_eligible_events_with_a_cloned_profiler(safe, eligible):
    profiler = InterestProfiler(level="tier2")
    catalog = SegmentCatalog.default(safe)
    direct = catalog.assign(eligible, profiler=profiler)
    via_profiles = catalog.assign(build_profiles(eligible, level="tier2"))
    assert (direct.membership != via_profiles.membership).nnz == 0
    assert not hasattr(profiler, "columns_")  # the caller's profiler is not fitted
    assert clone(profiler).get_params() == profiler.get_params()
