"""The scheduled daily run: read, gate, transform, validate, write, record.

``run_daily`` is what ``audience run`` calls. Everything it needs is injected (settings, clock, run id, keys),
so tests drive it directly. Published (gold) tables are computed first, validated, and only then written:
a critical data-quality failure leaves the previously published version in place.
"""
from __future__ import annotations

import hashlib
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import Settings
from pipelines.consent import gate
from pipelines.privacy.keys import KeyRing
from pipelines.progress import Progress
from pipelines.schemas import CONSENT_STATE, RUNS, SOURCES, silver_schema
from pipelines.sources.ingest import IngestResult, ingest_source
from pipelines.sources.reference_sets import reference_sets
from pipelines.sources.rules import load_source_rules

#: Erasure requests are ingested first so that the other sources of the same run already skip erased people.
INGEST_ORDER = ("erasure_requests",) + tuple(s for s in SOURCES if s != "erasure_requests")


class RunFailed(RuntimeError):
    """The run stopped before publication (for example a critical data-quality failure)."""


@dataclass
class RunContext:
    """Everything one run needs, injected by the caller."""

    spark: SparkSession
    settings: Settings
    wh: io.Warehouse
    landing: Path
    as_of: date
    run_id: str
    started: datetime
    keys: KeyRing
    progress: Progress = field(default_factory=Progress)
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, DataFrame] = field(default_factory=dict)
    full_refresh: bool = False
    #: Side effects beyond the gold tables (delivery files, ledgers) that must happen only when the run
    #: publishes; run in order by :func:`publish` after the tables are written.
    after_publish: list[Callable[[], None]] = field(default_factory=list)

    def silver(self, source: str) -> DataFrame:
        """A silver source table (empty with its schema when nothing was ingested yet)."""
        return io.read(self.spark, self.wh.table("silver", source), silver_schema(source))


@dataclass(frozen=True)
class RunResult:
    run_id: str
    as_of: date
    status: str
    metrics: dict[str, float]
    timings: dict[str, float]
    outputs: tuple[str, ...]


def new_run_id(as_of: date, now: datetime) -> str:
    return f"{as_of:%Y%m%d}-{now:%H%M%S}-{uuid.uuid4().hex[:8]}"


def stage_ingest(ctx: RunContext) -> None:
    """Ingest every source's new landing files into bronze, silver and the quarantine, then erase.

    Erasure requests come first: the other sources then skip every line with the customer id of a pending
    request, and every line holding an id of a person erased by an earlier run (tombstones). After the last
    source, :func:`~pipelines.rights.erasure.stage_erasure` erases, in one pass, the people with a pending request
    (with what today's files brought under their device ids) and the customers past their retention.
    """
    from pipelines.rights.erasure import stage_erasure, tombstone_filter
    from pipelines.rights.retention import expired_customer_requests

    rules = load_source_rules(ctx.settings.conf_dir)
    reference = reference_sets(ctx.settings)
    recover = previous_run_unfinished(ctx)
    if recover:
        ctx.progress.say("the previous run did not finish: removing what it left of unrecorded landing files first")
    results: list[IngestResult] = []
    line_filter = None
    for source in INGEST_ORDER:
        if source != "erasure_requests" and line_filter is None:
            line_filter = tombstone_filter(ctx.spark, ctx.wh, ctx.keys)
        with ctx.progress.stage(f"ingest {source}") as counts:
            excluded = None if source == "erasure_requests" else ctx.silver("erasure_requests").select("customer_id")
            r = ingest_source(
                ctx.spark, ctx.wh, ctx.landing, rules[source], reference, ctx.run_id, ctx.started,
                ctx.settings.ingestion.max_clock_skew_minutes, ctx.settings.ingestion.min_year, excluded,
                line_filter, recover, ctx.settings.ingestion.max_batch_bytes, as_of=ctx.as_of,
            )
            counts.update(files=r.files, rows=r.rows, quarantined=r.quarantined)
            results.append(r)
    stage_erasure(ctx, expired=expired_customer_requests(ctx.spark, ctx.settings, ctx.wh, ctx.as_of))
    for r in results:
        ctx.metrics[f"ingest.{r.source}.files"] = r.files
        ctx.metrics[f"ingest.{r.source}.rows"] = r.rows
        ctx.metrics[f"ingest.{r.source}.valid"] = r.valid
        ctx.metrics[f"ingest.{r.source}.quarantined"] = r.quarantined
        for reason, n in r.reasons.items():
            key = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in reason)
            ctx.metrics[f"quarantine.{r.source}.{key}"] = n


def previous_run_unfinished(ctx: RunContext) -> bool:
    """Whether the latest other run in ``ops/runs`` did not succeed (failed, or still "running" because its
    process died): it may have left rows of landing files it never recorded as ingested. A run that succeeded
    ingested every unrecorded file with recovery on, so only the latest run matters. No earlier run: False."""
    runs = io.read(ctx.spark, ctx.wh.table("ops", "runs"), RUNS).where(F.col("run_id") != ctx.run_id)
    last = runs.orderBy(F.col("started").desc(), F.col("run_id").desc()).select("status").first()
    return last is not None and last.status != "succeeded"


def stage_gate(ctx: RunContext) -> DataFrame:
    """Consent state and eligibility at the as-of date; published to silver; returns eligibility (persisted)."""
    with ctx.progress.stage("consent gate") as counts:
        customers = ctx.silver("customers")
        state = gate.consent_state(ctx.silver("consent_events"), customers, ctx.settings, ctx.as_of)
        io.overwrite(state.select(*CONSENT_STATE.fieldNames()), ctx.wh.table("silver", "consent_state"))
        state = io.read(ctx.spark, ctx.wh.table("silver", "consent_state"))
        elig = gate.eligibility(
            state, customers, ctx.silver("erasure_requests"), ctx.silver("identity_links"), ctx.settings, ctx.as_of)
        io.overwrite(elig, ctx.wh.table("silver", "eligibility"))
        elig = io.read(ctx.spark, ctx.wh.table("silver", "eligibility")).persist(StorageLevel.MEMORY_AND_DISK)
        funnel = consent_funnel(elig, ctx.settings)
        ctx.metrics.update(funnel)
        counts.update(customers=int(funnel["funnel.customers"]),
                      tv=int(funnel["funnel.eligible_tv_profile"]), web=int(funnel["funnel.eligible_web_profile"]))
    return elig


def consent_funnel(elig: DataFrame, settings: Settings) -> dict[str, float]:
    """Counts per purpose: customers → granted → adult and not erased → eligible (one aggregate, one pass)."""
    allowed = F.col("adult") & ~F.col("erased")
    aggs = [F.count("*").alias("customers"), F.sum(F.col("adult").cast("int")).alias("adults"),
            F.sum(F.col("erased").cast("int")).alias("erased")]
    for p in settings.purposes:
        aggs += [F.sum(F.coalesce(F.col(f"consent_{p}"), F.lit(False)).cast("int")).alias(f"granted_{p}"),
                 F.sum((F.coalesce(F.col(f"consent_{p}"), F.lit(False)) & allowed).cast("int")).alias(f"granted_allowed_{p}")]
    aggs += [F.sum(F.col(c).cast("int")).alias(c) for c in gate.PROCESSINGS.values()]
    row = elig.agg(*aggs).first().asDict()
    return {f"funnel.{k}": float(v or 0) for k, v in row.items()}


def record_run(ctx: RunContext, status: str, message: str = "", mlflow_run_id: str | None = None,
               finished: datetime | None = None) -> None:
    """Upsert this run's row in ``ops/runs``."""
    row = [(ctx.run_id, ctx.as_of, ctx.started, finished, status, mlflow_run_id, message[:500], "run")]
    io.upsert(ctx.spark.createDataFrame(row, RUNS), ctx.wh.table("ops", "runs"), ("run_id",))


def publish(ctx: RunContext) -> None:
    """Write every computed gold output, each in one Delta transaction."""
    for name, df in ctx.outputs.items():
        with ctx.progress.stage(f"publish {name}"):
            io.overwrite(df, ctx.wh.table("gold", name))
    for action in ctx.after_publish:
        action()


def params_of(ctx: RunContext) -> dict[str, str]:
    """MLflow parameters of a run: as-of date, configuration hash, code version, definitions and mapping versions."""
    from pipelines.reference.taxonomy import read_mappings
    from pipelines.tracking.mlflow_run import code_version

    params = {
        "as_of": ctx.as_of.isoformat(), "run_id": ctx.run_id, "config_hash": ctx.settings.config_hash,
        "code_version": code_version(), "full_refresh": str(ctx.full_refresh),
        "segment_definitions_hash": _definitions_hash(ctx.settings),
        "spark_master": ctx.spark.sparkContext.master,
    }
    for name, version in read_mappings(ctx.settings.conf_dir).versions.items():
        params[f"mapping_version.{name}"] = version
    return params


def _definitions_hash(settings: Settings) -> str:
    """SHA-256 over the segment definition files (names and contents), so a run names the definitions it used."""
    folder = Path(settings.segments.path)
    folder = folder if folder.is_absolute() else settings.conf_dir.parent / folder
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.yaml")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _stages() -> list[tuple[str, "Stage"]]:
    """The stages after the consent gate, in order (imported here so each concern stays in its own module).

    Retention runs first (it may erase customers whose contract ended long ago, which vacuums files, so no other
    DataFrame of the run may be reading them yet); profiles feed segments; segments feed Ads & Data and
    refinement upkeep; geography and the reports read the profiles and the silver sources.
    """
    from pipelines.exports.adsdata import stage_adsdata
    from pipelines.privacy.geo import stage_geo
    from pipelines.profiles.build import stage_profiles
    from pipelines.refinement.campaign_reports import stage_campaign_reports
    from pipelines.refinement.match_keys import stage_match_keys
    from pipelines.refinement.refine import stage_activation_lists
    from pipelines.reports.viewing import stage_viewing_reports
    from pipelines.segments.stats import stage_segments

    return [
        ("profiles", stage_profiles),
        ("segments", stage_segments),
        ("ads & data", stage_adsdata),
        ("geography", stage_geo),
        ("viewing reports", stage_viewing_reports),
        ("match keys", stage_match_keys),
        ("activation lists", stage_activation_lists),
        ("campaign reports", stage_campaign_reports),
    ]


Stage = Callable[[RunContext, DataFrame], object]


def run_daily(
    spark: SparkSession,
    settings: Settings,
    landing: Path,
    warehouse: Path,
    as_of: date,
    keys: KeyRing,
    *,
    now: datetime | None = None,
    run_id: str | None = None,
    full_refresh: bool = False,
    progress: Progress | None = None,
) -> RunResult:
    """Run the daily pipeline for ``as_of``; raises :class:`RunFailed` (after recording it) on failure.

    Order: ingest erasure requests → ingest the other sources (tombstones and pending requests filtered out) →
    erase (requests and customers past retention, one pass) → input quality → retention → consent gate →
    profiles → segments → Ads & Data → geography → reports → refinement upkeep → output quality →
    publish (only when no critical check failed) → record (ops/runs, MLflow).
    """
    from pipelines.quality.suites import critical_failures, describe_failures, record_results, validate_inputs, validate_outputs
    from pipelines.rights.retention import stage_retention
    from pipelines.tracking.mlflow_run import RunTracker

    now = now or datetime.now(timezone.utc)
    wh = io.Warehouse(Path(warehouse))
    ctx = RunContext(spark, settings, wh, Path(landing), as_of, run_id or new_run_id(as_of, now), now, keys,
                     progress or Progress(), full_refresh=full_refresh)
    with wh.lock(f"run --as-of {as_of}"), RunTracker(settings, wh.root, ctx.run_id) as tracker:
        ctx.progress.say(f"run {ctx.run_id} as of {as_of}: landing {landing} -> warehouse {warehouse}")
        record_run(ctx, "running", mlflow_run_id=tracker.run_id)
        elig = None
        checkpoints = _checkpoint_dir(ctx)
        try:
            ctx.params.update(params_of(ctx))
            tracker.log_params(ctx.params)
            stage_ingest(ctx)
            with ctx.progress.stage("quality: inputs"):
                results = validate_inputs(ctx)
            stage_retention(ctx)
            elig = stage_gate(ctx)
            for _, stage in _stages():
                stage(ctx, elig)
            with ctx.progress.stage("quality: outputs") as counts:
                results += validate_outputs(ctx)
                report_dir = record_results(ctx, results)
                failed = critical_failures(results)
                counts.update(checks=len(results), critical_failures=len(failed))
            ctx.progress.say(f"data-quality report: {report_dir / 'dq_report.html'}")
            if failed:
                raise RunFailed(describe_failures(failed, report_dir))
            publish(ctx)
        except Exception as exc:
            finished = datetime.now(timezone.utc)
            record_run(ctx, "failed", message=f"{type(exc).__name__}: {exc}".splitlines()[0],
                       mlflow_run_id=tracker.run_id, finished=finished)
            _track(tracker, ctx)
            raise
        finally:
            for df in ctx.outputs.values():
                df.unpersist()
            if elig is not None:
                elig.unpersist()
            shutil.rmtree(checkpoints, ignore_errors=True)
        record_run(ctx, "succeeded", mlflow_run_id=tracker.run_id, finished=datetime.now(timezone.utc))
        _track(tracker, ctx)
    return RunResult(ctx.run_id, as_of, "succeeded", dict(ctx.metrics), dict(ctx.progress.timings), tuple(ctx.outputs))


def _checkpoint_dir(ctx: RunContext) -> Path:
    """A fresh checkpoint directory under the warehouse for :func:`io.materialise` (shared storage on a cluster,
    so a lost executor loses no materialised rows). It holds personal data during the run only: leftovers of
    a crashed run are removed here, under the warehouse lock, and the run removes its own at the end.

    On a local master the directory is not given to Spark: there is one process, no executor to lose, and
    local checkpoints cost one job where a reliable one costs two and a disk copy."""
    path = ctx.wh.root / "_checkpoints"
    shutil.rmtree(path, ignore_errors=True)
    if not ctx.spark.sparkContext.master.startswith("local"):
        ctx.spark.sparkContext.setCheckpointDir(str(path))
    return path


def _track(tracker, ctx: RunContext) -> None:
    """Metrics (counts, funnel, sizes, timings) and the run's reports as MLflow artifacts."""
    metrics = dict(ctx.metrics)
    metrics.update({f"time.{name}": seconds for name, seconds in ctx.progress.timings.items()})
    tracker.log_metrics(metrics)
    reports = ctx.wh.reports / ctx.run_id
    if reports.is_dir():
        tracker.log_artifacts(reports, "reports")
