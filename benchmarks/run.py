"""The benchmark harness of issue 10: ``python -m benchmarks.run`` (``make benchmark``).

For every customer count (smallest first), in one process and one SparkSession:

1. generate ``days + 1`` days of landing data (:func:`pipelines.generate.landing.generate_landing`) and deliver
   the first ``days`` into a fresh landing zone;
2. **scan floor**: Spark reads every delivered landing file as text and counts the lines;
3. **full run**: :func:`pipelines.jobs.daily.run_daily` as of the last delivered day, ``full_refresh=True``;
4. **core TV profile**: the silver inputs exported to Parquet once, then the computation in Spark and as
   DuckDB SQL (:mod:`benchmarks.tv_core`), alternately, ``--repeats`` times each; outputs compared;
5. **incremental day**: day ``days + 1`` delivered, ``run_daily`` as of that day (not a full refresh).

Ratios (best of the repeats where there are repeats): (a) full run / scan floor, (b) Spark core / DuckDB core,
(c) incremental day / full run, (d) full run at the largest / at the smallest customer count. Results go to
``--out`` (JSON) and a markdown summary next to it; ``benchmarks/README.md`` explains every field.

Example::

    python -m benchmarks.run --quick                      # 100 and 200 customers, 5 days: tests the harness
    python -m benchmarks.run --customers 100000 1000000   # the issue's sizes (30 days)
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import shutil
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

from benchmarks import probe as probes
from benchmarks import tv_core

ROOT = probes.ROOT
DEFAULT_SIZES = (100_000, 1_000_000)
DEFAULT_DAYS = 30
QUICK_SIZES = (100, 200)
QUICK_DAYS = 5
DEFAULT_WORKDIR = ROOT / "benchmarks" / "data"   # git-ignored

#: First targets of issue 10. (d): no worse than linear, i.e. at most the ratio of the customer counts
#: (10 for 100k -> 1M).
TARGETS = {"a": 4.0, "b": 3.0, "c": 0.10}
RATIO_NAMES = {
    "a": "full daily run / scan floor (Spark reading and counting the same landing files)",
    "b": "core TV-profile computation: Spark / DuckDB SQL on the same Parquet",
    "c": "incremental day / full run",
    "d": "full run: largest / smallest customer count",
}


@dataclass(frozen=True)
class BenchmarkOptions:
    """What one benchmark run measures and where it writes."""

    customers: tuple[int, ...] = DEFAULT_SIZES
    days: int = DEFAULT_DAYS
    workdir: Path = DEFAULT_WORKDIR
    out: Path | None = None                      # default: benchmarks/results/<date>-<host>.json
    end_date: date | None = None                 # the incremental day; default: the generator's default end
    seed: int = 42
    repeats: int = 2                             # scan floor and core computation: best of this many
    reuse_data: bool = False                     # keep generated landing data between invocations
    quick: bool = False
    quiet_pipeline: bool = True                  # silence the daily run's per-stage progress lines
    incremental: bool = True                     # False: full runs only (ratio (c) not measured; hours saved)
    incremental_max_customers: int | None = None  # incremental day only at counts up to this (None: all)

    def __post_init__(self) -> None:
        if not self.customers or any(n < 1 for n in self.customers):
            raise ValueError(f"customer counts must be positive, got {self.customers}")
        if self.days < 1 or self.repeats < 1:
            raise ValueError("days and repeats must be at least 1")
        if self.incremental_max_customers is not None and self.incremental_max_customers < 1:
            raise ValueError(f"incremental_max_customers must be positive, got {self.incremental_max_customers}")

    def measures_incremental(self, customers: int) -> bool:
        """Whether the incremental day runs at ``customers`` (``--skip-incremental``, ``--incremental-max-customers``)."""
        limit = self.incremental_max_customers
        return self.incremental and (limit is None or customers <= limit)

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(sorted(set(self.customers)))

    def incremental_day(self) -> date:
        from pipelines.generate.landing import DEFAULT_END_DATE

        return self.end_date or DEFAULT_END_DATE

    def full_day(self) -> date:
        return self.incremental_day() - timedelta(days=1)

    def results_path(self) -> Path:
        if self.out is not None:
            return Path(self.out)
        return ROOT / "benchmarks" / "results" / f"{date.today().isoformat()}-{socket.gethostname()}.json"


def log(message: str) -> None:
    print(f"[benchmark] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _error(exc: BaseException) -> dict[str, str]:
    """A failed phase is recorded, not hidden; the harness goes on with what does not depend on it."""
    return {"error": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:500],
            "traceback_tail": "".join(traceback.format_exception(exc)[-3:])[-1500:]}


# ------------------------------------------------------------------------------------------------ landing


def day_of(path: Path) -> date | None:
    """The delivery day of a landing file (its ``date=YYYY-MM-DD`` folder)."""
    for part in path.parts:
        if part.startswith("date="):
            try:
                return date.fromisoformat(part[5:])
            except ValueError:
                return None
    return None


def deliver(generated: Path, landing: Path, first: date | None, last: date) -> int:
    """Hard-link (or copy) generated files of days ``first``..``last`` into ``landing``, as daily deliveries
    would arrive; returns the number of files delivered."""
    n = 0
    for f in sorted(generated.rglob("*")):
        day = day_of(f.relative_to(generated))
        if not f.is_file() or day is None or day > last or (first is not None and day < first):
            continue
        dest = landing / f.relative_to(generated)
        if dest.exists():
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(f, dest)
        except OSError:
            shutil.copy2(f, dest)
        n += 1
    return n


def generate(spark, settings, folder: Path, customers: int, days: int, end: date, seed: int,
             reuse: bool) -> dict[str, Any]:
    """Generate ``days`` days ending ``end`` into ``folder`` (or reuse a complete earlier generation)."""
    from pipelines.generate.landing import GenerateOptions, generate_landing

    marker = folder / "_GENERATED.json"
    wanted = {"customers": customers, "days": days, "end_date": end.isoformat(), "seed": seed}
    if reuse and marker.exists() and json.loads(marker.read_text()).get("options") == wanted:
        doc = json.loads(marker.read_text())
        return {"seconds": doc["seconds"], "rows": doc["rows"], "reused": True}
    if folder.exists():
        shutil.rmtree(folder)
    seconds, rows = timed(lambda: generate_landing(
        spark, folder, GenerateOptions(customers=customers, days=days, end_date=end, seed=seed), settings))
    marker.write_text(json.dumps({"options": wanted, "seconds": seconds, "rows": rows}, indent=1))
    return {"seconds": seconds, "rows": rows, "reused": False}


def scan_floor(spark, landing: Path) -> int:
    """Spark reading every landing file (all sources) as text and counting the lines: the I/O floor of a run."""
    sources = sorted(str(p) for p in landing.iterdir() if p.is_dir())
    return spark.read.option("recursiveFileLookup", "true").text(sources).count()


# ----------------------------------------------------------------------------------------------- daily runs


def _now_after(as_of: date) -> datetime:
    """The run's clock: 06:00 UTC the day after the as-of date (a nightly run; no event is in its future)."""
    return datetime.combine(as_of + timedelta(days=1), dtime(6), tzinfo=timezone.utc)


def measured_run(spark, settings, landing: Path, warehouse: Path, as_of: date, keys, *, full_refresh: bool,
                 probe: probes.MemoryProbe, quiet: bool) -> dict[str, Any]:
    """One ``run_daily``: end-to-end and per-stage seconds, rows ingested, rows/s/core, pseudonymisation share,
    peak memory. A failed run is recorded with its error (and the stages it got through)."""
    from pipelines.jobs.daily import run_daily
    from pipelines.progress import Progress

    progress = Progress(quiet=quiet)
    cores = probes.spark_cores(spark)
    probe.reset()
    start, wall_start = time.perf_counter(), time.time()
    try:
        result = run_daily(spark, settings, landing, warehouse, as_of, keys, now=_now_after(as_of),
                           full_refresh=full_refresh, progress=progress)
    except Exception as exc:  # noqa: BLE001  (recorded; the caller decides what can still be measured)
        out = _error(exc)
        out.update(seconds=time.perf_counter() - start, wall_seconds=time.time() - wall_start,
                   stages=dict(progress.timings), memory_mb=probe.peaks_mb(), status="failed")
        return out
    seconds, wall_seconds = time.perf_counter() - start, time.time() - wall_start
    rows = int(sum(v for k, v in result.metrics.items() if k.startswith("ingest.") and k.endswith(".rows")))
    pseudo = sum(v for k, v in result.timings.items() if k.startswith("adsdata pseudonymise"))
    return {
        "status": result.status, "run_id": result.run_id, "as_of": as_of.isoformat(), "full_refresh": full_refresh,
        "seconds": seconds, "wall_seconds": wall_seconds, "rows_ingested": rows,
        "rows_per_second_per_core": rows / seconds / cores if seconds > 0 else None,
        "stages": dict(result.timings),
        "pseudonymise_seconds": pseudo, "pseudonymise_share": pseudo / seconds if seconds > 0 else None,
        "memory_mb": probe.peaks_mb(),
        "metrics": {k: v for k, v in result.metrics.items()
                    if k.startswith(("ingest.", "funnel.", "profiles.", "adsdata."))},
    }


def gold_checksums(spark, warehouse: Path) -> dict[str, Any]:
    """Row count and checksum of every published (gold) table."""
    from pipelines import io

    gold = warehouse / "gold"
    out: dict[str, Any] = {}
    if not gold.is_dir():
        return out
    for table in sorted(p for p in gold.iterdir() if (p / "_delta_log").is_dir()):
        try:
            out[table.name] = probes.table_checksum(io.read(spark, table))
        except Exception as exc:  # noqa: BLE001
            out[table.name] = _error(exc)
    return out


# ------------------------------------------------------------------------------------------------ the core


def measure_core(spark, settings, warehouse: Path, folder: Path, as_of: date, repeats: int,
                 probe: probes.MemoryProbe) -> dict[str, Any]:
    """Export the inputs once, then Spark and DuckDB alternately ``repeats`` times; compare the outputs."""
    import duckdb

    from pipelines import io

    cores = probes.spark_cores(spark)
    inputs = tv_core.export_inputs(spark, io.Warehouse(warehouse), settings, folder / "inputs")
    viewing_rows = spark.read.parquet(str(inputs.viewing)).count()
    params = tv_core.CoreParams.from_settings(settings, as_of)
    con = duckdb.connect(config={"threads": cores, "preserve_insertion_order": False,
                                 "temp_directory": str(folder / "duckdb.tmp")})
    try:
        spark_times, duck_times = [], []
        for _ in range(repeats):
            probe.reset()
            spark_times.append(timed(lambda: tv_core.spark_tv_core(spark, inputs, params, folder / "spark"))[0])
            spark_memory = probe.peaks_mb()
            probe.reset()
            duck_times.append(timed(lambda: tv_core.duckdb_tv_core(con, inputs, params, folder / "duckdb"))[0])
            duck_memory = probe.peaks_mb()
        comparison = tv_core.compare_outputs(con, folder / "spark", folder / "duckdb")
        spark_sums = tv_core.checksums(con, folder / "spark")
        duck_sums = tv_core.checksums(con, folder / "duckdb")
    finally:
        con.close()
    best_spark, best_duck = min(spark_times), min(duck_times)
    return {
        "as_of": as_of.isoformat(), "viewing_rows": viewing_rows, "cores": cores, "duckdb_threads": cores,
        "spark_seconds": spark_times, "duckdb_seconds": duck_times,
        "spark_best_seconds": best_spark, "duckdb_best_seconds": best_duck,
        "spark_rows_per_second_per_core": viewing_rows / best_spark / cores if best_spark > 0 else None,
        "duckdb_rows_per_second_per_core": viewing_rows / best_duck / cores if best_duck > 0 else None,
        "spark_memory_mb": spark_memory, "duckdb_memory_mb": duck_memory,
        "checksums": {"spark": spark_sums, "duckdb": duck_sums},
        "comparison": comparison, "same_result": bool(comparison["equal"]),
    }


# ------------------------------------------------------------------------------------------------ one size


def measure_size(spark, settings, customers: int, opts: BenchmarkOptions, keys, probe: probes.MemoryProbe,
                 out: dict[str, Any] | None = None, save: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Every measurement at one customer count (see the module docstring for the order), filled into ``out``;
    ``save`` is called after every phase, so a run cut short (hours at 1M customers) keeps what it measured."""
    full_day, inc_day = opts.full_day(), opts.incremental_day()
    base = opts.workdir / f"c{customers}-d{opts.days}-s{opts.seed}-e{inc_day.isoformat()}"
    generated, landing, warehouse, core = (base / "generated", base / "landing", base / "warehouse",
                                           base / "core")
    out = {} if out is None else out
    out.update({"customers": customers, "days": opts.days, "full_run_as_of": full_day.isoformat(),
                "incremental_as_of": inc_day.isoformat(), "workdir": str(base)})

    log(f"{customers} customers: generating {opts.days + 1} days ending {inc_day}")
    out["generate"] = generate(spark, settings, generated, customers, opts.days + 1, inc_day, opts.seed,
                               opts.reuse_data)
    for folder in (landing, warehouse, core):
        if folder.exists():
            shutil.rmtree(folder)
    out["landing_files"] = deliver(generated, landing, None, full_day)
    save()

    log(f"{customers} customers: scan floor x{opts.repeats}")
    scans = [timed(lambda: scan_floor(spark, landing)) for _ in range(opts.repeats)]
    cores = probes.spark_cores(spark)
    best = min(s for s, _ in scans)
    out["scan_floor"] = {"seconds": [s for s, _ in scans], "best_seconds": best, "lines": scans[0][1],
                         "lines_per_second_per_core": scans[0][1] / best / cores if best > 0 else None}
    save()

    log(f"{customers} customers: full run as of {full_day} (full refresh)")
    out["full_run"] = measured_run(spark, settings, landing, warehouse, full_day, keys, full_refresh=True,
                                   probe=probe, quiet=opts.quiet_pipeline)
    full_ok = out["full_run"]["status"] == "succeeded"
    log(f"{customers} customers: full run {out['full_run']['status']} in {out['full_run']['seconds']:.1f}s"
        + ("" if full_ok else f": {out['full_run']['error']}"))
    out["checksums_full_run"] = gold_checksums(spark, warehouse)
    save()

    log(f"{customers} customers: core TV profile, Spark vs DuckDB x{opts.repeats}")
    try:
        out["core"] = measure_core(spark, settings, warehouse, core, full_day, opts.repeats, probe)
        log(f"{customers} customers: core Spark {out['core']['spark_best_seconds']:.2f}s, DuckDB "
            f"{out['core']['duckdb_best_seconds']:.2f}s, same result: {out['core']['same_result']}")
    except Exception as exc:  # noqa: BLE001  (e.g. the run failed before silver/eligibility was written)
        out["core"] = _error(exc)
        log(f"{customers} customers: core computation failed: {out['core']['error']}")
    save()

    if not opts.measures_incremental(customers):
        reason = ("--skip-incremental" if not opts.incremental
                  else f"--incremental-max-customers {opts.incremental_max_customers}")
        out["incremental_run"] = {"status": "not requested", "reason": reason, "seconds": None}
        out["checksums_incremental_run"] = {}
        return out
    out["incremental_files"] = deliver(generated, landing, inc_day, inc_day)
    if not full_ok:  # an incremental day after a failed full run would measure a different job
        out["incremental_run"] = {"status": "skipped", "reason": "the full run failed", "seconds": None}
        out["checksums_incremental_run"] = {}
        return out
    log(f"{customers} customers: incremental day {inc_day}")
    inc = measured_run(spark, settings, landing, warehouse, inc_day, keys, full_refresh=False, probe=probe,
                       quiet=opts.quiet_pipeline)
    out["incremental_run"] = inc
    log(f"{customers} customers: incremental run {inc['status']} in {inc['seconds']:.1f}s"
        + ("" if inc["status"] == "succeeded" else f": {inc['error']}"))
    out["checksums_incremental_run"] = gold_checksums(spark, warehouse)
    save()
    return out


# -------------------------------------------------------------------------------------------------- ratios


def _ratio(name: str, numerator: float | None, denominator: float | None, target: float | None,
           **detail: Any) -> dict[str, Any]:
    value = numerator / denominator if numerator is not None and denominator else None
    met = None if value is None or target is None else bool(value <= target)
    return {"name": RATIO_NAMES[name], "value": value, "target": target, "met": met,
            "verdict": "not measured" if met is None else ("met" if met else "not met"),
            "numerator_seconds": numerator, "denominator_seconds": denominator, **detail}


def _ok_seconds(run: dict[str, Any] | None) -> float | None:
    return run["seconds"] if run and run.get("status") == "succeeded" else None


def compute_ratios(sizes: list[dict[str, Any]]) -> dict[str, Any]:
    """Ratios (a)-(c) at the largest size (and per size), (d) between the largest and the smallest size.

    (c) comes from the largest size that ran an incremental day when the largest was left without one on purpose.
    """
    def per_size(size: dict[str, Any]) -> dict[str, dict[str, Any]]:
        core = size.get("core", {})
        full = _ok_seconds(size.get("full_run"))
        return {
            "a": _ratio("a", full, size.get("scan_floor", {}).get("best_seconds"), TARGETS["a"],
                        customers=size["customers"]),
            "b": _ratio("b", core.get("spark_best_seconds"), core.get("duckdb_best_seconds"), TARGETS["b"],
                        customers=size["customers"], same_result=core.get("same_result")),
            "c": _ratio("c", _ok_seconds(size.get("incremental_run")), full, TARGETS["c"],
                        customers=size["customers"]),
        }

    by_size = {str(s["customers"]): per_size(s) for s in sizes}
    largest, smallest = sizes[-1], sizes[0]
    ratios = dict(by_size[str(largest["customers"])])
    # An incremental day left out by option at the largest size (--incremental-max-customers) is not a failure:
    # (c) then comes from the largest size that ran one. A failed or skipped run stays "not measured".
    if (largest.get("incremental_run") or {}).get("status") == "not requested":
        ran = [s for s in sizes if _ok_seconds(s.get("incremental_run")) is not None]
        if ran:
            ratios["c"] = by_size[str(ran[-1]["customers"])]["c"]
    if len(sizes) > 1:
        ratios["d"] = _ratio("d", _ok_seconds(largest.get("full_run")), _ok_seconds(smallest.get("full_run")),
                             largest["customers"] / smallest["customers"],
                             customers=[smallest["customers"], largest["customers"]],
                             customer_ratio=largest["customers"] / smallest["customers"])
    else:
        ratios["d"] = _ratio("d", None, None, None, customers=[largest["customers"]],
                             note="needs two customer counts")
    ratios["per_size"] = by_size
    return ratios


# ------------------------------------------------------------------------------------------------ top level


def benchmark_keys(settings, workdir: Path = DEFAULT_WORKDIR):
    """The benchmarks' key ring, ``<workdir>/benchmark.keys.json``, made on first use and kept between
    invocations, so pseudonymised outputs (and checksums) repeat."""
    from pipelines.privacy.keys import load_keys, new_key_file

    key_file = workdir / "benchmark.keys.json"
    if not key_file.exists():
        new_key_file(key_file, tuple(settings.adsdata.recipients))
    return load_keys(key_file)


def run_benchmark(spark, settings, opts: BenchmarkOptions, command: str) -> dict[str, Any]:
    """Measure every size, compute the ratios, write the JSON results and the markdown summary; return them."""
    started = datetime.now(timezone.utc)
    opts.workdir.mkdir(parents=True, exist_ok=True)
    keys = benchmark_keys(settings, opts.workdir)
    probe = probes.MemoryProbe.for_session(spark)
    watch = probes.ClockWatch().start()
    result: dict[str, Any] = {
        "benchmark": "audience pipeline, issue 10",
        "command": command,
        "started_at": started.isoformat(timespec="seconds"),
        "options": {**{k: (str(v) if isinstance(v, (Path, date)) else v)
                       for k, v in dataclasses.asdict(opts).items()},
                    "customers": list(opts.sizes), "full_run_as_of": opts.full_day().isoformat(),
                    "incremental_as_of": opts.incremental_day().isoformat()},
        "machine": probes.machine(),
        "versions": probes.versions(spark),
        "git": probes.git_state(),
        "spark": probes.spark_settings(spark),
        "sizes": [],
    }
    out = opts.results_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    result["summary"] = str(out.with_suffix(".md"))

    def save(complete: bool = False) -> None:
        result["clock"] = watch.summary()
        write_results(result, probe, out, complete)

    try:
        for customers in opts.sizes:
            size: dict[str, Any] = {"customers": customers}
            result["sizes"].append(size)
            measure_size(spark, settings, customers, opts, keys, probe, size, save)
        save(complete=True)
    finally:
        watch.stop()
    return result


def write_results(result: dict[str, Any], probe: probes.MemoryProbe, out: Path, complete: bool) -> None:
    """Ratios and summaries of what is measured so far; the JSON at ``out`` and the markdown next to it.

    ``complete`` is false while sizes are still being measured (the files are rewritten after every phase).
    """
    result["complete"] = complete
    result["ratios"] = compute_ratios(result["sizes"])
    result["pseudonymisation"] = {
        str(s["customers"]): {
            "full_run_seconds": s.get("full_run", {}).get("pseudonymise_seconds"),
            "full_run_share": s.get("full_run", {}).get("pseudonymise_share"),
            "incremental_run_seconds": s.get("incremental_run", {}).get("pseudonymise_seconds"),
            "incremental_run_share": s.get("incremental_run", {}).get("pseudonymise_share"),
        } for s in result["sizes"]
    }
    result["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds") if complete else None
    result["load_average_at_end"] = probes.machine()["load_average"]
    result["peak_memory_mb"] = {"python_lifetime": probe.peaks_mb()["python_lifetime"]}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a file
    Path(result["summary"]).write_text(markdown(result), encoding="utf-8")


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _status(run: dict[str, Any]) -> str:
    status = run.get("status")
    return "" if status in (None, "succeeded") else f" ({status})"


def _stall_warning(clock: dict[str, Any] | None) -> list[str]:
    """A paragraph when the machine stalled during the run (:class:`benchmarks.probe.ClockWatch`): its times
    include the stall on the clock that saw it, so they are not to be trusted as they stand."""
    if not clock or not clock.get("stalls"):
        return []
    each = "; ".join(f"{s['at']}: {s['wall_seconds']} s by the wall clock, {s['monotonic_seconds']} s by the "
                     f"monotonic one" for s in clock["stalls"])
    return [f"**The machine stalled {len(clock['stalls'])} time(s) during this run** ({each}); the phases are timed "
            "with the monotonic clock: read the times of a phase that holds a stall with that in mind.", ""]


def markdown(result: dict[str, Any]) -> str:
    """A human summary of a result: ratios with verdicts (per size too), per-size figures, stage times per size."""
    m, v, g = result["machine"], result["versions"], result["git"]
    lines = [
        f"# Benchmark {result['started_at']} on {m['hostname']}",
        "",
        f"Command: `{result['command']}`",
        "",
        *([] if result.get("complete") else
          ["**Incomplete**: what was measured before the run stopped or while it is still going.", ""]),
        *_stall_warning(result.get("clock")),
        f"Machine: {m['cpu_model']}, {m['logical_cores']} logical cores ({m['usable_cores']} usable), "
        f"{m['ram_gb']} GB RAM; load average at start {m['load_average']}, at end {result['load_average_at_end']}.",
        f"Spark: master `{result['spark'].get('spark.master')}`, {result['spark']['cores']} cores, shuffle "
        f"partitions {result['spark'].get('spark.sql.shuffle.partitions')}, AQE "
        f"{result['spark'].get('spark.sql.adaptive.enabled')}, driver memory {result['spark'].get('spark.driver.memory')}.",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        f"Code: commit `{g.get('commit')}` ({g.get('dirty_files')} files differ from it).",
        "",
        "## Ratios",
        "",
        "| ratio | what | value | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for key in ("a", "b", "c", "d"):
        r = result["ratios"][key]
        at = f" (at {r['customers']:,} customers)" if key != "d" and isinstance(r.get("customers"), int) else ""
        lines.append(f"| ({key}) | {r['name']}{at} | {_fmt(r['value'], 3)} | ≤ {_fmt(r['target'], 2)} | {r['verdict']} |")
    per_size = result["ratios"].get("per_size", {})
    if len(per_size) > 1:  # (a)-(c) above are those of the largest size; a size cut short has none
        lines += ["", "Per customer count:", "", "| customers | (a) | (b) | (c) |", "|---|---|---|---|"]
        for customers, r in per_size.items():
            lines.append(f"| {int(customers):,} | " + " | ".join(
                f"{_fmt(r[k]['value'], 3)} ({r[k]['verdict']})" for k in ("a", "b", "c")) + " |")
    core = result["sizes"][-1].get("core", {})
    if "same_result" in core:
        lines += ["", f"Core computation, Spark and DuckDB: same result = **{core['same_result']}** "
                      f"(top-interest checksum {core['checksums']['spark']['top_checksum']} vs "
                      f"{core['checksums']['duckdb']['top_checksum']})."]
    lines += [
        "", "## Per customer count", "",
        "| customers | generate s | scan floor s | full run s | rows/s/core (full) | incremental s | core Spark s "
        "| core DuckDB s | pseudonymise share (full) | peak JVM MB (full) | peak Python MB (full) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["sizes"]:
        full, inc, c = s.get("full_run", {}), s.get("incremental_run", {}), s.get("core", {})
        mem = full.get("memory_mb", {})
        lines.append(
            f"| {s['customers']:,} | {_fmt(s.get('generate', {}).get('seconds'), 1)} "
            f"| {_fmt(s.get('scan_floor', {}).get('best_seconds'))} "
            f"| {_fmt(full.get('seconds'), 1)}{_status(full)} | {_fmt(full.get('rows_per_second_per_core'), 0)} "
            f"| {_fmt(inc.get('seconds'), 1)}{_status(inc)} "
            f"| {_fmt(c.get('spark_best_seconds'))} | {_fmt(c.get('duckdb_best_seconds'))} "
            f"| {_fmt(full.get('pseudonymise_share'), 4)} | {_fmt(mem.get('jvm'), 0)} | {_fmt(mem.get('python'), 0)} |")
    for s in result["sizes"]:
        for phase in ("full_run", "incremental_run"):
            if s.get(phase, {}).get("error"):
                lines += ["", f"**{s['customers']:,} customers, {phase} failed**: `{s[phase]['error']}`"]
        if s.get("core", {}).get("error"):
            lines += ["", f"**{s['customers']:,} customers, core computation failed**: `{s['core']['error']}`"]
    for size in result["sizes"]:  # every size that ran (a run cut short keeps what its smaller sizes measured)
        full_stages = size.get("full_run", {}).get("stages", {})
        inc_stages = size.get("incremental_run", {}).get("stages", {})
        if not (full_stages or inc_stages):
            continue
        lines += ["", f"## Stage seconds at {size['customers']:,} customers", "",
                  "| stage | full run | incremental day |", "|---|---|---|"]
        for stage in dict.fromkeys([*full_stages, *inc_stages]):
            lines.append(f"| {stage} | {_fmt(full_stages.get(stage))} | {_fmt(inc_stages.get(stage))} |")
        lines += ["", f"## Gold checksums at {size['customers']:,} customers (after the incremental day)", "",
                  "| table | rows | checksum |", "|---|---|---|"]
        for table, c in size.get("checksums_incremental_run", {}).items():
            lines.append(f"| {table} | {c.get('rows', '–')} | {c.get('checksum', c.get('error'))} |")
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------- CLI


def _counts(value: str) -> list[int]:
    try:
        counts = [int(v.replace("_", "")) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a customer count (or comma-separated counts): {value!r}") from None
    if not counts or any(n < 1 for n in counts):
        raise argparse.ArgumentTypeError(f"customer counts must be positive: {value!r}")
    return counts


def _count(value: str) -> int:
    counts = _counts(value)
    if len(counts) != 1:
        raise argparse.ArgumentTypeError(f"one customer count expected: {value!r}")
    return counts[0]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--customers", type=_counts, action="extend", nargs="+", default=None, metavar="N",
                   help="customer counts (repeatable, or a list: 100000 1000000 / 100000,1000000); "
                        "default 100000 and 1000000")
    p.add_argument("--days", type=int, default=None, help=f"days of history before the incremental day "
                                                          f"(default {DEFAULT_DAYS})")
    p.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="generated data, warehouses, exports")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (default benchmarks/results/<date>-<host>.json); markdown next to it")
    p.add_argument("--end-date", type=date.fromisoformat, default=None,
                   help="the incremental day (default: the generator's default end date)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--repeats", type=int, default=2, help="scan floor and core computation: best of N (default 2)")
    p.add_argument("--reuse-data", action="store_true", help="reuse generated landing data from an earlier run")
    p.add_argument("--quick", action="store_true",
                   help=f"{' and '.join(map(str, QUICK_SIZES))} customers, {QUICK_DAYS} days: tests the harness")
    p.add_argument("--master", default=None, help="Spark master (default: conf spark.master, e.g. local[2])")
    p.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (as `audience --conf`)")
    p.add_argument("--verbose", action="store_true", help="print the daily runs' per-stage progress lines")
    p.add_argument("--skip-incremental", action="store_true",
                   help="full runs only: ratio (c) is not measured (at 1M customers this saves about an hour)")
    p.add_argument("--incremental-max-customers", type=_count, default=None, metavar="N",
                   help="run the incremental day only at customer counts up to N (e.g. 100000: (c) at 100k, "
                        "full runs only at 1M, so (a)-(d) fit in one invocation)")
    return p


def options_from_args(args: argparse.Namespace) -> BenchmarkOptions:
    given = tuple(n for group in args.customers or () for n in group)  # "extend" collects one list per value
    customers = given or (QUICK_SIZES if args.quick else DEFAULT_SIZES)
    days = args.days if args.days is not None else (QUICK_DAYS if args.quick else DEFAULT_DAYS)
    return BenchmarkOptions(customers=customers, days=days, workdir=args.workdir.resolve(), out=args.out,
                            end_date=args.end_date, seed=args.seed, repeats=args.repeats,
                            reuse_data=args.reuse_data, quick=args.quick, quiet_pipeline=not args.verbose,
                            incremental=not args.skip_incremental,
                            incremental_max_customers=args.incremental_max_customers)


def main(argv: Sequence[str] | None = None) -> int:
    from pipelines.config import load_settings
    from pipelines.spark import build_session

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    opts = options_from_args(args)
    settings = load_settings(args.conf)
    if args.master:
        settings = settings.replace(spark=dataclasses.replace(settings.spark, master=args.master))
    command = shlex.join([os.path.relpath(sys.executable, Path.cwd()) if sys.executable else "python",
                          "-m", "benchmarks.run", *argv])
    spark = build_session(settings.spark, **{"spark.ui.enabled": "false"})
    try:
        result = run_benchmark(spark, settings, opts, command)
    finally:
        spark.stop()
    for key in ("a", "b", "c", "d"):
        r = result["ratios"][key]
        print(f"({key}) {r['name']}: {_fmt(r['value'], 3)} (target ≤ {_fmt(r['target'], 2)}): {r['verdict']}")
    for customers, share in result["pseudonymisation"].items():
        print(f"pseudonymisation at {int(customers):,} customers: {_fmt(share['full_run_share'], 4)} of the full run")
    print(f"results: {opts.results_path()}\nsummary: {result['summary']}")
    failed = failed_phases(result)
    for phase in failed:
        print(f"failed: {phase}", file=sys.stderr)
    return 1 if failed else 0


def failed_phases(result: dict[str, Any]) -> list[str]:
    """``<customers> <phase>: <error>`` for every phase that did not succeed (the exit status is 1 if any)."""
    out = []
    for s in result["sizes"]:
        for phase in ("full_run", "incremental_run", "core"):
            entry = s.get(phase, {})
            if entry.get("error") or entry.get("status") in ("failed", "skipped"):
                out.append(f"{s['customers']} customers, {phase}: {entry.get('error') or entry.get('reason')}")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
