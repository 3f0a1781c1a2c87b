"""The benchmark harness of issue 10: ratio (b)'s two engines against a hand computation, checksums, ratios.

Ratio (b) is only meaningful if Spark and DuckDB compute the same thing: both are checked here against the
formula of :mod:`pipelines.profiles.tv` computed by hand on hand-written viewing rows.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest
from pyspark.sql import functions as F

from benchmarks import run as bench
from benchmarks import tv_core
from benchmarks.probe import table_checksum
from pipelines import io

AS_OF = date(2026, 11, 24)
ACTION, ANIMALS = 468, 541   # conf/mappings/ctv_genre_to_audience.csv: Action -> 468, Animals -> 541


def _at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=timezone.utc)


#: (customer, start, seconds, genre). "c" is not eligible; the 200-days-old row is outside every window.
VIEWING = [
    ("a", _at(AS_OF), 7200, "Action"),
    ("a", _at(AS_OF - timedelta(days=10)), 3600, "Animals"),
    ("a", _at(AS_OF - timedelta(days=200)), 36000, "Animals"),
    ("b", _at(AS_OF), 7200, "Animals"),
    ("b", _at(AS_OF - timedelta(days=40)), 3600, "Action"),
    ("c", _at(AS_OF), 36000, "Action"),
]
ELIGIBLE = {"a": True, "b": True, "c": False}


def hand_scores(settings) -> dict[tuple[str, int, int], tuple[float, bool]]:
    """The formula of pipelines.profiles.tv, by hand: weight 2^((d - A) / h), windows A - w < d <= A,
    W(c, i), T(c), pop(i) = sum W / sum T, lift = (W / T) / pop, qualifies when W >= min and lift >= min_lift."""
    p = settings.profiles
    out = {}
    for window in p.lookback_days:
        w: dict[tuple[str, int], float] = {}
        for customer, start, seconds, genre in VIEWING:
            days_ago = (AS_OF - start.date()).days
            if not ELIGIBLE[customer] or days_ago >= window:
                continue
            weight = 2.0 ** (-days_ago / p.half_life_days)
            key = (customer, {"Action": ACTION, "Animals": ANIMALS}[genre])
            w[key] = w.get(key, 0.0) + seconds / 60.0 * weight
        totals = {c: sum(v for (cc, _), v in w.items() if cc == c) for c, _ in w}
        pop_total = sum(totals.values())
        for (c, i), weighted in w.items():
            pop = sum(v for (_, ii), v in w.items() if ii == i) / pop_total
            lift = weighted / totals[c] / pop
            out[(c, window, i)] = (round(lift, 4), weighted >= p.min_tv_minutes and lift >= p.min_lift)
    return out


@pytest.fixture()
def core_inputs(spark, settings, tmp_path):
    wh = io.Warehouse(tmp_path / "wh")
    viewing = spark.createDataFrame(
        [(c, s, d, g, None) for c, s, d, g in VIEWING],
        "customer_id string, start_ts timestamp, duration_s int, genre string, subgenre string")
    viewing.write.format("delta").save(str(wh.table("silver", "tv_viewing")))
    (spark.createDataFrame(list(ELIGIBLE.items()), "customer_id string, eligible_tv_profile boolean")
     .write.format("delta").save(str(wh.table("silver", "eligibility"))))
    return tv_core.export_inputs(spark, wh, settings, tmp_path / "inputs")


def test_spark_and_duckdb_cores_both_equal_the_hand_computation(spark, settings, core_inputs, tmp_path):
    params = tv_core.CoreParams.from_settings(settings, AS_OF)
    tv_core.spark_tv_core(spark, core_inputs, params, tmp_path / "spark")
    con = duckdb.connect()
    tv_core.duckdb_tv_core(con, core_inputs, params, tmp_path / "duckdb")
    expected = hand_scores(settings)
    assert any(q for _, q in expected.values()) and not all(q for _, q in expected.values())
    for engine in ("spark", "duckdb"):
        rows = con.execute(f"SELECT customer_id, window_days, iab_audience_id, score, qualifies FROM "
                           f"read_parquet('{tmp_path / engine / 'scores' / '*.parquet'}')").fetchall()
        got = {(c, w, i): (round(s, 4), q) for c, w, i, s, q in rows}
        assert got == expected, engine
    comparison = tv_core.compare_outputs(con, tmp_path / "spark", tmp_path / "duckdb")
    assert comparison["equal"], comparison
    # The comparison is not vacuous: one changed published score is found.
    con.execute(f"COPY (SELECT customer_id, [struct_pack(interest := i.interest, iab_audience_id := i.iab_audience_id,"
                f" score := i.score + 1) FOR i IN interests] AS interests FROM read_parquet("
                f"'{tmp_path / 'duckdb' / 'top' / '*.parquet'}')) TO '{tmp_path / 'changed.parquet'}'")
    (tmp_path / "duckdb" / "top" / "part-0.parquet").unlink()
    (tmp_path / "changed.parquet").rename(tmp_path / "duckdb" / "top" / "part-0.parquet")
    assert not tv_core.compare_outputs(con, tmp_path / "spark", tmp_path / "duckdb")["equal"]


def test_table_checksum_ignores_order_and_volatile_columns_and_hashes_maps(spark):
    rows = [("x", {"b": 2.0, "a": 1.0}, "run-1"), ("y", {"c": 3.0}, "run-1")]
    df = spark.createDataFrame(rows, "k string, shares map<string,double>, run_id string")
    same = spark.createDataFrame([(k, dict(reversed(list(m.items()))), "run-2") for k, m, _ in reversed(rows)],
                                 df.schema)
    changed = spark.createDataFrame([("x", {"b": 2.0, "a": 1.5}, "run-1"), rows[1]], df.schema)
    assert table_checksum(df) == table_checksum(same)
    assert table_checksum(df)["columns"] == ["k", "shares"]
    assert table_checksum(df) != table_checksum(changed)
    assert table_checksum(df.where(F.col("k") == "x"))["rows"] == 1


def test_ratios_verdicts_and_linear_scaling_target():
    def size(n, full, scan, inc, spark_s=2.0, duck_s=1.0):
        return {"customers": n, "scan_floor": {"best_seconds": scan},
                "full_run": {"status": "succeeded", "seconds": full},
                "incremental_run": {"status": "succeeded", "seconds": inc},
                "core": {"spark_best_seconds": spark_s, "duckdb_best_seconds": duck_s, "same_result": True}}

    r = bench.compute_ratios([size(100, 100.0, 50.0, 5.0), size(1000, 900.0, 300.0, 120.0, 4.0, 1.0)])
    assert r["a"]["value"] == pytest.approx(3.0) and r["a"]["verdict"] == "met"
    assert r["b"]["value"] == pytest.approx(4.0) and r["b"]["verdict"] == "not met"
    assert r["c"]["value"] == pytest.approx(120 / 900) and r["c"]["verdict"] == "not met"
    assert r["d"]["value"] == pytest.approx(9.0) and r["d"]["target"] == 10 and r["d"]["verdict"] == "met"
    failed = size(1000, 900.0, 300.0, 0.0)
    failed["full_run"] = {"status": "failed", "seconds": 10.0, "error": "boom"}
    r = bench.compute_ratios([size(100, 100.0, 50.0, 5.0), failed])
    assert r["a"]["verdict"] == "not measured" and r["d"]["verdict"] == "not measured"


def test_a_summary_cut_short_still_shows_the_ratios_and_stages_of_the_sizes_that_ran():
    """A 1M size stopped early must not hide what 100k measured: per-size ratios and stage tables."""
    small = {"customers": 100, "scan_floor": {"best_seconds": 2.0},
             "full_run": {"status": "succeeded", "seconds": 10.0, "stages": {"erasure": 4.0}},
             "incremental_run": {"status": "succeeded", "seconds": 5.0, "stages": {"erasure": 3.0}},
             "core": {"spark_best_seconds": 3.0, "duckdb_best_seconds": 1.0, "same_result": True},
             "checksums_incremental_run": {"gold/x": {"rows": 7, "checksum": 42}}}
    cut = {"customers": 1000, "generate": {"seconds": 9.0}, "scan_floor": {"best_seconds": 20.0}}
    result = {"started_at": "t", "command": "c", "complete": False, "git": {"commit": "x", "dirty_files": 0},
              "machine": {"hostname": "h", "cpu_model": "cpu", "logical_cores": 2, "usable_cores": 2, "ram_gb": 1,
                          "load_average": [0, 0, 0]},
              "load_average_at_end": [0, 0, 0], "versions": {}, "spark": {"cores": 2},
              "sizes": [small, cut]}
    result["ratios"] = bench.compute_ratios(result["sizes"])
    text = bench.markdown(result)
    assert "| (a) | full daily run" in text and "not measured" in text
    assert "| 100 | 5.000 (not met) | 3.000 (met) | 0.500 (not met) |" in text
    assert "## Stage seconds at 100 customers" in text and "| erasure | 4.00 | 3.00 |" in text
    assert "| gold/x | 7 | 42 |" in text
    assert "## Stage seconds at 1,000 customers" not in text


def test_incremental_day_can_be_limited_to_the_smaller_customer_counts():
    """(a)-(d) in one invocation: the incremental day at 100k, full runs only at 1M."""
    args = bench.build_parser().parse_args(["--customers", "100000,1000000", "--incremental-max-customers", "100_000"])
    opts = bench.options_from_args(args)
    assert opts.measures_incremental(100_000) and not opts.measures_incremental(1_000_000)
    everything = bench.options_from_args(bench.build_parser().parse_args(["--customers", "100000,1000000"]))
    assert everything.measures_incremental(1_000_000)
    skipped = bench.options_from_args(bench.build_parser().parse_args(
        ["--skip-incremental", "--incremental-max-customers", "100000"]))
    assert not skipped.measures_incremental(100)   # --skip-incremental wins
    sizes = [{"customers": 100, "full_run": {"status": "succeeded", "seconds": 100.0},
              "incremental_run": {"status": "succeeded", "seconds": 60.0}},
             {"customers": 1000, "full_run": {"status": "succeeded", "seconds": 700.0},
              "incremental_run": {"status": "not requested", "reason": "--incremental-max-customers 100"}}]
    r = bench.compute_ratios(sizes)
    assert r["c"]["value"] == pytest.approx(0.6) and r["c"]["customers"] == 100 and r["d"]["value"] == 7.0
    sizes[1]["incremental_run"] = {"status": "failed", "seconds": 5.0, "error": "boom"}
    assert bench.compute_ratios(sizes)["c"]["verdict"] == "not measured"   # a failure is not replaced
    with pytest.raises(SystemExit):
        bench.build_parser().parse_args(["--incremental-max-customers", "1,2"])
    with pytest.raises(ValueError, match="positive"):
        bench.BenchmarkOptions(incremental_max_customers=0)


def test_core_side_by_side_measures_at_the_full_runs_as_of_date_and_needs_a_commit():
    from benchmarks import core_side_by_side as sbs

    # The folder names the incremental day; benchmarks.run measured the core at the full run's date, a day earlier.
    assert sbs.as_of_of(Path("benchmarks/data/c100000-d30-s42-e2026-11-25")) == date(2026, 11, 24)
    with pytest.raises(SystemExit, match="--as-of"):
        sbs.as_of_of(Path("somewhere/else"))
    with pytest.raises(SystemExit):
        sbs.main(["benchmarks/data/c100-d5-s42-e2026-11-25"])   # no REV: refused before anything runs


def test_deliver_links_only_the_requested_days(tmp_path: Path):
    generated, landing = tmp_path / "generated", tmp_path / "landing"
    for day in ("2026-11-22", "2026-11-23", "2026-11-24"):
        f = generated / "tv_viewing" / f"date={day}" / "part.csv"
        f.parent.mkdir(parents=True)
        f.write_text(day)
    assert bench.deliver(generated, landing, None, date(2026, 11, 23)) == 2
    assert not (landing / "tv_viewing" / "date=2026-11-24").exists()
    assert bench.deliver(generated, landing, date(2026, 11, 24), date(2026, 11, 24)) == 1
    assert bench.deliver(generated, landing, None, date(2026, 11, 24)) == 0   # already delivered
    assert bench.day_of(Path("x/date=2026-11-24/part.csv")) == date(2026, 11, 24)
    assert bench.day_of(Path("x/date=bad/part.csv")) is None


def test_measured_run_reports_the_pseudonymisation_share(spark, monkeypatch, tmp_path):
    """Issue 5: the benchmark reports the share of a run spent pseudonymising (every recipient's stage)."""
    import time

    from benchmarks import probe as probes
    from pipelines.jobs import daily

    def fake_run(spark, settings, landing, warehouse, as_of, keys, **kwargs):
        time.sleep(0.4)
        return daily.RunResult("r1", as_of, "succeeded", {"ingest.tv_viewing.rows": 100.0},
                               {"adsdata pseudonymise adsdata": 0.1, "adsdata pseudonymise other": 0.1,
                                "adsdata profiles": 0.1}, ())

    monkeypatch.setattr(daily, "run_daily", fake_run)
    out = bench.measured_run(spark, None, tmp_path, tmp_path / "wh", AS_OF, None, full_refresh=True,
                             probe=probes.MemoryProbe.for_session(spark), quiet=True)
    assert out["pseudonymise_seconds"] == pytest.approx(0.2)
    assert out["pseudonymise_share"] == pytest.approx(0.2 / out["seconds"])
    assert 0.2 < out["pseudonymise_share"] < 0.5 and out["rows_ingested"] == 100


def test_the_daily_run_times_pseudonymisation_under_the_name_the_benchmark_reads(pipeline_run):
    """A renamed stage would make the benchmark report 0 % silently."""
    timings = pipeline_run.first.timings
    assert [k for k in timings if k.startswith("adsdata pseudonymise")] == ["adsdata pseudonymise adsdata"]
