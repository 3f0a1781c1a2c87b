"""benchmarks.stages_from_log: per-stage times of full runs read back from a --verbose log (no Spark)."""
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
