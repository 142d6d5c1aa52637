"""The Spark engine against the numpy reference: identical aggregates (row accounting, exclusions per rule,
cell counts) on random synthetic inputs with opted-out, under-age, deleted and no-consent persons, sensitive
rows and quarantined rows, for 1, 2 and 7 partitions of persons; identical reports from the same noise seed.
The executors adopt the driver's sealing secret, so the CellCounts they return unpickle as genuine on the
driver, and a result sealed under another secret or edited on the way is refused; ``run`` takes only
adtarget's own engines. One SparkSession (``local[2]``) for the module, created by the engine and stopped at
the end.
"""

from __future__ import annotations

import dataclasses
import pickle
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtarget import LocalEngine, SparkEngine
from adtarget._core._provenance import adopt_secret, process_secret
from adtarget.engine import Aggregates, BuildContext, Engine
from adtarget.engine._spark import PartitionTask, _load, _run
from adtarget.exceptions import (
    InputFormatError,
    ParameterError,
    ProvenanceError,
    RefusedColumnError,
    SchemaError,
)
from adtarget.reports import CellCounts

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
    pytest.mark.skipif(shutil.which("java") is None,
                       reason="Java is missing: the Spark engine needs a JVM (CI has OpenJDK 17)"),
]

KEY = bytes(range(7, 39))
N_EVENTS = 2_500
SPARK_SHARES = {  # more of every exclusion than the defaults, so each rule is exercised at this size
    "opt_out_share": 0.12, "under_13_share": 0.06, "deleted_or_terminated_share": 0.06,
    "location_deleted_share": 0.08, "no_consent_share": 0.03, "unknown_birth_year_share": 0.04,
    "sensitive_share": 0.08,
}


# --- data ------------------------------------------------------------------------------------------------------
def _bad_rows(person_ids: np.ndarray, end: int, rng: np.random.Generator) -> dict[str, list]:
    """One row per quarantine reason (plus a null id), on existing persons so they share their partitions."""
    n = 11
    who = [int(p) for p in rng.choice(person_ids, n)]
    rows = {
        "person_id": [None, *who[1:]],
        "service": ["video", None, "fax", "news", "news", "news", "news", "news", "news", "news", "news"],
        "ts": [end - 100] * 6 + [end + 86_400 * 30, 0, end - 100, end - 100, end - 100],
        "category": ["1", "1", "1", None, "no-such-node", "1", "1", "1", "1", "1", "1"],
        "kind": ["search"] * 8 + ["walk", "search", "search"],
        "region": ["US-CA"] * 9 + ["48.8566,2.3522", "x!"],
        "weight": [1.0] * 5 + [-1.0, float("nan"), 1.0, 1.0, 1.0, 1.0],
    }
    return rows


def make_case(tmp: Path, seed: int, n_events: int = N_EVENTS, *, ts_type: str = "int64"):
    """Events Parquet (synthetic + bad rows, shuffled) and a BuildContext over a ledger snapshot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from adtarget import (
        ConsentLedger,
        Pseudonymizer,
        ReleaseSpec,
        SafeTaxonomy,
        SegmentCatalog,
        SensitivityProfile,
        ServiceRegistry,
        Taxonomy,
    )
    from adtarget.synth import SyntheticConfig, generate, write_consent

    config = SyntheticConfig(n_events=n_events, seed=seed, **SPARK_SHARES)
    data = generate(config)
    rng = np.random.default_rng(seed)
    columns = {k: list(v.tolist()) for k, v in data.events.items()}
    for name, values in _bad_rows(data.events["person_id"], config.end, rng).items():
        columns[name] += values
    order = rng.permutation(len(columns["person_id"]))
    table = pa.table({k: pa.array([v[i] for i in order]) for k, v in columns.items()})
    if ts_type == "timestamp":
        table = table.set_column(2, "ts", table.column("ts").cast(pa.timestamp("s", tz="UTC")))
    events = tmp / f"events-{seed}-{ts_type}.parquet"
    pq.write_table(table, events, row_group_size=700)

    pseudonymizer = Pseudonymizer(KEY)
    ledger = ConsentLedger(tmp / f"consent-{seed}.sqlite", pseudonymizer)
    ledger.import_parquet(write_consent(data, tmp / f"consent-{seed}.parquet"), now=config.end)
    safe = SafeTaxonomy(Taxonomy.default(), SensitivityProfile.named("default"))
    catalog = SegmentCatalog.default(safe, k=3)
    ids = [s.segment_id for s in catalog.segments]
    spec = ReleaseSpec(advertiser="acme", segment_ids=[ids[i] for i in sorted(rng.choice(len(ids), 40, False))],
                       epsilon=1.0, delta=1e-6, max_segments_per_person=3, max_cells_per_person={"service": 2},
                       min_reported_size=2)
    context = BuildContext(pseudonymizer=pseudonymizer, snapshot=ledger.snapshot(as_of=config.end),
                           safe_taxonomy=safe, services=ServiceRegistry.synthetic(), segmenter=catalog, spec=spec,
                           now=float(config.end + 3_600))
    ledger.close()
    return events, context


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("spark")


@pytest.fixture(scope="module")
def cases(workdir):
    cache: dict[tuple, tuple] = {}

    def get(seed: int, ts_type: str = "int64"):
        if (seed, ts_type) not in cache:
            cache[seed, ts_type] = make_case(workdir, seed, ts_type=ts_type)
        return cache[seed, ts_type]

    return get


@pytest.fixture(scope="module")
def spark():
    """The module's session, created lazily by an engine (the code path users get) and stopped at the end."""
    from pyspark.sql import SparkSession

    owner = SparkEngine(master="local[2]", app_name="adtarget-tests")
    session = owner.session
    yield session
    owner.stop()
    assert SparkSession.getActiveSession() is None


# --- exact comparison --------------------------------------------------------------------------------------
def assert_same(a, b, where: str = "aggregates") -> None:
    """Field by field, exact: arrays by dtype and value, mappings by keys and values (a mapping's key order
    is not compared: a sum of partitions sorts keys), dataclasses by fields, CellCounts by their public
    attributes (sealed: they are equal only to themselves)."""
    if isinstance(a, CellCounts):
        assert type(b) is CellCounts, where
        for name in CELL_FIELDS:
            assert_same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == np.asarray(b).dtype and np.array_equal(a, b), where
    elif isinstance(a, Mapping):
        assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"  # order is not data
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


CELL_FIELDS = ("segment_ids", "sizes", "values", "cells", "value_persons", "n_persons", "bounds", "facts")


def test_assert_same_can_fail(cases):
    """Counts of two builds are compared attribute by attribute (CellCounts cannot be edited to make a pair)."""
    events, context = cases(0)
    one = LocalEngine().aggregate(events, context)
    assert_same(one, LocalEngine().aggregate(events, context))
    other = LocalEngine().aggregate(*cases(1))
    with pytest.raises(AssertionError, match="cells"):
        assert_same(one.cells, other.cells, "cells")
    with pytest.raises(AssertionError, match="input_rows"):
        assert_same(one, dataclasses.replace(one, input_rows=one.input_rows + 1))


# --- Spark equals the reference ----------------------------------------------------------------------------
@pytest.mark.parametrize("seed, partitions", [(0, 1), (0, 2), (0, 7), (1, 7), (2, 2)])
def test_spark_aggregates_equal_local_exactly(spark, cases, seed, partitions):
    events, context = cases(seed)
    local = LocalEngine().aggregate(events, context)
    engine = SparkEngine(spark, partitions=partitions)
    result = engine.aggregate(events, context)
    assert_same(result, local)
    summary = result.summary()
    assert summary["rows"]["quarantined"] >= 10 and summary["excluded"]["sensitive_category"] > 0
    for rule in ("opted_out", "under_min_age", "no_consent_record", "service_not_permitted"):
        assert summary["excluded"][rule] > 0, rule
    assert engine.last_run["nonempty_partitions"] <= partitions


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2), n=st.integers(1, 9), batch=st.integers(1, 3_000), salt=st.integers(0, 2**31))
def test_any_split_by_person_sums_to_the_local_result(cases, seed, n, batch, salt):
    """Property behind the engine, without Spark: any partition of persons, cut into any Arrow batch size and
    run through the executors' code (``PartitionTask``), sums to the local engine's aggregates exactly."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pyspark import cloudpickle

    events, context = cases(seed)
    table = pq.read_table(events)
    ids = pc.fill_null(table.column("person_id"), -1).to_numpy()
    part = (ids * 2_654_435_761 + salt) % n
    task = PartitionTask(cloudpickle.dumps(context), process_secret())
    results = []
    for i in range(n):
        rows = table.filter(part == i)
        results += [_load(r.column(0)[0].as_py()) for r in task(iter(rows.to_batches(max_chunksize=batch)))]
    assert 1 <= len(results) <= n
    assert_same(Aggregates.sum(r[0] for r in results), LocalEngine().aggregate(events, context))


def test_timestamp_typed_ts_and_target_service(spark, cases):
    events, context = cases(3, "timestamp")
    context = dataclasses.replace(context, target_service="video")
    local = LocalEngine().aggregate(events, context)
    assert local.excluded["cross_service_not_permitted"] > 0
    assert_same(SparkEngine(spark, partitions=3).aggregate(events, context), local)


def test_dataframe_input_with_unknown_column_dropped(spark, cases):
    from pyspark.sql import functions as F

    events, context = cases(0)
    context = dataclasses.replace(context, drop_unknown_columns=True)
    frame = spark.read.parquet(str(events)).withColumn("campaign", F.lit("spring"))
    expected = LocalEngine().aggregate(events, context)
    assert_same(SparkEngine(partitions=2).aggregate(frame, context), expected)


def test_more_partitions_than_persons_and_empty_input(spark, workdir, cases):
    import pyarrow.parquet as pq

    events, context = cases(0)
    table = pq.read_table(events)
    two = table.filter(np.isin(table.column("person_id").to_numpy(zero_copy_only=False),
                               table.column("person_id").to_numpy(zero_copy_only=False)[:2]))
    for name, part in (("two-persons", two), ("empty", table.slice(0, 0))):
        path = workdir / f"{name}.parquet"
        pq.write_table(part, path)
        engine = SparkEngine(spark, partitions=7)
        assert_same(engine.aggregate(path, context), LocalEngine().aggregate(path, context), name)
        assert engine.last_run["nonempty_partitions"] <= 2


def test_reports_identical_with_the_same_noise_seed(spark, cases, workdir):
    """The lead's pipeline (engine.aggregate, then release on the driver) gives the same report with either
    engine when the noise seed is the same (``created_at`` is the clock's, so it is left out)."""
    import json

    from adtarget import BudgetLedger, PrivacyLeakWarning, RunSettings, run

    events, context = cases(1)
    documents, summaries = [], []
    for name, engine in (("local", LocalEngine()), ("spark", SparkEngine(spark, partitions=3))):
        with pytest.warns(PrivacyLeakWarning):
            result = run(events, context.snapshot, pseudonymizer=context.pseudonymizer,
                         budget=BudgetLedger(workdir / f"budget-{name}.sqlite", advertisers=["acme"]),
                         settings=RunSettings(advertiser="acme", min_reported_size=3, false_segment_rate=0.2),
                         segmenter=context.segmenter, safe_taxonomy=context.safe_taxonomy,
                         services=context.services, window_end=context.window_end, engine=engine,
                         random_state=11)
        document = json.loads(result.report.to_json())
        document.pop("created_at")  # the report id is drawn from the seed: the same with either engine
        documents.append(document)
        summaries.append({k: v for k, v in result.summary.items() if k != "engine"})
    assert documents[0] == documents[1]
    assert summaries[0] == summaries[1]
    assert documents[0]["segments"], "the comparison needs released segments"


# --- errors at the boundary, before any task runs ------------------------------------------------------------
def test_refused_and_missing_columns_are_raised_on_the_driver(spark, cases):
    from pyspark.sql import functions as F

    events, context = cases(0)
    frame = spark.read.parquet(str(events))
    with pytest.raises(RefusedColumnError, match="user_email"):
        SparkEngine(spark).aggregate(frame.withColumn("user_email", F.lit("a@b.c")), context)
    with pytest.raises(SchemaError, match="missing required column"):
        SparkEngine(spark).aggregate(frame.drop("category"), context)


def test_bad_inputs_and_parameters(spark, cases, workdir):
    events, context = cases(0)
    engine = SparkEngine(spark)
    with pytest.raises(InputFormatError, match="does not exist"):
        engine.aggregate(workdir / "nope.parquet", context)
    with pytest.raises(InputFormatError, match="reads Parquet"):
        engine.aggregate(workdir / "events.csv", context)
    with pytest.raises(SchemaError, match="received dict"):
        engine.aggregate({"person_id": [1]}, context)
    with pytest.raises(ParameterError, match="context"):
        engine.aggregate(events, object())
    for bad in (0, -2, 2.5, True):
        with pytest.raises(ParameterError, match="partitions"):
            SparkEngine(partitions=bad)
    with pytest.raises(ParameterError, match="master"):
        SparkEngine(master="")


def test_kernel_error_on_an_executor_is_reraised_with_its_type(spark, cases):
    from pyspark.sql import functions as F

    events, context = cases(0)
    frame = spark.read.parquet(str(events)).withColumn("person_id", F.lit(True))
    with pytest.raises(SchemaError) as local_error:
        LocalEngine().aggregate(frame.toArrow(), context)
    with pytest.raises(type(local_error.value)) as spark_error:
        SparkEngine(spark, partitions=2).aggregate(frame, context)
    assert str(spark_error.value) == str(local_error.value)


# --- contract and privacy of what crosses the wire ---------------------------------------------------------
def test_engine_protocol_and_session_ownership(spark):
    engine = SparkEngine()
    assert isinstance(engine, Engine) and engine.name == "spark"
    assert engine.session is spark  # joins the active session, does not own it
    engine.stop()
    assert spark.range(3).count() == 3


def test_no_key_in_reprs_and_no_pseudonym_in_partition_results(cases):
    import pyarrow.parquet as pq
    from pyspark import cloudpickle

    from adtarget import ingest
    from adtarget.events._pseudonym import pseudonyms_to_hex

    events, context = cases(2)
    blob = cloudpickle.dumps(context)
    assert KEY in blob  # the context carries the key to the executors (docs/spark.md) ...
    secret = process_secret()
    task = PartitionTask(blob, secret)
    for text in (repr(task), repr(SparkEngine(partitions=2)), repr(context)):
        for hidden in (KEY, secret):
            assert hidden.hex() not in text and str(hidden) not in text
        assert "\\x07\\x08" not in text
    assert "not shown" in repr(task)
    payload = _run(pq.read_table(events), blob, secret)
    assert KEY not in payload and secret not in payload  # ... but nothing the executors return holds them
    persons = ingest(events, pseudonymizer=context.pseudonymizer, now=context.now).batch.persons
    assert persons.size > 50
    raw = persons.astype("<u8").tobytes()
    hexes = pseudonyms_to_hex(persons)
    for i in range(persons.size):
        assert raw[8 * i: 8 * i + 8] not in payload
        assert hexes[i].encode() not in payload
    assert pickle.loads(payload)[0] == "ok"


_CONNECT_CHECK = """
import os, sys, tempfile, warnings
from pathlib import Path
sys.path.insert(0, {tests!r})
os.environ["PYSPARK_PYTHON"] = sys.executable
warnings.filterwarnings("ignore", category=FutureWarning)
from pyspark.sql import SparkSession
from test_spark_engine import assert_same, make_case
from adtarget.engine._protocol import LocalEngine
from adtarget.engine._spark import SparkEngine
events, context = make_case(Path(tempfile.mkdtemp()), 4)
spark = SparkSession.builder.remote("local[2]").config("spark.sql.session.timeZone", "UTC").getOrCreate()
assert type(spark).__module__.startswith("pyspark.sql.connect")
local = LocalEngine().aggregate(events, context)
assert_same(SparkEngine(spark, partitions=3).aggregate(str(events), context), local)
assert_same(SparkEngine(partitions=2).aggregate(spark.read.parquet(str(events)), context), local)
spark.stop()
print("connect-equal")
"""


@pytest.mark.slow
def test_spark_connect_aggregates_equal_local(tmp_path):
    """Under Spark Connect (a local ``sc://`` server in a fresh process) the engine gives the same aggregates.
    Needs the Connect client packages (``pip install 'pyspark[connect]'``), which the dev extra does not pull."""
    import subprocess
    import sys

    for module in ("grpc", "grpc_status", "google.protobuf", "zstandard"):
        pytest.importorskip(module, reason=f"Spark Connect client package {module!r} is not installed")
    script = _CONNECT_CHECK.format(tests=str(Path(__file__).parent))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "connect-equal" in done.stdout, done.stderr[-3000:]


# --- sealed results across the wire, and only adtarget's engines --------------------------------------------
def test_partition_results_are_genuine_only_under_the_drivers_secret(cases):
    """An executor adopts the driver's secret from its task, so the CellCounts it returns load as genuine
    (releasable) on the driver; a result sealed under another secret, or edited on the way, is refused."""
    import pyarrow.parquet as pq
    from pyspark import cloudpickle

    events, context = cases(2)
    table, blob, driver = pq.read_table(events), cloudpickle.dumps(context), process_secret()
    aggregates, _ = _load(_run(table, blob, driver))
    assert type(aggregates.cells) is CellCounts and aggregates.cells.sizes.sum() > 0
    try:
        foreign = _run(table, blob, bytes(32))  # an executor that did not get the driver's secret
    finally:
        adopt_secret(driver)  # _run adopts its task's secret in this process: give the driver its own back
    with pytest.raises(ProvenanceError, match="CellCounts: this pickle was not sealed by this process"):
        _load(foreign)
    payload = _run(table, blob, driver)
    at = payload.index(np.asarray(aggregates.cells.sizes).tobytes())
    with pytest.raises(ProvenanceError, match="not sealed by this process"):
        _load(payload[:at] + bytes([payload[at] ^ 1]) + payload[at + 1:])
    with pytest.raises(ProvenanceError, match="secret"):
        PartitionTask(blob, b"short")(iter([table.to_batches()[0]])).__next__()


def test_run_accepts_only_adtargets_engines(cases):
    from adtarget import BudgetLedger, run

    events, context = cases(0)
    budget = BudgetLedger(":memory:", advertisers=["demo-advertiser"])
    for engine in (type("MySpark", (SparkEngine,), {})(partitions=2), type("Duck", (), {"aggregate": len})()):
        with pytest.raises(ParameterError, match=f"engine must be adtarget's LocalEngine or SparkEngine, got "
                                                 f"{type(engine).__name__}"):
            run(events, context.snapshot, pseudonymizer=context.pseudonymizer, budget=budget, engine=engine)
    assert budget.remaining("demo-advertiser")[0].epsilon == 4.0
