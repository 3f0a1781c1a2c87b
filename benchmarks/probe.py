"""What a benchmark result must carry besides times: machine, versions, code version, memory, checksums.

Example::

    >>> machine()["logical_cores"] >= 1
    True
    >>> probe = MemoryProbe.for_session(spark)   # this Python process and Spark's driver JVM
    >>> probe.reset(); spark.range(10**6).count(); probe.peaks_mb()["jvm"] > 0
    True
"""
from __future__ import annotations

import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, MapType

if TYPE_CHECKING:
    from pipelines.config import Settings

ROOT = Path(__file__).resolve().parents[1]

#: Python distributions whose versions a result records.
PACKAGES = ("pyspark", "delta-spark", "duckdb", "pyarrow", "pandas", "great-expectations", "mlflow", "deltalake")


@contextmanager
def scratch_session(conf: Path | None, prefix: str) -> Iterator[tuple["Settings", SparkSession, Path]]:
    """For a one-off measurement script: the settings (conf/base, ``conf`` merged over it), a SparkSession
    without UI built from them, and a scratch folder; the session is stopped and the folder removed after."""
    from pipelines.config import load_settings
    from pipelines.spark import build_session

    settings = load_settings(conf)
    spark = build_session(settings.spark, **{"spark.ui.enabled": "false"})
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield settings, spark, scratch
    finally:
        spark.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _proc_field(path: str, name: str) -> str | None:
    try:
        for line in Path(path).read_text(errors="replace").splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine() -> dict[str, object]:
    """Host name, CPU model, logical cores (and those this process may use), RAM, OS, load average now."""
    mem_kb = _proc_field("/proc/meminfo", "MemTotal")
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "hostname": socket.gethostname(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gb": round(int(mem_kb.split()[0]) / 1024 / 1024, 1) if mem_kb else None,
        "os": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def versions(spark: SparkSession | None = None) -> dict[str, str]:
    """Python, the packages of :data:`PACKAGES`, and (given a session) Spark, Java and Scala as the JVM reports."""
    out = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    if spark is not None:
        out["spark"] = spark.version
        try:
            jvm = spark.sparkContext._jvm
            out["java"] = str(jvm.java.lang.System.getProperty("java.version"))
            out["scala"] = str(jvm.scala.util.Properties.versionNumberString())
        except Exception:  # Spark Connect or a restricted gateway: versions of the JVM unknown
            pass
    return out


def git_state(root: Path = ROOT) -> dict[str, object]:
    """Commit of the working tree and how many files differ from it (a dirty tree is stated, not hidden)."""
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(("git", "-C", str(root), *args), capture_output=True, text=True, timeout=30,
                                  check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = git("status", "--porcelain")
    return {"commit": git("rev-parse", "HEAD"), "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty_files": None if status is None else len([l for l in status.splitlines() if l.strip()])}


def spark_settings(spark: SparkSession) -> dict[str, object]:
    """The settings that decide performance: master, cores, shuffle partitions, adaptive execution, memory."""
    conf = spark.sparkContext.getConf()
    keys = ("spark.master", "spark.driver.memory", "spark.executor.memory", "spark.sql.shuffle.partitions",
            "spark.sql.adaptive.enabled", "spark.sql.autoBroadcastJoinThreshold", "spark.default.parallelism")
    out: dict[str, object] = {k: conf.get(k, None) for k in keys}
    out["spark.sql.shuffle.partitions"] = spark.conf.get("spark.sql.shuffle.partitions")
    out["spark.sql.adaptive.enabled"] = spark.conf.get("spark.sql.adaptive.enabled")
    out["cores"] = spark_cores(spark)
    return out


def spark_cores(spark: SparkSession) -> int:
    """Cores Spark computes with: ``local[N]`` -> N, ``local[*]`` -> logical cores, a cluster -> default parallelism."""
    master = spark.sparkContext.master
    if master.startswith("local"):
        inside = master[master.find("[") + 1:master.find("]")] if "[" in master else "1"
        n = inside.split(",")[0].strip()
        return (os.cpu_count() or 1) if n == "*" else int(n)
    return int(spark.sparkContext.defaultParallelism)


def jvm_pid(spark: SparkSession) -> int | None:
    """Process id of the driver JVM (None when it cannot be asked, e.g. Spark Connect)."""
    try:
        return int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:
        return None


@dataclass
class MemoryProbe:
    """Peak resident memory (VmHWM) of this Python process and the driver JVM between :meth:`reset` and now.

    Linux resets a process's high-water mark when ``5`` is written to ``/proc/<pid>/clear_refs``; where that is
    not allowed the peak is the peak since the process started (``resettable`` says which).
    In local mode the driver JVM also runs the executors, so its peak covers the whole computation.
    """

    pids: dict[str, int]
    resettable: bool = True

    @classmethod
    def for_session(cls, spark: SparkSession) -> "MemoryProbe":
        pids = {"python": os.getpid()}
        pid = jvm_pid(spark)
        if pid is not None:
            pids["jvm"] = pid
        return cls(pids)

    def reset(self) -> None:
        for pid in self.pids.values():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except OSError:
                self.resettable = False

    def peaks_mb(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {}
        for name, pid in self.pids.items():
            value = _proc_field(f"/proc/{pid}/status", "VmHWM")
            out[name] = round(int(value.split()[0]) / 1024, 1) if value else None
        # ru_maxrss: kilobytes on Linux; the lifetime peak of this Python process (cannot be reset).
        out["python_lifetime"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        out["since_reset"] = self.resettable
        return out


class ClockWatch:
    """Stalls of the machine while a benchmark runs: a thread wakes every ``interval`` seconds, and a wake that
    comes more than ``threshold`` seconds after the previous one, by the wall clock or the monotonic clock, is a
    stall (the machine was paused or starved: a virtual machine suspended between sessions, a host swapping).

    Why: the harness times phases with the monotonic clock, which a paused virtual machine may or may not advance;
    a result with a stall in it is flagged rather than trusted, and ``wall_minus_monotonic_seconds`` says which
    clock saw the pause. A busy Spark job delays the thread by milliseconds, far below the threshold.
    """

    def __init__(self, interval: float = 1.0, threshold: float = 30.0) -> None:
        if not 0 < interval < threshold:
            raise ValueError(f"need 0 < interval < threshold, got {interval} and {threshold}")
        self.interval, self.threshold = interval, threshold
        self.stalls: list[dict[str, object]] = []
        self._first: tuple[float, float] | None = None
        self._last: tuple[float, float] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def observe(self, wall: float, monotonic: float) -> None:
        """One wake at these clock readings (the thread calls it; tests call it with made-up readings)."""
        if self._last is not None:
            wall_gap, mono_gap = wall - self._last[0], monotonic - self._last[1]
            if max(wall_gap, mono_gap) > self.threshold:
                self.stalls.append({
                    "at": datetime.fromtimestamp(self._last[0], timezone.utc).isoformat(timespec="seconds"),
                    "wall_seconds": round(wall_gap, 1), "monotonic_seconds": round(mono_gap, 1)})
        else:
            self._first = (wall, monotonic)
        self._last = (wall, monotonic)

    def summary(self) -> dict[str, object]:
        drift = None
        if self._first is not None and self._last is not None:
            drift = round((self._last[0] - self._first[0]) - (self._last[1] - self._first[1]), 1)
        return {"interval_seconds": self.interval, "threshold_seconds": self.threshold, "stalls": list(self.stalls),
                "stalled_wall_seconds": round(sum(float(s["wall_seconds"]) for s in self.stalls), 1),
                "wall_minus_monotonic_seconds": drift}

    def start(self) -> "ClockWatch":
        def loop() -> None:
            while True:
                self.observe(time.time(), time.monotonic())
                if self._stop.wait(self.interval):
                    return

        self._thread = threading.Thread(target=loop, name="clock-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


#: Columns that differ between two runs of the same data by design (run ids, wall-clock instants).
VOLATILE_COLUMNS = frozenset({"run_id", "_run_id", "delivered_at", "generated_at", "_ingested_at", "label_path",
                              "started", "finished", "mlflow_run_id", "created_at", "updated_at_run"})


def _hashable(col: Column, dtype: DataType) -> Column:
    """``col`` in a form ``xxhash64`` accepts and that does not depend on a map's internal order: a map becomes
    its entries sorted by key (Spark refuses to hash maps, since equal maps may hash differently)."""
    if isinstance(dtype, MapType):
        return F.array_sort(F.map_entries(col))
    return col


def table_checksum(df: DataFrame) -> dict[str, object]:
    """Row count and an order-independent checksum (sum of ``xxhash64`` over every non-volatile column)."""
    columns = sorted(c for c in df.columns if c not in VOLATILE_COLUMNS)
    if not columns:
        return {"rows": df.count(), "checksum": "0", "columns": []}
    types = {f.name: f.dataType for f in df.schema.fields}
    hashed = [_hashable(F.col(c), types[c]) for c in columns]
    row = df.agg(F.count(F.lit(1)).alias("n"),
                 F.sum(F.xxhash64(*hashed).cast("decimal(38,0)")).alias("h")).first()
    return {"rows": int(row.n), "checksum": str(row.h if row.h is not None else 0), "columns": columns}
