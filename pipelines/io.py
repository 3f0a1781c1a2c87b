"""Storage: the only module that reads or writes tables and files of the warehouse.

Layout under ``<warehouse>/``: ``bronze/<source>``, ``silver/<source>``, ``silver/consent_state``,
``gold/<table>``, ``ops/<table>``, ``exports/``, ``reports/``. Every write is one Delta transaction, so a
failed run leaves no half-written table behind.

Example::

    >>> wh = Warehouse(Path("/tmp/wh"))
    >>> wh.table("gold", "tv_profiles")
    PosixPath('/tmp/wh/gold/tv_profiles')
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from delta.tables import DeltaTable
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType, TimestampType, _parse_datatype_string

LAYERS = ("bronze", "silver", "gold", "ops")


class WarehouseLocked(RuntimeError):
    """Another run holds the warehouse lock."""


@dataclass(frozen=True)
class Warehouse:
    """Paths of one warehouse (local folder or any Hadoop-compatible URI mounted as a path)."""

    root: Path

    def table(self, layer: str, name: str) -> Path:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        return self.root / layer / name

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def all_tables(self) -> list[Path]:
        """Every Delta table in the warehouse (folders holding a ``_delta_log``)."""
        found = []
        for layer in LAYERS:
            base = self.root / layer
            if base.is_dir():
                found += sorted(p for p in base.iterdir() if (p / "_delta_log").is_dir())
        return found

    @contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Exclusive lock for the duration of a run: a second run on the same warehouse refuses at once.

        ``flock`` is released by the kernel when the process dies, so a crashed run never leaves a stale lock.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / ".audience.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = os.pread(fd, 4096, 0).decode(errors="replace").strip() or "unknown"
                raise WarehouseLocked(
                    f"warehouse {self.root} is in use by another run ({holder}); wait for it to finish and retry"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": command,
                                      "since": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode(), 0)
            yield
        finally:
            os.close(fd)


def exists(spark: SparkSession, path: Path) -> bool:
    """True when ``path`` holds a Delta table."""
    return DeltaTable.isDeltaTable(spark, str(path))


def read(spark: SparkSession, path: Path, schema: StructType | None = None) -> DataFrame:
    """Read a Delta table; an absent table reads as empty with ``schema`` when one is given."""
    if exists(spark, path):
        return spark.read.format("delta").load(str(path))
    if schema is None:
        raise FileNotFoundError(f"no Delta table at {path}")
    return spark.createDataFrame([], schema)


def local_frame(spark: SparkSession, rows: Iterable[Sequence[Any] | Mapping[str, Any]],
                schema: StructType | str) -> DataFrame:
    """A small DataFrame of rows held by the driver (reference tables, bookkeeping rows), kept in the query plan.

    ``spark.createDataFrame(list_of_tuples, schema)`` makes an RDD that a Python worker pickles again every
    time a query reads it: on a local master each such scan waits about 0.4 s for Python, and a reference
    table joined by many queries pays it in each (most of a small profile computation's time, measured in
    ``benchmarks/results/2026-11-29-local-frames.md``). Built through Arrow instead, the rows become a
    ``LocalRelation``: the JVM reads them without Python. Rows are tuples in schema order, ``Row`` objects or
    dicts keyed by column name; a value that does not fit its column type raises (as ``createDataFrame``
    does). Timestamps of top-level columns are read as ``createDataFrame`` reads them (an aware ``datetime`` in
    its zone, a naive one in the machine's local time); nested ones must be aware and in UTC. Not for personal
    identifiers: erasure keeps those out of query plans (:mod:`pipelines.rights.erasure`).
    """
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema

    struct = schema if isinstance(schema, StructType) else _parse_datatype_string(schema)
    names = struct.fieldNames()
    instants = [f.name for f in struct.fields if isinstance(f.dataType, TimestampType)]
    records = [dict(r) if isinstance(r, Mapping) else (r.asDict() if hasattr(r, "asDict") else dict(zip(names, r)))
               for r in rows]
    for record in records:  # as createDataFrame reads them: aware in their zone, naive in the machine's local time
        for name in instants:
            if isinstance(record.get(name), datetime):
                record[name] = record[name].astimezone(timezone.utc)
    return spark.createDataFrame(pa.Table.from_pylist(records, schema=to_arrow_schema(struct)), struct)


def materialise(df: DataFrame) -> DataFrame:
    """Compute ``df`` once and cut its lineage: later plans that use it start from the stored rows.

    Why: the stages build on each other's outputs (profiles -> segments -> Ads & Data), and a DataFrame used
    in several branches is expanded in every one of them; without a cut, query plans grow exponentially and
    Spark spends minutes just describing them. A reliable checkpoint is used when the SparkContext has a
    checkpoint directory (``run_daily`` sets one under the warehouse on a cluster, so a lost executor cannot lose
    the rows); otherwise a local checkpoint (executor storage; what a local master needs). A reliable checkpoint
    writes the rows in a second job after the first computed them, so they are cached in between: without the
    cache Spark computes the whole plan twice.
    """
    if df.sparkSession.sparkContext.getCheckpointDir():
        cached = df.persist(StorageLevel.MEMORY_AND_DISK)
        try:
            return cached.checkpoint(eager=True)
        finally:
            cached.unpersist()
    return df.localCheckpoint(eager=True)


def overwrite(df: DataFrame, path: Path, partition_by: tuple[str, ...] = ()) -> None:
    """Replace a table's content in one transaction (schema may evolve)."""
    writer = df.write.format("delta").mode("overwrite").option("overwriteSchema", "true")
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    writer.save(str(path))


def replace_where(df: DataFrame, path: Path, condition: str, partition_by: tuple[str, ...] = ()) -> None:
    """Atomically replace the rows matching ``condition`` (e.g. one ``as_of``) — idempotent reruns."""
    spark = df.sparkSession
    if not exists(spark, path):
        overwrite(df, path, partition_by)
        return
    df.write.format("delta").mode("overwrite").option("replaceWhere", condition).save(str(path))


def append(df: DataFrame, path: Path, partition_by: tuple[str, ...] = ()) -> None:
    """Append in one transaction, creating the table on first use."""
    writer = df.write.format("delta").mode("append").option("mergeSchema", "true")
    if partition_by and not exists(df.sparkSession, path):
        writer = writer.partitionBy(*partition_by)
    writer.save(str(path))


def insert_new(df: DataFrame, path: Path, keys: tuple[str, ...]) -> None:
    """Insert rows whose ``keys`` are not in the table yet (MERGE): replaying a batch adds nothing."""
    spark = df.sparkSession
    if not exists(spark, path):
        overwrite(df, path)
        return
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    (DeltaTable.forPath(spark, str(path)).alias("t")
     .merge(df.alias("s"), cond).whenNotMatchedInsertAll().execute())


def upsert(df: DataFrame, path: Path, keys: tuple[str, ...], newer_than: str | None = None) -> None:
    """MERGE on ``keys``: insert new rows; update matched ones (only when ``s.newer_than > t.newer_than``)."""
    spark = df.sparkSession
    if not exists(spark, path):
        overwrite(df, path)
        return
    cond = " AND ".join(f"t.`{k}` <=> s.`{k}`" for k in keys)
    merge = DeltaTable.forPath(spark, str(path)).alias("t").merge(df.alias("s"), cond)
    update_cond = f"s.`{newer_than}` > t.`{newer_than}`" if newer_than else None
    merge.whenMatchedUpdateAll(condition=update_cond).whenNotMatchedInsertAll().execute()


def delete_where(spark: SparkSession, path: Path, condition) -> None:
    """Delete rows matching a Column or SQL condition (no-op when the table does not exist)."""
    if exists(spark, path):
        DeltaTable.forPath(spark, str(path)).delete(condition)


def list_landing_files(landing: Path, source: str) -> list[Path]:
    """Every delivered file of a source, recursively, in a stable order (hidden and temporary files skipped)."""
    base = landing / source
    if not base.is_dir():
        return []
    return sorted(
        p for p in base.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(base).parts)
    )
