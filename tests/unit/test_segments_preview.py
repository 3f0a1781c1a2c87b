"""Pull-request summary of changed segments (git diff against a base ref), labels and size formatting."""
from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, SegmentSettings
from pipelines.segments.catalogue import load_catalogue
from pipelines.segments.label import build_label, labels_html
from pipelines.segments.lint import validate_paths
from pipelines.segments.model import parse_file
from pipelines.segments.preview import SizeChange, format_table, markdown_diff

from segment_fixtures import write_definition

FOOTBALL = "channels: [tv]\npurpose: tv_personalised_ads\nmin_audience: 100\nrule:\n  interest: 663\n"
BRUSSELS = "channels: [tv, web]\npurpose: [tv_personalised_ads, web_profile]\nmin_audience: 100\nrule:\n" \
           "  region: [BE-BRU]\n"
GARDEN = "channels: [web]\npurpose: web_profile\nmin_audience: 100\nrule:\n  has_garden: true\n"


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.fixture()
def repo(tmp_path):
    """A throwaway git repository with two segments on its base commit."""
    seg = tmp_path / "segments"
    write_definition(seg, "football", FOOTBALL)
    write_definition(seg, "brussels", BRUSSELS)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "segments")
    git(tmp_path, "commit", "-q", "-m", "base")
    git(tmp_path, "tag", "base")
    return tmp_path


def test_markdown_summarises_added_modified_and_removed_segments(repo, settings):
    seg = repo / "segments"
    write_definition(seg, "football", FOOTBALL.replace("interest: 663", "interest: {iab_audience_id: 663, "
                                                                         "min_score: 1.5}"))
    (seg / "brussels.yaml").unlink()
    write_definition(seg, "garden", GARDEN.replace("min_audience: 100", "min_audience: 10"))
    conf = settings.replace(segments=SegmentSettings(path="segments"))
    catalogue = load_catalogue(settings.conf_dir)
    text = markdown_diff("base", settings=conf, catalogue=catalogue, validation=validate_paths([seg], conf, catalogue),
                         repo_root=repo, published={("football", "tv"): 1230, ("brussels", "tv"): None},
                         preview={("football", "tv"): 840, ("garden", "web"): None})
    assert text.splitlines() == [
        "## Segment changes against `base`",
        "",
        "| segment | change | channels | owner | last run | preview | checks |",
        "|---|---|---|---|---|---|---|",
        "| `brussels` | removed | tv, web | test-team | tv < 100 | - | removed |",
        "| `football` | modified | tv | test-team | tv 1230 | tv 840 | ok |",
        "| `garden` | added | web | test-team | - | web < 50 | 1 error(s) |",
        "",
        "### `brussels`: Brussels (removed)",
        "",
        "- **Criteria before:** region in BE-BRU",
        "",
        "### `football`: Football (modified)",
        "",
        "- **Criteria before:** interest Football fan (IAB 663)",
        "- **Criteria after:** interest Football fan (IAB 663) with score >= 1.5",
        "- **Purposes:** tv_personalised_ads; **min_audience:** 100; **refresh:** daily",
        "",
        "### `garden`: Garden (added)",
        "",
        "- **Criteria:** has_garden is yes",
        "- **Purposes:** web_profile; **min_audience:** 10; **refresh:** daily",
        f"- `{seg / 'garden.yaml'}:6: error: min_audience 10 is below the global floor of 50 "
        "(segments.min_audience_floor)`",
    ]


def test_markdown_without_changes(repo, settings):
    conf = settings.replace(segments=SegmentSettings(path="segments"))
    catalogue = load_catalogue(settings.conf_dir)
    text = markdown_diff("base", settings=conf, catalogue=catalogue,
                         validation=validate_paths([repo / "segments"], conf, catalogue), repo_root=repo)
    assert text == "## Segment changes against `base`\n\nNo segment definition changed.\n"


def test_markdown_with_an_unknown_base_ref_fails_clearly(repo, settings):
    conf = settings.replace(segments=SegmentSettings(path="segments"))
    catalogue = load_catalogue(settings.conf_dir)
    with pytest.raises(RuntimeError, match="git diff"):
        markdown_diff("no-such-ref", settings=conf, catalogue=catalogue,
                      validation=validate_paths([repo / "segments"], conf, catalogue), repo_root=repo)


def test_format_table_never_shows_a_suppressed_number():
    changes = [SizeChange("a_seg", "tv", 1230, 1200, True, True, 50),
               SizeChange("b_seg", "web", None, 60, True, True, 50),
               SizeChange("c_seg", "tv", 70, None, True, False, 50)]
    table = format_table(date(2026, 11, 25), date(2026, 11, 24), changes, {("b_seg", "web"): None})
    assert [line.split() for line in table.splitlines()] == [
        ["segment", "channel", "as", "of", "2026-11-25", "previous", "(2026-11-24)", "change", "branch", "preview"],
        ["a_seg", "tv", "1230", "1200", "+30"],
        ["b_seg", "web", "<", "50", "60", "now", "below", "threshold", "<", "50"],
        ["c_seg", "tv", "70", "-", "new"],
    ]


def test_label_of_a_shipped_segment(settings):
    catalogue = load_catalogue(settings.conf_dir)
    defn = parse_file(PROJECT_ROOT / "segments" / "tech_early_adopters.yaml").definition
    label = build_label(defn, catalogue, settings, {"web": 2340}, date(2026, 11, 25), "run-9")
    assert label["segment"]["name"] == "Technology early adopters"
    assert label["segment"]["taxonomy"]["ids"] == [
        {"id": 703, "name": "Interest | Technology & Computing | Consumer Electronics"}]
    assert label["audience"]["criteria"] == (
        "interest Technology early adopter (IAB 703) with score >= 1.5 or (products_owned: any of smartphone:premium, "
        "laptop:premium, tablet:premium, smart_home:premium and last purchase within 180 days)")
    assert label["audience"]["criteria_types"] == ["inferred", "observed"]
    assert label["audience"]["size"] == {"web": 2340}
    assert label["data"]["lookback"] == {"interests": "91 days, recency-weighted (half-life 30 days)",
                                         "purchases": "365 days"}
    assert label["data"]["sources"][0].startswith("TV viewing genres, Proximus purchases")
    assert label["data"]["sources"][1:] == ["Proximus products purchased"]
    assert [(b["purpose"], b["basis"]) for b in label["privacy"]["legal_basis"]] == [
        ("web_profile", "consent"), ("ads_and_data", "consent")]
    page = labels_html([label])
    assert "<th>Audience size</th><td>web: 2340</td>" in page
    assert "<script" not in page


def test_label_html_escapes_definition_text(settings):
    catalogue = load_catalogue(settings.conf_dir)
    defn = parse_file(PROJECT_ROOT / "segments" / "football_fans.yaml").definition
    label = build_label(defn, catalogue, settings, {}, date(2026, 11, 25), "r")
    label["segment"]["description"] = "<script>alert(1)</script>"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in labels_html([label])
    assert "<script>" not in labels_html([label])
