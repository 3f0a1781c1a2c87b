"""The one place a SparkSession is built: Delta enabled, jars from the project cache, settings from config.

Example::

    >>> from pipelines.config import load_settings
    >>> spark = build_session(load_settings().spark)
    >>> spark.range(1).count()
    1
"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pyspark.sql import SparkSession

from pipelines import jars
from pipelines.config import SparkSettings


def launched_by_spark_submit() -> bool:
    """Whether this Python process was started by a JVM (``spark-submit``, a notebook kernel of a cluster): the
    JVM is already up with its master and classpath, so ``spark.master`` of ``conf/`` must not override the
    ``--master`` given there (on a cluster, ``local[2]`` would silently run everything in the driver)."""
    return "PYSPARK_GATEWAY_PORT" in os.environ


def build_session(settings: SparkSettings, **extra_conf: str) -> SparkSession:
    """Return the active session, or build one with Delta Lake configured.

    On ``local[...]`` masters the Delta jars come from the cache filled by ``make setup``; on a cluster set
    ``spark.delta_jars: provided`` when the image already has them, or keep ``cache`` to ship them.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.appName(settings.app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.shuffle.partitions", str(settings.shuffle_partitions))
        .config("spark.ui.showConsoleProgress", "false")
        # New tables without deletion vectors: erasure and retention must remove deleted rows physically, so a
        # DELETE or MERGE that only wrote a vector was always followed by a REORG rewriting the same files (a
        # quarter of an erasure's time). Tables created with vectors are still purged (REORG ... APPLY (PURGE)).
        .config("spark.databricks.delta.properties.defaults.enableDeletionVectors", "false")
        # VACUUM lists files with this many tasks (Spark's default is 10000): on small tables the default made
        # each VACUUM of an erasure several times slower (benchmarks/results/vacuum-listing.md).
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", str(max(2, settings.shuffle_partitions)))
    )
    if os.environ.get("SPARK_MASTER_OVERRIDE"):
        builder = builder.master(os.environ["SPARK_MASTER_OVERRIDE"])
    elif settings.master and not launched_by_spark_submit():
        builder = builder.master(settings.master)
    if settings.delta_jars == "cache":
        missing = jars.missing_jars()
        if missing:
            raise RuntimeError(
                "Delta jars are missing from the cache (" + ", ".join(p.name for p in missing) + "): run `make setup`"
            )
        builder = builder.config("spark.jars", ",".join(str(p) for p in jars.jar_paths()))
    for key, value in {**settings.conf, **extra_conf}.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def session_conf(spark: SparkSession, conf: Mapping[str, str]) -> Iterator[None]:
    """Set runtime SQL settings for the block; each is restored (or unset) afterwards, also on error."""
    previous = {key: spark.conf.get(key, None) for key in conf}
    for key, value in conf.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
