"""adtarget.testing: adversarial checks you can run on your own pipelines and on adtarget's release.

* :func:`check_neighbouring` — removing one person moves the pre-noise aggregates by at most the declared L1/L2
  sensitivity, and does not change the noise calls (control flow independent of that person).
* :func:`check_count_noise`, :func:`check_partition_selection`, :func:`chi_square_test` — seeded chi-square
  goodness-of-fit of the samplers against their exact pmf.
* :func:`audit_epsilon` — a black-box lower bound on ε from many runs on two neighbouring datasets
  (StatDP / DP-Sniper style); fails when the bound exceeds the claimed ε.
* :func:`audit_documents` — the same bound over whole advertiser documents: every byte, JSON field, segment
  present and stored report reused, not only the sampler's numbers.

These are testing tools: they seed noise (PrivacyLeakWarning) and patch samplers; never use them in a release.
See docs/testing.md.
"""

from __future__ import annotations

from adtarget.testing._document_audit import DocumentAudit, DocumentLeak, audit_documents
from adtarget.testing._epsilon_audit import (
    EpsilonAudit,
    EpsilonViolation,
    audit_epsilon,
    clopper_pearson,
    count_mechanism,
)
from adtarget.testing._goodness_of_fit import (
    GoodnessOfFit,
    check_count_noise,
    check_partition_selection,
    chi_square_test,
    discrete_gaussian_pmf,
    discrete_laplace_pmf,
)
from adtarget.testing._neighbours import (
    NeighbouringReport,
    NeighbouringViolation,
    NeighbourResult,
    NoiseCall,
    aggregate_vector,
    check_neighbouring,
    record_noise_calls,
)

__all__ = [
    "DocumentAudit",
    "DocumentLeak",
    "EpsilonAudit",
    "EpsilonViolation",
    "GoodnessOfFit",
    "NeighbourResult",
    "NeighbouringReport",
    "NeighbouringViolation",
    "NoiseCall",
    "aggregate_vector",
    "audit_documents",
    "audit_epsilon",
    "check_count_noise",
    "check_neighbouring",
    "check_partition_selection",
    "chi_square_test",
    "clopper_pearson",
    "count_mechanism",
    "discrete_gaussian_pmf",
    "discrete_laplace_pmf",
    "record_noise_calls",
]
