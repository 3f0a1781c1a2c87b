"""Promises checked on the whole pipeline as an operator runs it: through the ``audience`` command line, on the
shared generated warehouse (or a private copy of it when the test changes it).

- a critical data-quality failure blocks publication, keeps the previous tables and exits non-zero (O2);
- the MLflow run of a pipeline run holds its parameters, metrics and artifacts (O3);
- ``audience forget`` leaves no trace in any file of the warehouse, all table versions included (R1);
- ``audience access`` writes the person's document and nobody else's data (R2);
- ``audience refine`` answers with thresholded counts only, and activates only eligible people (L1, L2).
"""
from __future__ import annotations

import hashlib
import json
import stat

import pytest
from delta.tables import DeltaTable
from pyspark.sql import functions as F

from pipelines import cli, io
from pipelines.jobs import daily
from pipelines.privacy.keys import ENV_VAR
from pipelines.rights.erasure import files_mentioning

from conftest import warehouse_copy

pytestmark = pytest.mark.slow

GOLD = ("tv_profiles", "web_profiles", "segment_membership", "segment_stats", "geo_profiles", "adsdata_export",
        "adsdata_revocations")


def _version(spark, path) -> int:
    return DeltaTable.forPath(spark, str(path)).history(1).first().version


def _run_cli(argv: list[str]) -> int:
    return cli.main([str(a) for a in argv])


def test_critical_failure_keeps_the_published_tables_and_exits_non_zero(spark, pipeline_run, tmp_path, monkeypatch,
                                                                        capsys):
    wh = warehouse_copy(pipeline_run, tmp_path / "wh")
    as_of = pipeline_run.second.as_of
    before = {t: _version(spark, wh.table("gold", t)) for t in GOLD}
    manifest = wh.exports / "adsdata" / f"as_of={as_of.isoformat()}" / "manifest.json"
    delivered = manifest.read_bytes()

    def plant_small_cell(ctx, elig):  # a privacy breach: a geographic cell of one person
        bad = ctx.outputs["geo_profiles"].limit(1).withColumn("n_customers", F.lit(1).cast("long"))
        ctx.outputs["geo_profiles"] = ctx.outputs["geo_profiles"].unionByName(bad)

    stages = daily._stages()
    monkeypatch.setattr(daily, "_stages", lambda: [*stages, ("planted breach", plant_small_cell)])
    monkeypatch.setenv(ENV_VAR, str(pipeline_run.keys_file))

    code = _run_cli(["run", "--landing", pipeline_run.landing, "--warehouse", wh.root, "--as-of", as_of])

    assert code == 1
    err = capsys.readouterr().err
    assert "geo_profiles" in err and "critical" in err.lower()
    assert {t: _version(spark, wh.table("gold", t)) for t in GOLD} == before, "a blocked run published a table"
    assert manifest.read_bytes() == delivered, "a blocked run delivered to Ads & Data"
    runs = io.read(spark, wh.table("ops", "runs")).orderBy(F.col("started").desc()).first()
    assert runs.status == "failed" and "geo_profiles" in runs.message
    failed = (io.read(spark, wh.table("ops", "dq_results"))
              .where((F.col("run_id") == runs.run_id) & ~F.col("success") & (F.col("table") == "gold/geo_profiles"))
              .collect())
    assert failed and {r.severity for r in failed} == {"critical"}
    report = (wh.root / "reports" / runs.run_id / "dq_report.html").read_text(encoding="utf-8")
    assert "gold/geo_profiles" in report


def test_the_mlflow_run_holds_parameters_metrics_and_artifacts(spark, pipeline_run):
    from mlflow.tracking import MlflowClient

    wh = pipeline_run.wh
    row = io.read(spark, wh.table("ops", "runs")).where(F.col("run_id") == pipeline_run.second.run_id).first()
    client = MlflowClient(tracking_uri=f"sqlite:///{wh.root / 'ops' / 'mlflow.db'}")
    run = client.get_run(row.mlflow_run_id)
    params, metrics = run.data.params, run.data.metrics
    assert params["as_of"] == pipeline_run.second.as_of.isoformat()
    for name in ("config_hash", "code_version", "segment_definitions_hash"):
        assert params[name]
    assert any(k.startswith("mapping_version.") for k in params)
    for prefix in ("funnel.", "time.", "ingest.", "profiles.", "segments.", "geo.", "adsdata."):
        assert any(k.startswith(prefix) for k in metrics), prefix
    artifacts = {a.path for a in client.list_artifacts(row.mlflow_run_id)}
    nested = {a.path for d in artifacts for a in client.list_artifacts(row.mlflow_run_id, d)}
    names = " ".join(sorted(artifacts | nested))
    assert "dq_report.html" in names and "segments" in names, names
    secrets = json.loads(pipeline_run.keys_file.read_text())
    key_material = [k["secret"] for r in secrets["recipients"].values() for k in r["keys"].values()]
    assert key_material
    logged = json.dumps(params) + json.dumps(metrics)
    assert not any(secret in logged for secret in key_material)


def _subject(spark, wh, customer_id: str) -> list[str]:
    """Every identifier of one customer: id, e-mail, phone, device ids."""
    c = io.read(spark, wh.table("silver", "customers")).where(F.col("customer_id") == customer_id).first()
    devices = [r.id_value for r in io.read(spark, wh.table("silver", "identity_links"))
               .where(F.col("customer_id") == customer_id).collect()]
    return [v for v in (customer_id, c.email, c.phone, *devices) if v]


def test_forget_leaves_no_trace_in_any_file(spark, pipeline_run, tmp_path, monkeypatch):
    wh = warehouse_copy(pipeline_run, tmp_path / "wh")
    shared = (io.read(spark, wh.table("ops", "adsdata_ledger")).where(F.col("customer_id").isNotNull())
              .join(io.read(spark, wh.table("gold", "web_profiles")), "customer_id", "left_semi")
              .select("customer_id").orderBy("customer_id").first())
    assert shared, "the fixture has someone both delivered to Ads & Data and web-profiled"
    cid = shared.customer_id
    needles = _subject(spark, wh, cid)
    assert len(needles) >= 3 and files_mentioning(wh.root, needles), "the person is in the warehouse before"
    monkeypatch.setenv(ENV_VAR, str(pipeline_run.keys_file))

    assert _run_cli(["forget", "--warehouse", wh.root, "--customer-id", cid]) == 0
    assert files_mentioning(wh.root, needles) == []


def test_access_writes_the_persons_document_and_nobody_elses(spark, pipeline_run, tmp_path, monkeypatch):
    wh = pipeline_run.wh
    person = io.read(spark, wh.table("gold", "tv_profiles")).where(F.size("interests") > 0).orderBy(
        "customer_id").first()
    out = tmp_path / "access.json"
    monkeypatch.setenv(ENV_VAR, str(pipeline_run.keys_file))

    assert _run_cli(["access", "--warehouse", wh.root, "--customer-id", person.customer_id, "--out", out]) == 0

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    text = out.read_text(encoding="utf-8")
    doc = json.loads(text)
    assert doc["status"] == "held" and doc["customer_id"] == person.customer_id
    assert doc["identity"]["customer_id"] == person.customer_id
    assert doc["consent"]["current"] and doc["consent"]["history"]
    assert doc["profiles"]["tv"] and doc["profiles"]["interest_evidence"]
    others = {r.customer_id for r in io.read(spark, wh.table("silver", "customers")).collect()} - {person.customer_id}
    assert not [o for o in others if o in text], "another customer's id is in the access document"


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def test_refine_answers_with_thresholded_counts_only_and_activates_only_eligible_people(
        spark, settings, pipeline_run, tmp_path, monkeypatch, capsys):
    wh = warehouse_copy(pipeline_run, tmp_path / "wh")
    customers = io.read(spark, wh.table("silver", "customers")).where(F.col("email").isNotNull()).collect()
    upload = tmp_path / "list.csv"
    upload.write_text("email_sha256\n" + "\n".join(_sha(c.email.strip().lower()) for c in customers) + "\n")
    request = tmp_path / "request.json"
    request.write_text(json.dumps({
        "request_id": "req-e2e-1", "advertiser_id": "adv-1", "list_path": str(upload), "channel": "tv",
        "include_segments": [], "exclude_segments": []}))
    monkeypatch.setenv(ENV_VAR, str(pipeline_run.keys_file))

    assert _run_cli(["refine", "--warehouse", wh.root, "--request", request]) == 0

    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rules = settings.refinement
    for key in ("matched_audience", "refined_audience"):
        n = answer.get(key)
        assert n is None or (n >= rules.min_audience and n % rules.rounding == 0), answer
    assert not any(c.customer_id in json.dumps(answer) for c in customers)
    reports = io.read(spark, wh.table("gold", "advertiser_reports")).where(F.col("request_id") == "req-e2e-1")
    assert reports.count() == 1
    lists = wh.table("gold", "activation_lists")
    if io.exists(spark, lists):
        elig = io.read(spark, wh.table("silver", "eligibility")).where(F.col("eligible_list_refinement_tv"))
        activated = io.read(spark, lists).where(F.col("request_id") == "req-e2e-1")
        assert activated.join(elig, "customer_id", "left_anti").count() == 0
