"""Run tracking in MLflow (parameters, metrics, report artifacts). Importing this package does not import MLflow."""
from pipelines.tracking.mlflow_run import RunTracker, code_version, looks_secret, metric_name

__all__ = ["RunTracker", "code_version", "looks_secret", "metric_name"]
