"""Shared test fixtures: one SparkSession for the whole session (local[2], UI off, Delta on)."""
from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from pipelines.config import CONF_DIR, load_settings

os.environ.setdefault("PYSPARK_PYTHON", os.sys.executable)
os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@pytest.fixture(scope="session")
def settings():
    return load_settings()


@pytest.fixture(scope="session")
def spark(settings):
    from pipelines.spark import build_session

    session = build_session(
        settings.spark,
        **{
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            "spark.driver.memory": "3g",
            "spark.sql.adaptive.enabled": "true",
            "spark.databricks.delta.snapshotPartitions": "2",
            "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2",
        },
    )
    yield session
    session.stop()


@pytest.fixture()
def keyring(tmp_path):
    from pipelines.privacy.keys import load_keys, new_key_file

    path = tmp_path / "keys.json"
    new_key_file(path, ("adsdata",), now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    return load_keys(path)


def write_csv(landing: Path, source: str, name: str, lines: list[str]) -> Path:
    """Write a landing CSV file (lines given verbatim, header included by the caller or added here)."""
    from pipelines.schemas import LANDING_COLUMNS

    path = landing / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    header = ",".join(LANDING_COLUMNS[source])
    body = lines if lines and lines[0] == header else [header, *lines]
    path.write_text("\n".join(body) + "\n", encoding="utf-8")
    return path


def write_jsonl(landing: Path, source: str, name: str, records: list[dict | str]) -> Path:
    """Write a landing JSONL file; strings are written verbatim (for malformed lines)."""
    path = landing / source / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def conf_dir() -> Path:
    return CONF_DIR
