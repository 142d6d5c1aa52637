"""Byte-for-byte golden outputs of seeded runs on fixed synthetic data: what a refactor must not change.

Two runs pin the behaviour of the whole job: the default catalog with the default breakdowns, and a custom
catalog (composites of every kind, a share rule) with public regions and a target service. Every file a run
writes — ``report.json``, ``explanation.json``, ``summary.json``, ``assignments.parquet`` — is compared with the
committed copy under ``tests/golden/<case>/``. The noise is seeded, ``created_at`` and the window's end fixed and the pseudonym key is
the test key, so the bytes depend only on the code (and on pyarrow's Parquet writer for the assignments file).

A deliberate change of behaviour regenerates them: ``ADTARGET_REGENERATE_GOLDEN=1 pytest tests/test_golden.py``,
then review the diff of ``tests/golden/`` like code.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest
from _consent_fixtures import consented_world
from _release_fixtures import registered

from adtarget import (
    AllOf,
    AnyOf,
    RunSettings,
    SafeTaxonomy,
    SegmentCatalog,
    SensitivityProfile,
    Taxonomy,
    TopicSegment,
    run,
    synth,
)

pytestmark = pytest.mark.filterwarnings("ignore::adtarget.exceptions.PrivacyLeakWarning")

GOLDEN = Path(__file__).parent / "golden"
CREATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
REGENERATE = os.environ.get("ADTARGET_REGENERATE_GOLDEN") == "1"


@pytest.fixture(scope="module")
def world(tmp_path_factory, pseudonymizer):
    return consented_world(tmp_path_factory.mktemp("golden"), pseudonymizer,
                           synth.SyntheticConfig(n_events=40_000, seed=11))


def _custom_catalog():
    safe = SafeTaxonomy(Taxonomy.default(), SensitivityProfile.named("default"))
    return SegmentCatalog([
        TopicSegment("1"),
        TopicSegment("483", k=2),
        TopicSegment("597", rule="share", min_share=0.2),
        AllOf(TopicSegment("1"), TopicSegment("483")),
        AnyOf(TopicSegment("483"), TopicSegment("597"), AllOf(TopicSegment("1"), TopicSegment("42"))),
    ], safe)


CASES = {
    "default": lambda: ({}, RunSettings()),
    "custom": lambda: ({"segmenter": _custom_catalog()},
                       RunSettings(breakdowns=("region", "age_band"), public_regions=("US-CA", "US-NY", "DE-BE"),
                                   max_segments_per_person=3, min_reported_size=20, epsilon=2.0)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_outputs_are_byte_identical_to_the_golden_copy(case, world, pseudonymizer, tmp_path):
    data, snapshot = world
    kwargs, settings = CASES[case]()
    result = run(data.events, snapshot, pseudonymizer=pseudonymizer, budget=registered(tmp_path / "b.sqlite",
                 settings.advertiser), settings=settings, random_state=20260102, created_at=CREATED_AT,
                 window_end=data.config.end, **kwargs)
    paths = result.write(tmp_path / "out")
    expected_dir = GOLDEN / case
    if REGENERATE:
        expected_dir.mkdir(parents=True, exist_ok=True)
        for old in expected_dir.iterdir():
            old.unlink()
        for path in paths.values():
            (expected_dir / path.name).write_bytes(path.read_bytes())
    assert sorted(p.name for p in paths.values()) == sorted(p.name for p in expected_dir.iterdir())
    for path in paths.values():
        expected = (expected_dir / path.name).read_bytes()
        assert path.read_bytes() == expected, f"{case}/{path.name} differs from tests/golden/{case}/{path.name}"
