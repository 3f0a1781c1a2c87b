"""Small driver-side tables: ``createDataFrame`` of a Python list against :func:`pipelines.io.local_frame`.

A 30-row reference table is joined with itself and counted ten times, in one process, each way twice (the first
round pays the JVM's warm-up): ``createDataFrame(list)`` (a Python RDD, re-pickled by a Python worker at each
read), :func:`pipelines.io.local_frame` (Arrow, a ``LocalRelation`` in the plan) and ``createDataFrame(list)``
followed by an eager local checkpoint. Results: ``benchmarks/results/2026-11-29-local-frames.md``.

    .venv/bin/python -m benchmarks.local_frames
"""
from __future__ import annotations

import sys
import time

from pipelines import io
from pipelines.config import load_settings
from pipelines.spark import build_session

ROWS = [(f"g{i}", i, [i, i + 1]) for i in range(30)]
SCHEMA = "genre string, id int, ids array<int>"
QUERIES = 10


def measure(label: str, make) -> None:
    for rnd in range(2):
        start = time.perf_counter()
        df = make()
        created = time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(QUERIES):
            df.join(df.withColumnRenamed("id", "id2").drop("ids"), "genre").count()
        leaf = df._jdf.queryExecution().executedPlan().toString().splitlines()[-1].strip()
        print(f"{label:28s} round {rnd}: create {created:.3f} s, {QUERIES} joins and counts "
              f"{time.perf_counter() - start:.2f} s; plan leaf {leaf[:40]}", flush=True)


def main() -> int:
    spark = build_session(load_settings().spark, **{"spark.ui.enabled": "false"})
    try:
        measure("createDataFrame(list)", lambda: spark.createDataFrame(ROWS, SCHEMA))
        measure("io.local_frame", lambda: io.local_frame(spark, ROWS, SCHEMA))
        measure("createDataFrame + checkpoint", lambda: spark.createDataFrame(ROWS, SCHEMA).localCheckpoint(eager=True))
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
