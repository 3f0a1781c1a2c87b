"""Human-readable data-quality reports: one HTML page per run, plus a one-page summary for the privacy office.

Rendering is pure (results in, HTML text out, Jinja2 with autoescaping); :func:`write_reports` writes the two
pages into the run's report folder. Every failed check is an element with class ``failure`` (and its severity)
holding the expectation, the table and the observed value, so people and tests find failures the same way.
Reports hold counts and codes only: sample values of identifier columns are never part of a result.

Example::

    >>> html = render_dq_report(results, run_id="20261125-060000-ab12cd34", as_of=date(2026, 11, 25))
    >>> "class=\\"failure" in html
    True
"""
from __future__ import annotations

from collections import Counter
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape

if TYPE_CHECKING:  # DQResult lives in suites; no runtime import (suites imports this module)
    from pipelines.quality.suites import DQResult

DQ_REPORT = "dq_report.html"
PRIVACY_SUMMARY = "privacy_summary.html"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #1d1d1f; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; }
th, td { border: 1px solid #d0d0d7; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f2f2f5; }
.verdict { padding: .75rem 1rem; border-radius: .4rem; font-weight: 600; }
.verdict.blocked { background: #fde2e1; color: #8a1c12; }
.verdict.ok { background: #e3f5e1; color: #1e5b1a; }
tr.failure.critical td { background: #fde2e1; }
tr.failure.warning td { background: #fff4d6; }
tr.pass td.status { color: #1e5b1a; }
.muted { color: #6b6b75; font-size: .85rem; }
"""

_BASE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{% block title %}{% endblock %}</title>
<style>{{ style }}</style></head>
<body>{% block body %}{% endblock %}
<p class="muted">Run {{ run_id }} &middot; as of {{ as_of }}{% if started %} &middot; started {{ started }}{% endif %}.
Counts and codes only: no personal data is shown in this report.</p>
</body></html>
"""

_ROW = """{% macro result_row(r) -%}
<tr class="{{ 'pass' if r.success else 'failure ' ~ r.severity }}" data-table="{{ r.table }}" data-expectation="{{ r.expectation }}">
<td class="status">{{ 'passed' if r.success else 'FAILED' }}</td><td class="severity">{{ r.severity }}</td>
<td class="table">{{ r.table }}</td><td class="expectation">{{ r.expectation }}</td>
<td class="observed">{{ r.observed_value }}</td><td class="details">{{ r.details }}</td></tr>
{%- endmacro %}
{% macro result_table(rows) -%}
<table><thead><tr><th>Status</th><th>Severity</th><th>Table</th><th>Expectation</th><th>Observed</th><th>Details</th></tr></thead>
<tbody>{% for r in rows %}{{ result_row(r) }}{% endfor %}</tbody></table>
{%- endmacro %}
"""

_DQ = """{% extends "base" %}{% from "row" import result_table %}
{% block title %}Data quality, run {{ run_id }}{% endblock %}
{% block body %}
<h1>Data-quality report &mdash; run {{ run_id }}, as of {{ as_of }}</h1>
{% if critical %}
<p class="verdict blocked" id="verdict">Publication blocked: {{ critical|length }} critical check(s) failed. The previously
published tables stay in place.</p>
{% else %}
<p class="verdict ok" id="verdict">All critical checks passed{% if warnings %}; {{ warnings|length }} warning(s){% endif %}.</p>
{% endif %}
<p>{{ results|length }} checks on {{ tables|length }} tables: {{ passed }} passed, {{ critical|length }} critical
failure(s), {{ warnings|length }} warning(s).</p>

<h2 id="failures">Failures</h2>
{% if failures %}{{ result_table(failures) }}{% else %}<p>No failures.</p>{% endif %}

<h2 id="tables">Per table</h2>
<table><thead><tr><th>Table</th><th>Checks</th><th>Passed</th><th>Critical failures</th><th>Warnings</th></tr></thead>
<tbody>{% for t in tables %}<tr><td><a href="#t-{{ loop.index }}">{{ t.name }}</a></td><td>{{ t.checks }}</td>
<td>{{ t.passed }}</td><td>{{ t.critical }}</td><td>{{ t.warning }}</td></tr>{% endfor %}</tbody></table>

<h2 id="all">All checks</h2>
{% for t in tables %}<h3 id="t-{{ loop.index }}">{{ t.name }}</h3>{{ result_table(t.rows) }}{% endfor %}
{% endblock %}
"""

_PRIVACY = """{% extends "base" %}{% from "row" import result_table %}
{% block title %}Privacy summary, run {{ run_id }}{% endblock %}
{% block body %}
<h1>Privacy summary &mdash; run {{ run_id }}, as of {{ as_of }}</h1>
{% if privacy_failures %}
<p class="verdict blocked" id="verdict">{{ privacy_failures|length }} privacy check(s) failed: nothing of this run was
published.</p>
{% elif blocked %}
<p class="verdict blocked" id="verdict">All privacy checks passed, but publication was blocked by another critical
data-quality failure (see the data-quality report).</p>
{% else %}
<p class="verdict ok" id="verdict">All {{ privacy|length }} privacy checks passed; the run's tables may be published.</p>
{% endif %}
<p>What is checked before anything is published: no direct identifier in any table that leaves the company
(Ads &amp; Data delivery, advertiser reports, segment statistics, geographic profiles); every published
geographic cell holds at least k customers; audience sizes are thresholded; profiles and segments hold only
customers eligible for the processing at the as-of date; every delivered profile carries its expiry.</p>
<h2>Privacy checks</h2>
{% if privacy %}{{ result_table(privacy) }}{% else %}<p>No privacy check ran in this run.</p>{% endif %}
{% if funnel %}
<h2>Consent funnel</h2>
<table><thead><tr><th>Measure</th><th>Count</th></tr></thead>
<tbody>{% for k, v in funnel %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</tbody></table>
{% endif %}
{% if suppression %}
<h2>Suppression</h2>
<table><thead><tr><th>Measure</th><th>Count</th></tr></thead>
<tbody>{% for k, v in suppression %}<tr><td>{{ k }}</td><td>{{ v }}</td></tr>{% endfor %}</tbody></table>
{% endif %}
<p class="muted">Full details: <a href="dq_report.html">data-quality report</a>.</p>
{% endblock %}
"""

_ENV = Environment(
    loader=DictLoader({"base": _BASE, "row": _ROW, "dq": _DQ, "privacy": _PRIVACY}),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _order(results: Iterable["DQResult"]) -> list["DQResult"]:
    """Failures first (critical, then warning), then by table and expectation: a stable, scannable order."""
    rank = {"critical": 0, "warning": 1}
    return sorted(results, key=lambda r: (r.success, rank.get(r.severity, 2), r.table, r.expectation))


def _tables(results: Sequence["DQResult"]) -> list[dict[str, Any]]:
    names = sorted({r.table for r in results}, key=lambda t: (not t.startswith("silver/"), t))
    out = []
    for name in names:
        rows = [r for r in results if r.table == name]
        failed = Counter(r.severity for r in rows if not r.success)
        out.append({"name": name, "rows": _order(rows), "checks": len(rows),
                    "passed": sum(r.success for r in rows), "critical": failed["critical"], "warning": failed["warning"]})
    return out


def _count(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:.4g}"


def render_dq_report(results: Sequence["DQResult"], *, run_id: str, as_of: date,
                     started: datetime | None = None) -> str:
    """The run's full data-quality report (HTML): verdict, failures, per-table summary, every check."""
    results = list(results)
    failures = _order(r for r in results if not r.success)
    return _ENV.get_template("dq").render(
        style=_STYLE, run_id=run_id, as_of=as_of, started=started, results=results,
        failures=failures, critical=[r for r in failures if r.severity == "critical"],
        warnings=[r for r in failures if r.severity != "critical"], passed=sum(r.success for r in results),
        tables=_tables(results))


def render_privacy_summary(results: Sequence["DQResult"], *, run_id: str, as_of: date,
                           started: datetime | None = None, metrics: Mapping[str, float] | None = None) -> str:
    """One page for the privacy office: privacy checks, consent funnel and suppression counts."""
    metrics = metrics or {}
    privacy = _order(r for r in results if getattr(r, "category", "quality") == "privacy")
    funnel = [(k.removeprefix("funnel."), _count(v)) for k, v in sorted(metrics.items()) if k.startswith("funnel.")]
    suppression = [(k, _count(v)) for k, v in sorted(metrics.items()) if "suppress" in k]
    return _ENV.get_template("privacy").render(
        style=_STYLE, run_id=run_id, as_of=as_of, started=started, privacy=privacy,
        privacy_failures=[r for r in privacy if not r.success],
        blocked=any(not r.success and r.severity == "critical" for r in results),
        funnel=funnel, suppression=suppression)


def write_reports(folder: Path, results: Sequence["DQResult"], *, run_id: str, as_of: date,
                  started: datetime | None = None, metrics: Mapping[str, float] | None = None) -> Path:
    """Write ``dq_report.html`` and ``privacy_summary.html`` into ``folder`` (created); returns ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DQ_REPORT).write_text(
        render_dq_report(results, run_id=run_id, as_of=as_of, started=started), encoding="utf-8")
    (folder / PRIVACY_SUMMARY).write_text(
        render_privacy_summary(results, run_id=run_id, as_of=as_of, started=started, metrics=metrics),
        encoding="utf-8")
    return folder
