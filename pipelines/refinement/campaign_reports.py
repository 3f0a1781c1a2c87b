"""Campaign delivery reports: reach and impressions per campaign, day and channel (``gold/campaign_reports``).

What an advertiser may learn about a campaign's delivery, and nothing about who was shown the ad (L2):

* TV: ``silver/tv_ad_exposures``; reach = distinct customers exposed that day.
* Web: ``silver/web_events`` of type ``ad_impression``; reach = distinct devices (cookie id or mobile ad id).

A row is published only when its reach is at least ``refinement.min_audience``; reach and impressions are then
rounded down to ``refinement.rounding``. Rows below the threshold are not published at all (their existence
would say that *someone* saw the ad that day), and no total across days or channels is published, so a
suppressed cell cannot be recovered by subtraction. No column holds an id of any kind.

Who is counted: anonymous delivery counting is the ad server's accounting (the policy's "anonymous reports",
as for viewing reports, C6), so consent to personalisation is not required; people who asked for erasure and
people not known to be adults are never counted (TV: by ``customer_id``; web: devices linked to them in
``silver/identity_links``). Days: the ``DEFAULT_REPORT_DAYS`` local days (Europe/Brussels by configuration)
ending at the as-of date; events dated later wait for a later run.

Limits: like any thresholded count, a reach sitting exactly at a rounding step moves with one person; telling
that needs the exact reach of everyone else, which is never published.
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from pipelines.config import RefinementSettings
from pipelines.consent.gate import end_of_day
from pipelines.reports.viewing import local_day

#: Local days per report, ending at the as-of date (requested setting ``refinement.campaign_report_days``).
DEFAULT_REPORT_DAYS = 28

CAMPAIGN_REPORTS = StructType([
    StructField("campaign_id", StringType(), False),
    StructField("advertiser_id", StringType(), True),
    StructField("day", DateType(), False),
    StructField("channel", StringType(), False),
    StructField("reach", LongType(), False),
    StructField("impressions", LongType(), False),
    StructField("as_of", DateType(), False),
])


def window_bounds(as_of: date, tz: str, days: int) -> tuple[Column, Column]:
    """[start, end) instants of the ``days`` local days ending at ``as_of``."""
    start = F.lit(end_of_day(as_of - timedelta(days=days), tz)).cast(TimestampType())
    end = F.lit(end_of_day(as_of, tz)).cast(TimestampType())
    return start, end


def countable_customers(elig: DataFrame) -> DataFrame:
    """``customer_id`` of known adults who did not ask for erasure (consent not needed: anonymous counting)."""
    return elig.where(F.coalesce(F.col("adult"), F.lit(False)) & ~F.coalesce(F.col("erased"), F.lit(True))) \
        .select("customer_id")


def excluded_devices(elig: DataFrame, identity_links: DataFrame) -> DataFrame:
    """``device_id`` (``cookie:``/``mobile:`` prefixed) linked to someone erased or not known to be an adult."""
    excluded = elig.where(~(F.coalesce(F.col("adult"), F.lit(False)) & ~F.coalesce(F.col("erased"), F.lit(True)))) \
        .select("customer_id")
    prefix = F.when(F.col("id_type") == "cookie_id", F.lit("cookie:")).when(
        F.col("id_type") == "mobile_ad_id", F.lit("mobile:"))
    return (identity_links.join(F.broadcast(excluded), "customer_id", "left_semi")
            .where(prefix.isNotNull())
            .select(F.concat(prefix, F.col("id_value")).alias("device_id")).distinct())


def tv_deliveries(exposures: DataFrame, elig: DataFrame, as_of: date, tz: str, days: int) -> DataFrame:
    """``campaign_id, advertiser_id, day, person``: TV exposures of countable customers in the window."""
    start, end = window_bounds(as_of, tz, days)
    return (
        exposures.where((F.col("ts") >= start) & (F.col("ts") < end) & F.col("campaign_id").isNotNull())
        .join(F.broadcast(countable_customers(elig)), "customer_id", "left_semi")
        .select("campaign_id", "advertiser_id", local_day(F.col("ts"), tz).alias("day"),
                F.col("customer_id").alias("person"))
    )


def web_deliveries(web_events: DataFrame, excluded: DataFrame, as_of: date, tz: str, days: int) -> DataFrame:
    """``campaign_id, advertiser_id, day, person``: web ad impressions in the window; person = device."""
    start, end = window_bounds(as_of, tz, days)
    device = F.coalesce(F.concat(F.lit("cookie:"), F.col("cookie_id")), F.concat(F.lit("mobile:"), F.col("mobile_ad_id")))
    return (
        web_events.where((F.col("event_type") == "ad_impression") & (F.col("ts") >= start) & (F.col("ts") < end)
                         & F.col("campaign_id").isNotNull())
        .select("campaign_id", "advertiser_id", local_day(F.col("ts"), tz).alias("day"), device.alias("person"))
        .where(F.col("person").isNotNull())
        .join(excluded.withColumnRenamed("device_id", "person"), "person", "left_anti")
    )


def thresholded(deliveries: DataFrame, channel: str, rules: RefinementSettings, as_of: date) -> DataFrame:
    """Reach and impressions per campaign and day; published rows only (reach ≥ min_audience), rounded down."""
    step = max(int(rules.rounding), 1)

    def rounded(c: Column) -> Column:
        return (c - F.pmod(c, F.lit(step))).cast(LongType())

    counts = deliveries.groupBy("campaign_id", "advertiser_id", "day").agg(
        F.countDistinct("person").alias("_reach"), F.count(F.lit(1)).alias("_impressions"))
    return (
        counts.where(F.col("_reach") >= max(int(rules.min_audience), 1))
        .select("campaign_id", "advertiser_id", "day", F.lit(channel).alias("channel"),
                rounded(F.col("_reach")).alias("reach"), rounded(F.col("_impressions")).alias("impressions"),
                F.lit(as_of).cast(DateType()).alias("as_of"))
    )  # the exact counts (_reach, _impressions) never leave this plan


def campaign_reports(exposures: DataFrame, web_events: DataFrame, identity_links: DataFrame, elig: DataFrame,
                     rules: RefinementSettings, as_of: date, tz: str, days: int = DEFAULT_REPORT_DAYS) -> DataFrame:
    """``gold/campaign_reports``: TV and web delivery, thresholded as the module docstring says."""
    tv = thresholded(tv_deliveries(exposures, elig, as_of, tz, days), "tv", rules, as_of)
    web = thresholded(web_deliveries(web_events, excluded_devices(elig, identity_links), as_of, tz, days),
                      "web", rules, as_of)
    return tv.unionByName(web).select(*CAMPAIGN_REPORTS.fieldNames())


def stage_campaign_reports(ctx: Any, elig: DataFrame) -> None:
    """Daily-run stage: ``ctx.outputs["campaign_reports"]`` (published by the run); metric of published rows."""
    with ctx.progress.stage("campaign reports") as counts:
        reports = campaign_reports(
            ctx.silver("tv_ad_exposures"), ctx.silver("web_events"), ctx.silver("identity_links"), elig,
            ctx.settings.refinement, ctx.as_of, ctx.settings.timezone,
        )
        rows = reports.collect()  # bounded by campaigns × days × 2, not by the events
        out = ctx.spark.createDataFrame(rows, CAMPAIGN_REPORTS)
        ctx.outputs["campaign_reports"] = out
        ctx.metrics["refinement.campaign_report_rows"] = float(len(rows))
        counts.update(rows=len(rows))


__all__ = [
    "CAMPAIGN_REPORTS", "DEFAULT_REPORT_DAYS", "campaign_reports", "tv_deliveries", "web_deliveries",
    "excluded_devices", "thresholded", "stage_campaign_reports",
]
