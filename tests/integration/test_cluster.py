"""The daily job through ``spark-submit`` on a Spark standalone cluster that loses a worker mid-run (issue 10).

A master and two one-core workers are started from pyspark's own distribution (``spark-class``, loopback, free
ports, work directories under the test's temporary folder). The job is submitted exactly as an operator would
(``spark-submit ... pipelines/jobs/submit.py run ...``); when the run reaches the profiles, one worker is killed
with SIGKILL together with its executor (its whole process group). The run must still succeed, Spark's event log
must show the executor lost, and every gold table must equal that of a local run on the same landing zone
(the shared end-to-end run's first day, ``first_run`` in ``tests/conftest.py``: the same files, keys and as-of).
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import pyspark
import pytest

from benchmarks.run import gold_checksums as bench_gold_checksums
from pipelines import jars

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SPARK_HOME = Path(pyspark.__file__).resolve().parent
AS_OF = date(2026, 11, 23)  # the shared end-to-end run's first day (tests/conftest.py)
#: The stage whose start triggers the kill: late enough that executors hold shuffle files and cached blocks
#: of the run, early enough that most of the run is still ahead.
KILL_AT = "[audience] profile aggregates ..."
RUN_TIMEOUT = 1500


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYSPARK_GATEWAY", "SPARK_MASTER_OVERRIDE"))}
    env.update(SPARK_HOME=str(SPARK_HOME), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
               PYSPARK_DRIVER_PYTHON=sys.executable, **extra)
    return env


def _wait_for(path: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and re.search(pattern, path.read_text(errors="replace")):
            return
        if proc.poll() is not None:
            raise AssertionError(f"{path.name}: process exited ({proc.returncode}):\n{path.read_text()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{path.name}: no {pattern!r} within {timeout}s:\n{path.read_text()[-3000:]}")


class StandaloneCluster:
    """A Spark standalone master and ``workers`` one-core workers on loopback, each in its own process group."""

    def __init__(self, base: Path, workers: int = 2, worker_memory: str = "2g") -> None:
        self.base, self.n_workers, self.worker_memory = base, workers, worker_memory
        self.port = _free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.master: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.logs: list[Path] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        log = self.base / f"{name}.log"
        self.logs.append(log)
        with open(log, "wb") as out:
            return subprocess.Popen([str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=out,
                                    stderr=subprocess.STDOUT, env=_env(), start_new_session=True)

    def __enter__(self) -> "StandaloneCluster":
        self.base.mkdir(parents=True, exist_ok=True)
        self.master = self._start("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                  "--port", str(self.port), "--webui-port", str(_free_port()))
        _wait_for(self.logs[0], r"I have been elected leader|Starting Spark master", self.master)
        for i in range(self.n_workers):
            work = self.base / f"worker-{i}"
            work.mkdir()
            self.workers.append(self._start(
                f"worker-{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "1",
                "--memory", self.worker_memory, "--webui-port", str(_free_port()), "--work-dir", str(work),
                self.url))
        for i, proc in enumerate(self.workers):
            _wait_for(self.base / f"worker-{i}.log", r"Successfully registered with master", proc)
        return self

    def kill_worker(self, i: int) -> None:
        """SIGKILL the worker and everything it started (its executor and the executor's Python workers)."""
        os.killpg(self.workers[i].pid, signal.SIGKILL)
        self.workers[i].wait(timeout=30)

    def __exit__(self, *exc) -> None:
        for proc in [*self.workers, self.master]:
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=30)


def submit_command(cluster: StandaloneCluster, events: Path, landing: Path, warehouse: Path) -> list[str]:
    """``spark-submit`` of the daily job as the README documents it (client mode, Delta jars from the cache)."""
    conf = {
        "spark.executor.cores": "1", "spark.cores.max": "2", "spark.executor.memory": "1g",
        "spark.pyspark.python": sys.executable, "spark.pyspark.driver.python": sys.executable,
        "spark.driver.host": "127.0.0.1",
        # Start only when both executors are up, so the kill hits an executor that holds part of the run.
        "spark.scheduler.minRegisteredResourcesRatio": "1.0",
        "spark.scheduler.maxRegisteredResourcesWaitingTime": "120s",
        # Plain JSON lines (Spark 4 rolls and compresses by default), read back by executors_removed().
        "spark.eventLog.enabled": "true", "spark.eventLog.dir": events.as_uri(),
        "spark.eventLog.rolling.enabled": "false", "spark.eventLog.compress": "false",
    }
    cmd = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", cluster.url, "--deploy-mode", "client",
           "--driver-memory", "2g", "--jars", ",".join(str(p) for p in jars.jar_paths())]
    for key, value in conf.items():
        cmd += ["--conf", f"{key}={value}"]
    return cmd + [str(ROOT / "pipelines" / "jobs" / "submit.py"), "run", "--landing", str(landing),
                  "--warehouse", str(warehouse), "--as-of", AS_OF.isoformat()]


def run_with_kill(cmd: list[str], env: dict[str, str], log: Path, on_line) -> int:
    """Run ``cmd``, copying its output to ``log`` and calling ``on_line`` with every line (the kill trigger)."""
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
                                start_new_session=True)
        timer = threading.Timer(RUN_TIMEOUT, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            for line in proc.stdout:
                out.write(line)
                out.flush()
                on_line(line)
            return proc.wait()
        finally:
            timer.cancel()


def executors_removed(events: Path) -> list[dict]:
    """``SparkListenerExecutorRemoved`` events of every application logged under ``events``."""
    removed = []
    for f in sorted(p for p in events.rglob("*") if p.is_file()):
        for line in f.read_text(errors="replace").splitlines():
            if '"SparkListenerExecutorRemoved"' in line:
                removed.append(json.loads(line))
    return removed


def gold_checksums(spark, warehouse: Path) -> dict[str, dict]:
    """The benchmark's checksums of every gold table; a table it could not checksum fails the test."""
    sums = bench_gold_checksums(spark, warehouse)
    failed = {name: v["error"] for name, v in sums.items() if "error" in v}
    assert not failed, f"gold tables of {warehouse} could not be checksummed: {failed}"
    return sums


@pytest.fixture()
def cluster_landing(first_run, tmp_path):
    """The landing zone of the shared end-to-end run's first day (150 customers, 3 days), in a folder of its own."""
    from conftest import deliver

    landing = tmp_path / "landing"
    deliver(first_run.generated, landing, AS_OF)
    return landing


def test_daily_run_survives_a_lost_worker_with_outputs_identical_to_a_local_run(
        spark, first_run, cluster_landing, tmp_path):
    # The local run of the same files, keys and as-of is the shared end-to-end run's first day (tests/conftest.py):
    # built once per session, its gold tables kept as it published them.
    assert first_run.result.status == "succeeded" and first_run.result.as_of == AS_OF
    keys_file = first_run.keys_file

    events = tmp_path / "events"
    events.mkdir()
    warehouse = tmp_path / "wh-cluster"
    killed: dict[str, float] = {}
    with StandaloneCluster(tmp_path / "cluster") as cluster:
        def on_line(line: str) -> None:
            if KILL_AT in line and not killed:
                time.sleep(2)  # let the stage's first tasks start on both executors
                cluster.kill_worker(0)
                killed["at"] = time.monotonic()

        log = tmp_path / "submit.log"
        rc = run_with_kill(submit_command(cluster, events, cluster_landing, warehouse),
                           _env(AUDIENCE_KEYS=str(keys_file)), log, on_line)
        output = log.read_text()
        assert rc == 0, f"spark-submit failed ({rc}):\n{output[-5000:]}"
        assert killed, f"the run never reached {KILL_AT!r}:\n{output[-3000:]}"
        assert cluster.workers[0].poll() is not None and cluster.workers[1].poll() is None
    assert re.search(rf"run \S+ succeeded as of {AS_OF}", output), output[-3000:]
    # The master was not told "local": the job ran on the cluster's executors, and one of them was lost.
    removed = executors_removed(events)
    assert removed, "Spark's event log shows no executor lost: the kill did not hit the running job"
    assert any("lost" in str(e.get("Removed Reason", "")).lower() for e in removed), removed

    local_sums = gold_checksums(spark, first_run.gold_copy)
    cluster_sums = gold_checksums(spark, warehouse)
    assert set(cluster_sums) == set(local_sums)
    different = {name: (local_sums[name], cluster_sums[name]) for name in local_sums
                 if local_sums[name] != cluster_sums[name]}
    assert not different, f"gold tables differ between the local and the cluster run: {different}"
    assert sum(v["rows"] for v in local_sums.values()) > 0
