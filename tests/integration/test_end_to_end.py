"""End to end on generated data: two daily deliveries, an incremental second day, an idempotent rerun,
and the published tables of contract section 3 with their contract columns."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from pipelines import io
from pipelines.jobs.daily import run_daily

pytestmark = pytest.mark.slow

CONTRACT = {
    ("silver", "consent_state"): {"customer_id", "purpose", "granted", "effective_since", "as_of"},
    ("gold", "tv_profiles"): {"customer_id", "age_band", "gender", "language", "postal_code", "interests", "as_of"},
    ("gold", "web_profiles"): {"customer_id", "age_band", "gender", "language", "postal_code", "interests",
                               "cookie_id", "mobile_ad_id", "as_of"},
    ("gold", "segment_membership"): {"segment", "channel", "customer_id", "as_of"},
    ("gold", "segment_stats"): {"segment", "channel", "audience_size", "as_of"},
    ("gold", "adsdata_export"): {"pseudo_id", "key_id", "expires_at", "age_band", "gender", "language", "region",
                                 "interests", "segments", "as_of"},
    ("gold", "adsdata_revocations"): {"pseudo_id", "key_id", "reason", "as_of"},
    ("gold", "geo_profiles"): {"area_level", "area_code", "n_customers", "as_of"},
    ("ops", "quarantine"): {"source", "reason", "raw", "run_id", "as_of"},
    ("ops", "dq_results"): {"run_id", "table", "expectation", "success", "observed_value", "severity", "as_of"},
    ("ops", "runs"): {"run_id", "as_of", "started", "finished", "status", "mlflow_run_id"},
}


def snapshot(spark, wh: io.Warehouse, layer: str, name: str):
    df = io.read(spark, wh.table(layer, name))
    drop = [c for c in df.columns if c in ("run_id", "_run_id", "delivered_at", "label_path", "_ingested_at")]
    return sorted(tuple(str(v) for v in r) for r in df.drop(*drop).collect())


@pytest.fixture(scope="module")
def e2e(pipeline_run):
    r = pipeline_run
    return {"landing": r.landing, "wh": r.wh, "first": r.first, "second": r.second, "end": r.second.as_of}


@pytest.fixture(scope="module")
def keyring(e2e_keyring):
    return e2e_keyring


def test_second_day_ingests_only_that_days_files(spark, e2e):
    files = io.read(spark, e2e["wh"].table("ops", "ingested_files"))
    second = [r.file for r in files.where(F.col("run_id") == e2e["second"].run_id).collect()]
    assert second, "the second delivery brought files"
    assert all(f"date={e2e['end'].isoformat()}" in f for f in second), second
    first = [r.file for r in files.where(F.col("run_id") == e2e["first"].run_id).collect()]
    assert not any(f"date={e2e['end'].isoformat()}" in f for f in first)


def test_published_tables_hold_contract_columns(spark, e2e):
    for (layer, name), columns in CONTRACT.items():
        df = io.read(spark, e2e["wh"].table(layer, name))
        assert columns <= set(df.columns), f"{layer}/{name} lacks {columns - set(df.columns)}"
        # Contract section 3: every table has an as_of date column.
        assert df.schema["as_of"].dataType.simpleString() == "date", f"{layer}/{name}: as_of is not a date"


def test_quarantine_counts_every_bad_row(spark, e2e):
    q = io.read(spark, e2e["wh"].table("ops", "quarantine"))
    assert q.count() > 0
    assert q.where(F.col("reason").isNull() | F.col("raw").isNull()).count() == 0
    runs = {r.run_id: r.as_of for r in io.read(spark, e2e["wh"].table("ops", "runs")).collect()}
    assert {(r.run_id, r.as_of) for r in q.select("run_id", "as_of").distinct().collect()} <= set(runs.items())
    metrics = e2e["first"].metrics
    ingested = io.read(spark, e2e["wh"].table("ops", "ingested_files")).where(F.col("run_id") == e2e["first"].run_id)
    assert sum(r.quarantined for r in ingested.collect()) == sum(
        v for k, v in metrics.items() if k.startswith("ingest.") and k.endswith(".quarantined"))


def test_no_minor_and_no_erased_person_in_any_profile(spark, e2e):
    wh = e2e["wh"]
    elig = io.read(spark, wh.table("silver", "eligibility"))
    bad = elig.where(~F.col("adult") | F.col("erased")).select("customer_id")
    for name in ("tv_profiles", "web_profiles", "segment_membership"):
        assert io.read(spark, wh.table("gold", name)).join(bad, "customer_id", "left_semi").count() == 0, name


def test_rerunning_a_date_changes_nothing(spark, settings, e2e, keyring):
    wh = e2e["wh"]
    tables = [("silver", "consent_state"), ("silver", "customers"), ("silver", "tv_viewing"), ("ops", "quarantine"),
              ("gold", "tv_profiles"), ("gold", "web_profiles"), ("gold", "segment_membership"),
              ("gold", "segment_stats"), ("gold", "geo_profiles"), ("gold", "adsdata_export")]
    before = {t: snapshot(spark, wh, *t) for t in tables}
    again = run_daily(spark, settings, e2e["landing"], wh.root, e2e["end"], keyring,
                      now=datetime(2026, 11, 25, 7, tzinfo=timezone.utc))
    assert again.status == "succeeded"
    assert all(v == 0 for k, v in again.metrics.items() if k.startswith("ingest.") and k.endswith(".files"))
    for t in tables:
        assert snapshot(spark, wh, *t) == before[t], f"{t} changed on rerun"
    runs = io.read(spark, wh.table("ops", "runs")).where(F.col("as_of") == e2e["end"]).collect()
    assert {r.status for r in runs} == {"succeeded"} and len(runs) == 2
