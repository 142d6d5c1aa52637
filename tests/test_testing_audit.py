"""The black-box ε audit: the default release's count mechanism at ε = 1 passes on a real worst-case pair of
neighbouring count vectors, and deliberately broken mechanisms (ε×10, sensitivity understated 5×) are caught.
All seeded; noise for all runs is drawn in one call through the release's own CountNoise sampler."""

from __future__ import annotations

import numpy as np
import pytest
from _release_fixtures import assignments_for, gate, world_rows

from adtarget import PrivacyBudget, ReleaseSpec
from adtarget.exceptions import ParameterError
from adtarget.reports import CountNoise, count_cells
from adtarget.reports._explain import sensitivity
from adtarget.reports._postprocess import noises
from adtarget.testing import (
    EpsilonViolation,
    aggregate_vector,
    audit_epsilon,
    clopper_pearson,
    count_mechanism,
)

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")


@pytest.fixture(scope="module")
def worst_pair():
    return worst_neighbour_pair()


def worst_neighbour_pair():
    """Exact count vectors of a world and of its neighbour without the person who moves the most cells,
    restricted to the cells that differ (the others have identical output distributions on both sides)."""
    rows, people = world_rows(seed=9, n_persons=120)
    eligible = gate(rows, people)
    assignments = assignments_for(eligible)
    spec = ReleaseSpec(advertiser="acme", segment_ids=tuple(s.segment_id for s in assignments.segments),
                       epsilon=1.0, delta=1e-6)  # the default bounds: 5 segments, 1 cell per dimension
    full = aggregate_vector(count_cells(eligible, assignments, spec))
    best = None
    for person in sorted(people)[:40]:
        keep = rows["person_id"] != person
        e2 = gate({k: v[keep] for k, v in rows.items()}, people)
        other = aggregate_vector(count_cells(e2, assignments_for(e2), spec))
        keys = sorted((k for k in set(full) | set(other) if full.get(k, 0) != other.get(k, 0)), key=repr)
        if best is None or len(keys) > len(best[0]):
            best = (keys, other)
    keys, other = best
    return (spec, np.array([full.get(k, 0) for k in keys], dtype=np.int64),
            np.array([other.get(k, 0) for k in keys], dtype=np.int64),
            np.array([k[0] == "size" for k in keys]))


def test_default_release_count_mechanism_passes_at_epsilon_1(worst_pair):
    """Each block (the sizes, the breakdown cells) against its own noise, as the release draws them: their
    audited ε add up (basic composition) to at most the count stage's."""
    spec, d1, d2, is_size = worst_pair
    declared = sensitivity(spec)
    assert np.abs(d1 - d2).sum() == len(d1) > 10  # a person in several segments and cells
    size_noise, cell_noise = noises(spec)  # exactly the CountNoises the release builds
    assert size_noise.epsilon == pytest.approx(0.6) and size_noise.l1_sensitivity == declared["sizes"]["l1"]
    assert cell_noise.epsilon == pytest.approx(0.3) and cell_noise.l1_sensitivity == declared["breakdowns"]["l1"]
    assert np.abs(d1 - d2)[is_size].sum() <= declared["sizes"]["l1"]
    assert np.abs(d1 - d2)[~is_size].sum() <= declared["breakdowns"]["l1"]
    bounds = []
    for noise, block, claim in ((size_noise, is_size, 0.6), (cell_noise, ~is_size, 0.3)):
        a, b = d1[block], d2[block]

        def along_difference(out, a=a, b=b):  # the sum over the changed cells, signed: the strongest linear test
            return out @ np.sign(a - b).astype(float)

        result = audit_epsilon(count_mechanism(noise), a, b, claimed_epsilon=claim * 1.1, n_samples=4_000,
                               random_state=11, statistics=along_difference)
        assert result.passed, str(result)
        result.raise_if_violated()
        bounds.append(result.epsilon_lower_bound)
    assert sum(bounds) < 0.9


def test_default_count_noise_is_tight_for_a_concentrated_difference(worst_pair):
    """The L1 bound also allows one size to move by all of Δ1 = S = 5: then the threshold event's true privacy
    loss is exactly the sizes' ε = 0.6, and the audit's bound comes close to it without passing it."""
    spec = worst_pair[0]
    size_noise, _ = noises(spec)
    l1 = int(size_noise.l1_sensitivity)
    result = audit_epsilon(count_mechanism(size_noise), np.array([200]), np.array([200 + l1]),
                           claimed_epsilon=0.66, n_samples=10_000, random_state=12)
    assert 0.35 < result.epsilon_lower_bound <= 0.66, str(result)


def test_epsilon_times_ten_is_caught():
    broken = CountNoise("discrete_laplace", 10.0)  # claims ε = 1 but adds noise for ε = 10
    result = audit_epsilon(count_mechanism(broken), np.array([40]), np.array([41]), claimed_epsilon=1.0,
                           n_samples=10_000, random_state=1)
    assert not result.passed and result.epsilon_lower_bound > 5, str(result)
    with pytest.raises(EpsilonViolation, match="exceeds the claimed"):
        result.raise_if_violated()


def test_sensitivity_understated_five_times_is_caught():
    """Counting events, a person adds 5 to one count, but the noise is calibrated for sensitivity 1."""
    broken = CountNoise.for_counts("discrete_laplace", PrivacyBudget(1.0), max_cells_per_person=1)
    result = audit_epsilon(count_mechanism(broken), np.array([100]), np.array([105]), claimed_epsilon=1.0,
                           n_samples=10_000, random_state=2)
    assert not result.passed and result.epsilon_lower_bound > 3, str(result)


def test_correct_single_count_is_tight_but_not_violated():
    """Sensitivity 1 at ε = 1: the threshold event has ratio exactly e, so the bound is just below 1."""
    result = audit_epsilon(count_mechanism(CountNoise("discrete_laplace", 1.0)), np.array([10]), np.array([11]),
                           claimed_epsilon=1.0, n_samples=10_000, random_state=3)
    assert 0.5 < result.epsilon_lower_bound <= 1.0, str(result)


def test_clopper_pearson_bounds():
    lo, hi = clopper_pearson(0, 100, 0.025)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 100))
    lo, hi = clopper_pearson(100, 100, 0.025)
    assert hi == 1.0 and lo == pytest.approx(0.025 ** (1 / 100))
    lo, hi = clopper_pearson(50, 100, 0.025)
    assert lo < 0.5 < hi


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"claimed_epsilon": 0}, "claimed_epsilon"),
    ({"claimed_epsilon": 1.0, "claimed_delta": 1.0}, "claimed_delta"),
    ({"claimed_epsilon": 1.0, "n_samples": 10}, "n_samples"),
    ({"claimed_epsilon": 1.0, "confidence": 1.0}, "confidence"),
])
def test_audit_parameters_are_validated(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        audit_epsilon(lambda d, n, r: np.zeros((n, 1)), 0, 1, **kwargs)
