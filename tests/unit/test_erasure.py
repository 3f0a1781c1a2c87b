"""Erasure (R1, C3): the map covers every table, forget deletes the person everywhere and purges every file that
ever held them (data, deletion vectors, old versions, transaction log, checkpoints), tombstones keep them out of
re-ingested landing lines, and nobody else loses anything."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pyspark.sql import Window
from pyspark.sql import functions as F

from conftest import with_deletion_vectors, write_jsonl
from pipelines import io
from pipelines.exports.adsdata import ADSDATA_EXPORT, LEDGER
from pipelines.privacy.keys import INTERNAL
from pipelines.rights.erasure import (
    CONTACT,
    CUSTOMER,
    DELETE,
    DEVICE,
    ERASURE_MAP,
    KEEP,
    LINE_IDS,
    PSEUDONYM,
    TEXT,
    ErasureMapError,
    Identifier,
    Locator,
    Subject,
    TableRule,
    check_rule,
    files_mentioning,
    find_subject,
    forget,
    generic_rule,
    matching_rows,
    rule_for,
    subject_frame,
    text_fields,
    tombstone_filter,
    tombstoned,
    without_tombstoned,
)
from pipelines.schemas import BRONZE, LANDING_COLUMNS, QUARANTINE, RUNS, SOURCES, silver_schema
from pipelines.sources.ingest import ingest_source
from pipelines.sources.reference_sets import reference_sets
from pipelines.sources.rules import load_source_rules

UTC = timezone.utc
NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
ANN, BOB = "C00000001", "C00000002"
ANN_EMAIL, ANN_OLD_EMAIL, ANN_PHONE = "ann@example.be", "ann.old@example.be", "+32470000001"
ANN_COOKIE, ANN_MADID, ANN_DECODER = "ck-ann-0001", "AAAA-0001-ANN", "PXD00000000001"
BOB_EMAIL, BOB_PHONE, BOB_COOKIE = "bob@example.be", "+32470000002", "ck-bob-0002"
#: Everything that identifies Ann; none of it may survive anywhere under the warehouse.
ANN_NEEDLES = [ANN, ANN_EMAIL, ANN_OLD_EMAIL, ANN_PHONE, ANN_COOKIE, ANN_MADID, ANN_MADID.lower(), ANN_DECODER]
BOB_NEEDLES = [BOB, BOB_EMAIL, BOB_PHONE, BOB_COOKIE]


# ------------------------------------------------------------------------------------------- the map (no Spark)

def test_every_pattern_rule_is_well_formed_and_unique():
    patterns = [r.pattern for r in ERASURE_MAP]
    assert len(patterns) == len(set(patterns))
    assert all(re.fullmatch(r"(bronze|silver|gold|ops)/[a-z_*]+", p) for p in patterns), patterns


def test_rule_for_prefers_exact_entries_and_falls_back_to_patterns():
    assert rule_for("silver/web_events").locators == (Locator("cookie_id", DEVICE), Locator("mobile_ad_id", DEVICE))
    assert rule_for("bronze/web_events").locators == (Locator("raw", TEXT),)
    assert rule_for("ops/tombstones").action == KEEP
    assert rule_for("gold/brand_new_table") is None


def test_rules_refuse_inconsistent_declarations():
    with pytest.raises(ValueError):
        TableRule("gold/x", KEEP, (Locator("customer_id", CUSTOMER),))
    with pytest.raises(ValueError):
        TableRule("gold/x", DELETE, ())
    with pytest.raises(ValueError):
        Locator("customer_id", "name")


def test_check_rule_names_the_missing_column(spark):
    schema = spark.createDataFrame([], "customer_id string, n int").schema
    check_rule(TableRule("gold/x", DELETE, (Locator("customer_id", CUSTOMER),)), "gold/x", schema)
    with pytest.raises(ErasureMapError, match="gold/x has no column 'cookie_id'"):
        check_rule(TableRule("gold/x", DELETE, (Locator("cookie_id", DEVICE),)), "gold/x", schema)
    with pytest.raises(ErasureMapError, match="not a string"):
        check_rule(TableRule("gold/x", DELETE, (Locator("n", CUSTOMER),)), "gold/x", schema)


def test_generic_rule_searches_known_identifier_columns_and_all_text(spark):
    schema = spark.createDataFrame([], "customer_id string, cookie_id array<string>, note string, n int").schema
    rule = generic_rule("gold/new", schema)
    assert rule.action == DELETE
    assert rule.locators == (Locator("customer_id", CUSTOMER), Locator("cookie_id", DEVICE), Locator("note", TEXT))


def _tables_named_in_code() -> set[str]:
    """``layer/name`` of every table the package writes or reads by a literal name (or a module constant)."""
    root = Path(__file__).resolve().parents[2] / "pipelines"
    names: set[str] = {f"bronze/{s}" for s in SOURCES} | {f"silver/{s}" for s in SOURCES}
    call = re.compile(r"""wh\.table\(\s*["'](bronze|silver|gold|ops)["']\s*,\s*(?:["']([a-z_]+)["']|([A-Z_]+))\s*\)""")
    output = re.compile(r"""outputs\[\s*["']([a-z_]+)["']\s*\]""")
    for py in root.rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        constants = dict(re.findall(r"""^([A-Z_]+)\s*=\s*["']([a-z_]+)["']""", text, flags=re.M))
        for layer, literal, constant in call.findall(text):
            name = literal or constants.get(constant)
            if name:
                names.add(f"{layer}/{name}")
        names |= {f"gold/{n}" for n in output.findall(text)}
    return names


def test_every_table_named_in_the_code_is_in_the_erasure_map():
    names = _tables_named_in_code()
    assert {"silver/customers", "gold/tv_profiles", "ops/adsdata_ledger", "gold/activation_lists"} <= names
    assert sorted(n for n in names if rule_for(n) is None) == []


# ------------------------------------------------------------------------------------------- raw fields

def test_text_fields_match_whole_csv_and_json_fields_and_hyphen_parts_only(spark):
    lines = ['C1,"Ann, B",ann@x.be', '{"cookie_id": "ck-1", "n": [1, 2]}', "C12,xC1", "ERQ-20261107-C1,C",
             "a-C1x,C1-"]
    got = [r.f for r in spark.createDataFrame([(x,) for x in lines], "raw string")
           .select(text_fields(F.col("raw")).alias("f")).collect()]
    assert [{t for t in f if t} for f in got] == [
        {"c1", "ann", "b", "ann@x.be"}, {"cookie_id", ":", "ck-1", "ck", "1", "n", "2"}, {"c12", "xc1"},
        {"erq-20261107-c1", "erq", "20261107", "c1", "c"}, {"a-c1x", "a", "c1x", "c1-", "c1"}]


def _physical_plan(df) -> str:
    return df._jdf.queryExecution().toString()


def test_rows_are_matched_by_equi_joins_per_identifier_kind_never_row_by_identifier(spark):
    """The person's rows are found with hash joins on each locator column (before: every row was tested against
    arrays of all identifiers, rows x identifiers, hours at 100k customers). Same answer as the rule says:
    case-insensitive ids, array elements, whole text fields only, and for access only the person's own rows."""
    subject = Subject((Identifier("C1", CUSTOMER, "C1"), Identifier("C1", DEVICE, "CK-Ann"),
                       Identifier("C1", CONTACT, "ann@x.be"), Identifier("C1", PSEUDONYM, "P-1")))
    rows = [
        ("c1", None, None, "r0"),                        # her id, other case
        ("C2", ["CK-Ann", "CK-Bob"], None, "r1"),        # another customer holding her cookie (array element)
        (None, None, '{"cookie_id": "ck-ann"}', "r2"),  # no customer id, her cookie in the text
        ("C2", None, "C1x,ann@x.be", "r3"),              # her e-mail as a whole field
        ("C2", None, "C1x,bob@x.be", "r4"),              # C1 only inside a longer field: not her
        ("C3", ["CK-Bob"], "P-1", "r5"),                 # a pseudonym is no text needle
        (None, None, None, "r6"),
    ]
    df = spark.createDataFrame(rows, "customer_id string, devices array<string>, raw string, tag string")
    rule = TableRule("x/t", DELETE, (Locator("customer_id", CUSTOMER), Locator("devices", DEVICE),
                                     Locator("raw", TEXT)))
    source = subject_frame(spark, subject)
    erased = matching_rows(df, rule, source)
    shown = matching_rows(df, rule, source, own_rows_only=True)
    assert sorted(r.tag for r in erased.collect()) == ["r0", "r1", "r2", "r3"]
    assert sorted(r.tag for r in shown.collect()) == ["r0", "r2"]
    for plan in (_physical_plan(erased), _physical_plan(shown)):
        assert "NestedLoopJoin" not in plan and "CartesianProduct" not in plan, plan
        assert "arrays_overlap" not in plan and "array_contains" not in plan, plan
        assert "HashJoin" in plan or "SortMergeJoin" in plan, plan
    for value in ("CK-Ann", "ck-ann", "ann@x.be"):  # the person's values are data, never literals in the plan
        assert value not in _physical_plan(erased)


def test_the_tombstone_filter_is_an_equi_join_too(spark, erased):
    df = spark.createDataFrame([(f"{ANN},x", 0), (f"{BOB},x", 1)], "raw string, line int")
    kept = tombstone_filter(spark, erased["wh"], erased["keys"])(df)
    assert [r.line for r in kept.collect()] == [1]
    plan = _physical_plan(kept)  # (the keyed hash itself joins its one row of key pads: rows x 1)
    assert "arrays_overlap" not in plan and "array_contains" not in plan, plan
    assert "LeftAnti" in plan and "HashJoin" in plan, plan


def test_bronze_lines_are_matched_by_the_identifier_tokens_found_at_ingestion(spark, settings, tmp_path):
    """Ingestion stores each parsed line's identifier tokens with the bronze line; erasure and access look those
    up instead of splitting every line of the warehouse at every erasure (its cost followed the warehouse, not
    the people). A line that did not parse, or a JSON line with a key the contract does not name, keeps being
    matched on its raw text."""
    def event(event_id, cookie, **extra):
        return {"event_id": event_id, "cookie_id": cookie, "mobile_ad_id": None, "ts": "2026-11-20T10:00:00+01:00",
                "event_type": "page_view", "site_domain": "proximus.be", "site_owner": "proximus",
                "content_category_id": "483", "campaign_id": None, "advertiser_id": None, "tc_string": None,
                "device_type": "mobile", "device_brand": "X", "device_model": "Y", "geo_city": "Gent", **extra}
    lines = [
        event(f"WE-{ANN}-1", ANN_COOKIE.upper()),                  # 0 her cookie (other case), her id in the event id
        event("WE-2", BOB_COOKIE),                                 # 1 Bob
        json.dumps(event("WE-3", ANN_COOKIE))[:60],                # 2 cut in transfer: no parse, raw text
        event("WE-4", BOB_COOKIE, note=ANN_COOKIE),                # 3 a key the contract does not name: raw text
        event("WE-5", BOB_COOKIE, geo_city=ANN_COOKIE),            # 4 parsed, hers only in a non-identifier column
        event(f"WE-{ANN}-6", None),                                # 5 only the event id embeds her customer id
        event("WE-7", f" {ANN_COOKIE}"),                           # 6 a separator inside an identifier: raw text
    ]
    write_jsonl(tmp_path / "landing", "web_events", "date=2026-11-20/part-0.jsonl", lines)
    wh = io.Warehouse(tmp_path / "wh")
    rules = load_source_rules(settings.conf_dir)
    ingest_source(spark, wh, tmp_path / "landing", rules["web_events"], reference_sets(settings), "r1", NOW)
    bronze = io.read(spark, wh.table("bronze", "web_events"))
    ids = {r._line_no: r._ids for r in bronze.select(
        F.dense_rank().over(Window.orderBy("_line")).alias("_line_no"), LINE_IDS).collect()}
    assert set(ids[1]) >= {ANN_COOKIE, f"we-{ANN.lower()}-1", ANN.lower()} and "gent" not in ids[1]
    assert ids[3] is None and ids[4] is None and ANN_COOKIE not in ids[5] and ids[7] is None
    assert set(ids[6]) == {f"we-{ANN.lower()}-6", "we", ANN.lower(), "6", "483"}  # content_category_id too

    subject = Subject((Identifier(ANN, CUSTOMER, ANN), Identifier(ANN, DEVICE, ANN_COOKIE)))
    rule = rule_for("bronze/web_events")
    for own in (False, True):
        found = matching_rows(bronze, rule, subject_frame(spark, subject), own_rows_only=own)
        assert sorted(json.loads(r.raw).get("event_id") if r.raw.endswith("}") else "cut" for r in found.collect()) \
            == ["WE-4", "WE-7", f"WE-{ANN}-1", f"WE-{ANN}-6", "cut"]


# ------------------------------------------------------------------------------------------- a warehouse

def _customer_line(cid: str, email: str, phone: str, updated: str) -> str:
    values = {"customer_id": cid, "first_name": "X", "last_name": "Y", "email": email, "phone": phone,
              "birth_date": "1980-01-01", "gender": "F", "language": "nl", "address_id": f"addr-{cid}",
              "postal_code": "2000", "customer_type": "residential", "tv_subscription": "true",
              "internet_subscription": "true", "mobile_subscription": "true", "customer_since": "2010-01-01",
              "contract_end": "", "updated_at": updated}
    return ",".join(values[c] for c in LANDING_COLUMNS["customers"])


def _web_line(event_id: str, cookie: str | None, madid: str | None) -> str:
    return json.dumps({"event_id": event_id, "cookie_id": cookie, "mobile_ad_id": madid,
                       "ts": "2026-11-20T10:00:00+01:00", "event_type": "page_view", "site_domain": "proximus.be"})


def _bronze(spark, source: str, file: str, lines: list[str]):
    ts = datetime(2026, 11, 20, tzinfo=UTC)
    return spark.createDataFrame([(source, raw, file, i, "run-1", ts) for i, raw in enumerate(lines)], BRONZE)


def _silver(spark, source: str, rows: list[dict]):
    schema = silver_schema(source)
    lineage = {"_source_file": "f", "_line": 0, "_run_id": "run-1", "_ingested_at": datetime(2026, 11, 20, tzinfo=UTC)}
    return spark.createDataFrame([tuple({**lineage, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


def _ledger_row(pseudo: str, cid: str) -> tuple:
    d = date(2026, 11, 25)
    return ("adsdata", "adsdata-k1", pseudo, cid, d, d, date(2027, 12, 25), "h", None, None, None, d)


def _export_row(pseudo: str) -> tuple:
    return (pseudo, "adsdata-k1", date(2027, 12, 25), "35-44", "F", "nl", "BE-VLG", [], ["cooking"], "new",
            "adsdata", date(2026, 11, 25))


def build_warehouse(spark, root: Path) -> io.Warehouse:
    wh = io.Warehouse(root)
    t = wh.table
    # bronze/customers: Ann's older record (old e-mail) is deleted by a re-delivery, so it survives only behind a
    # deletion vector in a live file -- erasure must still remove it physically.
    io.append(_bronze(spark, "customers", "customers/f1.csv", [
        _customer_line(ANN, ANN_OLD_EMAIL, ANN_PHONE, "2025-01-01T00:00:00+01:00"),
        _customer_line(BOB, BOB_EMAIL, BOB_PHONE, "2025-01-01T00:00:00+01:00")]), t("bronze", "customers"))
    with_deletion_vectors(spark, t("bronze", "customers"))
    io.append(_bronze(spark, "customers", "customers/f2.csv", [
        _customer_line(ANN, ANN_EMAIL, ANN_PHONE, "2026-01-01T00:00:00+01:00")]), t("bronze", "customers"))
    io.delete_where(spark, t("bronze", "customers"), F.col("_source_file") == "customers/f1.csv")
    io.append(_bronze(spark, "customers", "customers/f1.csv", [
        _customer_line(BOB, BOB_EMAIL, BOB_PHONE, "2025-01-01T00:00:00+01:00")]), t("bronze", "customers"))
    io.append(_bronze(spark, "web_events", "web_events/f1.jsonl", [
        _web_line("w1", ANN_COOKIE, None), _web_line("w2", None, ANN_MADID.lower()),
        _web_line("w3", BOB_COOKIE, None)]), t("bronze", "web_events"))
    io.overwrite(_silver(spark, "customers", [
        {"customer_id": ANN, "email": ANN_EMAIL, "phone": ANN_PHONE, "birth_date": date(1980, 1, 1)},
        {"customer_id": BOB, "email": BOB_EMAIL, "phone": BOB_PHONE, "birth_date": date(1980, 1, 1)}]),
        t("silver", "customers"))
    io.overwrite(_silver(spark, "identity_links", [
        {"customer_id": ANN, "id_type": "cookie_id", "id_value": ANN_COOKIE},
        {"customer_id": ANN, "id_type": "mobile_ad_id", "id_value": ANN_MADID},
        {"customer_id": ANN, "id_type": "decoder_id", "id_value": ANN_DECODER},
        {"customer_id": BOB, "id_type": "cookie_id", "id_value": BOB_COOKIE}]), t("silver", "identity_links"))
    io.overwrite(_silver(spark, "web_events", [
        {"event_id": "w1", "cookie_id": ANN_COOKIE, "event_type": "page_view"},
        {"event_id": "w2", "mobile_ad_id": ANN_MADID.lower(), "event_type": "page_view"},
        {"event_id": "w3", "cookie_id": BOB_COOKIE, "event_type": "page_view"}]), t("silver", "web_events"))
    io.overwrite(_silver(spark, "erasure_requests", [
        {"request_id": "r-1", "customer_id": ANN, "requested_at": datetime(2026, 11, 25, tzinfo=UTC)}]),
        t("silver", "erasure_requests"))
    io.overwrite(spark.createDataFrame([(ANN, [ANN_COOKIE], [ANN_MADID]), (BOB, [BOB_COOKIE], [])],
                                       "customer_id string, cookie_id array<string>, mobile_ad_id array<string>"),
                 t("gold", "web_profiles"))
    # gold/tv_profiles: Ann withdrew before the second run; her row lives on only in the old version.
    io.overwrite(spark.createDataFrame([(ANN, "35-44"), (BOB, "35-44")], "customer_id string, age_band string"),
                 t("gold", "tv_profiles"))
    io.overwrite(spark.createDataFrame([(BOB, "35-44")], "customer_id string, age_band string"), t("gold", "tv_profiles"))
    q = datetime(2026, 11, 20, tzinfo=UTC)
    io.append(spark.createDataFrame([
        ("consent_events", "truncated line", f'{{"event_id": "e9", "customer_id": "{ANN}", "purp', "f", 1, "run-1", ANN, q,
         q.date()),
        ("web_events", "wrong type: ts", _web_line("w9", ANN_COOKIE, None).replace("2026-11-20", "yesterday"), "f", 2,
         "run-1", None, q, q.date()),
        ("customers", "wrong type: birth_date", _customer_line(BOB, BOB_EMAIL, BOB_PHONE, "x"), "f", 3, "run-1", BOB, q,
         q.date()),
    ], QUARANTINE), t("ops", "quarantine"))
    io.overwrite(spark.createDataFrame([_ledger_row("p-ann", ANN), _ledger_row("p-bob", BOB)], LEDGER),
                 t("ops", "adsdata_ledger"), partition_by=("as_of",))
    io.overwrite(spark.createDataFrame([_export_row("p-ann"), _export_row("p-bob")], ADSDATA_EXPORT),
                 t("gold", "adsdata_export"))
    io.overwrite(spark.createDataFrame([("run-1", date(2026, 11, 25), q, q, "succeeded", None, "", "run")], RUNS),
                 t("ops", "runs"))
    return wh


def _rows(spark, wh, layer, name, *cols):
    df = io.read(spark, wh.table(layer, name))
    return sorted(tuple(r) for r in df.select(*cols).collect())


@pytest.fixture(scope="module")
def erased(spark, settings, tmp_path_factory):
    from pipelines.privacy.keys import load_keys, new_key_file

    key_file = tmp_path_factory.mktemp("keys") / "keys.json"
    new_key_file(key_file, ("adsdata",), now=datetime(2026, 1, 1, tzinfo=UTC))
    keys = load_keys(key_file)
    wh = build_warehouse(spark, tmp_path_factory.mktemp("wh"))
    before = files_mentioning(wh.root, ANN_NEEDLES)
    # The request id names the person, as operators' ids often do: it must not survive in the tombstones.
    report = forget(spark, settings, wh, [ANN], keys, NOW, request_ids={ANN: f"r-1-{ANN.lower()}"})
    return {"wh": wh, "keys": keys, "report": report, "before": before}


def test_the_warehouse_held_ann_in_data_files_and_logs_before(erased):
    before = erased["before"]
    assert any("_delta_log" in f for f in before) and any(f.endswith(".parquet") and "_delta_log" not in f
                                                          for f in before)


def test_no_file_under_the_warehouse_mentions_ann_afterwards(erased):
    """Every file, every version: data Parquet, deletion vectors, commits, checksums, checkpoints (decoded)."""
    assert files_mentioning(erased["wh"].root, ANN_NEEDLES) == []


def test_bob_is_still_found_by_the_same_scan(erased):
    assert files_mentioning(erased["wh"].root, [BOB]) != []


def test_ann_rows_are_gone_and_bob_rows_untouched(spark, erased):
    wh = erased["wh"]
    assert _rows(spark, wh, "silver", "customers", "customer_id", "email") == [(BOB, BOB_EMAIL)]
    assert _rows(spark, wh, "silver", "identity_links", "customer_id", "id_value") == [(BOB, BOB_COOKIE)]
    assert _rows(spark, wh, "silver", "web_events", "event_id") == [("w3",)]
    assert _rows(spark, wh, "silver", "erasure_requests", "request_id") == []
    assert _rows(spark, wh, "gold", "web_profiles", "customer_id") == [(BOB,)]
    assert _rows(spark, wh, "gold", "tv_profiles", "customer_id") == [(BOB,)]
    assert _rows(spark, wh, "gold", "adsdata_export", "pseudo_id") == [("p-bob",)]
    assert _rows(spark, wh, "bronze", "customers", "_source_file") == [("customers/f1.csv",)]
    assert [json.loads(r[0])["event_id"] for r in _rows(spark, wh, "bronze", "web_events", "raw")] == ["w3"]
    assert _rows(spark, wh, "ops", "quarantine", "line") == [(3,)]
    assert _rows(spark, wh, "ops", "runs", "run_id") == [("run-1",)]


def test_the_ledger_keeps_the_pseudonym_without_the_customer_so_the_next_delivery_revokes_it(spark, erased):
    assert _rows(spark, erased["wh"], "ops", "adsdata_ledger", "pseudo_id", "customer_id") == [
        ("p-ann", None), ("p-bob", BOB)]
    assert erased["report"].pending_revocations == 1


def test_tombstones_hold_keyed_hashes_of_the_customer_and_device_ids_only(spark, erased):
    key = erased["keys"].active(INTERNAL)
    expected = sorted(
        (hmac.new(key.secret, f"tombstone:{v.lower()}".encode(), hashlib.sha256).hexdigest(), key.key_id, kind,
         "r-1-[erased]", date(2026, 11, 26))
        for v, kind in ((ANN, "customer_id"), (ANN_COOKIE, "device_id"), (ANN_MADID, "device_id"),
                        (ANN_DECODER, "device_id")))
    got = sorted(tuple(r) for r in tombstoned(spark, erased["wh"], erased["keys"]).collect())
    assert got == expected


def test_report_counts_what_was_deleted(erased):
    r = erased["report"]
    assert r.people == 1 and r.requests == ("r-1-[erased]",) and r.tombstones == 4 and r.unmapped_tables == ()
    assert {k: v for k, v in r.rows_deleted.items() if v} == {
        "bronze/customers": 1, "bronze/web_events": 2, "silver/customers": 1, "silver/identity_links": 3,
        "silver/web_events": 2, "silver/erasure_requests": 1, "gold/web_profiles": 1, "gold/adsdata_export": 1,
        "ops/quarantine": 2}
    assert r.rows_scrubbed == {"ops/adsdata_ledger": 1}
    assert ANN not in r.summary() and ANN not in repr(r)


def test_forgetting_again_finds_nothing_and_keeps_one_tombstone_each(spark, settings, erased):
    again = forget(spark, settings, erased["wh"], [ANN], erased["keys"], NOW, request_ids={ANN: "r-2"})
    assert sum(again.rows_deleted.values()) == 0 and sum(again.rows_scrubbed.values()) == 0
    assert tombstoned(spark, erased["wh"], erased["keys"]).count() == 4


def _forget_ann_failing_at(spark, settings, keyring, monkeypatch, wh, table: str) -> None:
    """A forget of Ann (request ``r-1``) that fails when it reaches ``table``, as a lost executor or a full disk
    would make it; ``erase_rows`` is the real one again afterwards."""
    from pipelines.rights import erasure

    real = erasure.erase_rows

    def fails_at_table(spark_, path, rule, subject_df):
        if erasure.table_name(wh, path) == table:
            raise RuntimeError(f"lost at {table}")
        return real(spark_, path, rule, subject_df)

    monkeypatch.setattr(erasure, "erase_rows", fails_at_table)
    with pytest.raises(RuntimeError, match=f"lost at {table}"):
        forget(spark, settings, wh, [ANN], keyring, NOW, request_ids={ANN: "r-1"})
    monkeypatch.setattr(erasure, "erase_rows", real)


def test_an_erasure_that_fails_half_way_is_finished_by_the_next_one(spark, settings, keyring, tmp_path, monkeypatch):
    """A failure while the other tables are erased (a lost executor, a full disk) leaves the request pending and
    the person's identifiers findable, because the tables they live in are erased last; the next erasure then
    removes every trace."""
    wh = build_warehouse(spark, tmp_path / "wh")
    needles = find_subject(spark, wh, [ANN]).needles
    _forget_ann_failing_at(spark, settings, keyring, monkeypatch, wh, "silver/web_events")
    assert _rows(spark, wh, "silver", "erasure_requests", "request_id") == [("r-1",)]  # still pending
    assert find_subject(spark, wh, [ANN]).needles == needles
    assert files_mentioning(wh.root, needles) != []

    forget(spark, settings, wh, [ANN], keyring, NOW, request_ids={ANN: "r-1"})
    assert files_mentioning(wh.root, needles) == []
    assert _rows(spark, wh, "silver", "web_events", "event_id") == [("w3",)]


def test_every_table_find_subject_reads_is_erased_after_the_others(spark, erased, monkeypatch):
    """The phases of :func:`erasure_phases` hold: the tables that identify the person go after every other one,
    and the tables that say who is pending go last."""
    from pipelines.rights import erasure

    read = []
    real = erasure._existing
    monkeypatch.setattr(erasure, "_existing", lambda s, wh, layer, name: read.append(f"{layer}/{name}") or real(
        s, wh, layer, name))
    find_subject(spark, erased["wh"], [ANN])
    assert read and set(read) <= erasure.IDENTIFIER_SOURCES | erasure.PENDING_SOURCES
    names = ["silver/web_events", "silver/erasure_requests", "ops/quarantine", "bronze/web_events",
             "silver/customers", "gold/tv_profiles", "silver/identity_links"]
    assert erasure.erasure_phases(names) == [
        ["bronze/web_events", "gold/tv_profiles", "silver/web_events"], ["ops/quarantine"], ["silver/identity_links"],
        ["silver/customers", "silver/erasure_requests"]]
    assert erasure.SOURCES_WITH_FOREIGN_ROWS <= erasure.IDENTIFIER_SOURCES


def test_an_erasure_that_fails_on_the_quarantine_leaves_the_cookie_of_a_quarantined_web_event_findable(
        spark, settings, keyring, tmp_path, monkeypatch):
    """The quarantine holds a web-event line of Ann's known only by her cookie (``w9``); the cookie comes from the
    identity links and the web profiles, which are erased in a phase of their own after the quarantine. Were they
    erased side by side with it, a failed quarantine MERGE would leave the line and nothing to find it by."""
    wh = build_warehouse(spark, tmp_path / "wh")
    needles = find_subject(spark, wh, [ANN]).needles
    assert ANN_COOKIE.lower() in needles
    _forget_ann_failing_at(spark, settings, keyring, monkeypatch, wh, "ops/quarantine")
    assert find_subject(spark, wh, [ANN]).needles == needles  # the cookie is still named by the identity links

    forget(spark, settings, wh, [ANN], keyring, NOW, request_ids={ANN: "r-1"})
    assert files_mentioning(wh.root, needles) == []
    assert _rows(spark, wh, "ops", "quarantine", "source") == [("customers",)]  # Bob's line stays


def test_tombstones_under_a_key_missing_from_the_key_file_are_refused(spark, erased, keyring):
    from pipelines.rights.erasure import TombstoneKeyMissing

    with pytest.raises(TombstoneKeyMissing, match="restore the retired key"):
        tombstoned(spark, erased["wh"], keyring)


# ------------------------------------------------------------------------------------------- re-ingestion

def test_landing_lines_of_an_erased_person_are_dropped_before_ingestion(spark, erased):
    """Old landing files re-ingested: every line holding Ann's id or a device of hers as a whole field goes,
    malformed ones included; lines where her id is only part of a longer field stay."""
    lines = [
        _customer_line(ANN, ANN_EMAIL, ANN_PHONE, "2026-01-01T00:00:00+01:00"),
        _customer_line(BOB, BOB_EMAIL, BOB_PHONE, "2026-01-01T00:00:00+01:00"),
        _web_line("w1", ANN_COOKIE, None),
        _web_line("w2", None, ANN_MADID.lower()),
        _web_line("w3", BOB_COOKIE, None),
        f'{{"event_id": "e9", "customer_id": "{ANN}", "purp',
        f"v1,{ANN}0,decoder",
        f"{BOB},cookie_id,{ANN_COOKIE}x,proximus.be,2026-01-01T00:00:00+01:00",
    ]
    df = spark.createDataFrame([(x, i) for i, x in enumerate(lines)], "raw string, line int")
    keep = tombstone_filter(spark, erased["wh"], erased["keys"])
    assert sorted(r.line for r in keep(df).collect()) == [1, 4, 6, 7]


def test_without_any_tombstone_the_filter_is_the_identity(spark, tmp_path, keyring):
    df = spark.createDataFrame([(ANN,)], "raw string")
    assert tombstone_filter(spark, io.Warehouse(tmp_path), keyring)(df) is df


def test_tombstones_of_a_retired_internal_key_still_match(spark, erased, tmp_path):
    """After ``audience keys rotate --recipient internal``, tombstones written under the old key still work."""
    from pipelines.privacy.keys import load_keys, rotate

    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"format": 1, "recipients": {
        INTERNAL: {"active": erased["keys"].active(INTERNAL).key_id, "keys": {
            erased["keys"].active(INTERNAL).key_id: {"secret": erased["keys"].active(INTERNAL).secret.hex()}}}}}))
    rotate(key_file, INTERNAL)
    rotated = load_keys(key_file)
    assert rotated.active(INTERNAL).key_id != erased["keys"].active(INTERNAL).key_id
    df = spark.createDataFrame([(_web_line("w1", ANN_COOKIE, None),), (_web_line("w3", BOB_COOKIE, None),)], "raw string")
    kept = without_tombstoned(df, tombstoned(spark, erased["wh"], rotated), rotated).collect()
    assert [json.loads(r.raw)["event_id"] for r in kept] == ["w3"]


# ------------------------------------------------------------------------------------------- a full run

@pytest.mark.slow
def test_every_table_of_a_full_run_is_in_the_erasure_map_and_forget_leaves_no_trace(spark, settings, tmp_path,
                                                                                      pipeline_run, e2e_keyring):
    """On the end-to-end warehouse (two generated daily runs): every table is covered; forgetting a customer with
    devices leaves no file (any layer, any version, logs included) with their id, e-mail, phone or device ids; and
    delivering every old landing file that mentions them again, as a new day, brings none of it back (R1)."""
    from pipelines.jobs.daily import RunContext, stage_ingest
    from pipelines.progress import Progress
    from pipelines.rights.erasure import unmapped_tables

    from conftest import warehouse_copy

    wh = warehouse_copy(pipeline_run, tmp_path / "warehouse")
    assert unmapped_tables(wh) == []
    links = io.read(spark, wh.table("silver", "identity_links"))
    victim = links.groupBy("customer_id").count().orderBy(F.desc("count"), "customer_id").first().customer_id
    subject = find_subject(spark, wh, [victim])
    needles = subject.needles
    assert len(needles) >= 3 and files_mentioning(wh.root, needles) != []
    report = forget(spark, settings, wh, [victim], e2e_keyring, NOW)
    assert report.unmapped_tables == ()
    assert files_mentioning(wh.root, needles) == []

    # Replay: every landing file that mentions the person is delivered again under a new date, and the daily
    # ingestion stage (erasure requests, erasure, tombstone filter, every source) reads it.
    landing = tmp_path / "landing"
    shutil.copytree(pipeline_run.landing, landing)
    day = pipeline_run.second.as_of + timedelta(days=1)
    replayed: dict[str, int] = {}
    for f in sorted(pipeline_run.landing.rglob("part-*")):
        if any(n in f.read_text(encoding="utf-8").lower() for n in needles):
            source = f.relative_to(pipeline_run.landing).parts[0]
            dest = landing / source / f"date={day.isoformat()}" / f"replay-{sum(replayed.values())}{f.suffix}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)
            replayed[source] = replayed.get(source, 0) + 1
    assert {"customers", "identity_links"} <= set(replayed), replayed
    started = datetime.combine(day, datetime.min.time(), UTC).replace(hour=6)
    ctx = RunContext(spark, settings, wh, landing, day, "replay-run", started, e2e_keyring,
                     progress=Progress(quiet=True))
    stage_ingest(ctx)
    for source, n in replayed.items():  # the files were read: other people's lines came in (as duplicates)
        assert ctx.metrics[f"ingest.{source}.files"] == n and ctx.metrics[f"ingest.{source}.rows"] > 0, source
    assert files_mentioning(wh.root, needles) == []


# ------------------------------------------------------------------------------------------- the direct purge

ODD_SCHEMA = "k string, v int"


def _data_files(root: Path) -> set[str]:
    return {str(f.relative_to(root)) for f in root.rglob("*")
            if f.is_file() and "_delta_log" not in f.parts and not f.name.startswith(".")}


def _three_versions(spark, root: Path) -> tuple[set[str], set[str]]:
    """A table with partition values that need escaping and three versions (write, overwrite, append); returns
    its live data files and every data file on disk, relative to ``root``."""
    spark.createDataFrame([("a b%c=d/é", 1), ("x", 2)], ODD_SCHEMA).write.format("delta").partitionBy("k").save(str(root))
    spark.createDataFrame([("a b%c=d/é", 3), ("y", 4)], ODD_SCHEMA).write.format("delta").mode("overwrite").save(str(root))
    spark.createDataFrame([("z", 5)], ODD_SCHEMA).write.format("delta").mode("append").save(str(root))
    live = {str(Path(p.removeprefix("file:")).relative_to(root))
            for p in spark.read.format("delta").load(str(root)).inputFiles()}
    return live, _data_files(root)


def test_vacuum_now_deletes_exactly_the_files_of_older_versions(spark, tmp_path):
    """Partition values that need escaping, three versions, old files gone, live files and rows intact."""
    from delta.tables import DeltaTable

    from pipelines.rights.erasure import vacuum_now

    root = tmp_path / "odd table"
    live, before = _three_versions(spark, root)
    assert len(before) > len(live) and (root / "k=x").is_dir()

    deleted = vacuum_now(spark, root)

    assert deleted == len(before) - len(live) and _data_files(root) == live  # done directly, not by Delta
    assert not (root / "k=x").exists()  # a partition left empty goes too
    assert sorted(tuple(r) for r in spark.read.format("delta").load(str(root)).collect()) == [
        ("a b%c=d/é", 3), ("y", 4), ("z", 5)]
    with pytest.raises(Exception):  # the first version's files are gone
        spark.read.format("delta").option("versionAsOf", 0).load(str(root)).collect()
    assert DeltaTable.forPath(spark, str(root)).history(1).first().operation != "VACUUM END"


def test_after_compaction_the_checkpoint_lists_the_live_files_and_the_purge_deletes_the_rest(spark, tmp_path):
    """The live files read from the checkpoint ``compact_history`` wrote are exactly the table's (escaped partition
    values included), and a VACUUM given that list deletes exactly the older files. No list is given when a
    commit follows the checkpoint or the checksum's count disagrees: Spark is asked then."""
    from pipelines.rights.erasure import checkpointed_live_files, compact_history, vacuum_now

    root = tmp_path / "odd table"
    live, before = _three_versions(spark, root)
    assert checkpointed_live_files(root) is None  # no checkpoint yet

    assert compact_history(spark, root) > 0
    listed = checkpointed_live_files(root)
    assert listed is not None and {str(p.relative_to(root)) for p in listed} == live

    assert vacuum_now(spark, root, listed) == len(before) - len(live) and _data_files(root) == live
    assert sorted(tuple(r) for r in spark.read.format("delta").load(str(root)).collect()) == [
        ("a b%c=d/é", 3), ("y", 4), ("z", 5)]

    spark.createDataFrame([("w", 6)], ODD_SCHEMA).write.format("delta").mode("append").save(str(root))
    assert checkpointed_live_files(root) is None  # a commit after the checkpoint
    compact_history(spark, root)
    assert checkpointed_live_files(root) is not None
    crc = next(f for f in (root / "_delta_log").iterdir() if re.fullmatch(r"\d{20}\.crc", f.name))
    crc.write_text(json.dumps({**json.loads(crc.read_text()), "numFiles": 99}))
    assert checkpointed_live_files(root) is None  # the checksum counts other files than the checkpoint lists
    crc.unlink()
    assert checkpointed_live_files(root) is None  # no checksum to confirm the count


def test_vacuum_now_leaves_tables_with_live_deletion_vectors_to_delta(spark, tmp_path):
    """Rows hidden by a deletion vector: the direct purge steps aside, Delta's VACUUM keeps the vector file."""
    from delta.tables import DeltaTable

    from pipelines.rights.erasure import has_deletion_vectors, vacuum_now

    root = tmp_path / "dv"
    spark.range(0, 50).selectExpr("cast(id as string) as k").coalesce(1).write.format("delta").save(str(root))
    with_deletion_vectors(spark, root)
    DeltaTable.forPath(spark, str(root)).delete("k = '7'")
    assert has_deletion_vectors(spark, root)

    assert vacuum_now(spark, root) is None
    assert spark.read.format("delta").load(str(root)).count() == 49
    assert any(f.name.startswith("deletion_vector") for f in root.iterdir())


def test_has_deletion_vectors_answers_from_the_protocol_and_the_files_not_by_default(spark, tmp_path):
    """A table without the deletion-vector feature has none (no REORG for it: a needless job per table, and on a
    cluster Delta's REORG fails); a table with vectors is found even when no checksum gives the count."""
    from delta.tables import DeltaTable

    from pipelines.rights.erasure import has_deletion_vectors

    plain, with_dv = tmp_path / "plain", tmp_path / "dv"
    for root in (plain, with_dv):
        spark.range(0, 50).selectExpr("cast(id as string) as k").coalesce(1).write.format("delta").save(str(root))
    with_deletion_vectors(spark, with_dv)
    assert not has_deletion_vectors(spark, with_dv)      # the feature, but no vector yet
    for root in (plain, with_dv):
        DeltaTable.forPath(spark, str(root)).delete("k = '7'")
        for crc in (root / "_delta_log").glob("*.crc"):
            crc.unlink()                                  # no checksum: the count must come from the files
        DeltaTable.forPath(spark, str(root)).toDF().count()
    assert not has_deletion_vectors(spark, plain)
    assert has_deletion_vectors(spark, with_dv)
