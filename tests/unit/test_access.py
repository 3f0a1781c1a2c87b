"""Access (R2): one JSON document with everything held on the person -- identity and its history, consent
history, interests with evidence, segments, what went to Ads & Data and when, the activation lists and requests
they were used in -- and nothing of anybody else, even on a shared device."""
from __future__ import annotations

import json
import os
import stat
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import io
from pipelines.exports.adsdata import ADSDATA_EXPORT, LEDGER
from pipelines.refinement.refine import ACTIVATION_LISTS, REFINEMENT_AUDIT, REFINEMENT_SETS
from pipelines.rights.access import access_report, write_access_report
from pipelines.rights.erasure import Identifier, Subject, tombstone_rows, tombstones_path
from pipelines.schemas import BRONZE, CONSENT_STATE, LANDING_COLUMNS, silver_schema

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 10, tzinfo=UTC)
ANN, BOB = "C00000001", "C00000002"
SHARED_COOKIE, ANN_PHONE_COOKIE, BOB_COOKIE = "ck-family-pc", "ck-ann-phone", "ck-bob-laptop"
BOB_TRACES = [BOB, "bob@example.be", "+32470000002", BOB_COOKIE, "p-bob", "req-bob-only"]


def _customer_line(cid: str, email: str, updated: str) -> str:
    values = {c: "" for c in LANDING_COLUMNS["customers"]}
    values.update(customer_id=cid, email=email, phone="+3247000000" + cid[-1], updated_at=updated, language="nl")
    return ",".join(values[c] for c in LANDING_COLUMNS["customers"])


def _silver(spark, source, rows):
    schema = silver_schema(source)
    lineage = {"_source_file": "f", "_line": 0, "_run_id": "r", "_ingested_at": datetime(2026, 11, 20, tzinfo=UTC)}
    return spark.createDataFrame([tuple({**lineage, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


def _ts(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 11, day, hour, tzinfo=UTC)


def _build(spark, root):
    wh = io.Warehouse(root)
    t = wh.table
    io.overwrite(spark.createDataFrame(
        [("customers", _customer_line(ANN, "ann.old@example.be", "2025-01-01T00:00:00+01:00"), "f1", 0, "r", _ts(1)),
         ("customers", _customer_line(ANN, "ann@example.be", "2026-01-01T00:00:00+01:00"), "f2", 0, "r", _ts(2)),
         ("customers", _customer_line(BOB, "bob@example.be", "2026-01-01T00:00:00+01:00"), "f2", 1, "r", _ts(2))],
        BRONZE), t("bronze", "customers"))
    io.overwrite(_silver(spark, "customers", [
        {"customer_id": ANN, "email": "ann@example.be", "phone": "+32470000001", "language": "nl",
         "updated_at": datetime(2025, 12, 31, 23, tzinfo=UTC)},
        {"customer_id": BOB, "email": "bob@example.be", "phone": "+32470000002", "language": "fr"}]),
        t("silver", "customers"))
    io.overwrite(_silver(spark, "identity_links", [
        {"customer_id": ANN, "id_type": "cookie_id", "id_value": SHARED_COOKIE, "authenticated_at": _ts(3)},
        {"customer_id": ANN, "id_type": "cookie_id", "id_value": ANN_PHONE_COOKIE, "authenticated_at": _ts(4)},
        {"customer_id": BOB, "id_type": "cookie_id", "id_value": SHARED_COOKIE, "authenticated_at": _ts(5)},
        {"customer_id": BOB, "id_type": "cookie_id", "id_value": BOB_COOKIE, "authenticated_at": _ts(5)}]),
        t("silver", "identity_links"))
    io.overwrite(_silver(spark, "consent_events", [
        {"event_id": "e2", "customer_id": ANN, "purpose": "web_profile", "action": "withdraw", "event_ts": _ts(10)},
        {"event_id": "e1", "customer_id": ANN, "purpose": "web_profile", "action": "grant", "event_ts": _ts(1)},
        {"event_id": "e3", "customer_id": BOB, "purpose": "web_profile", "action": "grant", "event_ts": _ts(1)}]),
        t("silver", "consent_events"))
    io.overwrite(spark.createDataFrame(
        [(ANN, "web_profile", False, _ts(10), "consent", "event", date(2026, 11, 25)),
         (BOB, "web_profile", True, _ts(1), "consent", "event", date(2026, 11, 25))], CONSENT_STATE),
        t("silver", "consent_state"))
    io.overwrite(_silver(spark, "web_events", [
        {"event_id": "w1", "cookie_id": SHARED_COOKIE, "event_type": "page_view", "ts": _ts(6)},
        {"event_id": "w2", "cookie_id": ANN_PHONE_COOKIE, "event_type": "ad_click", "ts": _ts(7)},
        {"event_id": "w3", "cookie_id": BOB_COOKIE, "event_type": "page_view", "ts": _ts(7)}]),
        t("silver", "web_events"))
    io.overwrite(spark.createDataFrame(
        [(ANN, "35-44", [("Cooking", 210, 2.5)], date(2026, 11, 25)), (BOB, "25-34", [], date(2026, 11, 25))],
        "customer_id string, age_band string, interests array<struct<interest:string,iab_audience_id:int,"
        "score:double>>, as_of date"), t("gold", "tv_profiles"))
    io.overwrite(spark.createDataFrame([(ANN, "tv", "Cooking", 210, "genre:Cooking", 28, 240.0, 2.5, date(2026, 11, 25))],
                                       "customer_id string, channel string, interest string, iab_audience_id int, "
                                       "source string, window_days int, minutes_or_events double, lift double, "
                                       "as_of date"), t("silver", "interest_evidence"))
    io.overwrite(spark.createDataFrame([("cooking_enthusiasts", "tv", ANN, date(2026, 11, 25)),
                                        ("cooking_enthusiasts", "tv", BOB, date(2026, 11, 25))],
                                       "segment string, channel string, customer_id string, as_of date"),
                 t("gold", "segment_membership"))
    ledger = [("adsdata", "k1", "p-ann", ANN, date(2026, 11, 24), d, date(2027, 12, 24), "h", None, None, None, d)
              for d in (date(2026, 11, 24), date(2026, 11, 25))]
    ledger.append(("adsdata", "k1", "p-bob", BOB, date(2026, 11, 24), date(2026, 11, 25), date(2027, 12, 25), "h",
                   None, None, None, date(2026, 11, 25)))
    io.overwrite(spark.createDataFrame(ledger, LEDGER), t("ops", "adsdata_ledger"), partition_by=("as_of",))
    export = [("p-ann", "k1", date(2027, 12, 25), "35-44", "F", "nl", "BE-VLG", [(210, "strong")],
               ["cooking_enthusiasts"], "unchanged", "adsdata", date(2026, 11, 25))]
    io.overwrite(spark.createDataFrame(export + [("p-bob",) + export[0][1:]], ADSDATA_EXPORT),
                 t("gold", "adsdata_export"))
    for day, pseudos in (("2026-11-24", ["p-ann", "p-bob"]), ("2026-11-25", ["p-ann"]), ("2026-11-23", ["p-bob"])):
        folder = wh.exports / "adsdata" / f"as_of={day}"
        folder.mkdir(parents=True)
        pq.write_table(pa.table({"pseudo_id": pseudos, "age_band": ["35-44"] * len(pseudos)}),
                       folder / "profiles.parquet")
    io.overwrite(spark.createDataFrame(
        [("req-1", "adv-9", "tv", "decoder_id", "PXD1", ANN, date(2026, 11, 20), date(2026, 12, 20)),
         ("req-bob-only", "adv-9", "web", "cookie_id", BOB_COOKIE, BOB, date(2026, 11, 20), date(2026, 12, 20))],
        ACTIVATION_LISTS), t("gold", "activation_lists"))
    io.overwrite(spark.createDataFrame([("ev-1", "adv-9", _ts(20), "matched", ANN), ("ev-1", "adv-9", _ts(20), "refined", ANN)],
                                       REFINEMENT_SETS), t("ops", "refinement_sets"))
    audit = {f.name: None for f in REFINEMENT_AUDIT.fields}
    audit.update(evaluation_id="ev-1", seq=1, request_id="req-1", advertiser_id="adv-9", channel="tv",
                 list_path="/lists/adv-9.csv", evaluated=True, status="accepted", activated=True,
                 requested_at=_ts(20), as_of=date(2026, 11, 20))
    io.overwrite(spark.createDataFrame([tuple(audit[f.name] for f in REFINEMENT_AUDIT.fields)], REFINEMENT_AUDIT),
                 t("ops", "refinement_audit"))
    return wh


@pytest.fixture(scope="module")
def accessed(spark, settings, tmp_path_factory):
    from pipelines.privacy.keys import load_keys, new_key_file

    key_file = tmp_path_factory.mktemp("keys") / "keys.json"
    new_key_file(key_file, ("adsdata",), now=datetime(2026, 1, 1, tzinfo=UTC))
    keys = load_keys(key_file)
    wh = _build(spark, tmp_path_factory.mktemp("wh"))
    # Someone erased earlier: only a tombstone is left.
    gone = Subject((Identifier("C00000009", "customer_id", "C00000009"),))
    io.overwrite(tombstone_rows(spark, gone, keys, {"C00000009": "r-9"}, date(2026, 11, 1)), tombstones_path(wh))
    doc = access_report(spark, settings, wh, ANN, keys, now=NOW)
    return {"wh": wh, "keys": keys, "doc": doc}


def test_identity_and_its_history(accessed):
    doc = accessed["doc"]
    assert doc["status"] == "held" and doc["customer_id"] == ANN and doc["generated_at"] == NOW.isoformat()
    assert (doc["identity"]["email"], doc["identity"]["phone"]) == ("ann@example.be", "+32470000001")
    assert "_run_id" not in doc["identity"]
    assert [h["email"] for h in doc["identity_history"]] == ["ann.old@example.be", "ann@example.be"]


def test_consent_history_in_time_order_and_current_state(accessed):
    consent = accessed["doc"]["consent"]
    assert [(e["event_id"], e["action"]) for e in consent["history"]] == [("e1", "grant"), ("e2", "withdraw")]
    assert [(c["purpose"], c["granted"], c["basis"]) for c in consent["current"]] == [("web_profile", False, "consent")]


def test_devices_are_her_own_links_only_even_on_a_shared_device(accessed):
    assert [(d["customer_id"], d["id_value"]) for d in accessed["doc"]["devices"]] == [
        (ANN, SHARED_COOKIE), (ANN, ANN_PHONE_COOKIE)]


def test_interests_with_evidence_and_segments(accessed):
    doc = accessed["doc"]
    assert doc["profiles"]["tv"] == [{"customer_id": ANN, "age_band": "35-44", "as_of": "2026-11-25", "interests": [
        {"interest": "Cooking", "iab_audience_id": 210, "score": 2.5}]}]
    assert [(e["interest"], e["source"], e["lift"]) for e in doc["profiles"]["interest_evidence"]] == [
        ("Cooking", "genre:Cooking", 2.5)]
    assert [(s["segment"], s["channel"]) for s in doc["segments"]] == [("cooking_enthusiasts", "tv")]


def test_what_was_delivered_to_ads_and_data_and_when(accessed):
    [shared] = accessed["doc"]["shared_with"]["ads_and_data"]
    assert {k: shared[k] for k in ("recipient", "pseudo_id", "key_id", "first_delivered", "last_delivered",
                                   "expires_at", "revoked_at", "delivered_on")} == {
        "recipient": "adsdata", "pseudo_id": "p-ann", "key_id": "k1", "first_delivered": "2026-11-24",
        "last_delivered": "2026-11-25", "expires_at": "2027-12-24", "revoked_at": None,
        "delivered_on": ["2026-11-24", "2026-11-25"]}
    assert shared["profile_currently_delivered"]["segments"] == ["cooking_enthusiasts"]


def test_activation_lists_and_refinements_name_requests_never_lists(accessed):
    doc = accessed["doc"]
    assert [(a["request_id"], a["advertiser_id"], a["channel"]) for a in doc["activation_lists"]] == [
        ("req-1", "adv-9", "tv")]
    assert [(r["request_id"], r["kind"]) for r in doc["list_refinements"]] == [("req-1", "matched"),
                                                                                ("req-1", "refined")]
    assert "/lists/adv-9.csv" not in json.dumps(doc)


def test_other_data_by_device_and_raw_record_counts(accessed):
    doc = accessed["doc"]
    assert sorted(e["event_id"] for e in doc["tables"]["silver/web_events"]) == ["w1", "w2"]
    assert doc["raw_records"] == {"bronze/customers": 2}


def test_nothing_of_anybody_else(accessed):
    text = json.dumps(accessed["doc"])
    assert [t for t in BOB_TRACES if t in text] == []


def test_an_erased_person_gets_the_erasure_record(spark, settings, accessed):
    doc = access_report(spark, settings, accessed["wh"], "C00000009", accessed["keys"], now=NOW)
    assert doc["status"] == "erased"
    assert doc["erasure"] == [{"request_id": "r-9", "erased_on": "2026-11-01"}]
    assert doc["identity"] is None and doc["tables"] == {} and doc["shared_with"] == {"ads_and_data": []}


def test_the_document_is_written_for_the_owner_only(accessed, tmp_path):
    path = write_access_report(accessed["doc"], tmp_path / "out" / "ann.json")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text(encoding="utf-8"))["customer_id"] == ANN
