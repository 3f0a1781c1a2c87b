"""``audience segments validate|preview``: thin wrappers the main command line wires in.

``validate`` prints one ``file:line: severity: message`` line per problem on stdout, and on failure a
one-line reason on stderr with exit status 1. ``preview`` prints the published size of every segment
and channel on the warehouse's last run, its change against the run before and, for definitions the
working tree changes, their size on the last run's profiles; with a base git ref it prints instead a
markdown summary of the changed segments for the pull-request description.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipelines.config import Settings
from pipelines.segments.catalogue import load_catalogue
from pipelines.segments.lint import validate_paths
from pipelines.segments.model import discover
from pipelines.segments.stats import segments_dir


def cmd_validate(paths: list[Path], settings: Settings) -> int:
    """Validate the definitions under ``paths`` (default: the configured ``segments/``); 1 on any error."""
    paths = [Path(p) for p in paths] or [segments_dir(settings)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        print(f"audience segments validate: not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 1
    files = discover(paths)
    if not files:
        print(f"audience segments validate: no segment definitions (*.yaml) in {', '.join(map(str, paths))}",
              file=sys.stderr)
        return 1
    result = validate_paths(paths, settings)
    for problem in result.problems:
        print(problem)
    errors, warnings = len(result.errors), len(result.problems) - len(result.errors)
    print(f"{len(files)} segment definition(s) checked: {errors} error(s), {warnings} warning(s)")
    if errors:
        bad = len({p.path for p in result.errors})
        print(f"audience segments validate: {errors} error(s) in {bad} file(s)", file=sys.stderr)
        return 1
    return 0


def cmd_preview(warehouse: Path, settings: Settings, markdown_base: str | None) -> int:
    """Sizes per segment and channel on the last run (thresholded), or the pull-request summary."""
    from pipelines.segments.preview import (
        branch_sizes,
        format_table,
        last_hashes,
        markdown_diff,
        read_history,
        size_changes,
    )
    from pipelines.spark import build_session

    warehouse = Path(warehouse)
    if not warehouse.is_dir() and markdown_base is None:
        print(f"audience segments preview: warehouse not found: {warehouse}", file=sys.stderr)
        return 1
    catalogue = load_catalogue(settings.conf_dir)
    validation = validate_paths([segments_dir(settings)], settings, catalogue)
    history, last, previous, changes, preview = None, None, None, [], None
    if warehouse.is_dir():  # a markdown summary can be made without any warehouse (no sizes then)
        spark = build_session(settings.spark)
        history = read_history(spark, warehouse)
        last, previous, changes = size_changes(history) if history is not None else (None, None, [])
        used = last_hashes(history, last) if history is not None and last is not None else {}
        edited = [d for d in validation.valid if used.get(d.name) != d.definition_hash]
        preview = branch_sizes(spark, warehouse, edited, catalogue, settings, last)

    if markdown_base is not None:
        published = {(c.segment, c.channel): c.size for c in changes if c.in_last_run}
        print(markdown_diff(markdown_base, settings=settings, catalogue=catalogue, validation=validation,
                            published=published or None, preview=preview))
        return 0
    if history is None or last is None:
        print(f"audience segments preview: no segment statistics in {warehouse}: run `audience run` first",
              file=sys.stderr)
        return 1
    floors = {d.name: max(settings.segments.audience_threshold, d.min_audience, 1) for d in validation.definitions}
    print(format_table(last, previous, changes, preview, floors))
    if validation.errors:
        print(f"note: {len(validation.errors)} error(s) in segments/: run `audience segments validate`",
              file=sys.stderr)
    return 0
