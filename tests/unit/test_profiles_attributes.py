"""Profile attributes (P1, P2): age bands, services, socio-demographics (individual vs area), geography, home, purchases."""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.profiles.attributes import (
    ATTRIBUTE_COLUMNS,
    age_band,
    area_sociodemo,
    home,
    individual_sociodemo,
    profile_attributes,
    purchase_features,
)
from pipelines.profiles.build import profile_references
from pipelines.schemas import silver_schema

AS_OF = date(2026, 3, 31)
TZ = "Europe/Brussels"
UTC = timezone.utc


def silver(spark, source: str, rows: list[dict]) -> DataFrame:
    schema = silver_schema(source)
    lineage = {"_source_file": "test", "_line": 0, "_run_id": "r1", "_ingested_at": datetime(2026, 4, 1, tzinfo=UTC)}
    return spark.createDataFrame([tuple({**lineage, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


@pytest.fixture(scope="module", autouse=True)
def _tiny_data(tiny_data_spark):
    """Small-input Spark settings for this module (see ``tiny_data_spark`` in tests/conftest.py)."""


@pytest.fixture(scope="module")
def refs(spark, conf_dir):
    return profile_references(spark, conf_dir)


def test_age_bands_follow_the_iab_nodes(spark, refs) -> None:
    label, node = age_band(F.col("age"), refs.age_bands)
    ages = spark.createDataFrame([(a,) for a in (17, 18, 20, 21, 29, 74, 75, 103)], "age int")
    assert [tuple(r) for r in ages.select("age", label, node).orderBy("age").collect()] == [
        (17, None, None), (18, "18-20", 3), (20, "18-20", 3), (21, "21-24", 4), (29, "25-29", 5),
        (74, "70-74", 14), (75, "75+", 15), (103, "75+", 15),
    ]


@pytest.fixture(scope="module")
def sources(spark):
    customers = silver(spark, "customers", [
        {"customer_id": "A", "gender": "F", "language": "nl", "address_id": "addr-A", "postal_code": "9000",
         "customer_type": "residential", "tv_subscription": True, "internet_subscription": True,
         "mobile_subscription": False, "updated_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"customer_id": "B", "gender": None, "language": "fr", "address_id": "addr-B", "postal_code": "1000",
         "customer_type": "business", "tv_subscription": False, "internet_subscription": False,
         "mobile_subscription": True, "updated_at": datetime(2026, 1, 1, tzinfo=UTC)},
        {"customer_id": "C", "gender": "M", "language": "de", "address_id": "addr-C", "postal_code": "4700",
         "customer_type": "residential", "tv_subscription": None, "internet_subscription": False,
         "mobile_subscription": False, "updated_at": datetime(2026, 1, 1, tzinfo=UTC)},
    ])
    individual = silver(spark, "sociodemo_individual", [
        {"customer_id": "A", "supplier": "s1", "family_typology": "couple_no_children", "household_size": 2,
         "income_band": "middle", "valid_from": date(2025, 1, 1)},
        {"customer_id": "A", "supplier": "s1", "family_typology": "family_young_children", "household_size": 3,
         "income_band": "high", "valid_from": date(2026, 6, 1)},  # not valid yet at the as-of date
    ])
    area = silver(spark, "sociodemo_area", [
        {"postal_code": "9000", "supplier": "s2", "urbanisation": "rural", "median_income_band": "low",
         "share_households_with_children": 0.5, "valid_from": date(2020, 1, 1)},
        {"postal_code": "9000", "supplier": "s2", "urbanisation": "urban", "median_income_band": "high",
         "share_households_with_children": 0.3, "valid_from": date(2025, 1, 1)},
        {"postal_code": "1000", "supplier": "s2", "urbanisation": "urban", "median_income_band": "low",
         "share_households_with_children": 0.2, "valid_from": date(2025, 1, 1)},
    ])
    cadastral = silver(spark, "cadastral", [
        {"address_id": "addr-A", "dwelling_type": "apartment", "has_garden": False, "plot_area_m2": 80.0},
        {"address_id": "addr-C", "dwelling_type": "house", "has_garden": True, "plot_area_m2": 900.0},
    ])
    purchases = silver(spark, "purchases", [
        {"purchase_id": "p1", "customer_id": "A", "product_category": "smartphone", "product_tier": "premium",
         "purchased_at": datetime(2026, 3, 1, 10, tzinfo=UTC)},
        {"purchase_id": "p2", "customer_id": "A", "product_category": "laptop", "product_tier": "mid",
         "purchased_at": datetime(2024, 1, 1, 10, tzinfo=UTC)},  # older than purchase_lookback_days (365)
        {"purchase_id": "p3", "customer_id": "A", "product_category": "tv", "product_tier": "entry",
         "purchased_at": datetime(2026, 4, 10, 10, tzinfo=UTC)},  # after the as-of date
        {"purchase_id": "p4", "customer_id": "C", "product_category": "smartphone", "product_tier": "entry",
         "purchased_at": datetime(2026, 3, 30, 22, 30, tzinfo=UTC)},  # 31 March 00:30 in Brussels
    ])
    ages = spark.createDataFrame([("A", 27), ("B", 80), ("C", 45)], "customer_id string, age int")
    return customers, ages, individual, area, cadastral, purchases


def _attributes(sources, refs, web: bool) -> dict[str, tuple]:
    customers, ages, individual, area, cadastral, purchases = sources
    df = profile_attributes(
        customers, ages, individual_sociodemo(individual, AS_OF), area_sociodemo(area, AS_OF), refs.geography,
        refs.age_bands, homes=home(cadastral) if web else None,
        purchases=purchase_features(purchases, AS_OF, TZ, 365) if web else None,
    )
    return {r.customer_id: tuple(r) for r in df.select(*ATTRIBUTE_COLUMNS, "area_share_households_with_children").collect()}


def test_web_attributes(sources, refs) -> None:
    assert _attributes(sources, refs, web=True) == {
        # individual record valid at the as-of date; urbanisation from the latest area record;
        # products bought in the last 365 days; latest purchase 1 March -> 30 days.
        "A": ("A", 27, "25-29", 5, "F", "nl", "9000", "BE-VOV", "BE-VLG", "residential", ["tv", "internet"],
              "couple_no_children", 2, "middle", "individual", "urban", "apartment", False,
              ["smartphone:premium"], 30, 0.3),
        # no individual record: the area's median income band, flagged "area"; no typology or size.
        "B": ("B", 80, "75+", 15, None, "fr", "1000", "BE-BRU", "BE-BRU", "business", ["mobile"],
              None, None, "low", "area", "urban", None, None, [], None, 0.2),
        # neither: no socio-demographics at all; the purchase late on 30 March UTC is on 31 March in Brussels.
        "C": ("C", 45, "45-49", 9, "M", "de", "4700", "BE-WLG", "BE-WAL", "residential", [],
              None, None, None, None, None, "house", True, ["smartphone:entry"], 0, None),
    }


def test_tv_attributes_leave_cadastral_and_purchases_out(sources, refs) -> None:
    # The TV policy names administrative, purchased socio-demographic and viewing data only.
    tv = _attributes(sources, refs, web=False)
    assert tv["A"] == ("A", 27, "25-29", 5, "F", "nl", "9000", "BE-VOV", "BE-VLG", "residential", ["tv", "internet"],
                       "couple_no_children", 2, "middle", "individual", "urban", None, None, None, None, 0.3)
    assert {cid: row[16:20] for cid, row in tv.items()} == {c: (None, None, None, None) for c in ("A", "B", "C")}
