"""The incremental day alone, repeatable: a full run's warehouse kept once, then the next day run on copies of it.

Ratio (c) of :mod:`benchmarks.run` needs a full 30-day run before every incremental day (13 minutes at 100k
customers). To compare code changes to the incremental day side by side, this tool keeps the warehouse of one
full run and runs the next day on a fresh copy of it, as often as wanted:

    python -m benchmarks.incremental_day prepare DATA SNAPSHOT [--conf C]   # full run as of the last-but-one day
    python -m benchmarks.incremental_day measure DATA SNAPSHOT WORK [--conf C] [--json OUT]

``DATA`` is a data folder of the harness (``benchmarks/data/c<N>-d<D>-s<seed>-e<day>``, its ``generated/``
holding ``D + 1`` days). ``prepare`` delivers the first ``D`` days into ``SNAPSHOT/landing``, runs the full
refresh as of day ``D`` into ``SNAPSHOT/warehouse`` and records its stage seconds in ``SNAPSHOT/full.json``.
``measure`` copies the snapshot to ``WORK`` (replaced), delivers day ``D + 1`` and runs it (not a full refresh),
printing end-to-end and per-stage seconds. The keys are the harness's (``benchmarks/data/benchmark.keys.json``),
so outputs repeat between copies. A snapshot is only valid for the code whose tables it holds: prepare it again
after a change to what the tables store.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Sequence

from benchmarks import probe as probes
from benchmarks import run as harness
from benchmarks.core_side_by_side import as_of_of


def _days(data: Path) -> tuple[date, date]:
    """The full run's as-of date and the incremental day of a harness size folder (``...-e<incremental day>``)."""
    full_day = as_of_of(data)
    return full_day, full_day + timedelta(days=1)


def _session(conf: Path | None):
    from pipelines.config import load_settings
    from pipelines.spark import build_session

    settings = load_settings(conf)
    return settings, build_session(settings.spark, **{"spark.ui.enabled": "false"})


def _report(label: str, run: dict) -> None:
    print(f"{label}: {run['status']} in {run['seconds']:.1f} s")
    for stage, seconds in sorted(run["stages"].items(), key=lambda kv: -kv[1]):
        print(f"  {seconds:8.2f}  {stage}")


def prepare(data: Path, snapshot: Path, conf: Path | None) -> int:
    full_day, _ = _days(data)
    if snapshot.exists():
        shutil.rmtree(snapshot)
    landing, warehouse = snapshot / "landing", snapshot / "warehouse"
    harness.deliver(data / "generated", landing, None, full_day)
    settings, spark = _session(conf)
    try:
        probe = probes.MemoryProbe.for_session(spark)
        run = harness.measured_run(spark, settings, landing, warehouse, full_day, harness.benchmark_keys(settings),
                                   full_refresh=True, probe=probe, quiet=True)
    finally:
        spark.stop()
    run["git"] = probes.git_state()
    (snapshot / "full.json").write_text(json.dumps(run, indent=2, default=str))
    _report(f"full run as of {full_day}", run)
    return 0 if run["status"] == "succeeded" else 1


def measure(data: Path, snapshot: Path, work: Path, conf: Path | None, out: Path | None) -> int:
    _, inc_day = _days(data)
    if work.exists():
        shutil.rmtree(work)
    started = time.perf_counter()
    shutil.copytree(snapshot / "landing", work / "landing")
    shutil.copytree(snapshot / "warehouse", work / "warehouse")
    print(f"copied the snapshot in {time.perf_counter() - started:.1f} s")
    harness.deliver(data / "generated", work / "landing", inc_day, inc_day)
    settings, spark = _session(conf)
    try:
        probe = probes.MemoryProbe.for_session(spark)
        run = harness.measured_run(spark, settings, work / "landing", work / "warehouse", inc_day,
                                   harness.benchmark_keys(settings), full_refresh=False, probe=probe, quiet=True)
        run["checksums"] = harness.gold_checksums(spark, work / "warehouse")
    finally:
        spark.stop()
    run["git"] = probes.git_state()
    _report(f"incremental day {inc_day}", run)
    if out is not None:
        out.write_text(json.dumps(run, indent=2, default=str))
    return 0 if run["status"] == "succeeded" else 1


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.incremental_day", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("prepare", help="full run as of the last-but-one day, kept as a snapshot")
    pm = sub.add_parser("measure", help="the last day on a fresh copy of the snapshot")
    for q in (pp, pm):
        q.add_argument("data", type=Path)
        q.add_argument("snapshot", type=Path)
    pm.add_argument("work", type=Path)
    pm.add_argument("--json", type=Path, default=None, help="write the run's figures here")
    for q in (pp, pm):
        q.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (as `audience --conf`)")
    args = p.parse_args(argv)
    if args.command == "prepare":
        return prepare(args.data, args.snapshot, args.conf)
    return measure(args.data, args.snapshot, args.work, args.conf, args.json)


if __name__ == "__main__":
    sys.exit(main())
