"""MLflow tracking: a pipeline run's parameters, metrics and artifacts, read back with MlflowClient."""
from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest
from hypothesis import given, strategies as st
from mlflow import MlflowClient

from pipelines.config import settings_from_dict
from pipelines.tracking import RunTracker, code_version, looks_secret, metric_name


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory) -> Path:
    # One store for the module: creating an MLflow SQLite database takes seconds (schema migrations).
    return tmp_path_factory.mktemp("wh")


def client_for(warehouse: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{warehouse.resolve() / 'ops' / 'mlflow.db'}")


def test_a_run_holds_its_parameters_metrics_and_artifacts(settings, warehouse, tmp_path):
    report = tmp_path / "report"
    report.mkdir()
    (report / "dq_report.html").write_text("<html>dq</html>", encoding="utf-8")
    (report / "privacy_summary.html").write_text("<html>privacy</html>", encoding="utf-8")
    label = tmp_path / "labels.json"
    label.write_text("{}", encoding="utf-8")
    params = {"as_of": "2026-11-25", "config_hash": settings.config_hash, "code_version": "abc1234",
              "segment_definitions_hash": "3f2a9c1b5d6e7f80", "mapping.content_to_audience": "v3"}

    with RunTracker(settings, warehouse, run_name="20261125-050000-aaaa0001") as tracker:
        tracker.log_params(params)
        tracker.log_metrics({"ingest.tv_viewing.rows": 1200, "quarantine.tv_viewing.wrong type: duration_s": 3,
                             "funnel.eligible_tv_profile": 40.0, "skipped": None})
        tracker.log_artifacts(report, "reports")
        tracker.log_artifacts(label, "labels")
        run_id = tracker.run_id

    client = client_for(warehouse)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == "20261125-050000-aaaa0001"
    assert run.data.params == params
    assert run.data.metrics == {"ingest.tv_viewing.rows": 1200.0, "quarantine.tv_viewing.wrong_type__duration_s": 3.0,
                                "funnel.eligible_tv_profile": 40.0}
    assert run.data.tags["pipeline.run_id"] == "20261125-050000-aaaa0001"
    assert sorted(f.path for f in client.list_artifacts(run_id, "reports")) == [
        "reports/dq_report.html", "reports/privacy_summary.html"]
    assert [f.path for f in client.list_artifacts(run_id, "labels")] == ["labels/labels.json"]
    # Embedded default: database and artifacts inside the warehouse.
    assert (warehouse / "ops" / "mlflow.db").is_file()
    assert run.info.artifact_uri.startswith((warehouse / "ops" / "mlruns").resolve().as_uri())
    stored = Path(run.info.artifact_uri.removeprefix("file://")) / "reports" / "dq_report.html"
    assert stored.read_text(encoding="utf-8") == "<html>dq</html>"


def test_a_run_that_raises_is_recorded_as_failed(settings, warehouse):
    with pytest.raises(RuntimeError, match="boom"):
        with RunTracker(settings, warehouse, run_name="failing") as tracker:
            run_id = tracker.run_id
            raise RuntimeError("boom")
    assert client_for(warehouse).get_run(run_id).info.status == "FAILED"


@pytest.mark.parametrize("name, value", [
    ("keys_file", "/etc/audience/keys.json"),
    ("adsdata_secret", "x"),
    ("api_token", "x"),
    ("db_password", "x"),
    # Raw key material, as in the key file; fixed ids: a random id would differ between pytest-xdist workers.
    pytest.param("recipient", secrets.token_hex(32), id="recipient-hex-key"),
    pytest.param("recipient", "sk" + secrets.token_urlsafe(40), id="recipient-urlsafe-key"),
    ("tracking", "https://user:hunter2@mlflow.example.com"),
    ("note", "password=hunter2"),
])
def test_secret_looking_parameters_are_refused_and_nothing_is_logged(settings, warehouse, name, value):
    with RunTracker(settings, warehouse, run_name="secrets") as tracker:
        with pytest.raises(ValueError) as err:
            tracker.log_params({"as_of": "2026-11-25", name: value})
        run_id = tracker.run_id
    assert name in str(err.value) and (len(value) < 8 or value not in str(err.value))
    assert client_for(warehouse).get_run(run_id).data.params == {}


@pytest.mark.parametrize("value", [
    "2026-11-25", "3f2a9c1b5d6e7f80", "0123456789abcdef0123456789abcdef01234567",  # a git sha
    "/tmp/pytest-of-root/pytest-12/test_secret_looking_parameters0/Landing2026", "v0.1.0-3-gabc1234-dirty",
])
def test_ordinary_parameter_values_are_not_mistaken_for_secrets(value):
    assert not looks_secret("value", value)


@given(st.text(max_size=300))
def test_metric_names_are_always_in_mlflows_alphabet(name):
    clean = metric_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_.\-]{1,250}", clean)
    assert not clean.startswith(".")
    if re.fullmatch(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]{0,249}", name):
        assert clean == name  # valid names are kept as they are


def test_remote_tracking_uri_comes_from_the_configuration(settings, tmp_path):
    from pipelines.tracking.mlflow_run import tracking_uri

    remote = settings_from_dict({**settings.raw, "tracking": {"tracking_uri": "http://mlflow.internal:5000"}},
                                settings.conf_dir)
    assert tracking_uri(remote, tmp_path) == "http://mlflow.internal:5000"
    assert tracking_uri(settings, tmp_path) == f"sqlite:///{tmp_path.resolve()}/ops/mlflow.db"


def test_code_version_falls_back_to_the_package_version_outside_a_checkout(tmp_path):
    from importlib import metadata

    assert code_version(tmp_path) == metadata.version("audience-pipeline")
    assert code_version()  # the project itself: git describe when it has commits, else the package version


def test_only_the_tracking_layer_imports_mlflow_and_only_when_a_run_starts():
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    importers = sorted(str(p.relative_to(root)) for p in (root / "pipelines").rglob("*.py")
                       if re.search(r"^\s*(import|from)\s+mlflow\b", p.read_text(encoding="utf-8"), re.MULTILINE))
    assert importers == ["pipelines/tracking/mlflow_run.py"]
    probe = "import sys, pipelines.tracking; print('mlflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
