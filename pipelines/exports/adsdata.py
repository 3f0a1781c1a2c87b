"""The Ads & Data delivery (A1-A4, C3): pseudonymous, coarse profiles of consenting adults, and revocations.

Data flow of :func:`stage_adsdata`, per recipient of ``adsdata.recipients``::

    silver/customers, gold tv/web profiles, segment membership
        -- only_eligible(..., "ads_and_data") first (C2) -->  one row per customer: coarse attributes
        -- pseudonymise (HMAC-SHA256, recipient's active key) -->  pseudo_id, key_id      (once per customer)
        -- reconcile with the previous ledger snapshot -->  new / changed / unchanged / revoked
        --> ops/adsdata_ledger (snapshot as_of), exports/<recipient>/as_of=<date>/, ctx.outputs

What leaves (A3): ``pseudo_id``, ``key_id``, ``expires_at``, ``age_band`` (IAB bands, same as the profiles),
``gender``, ``language``, ``region`` (ISO 3166-2:BE region, not the postal code), ``interests`` (IAB Audience
Taxonomy ids with a coarse ``level`` instead of the exact score: an exact score vector is a fingerprint that
would let the recipient link a person across key rotations), ``segments`` (names), ``change``, ``recipient``,
``as_of``. No customer id, name, e-mail, phone, address, postal code, birth date or device id. Rows are sorted by
pseudonym, so their order says nothing about customer ids either.

Expiry (A4): every delivered row carries ``expires_at = as_of + adsdata.expiry_months``; each delivery refreshes
it ("Ads & Data will constantly update your personal data and keep it for a maximum of 13 months").

Revocations (A4, C3): a pseudonym delivered before and not delivered now is revoked once, in the same delivery
as the profiles, with ``reason`` from the contract's list and a finer ``detail``:

============  ============================  ==========================================================================
reason        detail                        when
============  ============================  ==========================================================================
erased        ``subject_erased``            the ledger row's customer id was scrubbed (see :func:`forget_in_ledger`)
erased        ``erasure_request``           the customer has an erasure request
erased        ``customer_removed``          the customer is no longer in ``silver/customers``
withdrawn     ``consent_withdrawn``         ``ads_and_data`` is no longer granted
withdrawn     ``no_longer_eligible``        still granted but no longer allowed (e.g. corrected birth date: minor)
expired       ``key_rotated``               still eligible, delivered under a newer key (``audience keys rotate``)
expired       ``retention_limit``           any other pseudonym not re-delivered (not reachable in normal runs)
============  ============================  ==========================================================================

Key rotation is filed under ``expired`` because the contract allows only withdrawn, erased and expired, and
for the recipient it means the same thing: delete the old pseudonym, the profile comes back under the new one.
No old-to-new mapping is ever delivered: it would link pseudonyms across keys and defeat the rotation.

The ledger ``ops/adsdata_ledger`` is internal (never published): one row per (recipient, key id, pseudonym) with
the ``customer_id`` it belongs to, so that erasure and access requests can find every delivery of a person
(R1, R2), first/last delivery, expiry, an attribute hash (to tell changed from unchanged) and revocation. It is
a snapshot per ``as_of`` (partition): a run reads the latest snapshot *before* its as-of and replaces its own, so
rerunning an as-of gives the same delivery (O1). Snapshots older than a week (except the previous one) are
deleted. Revoked rows are kept ``expiry_months`` for the record, except erased ones, which are dropped from the
snapshot after the delivery that revoked them.

Files: ``profiles.parquet``, ``revocations.parquet`` and ``manifest.json`` (row counts read back from the Parquet
footers, SHA-256 and size per file, key ids, expiry, counts per change and reason) are written to a hidden
sibling folder that then replaces ``as_of=<date>/`` (a rerun replaces the delivery). Our copies of deliveries
older than ``expiry_months`` are deleted.
"""
from __future__ import annotations

import calendar
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DateType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from pipelines import io
from pipelines.consent.gate import only_eligible
from pipelines.privacy.pseudonym import hmac_pads, pseudonymise
from pipelines.profiles.attributes import age_band
from pipelines.reference.geo import load_geography
from pipelines.reference.taxonomy import AUDIENCE_TAXONOMY_FILE, AgeBand, iab_age_bands, load_audience_taxonomy

if TYPE_CHECKING:  # type hints only: the daily job imports the stages
    from pipelines.jobs.daily import RunContext

PROCESSING = "ads_and_data"
REASONS = ("withdrawn", "erased", "expired")
CHANGES = ("new", "changed", "unchanged")
LEDGER_TABLE = "adsdata_ledger"
#: Ledger snapshots kept before the current one (reruns of the last week's as-of dates are exact).
LEDGER_SNAPSHOT_DAYS = 7

#: Coarse interest level from the profile score (a lift, >= profiles.min_lift): highest threshold first.
INTEREST_LEVELS: tuple[tuple[float, str], ...] = ((4.0, "very_strong"), (2.0, "strong"))
DEFAULT_LEVEL = "moderate"

#: Attributes delivered per person (besides pseudonym, key id and expiry).
ATTRIBUTES = ("age_band", "gender", "language", "region", "interests", "segments")

ADSDATA_INTEREST = StructType([
    StructField("iab_audience_id", IntegerType(), True),
    StructField("level", StringType(), True),
])
INTERESTS_TYPE = ArrayType(ADSDATA_INTEREST, True)
SEGMENTS_TYPE = ArrayType(StringType(), True)

#: ``gold/adsdata_export`` and ``profiles.parquet``: one row per pseudonymous person.
ADSDATA_EXPORT = StructType([
    StructField("pseudo_id", StringType(), False),
    StructField("key_id", StringType(), False),
    StructField("expires_at", DateType(), False),
    StructField("age_band", StringType(), True),
    StructField("gender", StringType(), True),
    StructField("language", StringType(), True),
    StructField("region", StringType(), True),
    StructField("interests", INTERESTS_TYPE, False),
    StructField("segments", SEGMENTS_TYPE, False),
    StructField("change", StringType(), False),
    StructField("recipient", StringType(), False),
    StructField("as_of", DateType(), False),
])

#: ``gold/adsdata_revocations`` and ``revocations.parquet``: pseudonyms to delete, revoked on ``as_of``.
ADSDATA_REVOCATIONS = StructType([
    StructField("pseudo_id", StringType(), False),
    StructField("key_id", StringType(), False),
    StructField("reason", StringType(), False),
    StructField("detail", StringType(), False),
    StructField("recipient", StringType(), False),
    StructField("as_of", DateType(), False),
])

#: ``ops/adsdata_ledger`` (internal; holds customer_id): one row per recipient, key id and pseudonym, per snapshot.
LEDGER = StructType([
    StructField("recipient", StringType(), False),
    StructField("key_id", StringType(), False),
    StructField("pseudo_id", StringType(), False),
    StructField("customer_id", StringType(), True),
    StructField("first_delivered", DateType(), True),
    StructField("last_delivered", DateType(), True),
    StructField("expires_at", DateType(), True),
    StructField("profile_hash", StringType(), True),
    StructField("revoked_at", DateType(), True),
    StructField("reason", StringType(), True),
    StructField("detail", StringType(), True),
    StructField("as_of", DateType(), False),
])



# ------------------------------------------------------------------------------------------- attributes


def interest_level(score: Column) -> Column:
    """Coarse level of an interest score: ``very_strong`` (>= 4), ``strong`` (>= 2), else ``moderate``."""
    level: Column | None = None
    for threshold, name in INTEREST_LEVELS:
        level = F.when(score >= threshold, name) if level is None else level.when(score >= threshold, name)
    return F.lit(DEFAULT_LEVEL) if level is None else level.otherwise(DEFAULT_LEVEL)


def adsdata_demographics(customers: DataFrame, elig: DataFrame, geography: DataFrame,
                         bands: Sequence[AgeBand]) -> DataFrame:
    """``customer_id, age_band, gender, language, region`` of every customer eligible for ``ads_and_data``.

    Computed the way the profiles compute them (``silver/customers`` is a snapshot, one row per customer; IAB
    age band of the gate's age; region of the postal code), from ``silver/customers`` for everyone, so a consenter
    with neither a TV nor a web profile gets the same attributes as one with both. ``geography``: postal_code,
    region.
    """
    label, _ = age_band(F.col("age"), bands)
    ages = elig.where(F.col("eligible_ads_and_data")).select("customer_id", "age")
    people = only_eligible(customers, elig, PROCESSING).select("customer_id", "gender", "language", "postal_code")
    return (
        ages.join(people, "customer_id")
        .join(F.broadcast(geography.select("postal_code", "region")), "postal_code", "left")
        .select("customer_id", label.alias("age_band"), "gender", "language", "region")
    )


def adsdata_interests(profiles: Sequence[DataFrame], elig: DataFrame, max_interests: int) -> DataFrame:
    """``customer_id, interests`` (array of ``iab_audience_id, level``, sorted by id) from the given profiles.

    Each profile is gated to ``ads_and_data`` first; an interest present in several profiles keeps its highest
    score; at most ``max_interests`` per person (highest scores, then lowest id).
    """
    spark = elig.sparkSession
    empty = spark.createDataFrame([], StructType([
        StructField("customer_id", StringType()), StructField("interests", INTERESTS_TYPE)]))
    if not profiles:
        return empty
    pairs = None
    for profile in profiles:
        part = (only_eligible(profile, elig, PROCESSING)
                .select("customer_id", F.explode("interests").alias("_i"))
                .select("customer_id", F.col("_i.iab_audience_id").cast(IntegerType()).alias("iab_audience_id"),
                        F.col("_i.score").alias("score")))
        pairs = part if pairs is None else pairs.unionByName(part)
    assert pairs is not None
    rank = Window.partitionBy("customer_id").orderBy(F.col("score").desc(), F.col("iab_audience_id").asc())
    return (
        pairs.where(F.col("iab_audience_id").isNotNull())
        .groupBy("customer_id", "iab_audience_id").agg(F.max("score").alias("score"))
        .withColumn("_rank", F.row_number().over(rank))
        .where(F.col("_rank") <= max_interests)
        .groupBy("customer_id")
        .agg(F.array_sort(F.collect_list(F.struct(
            F.col("iab_audience_id"), interest_level(F.col("score")).alias("level")))).alias("interests"))
        .select("customer_id", F.col("interests").cast(INTERESTS_TYPE).alias("interests"))
    )


def adsdata_segments(membership: DataFrame | None, elig: DataFrame) -> DataFrame:
    """``customer_id, segments``: sorted distinct segment names over both channels (gated to ``ads_and_data``)."""
    if membership is None:
        return elig.sparkSession.createDataFrame([], "customer_id string, segments array<string>")
    return (only_eligible(membership, elig, PROCESSING)
            .groupBy("customer_id").agg(F.array_sort(F.collect_set("segment")).alias("segments")))


def adsdata_profiles(demographics: DataFrame, interests: DataFrame, segments: DataFrame) -> DataFrame:
    """``customer_id``, :data:`ATTRIBUTES` and ``profile_hash`` (SHA-256 of the attributes, to detect changes).

    One row per row of ``demographics``; no interest or segment gives an empty array. ``profile_hash`` is an
    internal change detector kept in the ledger, never delivered.
    """
    no_interests = F.array().cast(INTERESTS_TYPE)
    no_segments = F.array().cast(SEGMENTS_TYPE)
    out = (
        demographics.join(interests, "customer_id", "left").join(segments, "customer_id", "left")
        .select(
            "customer_id", "age_band", "gender", "language", "region",
            F.coalesce(F.col("interests"), no_interests).alias("interests"),
            F.coalesce(F.col("segments"), no_segments).alias("segments"),
        )
    )
    return out.withColumn("profile_hash", F.sha2(F.to_json(F.struct(*ATTRIBUTES)), 256))


# ------------------------------------------------------------------------------------------- reconciliation


def revocation_reason(scrubbed: Column, known: Column, erased: Column, eligible: Column) -> Column:
    """Contract reason of a revocation (erased > withdrawn > expired); see the module table."""
    return (F.when(scrubbed | erased | ~known, F.lit("erased"))
            .when(~eligible, F.lit("withdrawn"))
            .otherwise(F.lit("expired")))


def revocation_detail(scrubbed: Column, known: Column, erased: Column, consent: Column, eligible: Column,
                      rotated: Column) -> Column:
    """Finer cause of a revocation, in the same priority order as :func:`revocation_reason`."""
    return (F.when(scrubbed, F.lit("subject_erased"))
            .when(erased, F.lit("erasure_request"))
            .when(~known, F.lit("customer_removed"))
            .when(~consent, F.lit("consent_withdrawn"))
            .when(~eligible, F.lit("no_longer_eligible"))
            .when(rotated, F.lit("key_rotated"))
            .otherwise(F.lit("retention_limit")))


def reconcile(previous: DataFrame, current: DataFrame, elig: DataFrame, as_of: date, expiry_months: int,
              active_key_id: str, recipient: str) -> DataFrame:
    """The new ledger snapshot of one recipient, with what changed since ``previous`` (no I/O).

    ``previous``: ledger rows (:data:`LEDGER`) of this recipient, from the latest snapshot before ``as_of``;
    ``current``: pseudonymised profiles (customer_id, pseudo_id, key_id, profile_hash, :data:`ATTRIBUTES`).
    Returns :data:`LEDGER` columns plus ``change`` (new, changed, unchanged for delivered rows; ``revoked`` for
    rows revoked now; null for rows carried over) and the attributes of delivered rows.

    A previous row is *live* at the recipient while it is not revoked and not expired: a delivered row is
    ``unchanged`` or ``changed`` against a live one, otherwise ``new``. A previous row that is not revoked and
    not delivered now is revoked now.
    """
    p = previous.select(*[F.col(c).alias(f"p_{c}") for c in LEDGER.fieldNames() if c not in ("recipient", "as_of")])
    status = elig.select(
        F.col("customer_id").alias("e_customer_id"),
        F.coalesce(F.col("erased"), F.lit(False)).alias("e_erased"),
        F.coalesce(F.col(f"consent_{PROCESSING}"), F.lit(False)).alias("e_consent"),
        F.coalesce(F.col(f"eligible_{PROCESSING}"), F.lit(False)).alias("e_eligible"),
    )
    joined = (
        current.join(p, (F.col("pseudo_id") == F.col("p_pseudo_id")) & (F.col("key_id") == F.col("p_key_id")),
                     "full_outer")
        .join(status, F.col("p_customer_id") == F.col("e_customer_id"), "left")
    )
    day = F.lit(as_of)
    delivered = F.col("pseudo_id").isNotNull()
    was_open = F.col("p_pseudo_id").isNotNull() & F.col("p_revoked_at").isNull()
    was_live = was_open & (F.col("p_expires_at") > day)
    revoke_now = ~delivered & was_open
    keep_revoked = (~delivered & F.col("p_revoked_at").isNotNull() & (F.col("p_reason") != "erased")
                    & (F.col("p_revoked_at") > F.add_months(day, -expiry_months)))
    scrubbed = F.col("p_customer_id").isNull()
    known = F.col("e_customer_id").isNotNull()
    erased, consent, eligible = F.col("e_erased"), F.col("e_consent"), F.col("e_eligible")
    rotated = F.col("p_key_id") != F.lit(active_key_id)

    def pick(now: Column, before: str) -> Column:
        return F.when(delivered, now).otherwise(F.col(before))

    null_date, null_text = F.lit(None).cast(DateType()), F.lit(None).cast(StringType())
    return (
        joined.where(delivered | revoke_now | keep_revoked)
        .select(
            F.lit(recipient).alias("recipient"),
            F.coalesce("key_id", "p_key_id").alias("key_id"),
            F.coalesce("pseudo_id", "p_pseudo_id").alias("pseudo_id"),
            pick(F.col("customer_id"), "p_customer_id").alias("customer_id"),
            pick(F.coalesce(F.col("p_first_delivered"), day), "p_first_delivered").alias("first_delivered"),
            pick(day, "p_last_delivered").alias("last_delivered"),
            pick(F.add_months(day, expiry_months), "p_expires_at").alias("expires_at"),
            pick(F.col("profile_hash"), "p_profile_hash").alias("profile_hash"),
            F.when(delivered, null_date).when(revoke_now, day).otherwise(F.col("p_revoked_at")).alias("revoked_at"),
            F.when(delivered, null_text).when(revoke_now, revocation_reason(scrubbed, known, erased, eligible))
            .otherwise(F.col("p_reason")).alias("reason"),
            F.when(delivered, null_text)
            .when(revoke_now, revocation_detail(scrubbed, known, erased, consent, eligible, rotated))
            .otherwise(F.col("p_detail")).alias("detail"),
            day.alias("as_of"),
            F.when(delivered & was_live & (F.col("profile_hash") == F.col("p_profile_hash")), F.lit("unchanged"))
            .when(delivered & was_live, F.lit("changed"))
            .when(delivered, F.lit("new"))
            .when(revoke_now, F.lit("revoked")).alias("change"),
            *ATTRIBUTES,
        )
    )


def export_rows(reconciled: DataFrame) -> DataFrame:
    """``gold/adsdata_export`` rows (:data:`ADSDATA_EXPORT`) of a reconciled snapshot: the delivered people."""
    delivered = reconciled.where(F.col("change").isin(*CHANGES))
    return delivered.select(*[F.col(f.name).cast(f.dataType) for f in ADSDATA_EXPORT.fields])


def revocation_rows(reconciled: DataFrame) -> DataFrame:
    """``gold/adsdata_revocations`` rows (:data:`ADSDATA_REVOCATIONS`): the pseudonyms revoked by this delivery."""
    return reconciled.where(F.col("change") == "revoked").select(*ADSDATA_REVOCATIONS.fieldNames())


def ledger_rows(reconciled: DataFrame) -> DataFrame:
    """``ops/adsdata_ledger`` rows (:data:`LEDGER`) of the snapshot."""
    return reconciled.select(*[F.col(f.name).cast(f.dataType) for f in LEDGER.fields])


# ------------------------------------------------------------------------------------------- ledger I/O


def ledger_path(wh: io.Warehouse) -> Path:
    return wh.table("ops", LEDGER_TABLE)


def previous_snapshot(spark: SparkSession, path: Path, as_of: date) -> tuple[DataFrame, date | None]:
    """The latest ledger snapshot strictly before ``as_of`` (empty, None when there is none)."""
    ledger = io.read(spark, path, LEDGER)
    prev = ledger.where(F.col("as_of") < F.lit(as_of)).agg(F.max("as_of")).first()[0]
    if prev is None:
        return spark.createDataFrame([], LEDGER), None
    return ledger.where(F.col("as_of") == F.lit(prev)), prev


def write_snapshot(ledger: DataFrame, path: Path, as_of: date, previous: date | None) -> None:
    """Replace this as-of's snapshot; delete snapshots older than a week, never the previous one."""
    io.replace_where(ledger, path, f"as_of = DATE'{as_of.isoformat()}'", partition_by=("as_of",))
    cutoff = as_of - timedelta(days=LEDGER_SNAPSHOT_DAYS)
    if previous is not None:
        cutoff = min(cutoff, previous)
    io.delete_where(ledger.sparkSession, path, F.col("as_of") < F.lit(cutoff))


def ledger_for_customer(spark: SparkSession, wh: io.Warehouse, customer_id: str) -> DataFrame:
    """Every ledger row of one person in the latest snapshot: what was shared with whom (R2 access)."""
    path = ledger_path(wh)
    ledger = io.read(spark, path, LEDGER)
    latest = ledger.agg(F.max("as_of")).first()[0]
    return ledger.where((F.col("as_of") == F.lit(latest)) & (F.col("customer_id") == customer_id))


def forget_in_ledger(spark: SparkSession, wh: io.Warehouse, customer_id: str) -> None:
    """Erasure (R1): drop the customer id from every ledger snapshot, keeping the pseudonyms.

    The next delivery then revokes them with reason ``erased`` (detail ``subject_erased``) and drops the rows:
    deleting them outright would leave the recipient holding pseudonyms nobody revokes.
    """
    path = ledger_path(wh)
    if not io.exists(spark, path):
        return
    rows = io.read(spark, path, LEDGER).where(F.col("customer_id") == customer_id)
    scrubbed = rows.withColumn("customer_id", F.lit(None).cast(StringType()))
    io.upsert(scrubbed, path, ("as_of", "recipient", "key_id", "pseudo_id"))


# ------------------------------------------------------------------------------------------- delivery files


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_single_parquet(df: DataFrame, path: Path) -> None:
    """One Parquet file, rows sorted by pseudonym (deterministic, and the order says nothing about people)."""
    parts = path.parent / f"_{path.stem}_parts"
    df.repartition(1).sortWithinPartitions("pseudo_id").write.mode("overwrite").parquet(str(parts))
    files = sorted(parts.glob("part-*.parquet"))
    if len(files) != 1:
        raise RuntimeError(f"expected one Parquet part for {path.name}, Spark wrote {len(files)}")
    os.replace(files[0], path)
    shutil.rmtree(parts)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq  # footer only: counts what was actually written

    return int(pq.read_metadata(path).num_rows)


def write_delivery(profiles: DataFrame, revocations: DataFrame, target: Path, manifest: dict[str, Any]) -> dict:
    """Write ``profiles.parquet``, ``revocations.parquet`` and ``manifest.json`` into ``target``, atomically.

    Everything is written into a hidden sibling folder first, which then replaces ``target`` (a rerun of the
    same as-of replaces the delivery). ``manifest`` gets a ``files`` entry per file: rows (read back from the
    Parquet footer), bytes and SHA-256. Returns the manifest written.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        files = {}
        for name, df in (("profiles.parquet", profiles), ("revocations.parquet", revocations)):
            _write_single_parquet(df, tmp / name)
            files[name] = {"rows": _parquet_rows(tmp / name), "bytes": (tmp / name).stat().st_size,
                           "sha256": _sha256_file(tmp / name)}
        doc = {**manifest, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n",
                                           encoding="utf-8")
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        if target.exists():
            os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return doc


def delivery_dir(wh: io.Warehouse, recipient: str, as_of: date) -> Path:
    """``<warehouse>/exports/<recipient>/as_of=<date>/`` (``exports/adsdata/...`` for Ads & Data)."""
    return wh.exports / recipient / f"as_of={as_of.isoformat()}"


def prune_deliveries(recipient_dir: Path, before: date) -> list[Path]:
    """Delete our copies of deliveries made before ``before`` (retention, R3); returns what was deleted."""
    removed = []
    if not recipient_dir.is_dir():
        return removed
    for child in sorted(recipient_dir.glob("as_of=*")):
        try:
            delivered = date.fromisoformat(child.name.split("=", 1)[1])
        except ValueError:
            continue
        if delivered < before:
            shutil.rmtree(child)
            removed.append(child)
    return removed


# ------------------------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class RecipientDelivery:
    """One recipient's reconciled snapshot (persisted) and the key id used."""

    recipient: str
    key_id: str
    reconciled: DataFrame


def _references(ctx: RunContext) -> tuple[DataFrame, tuple[AgeBand, ...]]:
    conf = ctx.settings.conf_dir
    rows = sorted((a.postal_code, a.region_code) for a in load_geography(conf).areas.values())
    geography = io.local_frame(ctx.spark, rows, "postal_code string, region string")
    return geography, iab_age_bands(load_audience_taxonomy(conf / AUDIENCE_TAXONOMY_FILE))


def _counts(reconciled: DataFrame) -> tuple[dict[str, int], list[str]]:
    """Rows per change and per revocation reason, and the key ids of the revoked pseudonyms (one aggregate)."""
    revoked = F.col("change") == "revoked"
    aggs = [F.sum((F.col("change") == c).cast("int")).alias(c) for c in (*CHANGES, "revoked")]
    aggs += [F.sum((revoked & (F.col("reason") == r)).cast("int")).alias(f"revoked_{r}") for r in REASONS]
    row = reconciled.agg(*aggs, F.array_sort(F.collect_set(F.when(revoked, F.col("key_id")))).alias("_keys")).first()
    figures = {k: int(v or 0) for k, v in row.asDict().items() if k != "_keys"}
    return figures, list(row["_keys"])


def _union(frames: Sequence[DataFrame], schema: StructType, spark: SparkSession) -> DataFrame:
    if not frames:
        return spark.createDataFrame([], schema)
    out = frames[0]
    for frame in frames[1:]:
        out = out.unionByName(frame)
    return out


def stage_adsdata(ctx: RunContext, elig: DataFrame) -> None:
    """Daily-run stage: deliver pseudonymous profiles and revocations to every ``adsdata.recipients``.

    Reads ``ctx.outputs`` ``tv_profiles``, ``web_profiles`` and ``segment_membership`` when present (each is
    optional) and ``silver/customers``; writes the ledger snapshot and the delivery files; puts
    ``adsdata_export`` and ``adsdata_revocations`` (all recipients, persisted) into ``ctx.outputs``. Stage timings
    ``adsdata profiles``, ``adsdata pseudonymise <recipient>`` (HMAC alone, over persisted rows: the figure for
    the benchmark) and ``adsdata delivery``; metrics ``adsdata.<recipient>.<new|changed|unchanged|revoked...>``;
    parameter ``adsdata.<recipient>.key_id`` (the key id only, never key material).
    """
    s = ctx.settings.adsdata
    months = int(s.expiry_months)
    with ctx.progress.stage("adsdata profiles") as counts:
        geography, bands = _references(ctx)
        profiles = [ctx.outputs[n] for n in ("tv_profiles", "web_profiles") if n in ctx.outputs]
        people = adsdata_profiles(
            adsdata_demographics(ctx.silver("customers"), elig, geography, bands),
            adsdata_interests(profiles, elig, ctx.settings.profiles.max_interests),
            adsdata_segments(ctx.outputs.get("segment_membership"), elig),
        )
        people = io.materialise(people)
        counts["people"] = people.count()

    path = ledger_path(ctx.wh)
    previous, previous_as_of = previous_snapshot(ctx.spark, path, ctx.as_of)
    deliveries: list[RecipientDelivery] = []
    for recipient in s.recipients:
        pads = hmac_pads(ctx.keys.active(recipient))
        with ctx.progress.stage(f"adsdata pseudonymise {recipient}") as counts:
            current = io.materialise(pseudonymise(people, pads))  # once per customer, timed alone
            counts["pseudonyms"] = current.count()
        with ctx.progress.stage(f"adsdata reconcile {recipient}"):
            reconciled = reconcile(previous.where(F.col("recipient") == recipient), current, elig, ctx.as_of, months,
                                   pads.key_id, recipient)
            reconciled = io.materialise(reconciled)  # before its inputs are released: pseudonyms computed once
        current.unpersist()
        deliveries.append(RecipientDelivery(recipient, pads.key_id, reconciled))
    people.unpersist()

    spark = ctx.spark
    exports = io.materialise(_union([export_rows(d.reconciled) for d in deliveries], ADSDATA_EXPORT, spark))
    revocations = io.materialise(
        _union([revocation_rows(d.reconciled) for d in deliveries], ADSDATA_REVOCATIONS, spark))
    manifests = {}
    for d in deliveries:
        figures, revoked_keys = _counts(d.reconciled)
        manifests[d.recipient] = {
            "format": 1, "recipient": d.recipient, "as_of": ctx.as_of.isoformat(), "run_id": ctx.run_id,
            "generated_at": ctx.started.isoformat(), "active_key_id": d.key_id,
            "key_ids": sorted({d.key_id, *revoked_keys}),
            "expiry": {"months": months, "expires_at": _add_months(ctx.as_of, months).isoformat()},
            "changes": {c: figures[c] for c in CHANGES},
            "revocations": {r: figures[f"revoked_{r}"] for r in REASONS},
        }
        for name, value in figures.items():
            ctx.metrics[f"adsdata.{d.recipient}.{name}"] = float(value)
        ctx.params[f"adsdata.{d.recipient}.key_id"] = d.key_id

    def deliver() -> None:
        """Write the ledger snapshot and the delivery files: only once the run publishes (a run blocked by a
        critical data-quality failure delivers nothing and leaves the ledger as it was)."""
        with ctx.progress.stage("adsdata delivery") as counts:
            write_snapshot(_union([ledger_rows(d.reconciled) for d in deliveries], LEDGER, spark), path, ctx.as_of,
                           previous_as_of)
            for d in deliveries:
                mine = F.col("recipient") == d.recipient
                write_delivery(exports.where(mine), revocations.where(mine),
                               delivery_dir(ctx.wh, d.recipient, ctx.as_of), manifests[d.recipient])
                prune_deliveries(ctx.wh.exports / d.recipient, _add_months(ctx.as_of, -months))
                m = manifests[d.recipient]
                counts[d.recipient] = (f"{sum(m['changes'].values())} delivered, "
                                       f"{sum(m['revocations'].values())} revoked")
            for d in deliveries:
                d.reconciled.unpersist()

    ctx.after_publish.append(deliver)
    ctx.outputs["adsdata_export"] = exports
    ctx.outputs["adsdata_revocations"] = revocations


def _add_months(day: date, months: int) -> date:
    """Spark's ``add_months`` in Python: same day of the month, clamped to the month's last day."""
    year, month0 = divmod(day.year * 12 + day.month - 1 + months, 12)
    return date(year, month0 + 1, min(day.day, calendar.monthrange(year, month0 + 1)[1]))
