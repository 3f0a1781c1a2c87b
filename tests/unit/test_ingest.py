"""Ingestion: every bad-row kind of contract section 2 is quarantined with a reason; nothing is lost;
files are read once; replays add nothing."""
from __future__ import annotations

import re
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from pyspark.sql import functions as F

from conftest import write_csv, write_jsonl
from pipelines import io
from pipelines.sources.ingest import ingest_source
from pipelines.sources.reference_sets import reference_sets
from pipelines.sources.rules import load_source_rules

NOW = datetime(2026, 11, 26, 6, 0, tzinfo=timezone.utc)

GOOD_CUSTOMER = 'c1,Ann,"Peeters, ""Jr""",ann@x.be,+32470000001,1990-05-01,F,nl,a1,9000,residential,true,true,false,2020-01-01,,2026-11-01T10:00:00+01:00'


def ingest(spark, settings, tmp_path: Path, source: str, run_id: str = "r1", now: datetime = NOW):
    rules = load_source_rules(settings.conf_dir)
    wh = io.Warehouse(tmp_path / "wh")
    result = ingest_source(spark, wh, tmp_path / "landing", rules[source], reference_sets(settings), run_id, now)
    return wh, result


def quarantine(spark, wh, source):
    q = io.read(spark, wh.table("ops", "quarantine"))
    return sorted((r.reason, r.raw) for r in q.where(F.col("source") == source).collect())


def test_csv_bad_row_kinds(spark, settings, tmp_path):
    lines = [
        GOOD_CUSTOMER,
        GOOD_CUSTOMER,                                                                   # duplicate
        'c2,Bo,Smet,bo@x.be,+32470000002,1990-13-45,M,fr,a2,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # wrong type
        'c3,Cy,Smet,cy@x.be,+32470000003,1990-01-01,Q,fr,a3,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # unknown code
        'c4,Di,Smet,di@x.be,+32470000004,1990-01-01,F,fr,a4,1000,residential,true,false,false,2020-01-01,,2099-11-01T10:00:00+01:00',  # future
        'c5,Ed,Smet,ed@x.be,+3247',                                                                                               # truncated
        'c6,"Unclosed,Smet,ed@x.be,+32470000006,1990-01-01,F,fr,a4,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # cut in a quote
        'c7,Fa,Smet,fa@x.be,+32470000007,1990-01-01,F,fr,a7,1000,residential,maybe,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # wrong boolean
        'c8,Ga,Smet,ga@x.be,+32470000008,1990-01-01,F,fr,a8,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00',  # no offset
        'c9,Ha,Smet,ha@x.be,+32470000009,1990-01-01,F,fr,a9,9999,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # unknown postal code
        'c10,Ia,Smet,ia@x.be,0470000010,1990-01-01,F,fr,a9,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # phone not E.164
        'c11,Ja,Smet,ja@x.be,+32470000011,1990-01-01,F,fr,a9,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00,extra',  # too many fields
        ',Ka,Smet,ka@x.be,+32470000012,1990-01-01,F,fr,a9,1000,residential,true,false,false,2020-01-01,,2026-11-01T10:00:00+01:00',  # no id
    ]
    write_csv(tmp_path / "landing", "customers", "date=2026-11-01/part-1.csv", lines)
    wh, result = ingest(spark, settings, tmp_path, "customers")
    reasons = [r for r, _ in quarantine(spark, wh, "customers")]
    assert sorted(reasons) == sorted([
        "duplicate: customer_id,updated_at", "wrong type: birth_date", "unknown code: gender",
        "timestamp after ingestion: updated_at", "truncated line: fewer than 17 fields",
        "truncated line: unbalanced quote", "wrong type: tv_subscription", "wrong type: updated_at",
        "unknown code: postal_code", "invalid format: phone", "malformed line: more than 17 fields",
        "missing value: customer_id",
    ])
    assert (result.rows, result.valid, result.quarantined) == (13, 1, 12)
    silver = io.read(spark, wh.table("silver", "customers")).collect()
    assert [(r.customer_id, r.last_name, r.tv_subscription, r.birth_date.isoformat()) for r in silver] == [
        ("c1", 'Peeters, "Jr"', True, "1990-05-01")]
    # Nothing is lost: every line is kept raw in bronze.
    assert io.read(spark, wh.table("bronze", "customers")).count() == 13


LINKS_HEADER = "customer_id,id_type,id_value,site_domain,authenticated_at"


def _links_file(landing: Path, name: str, header: str, rows: list[str]) -> None:
    path = landing / "identity_links" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(["\ufeff" + header, *rows]) + "\r\n", encoding="utf-8")


def test_csv_headers_are_read_by_name_and_a_header_that_does_not_fit_quarantines_its_file(spark, settings, tmp_path):
    """Contract section 2: CSV files have a header row. The contract's header quoted (RFC 4180) is a header; the
    same columns in another order are mapped by name, not loaded swapped; a header with an unknown or a missing
    column quarantines every line of its file with that reason (nothing is guessed, nothing is lost)."""
    when = "2026-11-01T10:00:00+01:00"
    landing = tmp_path / "landing"
    _links_file(landing, "date=2026-11-01/a.csv", ",".join(f'"{c}"' for c in LINKS_HEADER.split(",")),
                [f"c1,cookie_id,ck-1,proximus.be,{when}"])
    _links_file(landing, "date=2026-11-01/b.csv", "id_value, authenticated_at, customer_id, id_type, site_domain",
                [f"ck-2,{when},c2,cookie_id,proximus.be", f'"ck-3",{when},"c3",mobile_ad_id,proximus.be'])
    _links_file(landing, "date=2026-11-01/c.csv", "customer_id,id_kind,id_value,site_domain,authenticated_at",
                [f"c4,cookie_id,ck-4,proximus.be,{when}"])
    wh, result = ingest(spark, settings, tmp_path, "identity_links")
    silver = io.read(spark, wh.table("silver", "identity_links"))
    assert sorted((r.customer_id, r.id_type, r.id_value, r._source_file.rsplit("/", 1)[1]) for r in silver.collect()) == [
        ("c1", "cookie_id", "ck-1", "a.csv"), ("c2", "cookie_id", "ck-2", "b.csv"), ("c3", "mobile_ad_id", "ck-3", "b.csv")]
    reason = "header does not match the contract: missing id_type; unknown id_kind"
    q = quarantine(spark, wh, "identity_links")
    assert [r for r, _ in q] == [reason, reason] and any("c4" in raw for _, raw in q)
    assert (result.rows, result.valid, result.quarantined) == (5, 3, 2)
    assert io.read(spark, wh.table("bronze", "identity_links")).count() == 5  # the file's header line is kept too


def test_jsonl_bad_rows_and_future_dated_events_are_kept(spark, settings, tmp_path):
    ok = {"event_id": "e1", "customer_id": "c1", "purpose": "web_profile", "action": "grant",
          "channel": "myproximus_web", "event_ts": "2026-11-20T10:00:00+01:00"}
    future_valid = dict(ok, event_id="e2", event_ts="2026-11-26T05:00:00+01:00")  # after as-of, before ingestion
    write_jsonl(tmp_path / "landing", "consent_events", "date=2026-11-25/part-1.jsonl", [
        ok, ok, future_valid,
        dict(ok, event_id="e3", purpose="telepathy"),
        dict(ok, event_id="e4", action="maybe"),
        dict(ok, event_id="e5", event_ts="2099-01-01T00:00:00+01:00"),
        dict(ok, event_id="e6", event_ts="yesterday"),
        '{"event_id": "e7", "customer_id": "c1", "purp',
        "not json at all",
    ])
    wh, result = ingest(spark, settings, tmp_path, "consent_events")
    reasons = sorted(r for r, _ in quarantine(spark, wh, "consent_events"))
    assert reasons == sorted([
        "duplicate: event_id", "unknown code: purpose", "unknown code: action",
        "timestamp after ingestion: event_ts", "wrong type: event_ts",
        "malformed JSON: truncated or invalid line", "malformed JSON: not an object",
    ])
    ids = sorted(r.event_id for r in io.read(spark, wh.table("silver", "consent_events")).collect())
    assert ids == ["e1", "e2"]
    assert result.reasons["duplicate: event_id"] == 1


def test_files_are_read_once_and_redelivered_rows_are_duplicates(spark, settings, tmp_path):
    row = "v1,c1,decoder,ch1,p1,Sports,Football,2026-11-01T20:00:00+01:00,3600"
    write_csv(tmp_path / "landing", "tv_viewing", "date=2026-11-01/part-1.csv", [row])
    wh, first = ingest(spark, settings, tmp_path, "tv_viewing", "r1")
    assert (first.files, first.valid) == (1, 1)
    _, again = ingest(spark, settings, tmp_path, "tv_viewing", "r2")
    assert again.files == 0                       # nothing new: nothing read
    write_csv(tmp_path / "landing", "tv_viewing", "date=2026-11-02/part-1.csv",
              [row, "v2,c1,app,ch1,p2,Comedy,,2026-11-02T20:00:00+01:00,1800"])
    _, second = ingest(spark, settings, tmp_path, "tv_viewing", "r3")
    assert (second.files, second.valid, second.quarantined) == (1, 1, 1)
    assert second.reasons == {"duplicate: already ingested": 1}
    assert sorted(r.view_id for r in io.read(spark, wh.table("silver", "tv_viewing")).collect()) == ["v1", "v2"]


def interrupted_ingestion(spark, settings, tmp_path: Path, monkeypatch, source: str) -> io.Warehouse:
    """Run r1 ingests ``source`` and dies (as if killed) just before it records its files as ingested."""
    wh = io.Warehouse(tmp_path / "wh")
    real_append = io.append

    def dies_at_bookkeeping(df, path, *a, **kw):
        if Path(path) == wh.table("ops", "ingested_files"):
            raise KeyboardInterrupt("killed")
        return real_append(df, path, *a, **kw)

    with monkeypatch.context() as m:
        m.setattr(io, "append", dies_at_bookkeeping)
        with pytest.raises(KeyboardInterrupt):
            ingest(spark, settings, tmp_path, source, "r1")
    return wh


@pytest.mark.parametrize("source", ["tv_viewing", "customers"])
def test_a_run_that_died_before_recording_its_files_is_completed_without_duplicates(
        spark, settings, tmp_path, monkeypatch, source):
    """The process dies after bronze, quarantine and silver were written, before the file was marked ingested.
    The next ingestion (recovery on, as the daily job does after an unfinished run) reads the file again and
    ends exactly where an uninterrupted ingestion ends: no row twice, no spurious "already ingested"."""
    rows = {"tv_viewing": ["v1,c1,decoder,ch1,p1,Sports,Football,2026-11-01T20:00:00+01:00,3600",
                           "v2,c1,app,ch1,p2,Comedy,,2026-11-01T21:00:00+01:00,1800",
                           "v3,c1,app,ch1,p2,Comedy,,not-a-time,1800"],
            "customers": [GOOD_CUSTOMER, GOOD_CUSTOMER.replace("c1,Ann", "c2,Bob"), "c3,Bob,truncated"]}
    write_csv(tmp_path / "landing", source, "date=2026-11-01/part-1.csv", rows[source])
    wh = interrupted_ingestion(spark, settings, tmp_path, monkeypatch, source)
    assert io.read(spark, wh.table("bronze", source)).count() == len(rows[source])  # the dead run's leftovers

    rules = load_source_rules(settings.conf_dir)
    again = ingest_source(spark, wh, tmp_path / "landing", rules[source], reference_sets(settings), "r2", NOW,
                          recover=True)
    assert (again.files, again.rows, again.valid, again.quarantined) == (1, 3, 2, 1)
    assert "duplicate: already ingested" not in again.reasons
    bronze = io.read(spark, wh.table("bronze", source))
    assert bronze.count() == len(rows[source]) and {r._run_id for r in bronze.collect()} == {"r2"}
    assert io.read(spark, wh.table("silver", source)).count() == 2
    assert len(quarantine(spark, wh, source)) == 1


def test_without_recovery_an_interrupted_runs_rows_would_stay(spark, settings, tmp_path, monkeypatch):
    """The counter-test of the one above: recovery is what removes the leftovers (so the daily job must turn it
    on after an unfinished run: test_recovery_is_on_exactly_when_the_latest_other_run_did_not_succeed)."""
    write_csv(tmp_path / "landing", "tv_viewing", "date=2026-11-01/part-1.csv",
              ["v1,c1,decoder,ch1,p1,Sports,Football,2026-11-01T20:00:00+01:00,3600"])
    wh = interrupted_ingestion(spark, settings, tmp_path, monkeypatch, "tv_viewing")
    rules = load_source_rules(settings.conf_dir)
    ingest_source(spark, wh, tmp_path / "landing", rules["tv_viewing"], reference_sets(settings), "r2", NOW,
                  recover=False)
    assert io.read(spark, wh.table("bronze", "tv_viewing")).count() == 2


def test_recovery_is_on_exactly_when_the_latest_other_run_did_not_succeed(spark, settings, tmp_path, keyring):
    from pipelines.jobs.daily import RunContext, previous_run_unfinished, record_run
    from pipelines.progress import Progress

    wh = io.Warehouse(tmp_path / "wh")

    def ctx(run_id: str, hour: int) -> RunContext:
        return RunContext(spark, settings, wh, tmp_path / "landing", NOW.date(), run_id,
                          NOW.replace(hour=hour), keyring, progress=Progress(quiet=True))

    assert not previous_run_unfinished(ctx("a", 1))            # a new warehouse
    record_run(ctx("a", 1), "succeeded")
    record_run(ctx("b", 2), "running")                         # this run
    assert not previous_run_unfinished(ctx("b", 2))
    record_run(ctx("c", 3), "running")                         # b's process died: still "running"
    assert previous_run_unfinished(ctx("c", 3))
    record_run(ctx("c", 3), "failed")
    assert previous_run_unfinished(ctx("d", 4))
    record_run(ctx("d", 4), "succeeded")                       # d completed what c left
    assert not previous_run_unfinished(ctx("e", 5))


def test_customer_snapshot_latest_update_wins(spark, settings, tmp_path):
    old = GOOD_CUSTOMER
    new = GOOD_CUSTOMER.replace(",9000,", ",1000,").replace("2026-11-01T10:00:00+01:00", "2026-11-10T10:00:00+01:00")
    write_csv(tmp_path / "landing", "customers", "date=2026-11-10/part-1.csv", [new])
    ingest(spark, settings, tmp_path, "customers", "r1")
    # an older snapshot delivered later never overwrites the newer one
    write_csv(tmp_path / "landing", "customers", "date=2026-11-11/part-1.csv", [old])
    wh, _ = ingest(spark, settings, tmp_path, "customers", "r2")
    rows = io.read(spark, wh.table("silver", "customers")).collect()
    assert [(r.customer_id, r.postal_code) for r in rows] == [("c1", "1000")]


def test_quarantine_keeps_raw_record_and_run_id(spark, settings, tmp_path):
    bad = "p1,c1,smartphone,ultra,2026-11-01T10:00:00+01:00,999"
    write_csv(tmp_path / "landing", "purchases", "date=2026-11-01/part-1.csv", [bad])
    wh, _ = ingest(spark, settings, tmp_path, "purchases", "run-42")
    q = io.read(spark, wh.table("ops", "quarantine")).collect()
    assert [(r.source, r.reason, r.raw, r.run_id, r.customer_id, r.source_file) for r in q] == [
        ("purchases", "unknown code: product_tier", bad, "run-42", "c1", "purchases/date=2026-11-01/part-1.csv")]
    assert [r.as_of for r in q] == [date(2026, 11, 26)]  # no as-of given: the UTC date of the ingestion


def test_padded_text_is_stored_trimmed_so_a_padded_withdrawal_reaches_the_customer(spark, settings, tmp_path):
    """A withdrawal whose customer id comes padded with spaces is the customer's withdrawal: stored untrimmed, it
    would pass every (trimmed) check and then match nobody in the consent gate's joins on the id."""
    from pipelines.consent.gate import consent_state

    write_jsonl(tmp_path / "landing", "consent_events", "date=2026-11-25/part-1.jsonl", [
        {"event_id": "e1", "customer_id": "c1", "purpose": "tv_personalised_ads", "action": "grant",
         "channel": "myproximus_web", "event_ts": "2026-11-20T10:00:00+01:00"},
        {"event_id": " e2", "customer_id": "  c1 ", "purpose": " tv_personalised_ads", "action": "withdraw ",
         "channel": "tv_settings", "event_ts": "2026-11-21T10:00:00+01:00"}])
    wh, result = ingest(spark, settings, tmp_path, "consent_events")
    assert (result.valid, result.quarantined) == (2, 0)
    events = io.read(spark, wh.table("silver", "consent_events"))
    assert sorted((r.event_id, r.customer_id, r.purpose, r.action) for r in events.collect()) == [
        ("e1", "c1", "tv_personalised_ads", "grant"), ("e2", "c1", "tv_personalised_ads", "withdraw")]
    customers = spark.createDataFrame([("c1",)], "customer_id string")
    state = consent_state(events, customers, settings, date(2026, 11, 25))
    assert [r.granted for r in state.where("purpose = 'tv_personalised_ads'").collect()] == [False]


def test_warehouse_lock_refuses_a_second_run(tmp_path):
    wh = io.Warehouse(tmp_path / "wh")
    with wh.lock("run --as-of 2026-11-25"):
        with pytest.raises(io.WarehouseLocked, match="in use by another run"):
            with wh.lock("run --as-of 2026-11-25"):
                pass
    with wh.lock("run"):  # released afterwards
        pass


def test_file_batches_are_whole_files_in_delivery_order_within_the_size(tmp_path):
    from pipelines.sources.ingest import file_batches

    files = []
    for name, size in [("a", 5), ("b", 5), ("c", 20), ("d", 5), ("e", 4)]:
        (tmp_path / name).write_bytes(b"x" * size)
        files.append(tmp_path / name)
    a, b, c, d, e = files
    assert file_batches(files, 10) == [[a, b], [c], [d, e]]       # c alone: larger than the limit
    assert file_batches(files, 0) == [files] and file_batches([], 10) == []
    with pytest.raises(ValueError, match="0 \\(no limit\\) or more"):
        file_batches(files, -1)


def test_ingesting_in_batches_of_files_stores_what_one_batch_stores(spark, settings, tmp_path):
    """Three days of viewing, each file its own batch, against the same files as one batch: the same bronze,
    silver and quarantined lines; a key delivered again in a later file is quarantined either way (with the
    reason a later run would give it), and the earliest delivery is the one kept."""
    days = {
        "date=2026-11-01/part-1.csv": ["v1,c1,decoder,ch1,p1,Sports,Football,2026-11-01T20:00:00+01:00,3600",
                                       "v1,c1,decoder,ch1,p1,Sports,Football,2026-11-01T20:00:00+01:00,3600",
                                       "v2,c1,app,ch1,p2,Comedy,,2026-11-01T21:00:00+01:00,1800"],
        "date=2026-11-02/part-1.csv": ["v3,c2,app,ch1,p2,Comedy,,not-a-time,1800",
                                       "v4,c2,app,ch1,p2,Comedy,,2026-11-02T21:00:00+01:00,1200"],
        "date=2026-11-03/part-1.csv": ["v2,c1,app,ch1,p2,Comedy,,2026-11-01T21:00:00+01:00,999",
                                       "v5,c3,decoder,ch2,p3,News,,2026-11-03T08:00:00+01:00,600"],
    }
    for name, lines in days.items():
        write_csv(tmp_path / "landing", "tv_viewing", name, lines)
    rules = load_source_rules(settings.conf_dir)["tv_viewing"]
    stored = {}
    for label, max_bytes in (("one batch", 0), ("per file", 1)):
        wh = io.Warehouse(tmp_path / label)
        r = ingest_source(spark, wh, tmp_path / "landing", rules, reference_sets(settings), "r1", NOW,
                          max_batch_bytes=max_bytes)
        assert (r.files, r.rows, r.valid, r.quarantined) == (3, 7, 4, 3), label
        q = io.read(spark, wh.table("ops", "quarantine")).where(F.col("source") == "tv_viewing")
        stored[label] = {
            "bronze": sorted((x.raw, x._source_file) for x in io.read(spark, wh.table("bronze", "tv_viewing")).collect()),
            "silver": sorted((x.view_id, x.duration_s, x._source_file)
                             for x in io.read(spark, wh.table("silver", "tv_viewing")).collect()),
            "quarantined": sorted((x.raw, x.source_file) for x in q.collect()),
            "reasons": r.reasons,
            "files": io.read(spark, wh.table("ops", "ingested_files")).count(),
        }
    one, per_file = stored["one batch"], stored["per file"]
    for part in ("bronze", "silver", "quarantined"):
        assert one[part] == per_file[part], part
    assert [v for v, _, _ in one["silver"]] == ["v1", "v2", "v4", "v5"]
    assert ("v2", 1800, "date=2026-11-01/part-1.csv") in {(v, int(d), f.split("tv_viewing/")[-1])
                                                         for v, d, f in one["silver"]}
    assert one["reasons"] == {"duplicate: view_id": 2, "wrong type: start_ts": 1}
    assert per_file["reasons"] == {"duplicate: view_id": 1, "duplicate: already ingested": 1,
                                   "wrong type: start_ts": 1}
    assert one["files"] == per_file["files"] == 3


def _rfc4180_error(line: str, n_columns: int) -> str | None:
    """The field-count rule of parse_lines, in Python: quoted fields blanked out, then the commas counted."""
    if line.count('"') % 2 == 1:
        return "truncated line: unbalanced quote"
    fields = len(re.sub(r'"([^"]|"")*"', "Q", line).split(","))
    if fields < n_columns:
        return f"truncated line: fewer than {n_columns} fields"
    if fields > n_columns:
        return f"malformed line: more than {n_columns} fields"
    return None


_plain = st.text(alphabet="ab ;'", max_size=5)
_field = st.one_of(_plain, _plain.map(lambda t: '"' + t + '"'),                       # quoted
                   st.text(alphabet='a,"', max_size=4).map(lambda t: '"' + t.replace('"', '""') + '"'),  # escaped
                   st.text(alphabet='ab,"', max_size=4))                                # stray quotes and commas
_line = st.one_of(st.lists(_field, min_size=6, max_size=12).map(",".join),   # around the 9 columns of tv_viewing
                  st.lists(_plain, min_size=7, max_size=11).map(",".join),    # no quote at all: the fast path
                  st.text(alphabet='ab,"; ', min_size=1, max_size=30))


@hsettings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(lines=st.lists(_line, min_size=1, max_size=150))
def test_csv_field_count_errors_match_the_rule_with_and_without_quotes(spark, lines):
    """parse_lines counts fields with literal replaces when a line has no quote and with the quoted-field
    regular expression when it has one: either way its error is the rule's, for any mix of commas and quotes."""
    from pipelines.schemas import LANDING_COLUMNS
    from pipelines.sources.ingest import parse_lines

    lines = [line for line in lines if line.strip()]
    n = len(LANDING_COLUMNS["tv_viewing"])
    df = spark.createDataFrame([(line, "f", i) for i, line in enumerate(lines)], "raw string, _source_file string, _line long")
    got = {r._line: r._parse_error for r in parse_lines(df, "tv_viewing").select("_line", "_parse_error").collect()}
    assert got == {i: _rfc4180_error(line, n) for i, line in enumerate(lines)}
