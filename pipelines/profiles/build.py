"""The profiles stage: incremental daily aggregates, consent gate, TV and web profiles, internal evidence.

Data flow (top to bottom, as :func:`stage_profiles` runs it)::

    silver/tv_viewing  --(new rows only)-->  silver/tv_daily_genre_minutes      (all customers, per source)
    silver/web_events  --(new TC strings)--> silver/tcf_verdicts                (C4 verdict per string hash)
    silver/web_events  --(new rows, C4 ok)-> silver/web_daily_category_events   (per device, per source)
          |
    gate: only_eligible(<source>, eligibility at as-of, "tv_profile" | "web_profile")   (C1, C2, C5, C6)
          |
    attributes + interests  ->  ctx.outputs["tv_profiles"], ctx.outputs["web_profiles"]  (published by the lead)
                            ->  silver/interest_evidence                                   (internal only)

``silver/interest_evidence`` explains every *published* interest: one row per customer, channel, interest,
source and look-back window with the undecayed minutes or events, the decayed weighted evidence, share,
population share, lift and score, and the mapping versions. It serves access requests and analysts and is
never exported.

Why the daily aggregates are built before the gate. Consent changes from day to day while what someone
watched on a given day does not, so an aggregate that depended on consent would have to be rebuilt after
every grant or withdrawal. The aggregates therefore summarise *one source each* (viewing; web events), join
no other source, and are never a profile: the gate is applied when they are *read* for the as-of date, before
they meet customers, socio-demographics, identity links or anything else (C2: sources are reduced to
eligible customers before being joined and profiled). Keeping every customer's viewing in the TV aggregate
is also what C6 asks: an objection to TV personalisation removes viewing from the TV profile, but viewing
stays available to billing and anonymous reporting, which read the same aggregate. Web events are stored
per device (cookie, mobile ad id) with only C4-passing events; they reach a customer only through the
identity links of customers eligible for the web profile, and only devices that no ineligible person shares
(a family computer a minor also signs in on is nobody's device for profiling).

Incremental by design (O1). Silver rows carry the ``_run_id`` of the run that ingested them, and
``ops/profile_aggregate_runs`` records which runs each aggregate has folded in. A run recomputes only the
(customer or device, local day) keys touched by rows of runs not folded in yet and upserts them; days and
people without new rows are not read. The decay is anchored to ``profiles.epoch`` (see
:mod:`pipelines.profiles.tv`), so no stored figure is ever re-decayed. ``--full-refresh``, a missing
aggregate, or a change of what an aggregate depends on (time zone, TCF vendor or purposes) rebuilds it in
full. Silver rows loaded outside a recorded run are picked up by the next full refresh only.

The erasure and retention jobs must treat the aggregates like their sources: ``tv_daily_genre_minutes``
holds ``customer_id``; ``web_daily_category_events`` holds ``cookie_id``/``mobile_ad_id`` like
``silver/web_events``; ``interest_evidence`` holds ``customer_id``. ``tcf_verdicts`` keeps only hashes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from pipelines import io
from pipelines.config import Settings
from pipelines.consent.gate import eligible_ids, end_of_day, exclusive_devices, only_eligible
from pipelines.consent.tcf import tcf_verdicts
from pipelines.profiles.attributes import (
    AREA_CHILDREN_SHARE,
    ATTRIBUTE_COLUMNS,
    area_sociodemo,
    home,
    individual_sociodemo,
    profile_attributes,
    purchase_features,
)
from pipelines.profiles.tv import (
    ScoringParams,
    _identity,
    Scores,
    empty_interests,
    local_day,
    qualified,
    score_interests,
    top_interests,
    tv_daily_genre_minutes,
    tv_units,
)
from pipelines.profiles.web import (
    EXPOSURE_DAYS,
    ad_ids,
    exposure_features,
    linked_ad_ids,
    loyalty_units,
    purchase_units,
    resolve_devices,
    tc_hash,
    web_daily_category_events,
    web_event_units,
)
from pipelines.reference.taxonomy import (
    AUDIENCE_TAXONOMY_FILE,
    CONTENT_TAXONOMY_FILE,
    AgeBand,
    iab_age_bands,
    load_audience_taxonomy,
    load_content_taxonomy,
    load_deny_list,
    load_mappings,
)
from pipelines.reference.geo import load_geography
from pipelines.schemas import RUNS

if TYPE_CHECKING:  # the daily job imports this stage; import its context for type hints only (no cycle)
    from pipelines.jobs.daily import RunContext

TV_DAILY = "tv_daily_genre_minutes"
WEB_DAILY = "web_daily_category_events"
TCF_VERDICTS = "tcf_verdicts"
EVIDENCE = "interest_evidence"
AGGREGATE_RUNS = "profile_aggregate_runs"

TV_DAILY_KEYS = ("customer_id", "day", "genre", "subgenre")
WEB_DAILY_KEYS = ("cookie_id", "mobile_ad_id", "day", "content_category_id", "event_type")

TV_DAILY_SCHEMA = "customer_id string, day date, genre string, subgenre string, minutes double, views long"
WEB_DAILY_SCHEMA = ("cookie_id string, mobile_ad_id string, day date, content_category_id string, "
                    "event_type string, events long")
VERDICT_SCHEMA = "tc_hash string, tcf_ok boolean, tcf_reason string, vendor_id int, required_purposes string"
AGGREGATE_RUNS_SCHEMA = "aggregate string, run_id string, fingerprint string, as_of date"

#: Published columns of ``gold/tv_profiles``; ``gold/web_profiles`` adds :data:`WEB_EXTRA_COLUMNS` before as_of.
TV_PROFILE_COLUMNS = (*ATTRIBUTE_COLUMNS, "interests", AREA_CHILDREN_SHARE, "as_of")
WEB_EXTRA_COLUMNS = ("cookie_id", "mobile_ad_id", "tv_ad_exposures_28d", "exposed_campaigns")
WEB_PROFILE_COLUMNS = (*ATTRIBUTE_COLUMNS, "interests", *WEB_EXTRA_COLUMNS, AREA_CHILDREN_SHARE, "as_of")

EVIDENCE_COLUMNS = (
    "customer_id", "channel", "interest", "iab_audience_id", "source", "window_days", "minutes_or_events",
    "score", "weighted_evidence", "share", "population_share", "lift", "mapping_versions", "as_of",
)


# ------------------------------------------------------------------------------------------- reference tables


@dataclass(frozen=True)
class ProfileReferences:
    """Small broadcast tables built from ``conf/`` (validated mappings, deny-list applied, geography)."""

    genre_map: DataFrame      # genre, genre_audience_id, genre_denied
    subgenre_map: DataFrame   # subgenre, subgenre_audience_id
    content_map: DataFrame    # content_id, audience_id
    product_map: DataFrame    # product_category, product_tier, audience_id
    labels: DataFrame         # iab_audience_id, interest
    geography: DataFrame      # postal_code, province, region
    age_bands: tuple[AgeBand, ...]
    mapping_versions: str


def profile_references(spark: SparkSession, conf_dir: Path) -> ProfileReferences:
    """Load and validate the mappings (``load_mappings`` refuses bad ones) and apply the deny-list again (P4).

    The mappings are already checked against the deny-list; the rows are filtered here once more so that
    no code path can turn a special category into an interest, whatever a future mapping file says: a denied
    audience id yields nothing, and a TV genre whose content category is denied drops its viewing entirely.
    """
    audience = load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE)
    content = load_content_taxonomy(conf_dir / CONTENT_TAXONOMY_FILE)
    deny = load_deny_list(conf_dir, audience, content)
    mappings = load_mappings(conf_dir)

    def usable(audience_id: int | None, content_id: str | None) -> bool:
        return (audience_id is not None and audience_id in audience and audience[audience_id].is_interest
                and not deny.denies_audience(audience_id) and not deny.denies_content(content_id))

    genre_rows = [
        (m.ctv_genre, m.audience_id if usable(m.audience_id, m.content_id) else None,
         deny.denies_content(m.content_id) or deny.denies_audience(m.audience_id))
        for m in mappings.genres
    ]
    subgenre_rows = [(m.key, m.audience_id) for m in mappings.subgenres if usable(m.audience_id, m.content_id)]
    content_rows = [(m.content_id, m.audience_id) for m in mappings.content
                    if usable(m.audience_id, m.content_id)]
    product_rows = [(m.product_category, m.product_tier, m.audience_id) for m in mappings.products
                    if usable(m.audience_id, None)]
    labels = sorted(mappings.interest_labels.items())
    geo_rows = [(a.postal_code, a.province_code, a.region_code) for a in load_geography(conf_dir).areas.values()]
    versions = ";".join(f"{k}={v}" for k, v in sorted(mappings.versions.items()))
    return ProfileReferences(
        genre_map=io.local_frame(spark, genre_rows, "genre string, genre_audience_id int, genre_denied boolean"),
        subgenre_map=io.local_frame(spark, subgenre_rows, "subgenre string, subgenre_audience_id int"),
        content_map=io.local_frame(spark, content_rows, "content_id string, audience_id int"),
        product_map=io.local_frame(spark, product_rows,
                                   "product_category string, product_tier string, audience_id int"),
        labels=io.local_frame(spark, labels, "iab_audience_id int, interest string"),
        geography=io.local_frame(spark, sorted(geo_rows), "postal_code string, province string, region string"),
        age_bands=iab_age_bands(audience),
        mapping_versions=versions,
    )


# ------------------------------------------------------------------------------------------- pure computation


@dataclass(frozen=True)
class ProfileInputs:
    """Every source the profiles read, ungated (the gate is applied inside :func:`build_profiles`)."""

    customers: DataFrame
    sociodemo_individual: DataFrame
    sociodemo_area: DataFrame
    cadastral: DataFrame
    purchases: DataFrame
    loyalty_events: DataFrame
    identity_links: DataFrame
    tv_ad_exposures: DataFrame
    tv_daily: DataFrame    # silver/tv_daily_genre_minutes
    web_daily: DataFrame   # silver/web_daily_category_events


@dataclass(frozen=True)
class ProfileOutputs:
    """Published profiles, internal evidence, and the scores behind them.

    ``scores``: ``"tv"`` (TV profile, minutes), ``"web"`` (web profile, events), ``"web_viewing"`` (web
    profile, viewing minutes of customers also eligible for TV personalisation).
    """

    tv_profiles: DataFrame
    web_profiles: DataFrame
    evidence: DataFrame
    scores: Mapping[str, Scores]


def _attributes(inputs: ProfileInputs, elig: DataFrame, refs: ProfileReferences, settings: Settings,
                as_of: date, processing: str, column: str) -> DataFrame:
    """Attributes of the customers eligible for ``processing``; customer-keyed sources gated first (C2)."""
    p = settings.profiles

    def gated(df: DataFrame) -> DataFrame:
        return only_eligible(df, elig, processing)

    web = processing == "web_profile"  # cadastral data and products bought: web profile only (policy)
    return profile_attributes(
        customers=gated(inputs.customers),
        ages=elig.where(F.col(column)).select("customer_id", "age"),
        individual=individual_sociodemo(gated(inputs.sociodemo_individual), as_of),
        area=area_sociodemo(inputs.sociodemo_area, as_of),
        geography=refs.geography,
        bands=refs.age_bands,
        homes=home(inputs.cadastral) if web else None,
        purchases=(purchase_features(gated(inputs.purchases), as_of, settings.timezone, p.purchase_lookback_days)
                   if web else None),
    )


def _published_pairs(published: DataFrame) -> DataFrame:
    return published.select("customer_id", F.explode("interests").alias("_i")).select(
        "customer_id", F.col("_i.iab_audience_id").alias("iab_audience_id"))


def _evidence(scores: Scores, published: DataFrame, channel: str, refs: ProfileReferences, as_of: date) -> DataFrame:
    """Per source and window evidence of the *published* interests of one channel (internal, never exported)."""
    return (
        scores.sources.join(_published_pairs(published), ["customer_id", "iab_audience_id"], "left_semi")
        .join(F.broadcast(refs.labels), "iab_audience_id", "left")
        .select(
            "customer_id", F.lit(channel).alias("channel"), "interest", "iab_audience_id", "source",
            "window_days", F.col("quantity").alias("minutes_or_events"), "score",
            F.col("weighted").alias("weighted_evidence"), "share", "population_share", "lift",
            F.lit(refs.mapping_versions).alias("mapping_versions"), F.lit(as_of).alias("as_of"),
        )
    )


def build_profiles(inputs: ProfileInputs, elig: DataFrame, refs: ProfileReferences, settings: Settings,
                   as_of: date, cut: Callable[[DataFrame], DataFrame] = _identity) -> ProfileOutputs:
    """TV and web profiles at ``as_of`` and their evidence: no I/O, every customer-keyed source gated first.

    * TV (P1, C6): customers ``eligible_tv_profile`` (adult, not erased, no objection to TV personalisation);
      interests from viewing minutes of those customers only, so an objector's viewing enters neither their
      profile nor anybody's population figures.
    * Web (P2, C4): customers ``eligible_web_profile``; interests from C4-passing web events of their linked
      devices, loyalty events and purchases (one event scale, scored together), and from viewing genres
      ("the types of programmes you watch") *only when the customer is also eligible for TV personalisation*:
      an objection to TV personalisation keeps viewing out of every advertising profile. Viewing is scored in
      minutes against the population of customers eligible for both; an interest's web score is the larger of
      its event score and its viewing score. TV ad exposures (cross-media consistency) are features, not
      interests, and are filled only for customers eligible for TV personalisation (else null).

    ``cut`` is applied to the frames that several outputs share (scores, published interests, attributes, linked
    devices): the daily run passes :func:`pipelines.io.materialise`, which computes each once and cuts its
    lineage. Without it the three outputs repeat every shared computation, and the plans grow to hundreds of
    stages for a few customers. The default (identity) keeps the function free of side effects for tests.
    """
    p = settings.profiles
    tz = settings.timezone
    minutes = ScoringParams.for_minutes(p, as_of)
    events = ScoringParams.for_events(p, as_of)
    cutoff = F.lit(end_of_day(as_of, tz)).cast(TimestampType())

    # --- TV profile -------------------------------------------------------------------------------------
    tv_daily = only_eligible(inputs.tv_daily, elig, "tv_profile")
    tv_scores = score_interests(tv_units(tv_daily, refs.genre_map, refs.subgenre_map), minutes, cut)
    tv_published = cut(top_interests(qualified(tv_scores, minutes), refs.labels, p.max_interests))
    tv_profiles = (
        cut(_attributes(inputs, elig, refs, settings, as_of, "tv_profile", "eligible_tv_profile"))
        .join(tv_published, "customer_id", "left")
        .withColumn("interests", F.coalesce(F.col("interests"), empty_interests()))
        .withColumn("as_of", F.lit(as_of))
        .select(*TV_PROFILE_COLUMNS)
    )

    # --- Web profile ------------------------------------------------------------------------------------
    # Devices of eligible customers only, and none shared with someone who is not eligible (a minor, an objector).
    linked = cut(exclusive_devices(linked_ad_ids(inputs.identity_links, cutoff), eligible_ids(elig, "web_profile")))
    web_units = (
        web_event_units(resolve_devices(inputs.web_daily, linked), refs.content_map, p.web_event_weights)
        .unionByName(loyalty_units(only_eligible(inputs.loyalty_events, elig, "web_profile"), refs.content_map,
                                   p.loyalty_weight, tz))
        .unionByName(purchase_units(only_eligible(inputs.purchases, elig, "web_profile"), refs.product_map,
                                    p.purchase_weight, tz))
    )
    web_scores = score_interests(web_units, events, cut)
    viewing_for_web = only_eligible(only_eligible(inputs.tv_daily, elig, "tv_profile"), elig, "web_profile")
    viewing_scores = score_interests(tv_units(viewing_for_web, refs.genre_map, refs.subgenre_map), minutes, cut)
    candidates = (
        qualified(web_scores, events).unionByName(qualified(viewing_scores, minutes))
        .groupBy("customer_id", "iab_audience_id").agg(F.max("score").alias("score"))
    )
    web_published = cut(top_interests(candidates, refs.labels, p.max_interests))

    both = elig.where(F.col("eligible_web_profile") & F.col("eligible_tv_profile")).select(
        "customer_id", F.lit(True).alias("_tv_ok"))
    exposures = exposure_features(
        only_eligible(only_eligible(inputs.tv_ad_exposures, elig, "tv_profile"), elig, "web_profile"), as_of, tz)
    no_ids = F.array().cast("array<string>")
    web_profiles = (
        cut(_attributes(inputs, elig, refs, settings, as_of, "web_profile", "eligible_web_profile"))
        .join(web_published, "customer_id", "left")
        .join(ad_ids(linked), "customer_id", "left")
        .join(both, "customer_id", "left")
        .join(exposures, "customer_id", "left")
        .select(
            *ATTRIBUTE_COLUMNS,
            F.coalesce(F.col("interests"), empty_interests()).alias("interests"),
            F.coalesce(F.col("cookie_id"), no_ids).alias("cookie_id"),
            F.coalesce(F.col("mobile_ad_id"), no_ids).alias("mobile_ad_id"),
            F.when(F.col("_tv_ok"), F.coalesce(F.col("tv_ad_exposures_28d"), F.lit(0))).alias("tv_ad_exposures_28d"),
            F.when(F.col("_tv_ok"), F.coalesce(F.col("exposed_campaigns"), no_ids)).alias("exposed_campaigns"),
            AREA_CHILDREN_SHARE,
            F.lit(as_of).alias("as_of"),
        )
    )

    evidence = (
        _evidence(tv_scores, tv_published, "tv", refs, as_of)
        .unionByName(_evidence(web_scores, web_published, "web", refs, as_of))
        .unionByName(_evidence(viewing_scores, web_published, "web", refs, as_of))
        .select(*EVIDENCE_COLUMNS)
    )
    scores = {"tv": tv_scores, "web": web_scores, "web_viewing": viewing_scores}
    return ProfileOutputs(tv_profiles, web_profiles, evidence, scores)


# ---------------------------------------------------------------------------------- incremental aggregates


def _aggregate_runs(ctx: RunContext) -> Path:
    return ctx.wh.table("ops", AGGREGATE_RUNS)


def _pending_runs(ctx: RunContext, aggregate: str, fingerprint: str) -> list[str] | None:
    """Run ids whose silver rows ``aggregate`` has not folded in yet; None means "rebuild in full"."""
    if ctx.full_refresh or not io.exists(ctx.spark, ctx.wh.table("silver", aggregate)):
        return None
    book = (io.read(ctx.spark, _aggregate_runs(ctx), ctx.spark.createDataFrame([], AGGREGATE_RUNS_SCHEMA).schema)
            .where(F.col("aggregate") == aggregate).select("run_id", "fingerprint").collect())
    if not book or any(r.fingerprint != fingerprint for r in book):
        return None
    return sorted(_known_runs(ctx) - {r.run_id for r in book})


def _known_runs(ctx: RunContext) -> set[str]:
    """Runs recorded in ``ops/runs`` (one row per day: small) and the current one."""
    runs = io.read(ctx.spark, ctx.wh.table("ops", "runs"), RUNS).select("run_id").collect()
    return {r.run_id for r in runs} | {ctx.run_id}


def _record_runs(ctx: RunContext, aggregate: str, run_ids: set[str], fingerprint: str, full: bool) -> None:
    rows = [(aggregate, r, fingerprint, ctx.as_of) for r in sorted(run_ids)]
    df = ctx.spark.createDataFrame(rows, AGGREGATE_RUNS_SCHEMA)
    path = _aggregate_runs(ctx)
    if full:
        io.replace_where(df, path, f"aggregate = '{aggregate}'")
    elif rows:
        io.insert_new(df, path, ("aggregate", "run_id"))


def _day_bounds(touched: DataFrame, tz: str) -> tuple:
    """UTC instants bounding the local days of ``touched`` (for file skipping on the silver timestamp)."""
    row = touched.agg(F.min("day").alias("lo"), F.max("day").alias("hi")).first()
    if row is None or row.lo is None:
        return None, None
    return end_of_day(row.lo - timedelta(days=1), tz), end_of_day(row.hi, tz)


def _ts_between(column: str, lo, hi):
    return (F.col(column) >= F.lit(lo).cast(TimestampType())) & (F.col(column) < F.lit(hi).cast(TimestampType()))


def refresh_tv_daily(ctx: RunContext) -> dict[str, float]:
    """Fold new ``silver/tv_viewing`` rows into ``silver/tv_daily_genre_minutes`` (all customers, C6)."""
    tz = ctx.settings.timezone
    fingerprint = f"tz={tz}"
    path = ctx.wh.table("silver", TV_DAILY)
    viewing = ctx.silver("tv_viewing")
    pending = _pending_runs(ctx, TV_DAILY, fingerprint)
    if pending is None:
        io.overwrite(tv_daily_genre_minutes(viewing, tz), path)
        runs = {r._run_id for r in viewing.select("_run_id").distinct().collect() if r._run_id} | _known_runs(ctx)
        _record_runs(ctx, TV_DAILY, runs, fingerprint, full=True)
        return {"full_rebuild": 1.0, "pending_runs": float(len(runs))}
    if pending:
        new = viewing.where(F.col("_run_id").isin(pending))
        touched = new.select("customer_id", local_day(F.col("start_ts"), tz).alias("day")).distinct()
        lo, hi = _day_bounds(touched, tz)
        if lo is not None:
            keys = touched.select(F.col("customer_id").alias("_c"), F.col("day").alias("_d"))
            rows = (
                viewing.where(_ts_between("start_ts", lo, hi))
                .withColumn("_day", local_day(F.col("start_ts"), tz))
                .join(keys, (F.col("customer_id") == F.col("_c")) & (F.col("_day") == F.col("_d")), "left_semi")
                .drop("_day")
            )
            io.upsert(tv_daily_genre_minutes(rows, tz), path, TV_DAILY_KEYS)
        _record_runs(ctx, TV_DAILY, set(pending), fingerprint, full=False)
    return {"full_rebuild": 0.0, "pending_runs": float(len(pending))}


def _tcf_config(ctx: RunContext) -> tuple[int, str]:
    tcf = ctx.settings.tcf
    return int(tcf.vendor_id), ",".join(str(p) for p in sorted(set(tcf.required_purposes)))


def _verdicts(ctx: RunContext) -> DataFrame:
    """``silver/tcf_verdicts`` rows for the configured vendor and purposes (read from Delta: no Python)."""
    vendor, purposes = _tcf_config(ctx)
    schema = ctx.spark.createDataFrame([], VERDICT_SCHEMA).schema
    return io.read(ctx.spark, ctx.wh.table("silver", TCF_VERDICTS), schema).where(
        (F.col("vendor_id") == vendor) & (F.col("required_purposes") == purposes))


def refresh_tcf_verdicts(ctx: RunContext, events: DataFrame) -> int:
    """Decide C4 once per new distinct TC string of ``events``; store the verdict under the string's hash.

    The decoder (``tcf_verdicts``, Arrow batches) runs here, on the distinct new strings, and its result is
    materialised, so no later plan (aggregates, profiles) contains Python execution. Returns the new count.
    """
    vendor, purposes = _tcf_config(ctx)
    strings = events.where(F.col("tc_string").isNotNull()).select("tc_string").distinct()
    new = strings.join(_verdicts(ctx).select("tc_hash"), tc_hash(F.col("tc_string")) == F.col("tc_hash"),
                       "left_anti")
    decided = io.materialise(
        tcf_verdicts(new, required_purposes=ctx.settings.tcf.required_purposes, vendor_id=vendor)
        .select(tc_hash(F.col("tc_string")).alias("tc_hash"), "tcf_ok", "tcf_reason",
                F.lit(vendor).alias("vendor_id"), F.lit(purposes).alias("required_purposes"))
    )
    count = decided.count()
    if count:
        io.insert_new(decided, ctx.wh.table("silver", TCF_VERDICTS), ("tc_hash", "vendor_id", "required_purposes"))
    return count


def refresh_web_daily(ctx: RunContext) -> dict[str, float]:
    """Fold new ``silver/web_events`` rows (C4-passing) into ``silver/web_daily_category_events``."""
    tz = ctx.settings.timezone
    vendor, purposes = _tcf_config(ctx)
    fingerprint = f"tz={tz};vendor={vendor};purposes={purposes}"
    path = ctx.wh.table("silver", WEB_DAILY)
    events = ctx.silver("web_events")
    pending = _pending_runs(ctx, WEB_DAILY, fingerprint)
    if pending is None:
        new_strings = refresh_tcf_verdicts(ctx, events)
        io.overwrite(web_daily_category_events(events, _verdicts(ctx), tz), path)
        runs = {r._run_id for r in events.select("_run_id").distinct().collect() if r._run_id} | _known_runs(ctx)
        _record_runs(ctx, WEB_DAILY, runs, fingerprint, full=True)
        return {"full_rebuild": 1.0, "pending_runs": float(len(runs)), "new_tc_strings": float(new_strings)}
    new_strings = 0
    if pending:
        new = events.where(F.col("_run_id").isin(pending))
        new_strings = refresh_tcf_verdicts(ctx, new)
        touched = new.select("cookie_id", "mobile_ad_id", local_day(F.col("ts"), tz).alias("day")).distinct()
        lo, hi = _day_bounds(touched, tz)
        if lo is not None:
            keys = touched.select(F.col("cookie_id").alias("_k"), F.col("mobile_ad_id").alias("_m"),
                                  F.col("day").alias("_d"))
            rows = (
                events.where(_ts_between("ts", lo, hi))
                .withColumn("_day", local_day(F.col("ts"), tz))
                .join(keys, F.col("cookie_id").eqNullSafe(F.col("_k")) & F.col("mobile_ad_id").eqNullSafe(F.col("_m"))
                      & (F.col("_day") == F.col("_d")), "left_semi")
                .drop("_day")
            )
            io.upsert(web_daily_category_events(rows, _verdicts(ctx), tz), path, WEB_DAILY_KEYS)
        _record_runs(ctx, WEB_DAILY, set(pending), fingerprint, full=False)
    return {"full_rebuild": 0.0, "pending_runs": float(len(pending)), "new_tc_strings": float(new_strings)}


# ----------------------------------------------------------------------------------------------- the stage


def read_inputs(ctx: RunContext) -> ProfileInputs:
    """Silver sources and aggregates, restricted by date where that lets Delta skip files (no gating here)."""
    p = ctx.settings.profiles
    tz = ctx.settings.timezone
    longest = max(p.lookback_days)
    first_day = ctx.as_of - timedelta(days=longest - 1)
    since = end_of_day(first_day - timedelta(days=1), tz)
    until = end_of_day(ctx.as_of, tz)
    exposures_since = end_of_day(ctx.as_of - timedelta(days=EXPOSURE_DAYS), tz)
    spark = ctx.spark

    def window(df: DataFrame) -> DataFrame:
        return df.where((F.col("day") >= F.lit(first_day)) & (F.col("day") <= F.lit(ctx.as_of)))

    return ProfileInputs(
        customers=ctx.silver("customers"),
        sociodemo_individual=ctx.silver("sociodemo_individual"),
        sociodemo_area=ctx.silver("sociodemo_area"),
        cadastral=ctx.silver("cadastral"),
        purchases=ctx.silver("purchases"),
        loyalty_events=ctx.silver("loyalty_events").where(_ts_between("ts", since, until)),
        identity_links=ctx.silver("identity_links"),
        tv_ad_exposures=ctx.silver("tv_ad_exposures").where(_ts_between("ts", exposures_since, until)),
        tv_daily=window(io.read(spark, ctx.wh.table("silver", TV_DAILY),
                                spark.createDataFrame([], TV_DAILY_SCHEMA).schema)),
        web_daily=window(io.read(spark, ctx.wh.table("silver", WEB_DAILY),
                                 spark.createDataFrame([], WEB_DAILY_SCHEMA).schema)),
    )


def stage_profiles(ctx: RunContext, elig: DataFrame) -> None:
    """Refresh the daily aggregates, build both profiles, write the evidence, hand the profiles to publish.

    Puts ``tv_profiles`` and ``web_profiles`` (persisted) into ``ctx.outputs``; writes
    ``silver/interest_evidence``; adds ``profiles.*`` counts to ``ctx.metrics``.
    """
    with ctx.progress.stage("profile aggregates") as counts:
        tv = refresh_tv_daily(ctx)
        web = refresh_web_daily(ctx)
        for name, figures in (("tv_daily", tv), ("web_daily", web)):
            for key, value in figures.items():
                ctx.metrics[f"profiles.{name}.{key}"] = value
        counts.update(tv_full=int(tv["full_rebuild"]), web_full=int(web["full_rebuild"]),
                      new_tc_strings=int(web["new_tc_strings"]))

    with ctx.progress.stage("profiles") as counts:
        refs = profile_references(ctx.spark, ctx.settings.conf_dir)
        out = build_profiles(read_inputs(ctx), elig, refs, ctx.settings, ctx.as_of, cut=io.materialise)
        io.overwrite(out.evidence, ctx.wh.table("silver", EVIDENCE))
        tv_profiles = io.materialise(out.tv_profiles)  # later stages build on them: cut the lineage
        web_profiles = io.materialise(out.web_profiles)
        figures = {
            "tv": tv_profiles.agg(F.count(F.lit(1)).alias("n"),
                                  F.sum((F.size("interests") > 0).cast("int")).alias("k")).first(),
            "web": web_profiles.agg(F.count(F.lit(1)).alias("n"),
                                    F.sum((F.size("interests") > 0).cast("int")).alias("k")).first(),
        }
        evidence_rows = io.read(ctx.spark, ctx.wh.table("silver", EVIDENCE)).count()
        for channel, row in figures.items():
            ctx.metrics[f"profiles.{channel}"] = float(row.n or 0)
            ctx.metrics[f"profiles.{channel}_with_interests"] = float(row.k or 0)
        ctx.metrics["profiles.evidence_rows"] = float(evidence_rows)
        ctx.outputs["tv_profiles"] = tv_profiles
        ctx.outputs["web_profiles"] = web_profiles
        counts.update(tv=int(ctx.metrics["profiles.tv"]), web=int(ctx.metrics["profiles.web"]),
                      evidence=evidence_rows)
