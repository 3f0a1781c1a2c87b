"""``audience demo``: generate a landing zone, create development keys, run the daily job, show the outputs."""
from __future__ import annotations

import os
import sys
from datetime import date, timedelta
from pathlib import Path

from pipelines.config import Settings


def run_demo(workdir: Path, *, customers: int, days: int, settings: Settings, end_date: date | None = None) -> int:
    """The main job on the embedded default: local Spark, local Delta tables, local MLflow."""
    from pipelines.generate.landing import GenerateOptions, generate_landing
    from pipelines.jobs.daily import run_daily
    from pipelines.privacy.keys import ENV_VAR, load_keys, new_key_file
    from pipelines.spark import build_session

    workdir = workdir.resolve()
    landing, warehouse, key_file = workdir / "landing", workdir / "warehouse", workdir / "dev-keys.json"
    end_date = end_date or date.today() - timedelta(days=1)
    spark = build_session(settings.spark)
    if not key_file.exists():
        # A development key file of the demo's own; real deployments create theirs with `audience keys new`.
        new_key_file(key_file, tuple(settings.adsdata.recipients))
    os.environ[ENV_VAR] = str(key_file)
    if not landing.exists():
        print(f"[audience] generating {customers} customers x {days} days into {landing}", file=sys.stderr)
        generate_landing(spark, landing, GenerateOptions(customers=customers, days=days, end_date=end_date), settings)
    result = run_daily(spark, settings, landing, warehouse, end_date, load_keys(key_file))
    print(f"\naudience demo: run {result.run_id} {result.status} as of {result.as_of}")
    print(f"  landing zone      {landing}")
    print(f"  warehouse         {warehouse}")
    for layer in ("bronze", "silver", "gold", "ops"):
        base = warehouse / layer
        if base.is_dir():
            for table in sorted(p for p in base.iterdir() if (p / "_delta_log").is_dir()):
                print(f"  {layer + '/' + table.name:28s} {table}")
    for extra, label in ((warehouse / "exports", "Ads & Data delivery"), (warehouse / "reports", "reports (HTML)"),
                         (warehouse / "ops" / "mlflow.db", "MLflow store")):
        if extra.exists():
            print(f"  {label:28s} {extra}")
    print(f"  {'development keys':28s} {key_file}  (export {ENV_VAR}={key_file})")
    timings = ", ".join(f"{k} {v:.0f}s" for k, v in result.timings.items() if v >= 1)
    print(f"  timings: {timings}")
    return 0
