"""Every pipeline run is an MLflow run: parameters, metrics and report artifacts. The only module importing MLflow.

Embedded default: a SQLite store in ``<warehouse>/ops/mlflow.db`` with artifacts under ``<warehouse>/ops/mlruns``;
``tracking.tracking_uri`` in the configuration points at a remote server instead. The client API is used (no
global ``mlflow.set_tracking_uri``), so two trackers never interfere. Secrets never reach MLflow: parameters
whose name or value looks like a secret are refused.

Example::

    >>> with RunTracker(settings, Path("/tmp/wh"), run_name="20261125-060000-ab12cd34") as tracker:
    ...     tracker.log_params({"as_of": "2026-11-25", "config_hash": settings.config_hash})
    ...     tracker.log_metrics({"ingest.tv_viewing.rows": 1200})
    ...     tracker.log_artifacts(Path("/tmp/wh/reports/20261125-060000-ab12cd34"), "reports")
"""
from __future__ import annotations

import hashlib
import logging
import math
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Mapping

from pipelines.config import PROJECT_ROOT, Settings

#: Parameter names that must never be logged (whatever their value).
SECRET_NAME = re.compile(r"key|secret|token|password|passwd|credential", re.IGNORECASE)
#: Values that look like key material or credentials.
SECRET_VALUES = (
    re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)"),            # PEM blocks
    re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE),   # URL with user:password@
    re.compile(r"(password|passwd|secret|token|api[_-]?key)\s*[:=]", re.IGNORECASE),
    re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64,}(?![0-9a-fA-F])"),        # raw hex keys (32+ bytes)
)
_BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/_-]{40,}={0,2}")
_METRIC_BAD = re.compile(r"[^A-Za-z0-9_.\-]")
MAX_NAME = 250
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000


def looks_secret(name: str, value: Any) -> bool:
    """True when a parameter's name or value looks like a secret (it is then never logged)."""
    text = "" if value is None else str(value)
    if SECRET_NAME.search(name) or any(p.search(text) for p in SECRET_VALUES):
        return True
    return any(_base64_secret(token) for token in re.split(r"[\s,;]+", text))


def _base64_secret(token: str) -> bool:
    """A long base64-like token mixing upper case, lower case and digits (absolute paths excepted)."""
    return (bool(_BASE64_TOKEN.fullmatch(token)) and not token.startswith("/") and "//" not in token
            and any(c.isupper() for c in token) and any(c.islower() for c in token)
            and any(c.isdigit() for c in token))


def metric_name(name: str) -> str:
    """``name`` reduced to MLflow's metric-name alphabet (letters, digits, ``_ . -``), at most 250 characters.

    >>> metric_name("quarantine.tv_viewing.wrong type: duration_s")
    'quarantine.tv_viewing.wrong_type__duration_s'
    """
    clean = _METRIC_BAD.sub("_", str(name)).lstrip(".") or "_"
    if len(clean) > MAX_NAME:
        digest = hashlib.sha1(clean.encode()).hexdigest()[:8]
        clean = clean[: MAX_NAME - 9] + "-" + digest
    return clean


def code_version(root: Path = PROJECT_ROOT) -> str:
    """``git describe --always --dirty`` of the project when it is a git checkout, else the package version."""
    try:
        out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                             capture_output=True, text=True, timeout=10, check=False)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return metadata.version("audience-pipeline")
    except metadata.PackageNotFoundError:
        return "unknown"


def tracking_uri(settings: Settings, warehouse: Path) -> str:
    """The configured tracking URI, else the embedded SQLite store of the warehouse."""
    return settings.tracking.tracking_uri or f"sqlite:///{(Path(warehouse) / 'ops' / 'mlflow.db').resolve()}"


class RunTracker:
    """One MLflow run for one pipeline run; ended FINISHED, or FAILED when the ``with`` block raises."""

    def __init__(self, settings: Settings, warehouse: Path, run_name: str) -> None:
        self.settings = settings
        self.warehouse = Path(warehouse)
        self.run_name = run_name
        self.tracking_uri = tracking_uri(settings, self.warehouse)
        self.run_id: str = ""
        self._client: Any = None

    def __enter__(self) -> "RunTracker":
        # Lazy import: MLflow takes seconds to import and only runs need it.
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        from mlflow import MlflowClient

        embedded = self.settings.tracking.tracking_uri is None
        if embedded:
            (self.warehouse / "ops").mkdir(parents=True, exist_ok=True)
        self._client = MlflowClient(tracking_uri=self.tracking_uri)
        name = self.settings.tracking.experiment
        experiment = self._client.get_experiment_by_name(name)
        if experiment is None:
            # Embedded store: artifacts next to the database, inside the warehouse; a server decides its own.
            location = (self.warehouse / "ops" / "mlruns").resolve().as_uri() if embedded else None
            experiment_id = self._client.create_experiment(name, artifact_location=location)
        else:
            experiment_id = experiment.experiment_id
        run = self._client.create_run(experiment_id, run_name=self.run_name,
                                      tags={"pipeline.run_id": self.run_name, "code_version": code_version()})
        self.run_id = run.info.run_id
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if self._client is not None and self.run_id:
            self._client.set_terminated(self.run_id, status="FAILED" if exc_type else "FINISHED")
        return False

    def _require(self) -> Any:
        if self._client is None or not self.run_id:
            raise RuntimeError("RunTracker is not started: use it as a context manager")
        return self._client

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Log parameters (as strings); refuses all of them (``ValueError``) if any looks like a secret."""
        refused = sorted(k for k, v in params.items() if looks_secret(str(k), v))
        if refused:
            # Name the parameter only: the value may be the secret itself.
            raise ValueError(f"refusing to log secret-looking parameter(s): {', '.join(refused)}")
        from mlflow.entities import Param

        client = self._require()
        items = [Param(str(k), "" if v is None else str(v)) for k, v in params.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            client.log_batch(self.run_id, params=items[i:i + PARAMS_PER_BATCH])

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log numeric metrics under sanitised names; ``None`` and non-numeric values are skipped."""
        from mlflow.entities import Metric

        client = self._require()
        now = int(time.time() * 1000)
        items: dict[str, Any] = {}
        for k, v in metrics.items():
            if v is None or isinstance(v, str):
                continue
            value = float(v)
            if math.isnan(value):
                continue
            items[metric_name(k)] = Metric(metric_name(k), value, now, step)
        values = list(items.values())
        for i in range(0, len(values), METRICS_PER_BATCH):
            client.log_batch(self.run_id, metrics=values[i:i + METRICS_PER_BATCH])

    def log_artifacts(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file or a whole folder (e.g. the run's report folder) as artifacts of the run."""
        client = self._require()
        path = Path(path)
        if path.is_dir():
            client.log_artifacts(self.run_id, str(path), artifact_path)
        elif path.is_file():
            client.log_artifact(self.run_id, str(path), artifact_path)
        else:
            raise FileNotFoundError(f"no artifact at {path}")
