"""Where one source's ingestion spends its time: every warehouse operation it makes, timed.

Ingests the landing files of ``SOURCE`` into a fresh warehouse with this checkout's code, once, and times each
call ingestion makes to :mod:`pipelines.io` (reads of the bookkeeping, the bronze, quarantine and silver writes,
the materialised steps) and each ``collect``; Spark is lazy, so a write's seconds include computing what it
writes (parsing, validating, the duplicate window). Prints one row per call in order and the share of the
whole; the rest (planning, listing files) is the remainder.

    .venv/bin/python -m benchmarks.ingest_profile LANDING SOURCE [--conf FILE] [--batch-mb N]

Run it alone on the machine (two cores). Prints counts and seconds only, never a row. Results:
``benchmarks/results/2026-11-28-ingest-parse-cost.md``.
"""
from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator
from unittest import mock

from pyspark.sql import DataFrame

from benchmarks.probe import scratch_session
from pipelines import io
from pipelines.sources import ingest
from pipelines.sources.reference_sets import reference_sets
from pipelines.sources.rules import load_source_rules

#: The calls timed: functions of pipelines.io that ingestion uses.
TIMED = ("read", "exists", "materialise", "append", "delete_where", "upsert")


def _label(name: str, args: tuple, root: Path) -> str:
    where = next((a for a in args if isinstance(a, Path)), None)
    if where is not None:
        try:
            where = where.relative_to(root)
        except ValueError:
            pass
    return f"{name} {where}" if where is not None else name


@contextmanager
def timed_calls(root: Path) -> Iterator[list[tuple[str, float]]]:
    """Patch the :data:`TIMED` io functions (as ingestion sees them) and ``DataFrame.collect`` with timers;
    yields the list of (call, seconds) they fill, in call order (nested calls are listed before their caller)."""
    calls: list[tuple[str, float]] = []

    def timer(name: str, fn: Callable) -> Callable:
        def wrapped(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                calls.append((_label(name, args, root), time.perf_counter() - start))
        return wrapped

    with ExitStack() as stack:
        for name in TIMED:
            stack.enter_context(mock.patch.object(io, name, timer(name, getattr(io, name))))
        stack.enter_context(mock.patch.object(DataFrame, "collect", timer("collect", DataFrame.collect)))
        yield calls


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.ingest_profile", description=__doc__.splitlines()[0])
    p.add_argument("landing", type=Path)
    p.add_argument("source")
    p.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (as `audience --conf`)")
    p.add_argument("--batch-mb", type=int, default=None, help="ingestion.max_batch_mb (default: the conf's)")
    args = p.parse_args(argv)
    with scratch_session(args.conf, "ingest-profile-") as (settings, spark, scratch):
        rules = load_source_rules(settings.conf_dir)[args.source]
        reference = reference_sets(settings)
        batch = settings.ingestion.max_batch_bytes if args.batch_mb is None else args.batch_mb * 1024 * 1024
        wh = io.Warehouse(scratch / "wh")
        start = time.perf_counter()
        with timed_calls(scratch) as calls:
            result = ingest.ingest_source(spark, wh, args.landing, rules, reference, "profile",
                                          datetime.now(timezone.utc), recover=False, max_batch_bytes=batch)
        total = time.perf_counter() - start
        print(f"{args.source}: {total:.1f} s, {result.files} files, {result.rows} rows, "
              f"{result.quarantined} quarantined\n")
        print("| # | call | seconds | share |\n|---|---|---|---|")
        for i, (call, seconds) in enumerate(calls, 1):
            print(f"| {i} | {call} | {seconds:.2f} | {seconds / total:.1%} |")
        outer = sum(s for c, s in calls if not c.startswith(("read ", "exists ")))
        print(f"\nTimed calls (reads and existence checks excluded, they nest in others): {outer:.1f} s; "
              f"remainder {total - outer:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
