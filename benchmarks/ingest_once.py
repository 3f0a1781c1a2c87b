"""Ingest one source's landing files into a fresh warehouse with whichever ``pipelines`` is first on the path, and
optionally compare the tables written with another warehouse, row for row.

Used to measure a change of ingestion that spans several modules (parsing, rules, bronze identifier tokens),
which ``benchmarks/ingest_side_by_side.py`` (it swaps ``ingest.py`` alone) cannot: the earlier code runs from a
``git worktree``, each in its own process, one after the other, alone on the machine::

    git worktree add --detach /tmp/wt-before REV
    PYTHONPATH=/tmp/wt-before .venv/bin/python benchmarks/ingest_once.py LANDING SOURCE /tmp/wh-before \\
        --conf benchmarks/conf/scale.yml
    PYTHONPATH=. .venv/bin/python benchmarks/ingest_once.py LANDING SOURCE /tmp/wh-after \\
        --conf benchmarks/conf/scale.yml --compare /tmp/wh-before

The run id and ingestion time are fixed, so the two warehouses must hold the same rows. Prints seconds, counts
and differing row counts only, never a row. Results: ``benchmarks/results/2026-11-28-ingest-parse-cost.md``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from pipelines import io
from pipelines.config import load_settings
from pipelines.sources import ingest
from pipelines.sources.reference_sets import reference_sets
from pipelines.sources.rules import load_source_rules
from pipelines.spark import build_session

INGESTED_AT = datetime(2026, 11, 26, 6, tzinfo=timezone.utc)


def compare(spark, mine: Path, other: Path, source: str) -> int:
    """Rows in one warehouse's table and not in the other's (both ways), per table; returns the total."""
    total = 0
    for table in (f"bronze/{source}", f"silver/{source}", "ops/quarantine", "ops/ingested_files"):
        a = spark.read.format("delta").load(str(mine / table))
        b = spark.read.format("delta").load(str(other / table))
        if a.columns != b.columns:
            print(f"{table}: columns differ: {a.columns} against {b.columns}")
            total += 1
            continue
        n = a.exceptAll(b).count() + b.exceptAll(a).count()
        print(f"{table}: {a.count()} rows, {n} differing")
        total += n
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/ingest_once.py", description=__doc__.splitlines()[0])
    p.add_argument("landing", type=Path)
    p.add_argument("source")
    p.add_argument("warehouse", type=Path, help="created afresh (deleted first if it exists)")
    p.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (as `audience --conf`)")
    p.add_argument("--compare", type=Path, default=None, help="another warehouse ingested the same way")
    args = p.parse_args(argv)
    settings = load_settings(args.conf)
    spark = build_session(settings.spark, **{"spark.ui.enabled": "false"})
    try:
        print(f"code: {Path(ingest.__file__).resolve().parents[2]}")
        shutil.rmtree(args.warehouse, ignore_errors=True)
        rules = load_source_rules(settings.conf_dir)[args.source]
        start = time.perf_counter()
        result = ingest.ingest_source(spark, io.Warehouse(args.warehouse), args.landing, rules,
                                      reference_sets(settings), "ingest-once", INGESTED_AT, recover=False,
                                      max_batch_bytes=settings.ingestion.max_batch_bytes)
        print(f"{args.source}: {time.perf_counter() - start:.1f} s, {result.files} files, {result.rows} rows, "
              f"{result.quarantined} quarantined")
        if args.compare is not None:
            return 1 if compare(spark, args.warehouse, args.compare, args.source) else 0
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
