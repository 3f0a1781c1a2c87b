"""One erasure (``forget`` of one customer), this checkout's erasure code against an earlier commit's, side by side.

Both versions of ``pipelines/rights/erasure.py`` run in **one process and one SparkSession**, alternately
(earlier, current, current, earlier, earlier, ...: each version goes first every other round, so JVM warm-up
favours neither), each round on a fresh copy of the same warehouse, for the same customer. The earlier version is
loaded from ``git show REV:pipelines/rights/erasure.py``; the rest of the package is this checkout's, so the
script refuses to run when anything else under ``pipelines/`` differs from REV. Per round it prints the seconds
and the Spark jobs of ``forget``, and checks that both versions erased the same rows and that no file of the
copy mentions the person afterwards. Nothing about a person is printed (counts and seconds only).

    .venv/bin/python -m benchmarks.erasure_side_by_side WAREHOUSE REV [--rounds 4] [--test-settings]

WAREHOUSE is any warehouse a daily run wrote (``demo-workdir/warehouse`` after ``make demo``); it is copied,
never changed. ``--test-settings``: the test session's Spark settings (tests/conftest.py) instead of ``conf/``.
"""
from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import types
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULE = "pipelines/rights/erasure.py"
def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)


def earlier_module(rev: str) -> types.ModuleType:
    """``pipelines.rights.erasure`` as of ``rev``, loaded under its own name next to the current one."""
    others = _git("diff", "--quiet", rev, "--", "pipelines", f":(exclude){MODULE}")
    if others.returncode != 0:
        raise SystemExit(f"files of pipelines/ other than {MODULE} differ from {rev}: this benchmark compares "
                         f"{MODULE} only (see `git diff --stat {rev} -- pipelines`)")
    shown = _git("show", f"{rev}:{MODULE}")
    if shown.returncode != 0:
        raise SystemExit(f"git show {rev}:{MODULE} failed: {shown.stderr.strip()}")
    module = types.ModuleType(f"erasure_at_{rev}")
    module.__file__ = f"{rev}:{MODULE}"
    sys.modules[module.__name__] = module  # dataclasses look their module up there
    exec(compile(shown.stdout, module.__file__, "exec"), module.__dict__)
    return module


def one_round(spark, settings, erasure, source: Path, customer: str, keys) -> dict:
    """``forget`` with ``erasure`` on a fresh copy of ``source``: seconds, Spark jobs, what it erased."""
    from pipelines import io

    scheduler = spark.sparkContext._jsc.sc().dagScheduler()
    with tempfile.TemporaryDirectory(prefix="erasure-sbs-") as tmp:
        wh = io.Warehouse(shutil.copytree(source, Path(tmp) / "wh", ignore=shutil.ignore_patterns(".audience.lock")))
        needles = erasure.find_subject(spark, wh, [customer]).needles
        jobs = scheduler.nextJobId()
        started = time.perf_counter()
        report = erasure.forget(spark, settings, wh, [customer], keys, datetime.now(timezone.utc))
        seconds = time.perf_counter() - started
        jobs = scheduler.nextJobId() - jobs
        left = erasure.files_mentioning(wh.root, needles)
    return {"seconds": seconds, "jobs": jobs, "left": len(left),
            "erased": (sorted(report.rows_deleted.items()), sorted(report.rows_scrubbed.items()))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.erasure_side_by_side", description=__doc__.splitlines()[0])
    p.add_argument("warehouse", type=Path)
    p.add_argument("rev", help="the earlier commit")
    p.add_argument("--rounds", type=int, default=4, help="rounds; each runs both versions (default 4)")
    p.add_argument("--customer", help="customer id to forget (default: the one with the most identity links)")
    p.add_argument("--test-settings", action="store_true", help="the test session's Spark settings")
    args = p.parse_args(argv)

    from pyspark.sql import functions as F

    from pipelines import io
    from pipelines.config import load_settings
    from pipelines.privacy.keys import load_keys, new_key_file
    from pipelines.rights import erasure as current
    from benchmarks.profile_example import TEST_CONF
    from pipelines.spark import build_session

    earlier = earlier_module(args.rev)
    settings = load_settings()
    spark = build_session(settings.spark, **(TEST_CONF if args.test_settings else {}))
    source = args.warehouse.resolve()
    customer = args.customer or (
        io.read(spark, source / "silver" / "identity_links").groupBy("customer_id").count()
        .orderBy(F.desc("count"), "customer_id").first().customer_id)
    versions = {args.rev: earlier, "current": current}
    results: dict[str, list[dict]] = {label: [] for label in versions}
    with tempfile.TemporaryDirectory() as tmp:
        new_key_file(Path(tmp) / "keys.json", ("adsdata",))
        keys = load_keys(Path(tmp) / "keys.json")
        for n in range(args.rounds):
            order = list(versions) if n % 2 == 0 else list(reversed(versions))
            for label in order:
                r = one_round(spark, settings, versions[label], source, customer, keys)
                results[label].append(r)
                print(f"round {n + 1} {label:>10}: {r['seconds']:7.2f} s, {r['jobs']:4d} Spark jobs, "
                      f"{sum(k for _, k in r['erased'][0])} rows deleted, {r['left']} files mentioning the person",
                      flush=True)
    runs = [r for rs in results.values() for r in rs]
    if any(r["left"] for r in runs):
        raise SystemExit("a version left files mentioning the person: not a valid comparison")
    if len({repr(r["erased"]) for r in runs}) != 1:
        raise SystemExit("the versions erased different rows: not a valid comparison")

    print(f"\nmachine: {platform.platform()}, {platform.machine()}, python {platform.python_version()}, "
          f"spark {spark.version}; settings: {'the test session' if args.test_settings else 'conf/'}; "
          f"ERASURE_THREADS {current.ERASURE_THREADS}; commit {_git('rev-parse', '--short', 'HEAD').stdout.strip()}"
          f"{' (files differ)' if _git('diff', '--quiet', 'HEAD').returncode else ''}\n")
    print("| version | median s (rounds 2+) | all rounds s | Spark jobs |")
    print("|---|---:|---|---:|")
    medians = {}
    for label, rs in results.items():
        kept = rs[1:] or rs  # round 1 pays the JVM warm-up
        medians[label] = statistics.median(r["seconds"] for r in kept)
        rounds = ", ".join(f"{r['seconds']:.2f}" for r in rs)
        print(f"| {label} | {medians[label]:.2f} | {rounds} | {rs[-1]['jobs']} |")
    print(f"\ncurrent / {args.rev}: {medians['current'] / medians[args.rev]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
