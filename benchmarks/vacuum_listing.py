"""VACUUM of small Delta tables with Spark's default file-listing parallelism (10000 tasks) and with a small one.

Both variants run on the same warehouse, one after the other, each in its own SparkSession (the setting is read
when the session starts). Results and the commands that produced them: ``benchmarks/results/vacuum-listing.md``.

    .venv/bin/python -m benchmarks.vacuum_listing WAREHOUSE default
    .venv/bin/python -m benchmarks.vacuum_listing WAREHOUSE 4
"""
from __future__ import annotations

import sys
import time

from delta.tables import DeltaTable

from pipelines.config import load_settings
from pipelines.spark import build_session

TABLES = ("silver/customers", "bronze/customers", "silver/consent_events")


def main(warehouse: str, parallelism: str) -> None:
    extra = {} if parallelism == "default" else {"spark.sql.sources.parallelPartitionDiscovery.parallelism": parallelism}
    spark = build_session(load_settings().spark, **extra)
    spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
    for table in TABLES:
        started = time.time()
        DeltaTable.forPath(spark, f"{warehouse}/{table}").vacuum(0.0)
        print(f"parallelism={parallelism} {table} {time.time() - started:.1f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
