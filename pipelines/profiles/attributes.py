"""Profile attributes (P1, P2): administrative, socio-demographic, geographic, home and purchase columns.

Pure ``DataFrame -> DataFrame`` transforms from Spark built-ins. Every input that holds a customer id arrives
already reduced to the customers eligible for the profile (filter before join, C2); area statistics,
cadastral parcels and the postal geography are keyed by place, not by person, and are joined afterwards.

* age band: the IAB Audience Taxonomy "Demographic | Age Range" nodes (label such as ``"25-29"`` and id);
* services: ``tv``, ``internet``, ``mobile`` for the subscriptions held;
* family typology, household size, income band: the supplier's *individual* record valid at the as-of date
  when there is one (``sociodemo_level = "individual"``); otherwise area statistics of the postal code
  (``"area"``): the area's median income band. An area statistic says nothing about one household's
  typology or size, so those stay null at area level (the area's share of households with children is
  published as ``area_share_households_with_children``);
* urbanisation: always the area's;
* province and region: ISO 3166-2:BE codes of the postal code (``pipelines.reference.geo``);
* dwelling type, garden: cadastral data of the customer's address;
* products_owned: distinct ``"category:tier"`` bought in the last ``purchase_lookback_days`` local days;
  last_purchase_days: days from the latest purchase (at or before the as-of date) to the as-of date.

The policy builds the TV profile from administrative data, purchased socio-demographic data and viewing
only; cadastral data and products bought are listed for the web profile alone. :func:`profile_attributes`
therefore leaves :data:`WEB_ONLY_ATTRIBUTES` null unless it is given cadastral and purchase data (web profile):
the columns exist in both tables so that segment rules compile against one schema.
(``profile_attributes`` is called without ``homes`` and ``purchases`` for the TV profile.)
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, BooleanType, IntegerType, StringType

from pipelines.profiles.tv import local_day
from pipelines.reference.taxonomy import AgeBand

#: Columns shared by ``gold/tv_profiles`` and ``gold/web_profiles``, in published order (interests excluded).
ATTRIBUTE_COLUMNS = (
    "customer_id", "age", "age_band", "age_band_id", "gender", "language", "postal_code", "province", "region",
    "customer_type", "services", "family_typology", "household_size", "income_band", "sociodemo_level",
    "urbanisation", "dwelling_type", "has_garden", "products_owned", "last_purchase_days",
)

#: Attributes the policy lists for the web profile only (cadastral data, products bought).
WEB_ONLY_ATTRIBUTES = ("dwelling_type", "has_garden", "products_owned", "last_purchase_days")

#: Extra (non-contract) column kept next to the area-level figures.
AREA_CHILDREN_SHARE = "area_share_households_with_children"


def age_band(age: Column, bands: Sequence[AgeBand]) -> tuple[Column, Column]:
    """(label, audience id) of the IAB age band holding ``age``; nulls outside every band (under 18).

    With the shipped taxonomy, 27 gives ``("25-29", 5)`` and 80 gives ``("75+", 15)``.
    """
    label: Column | None = None
    node: Column | None = None
    for band in bands:
        cond = age >= F.lit(band.min_age)
        if band.max_age is not None:
            cond = cond & (age <= F.lit(band.max_age))
        label = F.when(cond, F.lit(band.label)) if label is None else label.when(cond, F.lit(band.label))
        node = F.when(cond, F.lit(band.audience_id)) if node is None else node.when(cond, F.lit(band.audience_id))
    if label is None or node is None:
        return F.lit(None).cast(StringType()), F.lit(None).cast(IntegerType())
    return label, node.cast(IntegerType())


def services_used(tv: Column, internet: Column, mobile: Column) -> Column:
    """``array<string>`` of ``tv``, ``internet``, ``mobile`` for the subscriptions that are true."""
    return F.array_compact(F.array(F.when(tv, F.lit("tv")), F.when(internet, F.lit("internet")),
                                    F.when(mobile, F.lit("mobile"))))


def _latest(df: DataFrame, key: Sequence[str], order: Sequence[Column]) -> DataFrame:
    w = Window.partitionBy(*key).orderBy(*order)
    return df.withColumn("_rn", F.row_number().over(w)).where(F.col("_rn") == 1).drop("_rn")


def individual_sociodemo(individual: DataFrame, as_of: date) -> DataFrame:
    """``customer_id, family_typology, household_size, income_band``: the record valid at ``as_of``.

    The latest ``valid_from`` at or before ``as_of`` wins (ties: supplier name, then latest ingestion).
    """
    valid = individual.where(F.col("valid_from") <= F.lit(as_of))
    return _latest(valid, ["customer_id"], [F.col("valid_from").desc(), F.col("supplier").asc_nulls_last(),
                                            F.col("_ingested_at").desc_nulls_last()]).select(
        "customer_id", "family_typology", "household_size", "income_band")


def area_sociodemo(area: DataFrame, as_of: date) -> DataFrame:
    """``postal_code, urbanisation, area_income_band, area_share_households_with_children`` valid at ``as_of``."""
    valid = area.where(F.col("valid_from") <= F.lit(as_of))
    return _latest(valid, ["postal_code"], [F.col("valid_from").desc(), F.col("supplier").asc_nulls_last(),
                                            F.col("_ingested_at").desc_nulls_last()]).select(
        "postal_code", "urbanisation", F.col("median_income_band").alias("area_income_band"),
        F.col("share_households_with_children").alias(AREA_CHILDREN_SHARE))


def home(cadastral: DataFrame) -> DataFrame:
    """``address_id, dwelling_type, has_garden`` (``silver/cadastral`` is a snapshot: one row per address)."""
    return cadastral.select("address_id", "dwelling_type", "has_garden")


def purchase_features(purchases: DataFrame, as_of: date, tz: str, lookback_days: int) -> DataFrame:
    """``customer_id, products_owned, last_purchase_days`` from purchases at or before ``as_of``."""
    day = local_day(F.col("purchased_at"), tz)
    recent = day > F.date_sub(F.lit(as_of), lookback_days)
    product = F.concat_ws(":", F.col("product_category"), F.coalesce(F.col("product_tier"), F.lit("unknown")))
    return (
        purchases.where(F.col("customer_id").isNotNull() & F.col("purchased_at").isNotNull())
        .withColumn("_day", day)
        .where(F.col("_day") <= F.lit(as_of))
        .groupBy("customer_id")
        .agg(F.array_sort(F.collect_set(F.when(recent, product))).alias("products_owned"),
             F.datediff(F.lit(as_of), F.max("_day")).cast(IntegerType()).alias("last_purchase_days"))
    )


def profile_attributes(
    customers: DataFrame,
    ages: DataFrame,
    individual: DataFrame,
    area: DataFrame,
    geography: DataFrame,
    bands: Sequence[AgeBand],
    homes: DataFrame | None = None,
    purchases: DataFrame | None = None,
) -> DataFrame:
    """One row per customer of ``ages`` with :data:`ATTRIBUTE_COLUMNS` and ``area_share_households_with_children``.

    ``ages``: customer_id, age of the eligible customers (the gate's table); ``customers`` (``silver/customers``,
    a snapshot: one row per customer), ``individual`` (:func:`individual_sociodemo`) and ``purchases``
    (:func:`purchase_features`) are already reduced to them. ``area`` (:func:`area_sociodemo`), ``homes``
    (:func:`home`) and ``geography`` (postal_code, province, region) are keyed by place. Without ``homes`` and
    ``purchases`` (the TV profile) the :data:`WEB_ONLY_ATTRIBUTES` are null and those sources are not read.
    """
    label, node = age_band(F.col("age"), bands)
    has_individual = F.col("_individual")
    has_area = F.col("_area")
    base = (
        ages.select("customer_id", "age")
        .join(customers.drop("age"), "customer_id")
        .join(individual.withColumn("_individual", F.lit(True)), "customer_id", "left")
        .join(area.withColumn("_area", F.lit(True)), "postal_code", "left")
        .join(F.broadcast(geography), "postal_code", "left")
    )
    if homes is not None:
        base = base.join(homes, "address_id", "left")
    if purchases is not None:
        base = base.join(purchases, "customer_id", "left")

    def null(dtype) -> Column:
        return F.lit(None).cast(dtype)

    has_home, has_purchases = homes is not None, purchases is not None
    dwelling = F.col("dwelling_type") if has_home else null(StringType())
    garden = F.col("has_garden") if has_home else null(BooleanType())
    owned = (F.coalesce(F.col("products_owned"), F.array().cast(ArrayType(StringType()))) if has_purchases
             else null(ArrayType(StringType())))
    last = F.col("last_purchase_days") if has_purchases else null(IntegerType())
    return base.select(
        "customer_id",
        F.col("age").cast(IntegerType()).alias("age"),
        label.alias("age_band"),
        node.alias("age_band_id"),
        "gender", "language", "postal_code", "province", "region", "customer_type",
        services_used(F.col("tv_subscription"), F.col("internet_subscription"),
                      F.col("mobile_subscription")).alias("services"),
        F.when(has_individual, F.col("family_typology")).alias("family_typology"),
        F.when(has_individual, F.col("household_size")).cast(IntegerType()).alias("household_size"),
        F.when(has_individual, F.col("income_band")).when(has_area, F.col("area_income_band")).alias("income_band"),
        F.when(has_individual, F.lit("individual")).when(has_area, F.lit("area")).alias("sociodemo_level"),
        "urbanisation",
        dwelling.alias("dwelling_type"),
        garden.alias("has_garden"),
        owned.alias("products_owned"),
        last.alias("last_purchase_days"),
        F.col(AREA_CHILDREN_SHARE),
    )
