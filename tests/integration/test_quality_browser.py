"""The HTML data-quality report, opened in a real browser (headless Chromium), shows the run's failures."""
from __future__ import annotations

import shutil
import subprocess
from datetime import date, datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipelines import io
from pipelines.quality.suites import critical_failures, record_results, validate_outputs

AS_OF = date(2026, 11, 25)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.fail("headless Chromium is required for this test: `make test` installs it "
                "(Debian: apt-get install -y chromium)")


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after Chromium has loaded and rendered it."""
    out = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


class FailureText(HTMLParser):
    """Text of every element whose class list contains ``failure``."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[bool] = []
        self.texts: list[list[str]] = []
        self.open: list[int] = []

    def handle_starttag(self, tag, attrs):
        hit = "failure" in (dict(attrs).get("class") or "").split()
        self.stack.append(hit)
        if hit:
            self.texts.append([])
            self.open.append(len(self.texts) - 1)

    def handle_endtag(self, tag):
        if self.stack and self.stack.pop():
            self.open.pop()

    def handle_data(self, data):
        for i in self.open:
            self.texts[i].append(data)

    @classmethod
    def of(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return [" ".join("".join(t).split()) for t in parser.texts]


def test_the_runs_failures_are_visible_in_the_report_opened_in_chromium(spark, settings, tmp_path):
    k = settings.geo.k
    geo = spark.createDataFrame(  # planted: a published cell with fewer than k customers
        [("postal_code", "1000", k + 5, AS_OF), ("region", "BRU", k - 2, AS_OF)],
        "area_level string, area_code string, n_customers long, as_of date")
    ctx = SimpleNamespace(spark=spark, settings=settings, wh=io.Warehouse(tmp_path / "wh"),
                          run_id="20261125-050000-b10b0001", as_of=AS_OF,
                          started=datetime(2026, 11, 26, 5, 0, tzinfo=timezone.utc),
                          outputs={"geo_profiles": geo}, metrics={"funnel.customers": 120.0})
    results = validate_outputs(ctx)
    assert [f.expectation for f in critical_failures(results)] == ["expect_column_values_to_be_between(n_customers)"]
    report_dir = record_results(ctx, results)
    geo.unpersist()

    dom = dump_dom(report_dir / "dq_report.html", tmp_path / "chromium-profile")
    failures = FailureText.of(dom)
    assert failures, "no element with class 'failure' in the rendered report"
    assert all("gold/geo_profiles" in t for t in failures)
    assert any("expect_column_values_to_be_between(n_customers)" in t
               and f"1 of 2 rows unexpected (50.00%); e.g. {k - 2}" in t and "critical" in t for t in failures)
    assert "Publication blocked: 1 critical check(s) failed" in dom

    summary = dump_dom(report_dir / "privacy_summary.html", tmp_path / "chromium-profile")
    assert any("expect_column_values_to_be_between(n_customers)" in t for t in FailureText.of(summary))
    assert "1 privacy check(s) failed" in summary
