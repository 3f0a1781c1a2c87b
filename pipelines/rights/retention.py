"""Retention (R3): personal data is kept no longer than the privacy policy says, enforced on every run.

The policy ("How long do we keep personal data?", "Personalized advertising via Ads & Data"):

=================================  ====================================  ==========================================
data                               kept                                  setting (``retention:``)
=================================  ====================================  ==========================================
viewing, web events, ad exposures  12 months ("communication traffic")   ``traffic_days`` (365)
(raw lines and daily aggregates)
Ads & Data deliveries and ledger   13 months                             ``adsdata_days`` (396)
customer records (everything on    10 years after the contract ended     ``customer_years_after_contract`` (10)
a person)
quarantined raw lines              briefly, to investigate bad deliveries ``quarantine_days`` (90)
=================================  ====================================  ==========================================

Per table, :data:`RETENTION_RULES` names the time column (or the raw landing field, for bronze lines) and the
period. A row is expired when its day is ``period`` days or more before the run's as-of date (timestamps are
compared with the end of that day in ``settings.timezone``): with 365 days and as-of 2026-11-25, viewing of
2025-11-25 and before goes, 2025-11-26 stays. The as-of date, not the wall clock, decides, so rerunning an
as-of gives the same result (O1).

Customers whose contract ended more than ``customer_years_after_contract`` years before the as-of date are
erased entirely with :func:`pipelines.rights.erasure.forget` (tombstones included: an old landing file must not
bring them back); the daily job does it in its erasure stage, in the same forget as the day's erasure requests.
Delivery copies under ``exports/<recipient>/`` older than ``adsdata_days`` are deleted.

Deleting rows is not enough physically: with deletion vectors a deleted row stays in its file. Each table that
lost rows is therefore rewritten (``REORG ... APPLY (PURGE)``) and every rule's table is vacuumed with the
table's normal retention (7 days) on the day rows are deleted and on the weekly sweep (:data:`VACUUM_WEEKDAY`),
so expired rows leave the disk at most two weeks after they expire. Old
transaction-log entries may keep min/max column statistics of expired rows for ``delta.logRetentionDuration``
(30 days) before Delta's log cleanup removes them.

Metrics (``ctx.metrics``): ``retention.<layer>.<table>.deleted`` for every rule's table (0 included: the rule
ran), ``retention.exports.<recipient>.deleted`` (delivery folders), ``retention.customers.erased``.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, TimestampType

from pipelines import io
from pipelines.config import RetentionSettings, Settings
from pipelines.consent.gate import end_of_day
from pipelines.exports.adsdata import prune_deliveries
from pipelines.privacy.keys import KeyRing
from pipelines.rights.erasure import forget, purge_deletion_vectors
from pipelines.schemas import LANDING_FORMAT, landing_string_schema

if TYPE_CHECKING:  # type hints only: the daily job imports the stages
    from pipelines.jobs.daily import RunContext

TRAFFIC = "traffic_days"
ADSDATA = "adsdata_days"
QUARANTINE = "quarantine_days"
PERIODS = (TRAFFIC, ADSDATA, QUARANTINE)

#: The as-of weekday (Monday = 0) on which every retention table is vacuumed, rows deleted that day or not.
VACUUM_WEEKDAY = 6


@dataclass(frozen=True)
class RetentionRule:
    """Rows of ``table`` (``layer/name``) expire ``period`` days (a :class:`RetentionSettings` field) after the
    time given by ``column`` (timestamp or date), by the SQL ``expr``, or, for raw lines, by the landing field
    ``raw_field`` parsed from ``raw`` (falling back to ``_ingested_at`` when it does not parse)."""

    table: str
    period: str
    column: str | None = None
    expr: str | None = None
    raw_field: str | None = None

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise ValueError(f"{self.table}: unknown retention period {self.period!r}")
        if sum(x is not None for x in (self.column, self.expr, self.raw_field)) != 1:
            raise ValueError(f"{self.table}: give exactly one of column, expr, raw_field")


RETENTION_RULES: tuple[RetentionRule, ...] = (
    RetentionRule("silver/tv_viewing", TRAFFIC, column="start_ts"),
    RetentionRule("silver/tv_ad_exposures", TRAFFIC, column="ts"),
    RetentionRule("silver/web_events", TRAFFIC, column="ts"),
    RetentionRule("silver/tv_daily_genre_minutes", TRAFFIC, column="day"),
    RetentionRule("silver/web_daily_category_events", TRAFFIC, column="day"),
    RetentionRule("bronze/tv_viewing", TRAFFIC, raw_field="start_ts"),
    RetentionRule("bronze/tv_ad_exposures", TRAFFIC, raw_field="ts"),
    RetentionRule("bronze/web_events", TRAFFIC, raw_field="ts"),
    RetentionRule("ops/quarantine", QUARANTINE, column="quarantined_at"),
    # A ledger row is a delivery record: it lives 13 months after its last delivery (or its revocation).
    RetentionRule("ops/adsdata_ledger", ADSDATA, expr="coalesce(revoked_at, last_delivered, as_of)"),
    RetentionRule("gold/adsdata_export", ADSDATA, column="as_of"),
    RetentionRule("gold/adsdata_revocations", ADSDATA, column="as_of"),
)


def period_days(settings: RetentionSettings, period: str) -> int:
    """The configured number of days of a period; must be positive (zero would delete today's data)."""
    days = int(getattr(settings, period))
    if days <= 0:
        raise ValueError(f"retention.{period} must be a positive number of days, got {days}")
    return days


def last_expired_day(as_of: date, days: int) -> date:
    """The most recent day whose data is expired at ``as_of`` under a ``days`` retention."""
    return as_of - timedelta(days=days)


def raw_time(source: str, field_name: str) -> Column:
    """The timestamp of a raw landing line of ``source`` (its field ``field_name``), or ``_ingested_at``."""
    if LANDING_FORMAT[source] == "jsonl":
        text = F.get_json_object(F.col("raw"), f"$.{field_name}")
    else:
        text = F.from_csv(F.col("raw"), landing_string_schema(source).simpleString(), {"escape": '"'})[field_name]
    return F.coalesce(F.trim(text).try_cast(TimestampType()), F.col("_ingested_at"))


def expired(rule: RetentionRule, df: DataFrame, settings: Settings, as_of: date) -> Column:
    """Predicate of the rows of ``df`` that ``rule`` says are expired at ``as_of`` (a built-in Column)."""
    last_day = last_expired_day(as_of, period_days(settings.retention, rule.period))
    if rule.raw_field is not None:
        value = raw_time(rule.table.split("/", 1)[1], rule.raw_field)
    elif rule.expr is not None:
        value = F.expr(rule.expr)
    else:
        value = F.col(rule.column)
    if isinstance(df.select(value.alias("_t")).schema["_t"].dataType, DateType):
        return value <= F.lit(last_day)
    return value < F.lit(end_of_day(last_day, settings.timezone)).cast(TimestampType())


def _delete_expired(spark: SparkSession, path: Path, condition: Column) -> int:
    dt = DeltaTable.forPath(spark, str(path))
    before = dt.history(1).select("version").first().version
    dt.delete(condition)
    last = dt.history(1).select("version", "operationMetrics").first()
    if last.version == before:
        return 0
    return int((last.operationMetrics or {}).get("numDeletedRows", "0"))


def apply_retention_rules(spark: SparkSession, wh: io.Warehouse, settings: Settings, as_of: date,
                          rules: tuple[RetentionRule, ...] = RETENTION_RULES) -> dict[str, int]:
    """Delete expired rows of every rule's table (absent tables skipped); rows deleted per ``layer/name``.

    Tables that lost rows are rewritten without deletion vectors and vacuumed with their normal retention; every
    rule's table is also vacuumed once a week (:data:`VACUUM_WEEKDAY`), so the files holding expired rows leave
    the disk two weeks later at most (a VACUUM lists every file of a table: too slow to run on each table daily).
    """
    out: dict[str, int] = {}
    for rule in rules:
        layer, name = rule.table.split("/", 1)
        path = wh.table(layer, name)
        if not io.exists(spark, path):
            continue
        df = io.read(spark, path)
        n = _delete_expired(spark, path, expired(rule, df, settings, as_of))
        if n:
            purge_deletion_vectors(spark, path)
        if n or as_of.weekday() == VACUUM_WEEKDAY:
            DeltaTable.forPath(spark, str(path)).vacuum()
        out[rule.table] = n
    return out


def expired_customers(customers: DataFrame, as_of: date, years: int) -> DataFrame:
    """Customer ids whose contract ended ``years`` years or more before ``as_of`` (active ones never expire)."""
    if years <= 0:
        raise ValueError(f"retention.customer_years_after_contract must be positive, got {years}")
    cutoff = F.add_months(F.lit(as_of), -12 * years)
    return (customers.where(F.col("contract_end").isNotNull() & (F.col("contract_end") <= cutoff))
            .select("customer_id").distinct())


@dataclass(frozen=True)
class RetentionReport:
    """What one retention pass deleted (counts only)."""

    rows_deleted: Mapping[str, int] = field(default_factory=dict)
    deliveries_deleted: Mapping[str, int] = field(default_factory=dict)
    customers_erased: int = 0

    def metrics(self) -> dict[str, float]:
        out = {f"retention.{t.replace('/', '.')}.deleted": float(n) for t, n in self.rows_deleted.items()}
        out.update({f"retention.exports.{r}.deleted": float(n) for r, n in self.deliveries_deleted.items()})
        out["retention.customers.erased"] = float(self.customers_erased)
        return out


def expired_customer_requests(spark: SparkSession, settings: Settings, wh: io.Warehouse,
                              as_of: date) -> dict[str, str]:
    """Customers past their retention at ``as_of``, each with the erasure request id ``retention-<as_of>``."""
    customers_path = wh.table("silver", "customers")
    if not io.exists(spark, customers_path):
        return {}
    ids = expired_customers(io.read(spark, customers_path), as_of, settings.retention.customer_years_after_contract)
    return {r.customer_id: f"retention-{as_of.isoformat()}" for r in ids.collect()}


def enforce_retention(spark: SparkSession, settings: Settings, wh: io.Warehouse, as_of: date, keys: KeyRing,
                      now: datetime, rules: tuple[RetentionRule, ...] = RETENTION_RULES) -> RetentionReport:
    """Apply the whole policy once: expired customers erased, expired rows deleted, old deliveries removed.

    The daily job erases expired customers earlier, with the run's erasure requests (one forget for all:
    :func:`pipelines.rights.erasure.stage_erasure`); here they are then already gone and nobody is erased twice.
    """
    erased = 0
    requests = expired_customer_requests(spark, settings, wh, as_of)
    if requests:  # rare, and one erasure for all of them: its purge is the expensive part
        erased = forget(spark, settings, wh, list(requests), keys, now, request_ids=requests).people
    rows = apply_retention_rules(spark, wh, settings, as_of, rules)
    before = last_expired_day(as_of, period_days(settings.retention, ADSDATA)) + timedelta(days=1)
    deliveries = {r: len(prune_deliveries(wh.exports / r, before)) for r in settings.adsdata.recipients}
    return RetentionReport(rows, deliveries, erased)


def stage_retention(ctx: RunContext, elig: DataFrame | None = None) -> RetentionReport:
    """Daily-run stage: enforce retention at ``ctx.as_of`` and report it in ``ctx.metrics`` (see module docs).

    Run it after ingestion and before the gate (so no profile is computed from expired data, and because erasing
    expired customers vacuums files no DataFrame of the run may still be reading). ``elig`` is not used.
    """
    with ctx.progress.stage("retention") as counts:
        report = enforce_retention(ctx.spark, ctx.settings, ctx.wh, ctx.as_of, ctx.keys, ctx.started)
        metrics = report.metrics()
        # Customers the run's erasure stage already erased for retention count too.
        metrics["retention.customers.erased"] += ctx.metrics.get("retention.customers.erased", 0.0)
        ctx.metrics.update(metrics)
        counts.update(rows=sum(report.rows_deleted.values()), deliveries=sum(report.deliveries_deleted.values()),
                      customers=int(metrics["retention.customers.erased"]))
    return report


__all__ = [
    "TRAFFIC", "ADSDATA", "QUARANTINE", "RetentionRule", "RETENTION_RULES", "period_days", "last_expired_day",
    "raw_time", "expired", "apply_retention_rules", "expired_customers", "expired_customer_requests",
    "RetentionReport", "enforce_retention",
    "stage_retention",
]
