"""``audience refine --warehouse DIR --request FILE``: the thin wrapper around :func:`refine.refine`.

Prints the advertiser-visible report row as one JSON object on stdout -- and nothing else: no exact count,
no id, no comparison with earlier requests. Exit status: 0 when the request was processed (``refused`` is a
valid business outcome, printed as such); 2 with a one-line reason on stderr when the request file is not a
request or the key file is missing (nothing is recorded); 1 when the warehouse cannot serve refinements yet.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from pipelines.config import Settings


def report_json(report: Mapping[str, Any]) -> str:
    """One line of JSON; dates and timestamps in ISO-8601."""
    return json.dumps({k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in report.items()},
                      sort_keys=False)


def cmd_refine(warehouse: Path, request: Path, settings: Settings) -> int:
    """Run one refinement request; see the module docstring for output and exit status."""
    from pipelines.privacy.keys import KeyError_, keys_from_env
    from pipelines.refinement.refine import InvalidRequest, RefineError, load_request, refine

    try:
        keys_from_env()  # contract section 1: refine refuses to start without AUDIENCE_KEYS
    except KeyError_ as exc:
        print(f"audience refine: {exc}", file=sys.stderr)
        return 2
    try:
        load_request(Path(request))  # fail fast, before starting Spark
    except InvalidRequest as exc:
        print(f"audience refine: invalid request: {exc}", file=sys.stderr)
        return 2
    from pipelines.spark import build_session

    spark = build_session(settings.spark)
    try:
        outcome = refine(spark, settings, Path(warehouse), Path(request), datetime.now(timezone.utc))
    except InvalidRequest as exc:
        print(f"audience refine: invalid request: {exc}", file=sys.stderr)
        return 2
    except RefineError as exc:
        print(f"audience refine: {exc}", file=sys.stderr)
        return 1
    print(report_json(outcome.report))
    return 0


__all__ = ["cmd_refine", "report_json"]
