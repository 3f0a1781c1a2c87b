"""Ingestion of one source, this checkout's code against the code of an earlier commit, side by side.

Loads ``pipelines/sources/ingest.py`` as it was at ``REV`` (``git show``) next to the current one and ingests
the same landing files of ``SOURCE`` into a fresh warehouse with each, alternately, ``--repeats`` times, in one
Spark session, and prints the seconds of each run and the ratio of the best times (current / earlier). Used to
tell what storing bronze identifier tokens costs ingestion, which whole benchmark runs an hour apart could not
(their stage times differed by up to half on the same code).

    .venv/bin/python -m benchmarks.ingest_side_by_side LANDING SOURCE REV [--repeats 2] [--conf FILE]

Results and command: ``benchmarks/results/2026-11-27-ingest-side-by-side.md``.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType

from benchmarks.probe import scratch_session
from pipelines import io
from pipelines.sources import ingest as current
from pipelines.sources.reference_sets import reference_sets
from pipelines.sources.rules import load_source_rules


def module_at(rev: str, folder: Path) -> ModuleType:
    code = subprocess.run(["git", "show", f"{rev}:pipelines/sources/ingest.py"], check=True, capture_output=True,
                          text=True).stdout
    path = folder / f"ingest_{rev}.py"
    path.write_text(code, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"ingest_{rev}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.ingest_side_by_side", description=__doc__.splitlines()[0])
    p.add_argument("landing", type=Path)
    p.add_argument("source")
    p.add_argument("rev")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (as `audience --conf`)")
    args = p.parse_args(argv)
    with scratch_session(args.conf, "ingest-side-by-side-") as (settings, spark, scratch):
        variants = {args.rev: module_at(args.rev, scratch), "current": current}
        rules = load_source_rules(settings.conf_dir)[args.source]
        reference = reference_sets(settings)
        now = datetime.now(timezone.utc)
        seconds: dict[str, list[float]] = {name: [] for name in variants}
        rows = {}
        for i in range(args.repeats):
            for name, module in variants.items():
                wh = io.Warehouse(scratch / f"wh-{name}-{i}")
                start = time.perf_counter()
                # ingestion.max_batch_mb, for code that has it (batches of files, since 2026-11-27)
                batching = ({"max_batch_bytes": settings.ingestion.max_batch_bytes}
                            if "max_batch_bytes" in inspect.signature(module.ingest_source).parameters else {})
                result = module.ingest_source(spark, wh, args.landing, rules, reference, f"run-{i}", now,
                                              recover=False, **batching)
                seconds[name].append(time.perf_counter() - start)
                rows[name] = (result.rows, result.quarantined)
                print(f"{name}: {seconds[name][-1]:.1f} s ({result.rows} rows, {result.quarantined} quarantined)",
                      flush=True)
                shutil.rmtree(wh.root, ignore_errors=True)
        print("\n| code | seconds | best | rows, quarantined |\n|---|---|---|---|")
        for name in variants:
            print(f"| {name} | {', '.join(f'{s:.1f}' for s in seconds[name])} | {min(seconds[name]):.1f} | "
                  f"{rows[name][0]}, {rows[name][1]} |")
        print(f"\ncurrent / {args.rev}: {min(seconds['current']) / min(seconds[args.rev]):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
