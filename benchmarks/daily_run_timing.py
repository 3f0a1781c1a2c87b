"""Time one daily run on an existing landing zone, per stage: ``python -m benchmarks.daily_run_timing LANDING
WAREHOUSE AS_OF [KEYS]``.

The run is :func:`pipelines.jobs.daily.run_daily` with the settings from ``conf/`` (what ``audience demo`` and
``audience run`` use); WAREHOUSE should not exist yet (a first run, as in the demo). Prints the session start-up,
the run's total and its 25 longest stages. Results: ``benchmarks/results/daily-run-fixed-cost.md``.
"""
from __future__ import annotations

import os
import sys
import time
from datetime import date
from pathlib import Path


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        return 2
    from pipelines.config import load_settings
    from pipelines.jobs.daily import run_daily
    from pipelines.privacy.keys import ENV_VAR, load_keys, new_key_file
    from pipelines.spark import build_session

    landing, warehouse, as_of = Path(argv[0]), Path(argv[1]), date.fromisoformat(argv[2])
    key_file = Path(argv[3]) if len(argv) == 4 else warehouse.parent / "timing-keys.json"
    settings = load_settings()
    start = time.time()
    spark = build_session(settings.spark)
    print(f"session {time.time() - start:.1f} s", flush=True)
    if not key_file.exists():
        new_key_file(key_file, tuple(settings.adsdata.recipients))
    os.environ[ENV_VAR] = str(key_file)
    result = run_daily(spark, settings, landing, warehouse, as_of, load_keys(key_file))
    print(f"TOTAL {time.time() - start:.1f} s")
    for name, seconds in sorted(result.timings.items(), key=lambda kv: -kv[1])[:25]:
        print(f"{seconds:7.1f} {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
