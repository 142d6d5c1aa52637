"""Shared fixtures. Tests import public names from adtarget where they exist."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

TEST_KEY = bytes(range(32))


@pytest.fixture(scope="session")
def pseudonymizer():
    from adtarget import Pseudonymizer

    return Pseudonymizer(TEST_KEY)


@pytest.fixture(scope="session")
def taxonomy():
    from adtarget import Taxonomy

    return Taxonomy.default()


@pytest.fixture(scope="session")
def services():
    from adtarget import ServiceRegistry

    return ServiceRegistry.synthetic()
