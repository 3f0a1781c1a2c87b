"""The synthetic landing zone (``audience generate``) against contract section 2.

The files are checked with plain Python (csv, json, datetime), independently of Spark and of the pipeline's
own ingestion rules: an oracle classifies every line as valid or as one kind of bad row.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from pipelines.consent.tcf import decode, verdict
from pipelines.generate import GenerateOptions, bad_row_kinds, generate_landing
from pipelines.generate.draws import slots, uniform
from pipelines.generate.refdata import (
    TC_NO_PURPOSE_1,
    TC_NO_PURPOSE_3,
    TC_NO_PURPOSE_4,
    TC_NO_VENDOR,
    TC_VALID,
    tc_pool,
)
from pipelines.generate.render import iso_local, local_time, render
from pipelines.generate.sources import FUTURE_CONSENT_HOURS
from pipelines.reference.geo import load_geography
from pipelines.reference.taxonomy import CONTENT_TAXONOMY_FILE, CTV_GENRE_FILE, load_content_taxonomy, load_ctv_genres
from pipelines.schemas import LANDING_COLUMNS, LANDING_FORMAT, SILVER_TYPES
from pyspark.sql.types import BooleanType, DateType, DoubleType, IntegerType, TimestampType

END = date(2026, 11, 25)
DAYS = 10
START = END - timedelta(days=DAYS - 1)
BRUSSELS = ZoneInfo("Europe/Brussels")
OPTIONS = GenerateOptions(customers=150, days=DAYS, end_date=END, seed=7, bad_row_share=0.1, minor_share=0.1,
                          erasure_share=0.1)
SNAPSHOTS = {"customers", "sociodemo_individual", "sociodemo_area", "cadastral"}
# Key columns: unique among valid rows (the ingestion rules treat a repeated key as a duplicate).
KEYS = {
    "customers": ("customer_id", "updated_at"), "consent_events": ("event_id",), "erasure_requests": ("request_id",),
    "identity_links": ("customer_id", "id_type", "id_value", "authenticated_at"), "tv_viewing": ("view_id",),
    "tv_ad_exposures": ("exposure_id",), "web_events": ("event_id",), "purchases": ("purchase_id",),
    "loyalty_events": ("event_id",), "sociodemo_individual": ("customer_id", "supplier", "valid_from"),
    "sociodemo_area": ("postal_code", "supplier", "valid_from"), "cadastral": ("address_id",),
}
TS_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
FILE_PATTERN = re.compile(r"^date=(\d{4}-\d{2}-\d{2})/part-\d{5}\.(csv|jsonl)$")


# --------------------------------------------------------------------------------------------- the oracle


class Oracle:
    """Classifies a landing line: None when valid, else the kind of bad row it is."""

    def __init__(self, settings) -> None:
        conf = settings.conf_dir
        geo = load_geography(conf)
        postal = set(geo.areas)
        content = set(load_content_taxonomy(conf / CONTENT_TAXONOMY_FILE))
        self.genres = set(load_ctv_genres(conf / CTV_GENRE_FILE))
        platforms = {"decoder", "app", "web"}
        self.allowed = {
            "customers": {"gender": {"F", "M", "X"}, "language": {"nl", "fr", "de", "en"},
                          "customer_type": {"residential", "business"}, "postal_code": postal},
            "consent_events": {"purpose": set(settings.purposes), "action": {"grant", "withdraw"},
                               "channel": {"myproximus_web", "myproximus_app", "customer_service", "tv_settings"}},
            "identity_links": {"id_type": {"cookie_id", "mobile_ad_id", "decoder_id"}},
            "tv_viewing": {"platform": platforms, "genre": self.genres},
            "tv_ad_exposures": {"platform": platforms},
            "web_events": {"event_type": {"page_view", "ad_impression", "ad_click"},
                           "site_owner": {"proximus", "third_party"}, "content_category_id": content},
            "purchases": {"product_category": {"smartphone", "tablet", "laptop", "tv", "smart_home", "accessory",
                                               "subscription"}, "product_tier": {"entry", "mid", "premium"}},
            "loyalty_events": {"program": {"enjoy", "pickx_competition"}, "content_category_id": content},
            "sociodemo_individual": {"family_typology": {"single", "couple_no_children", "family_young_children",
                                                         "family_older_children", "single_parent",
                                                         "senior_household"},
                                     "income_band": {"low", "middle", "high"}},
            "sociodemo_area": {"urbanisation": {"urban", "suburban", "rural"},
                               "median_income_band": {"low", "middle", "high"}, "postal_code": postal},
            "cadastral": {"dwelling_type": {"house", "apartment", "other"}},
        }

    @staticmethod
    def parse(source: str, line: str) -> dict[str, str | None] | str:
        """The row as a dict, or the kind of damage that prevents parsing it."""
        columns = LANDING_COLUMNS[source]
        if LANDING_FORMAT[source] == "csv":
            rows = list(csv.reader([line]))
            if len(rows) != 1 or len(rows[0]) != len(columns):
                return "truncated"
            return {c: (v if v != "" else None) for c, v in zip(columns, rows[0])}
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            return "truncated" if line.startswith("{") else "not_json"
        if not isinstance(record, dict) or list(record) != list(columns):
            return "not_json"
        return record

    def type_problem(self, source: str, row: dict[str, str | None]) -> str | None:
        for column, kind in SILVER_TYPES[source].items():
            value = row[column]
            if value is None:
                continue
            try:
                if isinstance(kind, TimestampType):
                    assert TS_PATTERN.match(value)
                    if datetime.fromisoformat(value).year >= 2090:
                        return "future_timestamp"
                elif isinstance(kind, DateType):
                    assert DATE_PATTERN.match(value)
                    date.fromisoformat(value)
                elif isinstance(kind, BooleanType):
                    assert value in ("true", "false")
                elif isinstance(kind, IntegerType):
                    assert re.fullmatch(r"-?\d+", value)
                elif isinstance(kind, DoubleType):
                    assert re.fullmatch(r"-?\d+(\.\d+)?", value)
            except (AssertionError, ValueError):
                return "wrong_type"
        return None

    def classify(self, source: str, line: str, seen: set[str]) -> str | None:
        if line in seen:
            return "duplicate"
        row = self.parse(source, line)
        if isinstance(row, str):
            return row
        problem = self.type_problem(source, row)
        if problem:
            return problem
        for column, allowed in self.allowed.get(source, {}).items():
            if row[column] is not None and row[column] not in allowed:
                return "unknown_code"
        return None


def data_files(landing: Path, source: str) -> list[Path]:
    return sorted((landing / source).rglob("part-*"))


def data_lines(path: Path, source: str) -> list[str]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", f"{path} does not end with a newline"
    lines = lines[:-1]
    return lines[1:] if LANDING_FORMAT[source] == "csv" else lines


def classified(oracle: Oracle, landing: Path, source: str) -> list[tuple[Path, str, str | None]]:
    """Every data line of a source with its classification (duplicates: repeats seen earlier)."""
    seen: set[str] = set()
    out = []
    for path in data_files(landing, source):
        for line in data_lines(path, source):
            out.append((path, line, oracle.classify(source, line, seen)))
            seen.add(line)
    return out


def valid_rows(oracle: Oracle, landing: Path, source: str) -> list[dict]:
    rows = []
    for path, line, kind in classified(oracle, landing, source):
        if kind is None:
            row = oracle.parse(source, line)
            row["_folder"] = path.parent.name.removeprefix("date=")
            rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def oracle(settings) -> Oracle:
    return Oracle(settings)


@pytest.fixture(scope="module")
def landing(spark, settings, tmp_path_factory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("landing")
    return path, generate_landing(spark, path, OPTIONS, settings)


@pytest.fixture(scope="module")
def clean(spark, settings, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("clean")
    generate_landing(spark, path, GenerateOptions(**{**OPTIONS.__dict__, "bad_row_share": 0.0}), settings)
    return path


@pytest.fixture(scope="module")
def rows(oracle, clean) -> dict[str, list[dict]]:
    return {source: valid_rows(oracle, clean, source) for source in LANDING_COLUMNS}


# --------------------------------------------------------------------------------------------- layout


def test_every_source_has_files_with_the_exact_header(landing):
    path, _ = landing
    assert sorted(p.name for p in path.iterdir()) == sorted(LANDING_COLUMNS)
    for source, columns in LANDING_COLUMNS.items():
        files = data_files(path, source)
        assert files, source
        for f in files:
            relative = f.relative_to(path / source).as_posix()
            match = FILE_PATTERN.match(relative)
            assert match and match.group(2) == LANDING_FORMAT[source], relative
            assert START <= date.fromisoformat(match.group(1)) <= END, relative
            if LANDING_FORMAT[source] == "csv":
                assert f.read_text(encoding="utf-8").split("\n", 1)[0] == ",".join(columns), f


def test_returned_counts_are_the_data_lines(landing):
    path, counts = landing
    assert counts == {s: sum(len(data_lines(f, s)) for f in data_files(path, s)) for s in LANDING_COLUMNS}


def test_event_sources_have_a_folder_per_day_and_snapshots_start_on_day_one(landing):
    path, _ = landing
    days = {(START + timedelta(days=i)).isoformat() for i in range(DAYS)}
    for source in LANDING_COLUMNS:
        folders = {p.name.removeprefix("date=") for p in (path / source).iterdir()}
        if source in SNAPSHOTS:
            assert START.isoformat() in folders and folders <= days, source
        else:
            assert folders == days, source


def test_render_quotes_by_doubling(spark):
    # RFC 4180: commas and quotes are quoted, a quote is doubled, null is empty, spaces are kept.
    df = spark.createDataFrame([("a,b", 'say "hi"', None, " x")], "c1 string, c2 string, c3 string, c4 string")
    line = df.select(render(["c1", "c2", "c3", "c4"], "csv").alias("l")).first().l
    assert line == '"a,b","say ""hi""",, x'
    assert next(csv.reader([line])) == ["a,b", 'say "hi"', "", " x"]
    as_json = df.select(render(["c1", "c3"], "jsonl").alias("l")).first().l
    assert as_json == '{"c1":"a,b","c3":null}'


# --------------------------------------------------------------------------------------------- bad rows


def test_every_bad_row_kind_appears_in_every_source(oracle, landing):
    path, _ = landing
    for source in LANDING_COLUMNS:
        kinds = Counter(kind for _, _, kind in classified(oracle, path, source))
        valid = kinds.pop(None, 0)
        assert valid >= len(bad_row_kinds(source)), f"{source}: too few rows to check ({valid})"
        assert set(kinds) == set(bad_row_kinds(source)), source


def test_no_bad_rows_when_the_share_is_zero(oracle, clean):
    for source in LANDING_COLUMNS:
        kinds = Counter(kind for _, _, kind in classified(oracle, clean, source))
        assert set(kinds) == {None}, (source, kinds)


def test_valid_rows_do_not_depend_on_the_bad_row_share(oracle, landing, clean):
    # Bad rows are extra copies: dropping them from each file gives the file generated without any.
    path, _ = landing
    for source in LANDING_COLUMNS:
        kept = defaultdict(list)
        for f, line, kind in classified(oracle, path, source):
            if kind is None:
                kept[f.relative_to(path).as_posix()].append(line)
        expected = {f.relative_to(clean).as_posix(): data_lines(f, source) for f in data_files(clean, source)}
        assert dict(kept) == {k: v for k, v in expected.items() if v}, source


def test_keys_are_unique_among_valid_rows(rows):
    for source, key in KEYS.items():
        counts = Counter(tuple(r[c] for c in key) for r in rows[source])
        assert [k for k, n in counts.items() if n > 1] == [], source


# --------------------------------------------------------------------------------------------- determinism


def _bytes(landing: Path, sources) -> dict[str, bytes]:
    return {f.relative_to(landing).as_posix(): f.read_bytes() for s in sources for f in data_files(landing, s)}


def test_same_seed_gives_identical_files(spark, settings, landing, tmp_path):
    path, _ = landing
    sources = ["customers", "consent_events", "web_events", "tv_ad_exposures", "cadastral"]
    generate_landing(spark, tmp_path, OPTIONS, settings, sources=sources)
    assert _bytes(tmp_path, sources) == _bytes(path, sources)


def test_another_seed_gives_other_files(spark, settings, landing, tmp_path):
    path, _ = landing
    generate_landing(spark, tmp_path, GenerateOptions(**{**OPTIONS.__dict__, "seed": 8}), settings,
                     sources=["customers"])
    first = f"customers/date={START.isoformat()}/part-00000.csv"
    assert _bytes(tmp_path, ["customers"])[first] != _bytes(path, ["customers"])[first]


def test_uniform_draws_do_not_depend_on_partitioning(spark):
    one = spark.range(0, 500, 1, 1).select("id", uniform(3, "x", "id").alias("u"))
    many = spark.range(0, 500, 1, 7).select("id", uniform(3, "x", "id").alias("u"))
    values = {r.id: r.u for r in one.collect()}
    assert values == {r.id: r.u for r in many.collect()}
    assert all(0.0 <= u < 1.0 for u in values.values()) and len(set(values.values())) == 500


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1000.0), min_size=1, max_size=40),
       st.integers(min_value=40, max_value=2000))
def test_slots_spread_weights_over_the_resolution(weights, resolution):
    choices = [(i, w) for i, w in enumerate(weights)]
    positive = [(i, w) for i, w in choices if w > 0]
    if not positive:
        with pytest.raises(ValueError):
            slots(choices, resolution)
        return
    table = slots(choices, resolution)
    counts = Counter(table)
    assert len(table) == resolution
    assert set(counts) == {i for i, _ in positive} and table == sorted(table)
    total = sum(w for _, w in positive)
    exact = {i: w / total * resolution for i, w in positive}
    if all(x >= 1 for x in exact.values()):
        assert all(abs(counts[i] - exact[i]) < 1 for i in exact)


def test_options_are_checked():
    with pytest.raises(ValueError):
        GenerateOptions(customers=0)
    with pytest.raises(ValueError):
        GenerateOptions(bad_row_share=1.5)
    assert GenerateOptions(days=3, end_date=END).start_date == date(2026, 11, 23)


# --------------------------------------------------------------------------------------------- timestamps


def test_local_times_render_with_the_brussels_offset(spark):
    start = date(2026, 3, 29)  # summer time starts at 02:00 (02:30 does not exist)
    cases = [(0, 2 * 3600 + 1800, "2026-03-29T03:30:00+02:00"), (0, 3600, "2026-03-29T01:00:00+01:00"),
             (210, 20 * 3600 + 900, "2026-10-25T20:15:00+01:00"), (241, 20 * 3600 + 900, "2026-11-25T20:15:00+01:00"),
             (94, 12 * 3600, "2026-07-01T12:00:00+02:00"), (-1, 23 * 3600, "2026-03-28T23:00:00+01:00")]
    df = spark.createDataFrame([(d, s) for d, s, _ in cases], "day long, secs long")
    got = [r.ts for r in df.select(iso_local(local_time(start, F.col("day"), F.col("secs")), "Europe/Brussels")
                                   .alias("ts")).collect()]
    assert got == [expected for _, _, expected in cases]


def test_timestamps_carry_the_offset_in_force_in_brussels(rows):
    checked = 0
    for source, types in SILVER_TYPES.items():
        for column, kind in types.items():
            if isinstance(kind, TimestampType):
                for row in rows[source]:
                    if row[column] is not None:
                        moment = datetime.fromisoformat(row[column])
                        wall = moment.replace(tzinfo=None)
                        # Either reading of a wall time in the autumn fall-back hour is right.
                        offsets = {wall.replace(tzinfo=BRUSSELS, fold=f).utcoffset() for f in (0, 1)}
                        assert moment.utcoffset() in offsets, row[column]
                        checked += 1
    assert checked > 1000


def test_events_lie_in_the_folder_of_their_day(rows):
    ts_column = {"erasure_requests": "requested_at", "identity_links": "authenticated_at", "tv_viewing": "start_ts",
                 "tv_ad_exposures": "ts", "web_events": "ts", "purchases": "purchased_at", "loyalty_events": "ts"}
    for source, column in ts_column.items():
        assert rows[source], source
        for row in rows[source]:
            assert row[column][:10] == row["_folder"], (source, row)


# --------------------------------------------------------------------------------------------- realism


def test_consent_history_future_events_and_folders(rows, settings):
    events = rows["consent_events"]
    days = {e["event_ts"][:10] for e in events}
    future = [e for e in events if e["event_ts"][:10] > END.isoformat()]
    past = [e for e in events if e["event_ts"][:10] < START.isoformat()]
    assert future and all(e["_folder"] == END.isoformat() for e in future)
    # The night after the end date, before the nightly run: kept by ingestion, effective on the next as-of.
    assert {e["event_ts"][:10] for e in future} == {(END + timedelta(days=1)).isoformat()}
    assert max(e["event_ts"][11:13] for e in future) < f"{FUTURE_CONSENT_HOURS:02d}"
    assert past and all(e["_folder"] == START.isoformat() for e in past)
    assert all(e["_folder"] == e["event_ts"][:10] for e in events if START.isoformat() <= e["event_ts"][:10] <= END.isoformat())
    assert {e["action"] for e in events} == {"grant", "withdraw"}
    assert {e["purpose"] for e in events} == set(settings.purposes)
    assert len(days) > DAYS
    # Re-grants: some customer has grant, withdraw and grant again for one purpose.
    history = defaultdict(list)
    for e in sorted(events, key=lambda e: datetime.fromisoformat(e["event_ts"])):
        history[(e["customer_id"], e["purpose"])].append(e["action"])
    assert any(h[:3] == ["grant", "withdraw", "grant"] for h in history.values())
    customers = {r["customer_id"] for r in rows["customers"]}
    never_asked = [c for c in customers if not any((c, p) in history for p in settings.purposes)]
    assert len(history) < len(customers) * len(settings.purposes) and customers > set(never_asked)


def test_some_customers_are_minors(rows):
    ages = [(END - date.fromisoformat(r["birth_date"])).days / 365.25 for r in rows["customers"]]
    assert any(a < 18 for a in ages) and all(12 <= a < 91 for a in ages)
    assert sum(a < 18 for a in ages) < len(ages) / 3


def test_customers_look_like_customers(rows):
    customers = rows["customers"]
    assert all(re.fullmatch(r"\+32\d{8,9}", r["phone"]) for r in customers if r["phone"])
    # Mobile: +32 4[5-9]x xx xx xx (9 digits); a landline has 8 digits (+32 4 is Liège).
    mobiles = [r["phone"] for r in customers if r["phone"] and re.fullmatch(r"\+324[5-9]\d{7}", r["phone"])]
    assert len(mobiles) > len(customers) / 2
    assert all(re.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", r["email"].strip()) for r in customers if r["email"])
    assert Counter(r["customer_type"] for r in customers).most_common(1)[0][0] == "residential"
    by_language = Counter(r["language"] for r in customers)
    assert by_language["nl"] > by_language["de"] and by_language["fr"] > by_language["de"]
    first = {r["customer_id"]: r for r in customers if r["_folder"] == START.isoformat()}
    later = [r for r in customers if r["_folder"] > START.isoformat()]
    assert later, "no later delivery of customers"
    for r in later:
        if r["customer_id"] in first:  # a change: later updated_at than the first delivery
            assert datetime.fromisoformat(r["updated_at"]) > datetime.fromisoformat(first[r["customer_id"]]["updated_at"])
        else:  # a newcomer
            assert r["customer_since"] == r["_folder"]


def test_genres_are_ctv_genres_with_subgenres(rows, oracle):
    viewing = rows["tv_viewing"]
    genres = Counter(r["genre"] for r in viewing)
    assert set(genres) <= oracle.genres and len(genres) >= 15
    assert {r["platform"] for r in viewing} == {"decoder", "app", "web"}
    sports = {r["subgenre"] for r in viewing if r["genre"] == "Sports"}
    assert sports & {"Football", "Voetbal", "Cycling", "Wielrennen", "Cyclisme", "Tennis"}
    hours = Counter(int(r["start_ts"][11:13]) for r in viewing)
    assert hours[20] + hours[21] > hours[3] + hours[4] + hours[5] + hours[6]  # prime time


def test_identity_links_and_anonymous_cookies(rows):
    links = rows["identity_links"]
    assert {r["id_type"] for r in links} == {"cookie_id", "mobile_ad_id", "decoder_id"}
    assert {r["site_domain"] for r in links} <= {"proximus.be", "pickx.be", "myproximus.be"}
    linked = {r["customer_id"] for r in links}
    customers = {r["customer_id"] for r in rows["customers"]}
    assert linked < customers  # some customers never authenticate
    cookies = {r["id_value"] for r in links if r["id_type"] == "cookie_id"}
    web = rows["web_events"]
    seen = {e["cookie_id"] for e in web if e["cookie_id"]}
    assert seen & cookies and seen - cookies  # linked and anonymous cookies
    assert any(e["mobile_ad_id"] for e in web)
    assert all((e["cookie_id"] is None) != (e["mobile_ad_id"] is None) for e in web)
    types = Counter(e["event_type"] for e in web)
    assert types["page_view"] > types["ad_impression"] > types["ad_click"]
    assert all((e["campaign_id"] is None) == (e["event_type"] == "page_view") for e in web)
    assert {e["site_owner"] for e in web} == {"proximus", "third_party"}


def test_tc_strings_decode_and_mostly_pass(rows, settings):
    strings = [e["tc_string"] for e in rows["web_events"] if e["tc_string"]]
    verdicts = Counter(verdict(s, required_purposes=settings.tcf.required_purposes, vendor_id=settings.tcf.vendor_id)
                       for s in strings)
    assert all(decode(s).version == 2 for s in set(strings))
    assert verdicts["ok"] > len(strings) / 2 and len(verdicts) >= 3
    assert any(e["tc_string"] is None for e in rows["web_events"])


def test_tc_pool_has_every_failure_kind(settings):
    pool = tc_pool(settings.tcf.vendor_id, END, 7)
    expected = {TC_VALID: "ok", TC_NO_PURPOSE_1: "missing_purpose_1", TC_NO_PURPOSE_3: "missing_purpose_3",
                TC_NO_PURPOSE_4: "missing_purpose_4", TC_NO_VENDOR: "missing_vendor"}
    for entry in pool:
        assert verdict(entry.tc_string, required_purposes=(1, 3, 4), vendor_id=settings.tcf.vendor_id) == expected[entry.kind]
    assert {e.kind for e in pool} == set(expected)
    assert {e.vendor_encoding for e in pool if e.kind == TC_VALID} >= {"bitfield", "range"}
    assert 15 <= len(pool) <= 25 and abs(sum(e.weight for e in pool) - 1.0) < 0.01
    assert pool == tc_pool(settings.tcf.vendor_id, END, 7)


def test_purchases_loyalty_sociodemo_and_cadastral(rows, settings):
    assert {r["product_tier"] for r in rows["purchases"]} <= {"entry", "mid", "premium"}
    assert all(float(r["amount_eur"]) > 0 for r in rows["purchases"])
    assert {r["program"] for r in rows["loyalty_events"]} == {"enjoy", "pickx_competition"}
    customers = {r["customer_id"] for r in rows["customers"]}
    known = {r["customer_id"] for r in rows["sociodemo_individual"]}
    assert 0.4 < len(known) / len(customers) < 0.8
    areas = [r for r in rows["sociodemo_area"] if r["_folder"] == START.isoformat()]
    assert {r["postal_code"] for r in areas} == set(load_geography(settings.conf_dir).areas)
    assert all(0 <= float(r["share_households_with_children"]) <= 1 for r in areas)
    addresses = {r["address_id"] for r in rows["customers"]}
    cadastral = rows["cadastral"]
    assert {r["address_id"] for r in cadastral} == addresses
    houses = [r for r in cadastral if r["dwelling_type"] == "house"]
    flats = [r for r in cadastral if r["dwelling_type"] == "apartment"]
    assert sum(r["has_garden"] == "true" for r in houses) / len(houses) > sum(r["has_garden"] == "true" for r in flats) / max(1, len(flats))


def test_erasure_requests_within_the_window(rows):
    requests = rows["erasure_requests"]
    assert 5 <= len(requests) <= 30
    assert all(START.isoformat() <= r["requested_at"][:10] <= END.isoformat() for r in requests)
