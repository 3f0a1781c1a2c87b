"""Shared test fixtures: one SparkSession for the whole session (local[2], UI off, Delta on)."""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
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
            # Test inputs are tiny: compiling whole-stage code costs more than it saves (about 13% of an erasure's
            # time on the test warehouse, benchmarks/results/erasure-purge.md). Results are the same either way.
            "spark.sql.codegen.wholeStage": "false",
            # For the same reason, evaluate expressions interpreted rather than compiling each one (Spark's own
            # tests run both modes; the results are the same). test_ingest.py: 159 s with compiled expressions,
            # 127 s interpreted, one after the other (benchmarks/results/2026-11-28-test-suite-durations.md).
            "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        },
    )
    yield session
    session.stop()


@pytest.fixture(scope="module")
def tiny_data_spark(spark):
    """Runtime settings for in-memory test inputs, restored afterwards: RDD-backed test DataFrames have no size
    statistics, so let the planner treat them as small (broadcast joins), and use one shuffle partition (whole-stage
    code generation is off for the whole test session)."""
    from pipelines.spark import session_conf

    with session_conf(spark, {"spark.sql.defaultSizeInBytes": str(1 << 20), "spark.sql.shuffle.partitions": "1"}):
        yield


@pytest.fixture()
def keyring(tmp_path):
    from pipelines.privacy.keys import load_keys, new_key_file

    path = tmp_path / "keys.json"
    new_key_file(path, ("adsdata",), now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    return load_keys(path)


def with_deletion_vectors(spark, path: Path) -> None:
    """Turn deletion vectors on for one table (new tables have them off: pipelines/spark.py). Operators' tables
    created before that change still have them, so erasure and retention are tested on such tables too."""
    spark.sql(f"ALTER TABLE delta.`{path}` SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")


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


# --- the shared end-to-end run ------------------------------------------------------------------------------
# One generated landing zone and two daily runs, shared by every end-to-end test of the session (generating and
# running the whole pipeline is the expensive part); tests that change the warehouse work on a copy.

END = date(2026, 11, 24)
CUSTOMERS = 150
DAYS = 4
SEED = 7


@dataclass(frozen=True)
class FirstRun:
    """The shared run's first day: its generated files, landing zone, warehouse and keys, and a copy of the gold
    tables as that run left them (the landing zone and the warehouse move on with the second run)."""
    generated: Path
    landing: Path
    warehouse: Path
    keys_file: Path
    result: "RunResult"
    gold_copy: Path  # a warehouse folder holding only ``gold/``, as the first run published it


@dataclass(frozen=True)
class PipelineRun:
    generated: Path
    landing: Path
    wh: "io.Warehouse"
    keys_file: Path
    first: "RunResult"
    second: "RunResult"


def deliver(generated: Path, landing: Path, through: date) -> None:
    """Copy the generated files dated up to ``through`` into the landing zone (as daily deliveries would)."""
    for f in generated.rglob("*"):
        m = re.search(r"date=(\d{4}-\d{2}-\d{2})", str(f))
        if f.is_file() and m and date.fromisoformat(m.group(1)) <= through:
            dest = landing / f.relative_to(generated)
            if not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, dest)


@pytest.fixture(scope="session")
def e2e_keys_file(tmp_path_factory) -> Path:
    from pipelines.privacy.keys import new_key_file

    path = tmp_path_factory.mktemp("keys") / "keys.json"
    new_key_file(path, ("adsdata",), now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    return path


@pytest.fixture(scope="session")
def e2e_keyring(e2e_keys_file):
    from pipelines.privacy.keys import load_keys

    return load_keys(e2e_keys_file)


@pytest.fixture(scope="session")
def first_run(spark, settings, tmp_path_factory, e2e_keys_file, e2e_keyring) -> FirstRun:
    """The first daily run of the shared end-to-end run (files through ``END - 1``). The cluster test compares its
    run of the same files with this one, so the local reference run is not computed twice."""
    from pipelines.generate.landing import GenerateOptions, generate_landing
    from pipelines.jobs.daily import run_daily

    base = tmp_path_factory.mktemp("e2e")
    generated, landing, warehouse = base / "generated", base / "landing", base / "warehouse"
    generate_landing(spark, generated, GenerateOptions(customers=CUSTOMERS, days=DAYS, end_date=END, seed=SEED),
                     settings)
    deliver(generated, landing, END - timedelta(days=1))
    result = run_daily(spark, settings, landing, warehouse, END - timedelta(days=1), e2e_keyring,
                       now=datetime(2026, 11, 24, 6, tzinfo=timezone.utc))
    gold_copy = base / "first-run-gold"
    shutil.copytree(warehouse / "gold", gold_copy / "gold")  # Delta tables name their files relatively
    return FirstRun(generated, landing, warehouse, e2e_keys_file, result, gold_copy)


@pytest.fixture(scope="session")
def pipeline_run(spark, settings, first_run, e2e_keyring) -> PipelineRun:
    from pipelines import io
    from pipelines.jobs.daily import run_daily

    deliver(first_run.generated, first_run.landing, END)
    second = run_daily(spark, settings, first_run.landing, first_run.warehouse, END, e2e_keyring,
                       now=datetime(2026, 11, 25, 6, tzinfo=timezone.utc))
    return PipelineRun(first_run.generated, first_run.landing, io.Warehouse(first_run.warehouse),
                       first_run.keys_file, first_run.result, second)


def warehouse_copy(run: PipelineRun, dest: Path):
    """A private copy of the shared warehouse, for tests that change it."""
    from pipelines import io

    shutil.copytree(run.wh.root, dest, ignore=shutil.ignore_patterns(".audience.lock"))
    return io.Warehouse(dest)
