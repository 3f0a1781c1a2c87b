"""One erasure's delete on a small Delta table, both ways :func:`pipelines.rights.erasure.erase_rows` can do it:
Delta's MERGE against rewriting the table without the person's rows (an anti-join written in overwrite mode).

    .venv/bin/python -m benchmarks.erasure_merge_vs_overwrite [--rounds 6] [--files 5] [--rows 300] [--workdir DIR]
    .venv/bin/python -m benchmarks.erasure_merge_vs_overwrite --warehouse WAREHOUSE [--customer ID] [--rounds 3]

Each round builds two identical tables (``--files`` appends of ``--rows`` customer rows each) and erases one
person's row from each with ``erase_rows`` (finding the rows included), once with ``REWRITE_MAX_BYTES`` 0 (the
MERGE) and once above the table's size (the overwrite), in one session with the test suite's settings for tiny
inputs. Round 0 warms the JVM and is left out of the means. Prints the time and the number of Spark jobs of each
method, and checks that both tables end with the same rows.

With ``--warehouse`` (any warehouse a daily run wrote; copied, never changed), each round erases the same customer
(default: the one with the most identity links) with :func:`pipelines.rights.erasure.forget` from two fresh copies,
once per method (the order alternates between rounds), and checks that every table of the two copies then holds
the same rows (row count and checksum of every column). Results: ``benchmarks/results/2026-11-28-test-suite-durations.md``
(session 19).

Why it matters: an erasure on the test warehouse spends about 60 % of its time in the per-table MERGEs, and every
daily run with an erasure request pays it. An overwrite rewrites every file of the table, where the MERGE
rewrites only the files that hold the person: it can only pay off below some table size.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TEST_SESSION_CONF = {
    "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
    "spark.sql.adaptive.enabled": "true", "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2", "spark.sql.codegen.wholeStage": "false",
}
PERSON = "C00000005"


def _last_job(sc) -> int:
    return max(sc.statusTracker().getJobIdsForGroup(None) or [0])


def _table(spark, path: Path, files: int, rows: int) -> None:
    from pyspark.sql import functions as F

    for d in range(files):
        (spark.range(d * rows, (d + 1) * rows)
         .select(F.format_string("C%08d", "id").alias("customer_id"), F.lit(d).alias("day"))
         .write.format("delta").mode("append").save(str(path)))


def _erase(spark, path: Path, rewrite_max_bytes: int) -> int:
    """:func:`pipelines.rights.erasure.erase_rows` of one person with the given rewrite limit."""
    from pipelines.rights import erasure

    rule = erasure.TableRule("x/t", erasure.DELETE, (erasure.Locator("customer_id", erasure.CUSTOMER),))
    subject = erasure.Subject((erasure.Identifier(PERSON, erasure.CUSTOMER, PERSON),))
    saved = erasure.REWRITE_MAX_BYTES
    erasure.REWRITE_MAX_BYTES = rewrite_max_bytes
    try:
        return erasure.erase_rows(spark, path, rule, erasure.subject_frame(spark, subject))
    finally:
        erasure.REWRITE_MAX_BYTES = saved


#: method -> rewrite limit: 0 forces the MERGE; the overwrite is taken on any table up to 1 TiB.
METHODS = {"merge": 0, "overwrite": 1 << 40}


def _same_tables(spark, left: Path, right: Path) -> list[str]:
    """Tables whose rows differ between two warehouses (count and checksum of every column)."""
    from benchmarks.probe import table_checksum
    from pipelines import io

    names = sorted(str(t.relative_to(left)) for t in io.Warehouse(left).all_tables())
    assert names == sorted(str(t.relative_to(right)) for t in io.Warehouse(right).all_tables()), "different tables"
    return [n for n in names if table_checksum(io.read(spark, left / n)) != table_checksum(io.read(spark, right / n))]


def forget_side_by_side(spark, warehouse: Path, customer: str | None, rounds: int) -> int:
    from datetime import datetime, timezone

    from pyspark.sql import functions as F

    from pipelines import io
    from pipelines.config import load_settings
    from pipelines.privacy.keys import load_keys, new_key_file
    from pipelines.rights import erasure

    settings = load_settings()
    source = io.Warehouse(warehouse.resolve())
    if customer is None:
        customer = (io.read(spark, source.table("silver", "identity_links")).groupBy("customer_id").count()
                    .orderBy(F.desc("count"), "customer_id").first().customer_id)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    with tempfile.TemporaryDirectory(prefix="forget-side-by-side-") as tmp:
        new_key_file(Path(tmp) / "keys.json", ("adsdata",))
        keys = load_keys(Path(tmp) / "keys.json")
        for rnd in range(rounds):
            order = list(METHODS) if rnd % 2 == 0 else list(reversed(METHODS))
            now = datetime.now(timezone.utc)  # the same for both: the tombstones record the day
            copies = {}
            for name in order:
                copies[name] = Path(tmp) / f"{name}-{rnd}"
                shutil.copytree(source.root, copies[name], ignore=shutil.ignore_patterns(".audience.lock"))
                saved, erasure.REWRITE_MAX_BYTES = erasure.REWRITE_MAX_BYTES, METHODS[name]
                try:
                    start = time.perf_counter()
                    report = erasure.forget(spark, settings, io.Warehouse(copies[name]), [customer], keys, now,
                                            request_ids={customer: f"side-by-side-{rnd}"})
                    times[name].append(time.perf_counter() - start)
                finally:
                    erasure.REWRITE_MAX_BYTES = saved
                print(f"round {rnd} {name:9s} {times[name][-1]:6.1f} s  {report.summary()}", flush=True)
            differ = _same_tables(spark, copies["merge"], copies["overwrite"])
            if differ:
                print(f"the two methods left different rows in {', '.join(differ)}", file=sys.stderr)
                return 1
            for path in copies.values():
                shutil.rmtree(path)
    print(f"\nwarehouse {warehouse}, one customer, ERASURE_THREADS={erasure.ERASURE_THREADS}, {rounds} rounds "
          "(every table held the same rows after both; round 0 warms up and is left out of the means)")
    print("| method | forget, mean | median | each round |\n|---|---:|---:|---|")
    warm = {name: values[1:] for name, values in times.items()}
    for name in METHODS:
        print(f"| {name} | {statistics.mean(warm[name]):.1f} s | {statistics.median(warm[name]):.1f} s | "
              + ", ".join(f"{t:.1f}" for t in times[name]) + " |")
    print(f"overwrite / merge (means): {statistics.mean(warm['overwrite']) / statistics.mean(warm['merge']):.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--files", type=int, default=5)
    parser.add_argument("--rows", type=int, default=300)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--warehouse", type=Path, default=None, help="erase from copies of this warehouse instead")
    parser.add_argument("--customer", default=None, help="with --warehouse: the customer id to erase")
    args = parser.parse_args(argv)
    if args.rounds < 2:
        parser.error("--rounds must be at least 2 (round 0 only warms up)")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")
    from pipelines.config import load_settings
    from pipelines.spark import build_session

    spark = build_session(load_settings().spark, **TEST_SESSION_CONF)
    if args.warehouse is not None:
        try:
            return forget_side_by_side(spark, args.warehouse, args.customer, args.rounds)
        finally:
            spark.stop()
    sc = spark.sparkContext
    work = args.workdir or Path(tempfile.mkdtemp(prefix="merge-vs-overwrite-"))
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    jobs: dict[str, list[int]] = {m: [] for m in METHODS}
    try:
        for rnd in range(args.rounds):
            remaining = {}
            for name, limit in METHODS.items():
                path = work / f"{name}-{rnd}"
                _table(spark, path, args.files, args.rows)
                first, start = _last_job(sc), time.perf_counter()
                deleted = _erase(spark, path, limit)
                seconds, n_jobs = time.perf_counter() - start, _last_job(sc) - first
                if deleted != 1:
                    print(f"{name}: {deleted} rows deleted, expected 1", file=sys.stderr)
                    return 1
                remaining[name] = sorted(r.customer_id for r in spark.read.format("delta").load(str(path)).collect())
                print(f"round {rnd} {name:9s} {seconds:6.2f} s  {n_jobs:3d} jobs", flush=True)
                if rnd > 0:
                    times[name].append(seconds)
                    jobs[name].append(n_jobs)
            if remaining["merge"] != remaining["overwrite"] or PERSON in remaining["merge"]:
                print("the two methods left different rows", file=sys.stderr)
                return 1
        print(f"\n{args.files} files x {args.rows} rows, {args.rounds - 1} warm rounds (round 0 left out)")
        print("| method | mean | median | Spark jobs |\n|---|---:|---:|---:|")
        for name in METHODS:
            print(f"| {name} | {statistics.mean(times[name]):.3f} s | {statistics.median(times[name]):.3f} s "
                  f"| {statistics.median(jobs[name]):.0f} |")
        ratio = statistics.mean(times["overwrite"]) / statistics.mean(times["merge"])
        print(f"overwrite / merge (means): {ratio:.2f}")
    finally:
        spark.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
