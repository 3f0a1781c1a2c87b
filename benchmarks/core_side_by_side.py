"""The core TV-profile computation (ratio (b)), this checkout's code against an earlier commit's, side by side.

Runs :mod:`benchmarks.tv_core` on the Parquet inputs an earlier ``benchmarks.run`` exported (``DATA/core/inputs``)
with each code version in turn, ``--rounds`` times alternately (earlier, current, earlier, current, ...), each in
its own Python process and SparkSession: the earlier commit is checked out into a temporary ``git worktree``
(the whole package: scoring, profile build and the benchmark's own chain differ between commits) and put first
on ``PYTHONPATH``. Each process runs the Spark computation ``--spark-repeats`` times, then the DuckDB SQL as many
times, and checks that the Spark rows equal DuckDB's. Prints every process's times, then the best Spark and
DuckDB times per version and the ratios; nothing about a person is printed (counts and seconds only).

    .venv/bin/python -m benchmarks.core_side_by_side DATA REV [--rounds 2] [--spark-repeats 3] \\
        [--as-of 2026-11-25] [--conf benchmarks/conf/scale.yml]

``DATA`` is a size folder of ``benchmarks/data`` (e.g. ``benchmarks/data/c100000-d30-s42-e2026-11-25``); the
as-of date defaults to the one ``benchmarks.run`` measured the core at: its full run's, the day before the
folder's incremental day (the ``e`` date of its name).

Results and command: ``benchmarks/results/2026-11-29-scoring-core.md``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MARK = "CORE-RESULT "


def one_process(data: Path, label: str, as_of: date, repeats: int, conf: Path | None) -> dict:
    """Run in the child: the code on ``PYTHONPATH`` (``pipelines``, ``benchmarks.tv_core``) on ``data``."""
    import duckdb

    from benchmarks import tv_core
    from pipelines.config import load_settings
    from pipelines.spark import build_session

    settings = load_settings(conf)
    spark = build_session(settings.spark, **{"spark.ui.enabled": "false"})
    inputs = tv_core.CoreInputs(data / "core" / "inputs")
    params = tv_core.CoreParams.from_settings(settings, as_of)
    with tempfile.TemporaryDirectory(prefix=f"core-{label}-") as scratch:
        out = Path(scratch)
        spark_s = []
        for _ in range(repeats):
            start = time.perf_counter()
            tv_core.spark_tv_core(spark, inputs, params, out / "spark")
            spark_s.append(round(time.perf_counter() - start, 2))
        con = duckdb.connect()
        duck_s = []
        for _ in range(repeats):
            start = time.perf_counter()
            tv_core.duckdb_tv_core(con, inputs, params, out / "duckdb")
            duck_s.append(round(time.perf_counter() - start, 2))
        equal = bool(tv_core.compare_outputs(con, out / "spark", out / "duckdb")["equal"])
        sums = tv_core.checksums(con, out / "spark")  # that commit's own reading of its own output layout
        rows = {"scores": sums["score_rows"], "top": sums["top_rows"]}
    spark.stop()
    return {"code": label, "spark_s": spark_s, "duckdb_s": duck_s, "equal": equal, "rows": rows}


def as_of_of(data: Path) -> date:
    """The full run's as-of date of a ``benchmarks.run`` size folder: the day before its incremental day."""
    m = re.search(r"-e(\d{4}-\d{2}-\d{2})$", data.name)
    if not m:
        raise SystemExit(f"{data}: not a benchmarks.run size folder (…-eYYYY-MM-DD); pass --as-of")
    return date.fromisoformat(m.group(1)) - timedelta(days=1)


def run_child(tree: Path, label: str, args: argparse.Namespace, as_of: date) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "AUDIENCE_JAR_DIR": str(REPO / ".cache" / "jars")}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", label, str(args.data.resolve()),
           "--as-of", as_of.isoformat(), "--spark-repeats", str(args.spark_repeats)]
    if args.conf:
        cmd += ["--conf", str(args.conf.resolve())]
    proc = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        raise SystemExit(f"{label} run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(MARK):])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.core_side_by_side", description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path)
    p.add_argument("rev", nargs="?", help="earlier commit (not with --one)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--spark-repeats", type=int, default=3)
    p.add_argument("--as-of", type=date.fromisoformat, default=None)
    p.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (as `audience --conf`)")
    p.add_argument("--one", metavar="LABEL", help=argparse.SUPPRESS)  # child process
    args = p.parse_args(argv)
    if args.one:
        print(MARK + json.dumps(one_process(args.data, args.one, args.as_of, args.spark_repeats, args.conf)),
              flush=True)
        return 0
    if not args.rev:
        p.error("REV is required")
    as_of = args.as_of or as_of_of(args.data)
    rev = subprocess.run(["git", "rev-parse", "--short", args.rev], cwd=REPO, check=True, capture_output=True,
                         text=True).stdout.strip()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True, capture_output=True,
                          text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout.strip())
    current = f"current ({head}{' + changes' if dirty else ''})"
    results = []
    with tempfile.TemporaryDirectory(prefix="core-side-by-side-") as scratch:
        tree = Path(scratch) / rev
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), rev], cwd=REPO, check=True,
                       capture_output=True)
        try:
            for i in range(args.rounds):
                for label, where in ((rev, tree), (current, REPO)):
                    r = run_child(where, label, args, as_of)
                    results.append(r)
                    print(f"round {i + 1} {label}: Spark {r['spark_s']} s, DuckDB {r['duckdb_s']} s, "
                          f"same rows as DuckDB: {r['equal']}, rows {r['rows']}", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, capture_output=True)
    print(f"\nas of {as_of}, {args.rounds} round(s), {args.spark_repeats} repeat(s) per process; best times:")
    print("| code | Spark s | DuckDB s | (b) = Spark / DuckDB | same rows |\n|---|---:|---:|---:|---|")
    best = {}
    for label in (rev, current):
        mine = [r for r in results if r["code"] == label]
        s = min(t for r in mine for t in r["spark_s"])
        d = min(t for r in mine for t in r["duckdb_s"])
        best[label] = s
        print(f"| {label} | {s:.2f} | {d:.2f} | {s / d:.2f} | {all(r['equal'] for r in mine)} |")
    print(f"\nSpark, current / {rev}: {best[current] / best[rev]:.3f}")
    return 0 if all(r["equal"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
