"""benchmarks.stages_from_log (per-stage times of full runs read back from a --verbose log) and the harness's clock
watch (no Spark)."""
import time

import pytest

from benchmarks.stages_from_log import main, markdown, parse

LOG = """\
[benchmark] 100 customers: scan floor x2
[benchmark] 100 customers: full run as of 2026-11-24 (full refresh)
[audience] ingest tv_viewing ...
[audience] ingest tv_viewing done in 10.0s (files=3, rows=30, quarantined=0)
[audience] quality: inputs ...
[audience] quality silver/tv_viewing done in 2.0s (rows=30)
[audience] quality: inputs done in 3.0s
[audience] profiles done in 5.0s (tv=2, web=1, evidence=9)
[benchmark] 100 customers: full run succeeded in 20.0s
[audience] ingest tv_viewing done in 99.0s (files=3, rows=30, quarantined=0)
[benchmark] 1000 customers: full run as of 2026-11-24 (full refresh)
[audience] ingest tv_viewing done in 80.0s (files=3, rows=300, quarantined=0)
[audience] quality: inputs ...
[audience] quality silver/tv_viewing done in 15.0s (rows=300)
"""


def test_a_run_cut_short_gives_its_stages_and_a_lower_bound_of_d_without_nested_stages():
    small, big = parse(LOG.splitlines())
    assert (small.customers, small.status, small.seconds) == (100, "succeeded", 20.0)
    assert small.stages["ingest tv_viewing"] == 10.0  # the line after the run ended is not the run's
    assert small.stage_total == 18.0                   # the nested quality line is not added
    assert (big.status, big.running, big.stage_total) == (None, "quality: inputs", 80.0)
    text = markdown([small, big])
    assert "| ingest tv_viewing | 10.0 | 80.0 | 8.0 |" in text
    assert "in stage `quality: inputs`" in text
    assert "Ratio (d) is at least 4.00" in text and "not measured" in text


def test_two_ended_runs_give_d_and_a_single_run_is_an_error(tmp_path, capsys):
    ended = LOG + "[benchmark] 1000 customers: full run succeeded in 150.0s\n"
    assert "Ratio (d) = 7.50." in markdown(parse(ended.splitlines()))
    with pytest.raises(ValueError, match="two customer counts"):
        markdown(parse(LOG.splitlines()[:9]))
    log = tmp_path / "one.log"
    log.write_text("\n".join(LOG.splitlines()[:9]))
    assert main([str(log)]) == 1
    assert "two customer counts" in capsys.readouterr().err


def test_the_clock_watch_records_a_late_wake_by_either_clock_and_the_summary_says_so():
    from benchmarks.probe import ClockWatch
    from benchmarks.run import _stall_warning

    watch = ClockWatch(interval=1.0, threshold=30.0)
    for wall, mono in [(1000.0, 5.0), (1001.0, 6.0), (1002.5, 7.5)]:  # late by 0.5 s: load, not a stall
        watch.observe(wall, mono)
    assert watch.summary()["stalls"] == [] and _stall_warning(watch.summary()) == []
    watch.observe(1902.5, 8.5)   # paused 900 s: the wall clock saw it, the monotonic one did not
    watch.observe(1903.5, 49.5)  # starved 41 s by the monotonic clock
    summary = watch.summary()
    assert [(s["wall_seconds"], s["monotonic_seconds"]) for s in summary["stalls"]] == [(900.0, 1.0), (1.0, 41.0)]
    assert summary["wall_minus_monotonic_seconds"] == round((1903.5 - 1000.0) - (49.5 - 5.0), 1)
    text = " ".join(_stall_warning(summary))
    assert "stalled 2 time(s)" in text and "900.0 s by the wall clock" in text
    with pytest.raises(ValueError):
        ClockWatch(interval=5, threshold=5)


def test_the_clock_watch_thread_starts_and_stops():
    from benchmarks.probe import ClockWatch

    watch = ClockWatch(interval=0.01, threshold=10.0).start()
    time.sleep(0.1)
    watch.stop()
    assert watch.summary()["wall_minus_monotonic_seconds"] is not None and watch.summary()["stalls"] == []
