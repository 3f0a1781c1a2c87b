"""Preview segment sizes before a merge, and summarise a branch's segment changes for its pull request.

* :func:`size_changes`: the published size of every segment and channel on the last run, and its change
  against the run before (read from ``ops/segment_stats_history``, one snapshot per as-of date);
* :func:`branch_sizes`: the sizes the *working tree's* definitions would get on the last run's profiles,
  for the definitions that differ from what that run used (new or edited) — thresholded and rounded
  exactly like the published statistics, so a preview never shows an exact small number either;
* :func:`markdown_diff`: the segments a branch changes (``git diff --name-status <base> -- segments/``)
  as a markdown summary: criteria before and after, channels, owner, purposes, checks and sizes.

Example of the table :func:`format_table` prints::

    segment              channel  as of 2026-11-25  previous (2026-11-24)  change       branch preview
    football_fans        tv       1230              1200                   +30
    cycling_fans         tv       < 100             < 100                  unpublished
"""
from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.segments.catalogue import Catalogue, describe_rule
from pipelines.segments.label import published_floor
from pipelines.segments.lint import ValidationResult
from pipelines.segments.model import SegmentDefinition, parse_text
from pipelines.segments.stats import HISTORY_TABLE, membership_for, segment_stats

Key = tuple[str, str]  # (segment, channel)


@dataclass(frozen=True)
class SizeChange:
    """Published size of one segment and channel on the last run and on the run before."""

    segment: str
    channel: str
    size: int | None
    previous: int | None
    in_last_run: bool
    in_previous_run: bool
    floor: int | None = None  # the segment's publication floor, for display ("< 100")
    previous_run: bool = True  # False when the history holds a single run

    @property
    def change(self) -> str:
        if not self.previous_run:
            return "-"
        if not self.in_previous_run:
            return "new"
        if not self.in_last_run:
            return "removed"
        if self.size is not None and self.previous is not None:
            delta = self.size - self.previous
            return f"{delta:+d}" if delta else "0"
        if self.size is not None:
            return "now published"
        if self.previous is not None:
            return "now below threshold"
        return "unpublished"


def read_history(spark: SparkSession, warehouse: Path) -> DataFrame | None:
    """Published statistics per as-of: ``ops/segment_stats_history``, else the last ``gold/segment_stats``."""
    wh = io.Warehouse(Path(warehouse))
    for path in (wh.table("ops", HISTORY_TABLE), wh.table("gold", "segment_stats")):
        if io.exists(spark, path):
            return io.read(spark, path)
    return None


def size_changes(history: DataFrame) -> tuple[date | None, date | None, list[SizeChange]]:
    """(last as-of, previous as-of, one :class:`SizeChange` per segment and channel of either run)."""
    dates = [r[0] for r in history.select("as_of").distinct().orderBy(F.col("as_of").desc()).limit(2).collect()]
    if not dates:
        return None, None, []
    last, previous = dates[0], (dates[1] if len(dates) > 1 else None)
    rows = history.where(F.col("as_of").isin(dates)).select(
        "segment", "channel", "audience_size", "min_audience", "audience_threshold", "as_of").collect()
    now = {(r["segment"], r["channel"]): r for r in rows if r["as_of"] == last}
    before = {(r["segment"], r["channel"]): r for r in rows if r["as_of"] == previous}
    out = []
    for key in sorted(set(now) | set(before)):
        row = now.get(key) or before[key]
        out.append(SizeChange(
            key[0], key[1],
            now[key]["audience_size"] if key in now else None,
            before[key]["audience_size"] if key in before else None,
            key in now,
            key in before,
            max(int(row["audience_threshold"]), int(row["min_audience"]), 1),
            previous is not None,
        ))
    return last, previous, out


def last_hashes(history: DataFrame, as_of: date) -> dict[str, str]:
    """Definition hash of each segment as used by the run of ``as_of``."""
    rows = history.where(F.col("as_of") == F.lit(as_of)).select("segment", "definition_hash").distinct().collect()
    return {r["segment"]: r["definition_hash"] for r in rows}


def branch_sizes(spark: SparkSession, warehouse: Path, definitions: Sequence[SegmentDefinition],
                 catalogue: Catalogue, settings: Settings, as_of: date | None) -> dict[Key, int | None] | None:
    """Thresholded sizes of ``definitions`` on the warehouse's last profiles (None when there are none)."""
    wh = io.Warehouse(Path(warehouse))
    paths = {ch: wh.table("gold", f"{ch}_profiles") for ch in ("tv", "web")}
    if not definitions or not all(io.exists(spark, p) for p in paths.values()):
        return None
    profiles = {ch: io.read(spark, p) for ch, p in paths.items()}
    day = as_of or date.today()
    membership = membership_for(profiles, None, definitions, catalogue, settings, day)
    stats = segment_stats(membership, definitions, settings, day, "preview", None)
    return {(r["segment"], r["channel"]): r["audience_size"]
            for r in stats.select("segment", "channel", "audience_size").collect()}


def _size(value: int | None, floor: int | None) -> str:
    if value is None:
        return f"< {floor}" if floor else "-"
    return str(value)


def format_table(last: date | None, previous: date | None, changes: Sequence[SizeChange],
                 preview: Mapping[Key, int | None] | None = None,
                 floors: Mapping[str, int] | None = None) -> str:
    """A plain-text table: size on the last run, on the previous run, change, and the branch preview."""
    floors = floors or {}
    header = ["segment", "channel", f"as of {last}", f"previous ({previous or '-'})", "change"]
    if preview:
        header.append("branch preview")
    body = []
    keys = {(c.segment, c.channel): c for c in changes}
    for key in sorted(set(keys) | set(preview or {})):
        c = keys.get(key)
        floor = floors.get(key[0]) or (c.floor if c else None)
        row = [key[0], key[1],
               _size(c.size, floor) if c and c.in_last_run else "-",
               _size(c.previous, floor) if c and c.in_previous_run and previous else "-",
               c.change if c else "not in last run"]
        if preview:
            row.append(_size(preview[key], floor) if key in preview else "")
        body.append(row)
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    return "\n".join("  ".join(str(cell).ljust(w) for cell, w in zip(r, widths)).rstrip() for r in [header, *body])


# --- pull-request summary ---------------------------------------------------------------------------


def _git(args: Sequence[str], repo_root: Path) -> str:
    result = subprocess.run(["git", *args], cwd=repo_root, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip().splitlines()[:1]}")
    return result.stdout


def changed_segment_files(base_ref: str, repo_root: Path, segments_path: str) -> list[tuple[str, str, str]]:
    """``(status, old path, new path)`` of every definition file changed since ``base_ref`` (A, M, D, R).

    New files not yet added to git count as added, so the summary can be previewed before committing.
    """
    out = _git(["diff", "--name-status", "--find-renames", base_ref, "--", segments_path], repo_root)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "--", segments_path], repo_root)
    out += "".join(f"A\t{path}\n" for path in untracked.splitlines() if path)
    changes = []
    for line in out.splitlines():
        parts = line.split("\t")
        status = parts[0][:1]
        old, new = (parts[1], parts[-1])
        if not new.endswith((".yaml", ".yml")) and not old.endswith((".yaml", ".yml")):
            continue
        changes.append((status, old, new))
    return sorted(changes, key=lambda c: c[2])


def _base_definition(base_ref: str, path: str, repo_root: Path) -> SegmentDefinition | None:
    try:
        text = _git(["show", f"{base_ref}:{path}"], repo_root)
    except RuntimeError:
        return None
    return parse_text(text, path).definition


def markdown_diff(base_ref: str, *, settings: Settings, catalogue: Catalogue, validation: ValidationResult,
                  repo_root: Path = PROJECT_ROOT, published: Mapping[Key, int | None] | None = None,
                  preview: Mapping[Key, int | None] | None = None) -> str:
    """Markdown summary of the segment definitions a branch changes against ``base_ref``.

    ``validation`` is the result of validating the working tree's ``segments/``; ``published`` the sizes of
    the last run and ``preview`` the branch's sizes on the last run's profiles (both thresholded).
    """
    changes = changed_segment_files(base_ref, repo_root, settings.segments.path)
    lines = [f"## Segment changes against `{base_ref}`", ""]
    if not changes:
        return "\n".join(lines + ["No segment definition changed.", ""])
    current = {str(Path(r.path).resolve()): r for r in validation.parsed}
    lines += ["| segment | change | channels | owner | last run | preview | checks |",
              "|---|---|---|---|---|---|---|"]
    details: list[str] = []
    word = {"A": "added", "M": "modified", "D": "removed", "R": "renamed"}
    for status, old_path, new_path in changes:
        before = _base_definition(base_ref, old_path, repo_root) if status != "A" else None
        parsed = current.get(str((repo_root / new_path).resolve())) if status != "D" else None
        after = parsed.definition if parsed else None
        defn = after or before
        name = defn.name if defn else Path(new_path).stem
        problems = [p for p in validation.problems if parsed and Path(p.path).resolve() == Path(parsed.path).resolve()]
        errors = sum(p.is_error for p in problems)
        warnings = len(problems) - errors
        checks = "removed" if status == "D" else (f"{errors} error(s)" if errors else "ok") + \
            (f", {warnings} warning(s)" if warnings else "")
        channels = defn.channels if defn else ()
        floor = published_floor(defn, settings) if defn else None

        def sizes(source: Mapping[Key, int | None] | None) -> str:
            if not source:
                return "-"
            shown = [f"{ch} {_size(source[(name, ch)], floor)}" for ch in channels if (name, ch) in source]
            return ", ".join(shown) or "-"

        lines.append(f"| `{name}` | {word.get(status, status)} | {', '.join(channels)} | "
                     f"{defn.owner if defn else '-'} | {sizes(published)} | "
                     f"{sizes(preview) if status != 'D' else '-'} | {checks} |")
        details += ["", f"### `{name}`: {defn.display_name if defn else ''} ({word.get(status, status)})", ""]
        if before is not None and status != "A":
            details.append(f"- **Criteria before:** {describe_rule(before.rule, catalogue)}")
        if after is not None:
            details.append(f"- **Criteria{' after' if before is not None else ''}:** "
                           f"{describe_rule(after.rule, catalogue)}")
            details.append(f"- **Purposes:** {', '.join(after.purposes)}; **min_audience:** {after.min_audience}; "
                           f"**refresh:** {after.refresh}")
            if before is not None and before.channels != after.channels:
                details.append(f"- **Channels:** {', '.join(before.channels)} -> {', '.join(after.channels)}")
        elif status != "D":
            details.append("- The definition could not be parsed; see the problems below.")
        details += [f"- `{p}`" for p in problems]
    return "\n".join(lines + details + [""])
