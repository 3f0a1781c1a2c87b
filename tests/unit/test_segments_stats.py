"""Segments stage: membership equals hand-computed sets, published sizes are thresholded, labels and history."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import SegmentSettings
from pipelines.jobs.daily import RunContext
from pipelines.progress import Progress
from pipelines.segments.cli import cmd_preview
from pipelines.segments.preview import read_history, size_changes
from pipelines.segments.stats import SEGMENT_STATS, published_size, stage_segments

from segment_fixtures import AS_OF, profiles, write_definition

TV = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]
WEB = ["a1", "a3", "a6", "w8"]

DEFINITIONS = {
    "s_football": "channels: [tv, web]\npurpose: [tv_personalised_ads, web_profile, ads_and_data]\n"
                  "iab_audience_ids: [663]\nmin_audience: 1\nrule:\n  interest: {iab_audience_id: 663, min_score: 1.5}\n",
    "s_brussels": "channels: [tv]\npurpose: tv_personalised_ads\nmin_audience: 2\nrule:\n  region: [BE-BRU]\n",
    "s_garden": "channels: [web]\npurpose: web_profile\nmin_audience: 3\nrefresh: weekly\nrule:\n  has_garden: true\n",
    "s_broken": "channels: [tv]\npurpose: tv_personalised_ads\nmin_audience: 1\nrule:\n  religion: [any]\n",
}


@pytest.fixture(scope="module")
def seg_settings(settings, tmp_path_factory):
    folder = tmp_path_factory.mktemp("segments")
    for name, body in DEFINITIONS.items():
        write_definition(folder, name, body)
    return settings.replace(segments=SegmentSettings(path=str(folder), audience_threshold=2, audience_rounding=2,
                                                     min_audience_floor=1))


def eligibility(spark, tv_off=("a4",), web_off=("w8",)):
    ids = sorted(set(TV) | set(WEB))
    rows = [(c, c in TV and c not in tv_off, c in WEB and c not in web_off) for c in ids]
    return spark.createDataFrame(rows, "customer_id string, eligible_tv_profile boolean, eligible_web_profile boolean")


def run_stage(spark, settings, warehouse: Path, as_of=AS_OF, tv=TV, web=WEB, run_id="run-1"):
    ctx = RunContext(spark, settings, io.Warehouse(warehouse), warehouse / "landing", as_of, run_id,
                     datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc), keys=None, progress=Progress(quiet=True))
    ctx.outputs["tv_profiles"] = profiles(spark, list(tv), as_of)
    ctx.outputs["web_profiles"] = profiles(spark, list(web), as_of)
    stage_segments(ctx, eligibility(spark))
    return ctx


DAY2 = AS_OF + timedelta(days=1)


@pytest.fixture(scope="module")
def runs(spark, seg_settings, tmp_path_factory):
    """Three runs on one warehouse: day 1, day 1 again (rerun), day 2 after a1 left the TV profiles."""
    wh = tmp_path_factory.mktemp("wh")
    first = run_stage(spark, seg_settings, wh, run_id="run-1")
    rerun = run_stage(spark, seg_settings, wh, run_id="run-2")
    history_after_rerun = sorted(tuple(r) for r in read_history(spark, wh).groupBy("as_of").count().collect())
    day2 = run_stage(spark, seg_settings, wh, as_of=DAY2, tv=[c for c in TV if c != "a1"], run_id="run-3")
    for name in ("tv_profiles", "web_profiles"):  # what the run would publish: read by the preview
        io.overwrite(day2.outputs[name], wh / "gold" / name)
    return {"wh": wh, "first": first, "rerun": rerun, "history_after_rerun": history_after_rerun}


def test_membership_equals_the_hand_computed_sets(runs):
    membership = runs["first"].outputs["segment_membership"]
    assert sorted(tuple(r) for r in membership.collect()) == sorted([
        ("s_brussels", "tv", "a1", AS_OF), ("s_brussels", "tv", "a2", AS_OF),
        ("s_football", "tv", "a1", AS_OF), ("s_football", "web", "a1", AS_OF),
        ("s_garden", "web", "a1", AS_OF), ("s_garden", "web", "a3", AS_OF), ("s_garden", "web", "a6", AS_OF),
    ])
    # Every member is in the profiles of the segment's channel, and eligible for it (a4, w8 are not).
    for channel, ids in (("tv", set(TV) - {"a4"}), ("web", set(WEB) - {"w8"})):
        members = {r[0] for r in membership.where(F.col("channel") == channel).select("customer_id").collect()}
        assert members <= ids


def test_stats_publish_thresholded_sizes_only(runs):
    stats = runs["first"].outputs["segment_stats"]
    assert stats.schema == SEGMENT_STATS  # no exact count column
    label_dir = "reports/run-1/segments"
    got = sorted(tuple(r[c] for c in ("segment", "channel", "audience_size", "published", "min_audience",
                                       "audience_threshold", "audience_rounding", "purposes", "iab_audience_ids",
                                       "label_path", "run_id", "as_of")) for r in stats.collect())
    assert got == [
        ("s_brussels", "tv", 2, True, 2, 2, 2, ["tv_personalised_ads"], [], f"{label_dir}/s_brussels.json",
         "run-1", AS_OF),
        ("s_football", "tv", None, False, 1, 2, 2, ["tv_personalised_ads", "web_profile", "ads_and_data"], [663],
         f"{label_dir}/s_football.json", "run-1", AS_OF),
        ("s_football", "web", None, False, 1, 2, 2, ["tv_personalised_ads", "web_profile", "ads_and_data"], [663],
         f"{label_dir}/s_football.json", "run-1", AS_OF),
        # 3 gardens round down to 2, under the segment's own min_audience of 3: not published.
        ("s_garden", "web", None, False, 3, 2, 2, ["web_profile"], [], f"{label_dir}/s_garden.json", "run-1", AS_OF),
    ]
    # Metrics hold published sizes only; the invalid definition is skipped and counted.
    assert {k: v for k, v in runs["first"].metrics.items() if k.startswith("segments.")} == {
        "segments.s_brussels.tv": 2.0, "segments.definitions": 3.0, "segments.invalid": 1.0,
        "segments.published": 1.0, "segments.suppressed": 3.0,
    }


def test_transparency_labels_are_written(runs):
    reports = runs["wh"] / "reports" / "run-1" / "segments"
    assert sorted(p.name for p in reports.iterdir()) == [
        "index.html", "s_brussels.html", "s_brussels.json", "s_football.html", "s_football.json",
        "s_garden.html", "s_garden.json"]
    label = json.loads((reports / "s_brussels.json").read_text())
    assert label["segment"]["id"] == "s_brussels" and label["provider"]["name"] == "Proximus"
    assert label["audience"]["criteria"] == "region in BE-BRU"
    assert label["audience"]["size"] == {"tv": 2}
    assert label["audience"]["precision"] == {"tv": "Household (Pickx TV subscription; a decoder is shared by the "
                                                     "household)"}
    assert label["data"]["sources"] == ["Administrative data (customer record)"]
    assert label["data"]["lookback"] == {"profile attributes": "current value at the as-of date"}
    assert label["privacy"]["legal_basis"][0]["purpose"] == "tv_personalised_ads"
    assert label["privacy"]["legal_basis"][0]["basis"] == "legitimate_interest"
    football = json.loads((reports / "s_football.json").read_text())
    assert football["segment"]["taxonomy"]["ids"] == [{"id": 663, "name": "Interest | Sports | Soccer"}]
    assert football["audience"]["size"] == {"tv": "fewer than 2 (not published)", "web": "fewer than 2 (not published)"}
    assert football["data"]["lookback"] == {"interests": "91 days, recency-weighted (half-life 30 days)"}
    assert [b["basis"] for b in football["privacy"]["legal_basis"]] == ["legitimate_interest", "consent", "consent"]
    page = (reports / "index.html").read_text()
    assert page.count("<section id=") == 3 and "Interest | Sports | Soccer" in page


def test_history_keeps_one_snapshot_per_as_of(spark, runs):
    assert runs["history_after_rerun"] == [(AS_OF, 4)]  # the rerun replaced day 1
    last, previous, changes = size_changes(read_history(spark, runs["wh"]))
    assert (last, previous) == (DAY2, AS_OF)
    assert [(c.segment, c.channel, c.size, c.previous, c.change) for c in changes] == [
        ("s_brussels", "tv", None, 2, "now below threshold"),
        ("s_football", "tv", None, None, "unpublished"),
        ("s_football", "web", None, None, "unpublished"),
        ("s_garden", "web", None, None, "unpublished"),
    ]


def test_cmd_preview_shows_sizes_changes_and_branch_preview(runs, seg_settings, capsys):
    # The branch lowers s_garden's min_audience: only that definition is previewed (on the last profiles).
    write_definition(Path(seg_settings.segments.path), "s_garden",
                     DEFINITIONS["s_garden"].replace("min_audience: 3", "min_audience: 1"))
    assert cmd_preview(runs["wh"], seg_settings, None) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["segment", "channel", "as", "of", "2026-11-26", "previous", "(2026-11-25)", "change",
                              "branch", "preview"]
    assert [line.split() for line in out[1:]] == [
        ["s_brussels", "tv", "<", "2", "2", "now", "below", "threshold"],
        ["s_football", "tv", "<", "2", "<", "2", "unpublished"],
        ["s_football", "web", "<", "2", "<", "2", "unpublished"],
        # 4 gardens in the last web profiles (gold holds w8 here): rounded to 4, above the new floor of 2.
        ["s_garden", "web", "<", "2", "<", "2", "unpublished", "4"],
    ]


def test_cmd_preview_without_a_run(spark, seg_settings, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cmd_preview(tmp_path / "empty", seg_settings, None) == 1
    assert "no segment statistics" in capsys.readouterr().err


def test_missing_profiles_stop_the_stage(spark, seg_settings, tmp_path):
    ctx = RunContext(spark, seg_settings, io.Warehouse(tmp_path), tmp_path, AS_OF, "r", datetime.now(timezone.utc),
                     keys=None, progress=Progress(quiet=True))
    with pytest.raises(RuntimeError, match="tv_profiles, web_profiles"):
        stage_segments(ctx, eligibility(spark))


COUNTS = st.one_of(st.integers(0, 300), st.integers(0, 10**9))


@hsettings(max_examples=25, deadline=None)
@given(rows=st.lists(st.tuples(COUNTS, st.integers(0, 500)), min_size=1, max_size=30),
       threshold=st.integers(0, 200), rounding=st.integers(0, 100))
def test_no_published_size_is_small_or_exact(spark, rows, threshold, rounding):
    df = spark.createDataFrame(rows, "n long, min_audience int")
    got = [r[0] for r in df.select(published_size(F.col("n"), threshold, rounding, F.col("min_audience")))
           .collect()]
    step = max(rounding, 1)
    for (n, min_audience), size in zip(rows, got):
        floor = max(threshold, min_audience, 1)
        if size is None:
            assert n - n % step < floor  # suppressed only when the rounded size is under the floor
            continue
        assert size >= threshold and size >= min_audience and size >= 1  # never a small number
        assert size % step == 0 and size <= n < size + step  # rounded down, to the step
