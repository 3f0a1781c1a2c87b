"""Web interests (P2, P3, C4) and the web-only features: ad-serving ids and TV ad exposures.

Pure ``DataFrame -> DataFrame`` transforms from Spark built-ins (no Python UDF). Scores follow the formula of
:mod:`pipelines.profiles.tv`; here are the web evidence units, each with ``amount = quantity * weight``:

===================== ============================================== =====================================
source                quantity                                        weight
===================== ============================================== =====================================
``web_<event_type>``  events of a content category whose TC string    ``profiles.web_event_weights[type]``
                      passes C4 (purposes 1, 3, 4 and our vendor)     (types without a weight: ignored)
``enjoy``,            loyalty events (Enjoy!, Pickx competitions)     ``profiles.loyalty_weight``
``pickx_competition`` by content category
``purchases``         purchases of a mapped (category, tier)          ``profiles.purchase_weight``
===================== ============================================== =====================================

All three kinds share one event scale and are scored together (evidence threshold ``min_web_events``).
Content categories map through ``conf/mappings/content_to_audience.csv``, products through
``product_to_audience.csv`` ("bought a premium smartphone: technology fan"); a denied or unmapped category
is no evidence at all. Purchases are recency-weighted like every other unit, so a purchase is evidence for
a while ("recently bought"); ``products_owned`` (attributes) lists them over ``purchase_lookback_days``.

Web events carry no customer id: they reach a customer only through an identity link (cookie or mobile ad
id authenticated on a Proximus site or app) of a customer eligible for the web profile, and only when the
TC string of the site where they happened passes the C4 check (the daily aggregate keeps passing events
only). A device's events count whether they happened before or after its authentication.
"""
from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType

from pipelines.profiles.tv import local_day

#: Id types of ``identity_links`` that serve ads on the web (a decoder id does not).
AD_ID_TYPES = ("cookie_id", "mobile_ad_id")

#: Look-back of the TV exposure features (the column name says 28 days).
EXPOSURE_DAYS = 28

PURCHASE_SOURCE = "purchases"

_WEB_DAILY_KEYS = ("cookie_id", "mobile_ad_id", "day", "content_category_id", "event_type")


def tc_hash(tc_string: Column) -> Column:
    """Key of a TC string in ``silver/tcf_verdicts``: its SHA-256, so the table keeps no consent string."""
    return F.sha2(tc_string, 256)


def web_daily_category_events(events: DataFrame, verdicts: DataFrame, tz: str) -> DataFrame:
    """``silver/web_events`` -> events per device, local day, content category and event type (C4-passing only).

    ``verdicts``: tc_hash, tcf_ok (one row per distinct TC string, see ``silver/tcf_verdicts``). Events
    with no TC string, an unknown one or a failing one are left out; so are events without a content
    category (they are evidence of nothing). Columns: cookie_id, mobile_ad_id, day, content_category_id,
    event_type, events (long).
    """
    passing = verdicts.where(F.col("tcf_ok")).select("tc_hash").distinct()
    return (
        events.where(F.col("content_category_id").isNotNull() & F.col("ts").isNotNull()
                     & F.col("event_type").isNotNull()
                     & (F.col("cookie_id").isNotNull() | F.col("mobile_ad_id").isNotNull()))
        .withColumn("tc_hash", tc_hash(F.col("tc_string")))
        .join(passing, "tc_hash", "left_semi")  # no broadcast hint: strings can be nearly one per user
        .select("cookie_id", "mobile_ad_id", local_day(F.col("ts"), tz).alias("day"), "content_category_id",
                "event_type")
        .groupBy(*_WEB_DAILY_KEYS)
        .agg(F.count(F.lit(1)).alias("events"))
    )


def linked_ad_ids(links: DataFrame, cutoff: Column) -> DataFrame:
    """Distinct ``customer_id, id_type, id_value`` of ad-serving ids authenticated at or before ``cutoff``."""
    return (
        links.where(F.col("id_type").isin(*AD_ID_TYPES) & (F.col("authenticated_at") <= cutoff)
                    & F.col("id_value").isNotNull())
        .select("customer_id", "id_type", "id_value").distinct()
    )


def ad_ids(linked: DataFrame) -> DataFrame:
    """``customer_id, cookie_id, mobile_ad_id``: sorted arrays of a customer's linked ad-serving ids."""
    def ids_of(id_type: str) -> Column:
        return F.array_sort(F.collect_set(F.when(F.col("id_type") == id_type, F.col("id_value"))))

    return linked.groupBy("customer_id").agg(ids_of("cookie_id").alias("cookie_id"),
                                             ids_of("mobile_ad_id").alias("mobile_ad_id"))


def resolve_devices(web_daily: DataFrame, linked: DataFrame) -> DataFrame:
    """Attach web daily aggregates to the customers whose linked ids match the cookie or the mobile ad id.

    ``linked`` holds *eligible* customers' links to devices no ineligible person shares
    (:func:`pipelines.consent.gate.exclusive_devices`): the inner joins are the gate of device-keyed data. An
    aggregate matching one customer by both ids counts once.
    """
    by_type = [
        web_daily.join(
            linked.where(F.col("id_type") == id_type).select("customer_id", F.col("id_value").alias(id_type)),
            id_type,
        )
        for id_type in AD_ID_TYPES
    ]
    columns = ["customer_id", *_WEB_DAILY_KEYS, "events"]
    return by_type[0].select(*columns).unionByName(by_type[1].select(*columns)).dropDuplicates(
        ["customer_id", *_WEB_DAILY_KEYS])


def _weight_of(event_type: Column, weights: Mapping[str, float]) -> Column:
    pairs = [x for k, v in sorted(weights.items()) for x in (F.lit(k), F.lit(float(v)))]
    if not pairs:
        return F.lit(0.0)
    return F.coalesce(F.element_at(F.create_map(*pairs), event_type), F.lit(0.0))


def web_event_units(resolved: DataFrame, content_map: DataFrame, weights: Mapping[str, float]) -> DataFrame:
    """Evidence units of resolved web aggregates: source ``web_<event_type>``, quantity = events.

    ``content_map``: content_id, audience_id (mapped, non-denied categories only; the inner join drops the rest).
    """
    return (
        resolved.join(F.broadcast(content_map), F.col("content_category_id") == F.col("content_id"))
        .select(
            "customer_id", "day", F.concat(F.lit("web_"), F.col("event_type")).alias("source"),
            F.col("events").cast("double").alias("quantity"),
            (F.col("events") * _weight_of(F.col("event_type"), weights)).alias("amount"),
            F.array(F.col("audience_id").cast(IntegerType())).alias("interests"),
        )
        .where(F.col("amount") > 0)
    )


def loyalty_units(loyalty: DataFrame, content_map: DataFrame, weight: float, tz: str) -> DataFrame:
    """Evidence units of Enjoy! and Pickx competition events: source = program, quantity = events."""
    return (
        loyalty.where(F.col("customer_id").isNotNull() & F.col("ts").isNotNull())
        .join(F.broadcast(content_map), F.col("content_category_id") == F.col("content_id"))
        .groupBy("customer_id", local_day(F.col("ts"), tz).alias("day"), F.col("program").alias("source"),
                 "audience_id")
        .agg(F.count(F.lit(1)).cast("double").alias("quantity"))
        .select("customer_id", "day", "source", "quantity", (F.col("quantity") * F.lit(float(weight))).alias("amount"),
                F.array(F.col("audience_id").cast(IntegerType())).alias("interests"))
        .where(F.col("amount") > 0)
    )


def purchase_units(purchases: DataFrame, product_map: DataFrame, weight: float, tz: str) -> DataFrame:
    """Evidence units of purchases of mapped products (``product_category, product_tier, audience_id``)."""
    return (
        purchases.where(F.col("customer_id").isNotNull() & F.col("purchased_at").isNotNull())
        .join(F.broadcast(product_map), ["product_category", "product_tier"])
        .groupBy("customer_id", local_day(F.col("purchased_at"), tz).alias("day"), "audience_id")
        .agg(F.count(F.lit(1)).cast("double").alias("quantity"))
        .select("customer_id", "day", F.lit(PURCHASE_SOURCE).alias("source"), "quantity",
                (F.col("quantity") * F.lit(float(weight))).alias("amount"),
                F.array(F.col("audience_id").cast(IntegerType())).alias("interests"))
        .where(F.col("amount") > 0)
    )


def exposure_features(exposures: DataFrame, as_of: date, tz: str, days: int = EXPOSURE_DAYS) -> DataFrame:
    """``customer_id, tv_ad_exposures_28d, exposed_campaigns`` over the ``days`` local days ending at ``as_of``.

    Callers pass exposures of customers eligible for both the web profile and TV personalisation: the
    policy uses "ads that you have already viewed" only for people who "already benefit from personalized
    ads on TV", for consistency across media.
    """
    day = local_day(F.col("ts"), tz)
    return (
        exposures.where(F.col("customer_id").isNotNull()
                        & (day <= F.lit(as_of)) & (day > F.date_sub(F.lit(as_of), days)))
        .groupBy("customer_id")
        .agg(F.count(F.lit(1)).cast(IntegerType()).alias("tv_ad_exposures_28d"),
             F.array_sort(F.collect_set("campaign_id")).alias("exposed_campaigns"))
    )
