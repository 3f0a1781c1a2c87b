"""Validation rules of landing sources: declarative YAML (``conf/base/sources.yml``) compiled to Columns.

Each rule is a ``(reason, bad)`` pair where ``bad`` is a boolean Column that is true for a rejected row.
Rows are parsed as strings first, so a value that does not cast to its contract type is a reason of its own
("wrong type: duration_s") instead of a silent null.

Example::

    >>> rules = load_source_rules(CONF_DIR)["tv_viewing"]
    >>> rules.key
    ('view_id',)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml
from pyspark.sql import Column
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, DataType, DateType, StringType, TimestampType

from pipelines.schemas import LANDING_COLUMNS, SILVER_TYPES


@dataclass(frozen=True)
class Snapshot:
    key: tuple[str, ...]
    order_by: str | None


@dataclass(frozen=True)
class SourceRules:
    source: str
    key: tuple[str, ...]
    required: tuple[str, ...] = ()
    allowed: Mapping[str, tuple[str, ...] | str] = field(default_factory=dict)
    patterns: Mapping[str, str] = field(default_factory=dict)
    not_future: tuple[str, ...] = ()
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    snapshot: Snapshot | None = None


def load_source_rules(conf_dir: Path) -> dict[str, SourceRules]:
    """Read and check ``conf_dir/base/sources.yml``; every landing source must have rules."""
    raw = yaml.safe_load((conf_dir / "base" / "sources.yml").read_text(encoding="utf-8")) or {}
    missing = sorted(set(LANDING_COLUMNS) - set(raw))
    if missing:
        raise ValueError(f"sources.yml: no rules for {', '.join(missing)}")
    out: dict[str, SourceRules] = {}
    for source, spec in raw.items():
        if source not in LANDING_COLUMNS:
            raise ValueError(f"sources.yml: unknown source {source!r}")
        cols = set(LANDING_COLUMNS[source])
        named = set(spec.get("key", [])) | set(spec.get("required", [])) | set(spec.get("allowed", {})) \
            | set(spec.get("patterns", {})) | set(spec.get("not_future", [])) | set(spec.get("ranges", {}))
        if named - cols:
            raise ValueError(f"sources.yml: {source}: unknown column(s) {', '.join(sorted(named - cols))}")
        snap = spec.get("snapshot")
        out[source] = SourceRules(
            source=source,
            key=tuple(spec["key"]),
            required=tuple(spec.get("required", [])),
            allowed={c: (v if isinstance(v, str) else tuple(str(x) for x in v)) for c, v in spec.get("allowed", {}).items()},
            patterns=dict(spec.get("patterns", {})),
            not_future=tuple(spec.get("not_future", [])),
            ranges={c: (float(lo), float(hi)) for c, (lo, hi) in spec.get("ranges", {}).items()},
            snapshot=Snapshot(tuple(snap["key"]), snap.get("order_by")) if snap else None,
        )
    return out


def typed(column: str, data_type: DataType) -> Column:
    """Cast a landing string to its contract type; null when it does not parse (never an error).

    Text is stored trimmed, as every check sees it: an id padded with spaces (``" C0001"``) is the same customer,
    so a withdrawal or an identity link delivered that way still reaches them in every join on the id."""
    c = F.trim(F.col(column))
    if isinstance(data_type, StringType):
        return F.when(c != "", c)
    if isinstance(data_type, BooleanType):
        # The contract spells booleans true/false only; "1", "yes" etc. are wrong types.
        return F.when(F.lower(c) == "true", F.lit(True)).when(F.lower(c) == "false", F.lit(False))
    if isinstance(data_type, TimestampType):
        # ISO-8601 with an offset is required: a timestamp without one is ambiguous, hence a wrong type.
        return F.when(c.rlike(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$"),
                      c.try_cast(TimestampType()))
    if isinstance(data_type, DateType):
        return F.when(c.rlike(r"^\d{4}-\d{2}-\d{2}$"), c.try_cast(DateType()))
    return c.try_cast(data_type)


def rule_predicates(
    rules: SourceRules,
    reference: Mapping[str, frozenset[str]],
    ingested_at: Column,
    max_skew_minutes: int,
    min_year: int,
    typed_columns: Mapping[str, Column] | None = None,
) -> list[tuple[str, Column]]:
    """The ``(reason, bad)`` predicates of a source, in the order they are reported.

    Expects the string columns of the landing schema; ``reference`` resolves ``@name`` sets. ``typed_columns``:
    columns already holding :func:`typed` of some landing columns (by landing column name), used instead of
    casting again in each check (a timestamp's pattern match and cast ran three times per row).
    """
    types = SILVER_TYPES[rules.source]
    known = dict(typed_columns or {})

    def cast(c: str, t: DataType) -> Column:
        return known[c] if c in known else typed(c, t)

    checks: list[tuple[str, Column]] = []
    present = lambda c: F.col(c).isNotNull() & (F.trim(F.col(c)) != "")  # noqa: E731
    for c in rules.required:
        checks.append((f"missing value: {c}", ~present(c)))
    for c in LANDING_COLUMNS[rules.source]:
        t = types[c]
        if not isinstance(t, StringType):
            checks.append((f"wrong type: {c}", present(c) & cast(c, t).isNull()))
    for c, regex in rules.patterns.items():
        checks.append((f"invalid format: {c}", present(c) & ~F.trim(F.col(c)).rlike(regex)))
    for c, allowed in rules.allowed.items():
        values = reference[allowed[1:]] if isinstance(allowed, str) else frozenset(allowed)
        if isinstance(allowed, str) and allowed.startswith("@") and allowed[1:] not in reference:
            raise ValueError(f"sources.yml: {rules.source}.{c}: unknown reference set {allowed}")
        checks.append((f"unknown code: {c}", present(c) & ~F.trim(F.col(c)).isin(sorted(values))))
    for c, (lo, hi) in rules.ranges.items():
        v = cast(c, types[c])
        checks.append((f"out of range: {c}", v.isNotNull() & ((v < lo) | (v > hi))))
    limit = ingested_at + F.make_interval(mins=F.lit(max_skew_minutes))
    for c in rules.not_future:
        v = cast(c, types[c])
        as_ts = v.cast(TimestampType()) if isinstance(types[c], DateType) else v
        checks.append((f"timestamp after ingestion: {c}", v.isNotNull() & (as_ts > limit)))
        checks.append((f"implausible date: {c}", v.isNotNull() & (F.year(v) < min_year)))
    return checks


def first_failure(checks: list[tuple[str, Column]]) -> Column:
    """Reason of the first failing check, or null for a valid row."""
    expr = F.lit(None).cast(StringType())
    for reason, bad in reversed(checks):
        expr = F.when(F.coalesce(bad, F.lit(False)), F.lit(reason)).otherwise(expr)
    return expr
