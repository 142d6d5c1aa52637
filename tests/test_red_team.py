"""Issue 14: the attacks of the red-team review of the sealed release path, each refused, with public names only.

B1 counts added to themselves; B2 the state registry reached through a weak reference; B3 a writable alias
(tested in ``test_gate_kernels.py::test_a_writable_alias_of_a_sealed_column_faults_instead_of_writing``); B4
the Spark task handed to the caller's DataFrame; B5 look-alike advertiser names; B6 a ledger's or an engine's
method replaced on the instance; B7 a report planted in the ledger; E1/E2 errors.
"""

from __future__ import annotations

import os
import sys
import warnings
import weakref

import pytest
from test_document_audit import END, _world

import adtarget
from adtarget import BudgetLedger, PrivacyBudget
from adtarget.exceptions import ParameterError


def _cells():
    eligible, assignments, spec = _world("base")
    return adtarget.reports.count_cells(eligible, assignments, spec), spec


def test_counts_added_to_themselves_are_refused():
    """B1: ``c + c`` (or 1000 copies) would be released with noise calibrated for one copy."""
    cells, spec = _cells()
    for forged in (lambda: cells + cells, lambda: adtarget.reports.CellCounts.sum([cells] * 1000)):
        with pytest.raises(ParameterError, match="share persons"):
            forged()


def test_counts_of_two_gate_runs_over_the_same_events_cannot_be_added():
    eligible, assignments, spec = _world("base")
    again = adtarget.reports.count_cells(eligible, assignments, spec)
    with pytest.raises(ParameterError, match="share persons"):
        _cells()[0] + again


@pytest.mark.parametrize("name", ["eligible", "assignments", "cells"])
def test_sealed_objects_take_no_weak_reference(name):
    """B2: a weak reference's callback led to the registry of states, and from there to a forged object."""
    eligible, assignments, _ = _world("base")
    obj = {"eligible": eligible, "assignments": assignments, "cells": _cells()[0]}[name]
    assert weakref.getweakrefs(obj) == []
    with pytest.raises(TypeError, match="weak reference"):
        weakref.ref(obj)


def test_a_ledgers_methods_cannot_be_replaced_on_the_instance():
    """B6: ``ledger.charge = lambda *a: None`` switched the budget off."""
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    for name in ("charge", "remaining", "charge_definition"):
        with pytest.raises(AttributeError):
            setattr(ledger, name, lambda *a, **k: None)


class _LyingLedger:
    def charge_definition(self, *args, **kwargs):
        return True


def test_the_proxy_audit_and_dp_kmeans_refuse_a_stand_in_ledger():
    """O2: a stand-in whose charge spends nothing would make the audit and the fit free."""
    eligible, assignments, _ = _world("base")
    with pytest.raises(ParameterError, match="BudgetLedger or InMemoryAccountant"):
        adtarget.reports.audit_proxies(eligible, assignments, epsilon=1.0, ledger=_LyingLedger())
    profiles = adtarget.build_profiles(eligible)
    with pytest.raises(ParameterError, match="BudgetLedger or InMemoryAccountant"):
        adtarget.DPKMeansSegmenter(2, epsilon=1.0, ledger=_LyingLedger()).fit(profiles)


def test_an_engine_method_set_on_the_instance_is_not_called():
    """B6: ``engine.aggregate = ...`` on adtarget's own engine class is ignored: the class's method runs."""
    from _consent_fixtures import snapshot_of
    from test_document_audit import _events, _groups, _safe  # the same small world as a table

    groups = _groups(400)
    pz = adtarget.Pseudonymizer(bytes(range(32)))
    engine = adtarget.LocalEngine()
    engine.aggregate = lambda *a, **k: pytest.fail("the instance attribute was called")  # type: ignore[method-assign]
    settings = adtarget.RunSettings(advertiser="acme", epsilon=1.0, policy=adtarget.EligibilityPolicy(unknown_age="include"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", adtarget.PrivacyLeakWarning)
        result = adtarget.run(_events(groups), snapshot_of(pz, {p: {} for p in groups}, END), pseudonymizer=pz,
                              budget=BudgetLedger(":memory:", advertisers=["acme"]), settings=settings,
                              engine=engine, window_end=END, safe_taxonomy=_safe(), random_state=1)
    assert result.report.segments


def test_no_public_method_stores_a_report():
    """B7: a public ``store_report`` let anyone holding the ledger plant the report a later identical release
    hands out as its stored one."""
    assert not hasattr(BudgetLedger(":memory:"), "store_report")


@pytest.mark.parametrize("name", [
    "acme\u034f", "acme\ufe0f", "acme\U000e0100", "acme\u3164", "acme\u115f", "acme\uffa0", "acme\u2800",
    "acme\u2028x", "ac\u2060me", "\ufeffacme", "a\u03f2me", "\u0430cme", "acme  corp",
])
def test_invisible_and_mixed_script_advertiser_names_are_refused(name):
    """B5: each of these registered as a new advertiser with its own budget."""
    with pytest.raises(ParameterError, match="advertiser must not"):
        BudgetLedger(":memory:").register_advertiser(name)


def test_math_bold_and_full_width_spellings_are_the_same_advertiser():
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    for name in ("\U0001d41a\U0001d41c\U0001d426\U0001d41e", "\uff41\uff43\uff4d\uff45", "ACME"):
        assert ledger.register_advertiser(name).advertiser_id == "acme"
    assert len(ledger.advertisers()) == 1


@pytest.mark.parametrize("name", ["acrne", "\u1d00cme", "\u1ea1cme", "acm\u00e9", "acme\u0336"])
def test_look_alikes_of_a_registered_advertiser_are_refused(name):
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    with pytest.raises(ParameterError, match="looks like the registered advertiser 'acme'"):
        ledger.register_advertiser(name)


def test_names_in_other_scripts_and_with_accents_register():
    ledger = BudgetLedger(":memory:", advertisers=["M\u00fcller", "\u6771\u4eac\u30ac\u30b9", "\u0434\u0435\u043c\u043e"])
    assert [a.advertiser_id for a in ledger.advertisers()] == sorted(["m\u00fcller", "\u6771\u4eac\u30ac\u30b9",
                                                                      "\u0434\u0435\u043c\u043e"])


def test_a_tiny_epsilon_is_refused_before_the_charge():
    """E2: ε = 1e-320 was charged and then crashed dividing by zero."""
    _, _, spec = _world("base")
    with pytest.raises(ParameterError, match="epsilon must be at least"):
        adtarget.ReleaseSpec(advertiser="acme", segment_ids=spec.segment_ids, epsilon=1e-320, breakdowns=())
    with pytest.raises(ParameterError, match="at least"):
        PrivacyBudget(1e-320)


def test_dp_kmeans_says_not_how_many_persons_there_are():
    """E1: the error named the exact number of eligible persons."""
    import numpy as np

    with pytest.raises(ParameterError) as caught:
        adtarget.DPKMeansSegmenter(5, epsilon=1.0, ledger=adtarget.InMemoryAccountant()).fit(np.ones((3, 2)) / 2)
    assert "3" not in str(caught.value).replace("n_clusters=5", "")


@pytest.mark.spark
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::FutureWarning")  # pyspark on pandas 3
def test_the_spark_task_never_reaches_the_callers_dataframe(tmp_path):
    """B4: an instance attribute ``repartition`` on the caller's DataFrame received the task, and with it the
    key that seals the executors' results."""
    pytest.importorskip("pyspark")
    import pyarrow as pa
    import pyarrow.parquet as pq
    from _consent_fixtures import snapshot_of
    from test_document_audit import _events, _groups, _safe

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    groups = _groups(400)
    pz = adtarget.Pseudonymizer(bytes(range(32)))
    with adtarget.SparkEngine(master="local[1]", partitions=2) as engine:
        events = _events(groups)
        pq.write_table(pa.table({k: pa.array(list(v)) for k, v in events.items()}), tmp_path / "e.parquet")
        frame = engine.session.read.parquet(str(tmp_path / "e.parquet"))
        seen = []
        frame.repartition = lambda *a, **k: seen.append(a) or pytest.fail("the caller's method was called")
        frame.select = lambda *a, **k: seen.append(a) or pytest.fail("the caller's method was called")
        settings = adtarget.RunSettings(advertiser="acme", epsilon=1.0, policy=adtarget.EligibilityPolicy(unknown_age="include"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", adtarget.PrivacyLeakWarning)
            result = adtarget.run(frame, snapshot_of(pz, {p: {} for p in groups}, END), pseudonymizer=pz,
                                  budget=BudgetLedger(":memory:", advertisers=["acme"]), settings=settings,
                                  engine=engine, window_end=END, safe_taxonomy=_safe(), random_state=1)
    assert not seen and result.report.segments


# --- red-team of the v2 release path (issue 17) ------------------------------------------------------------------
def _small_release():
    from _release_fixtures import assignments_for, gate, world_rows

    rows, people = world_rows(seed=3, n_persons=300)
    eligible = gate(rows, people)
    return eligible, assignments_for(eligible)


def test_a_key_pre_charged_with_a_cheaper_accounting_is_refused_by_the_release():
    """C1: charging a release's own query key first with an accounting that prices it at nearly nothing, then
    releasing, emitted fresh reports of ε = 50 each against a cap of 4."""
    from adtarget.budget import ReleaseAccounting
    from adtarget.exceptions import ParameterError
    from adtarget.reports import count_cells
    from adtarget.reports._release import query_key

    eligible, assignments = _small_release()
    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    spec = adtarget.ReleaseSpec("acme", assignments.segment_ids, epsilon=3.0, breakdowns=(), salt="s")
    key = query_key(spec, count_cells(eligible, assignments, spec).facts)
    ledger.charge("acme", adtarget.PrivacyBudget(3.0), key, accounting=ReleaseAccounting(pure_epsilons=(1e-9,)))
    with pytest.raises(ParameterError, match="another accounting"):
        adtarget.release(eligible, assignments, spec, ledger=ledger)


def test_a_repeated_key_must_have_charged_the_definitions_it_names():
    from adtarget.exceptions import ParameterError

    ledger = BudgetLedger(":memory:", advertisers=["acme"])
    ledger.charge_definition("dp-kmeans:m1", adtarget.PrivacyBudget(2.0))
    ledger.charge("acme", adtarget.PrivacyBudget(1.0), "rq-x")
    with pytest.raises(ParameterError, match="without the DP-derived definition"):
        ledger.charge("acme", adtarget.PrivacyBudget(1.0), "rq-x",
                      definitions=[("dp-kmeans:m1", adtarget.PrivacyBudget(2.0))])


@pytest.mark.parametrize("field, value", [("epsilon", "float"), ("size_share", "float"),
                                          ("false_segment_rate", "float"), ("max_segments_per_person", "int"),
                                          ("min_reported_size", "int")])
def test_number_subclasses_never_reach_the_noise(field, value):
    """C3: a float subclass answered the spec's checks with 0.5 and the noise with 60."""
    from adtarget.exceptions import ParameterError

    class Sly(float if value == "float" else int):  # type: ignore[misc]
        pass

    plain = {"epsilon": 1.0, "size_share": 0.6, "false_segment_rate": 1e-6, "max_segments_per_person": 5,
             "min_reported_size": 50}[field]
    with pytest.raises(ParameterError, match=field):
        adtarget.ReleaseSpec("acme", ["iab-2.2:1"], **{"epsilon": 1.0, "breakdowns": (), field: Sly(plain)})
    if value == "float":
        with pytest.raises(ParameterError, match="epsilon"):
            adtarget.PrivacyBudget(Sly(1.0), 0.0)


@pytest.mark.parametrize("field", ["min_age", "adult_age"])
def test_an_int_subclass_cannot_lower_the_policy_ages(field):
    from adtarget.exceptions import ParameterError

    class Age(int):
        __lt__ = __gt__ = lambda s, o: False  # noqa: E731
        __le__ = __ge__ = lambda s, o: True  # noqa: E731

    with pytest.raises(ParameterError, match=field):
        adtarget.EligibilityPolicy(**{field: Age(0)})


def test_jurisdiction_rules_match_case_and_subdivisions():
    policy = adtarget.EligibilityPolicy(jurisdiction_min_age={"kr": 14}, jurisdiction_adult_age={"US": 21})
    assert dict(policy.jurisdiction_min_age) == {"KR": 14}
    from test_minors import _eligible, _restricted_events_per_person, _world

    for code in ("US", "US-CA", "us"):
        rows, people = _world([19, 30], [code, "DE"], 1)
        kept = _restricted_events_per_person(_eligible(rows, people, policy))
        assert sorted(kept.values())[0] == 0, code  # the 19-year-old keeps no restricted event
    for code in ("KR", "KR-11", "kr"):
        rows, people = _world([13, 30], [code, "DE"], 1)
        assert _eligible(rows, people, policy).n_persons == 1, code  # the 13-year-old is excluded


def test_epsilon_for_gives_an_epsilon_at_which_the_segment_is_shown():
    plan_eps = adtarget.epsilon_for(0.2, 300, breakdowns=())
    plan = adtarget.accuracy(plan_eps, breakdowns=())
    assert plan.size_threshold <= 300 - plan.size_half_width
