"""Anonymous viewing reports: channel and programme popularity per day and region (``gold/viewing_reports``).

The policy ("Use of anonymous data for reporting services"): *"your viewing behavior can be converted into
anonymous reports on the popularity of TV channels and programs"*; and under "Personalized TV advertising", an
objection stops the use of viewing for adapted advertising, but *"your TV viewing behavior will still be
collected where this is required for billing purposes, reporting"*. So (C6) the reports count every viewer,
whether or not they objected to TV personalisation. Who is never counted:

* people who asked for erasure (``erased`` in the eligibility table): erasure removes a person everywhere;
* minors and people with an unknown birth date (``adult`` false). Aggregated reporting is not profiling, so
  C5 does not strictly apply; children's data deserve specific protection (GDPR recital 38), the reports lose
  nothing useful without them, and the eligibility table already says who is a known adult.

Cells and thresholds. Viewers are distinct customers; a customer belongs to the region of their postal code
(``silver/customers``, latest record). Rows:

* ``report = "channel"``: (local day, region, channel) with the number of distinct viewers;
* ``report = "programme"``: (local day, region, channel, programme): a programme row names its channel, so
  that the nesting programme-within-channel is explicit.

A row is published only with at least ``k`` viewers (``geo.k``), and with complementary suppression across
regions: the national figure per day and channel (or programme) is treated as known, so when the suppressed
regions of a day and channel total between 1 and ``k - 1`` viewers, the smallest published region is
suppressed as well. A programme row also needs its channel row published and ``channel viewers - programme
viewers`` (people who watched the channel but not that programme, derivable from the two rows) to be 0 or at
least ``k``. Days: the ``days`` local days ending at the as-of date; the report reads only that window of
``silver/tv_viewing`` (cost in proportion to the window, not to the history).

Not covered: the DP mode of ``geo_profiles`` (noise) is not applied here; a viewer who is erased between two
runs lowers past days' counts by one, which a reader comparing runs can notice (not who it was).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from pipelines import io
from pipelines.consent.gate import end_of_day
from pipelines.profiles.tv import local_day
from pipelines.reference.geo import REGION_NAMES, load_geography

if TYPE_CHECKING:
    from pipelines.jobs.daily import RunContext

#: Local days per report, ending at the as-of date (requested setting ``reports.viewing_days``).
DEFAULT_REPORT_DAYS = 7

#: Schema of ``gold/viewing_reports``.
VIEWING_REPORTS = StructType([
    StructField("report", StringType(), True),  # channel | programme
    StructField("day", DateType(), True),
    StructField("region_code", StringType(), True),
    StructField("region_name", StringType(), True),
    StructField("channel_id", StringType(), True),
    StructField("program_id", StringType(), True),  # null on channel rows
    StructField("viewers", LongType(), True),
    StructField("as_of", DateType(), True),
])


def in_window(viewing: DataFrame, as_of: date, tz: str, days: int) -> DataFrame:
    """Viewing that started on one of the ``days`` local days ending at ``as_of``, with its local ``day``.

    Views dated after the as-of date (delivered early) wait for a later run.
    """
    start = F.lit(end_of_day(as_of - timedelta(days=days), tz)).cast(TimestampType())
    end = F.lit(end_of_day(as_of, tz)).cast(TimestampType())
    return (viewing.where((F.col("start_ts") >= start) & (F.col("start_ts") < end))
            .withColumn("day", local_day(F.col("start_ts"), tz)))


def reportable_viewers(elig: DataFrame) -> DataFrame:
    """``customer_id`` of known adults who did not ask for erasure; consent is not needed (C6)."""
    return elig.where(F.col("adult") & ~F.col("erased")).select("customer_id")


def customer_regions(customers: DataFrame, geography: DataFrame) -> DataFrame:
    """``customer_id, region_code``: region of each customer's latest postal code (unknown codes drop out)."""
    latest = Window.partitionBy("customer_id").orderBy(F.col("updated_at").desc_nulls_last())
    return (
        customers.withColumn("_rn", F.row_number().over(latest)).where(F.col("_rn") == 1)
        .join(F.broadcast(geography), "postal_code")
        .select("customer_id", "region_code")
    )


def viewing_cells(viewing: DataFrame, viewers: DataFrame, regions: DataFrame) -> DataFrame:
    """``customer_id, day, region_code, channel_id, program_id``: one row per view of a reportable viewer.

    The viewing is reduced to reportable viewers before it meets the customers' regions.
    """
    return (
        viewing.where(F.col("channel_id").isNotNull())
        .join(F.broadcast(viewers), "customer_id", "left_semi")
        .join(regions, "customer_id")
        .select("customer_id", "day", "region_code", "channel_id", "program_id")
    )


def popularity(cells: DataFrame, keys: list[str]) -> DataFrame:
    """Distinct viewers per ``keys``."""
    return cells.groupBy(*keys).agg(F.countDistinct("customer_id").cast(LongType()).alias("viewers"))


def is_safe(count: Column, k: int) -> Column:
    """0 or at least ``k``: a count that may be published or derived."""
    return (count == 0) | (count >= k)


def threshold_across_regions(counts: DataFrame, k: int, group: list[str], primary: Column) -> DataFrame:
    """Add ``published``: not ``primary``, and not needed to protect the suppressed regions of the group.

    Per ``group`` (day and item), regions are ordered primary first, then by viewers ascending; a non-primary
    region is suppressed while the viewers before it (the suppressed ones) total between 1 and ``k - 1``: the
    group's national figure minus its published regions is then 0 or at least ``k``.
    """
    part = Window.partitionBy(*group)
    before = part.orderBy(F.col("_primary").desc(), F.col("viewers").asc(), F.col("region_code").asc()) \
        .rowsBetween(Window.unboundedPreceding, -1)
    return (
        counts.withColumn("_primary", primary)
        .withColumn("_suppressed", F.sum(F.when(F.col("_primary"), F.col("viewers")).otherwise(0)).over(part))
        .withColumn("_before", F.coalesce(F.sum("viewers").over(before), F.lit(0)))
        .withColumn("published", ~F.col("_primary") & ~((F.col("_suppressed") > 0) & (F.col("_before") < k)))
        .drop("_primary", "_suppressed", "_before")
    )


@dataclass(frozen=True)
class ViewingReports:
    """Every candidate row with its ``published`` flag (internal), and the published rows."""

    cells: DataFrame
    published: DataFrame


def viewing_reports(cells: DataFrame, region_names: DataFrame, k: int, as_of: date) -> ViewingReports:
    """Channel and programme popularity from :func:`viewing_cells`, thresholded as the module docstring says."""
    channels = threshold_across_regions(
        popularity(cells, ["day", "region_code", "channel_id"]), k, ["day", "channel_id"], F.col("viewers") < k)
    channel_views = channels.select("day", "region_code", "channel_id", F.col("viewers").alias("_channel_viewers"),
                                    F.col("published").alias("_channel_published"))
    programmes = (
        popularity(cells.where(F.col("program_id").isNotNull()), ["day", "region_code", "channel_id", "program_id"])
        .join(channel_views, ["day", "region_code", "channel_id"])
    )
    nested_ok = F.col("_channel_published") & is_safe(F.col("_channel_viewers") - F.col("viewers"), k)
    programmes = threshold_across_regions(programmes, k, ["day", "channel_id", "program_id"],
                                          (F.col("viewers") < k) | ~nested_ok)
    rows = (
        channels.select(F.lit("channel").alias("report"), "day", "region_code", "channel_id",
                        F.lit(None).cast(StringType()).alias("program_id"), "viewers", "published")
        .unionByName(programmes.select(F.lit("programme").alias("report"), "day", "region_code", "channel_id",
                                       "program_id", "viewers", "published"))
        .join(F.broadcast(region_names), "region_code", "left")
        .withColumn("as_of", F.lit(as_of))
    )
    published = rows.where("published").select(*VIEWING_REPORTS.fieldNames())
    return ViewingReports(rows, published)


def report_metrics(reports: ViewingReports) -> dict[str, float]:
    """``reports.viewing.rows_published`` / ``rows_suppressed``, in total and per report (one aggregate; the
    window is a few days of viewing, so recomputing it once for the metrics is cheaper than caching it)."""
    out = {"reports.viewing.rows_published": 0.0, "reports.viewing.rows_suppressed": 0.0}
    for row in reports.cells.groupBy("report", "published").count().collect():
        state = "published" if row["published"] else "suppressed"
        out[f"reports.viewing.{row['report']}.rows_{state}"] = float(row["count"])
        out[f"reports.viewing.rows_{state}"] += float(row["count"])
    return out


def geography_frames(spark: SparkSession, conf_dir) -> tuple[DataFrame, DataFrame]:
    """``(postal_code, region_code)`` and ``(region_code, region_name)`` from the reference geography."""
    geo = load_geography(conf_dir)
    postal = io.local_frame(spark, sorted((a.postal_code, a.region_code) for a in geo.areas.values()),
                            "postal_code string, region_code string")
    names = io.local_frame(spark, sorted(REGION_NAMES.items()), "region_code string, region_name string")
    return postal, names


def stage_viewing_reports(ctx: "RunContext", elig: DataFrame, days: int = DEFAULT_REPORT_DAYS) -> ViewingReports:
    """Put ``viewing_reports`` into ``ctx.outputs`` (from ``silver/tv_viewing``, ``silver/customers`` and the
    eligibility table); metrics of :func:`report_metrics`."""
    with ctx.progress.stage("viewing reports") as counts:
        postal, names = geography_frames(ctx.spark, ctx.settings.conf_dir)
        viewing = in_window(ctx.silver("tv_viewing"), ctx.as_of, ctx.settings.timezone, days)
        cells = viewing_cells(viewing, reportable_viewers(elig), customer_regions(ctx.silver("customers"), postal))
        reports = viewing_reports(cells, names, ctx.settings.geo.k, ctx.as_of)
        ctx.outputs["viewing_reports"] = reports.published
        metrics = report_metrics(reports)
        ctx.metrics.update(metrics)
        counts.update(rows=int(metrics["reports.viewing.rows_published"]))
    return reports
