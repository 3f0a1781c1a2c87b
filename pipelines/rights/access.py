"""Access (R2, GDPR art. 15): everything held on one person, including to whom what was shared, as one JSON.

``audience access --warehouse DIR --customer-id ID --out FILE`` writes one document::

    format, generated_at, customer_id, status (held | erased | not_found)
    erasure             request id and date when the person was erased (from the tombstones)
    identity            the customer record; identity_history: every delivered version of it (raw lines)
    devices             authenticated devices (identity links)
    consent             current state per purpose (with legal basis) and the full history of grants/withdrawals
    eligibility         the processings the person was eligible for at the last run
    profiles            TV and web profiles; interests with their evidence (why each interest was derived)
    segments            segment memberships per channel
    shared_with         Ads & Data: every pseudonym delivered, with first/last delivery, expiry, revocation, the
                        delivery dates found in our copies and the profile currently delivered
    activation_lists    the refinement requests and campaigns (request id, advertiser, channel, dates) the person
                        was used in; list_refinements: the requests the person matched. Never an advertiser's list.
    purposes, retention why each processing happens and how long data is kept (configuration)
    tables              every other row held on the person, per table (the erasure map decides, so access and
                        erasure cover exactly the same data); raw_records: how many raw landing lines hold them

The document is the person's own data: it is written with mode 600 and never logged.
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, Row, SparkSession, Window
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import Settings
from pipelines.privacy.keys import INTERNAL, KeyRing
from pipelines.privacy.pseudonym import hmac_pads, keyed_hash
from pipelines.rights.erasure import (
    KEEP,
    PSEUDONYM,
    find_subject,
    landing_fields,
    matching_rows,
    rule_for,
    subject_frame,
    table_name,
    tombstone_message,
    tombstoned,
)

FORMAT = 1

#: Tables given their own section of the document (not repeated under ``tables``).
SECTIONS = {
    "silver/customers", "silver/identity_links", "silver/consent_state", "silver/consent_events",
    "silver/eligibility", "silver/interest_evidence", "gold/tv_profiles", "gold/web_profiles",
    "gold/segment_membership", "gold/adsdata_export", "ops/adsdata_ledger", "gold/activation_lists",
    "ops/refinement_sets",
}
_LINEAGE = ("_source_file", "_line", "_run_id", "_ingested_at", "_ids")  # lineage and the bronze token index


def jsonable(value: Any) -> Any:
    """Rows, dates, decimals and nested structures as JSON values (dates in ISO-8601)."""
    if isinstance(value, Row):
        return {k: jsonable(v) for k, v in value.asDict(recursive=False).items()}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return value


def _records(df: DataFrame, order: tuple[str, ...] = (), drop: tuple[str, ...] = _LINEAGE) -> list[dict]:
    """One person's rows as JSON records (bounded by one person's data)."""
    df = df.drop(*[c for c in drop if c in df.columns])
    if order:
        df = df.orderBy(*[c for c in order if c in df.columns])
    return [jsonable(r) for r in df.collect()]


def _table(spark: SparkSession, wh: io.Warehouse, name: str) -> DataFrame | None:
    layer, table = name.split("/", 1)
    path = wh.table(layer, table)
    return io.read(spark, path) if io.exists(spark, path) else None


def _erasures(spark: SparkSession, wh: io.Warehouse, customer_id: str, keys: KeyRing) -> list[dict]:
    """Tombstones of this customer id, under every internal key (request id and date)."""
    tombs = tombstoned(spark, wh, keys)
    me = spark.createDataFrame([(customer_id,)], "value string")
    found = []
    for key in keys.all_keys(INTERNAL):
        mine = keyed_hash(me, hmac_pads(key), tombstone_message(F.col("value")), out="tombstone").drop("value")
        found += _records(tombs.join(mine, ["tombstone", "key_id"], "left_semi")
                          .select("request_id", "erased_on"), order=("erased_on",))
    return found


def _shared_with_adsdata(spark: SparkSession, wh: io.Warehouse, customer_id: str) -> list[dict]:
    """Every pseudonym delivered for the person (latest ledger row each), with delivery dates and profile."""
    ledger = _table(spark, wh, "ops/adsdata_ledger")
    if ledger is None:
        return []
    latest = Window.partitionBy("recipient", "key_id", "pseudo_id").orderBy(F.col("as_of").desc())
    rows = (ledger.where(F.col("customer_id") == customer_id)
            .withColumn("_rn", F.row_number().over(latest)).where("_rn = 1")
            .select("recipient", "key_id", "pseudo_id", "first_delivered", "last_delivered", "expires_at",
                    "revoked_at", "reason", "detail"))
    shared = _records(rows, order=("recipient", "first_delivered", "pseudo_id"))
    if not shared:
        return shared
    export = _table(spark, wh, "gold/adsdata_export")
    pseudos = spark.createDataFrame([(s["pseudo_id"],) for s in shared], "pseudo_id string")
    profiles = {}
    if export is not None:
        for r in export.join(pseudos, "pseudo_id", "left_semi").collect():
            profiles[r.pseudo_id] = jsonable(r)
    dates = _delivery_dates(spark, wh, pseudos)
    for s in shared:
        s["delivered_on"] = dates.get(s["pseudo_id"], [])
        s["profile_currently_delivered"] = profiles.get(s["pseudo_id"])
    return shared


_AS_OF_DIR = re.compile(r"as_of=(\d{4}-\d{2}-\d{2})")


def _delivery_dates(spark: SparkSession, wh: io.Warehouse, pseudos: DataFrame) -> dict[str, list[str]]:
    """Dates of our delivery copies (``exports/<recipient>/as_of=<date>/profiles.parquet``) holding each pseudonym."""
    files = sorted(str(p) for p in wh.exports.glob("*/as_of=*/profiles.parquet"))
    if not files:
        return {}
    found = (spark.read.parquet(*files).select("pseudo_id", F.col("_metadata.file_path").alias("_file"))
             .join(pseudos, "pseudo_id", "left_semi").collect())
    out: dict[str, set[str]] = {}
    for r in found:
        m = _AS_OF_DIR.search(r._file)
        if m:
            out.setdefault(r.pseudo_id, set()).add(m.group(1))
    return {k: sorted(v) for k, v in out.items()}


def _activation(spark: SparkSession, wh: io.Warehouse, customer_id: str) -> tuple[list[dict], list[dict]]:
    """Activation lists the person is on, and the refinement requests they matched (no list content)."""
    lists = _table(spark, wh, "gold/activation_lists")
    used = [] if lists is None else _records(
        lists.where(F.col("customer_id") == customer_id)
        .select("request_id", "advertiser_id", "channel", "id_type", "ad_serving_id", "as_of", "expires_at"),
        order=("as_of", "request_id"))
    sets = _table(spark, wh, "ops/refinement_sets")
    matched: list[dict] = []
    if sets is not None:
        mine = sets.where(F.col("customer_id") == customer_id).select("evaluation_id", "advertiser_id", "kind",
                                                                       "requested_at")
        audit = _table(spark, wh, "ops/refinement_audit")
        if audit is not None:
            mine = mine.join(audit.select("evaluation_id", "request_id", "channel"), "evaluation_id", "left")
        matched = _records(mine, order=("requested_at", "evaluation_id", "kind"))
    return used, matched


def _identity_history(spark: SparkSession, wh: io.Warehouse, customer_id: str) -> list[dict]:
    bronze = _table(spark, wh, "bronze/customers")
    if bronze is None:
        return []
    parsed = landing_fields(bronze, "customers")
    return _records(parsed.where(F.trim(F.col("customer_id")) == customer_id).distinct(), order=("updated_at",))


def _one(records: list[dict]) -> dict | None:
    return records[-1] if records else None


def access_report(spark: SparkSession, settings: Settings, wh: io.Warehouse, customer_id: str, keys: KeyRing,
                  *, now: datetime | None = None) -> dict:
    """Everything held on ``customer_id`` as one JSON-ready dict (see the module docs for its sections)."""
    cid = customer_id.strip()
    now = now or datetime.now(timezone.utc)
    subject = find_subject(spark, wh, [cid])
    source = subject_frame(spark, subject)

    def section(name: str, order: tuple[str, ...] = (), drop: tuple[str, ...] = _LINEAGE) -> list[dict]:
        df = _table(spark, wh, name)
        rule = rule_for(name)
        if df is None or rule is None:
            return []
        return _records(matching_rows(df, rule, source, own_rows_only=True), order, drop)

    customers = section("silver/customers", order=("updated_at",))
    erasures = _erasures(spark, wh, cid, keys)
    shared = _shared_with_adsdata(spark, wh, cid)
    activation_lists, refinements = _activation(spark, wh, cid)
    tv = section("gold/tv_profiles", order=("as_of",))
    web = section("gold/web_profiles", order=("as_of",))

    tables: dict[str, list[dict]] = {}
    raw_records: dict[str, int] = {}
    for path in wh.all_tables():
        name = table_name(wh, path)
        rule = rule_for(name)
        if name in SECTIONS or rule is None or rule.action == KEEP:
            continue
        if any(loc.kind == PSEUDONYM for loc in rule.locators):
            continue
        rows = matching_rows(io.read(spark, path), rule, source, own_rows_only=True)
        if name.startswith("bronze/"):
            n = rows.count()
            if n:
                raw_records[name] = n
            continue
        recs = _records(rows)
        if recs:
            tables[name] = recs

    held = bool(customers or tables or raw_records or shared or tv or web)
    doc = {
        "format": FORMAT,
        "generated_at": now.isoformat(),
        "customer_id": cid,
        "status": "held" if held else ("erased" if erasures else "not_found"),
        "erasure": erasures,
        "identity": _one(customers),
        "identity_history": _identity_history(spark, wh, cid),
        "devices": section("silver/identity_links", order=("authenticated_at", "id_type", "id_value")),
        "consent": {
            "current": section("silver/consent_state", order=("purpose",)),
            "history": section("silver/consent_events", order=("event_ts", "event_id")),
        },
        "eligibility": _one(section("silver/eligibility")),
        "profiles": {
            "tv": tv,
            "web": web,
            "interest_evidence": section("silver/interest_evidence", order=("channel", "interest", "window_days")),
        },
        "segments": section("gold/segment_membership", order=("channel", "segment")),
        "shared_with": {"ads_and_data": shared},
        "activation_lists": activation_lists,
        "list_refinements": refinements,
        "purposes": {p.name: {"basis": p.basis, "policy": p.policy} for p in settings.purposes.values()},
        "retention": dataclasses.asdict(settings.retention),
        "tables": dict(sorted(tables.items())),
        "raw_records": dict(sorted(raw_records.items())),
    }
    return doc


def write_access_report(doc: Mapping[str, Any], out: Path) -> Path:
    """Write the document as JSON (UTF-8, sorted keys), atomically and readable by the owner only (mode 600)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(jsonable(doc), fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


__all__ = ["FORMAT", "SECTIONS", "jsonable", "access_report", "write_access_report"]
