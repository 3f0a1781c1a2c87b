"""Match keys (L1): SHA-256 of each refinement-eligible customer's normalised e-mail and phone.

Advertisers upload lists of hashed e-mails and phones (contract section 4): lowercase hex SHA-256 of the
e-mail trimmed and lower-cased, and of the phone in E.164 -- the convention of the large ad platforms'
customer-list uploads. The daily run computes the same hashes once for every customer who may be matched at
all (``advertiser_list_refinement`` effective, adult, not erased, and eligible for the TV or the web
channel) and keeps them in the internal table ``silver/match_keys``; ``audience refine`` joins an upload with
it. Nobody else is hashed, so a person without that consent can never be matched (C2: filter before join).

The table is internal: a plain SHA-256 of a phone number is reversible by enumeration, so these hashes are
as sensitive as the phone numbers themselves and never leave the warehouse.

Example::

    >>> keys = match_keys(spark.table("customers"), elig, date(2026, 11, 25))
    >>> keys.columns
    ['customer_id', 'key_type', 'key_sha256', 'as_of']
"""
from __future__ import annotations

from datetime import date
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType

from pipelines import io

#: ``silver/match_keys``: one row per customer and key (a customer has at most one e-mail and one phone key).
MATCH_KEYS = StructType([
    StructField("customer_id", StringType(), False),
    StructField("key_type", StringType(), False),
    StructField("key_sha256", StringType(), False),
    StructField("as_of", DateType(), False),
])

#: Upload column per key type (contract section 4).
KEY_COLUMNS: dict[str, str] = {"email": "email_sha256", "phone": "phone_sha256"}

#: Eligibility columns of :func:`pipelines.consent.gate.eligibility` that allow list refinement per channel.
REFINEMENT_ELIGIBILITY: dict[str, str] = {
    "tv": "eligible_list_refinement_tv",
    "web": "eligible_list_refinement_web",
}


def normalised_email(email: Column) -> Column:
    """E-mail as hashed by advertisers: trimmed and lower-cased; null when empty."""
    value = F.lower(F.trim(email))
    return F.when(value != "", value)


def normalised_phone(phone: Column) -> Column:
    """Phone as hashed by advertisers: the E.164 value as stored (already validated at ingestion); null when empty."""
    return F.when(phone != "", phone)


def sha256_hex(value: Column) -> Column:
    """Lowercase hex SHA-256 of a string (Spark's built-in ``sha2``); null stays null."""
    return F.sha2(value, 256)


def refinement_eligible(elig: DataFrame, channels: tuple[str, ...] = ("tv", "web")) -> DataFrame:
    """``customer_id`` of adults, not erased, eligible for list refinement on any of ``channels``.

    ``eligible_list_refinement_*`` already includes adult and not erased; both are checked again here because
    this is the door through which an advertiser's list meets customer data (defence in depth, C5).
    """
    any_channel = F.lit(False)
    for channel in channels:
        any_channel = any_channel | F.coalesce(F.col(REFINEMENT_ELIGIBILITY[channel]), F.lit(False))
    allowed = F.coalesce(F.col("adult"), F.lit(False)) & ~F.coalesce(F.col("erased"), F.lit(True))
    return elig.where(allowed & any_channel).select("customer_id")


def match_keys(customers: DataFrame, elig: DataFrame, as_of: date) -> DataFrame:
    """``silver/match_keys`` rows: the e-mail and phone keys of customers eligible for refinement.

    Customers are reduced to eligible ones (left-semi) before any column of theirs is touched.
    """
    eligible = F.broadcast(refinement_eligible(elig))
    people = customers.join(eligible, "customer_id", "left_semi")
    keys = people.select(
        "customer_id",
        F.explode(F.array(
            F.struct(F.lit("email").alias("key_type"), sha256_hex(normalised_email(F.col("email"))).alias("key_sha256")),
            F.struct(F.lit("phone").alias("key_type"), sha256_hex(normalised_phone(F.col("phone"))).alias("key_sha256")),
        )).alias("k"),
    )
    return (
        keys.select("customer_id", "k.key_type", "k.key_sha256")
        .where(F.col("key_sha256").isNotNull())
        .distinct()
        .withColumn("as_of", F.lit(as_of).cast(DateType()))
    )


def stage_match_keys(ctx: Any, elig: DataFrame) -> None:
    """Daily-run stage: recompute ``silver/match_keys`` for the as-of date (replaces the table).

    Recomputed in full each run, so a withdrawal or an erasure removes the person's keys at the next run (C3).
    Metrics: ``refinement.match_keys`` (number of keys).
    """
    with ctx.progress.stage("match keys") as counts:
        keys = match_keys(ctx.silver("customers"), elig, ctx.as_of)
        path = ctx.wh.table("silver", "match_keys")
        io.overwrite(keys.select(*MATCH_KEYS.fieldNames()), path)
        n = io.read(ctx.spark, path).count()
        ctx.metrics["refinement.match_keys"] = float(n)
        counts.update(keys=n)


__all__ = [
    "MATCH_KEYS", "KEY_COLUMNS", "REFINEMENT_ELIGIBILITY", "normalised_email", "normalised_phone", "sha256_hex",
    "refinement_eligible", "match_keys", "stage_match_keys",
]
