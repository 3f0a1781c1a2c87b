"""The profiles stage on a Delta warehouse: incremental daily aggregates, C4 verdict table, outputs, no Python in plans."""
from __future__ import annotations

import io as _io
import re
from contextlib import redirect_stdout
from datetime import date, datetime, timezone

import pytest
from delta.tables import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import ProfileSettings
from pipelines.consent.tcf import encode, tcf_verdicts
from pipelines.jobs.daily import RunContext, record_run
from pipelines.profiles.build import (
    TCF_VERDICTS,
    TV_DAILY,
    TV_PROFILE_COLUMNS,
    WEB_DAILY,
    WEB_PROFILE_COLUMNS,
    build_profiles,
    profile_references,
    read_inputs,
    stage_profiles,
)
from pipelines.profiles.tv import tv_daily_genre_minutes
from pipelines.profiles.web import tc_hash, web_daily_category_events
from pipelines.progress import Progress
from pipelines.schemas import INTEREST, silver_schema

UTC = timezone.utc
TZ = "Europe/Brussels"
DAY1, DAY2 = date(2026, 3, 30), date(2026, 3, 31)
TC_OK = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, created=datetime(2026, 1, 1, tzinfo=UTC))
TC_OK_2 = encode(purposes_consent={1, 2, 3, 4}, vendor_consents={4242}, created=datetime(2026, 2, 1, tzinfo=UTC))
TC_BAD = encode(purposes_consent={1, 3}, vendor_consents={4242}, created=datetime(2026, 1, 1, tzinfo=UTC))
PYTHON_NODES = ("PythonUDF", "BatchEvalPython", "ArrowEvalPython", "MapInPandas", "PythonMapInArrow",
                "FlatMapGroupsInPandas", "AggregateInPandas", "WindowInPandas", "FlatMapCoGroupsInPandas")


def silver_rows(spark, source: str, rows: list[dict], run_id: str) -> DataFrame:
    schema = silver_schema(source)
    lineage = {"_source_file": "test", "_line": 0, "_run_id": run_id, "_ingested_at": datetime(2026, 4, 1, tzinfo=UTC)}
    return spark.createDataFrame([tuple({**lineage, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


def view(vid: str, cid: str, genre: str, minutes: int, ts: datetime, subgenre: str | None = None) -> dict:
    return {"view_id": vid, "customer_id": cid, "platform": "decoder", "genre": genre, "subgenre": subgenre,
            "start_ts": ts, "duration_s": minutes * 60}


def event(eid: str, cookie: str, content: str, tc: str | None, ts: datetime) -> dict:
    return {"event_id": eid, "cookie_id": cookie, "ts": ts, "event_type": "page_view",
            "content_category_id": content, "tc_string": tc}


def plan_of(df: DataFrame) -> str:
    buffer = _io.StringIO()
    with redirect_stdout(buffer):
        df.explain(extended=True)
    return buffer.getvalue()


def python_nodes(plan: str) -> list[str]:
    return [node for node in PYTHON_NODES if re.search(rf"\b{node}\b", plan)]


@pytest.fixture(scope="module", autouse=True)
def _tiny_data(tiny_data_spark):
    """Small-input Spark settings for this module (see ``tiny_data_spark`` in tests/conftest.py)."""


@pytest.fixture(scope="module")
def cfg(settings):
    return settings.replace(timezone=TZ, profiles=ProfileSettings(
        epoch=date(2026, 1, 1), half_life_days=30.0, lookback_days=(28, 91), min_tv_minutes=30.0,
        min_web_events=1.0, min_lift=1.0, max_interests=20,
        web_event_weights={"page_view": 1.0}, loyalty_weight=2.0, purchase_lookback_days=365, purchase_weight=5.0))


@pytest.fixture(scope="module")
def elig(spark):
    # C objected to TV personalisation (not eligible); A and B are eligible for both profiles.
    return spark.createDataFrame([("A", 40, True, True), ("B", 40, True, True), ("C", 40, False, False)],
                                 "customer_id string, age int, eligible_tv_profile boolean, eligible_web_profile boolean")


def _context(spark, cfg, root, as_of: date, run_id: str, full_refresh: bool = False) -> RunContext:
    ctx = RunContext(spark, cfg, io.Warehouse(root), root / "landing", as_of, run_id,
                     datetime(2026, 4, 1, tzinfo=UTC), keys=None, progress=Progress(quiet=True),
                     full_refresh=full_refresh)
    record_run(ctx, "running")  # ops/runs knows the run, as run_daily does
    return ctx


def _append(spark, root, source: str, rows: list[dict], run_id: str) -> None:
    io.append(silver_rows(spark, source, rows, run_id), io.Warehouse(root).table("silver", source))


@pytest.fixture(scope="module")
def two_days(spark, cfg, elig, tmp_path_factory):
    """Run 1 ingests day 1, run 2 ingests day 2 (plus a late view of day 1); the stage runs after each."""
    root = tmp_path_factory.mktemp("wh")
    _append(spark, root, "customers", [
        {"customer_id": c, "birth_date": date(1986, 1, 1), "gender": "M", "language": "nl", "address_id": f"a-{c}",
         "postal_code": "2000", "customer_type": "residential", "tv_subscription": True,
         "internet_subscription": True, "mobile_subscription": True, "updated_at": datetime(2026, 1, 1, tzinfo=UTC)}
        for c in ("A", "B", "C")], "run-1")
    _append(spark, root, "identity_links", [
        {"customer_id": "A", "id_type": "cookie_id", "id_value": "ck-a", "authenticated_at": datetime(2026, 1, 5, tzinfo=UTC)},
        {"customer_id": "B", "id_type": "cookie_id", "id_value": "ck-b", "authenticated_at": datetime(2026, 1, 5, tzinfo=UTC)},
    ], "run-1")
    _append(spark, root, "tv_viewing", [
        view("v1", "A", "Sports", 60, datetime(2026, 3, 30, 19, tzinfo=UTC), "Football"),
        view("v2", "B", "Drama", 90, datetime(2026, 3, 30, 20, tzinfo=UTC)),
        view("v3", "C", "Cooking", 300, datetime(2026, 3, 30, 20, tzinfo=UTC)),
    ], "run-1")
    _append(spark, root, "web_events", [
        event("w1", "ck-a", "1", TC_OK, datetime(2026, 3, 30, 9, tzinfo=UTC)),
        event("w2", "ck-b", "52", TC_BAD, datetime(2026, 3, 30, 9, tzinfo=UTC)),
    ], "run-1")
    ctx1 = _context(spark, cfg, root, DAY1, "run-1")
    stage_profiles(ctx1, elig)
    first = {name: df.collect() for name, df in ctx1.outputs.items()}
    tv_daily_1 = io.read(spark, ctx1.wh.table("silver", TV_DAILY)).collect()

    _append(spark, root, "tv_viewing", [
        view("v4", "A", "Drama", 30, datetime(2026, 3, 31, 19, tzinfo=UTC)),           # new day for A
        view("v5", "B", "Drama", 30, datetime(2026, 3, 30, 21, tzinfo=UTC)),           # late row, B's day 1
    ], "run-2")
    _append(spark, root, "web_events", [
        event("w3", "ck-b", "52", TC_OK_2, datetime(2026, 3, 31, 9, tzinfo=UTC)),      # a new TC string
        event("w4", "ck-a", "1", TC_OK, datetime(2026, 3, 31, 9, tzinfo=UTC)),
    ], "run-2")
    ctx2 = _context(spark, cfg, root, DAY2, "run-2")
    stage_profiles(ctx2, elig)
    return {"root": root, "ctx1": ctx1, "ctx2": ctx2, "first": first, "tv_daily_1": tv_daily_1,
            "tv_merge": DeltaTable.forPath(spark, str(ctx2.wh.table("silver", TV_DAILY))).history(1).collect()[0]}


def test_first_run_builds_aggregates_in_full(two_days) -> None:
    metrics = two_days["ctx1"].metrics
    assert (metrics["profiles.tv_daily.full_rebuild"], metrics["profiles.web_daily.full_rebuild"]) == (1.0, 1.0)
    # C objected: their viewing stays in the per-source aggregate for billing and anonymous reporting (C6).
    assert sorted((r.customer_id, r.day, r.genre, r.subgenre, r.minutes) for r in two_days["tv_daily_1"]) == [
        ("A", DAY1, "Sports", "football", 60.0),
        ("B", DAY1, "Drama", None, 90.0),
        ("C", DAY1, "Cooking", None, 300.0),
    ]
    tv = {r.customer_id: [(i.iab_audience_id, i.score) for i in r.interests] for r in two_days["first"]["tv_profiles"]}
    # A: Sports and Football 60 of 60 weighted minutes, population 60/150 -> lift 2.5; B: Drama 90/90 vs
    # 90/150 -> 1.6667. C (objector) has no profile and weighs in no population share.
    assert tv == {"A": [(607, 2.5), (663, 2.5)], "B": [(710, 1.6667)]}


def test_second_run_upserts_only_touched_days(spark, two_days) -> None:
    ctx2 = two_days["ctx2"]
    assert (ctx2.metrics["profiles.tv_daily.full_rebuild"], ctx2.metrics["profiles.tv_daily.pending_runs"]) == (0.0, 1.0)
    merge = two_days["tv_merge"]
    assert merge.operation == "MERGE"
    # One new (A, 31 March, Drama) row and one updated (B, 30 March, Drama) row; A's and C's 30 March untouched.
    assert (merge.operationMetrics["numTargetRowsInserted"], merge.operationMetrics["numTargetRowsUpdated"]) == ("1", "1")
    incremental = io.read(spark, ctx2.wh.table("silver", TV_DAILY))
    full = tv_daily_genre_minutes(io.read(spark, ctx2.wh.table("silver", "tv_viewing")), TZ)
    assert sorted(map(tuple, incremental.collect())) == sorted(map(tuple, full.collect()))
    assert ("B", DAY1, "Drama", None, 120.0, 2) in [tuple(r) for r in incremental.collect()]


def test_web_aggregate_and_verdicts_are_incremental(spark, two_days) -> None:
    ctx2 = two_days["ctx2"]
    assert ctx2.metrics["profiles.web_daily.new_tc_strings"] == 1.0  # only TC_OK_2 is new on day 2
    verdicts = io.read(spark, ctx2.wh.table("silver", TCF_VERDICTS))
    assert "tc_string" not in verdicts.columns  # hashes only: no consent string is kept
    assert sorted((r.tcf_ok, r.tcf_reason) for r in verdicts.collect()) == [
        (False, "missing_purpose_4"), (True, "ok"), (True, "ok")]
    events = io.read(spark, ctx2.wh.table("silver", "web_events"))
    decided = tcf_verdicts(events, vendor_id=4242).select(tc_hash(F.col("tc_string")).alias("tc_hash"), "tcf_ok")
    expected = web_daily_category_events(events, decided, TZ)
    actual = io.read(spark, ctx2.wh.table("silver", WEB_DAILY))
    assert sorted(map(tuple, actual.collect())) == sorted(map(tuple, expected.collect())) == [
        ("ck-a", None, DAY1, "1", "page_view", 1), ("ck-a", None, DAY2, "1", "page_view", 1),
        ("ck-b", None, DAY2, "52", "page_view", 1)]


def test_full_refresh_gives_the_same_aggregates(spark, cfg, elig, two_days) -> None:
    root = two_days["root"]
    wh = io.Warehouse(root)
    before = {t: sorted(map(tuple, io.read(spark, wh.table("silver", t)).collect())) for t in (TV_DAILY, WEB_DAILY)}
    ctx = _context(spark, cfg, root, DAY2, "run-3", full_refresh=True)
    stage_profiles(ctx, elig)
    assert ctx.metrics["profiles.tv_daily.full_rebuild"] == 1.0
    after = {t: sorted(map(tuple, io.read(spark, wh.table("silver", t)).collect())) for t in (TV_DAILY, WEB_DAILY)}
    assert after == before
    tv = {r.customer_id: [(i.iab_audience_id, i.score) for i in r.interests] for r in ctx.outputs["tv_profiles"].collect()}
    second = {r.customer_id: [(i.iab_audience_id, i.score) for i in r.interests]
              for r in two_days["ctx2"].outputs["tv_profiles"].collect()}
    assert tv == second


def test_outputs_follow_the_published_schema(spark, two_days) -> None:
    ctx2 = two_days["ctx2"]
    tv, web = ctx2.outputs["tv_profiles"], ctx2.outputs["web_profiles"]
    assert tuple(tv.columns) == TV_PROFILE_COLUMNS and tuple(web.columns) == WEB_PROFILE_COLUMNS
    assert tv.schema["interests"].dataType.elementType == INTEREST
    assert {f.name: f.dataType.simpleString() for f in web.schema.fields if f.name in (
        "services", "products_owned", "cookie_id", "mobile_ad_id", "tv_ad_exposures_28d", "exposed_campaigns",
        "age_band_id", "last_purchase_days", "household_size", "as_of")} == {
        "services": "array<string>", "products_owned": "array<string>", "cookie_id": "array<string>",
        "mobile_ad_id": "array<string>", "tv_ad_exposures_28d": "int", "exposed_campaigns": "array<string>",
        "age_band_id": "int", "last_purchase_days": "int", "household_size": "int", "as_of": "date"}
    assert sorted(r.customer_id for r in tv.collect()) == ["A", "B"]
    assert {r.customer_id: r.cookie_id for r in web.collect()} == {"A": ["ck-a"], "B": ["ck-b"]}
    evidence = io.read(spark, ctx2.wh.table("silver", "interest_evidence"))
    assert {r.customer_id for r in evidence.collect()} == {"A", "B"}
    assert ctx2.metrics["profiles.tv"] == 2.0 and ctx2.metrics["profiles.web"] == 2.0


def test_profile_plans_contain_no_python(spark, cfg, elig, conf_dir, two_days) -> None:
    ctx2 = two_days["ctx2"]
    # The detector works: the TC string decoder (mapInPandas) is visible in its own plan.
    assert python_nodes(plan_of(tcf_verdicts(io.read(spark, ctx2.wh.table("silver", "web_events")), vendor_id=1)))
    out = build_profiles(read_inputs(ctx2), elig, profile_references(spark, conf_dir), cfg, DAY2)
    plans = {"tv_profiles": plan_of(ctx2.outputs["tv_profiles"]), "web_profiles": plan_of(ctx2.outputs["web_profiles"]),
             "evidence": plan_of(out.evidence), "web_fresh": plan_of(out.web_profiles)}
    assert {name: python_nodes(plan) for name, plan in plans.items()} == {name: [] for name in plans}
