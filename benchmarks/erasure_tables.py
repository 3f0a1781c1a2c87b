"""Where one erasure's time goes, table by table: finding the person's rows, the MERGE, the purge.

Erases ``N`` customers drawn at random (``--seed``) from ``silver/customers`` of a *copy* of a warehouse (the
erasure changes the warehouse, so the original is left as it was), with the tables processed one after the
other (``ERASURE_THREADS`` = 1: the daily run uses 4 threads, whose times overlap and cannot be told apart), and
prints a markdown table: per table, the seconds spent finding the matched locator tuples (``match``), the rest
of ``erase_rows`` (the MERGE that rewrites the touched files, ``merge``) and ``purge_table`` (REORG, VACUUM,
log compaction). Counts and table names only, never an identifier.

    .venv/bin/python -m benchmarks.erasure_tables WAREHOUSE KEY_FILE N [--seed 7] [--copy-to DIR]

Results and the command: ``benchmarks/results/2026-11-27-100k-line-ids.md`` ("Where the erasure's time goes").
"""
from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from pipelines import io
from pipelines.config import load_settings
from pipelines.privacy.keys import load_keys
from pipelines.rights import erasure
from pipelines.spark import build_session


class Timings:
    """Seconds per (table, phase); ``current`` is the table whose erase/purge is running (one thread)."""

    def __init__(self) -> None:
        self.seconds: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.current = ""

    def wrap(self, phase: str, fn: Callable[..., Any], table_arg: int | None = None) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if table_arg is not None:
                self.current = Path(str(args[table_arg])).parent.name + "/" + Path(str(args[table_arg])).name
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[self.current if table_arg is not None or phase == "match" else "(all)"][phase] += (
                    time.perf_counter() - start)
        return timed


def measure(warehouse: Path, key_file: Path, people: int, seed: int) -> tuple[float, str, Timings]:
    settings = load_settings(None)
    spark = build_session(settings.spark, **{"spark.ui.enabled": "false"})
    timings = Timings()
    try:
        wh = io.Warehouse(warehouse)
        ids = sorted(r.customer_id for r in
                     io.read(spark, wh.table("silver", "customers")).select("customer_id").collect())
        chosen = random.Random(seed).sample(ids, min(people, len(ids)))
        erasure.ERASURE_THREADS = 1
        original_materialise = erasure.io.materialise

        def materialise(df):  # inside erase_rows, the one materialise is the matched keys
            start = time.perf_counter()
            out = original_materialise(df)
            out.isEmpty()
            timings.seconds[timings.current]["match"] += time.perf_counter() - start
            return out

        erasure.io.materialise = materialise
        erasure.erase_rows = timings.wrap("erase", erasure.erase_rows, table_arg=1)
        erasure.purge_table = timings.wrap("purge", erasure.purge_table, table_arg=1)
        erasure.find_subject = timings.wrap("find subject", erasure.find_subject)
        start = time.perf_counter()
        report = erasure.forget(spark, settings, wh, chosen, load_keys(key_file), datetime.now(timezone.utc))
        return time.perf_counter() - start, report.summary(), timings
    finally:
        spark.stop()


def markdown(total: float, summary: str, timings: Timings) -> str:
    rows = []
    for table, phases in timings.seconds.items():
        if table == "(all)":
            continue
        match = phases.get("match", 0.0)
        rows.append((table or "(the person's identifiers, materialised once)", match,
                     phases["erase"] - match if "erase" in phases else 0.0, phases.get("purge", 0.0)))
    rows.sort(key=lambda r: -(r[1] + r[2] + r[3]))
    lines = [f"forget: {total:.1f} s ({summary})", "",
             f"find subject: {timings.seconds['(all)'].get('find subject', 0.0):.1f} s", "",
             "| table | match s | merge s | purge s |", "|---|---|---|---|"]
    lines += [f"| {t} | {m:.1f} | {g:.1f} | {p:.1f} |" for t, m, g, p in rows]
    sums = [sum(r[i] for r in rows) for i in (1, 2, 3)]
    lines.append(f"| all {len(rows)} tables | {sums[0]:.1f} | {sums[1]:.1f} | {sums[2]:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.erasure_tables", description=__doc__.splitlines()[0])
    p.add_argument("warehouse", type=Path)
    p.add_argument("key_file", type=Path)
    p.add_argument("people", type=int)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--copy-to", type=Path, default=None, help="where the copy goes (default: a temporary folder)")
    args = p.parse_args(argv)
    parent = args.copy_to or Path(tempfile.mkdtemp(prefix="erasure-tables-"))
    copy = parent / "warehouse"
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(args.warehouse, copy)
    try:
        total, summary, timings = measure(copy, args.key_file, args.people, args.seed)
    finally:
        shutil.rmtree(copy, ignore_errors=True)
    print(markdown(total, summary, timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
