"""Data quality: rules from conf/quality.yml, GX validation of planted bad inputs and outputs, results and reports."""
from __future__ import annotations

import json
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings as hsettings, strategies as st
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from pipelines import io
from pipelines.config import ConfigError
from pipelines.quality.report import render_dq_report
from pipelines.quality.suites import (
    ROW_COUNT,
    Bindings,
    DQResult,
    critical_failures,
    describe_failures,
    load_quality_rules,
    parse_quality_rules,
    present_identifiers,
    record_results,
    validate_inputs,
    validate_outputs,
)
from pipelines.schemas import DIRECT_IDENTIFIER_COLUMNS, DQ_RESULTS, SOURCES, silver_schema

AS_OF = date(2026, 11, 25)
STARTED = datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc)
RUN = "20261125-050000-aaaa0001"


def make_ctx(spark, settings, warehouse: Path, *, run_id=RUN, as_of=AS_OF, outputs=None, metrics=None):
    return SimpleNamespace(spark=spark, settings=settings, wh=io.Warehouse(warehouse), run_id=run_id, as_of=as_of,
                           started=STARTED, outputs=dict(outputs or {}), metrics=dict(metrics or {}))


def write_silver(spark, wh: io.Warehouse, source: str, rows: list[dict], run_id: str = RUN) -> None:
    schema = silver_schema(source)
    lineage = {"_source_file": f"{source}/part-1.csv", "_run_id": run_id, "_ingested_at": STARTED}
    data = [tuple({**lineage, "_line": i + 2, **r}.get(f.name) for f in schema.fields) for i, r in enumerate(rows)]
    io.overwrite(spark.createDataFrame(data, schema), wh.table("silver", source))


def customer(cid: str, gender: str = "F") -> dict:
    return {"customer_id": cid, "gender": gender, "language": "nl", "customer_type": "residential",
            "postal_code": "1000", "birth_date": date(1980, 5, 1),
            "updated_at": datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)}


class FailureText(HTMLParser):
    """Text inside every element whose class list contains ``failure``."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.texts: list[list[str]] = []
        self.open: list[int] = []

    def handle_starttag(self, tag, attrs):
        is_failure = "failure" in (dict(attrs).get("class") or "").split()
        self.stack.append(is_failure)
        if is_failure:
            self.texts.append([])
            self.open.append(len(self.texts) - 1)

    def handle_endtag(self, tag):
        if self.stack and self.stack.pop():
            self.open.pop()

    def handle_data(self, data):
        for i in self.open:
            self.texts[i].append(data)

    @classmethod
    def of(cls, html: str) -> list[str]:
        p = cls()
        p.feed(html)
        return [" ".join("".join(t).split()) for t in p.texts]


# ------------------------------------------------------------------------------------------ configuration

def test_project_rules_cover_every_source_and_the_privacy_rules(conf_dir):
    rules = load_quality_rules(conf_dir)
    assert set(rules.inputs) == set(SOURCES)
    for source in SOURCES:
        kinds = [r.type for r in rules.inputs[source]]
        assert kinds[:4] == ["schema", "quarantine_rate", "quarantine_rate", "row_count_change"], source
    # Privacy rules are critical and flagged for the privacy office.
    for table in ("adsdata_export", "adsdata_revocations", "advertiser_reports", "segment_stats", "geo_profiles"):
        absent = [r for r in rules.outputs[table] if r.type == "column_absent"]
        assert [(r.args["columns"], r.severity, r.privacy) for r in absent] == [("@direct_identifiers", "critical", True)]
    geo_k = [r for r in rules.outputs["geo_profiles"] if r.type == "between"]
    assert [(r.column, r.args, r.severity) for r in geo_k] == [("n_customers", {"min_value": "@geo.k"}, "critical")]
    for table, processing in (("tv_profiles", "tv_profile"), ("web_profiles", "web_profile")):
        elig = [r for r in rules.outputs[table] if r.type == "eligible_ids"]
        assert [(r.column, r.args["processing"], r.severity) for r in elig] == [("customer_id", processing, "critical")]


@pytest.mark.parametrize("raw, message", [
    ({"inputs": {"customers": [{"type": "no_such_rule", "column": "gender"}]}}, "unknown rule type 'no_such_rule'"),
    ({"inputs": {"customers": [{"type": "not_null", "column": "gender", "severity": "fatal"}]}}, "severity must be"),
    ({"inputs": {"customers": [{"type": "not_null", "column": "genre"}]}}, "unknown column(s) genre of silver/customers"),
    ({"inputs": {"customers": [{"type": "in_set", "column": "gender"}]}}, "in_set needs args value_set"),
    ({"inputs": {"customers": [{"type": "eligible_ids", "column": "customer_id", "args": {"processing": "tv_profile"}}]}},
     "eligible_ids applies to outputs only"),
    ({"inputs": {"nowhere": []}}, "unknown source(s) nowhere"),
    ({"outputs": {"geo_profiles": [{"type": "quarantine_rate", "args": {"max": 0.1}}]}}, "applies to inputs only"),
])
def test_bad_rules_are_refused_with_a_clear_message(raw, message):
    with pytest.raises(ConfigError) as err:
        parse_quality_rules(raw)
    assert message in str(err.value)


def test_references_resolve_to_settings_and_run_facts(settings):
    bind = Bindings(settings, AS_OF, STARTED)
    assert bind.resolve("@geo.k") == settings.geo.k
    assert bind.resolve("@segments.audience_threshold") == settings.segments.audience_threshold
    assert bind.resolve("@purposes") == sorted(settings.purposes)
    assert bind.resolve("@direct_identifiers") == sorted(DIRECT_IDENTIFIER_COLUMNS)
    assert bind.resolve("@as_of_end") == datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)  # Brussels, CET
    skew = settings.ingestion.max_clock_skew_minutes
    assert (bind.resolve("@ingestion_limit") - STARTED).total_seconds() == skew * 60
    assert bind.resolve([1, "x"]) == [1, "x"]
    with pytest.raises(ConfigError, match="unknown setting '@geo.nope'"):
        bind.resolve("@geo.nope")


# ---------------------------------------------------------------------------------- schema-only privacy check

SAFE = ["segment", "channel", "age_band", "region", "score", "interest", "n_customers"]


@st.composite
def schemas_with_identifiers(draw):
    """A random nested schema of safe names with some direct identifiers planted at random places."""
    planted: list[str] = []

    def build(depth: int, prefix: str) -> StructType:
        names = draw(st.lists(st.sampled_from(SAFE + sorted(DIRECT_IDENTIFIER_COLUMNS)), min_size=1, max_size=4,
                              unique=True))
        fields = []
        for n in names:
            path = f"{prefix}{n}"
            if n in DIRECT_IDENTIFIER_COLUMNS:
                planted.append(path)
            nest = depth < 2 and draw(st.booleans())
            if nest:
                inner = build(depth + 1, path + ".")
                dtype = ArrayType(inner) if draw(st.booleans()) else inner
            else:
                dtype = StringType()
            fields.append(StructField(n, dtype))
        return StructType(fields)

    schema = build(0, "")
    return schema, planted


@hsettings(max_examples=60, deadline=None)
@given(schemas_with_identifiers())
def test_present_identifiers_finds_exactly_the_planted_identifiers_at_any_depth(case):
    schema, planted = case
    assert sorted(present_identifiers(schema, DIRECT_IDENTIFIER_COLUMNS)) == sorted(planted)


# ------------------------------------------------------------------------------------------------- inputs

def test_planted_bad_inputs_fail_their_expectations_and_reach_dq_results_and_the_report(spark, settings, tmp_path):
    wh_path = tmp_path / "wh"
    wh = io.Warehouse(wh_path)
    # A previous run ingested 100 customers: this run's 3 is a drop of 97%.
    previous = make_ctx(spark, settings, wh_path, run_id="20261124-050000-aaaa0000", as_of=date(2026, 11, 24))
    record_results(previous, [DQResult("silver/customers", ROW_COUNT, True, "100", "warning", "")])
    # Planted: a duplicate customer id and an unknown gender code (past ingestion, e.g. a bug there).
    write_silver(spark, wh, "customers", [customer("c1"), customer("c2", "Q"), customer("c2", "M")])
    # Consent events: only old ones, so the feed looks stale.
    write_silver(spark, wh, "consent_events", [
        {"event_id": "e1", "customer_id": "c1", "purpose": "web_profile", "action": "grant",
         "channel": "myproximus_web", "event_ts": datetime(2026, 11, 10, 23, 0, tzinfo=timezone.utc)}])
    metrics = {"ingest.customers.rows": 10, "ingest.customers.quarantined": 7,
               "quarantine.customers.wrong_type__birth_date": 5, "quarantine.customers.unknown_code__gender": 2,
               "ingest.consent_events.rows": 1, "ingest.consent_events.quarantined": 0}
    ctx = make_ctx(spark, settings, wh_path, metrics=metrics)

    results = validate_inputs(ctx)

    customers = {(r.expectation, r.success, r.severity, r.observed_value) for r in results
                 if r.table == "silver/customers" and not r.success}
    assert customers == {
        ("expect_column_values_to_be_unique(customer_id)", False, "critical", "2 of 3 rows unexpected (66.67%)"),
        ("expect_column_values_to_be_in_set(gender)", False, "warning", "1 of 3 rows unexpected (33.33%); e.g. Q"),
        ("expect_quarantine_rate_to_be_at_most(0.05)", False, "warning", "0.7000 (7 of 10 rows)"),
        ("expect_quarantine_rate_to_be_at_most(0.5)", False, "critical", "0.7000 (7 of 10 rows)"),
        ("expect_row_count_change_vs_previous_run", False, "warning", "3 rows vs 100 (-97.0%)"),
    }
    by_name = {(r.table, r.expectation): r for r in results}
    assert by_name[("silver/customers", ROW_COUNT)].observed_value == "3"
    assert by_name[("silver/customers", "expect_table_columns_to_match_set")].success
    assert "top reasons: wrong_type__birth_date (5), unknown_code__gender (2)" in \
        by_name[("silver/customers", "expect_quarantine_rate_to_be_at_most(0.5)")].details
    fresh = by_name[("silver/consent_events", "expect_data_to_be_fresh(event_ts)")]
    assert (fresh.success, fresh.observed_value) == (
        False, "latest 2026-11-10 23:00:00 UTC, 15.0 days before the end of 2026-11-25")
    # A source without delivery: nothing to check on its rows, the row-count change is not a failure.
    assert by_name[("silver/purchases", ROW_COUNT)].observed_value == "0"
    assert by_name[("silver/purchases", "expect_row_count_change_vs_previous_run")].success
    assert sorted(f.expectation for f in critical_failures(results) if f.table == "silver/customers") == [
        "expect_column_values_to_be_unique(customer_id)", "expect_quarantine_rate_to_be_at_most(0.5)"]
    assert ctx.metrics["dq.seconds.silver.customers"] > 0

    report_dir = record_results(ctx, results)
    record_results(ctx, results)  # recording twice replaces, never duplicates

    stored = io.read(spark, wh.table("ops", "dq_results")).where(f"run_id = '{RUN}'")
    assert stored.schema == DQ_RESULTS
    assert sorted(tuple(r) for r in stored.drop("run_id", "as_of").collect()) == sorted(
        (r.table, r.expectation, r.success, r.observed_value, r.severity, r.details) for r in results)
    assert {r.as_of for r in stored.select("as_of").distinct().collect()} == {AS_OF}
    assert report_dir == wh_path / "reports" / RUN
    failures = FailureText.of((report_dir / "dq_report.html").read_text(encoding="utf-8"))
    assert any("expect_column_values_to_be_in_set(gender)" in t and "silver/customers" in t
               and "1 of 3 rows unexpected" in t for t in failures)
    assert any("expect_column_values_to_be_unique(customer_id)" in t and "critical" in t for t in failures)
    doc = json.loads((report_dir / "dq_results.json").read_text(encoding="utf-8"))
    assert (doc["run_id"], len(doc["results"])) == (RUN, len(results))
    assert (report_dir / "privacy_summary.html").is_file()
    assert ctx.metrics["dq.failed.critical"] == float(len(critical_failures(results)))


# ------------------------------------------------------------------------------------------------ outputs

def write_eligibility(spark, wh: io.Warehouse, rows: list[tuple[str, bool, bool]]) -> None:
    df = spark.createDataFrame(rows, "customer_id string, eligible_tv_profile boolean, eligible_web_profile boolean")
    io.overwrite(df, wh.table("silver", "eligibility"))


def test_planted_privacy_breaches_in_outputs_are_critical_failures(spark, settings, tmp_path):
    wh_path = tmp_path / "wh"
    wh = io.Warehouse(wh_path)
    write_eligibility(spark, wh, [("c1", True, False), ("c2", True, True), ("c9", False, False)])
    k = settings.geo.k
    threshold = settings.segments.audience_threshold
    geo = spark.createDataFrame([("postal_code", "1000", k + 2, AS_OF), ("province", "BRU", k - 1, AS_OF)],
                                "area_level string, area_code string, n_customers long, as_of date")
    export = spark.createDataFrame(  # planted: a customer id travelling with the pseudonym
        [("p1", "adsdata-1", datetime(2027, 12, 25), "25-34", "F", "nl", "BRU", [], [], AS_OF, "c1")],
        "pseudo_id string, key_id string, expires_at timestamp, age_band string, gender string, language string, "
        "region string, interests array<string>, segments array<string>, as_of date, customer_id string")
    profiles = spark.createDataFrame(
        [("c1", "25-34", "F", "nl", "1000", [], AS_OF), ("c9", "35-44", "M", "fr", "1000", [], AS_OF)],
        "customer_id string, age_band string, gender string, language string, postal_code string, "
        "interests array<string>, as_of date")
    stats = spark.createDataFrame([("s1", "tv", None, AS_OF), ("s2", "tv", threshold + 10, AS_OF),
                                   ("s3", "web", threshold - 30, AS_OF)],
                                  "segment string, channel string, audience_size long, as_of date")
    ctx = make_ctx(spark, settings, wh_path, outputs={
        "geo_profiles": geo, "adsdata_export": export, "tv_profiles": profiles, "segment_stats": stats})

    results = validate_outputs(ctx)

    failed = {(r.table, r.expectation, r.observed_value, r.category) for r in critical_failures(results)}
    assert failed == {
        ("gold/geo_profiles", "expect_column_values_to_be_between(n_customers)",
         f"1 of 2 rows unexpected (50.00%); e.g. {k - 1}", "privacy"),
        ("gold/adsdata_export", "expect_columns_to_be_absent", "present: customer_id", "privacy"),
        ("gold/tv_profiles", "expect_ids_to_be_eligible(customer_id)", "1 of 2 rows not eligible", "privacy"),
        ("gold/segment_stats", "expect_column_values_to_be_between(audience_size)",
         f"1 of 3 rows unexpected (50.00%); e.g. {threshold - 30}", "privacy"),
    }
    assert all(r.success for r in results if r.severity == "warning")
    message = describe_failures(critical_failures(results), Path("/wh/reports/x"))
    assert message.startswith("4 critical data-quality failure(s), nothing published (the previous version stays): ")
    assert message.endswith("(+1 more); report: /wh/reports/x/dq_report.html")
    assert all(df.is_cached for df in ctx.outputs.values())
    for df in ctx.outputs.values():
        df.unpersist()


def test_clean_outputs_pass_every_check(spark, settings, tmp_path):
    wh_path = tmp_path / "wh"
    wh = io.Warehouse(wh_path)
    write_eligibility(spark, wh, [("c1", True, False), ("c2", True, True)])
    membership = spark.createDataFrame([("s1", "tv", "c1", AS_OF), ("s1", "web", "c2", AS_OF),
                                        ("s2", "tv", "c2", AS_OF)],
                                       "segment string, channel string, customer_id string, as_of date")
    ctx = make_ctx(spark, settings, wh_path, outputs={"segment_membership": membership})
    results = validate_outputs(ctx)
    assert [r for r in results if not r.success] == []
    assert {r.expectation for r in results} == {
        "expect_column_to_exist(segment)", "expect_column_to_exist(channel)", "expect_column_to_exist(customer_id)",
        "expect_column_to_exist(as_of)", "expect_column_values_to_be_in_set(channel)",
        "expect_compound_columns_to_be_unique(segment,channel,customer_id)",
        "expect_ids_to_be_eligible(customer_id)"}
    # c1 is not eligible for the web profile: the same id in the web channel is a breach.
    bad = membership.union(spark.createDataFrame([("s3", "web", "c1", AS_OF)], membership.schema))
    ctx.outputs = {"segment_membership": bad}
    failed = critical_failures(validate_outputs(ctx))
    assert [(f.expectation, f.observed_value) for f in failed] == [
        ("expect_ids_to_be_eligible(customer_id)", "1 of 4 rows not eligible")]
    for df in (membership, bad):
        df.unpersist()


# ------------------------------------------------------------------------------------------------- report

def test_report_marks_each_failure_and_escapes_values():
    results = [
        DQResult("gold/geo_profiles", "expect_column_values_to_be_between(n_customers)", False,
                 "1 of 2 rows unexpected (50.00%); e.g. <script>", "critical", "rule between", "privacy"),
        DQResult("silver/customers", "expect_column_values_to_be_in_set(gender)", False, "1 of 3", "warning", ""),
        DQResult("silver/customers", "expect_column_values_to_not_be_null(customer_id)", True, "0 of 3", "critical", ""),
    ]
    html = render_dq_report(results, run_id="r1", as_of=AS_OF)
    failures = FailureText.of(html)
    # Listed under "Failures" (critical first) and again in their table's section.
    assert len(failures) == 4
    assert "expect_column_values_to_be_between(n_customers)" in failures[0] and "gold/geo_profiles" in failures[0]
    assert "expect_column_values_to_be_in_set(gender)" in failures[1] and "silver/customers" in failures[1]
    assert not any("expect_column_values_to_not_be_null" in t for t in failures)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Publication blocked: 1 critical check(s) failed" in html


def test_only_the_quality_layer_imports_great_expectations_and_only_when_validating():
    import re
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    pattern = re.compile(r"^\s*(import|from)\s+great_expectations\b", re.MULTILINE)
    importers = sorted(str(p.relative_to(root)) for p in (root / "pipelines").rglob("*.py")
                       if pattern.search(p.read_text(encoding="utf-8")))
    assert importers == ["pipelines/quality/suites.py"]
    probe = "import sys, pipelines.quality; print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
