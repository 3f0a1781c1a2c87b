"""One erasure (``forget`` of one customer) with Delta's VACUUM and with the direct purge, side by side.

Three private copies of the same warehouse, one SparkSession (the test suite's small-data settings), one thread,
the same customer: the direct purge of files not in the current snapshot; the same with whole-stage code
generation off (as the test session runs); and :func:`pipelines.rights.erasure.vacuum_now` forced onto Delta's
``VACUUM``. Each step (MERGE, REORG, VACUUM, log compaction) is
timed per table. Results and the command: ``benchmarks/results/erasure-purge.md``.

    .venv/bin/python -m benchmarks.erasure_purge WAREHOUSE [CUSTOMER_ID]

WAREHOUSE is any warehouse a daily run wrote (for example ``demo-workdir/warehouse`` after ``make demo``); it is
copied, never changed.
"""
from __future__ import annotations

import platform
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

from pipelines import io
from pipelines.config import load_settings
from pipelines.privacy.keys import load_keys, new_key_file
from pipelines.rights import erasure
from pipelines.spark import build_session

SMALL_DATA = {"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
              "spark.databricks.delta.snapshotPartitions": "2",
              "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2"}
VARIANTS = (("direct purge", True, True), ("direct purge, no codegen", True, False), ("Delta VACUUM", False, True))
STEPS = ("erase_rows", "purge_deletion_vectors", "vacuum_now", "compact_history")


def _timed(totals: dict[str, float], name: str, fn):
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[name] += time.perf_counter() - started
    return wrapper


def run_variant(spark, settings, source: Path, customer: str, keys, direct: bool, codegen: bool) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    originals = {name: getattr(erasure, name) for name in (*STEPS, "_vacuum_local", "ERASURE_THREADS")}
    with tempfile.TemporaryDirectory(prefix="erasure-bench-") as tmp:
        wh = io.Warehouse(shutil.copytree(source, Path(tmp) / "wh", ignore=shutil.ignore_patterns(".audience.lock")))
        try:
            spark.conf.set("spark.sql.codegen.wholeStage", str(codegen).lower())
            erasure.ERASURE_THREADS = 1
            if not direct:
                erasure._vacuum_local = lambda *_: None  # every table falls back to Delta's VACUUM
            for name in STEPS:
                setattr(erasure, name, _timed(totals, name, originals[name]))
            started = time.perf_counter()
            report = erasure.forget(spark, settings, wh, [customer], keys, datetime.now(timezone.utc))
            totals["forget (total)"] = time.perf_counter() - started
            print(f"  {report.summary()}", flush=True)
        finally:
            for name, value in originals.items():
                setattr(erasure, name, value)
            spark.conf.unset("spark.sql.codegen.wholeStage")
    return totals


def main(warehouse: str, customer: str | None = None) -> None:
    settings = load_settings()
    spark = build_session(settings.spark, **SMALL_DATA)
    source = Path(warehouse).resolve()
    if customer is None:
        customer = io.read(spark, source / "silver" / "customers").select("customer_id").orderBy("customer_id").first()[0]
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.json"
        new_key_file(key_file, ("adsdata",))
        keys = load_keys(key_file)
        results = {}
        # The direct purge runs first: the warm-up of the JVM then favours the later variants, not the change.
        for label, direct, codegen in VARIANTS:
            print(f"{label}:", flush=True)
            results[label] = run_variant(spark, settings, source, customer, keys, direct, codegen)
    print(f"\nmachine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, spark {spark.version}")
    print(f"warehouse: {source}, one customer, ERASURE_THREADS=1\n")
    labels = [v[0] for v in VARIANTS]
    print("| step (summed over tables) | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    for step in (*STEPS, "forget (total)"):
        print(f"| {step} | " + " | ".join(f"{results[label].get(step, 0.0):.1f} s" for label in labels) + " |")
    total = {label: results[label]["forget (total)"] for label in labels}
    print(f"\nforget total, direct / Delta VACUUM: {total['direct purge'] / total['Delta VACUUM']:.2f}")
    print(f"forget total, no codegen / codegen (direct purge): "
          f"{total['direct purge, no codegen'] / total['direct purge']:.2f}")


if __name__ == "__main__":
    main(*sys.argv[1:])
