"""Schemas: one ``StructType`` per landing source (contract section 2) and per published table (section 3).

Landing sources are read as text and parsed against ``LANDING_COLUMNS`` (all strings, so that a wrong type
becomes a quarantine reason instead of a silent null); ``SILVER`` holds the typed schemas after validation.
"""
from __future__ import annotations

from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

#: Exact landing columns per source, in contract order.
LANDING_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": (
        "customer_id", "first_name", "last_name", "email", "phone", "birth_date", "gender", "language",
        "address_id", "postal_code", "customer_type", "tv_subscription", "internet_subscription",
        "mobile_subscription", "customer_since", "contract_end", "updated_at",
    ),
    "consent_events": ("event_id", "customer_id", "purpose", "action", "channel", "event_ts"),
    "erasure_requests": ("request_id", "customer_id", "requested_at"),
    "identity_links": ("customer_id", "id_type", "id_value", "site_domain", "authenticated_at"),
    "tv_viewing": (
        "view_id", "customer_id", "platform", "channel_id", "program_id", "genre", "subgenre", "start_ts",
        "duration_s",
    ),
    "tv_ad_exposures": ("exposure_id", "customer_id", "campaign_id", "advertiser_id", "channel_id", "platform", "ts"),
    "web_events": (
        "event_id", "cookie_id", "mobile_ad_id", "ts", "event_type", "site_domain", "site_owner",
        "content_category_id", "campaign_id", "advertiser_id", "tc_string", "device_type", "device_brand",
        "device_model", "geo_city",
    ),
    "purchases": ("purchase_id", "customer_id", "product_category", "product_tier", "purchased_at", "amount_eur"),
    "loyalty_events": ("event_id", "customer_id", "program", "content_category_id", "ts"),
    "sociodemo_individual": (
        "customer_id", "supplier", "family_typology", "household_size", "income_band", "valid_from",
    ),
    "sociodemo_area": (
        "postal_code", "supplier", "urbanisation", "median_income_band", "share_households_with_children",
        "valid_from",
    ),
    "cadastral": ("address_id", "dwelling_type", "has_garden", "plot_area_m2"),
}

#: File format per source.
LANDING_FORMAT: dict[str, str] = {
    name: ("jsonl" if name in ("consent_events", "web_events") else "csv") for name in LANDING_COLUMNS
}

SOURCES: tuple[str, ...] = tuple(LANDING_COLUMNS)


def landing_string_schema(source: str) -> StructType:
    """All-string schema of a landing source, used to parse raw lines before typing."""
    return StructType([StructField(c, StringType(), True) for c in LANDING_COLUMNS[source]])


S, B, D, TS, I, L, F = StringType(), BooleanType(), DateType(), TimestampType(), IntegerType(), LongType(), DoubleType()


def _struct(*fields: tuple[str, object]) -> StructType:
    return StructType([StructField(n, t, True) for n, t in fields])  # type: ignore[arg-type]


#: Typed silver schemas (same column names as landing, typed), plus lineage columns added by ingestion.
SILVER_TYPES: dict[str, dict[str, object]] = {
    "customers": {
        "customer_id": S, "first_name": S, "last_name": S, "email": S, "phone": S, "birth_date": D, "gender": S,
        "language": S, "address_id": S, "postal_code": S, "customer_type": S, "tv_subscription": B,
        "internet_subscription": B, "mobile_subscription": B, "customer_since": D, "contract_end": D,
        "updated_at": TS,
    },
    "consent_events": {"event_id": S, "customer_id": S, "purpose": S, "action": S, "channel": S, "event_ts": TS},
    "erasure_requests": {"request_id": S, "customer_id": S, "requested_at": TS},
    "identity_links": {"customer_id": S, "id_type": S, "id_value": S, "site_domain": S, "authenticated_at": TS},
    "tv_viewing": {
        "view_id": S, "customer_id": S, "platform": S, "channel_id": S, "program_id": S, "genre": S, "subgenre": S,
        "start_ts": TS, "duration_s": I,
    },
    "tv_ad_exposures": {
        "exposure_id": S, "customer_id": S, "campaign_id": S, "advertiser_id": S, "channel_id": S, "platform": S,
        "ts": TS,
    },
    "web_events": {
        "event_id": S, "cookie_id": S, "mobile_ad_id": S, "ts": TS, "event_type": S, "site_domain": S,
        "site_owner": S, "content_category_id": S, "campaign_id": S, "advertiser_id": S, "tc_string": S,
        "device_type": S, "device_brand": S, "device_model": S, "geo_city": S,
    },
    "purchases": {
        "purchase_id": S, "customer_id": S, "product_category": S, "product_tier": S, "purchased_at": TS,
        "amount_eur": F,
    },
    "loyalty_events": {"event_id": S, "customer_id": S, "program": S, "content_category_id": S, "ts": TS},
    "sociodemo_individual": {
        "customer_id": S, "supplier": S, "family_typology": S, "household_size": I, "income_band": S,
        "valid_from": D,
    },
    "sociodemo_area": {
        "postal_code": S, "supplier": S, "urbanisation": S, "median_income_band": S,
        "share_households_with_children": F, "valid_from": D,
    },
    "cadastral": {"address_id": S, "dwelling_type": S, "has_garden": B, "plot_area_m2": F},
}

LINEAGE_FIELDS = (("_source_file", S), ("_line", L), ("_run_id", S), ("_ingested_at", TS))


def silver_schema(source: str) -> StructType:
    """Typed schema of ``silver/<source>``: the contract columns, typed, then lineage columns."""
    return _struct(*SILVER_TYPES[source].items(), *LINEAGE_FIELDS)


#: ``bronze/<source>``. Ingestion also stores ``_ids`` (array of strings): the identifier tokens of a line that
#: parsed (pipelines.rights.erasure.line_identifiers), null otherwise; tables without it are matched on ``raw``.
BRONZE = _struct(
    ("source", S), ("raw", S), ("_source_file", S), ("_line", L), ("_run_id", S), ("_ingested_at", TS),
)

QUARANTINE = _struct(
    ("source", S), ("reason", S), ("raw", S), ("source_file", S), ("line", L), ("run_id", S),
    ("customer_id", S), ("quarantined_at", TS), ("as_of", D),
)

INTEREST = StructType([
    StructField("interest", S, True),
    StructField("iab_audience_id", I, True),
    StructField("score", F, True),
])

CONSENT_STATE = _struct(
    ("customer_id", S), ("purpose", S), ("granted", B), ("effective_since", TS), ("basis", S),
    ("source", S), ("as_of", D),
)

RUNS = _struct(
    ("run_id", S), ("as_of", D), ("started", TS), ("finished", TS), ("status", S), ("mlflow_run_id", S),
    ("message", S), ("command", S),
)

DQ_RESULTS = _struct(
    ("run_id", S), ("table", S), ("expectation", S), ("success", B), ("observed_value", S), ("severity", S),
    ("details", S), ("as_of", D),
)

#: Columns that identify a person directly and therefore never leave in an export.
DIRECT_IDENTIFIER_COLUMNS = frozenset({
    "customer_id", "first_name", "last_name", "email", "phone", "address_id", "cookie_id", "mobile_ad_id",
    "decoder_id", "id_value", "birth_date",
})

__all__ = [
    "LANDING_COLUMNS", "LANDING_FORMAT", "SOURCES", "landing_string_schema", "SILVER_TYPES", "silver_schema",
    "BRONZE", "QUARANTINE", "INTEREST", "CONSENT_STATE", "RUNS", "DQ_RESULTS", "DIRECT_IDENTIFIER_COLUMNS",
    "ArrayType",
]
