"""Retention (R3): exact cut-off days per period, raw lines by their own timestamp, customers erased ten years after
their contract, old Ads & Data deliveries removed, every rule reported, expired rows physically rewritten away."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pyspark.sql import functions as F

from conftest import with_deletion_vectors
from pipelines import io
from pipelines.config import RetentionSettings
from pipelines.exports.adsdata import LEDGER
from pipelines.jobs.daily import RunContext
from pipelines.progress import Progress
from pipelines.rights.erasure import has_deletion_vectors, tombstoned
from pipelines.rights.retention import (
    ADSDATA,
    RETENTION_RULES,
    TRAFFIC,
    RetentionRule,
    expired,
    expired_customers,
    last_expired_day,
    period_days,
    stage_retention,
)
from pipelines.schemas import BRONZE, QUARANTINE, silver_schema

UTC = timezone.utc
AS_OF = date(2026, 11, 25)
STARTED = datetime(2026, 11, 26, 5, tzinfo=UTC)


def _kept(spark, settings, rule: RetentionRule, df) -> list:
    return sorted(r[0] for r in df.where(~expired(rule, df, settings, AS_OF)).collect())


def test_last_expired_day_keeps_exactly_the_period():
    assert last_expired_day(AS_OF, 365) == date(2025, 11, 25)
    assert period_days(RetentionSettings(), TRAFFIC) == 365 and period_days(RetentionSettings(), ADSDATA) == 396
    with pytest.raises(ValueError, match="positive"):
        period_days(RetentionSettings(traffic_days=0), TRAFFIC)


def test_timestamps_expire_at_the_end_of_the_local_day(spark, settings):
    # 2025-11-25 ends at 23:00 UTC in Brussels (winter time): 22:59:59Z is expired, 23:00Z is 26 Nov, kept.
    df = spark.createDataFrame([("a", datetime(2025, 11, 25, 22, 59, 59, tzinfo=UTC)),
                                ("b", datetime(2025, 11, 25, 23, 0, tzinfo=UTC)),
                                ("c", datetime(2026, 11, 25, 12, tzinfo=UTC))], "id string, start_ts timestamp")
    assert _kept(spark, settings, RetentionRule("silver/tv_viewing", TRAFFIC, column="start_ts"), df) == ["b", "c"]


def test_dates_expire_on_the_last_expired_day(spark, settings):
    df = spark.createDataFrame([("a", date(2025, 11, 25)), ("b", date(2025, 11, 26))], "id string, day date")
    assert _kept(spark, settings, RetentionRule("silver/tv_daily_genre_minutes", TRAFFIC, column="day"), df) == ["b"]


def test_raw_lines_expire_by_their_own_timestamp_else_by_ingestion(spark, settings):
    old_ingest, new_ingest = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 11, 25, tzinfo=UTC)
    rows = [
        ('{"event_id": "a", "ts": "2025-11-25T23:30:00+01:00"}', new_ingest),   # 22:30Z on the 25th: expired
        ('{"event_id": "b", "ts": "2025-11-26T00:30:00+01:00"}', old_ingest),   # the 26th: kept
        ('{"event_id": "c", "ts": "yesterday"}', old_ingest),                    # unparseable, ingested long ago
        ('{"event_id": "d", "ts": "yesterday"}', new_ingest),
    ]
    df = spark.createDataFrame([("web_events", raw, "f", i, "r", t) for i, (raw, t) in enumerate(rows)], BRONZE)
    rule = RetentionRule("bronze/web_events", TRAFFIC, raw_field="ts")
    kept = [F.get_json_object("raw", "$.event_id")]
    assert sorted(r[0] for r in df.where(~expired(rule, df, settings, AS_OF)).select(*kept).collect()) == ["b", "d"]
    csv = spark.createDataFrame([("tv_viewing", "v1,C1,decoder,ch,p,Sports,,2025-11-20T20:00:00+01:00,60", "f", 0,
                                  "r", new_ingest)], BRONZE)
    assert csv.where(expired(RetentionRule("bronze/tv_viewing", TRAFFIC, raw_field="start_ts"), csv, settings,
                             AS_OF)).count() == 1


def test_customers_expire_ten_years_after_their_contract_ended(spark):
    df = spark.createDataFrame([("ended-10y", date(2016, 11, 25)), ("ended-10y-minus-1d", date(2016, 11, 26)),
                                ("active", None)], "customer_id string, contract_end date")
    assert [r.customer_id for r in expired_customers(df, AS_OF, 10).collect()] == ["ended-10y"]


def test_every_rule_names_a_time_column_of_its_table():
    from pipelines.rights.erasure import rule_for

    for rule in RETENTION_RULES:
        assert rule_for(rule.table) is not None, rule.table
    assert {r.table for r in RETENTION_RULES} >= {"silver/tv_viewing", "silver/web_events", "silver/tv_ad_exposures",
                                                  "ops/adsdata_ledger", "ops/quarantine"}


# ------------------------------------------------------------------------------------------- the stage

def _silver(spark, source, rows):
    schema = silver_schema(source)
    lineage = {"_source_file": "f", "_line": 0, "_run_id": "r", "_ingested_at": datetime(2025, 1, 1, tzinfo=UTC)}
    return spark.createDataFrame([tuple({**lineage, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


def _ledger(pseudo, cid, last, revoked):
    return ("adsdata", "k1", pseudo, cid, last, last, last, "h", revoked, "withdrawn" if revoked else None,
            None, AS_OF)


@pytest.fixture(scope="module")
def retained(spark, settings, tmp_path_factory):
    from pipelines.privacy.keys import load_keys, new_key_file

    key_file = tmp_path_factory.mktemp("keys") / "keys.json"
    new_key_file(key_file, ("adsdata",), now=datetime(2026, 1, 1, tzinfo=UTC))
    keys = load_keys(key_file)
    wh = io.Warehouse(tmp_path_factory.mktemp("wh"))
    io.overwrite(_silver(spark, "tv_viewing", [
        {"view_id": "old", "customer_id": "C1", "start_ts": datetime(2025, 11, 25, 20, tzinfo=UTC)},
        {"view_id": "new", "customer_id": "C1", "start_ts": datetime(2025, 11, 26, 20, tzinfo=UTC)}]),
        wh.table("silver", "tv_viewing"))
    with_deletion_vectors(spark, wh.table("silver", "tv_viewing"))  # the DELETE then hides rows behind a vector
    io.overwrite(_silver(spark, "customers", [
        {"customer_id": "C1", "contract_end": None},
        {"customer_id": "C-gone", "contract_end": date(2015, 6, 30), "email": "gone@example.be"}]),
        wh.table("silver", "customers"))
    q_old, q_new = datetime(2026, 8, 26, 12, tzinfo=UTC), datetime(2026, 8, 28, 12, tzinfo=UTC)
    io.overwrite(spark.createDataFrame([("tv_viewing", "bad", "x", "f", 0, "r", None, q_old, q_old.date()),
                                        ("tv_viewing", "bad", "y", "f", 1, "r", None, q_new, q_new.date())], QUARANTINE),
                 wh.table("ops", "quarantine"))
    io.overwrite(spark.createDataFrame([_ledger("p-old", None, date(2025, 10, 1), date(2025, 10, 20)),
                                        _ledger("p-live", "C1", AS_OF, None)], LEDGER),
                 wh.table("ops", "adsdata_ledger"), partition_by=("as_of",))
    for day in ("2025-10-25", "2025-10-26", "2026-11-25"):
        folder = wh.exports / "adsdata" / f"as_of={day}"
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
    ctx = RunContext(spark, settings, wh, wh.root / "landing", AS_OF, "run-r", STARTED, keys,
                     progress=Progress(quiet=True))
    report = stage_retention(ctx)
    return {"wh": wh, "ctx": ctx, "report": report, "keys": keys}


def test_expired_rows_are_deleted_and_recent_ones_kept(spark, retained):
    wh = retained["wh"]
    assert [r.view_id for r in io.read(spark, wh.table("silver", "tv_viewing")).collect()] == ["new"]
    assert [r.raw for r in io.read(spark, wh.table("ops", "quarantine")).collect()] == ["y"]
    assert [r.pseudo_id for r in io.read(spark, wh.table("ops", "adsdata_ledger")).collect()] == ["p-live"]


def test_deliveries_older_than_13_months_are_removed(retained):
    left = sorted(p.name for p in (retained["wh"].exports / "adsdata").iterdir())
    assert left == ["as_of=2025-10-26", "as_of=2026-11-25"]


def test_customers_past_their_retention_are_erased_with_a_tombstone(spark, retained):
    wh = retained["wh"]
    assert [r.customer_id for r in io.read(spark, wh.table("silver", "customers")).collect()] == ["C1"]
    tombs = tombstoned(spark, wh, retained["keys"]).collect()
    assert [(t.kind, t.request_id) for t in tombs] == [("customer_id", "retention-2026-11-25")]


def test_every_rule_is_reported_in_the_metrics(retained):
    metrics = retained["ctx"].metrics
    assert metrics["retention.silver.tv_viewing.deleted"] == 1
    assert metrics["retention.ops.quarantine.deleted"] == 1
    assert metrics["retention.ops.adsdata_ledger.deleted"] == 1
    assert metrics["retention.exports.adsdata.deleted"] == 1
    assert metrics["retention.customers.erased"] == 1
    assert {k for k in metrics if k.startswith("retention.") and k.endswith(".deleted")} == {
        "retention.silver.tv_viewing.deleted", "retention.ops.quarantine.deleted",
        "retention.ops.adsdata_ledger.deleted", "retention.exports.adsdata.deleted"}


def test_expired_rows_do_not_stay_behind_deletion_vectors(spark, retained):
    assert not has_deletion_vectors(spark, retained["wh"].table("silver", "tv_viewing"))


def test_the_daily_erasure_stage_erases_requests_and_expired_customers_in_one_forget(
        spark, settings, keyring, tmp_path, monkeypatch):
    """One forget per run: its cost is per table (a MERGE and a purge each), so the customers past retention
    are erased together with the day's erasure requests, and the retention stage then finds nobody left."""
    from pipelines.rights import erasure
    from pipelines.rights.erasure import stage_erasure
    from pipelines.rights.retention import expired_customer_requests

    wh = io.Warehouse(tmp_path / "wh")
    io.overwrite(_silver(spark, "customers", [
        {"customer_id": "C-stay", "contract_end": None},
        {"customer_id": "C-asks", "contract_end": None},
        {"customer_id": "C-gone", "contract_end": date(2015, 6, 30)}]), wh.table("silver", "customers"))
    io.overwrite(_silver(spark, "erasure_requests", [
        {"request_id": "ERQ-1", "customer_id": "C-asks", "requested_at": datetime(2026, 11, 24, tzinfo=UTC)}]),
        wh.table("silver", "erasure_requests"))
    calls = []
    real = erasure.forget
    monkeypatch.setattr(erasure, "forget", lambda *a, **kw: calls.append(sorted(a[3])) or real(*a, **kw))
    ctx = RunContext(spark, settings, wh, tmp_path / "landing", AS_OF, "run-e", STARTED, keyring,
                     progress=Progress(quiet=True))
    expired = expired_customer_requests(spark, settings, wh, AS_OF)
    assert expired == {"C-gone": "retention-2026-11-25"}
    stage_erasure(ctx, expired=expired)
    assert calls == [["C-asks", "C-gone"]]
    assert [r.customer_id for r in io.read(spark, wh.table("silver", "customers")).collect()] == ["C-stay"]
    assert sorted(r.request_id for r in tombstoned(spark, wh, keyring).collect()) == ["ERQ-1", "retention-2026-11-25"]
    assert (ctx.metrics["erasure.people"], ctx.metrics["retention.customers.erased"]) == (2.0, 1.0)

    stage_retention(ctx)  # nobody is erased twice, and the count of the run stays right
    assert len(calls) == 1
    assert ctx.metrics["retention.customers.erased"] == 1.0
