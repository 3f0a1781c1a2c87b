"""Data quality: declarative rules (``conf/quality.yml``) compiled to Great Expectations 1.x suites.

The only module that imports Great Expectations (lazily, so commands that never validate start fast). Each
run validates the silver rows it ingested (:func:`validate_inputs`) and every gold table it is about to
publish (:func:`validate_outputs`), directly on Spark DataFrames, with one ephemeral GX context per pass.
A few checks need facts Great Expectations cannot see (the previous run, the quarantine, another table,
a column that must *not* exist); they are computed here with one Spark aggregate each and recorded as
results of the same shape (their ``details`` say so).

Results go to ``ops/dq_results`` and to an HTML report per run (:func:`record_results`); a failure of a
``critical`` rule blocks publication (:func:`critical_failures`).

Example::

    >>> results = validate_inputs(ctx) + validate_outputs(ctx)
    >>> report_dir = record_results(ctx, results)
    >>> if critical_failures(results):
    ...     raise RunFailed(describe_failures(critical_failures(results), report_dir))
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml
from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, MapType, StructType

from pipelines import io
from pipelines.config import ConfigError, Settings
from pipelines.schemas import DIRECT_IDENTIFIER_COLUMNS, DQ_RESULTS, SOURCES, silver_schema

QUALITY_FILE = "quality.yml"
SEVERITIES = ("critical", "warning")
RESULT_FORMATS = ("BOOLEAN_ONLY", "BASIC", "SUMMARY", "COMPLETE")

#: Rule types evaluated by Great Expectations, and the arguments each one needs.
GX_TYPES: dict[str, tuple[str, ...]] = {
    "schema": (),
    "columns_exist": ("columns",),
    "not_null": (),
    "null_rate": ("max",),
    "unique": (),
    "in_set": ("value_set",),
    "between": (),
    "regex": ("regex",),
    "row_count_between": (),
    "max_between": (),
}
#: Rule types computed in Spark here, because Great Expectations 1.x has no expectation for them.
CUSTOM_TYPES: dict[str, tuple[str, ...]] = {
    "column_absent": ("columns",),      # no "column must not exist" expectation
    "eligible_ids": (),                 # needs a second table (silver/eligibility)
    "quarantine_rate": ("max",),        # needs the ingestion counts of the run
    "row_count_change": (),             # needs the previous run's results
    "freshness": ("max_age_days",),     # on the whole table, not only on the run's rows
}
COLUMN_TYPES = {"not_null", "null_rate", "in_set", "between", "regex", "max_between", "eligible_ids", "freshness"}
INPUT_ONLY = {"schema", "quarantine_rate", "row_count_change"}
OUTPUT_ONLY = {"eligible_ids"}
EVERY = {"inputs": "every_source", "outputs": "every_table"}

ROW_COUNT = "expect_table_row_count_to_be_between"
#: Columns whose values never appear in a report, even as samples of unexpected values.
REDACTED = DIRECT_IDENTIFIER_COLUMNS | {"pseudo_id", "tc_string", "request_id"}

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DQResult:
    """One expectation checked in a run (a row of ``ops/dq_results``)."""

    table: str
    expectation: str
    success: bool
    observed_value: str
    severity: str  # "critical" | "warning"
    details: str
    category: str = "quality"  # "privacy": shown on the privacy office's summary


@dataclass(frozen=True)
class Rule:
    """One declarative rule of ``conf/quality.yml``."""

    type: str
    column: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    privacy: bool = False

    @property
    def category(self) -> str:
        return "privacy" if self.privacy else "quality"


@dataclass(frozen=True)
class QualityRules:
    """Rules per input source and per output table (``every_*`` rules already prepended)."""

    inputs: Mapping[str, tuple[Rule, ...]]
    outputs: Mapping[str, tuple[Rule, ...]]
    result_format: str = "BASIC"


# --------------------------------------------------------------------------------------------- configuration

def _rule(spec: Any, where: str, section: str) -> Rule:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: a rule must be a mapping with a type")
    unknown = sorted(set(spec) - {"type", "column", "args", "severity", "privacy"})
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kind = spec.get("type")
    needs = GX_TYPES.get(kind, CUSTOM_TYPES.get(kind))
    if needs is None:
        raise ConfigError(f"{where}: unknown rule type {kind!r}; known: {', '.join(sorted({**GX_TYPES, **CUSTOM_TYPES}))}")
    if section == "outputs" and kind in INPUT_ONLY:
        raise ConfigError(f"{where}: {kind} applies to inputs only")
    if section == "inputs" and kind in OUTPUT_ONLY:
        raise ConfigError(f"{where}: {kind} applies to outputs only")
    severity = spec.get("severity", "warning")
    if severity not in SEVERITIES:
        raise ConfigError(f"{where}: severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    args = dict(spec.get("args") or {})
    missing = [a for a in needs if a not in args]
    if missing:
        raise ConfigError(f"{where}: {kind} needs args {', '.join(missing)}")
    column = spec.get("column")
    if kind in COLUMN_TYPES and not column:
        raise ConfigError(f"{where}: {kind} needs a column")
    if kind == "unique" and not (column or args.get("columns")):
        raise ConfigError(f"{where}: unique needs a column or args.columns")
    if kind == "eligible_ids" and not (args.get("processing") or (args.get("by_column") and args.get("processings"))):
        raise ConfigError(f"{where}: eligible_ids needs args.processing, or args.by_column and args.processings")
    return Rule(kind, column, args, severity, bool(spec.get("privacy", False)))


def _check_columns(source: str, rule: Rule, where: str) -> None:
    """Input rules must name columns of the silver schema (a typo would otherwise only fail at run time)."""
    known = set(silver_schema(source).fieldNames())
    named = {rule.column} if rule.column else set()
    if rule.type in ("unique", "columns_exist") and isinstance(rule.args.get("columns"), list):
        named |= set(rule.args["columns"])
    bad = sorted(c for c in named if c not in known)
    if bad:
        raise ConfigError(f"{where}: unknown column(s) {', '.join(bad)} of silver/{source}")


def parse_quality_rules(raw: Mapping[str, Any]) -> QualityRules:
    """Check and compile the content of ``quality.yml`` (see that file for the rule syntax)."""
    unknown = sorted(set(raw) - {"result_format", "inputs", "outputs"})
    if unknown:
        raise ConfigError(f"{QUALITY_FILE}: unknown section(s) {', '.join(unknown)}")
    result_format = str(raw.get("result_format", "BASIC")).upper()
    if result_format not in RESULT_FORMATS:
        raise ConfigError(f"{QUALITY_FILE}: result_format must be one of {', '.join(RESULT_FORMATS)}")
    compiled: dict[str, dict[str, tuple[Rule, ...]]] = {}
    for section in ("inputs", "outputs"):
        tables = dict(raw.get(section) or {})
        every_key = EVERY[section]
        every = tuple(_rule(s, f"{QUALITY_FILE}: {section}.{every_key}[{i}]", section)
                      for i, s in enumerate(tables.pop(every_key, None) or []))
        if section == "inputs":
            unknown_sources = sorted(set(tables) - set(SOURCES))
            if unknown_sources:
                raise ConfigError(f"{QUALITY_FILE}: inputs: unknown source(s) {', '.join(unknown_sources)}")
            names: Iterable[str] = SOURCES
        else:
            names = tables
        out: dict[str, tuple[Rule, ...]] = {}
        for name in names:
            own = tuple(_rule(s, f"{QUALITY_FILE}: {section}.{name}[{i}]", section)
                        for i, s in enumerate(tables.get(name) or []))
            if section == "inputs":
                for i, r in enumerate(own):
                    _check_columns(name, r, f"{QUALITY_FILE}: inputs.{name}[{i}]")
            out[name] = every + own
        compiled[section] = out
    return QualityRules(compiled["inputs"], compiled["outputs"], result_format)


def load_quality_rules(conf_dir: Path) -> QualityRules:
    """Read ``<conf_dir>/quality.yml``."""
    path = Path(conf_dir) / QUALITY_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"data-quality rules not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{path}: top level must be a mapping")
    return parse_quality_rules(raw)


# ------------------------------------------------------------------------------------------------ bindings

@dataclass(frozen=True)
class Bindings:
    """Values ``@name`` in the rules may refer to: settings and facts of the run (injected, never read here)."""

    settings: Settings
    as_of: date
    started: datetime

    @property
    def as_of_end(self) -> datetime:
        from pipelines.consent.gate import end_of_day

        return end_of_day(self.as_of, self.settings.timezone)

    @property
    def ingestion_limit(self) -> datetime:
        started = self.started if self.started.tzinfo else self.started.replace(tzinfo=timezone.utc)
        return started + timedelta(minutes=self.settings.ingestion.max_clock_skew_minutes)

    def resolve(self, value: Any) -> Any:
        """Replace an ``@name`` reference (recursively in lists); other values are returned unchanged."""
        if isinstance(value, (list, tuple)):
            return [self.resolve(v) for v in value]
        if not (isinstance(value, str) and value.startswith("@")):
            return value
        name = value[1:]
        facts = {"as_of": lambda: self.as_of, "as_of_end": lambda: self.as_of_end,
                 "ingestion_limit": lambda: self.ingestion_limit,
                 # a datetime, like the upper bounds: GX checks min <= max in Python
                 "min_date": lambda: datetime(self.settings.ingestion.min_year, 1, 1, tzinfo=timezone.utc),
                 "direct_identifiers": lambda: sorted(DIRECT_IDENTIFIER_COLUMNS)}
        if name in facts:
            return facts[name]()
        if "." in name:
            obj: Any = self.settings
            for part in name.split("."):
                if not hasattr(obj, part):
                    raise ConfigError(f"{QUALITY_FILE}: unknown setting {value!r}")
                obj = getattr(obj, part)
            return obj
        from pipelines.sources.reference_sets import reference_sets

        sets = reference_sets(self.settings)
        if name not in sets:
            raise ConfigError(f"{QUALITY_FILE}: unknown reference {value!r}; known: {', '.join(sorted(sets))}")
        return sorted(sets[name])


# -------------------------------------------------------------------------------------- Great Expectations

def _gx() -> tuple[Any, Any]:
    """Import Great Expectations quietly (no usage statistics, no progress bars on stderr)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    return gx, gxe


class GxSession:
    """One ephemeral GX context with one Spark data source; one asset, suite and validation per table."""

    def __init__(self) -> None:
        gx, gxe = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx, self.gxe = gx, gxe
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        # persist=False: the caller decides what is cached (GX would persist every batch and never release it).
        self.source = self.context.data_sources.add_spark("pipeline", persist=False)

    def run(self, name: str, df: DataFrame, expectations: list, result_format: str) -> list:
        """Validate ``df`` against ``expectations``; the GX results in suite order."""
        asset = self.source.add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe(name)
        suite = self.context.suites.add(self.gx.ExpectationSuite(name=name, expectations=expectations))
        definition = self.context.validation_definitions.add(
            self.gx.ValidationDefinition(name=name, data=batch, suite=suite))
        result = definition.run(batch_parameters={"dataframe": df},
                                result_format={"result_format": result_format, "partial_unexpected_count": 5})
        return list(result.results)


def build_expectations(gxe: Any, rules: Sequence[Rule], bind: Bindings, schema: StructType | None = None) -> list:
    """GX expectations for the GX-typed ``rules``; ``meta.rule`` is the rule's index in ``rules``."""
    out = []
    for i, rule in enumerate(rules):
        if rule.type not in GX_TYPES:
            continue
        a = {k: bind.resolve(v) for k, v in rule.args.items()}
        common = {"severity": rule.severity, "meta": {"rule": i}}
        col = rule.column
        mostly = {"mostly": float(a["mostly"])} if "mostly" in a else {}
        bounds = {k: a.get(k) for k in ("min_value", "max_value")}
        if rule.type == "schema":
            if schema is None:
                raise ConfigError(f"{QUALITY_FILE}: schema rule without an expected schema")
            out.append(gxe.ExpectTableColumnsToMatchSet(column_set=schema.fieldNames(), exact_match=True, **common))
            out += [gxe.ExpectColumnValuesToBeOfType(column=f.name, type_=type(f.dataType).__name__, **common)
                    for f in schema.fields]
        elif rule.type == "columns_exist":
            out += [gxe.ExpectColumnToExist(column=c, **common) for c in a["columns"]]
        elif rule.type == "not_null":
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=col, **mostly, **common))
        elif rule.type == "null_rate":
            out.append(gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=1.0 - float(a["max"]), **common))
        elif rule.type == "unique":
            if a.get("columns"):
                out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(a["columns"]), **common))
            else:
                out.append(gxe.ExpectColumnValuesToBeUnique(column=col, **mostly, **common))
        elif rule.type == "in_set":
            out.append(gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(a["value_set"]), **mostly, **common))
        elif rule.type == "between":
            out.append(gxe.ExpectColumnValuesToBeBetween(column=col, **bounds, **mostly, **common))
        elif rule.type == "regex":
            out.append(gxe.ExpectColumnValuesToMatchRegex(column=col, regex=a["regex"], **mostly, **common))
        elif rule.type == "row_count_between":
            out.append(gxe.ExpectTableRowCountToBeBetween(**bounds, **common))
        elif rule.type == "max_between":
            out.append(gxe.ExpectColumnMaxToBeBetween(column=col, **bounds, **common))
    return out


def _fmt(value: Any) -> str:
    """Human-readable, stable rendering of an observed value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _exception_message(info: Any) -> str | None:
    """The first exception message of a GX result (GX nests them per metric on some failures)."""
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "error").splitlines()[0]
    for nested in info.values():
        msg = _exception_message(nested)
        if msg:
            return msg
    return None


def _expectation_name(kind: str, kwargs: Mapping[str, Any]) -> str:
    cols = kwargs.get("column_list") or ([kwargs["column"]] if kwargs.get("column") else [])
    return f"{kind}({','.join(cols)})" if cols else kind


def _describe_args(rule: Rule) -> str:
    parts = []
    for k, v in rule.args.items():
        if k == "show_values":
            continue
        if isinstance(v, (list, tuple)) and len(v) > 12:
            v = f"{len(v)} values"
        parts.append(f"{k}={_fmt(v) if not isinstance(v, str) else v}")
    return "; ".join(parts)


def _shows_values(rule: Rule) -> bool:
    col = rule.column or ""
    return bool(rule.args.get("show_values")) or (col not in REDACTED and not col.endswith("_id"))


def _observed(r: Any, rule: Rule) -> str:
    """Observed value of a detailed GX result: the error, the unexpected count (with safe samples) or the value."""
    res = dict(r.result or {})
    error = _exception_message(r.exception_info)
    if error:
        return f"error: {error}"
    if "unexpected_count" in res:
        n, bad = res.get("element_count") or 0, res.get("unexpected_count") or 0
        pct = res.get("unexpected_percent")
        observed = f"{bad} of {n} rows unexpected" + (f" ({pct:.2f}%)" if pct is not None else "")
        samples = res.get("partial_unexpected_list") or []
        if bad and samples and _shows_values(rule):
            observed += "; e.g. " + ", ".join(dict.fromkeys(_fmt(s) for s in samples))
        return observed
    if "observed_value" in res:
        details = res.get("details")
        mismatch = details.get("mismatched") if isinstance(details, Mapping) else None
        if mismatch and not r.success:
            return "; ".join(f"{k}: {_fmt(v)}" for k, v in mismatch.items() if v)
        return _fmt(res["observed_value"])
    if r.expectation_config.type == "expect_column_to_exist":
        return "present" if r.success else "absent"
    return ""


def _from_gx(table: str, r: Any, rule: Rule, observed: str | None = None) -> DQResult:
    cfg = r.expectation_config
    details = "; ".join(p for p in (f"rule {rule.type}", _describe_args(rule), "checked by Great Expectations") if p)
    severity = getattr(cfg.severity, "value", cfg.severity) or rule.severity
    return DQResult(table, _expectation_name(cfg.type, cfg.kwargs), bool(r.success),
                    observed if observed is not None else _observed(r, rule), str(severity), details, rule.category)


def _key(rule_index: Any, kind: str, kwargs: Mapping[str, Any]) -> tuple[int, str]:
    return int(rule_index), _expectation_name(kind, kwargs)


def _passing_observed(cfg: Any, rows: int) -> str:
    """Observed value of a check that passed in the fast (boolean) pass, stated from what passing implies."""
    kw = cfg.kwargs
    if cfg.type == ROW_COUNT:
        return str(rows)
    if cfg.type == "expect_column_values_to_be_of_type":
        return str(kw.get("type_"))
    if cfg.type == "expect_column_to_exist":
        return "present"
    if cfg.type == "expect_table_columns_to_match_set":
        return "as expected"
    if cfg.type.startswith(("expect_column_values_", "expect_compound_columns_")):
        mostly = float(kw.get("mostly", 1.0) or 1.0)
        if mostly >= 1.0:
            return f"0 of {rows} rows unexpected"
        return f"at most {1 - mostly:.2%} of {rows} rows unexpected"
    return "within expectation"


def _run_gx(session_holder: list, table: str, df: DataFrame, rows: int, rules: Sequence[Rule], bind: Bindings,
            result_format: str, schema: StructType | None = None) -> list[DQResult]:
    """Validate ``df`` in two passes: every expectation in BOOLEAN_ONLY (about a quarter of the Spark jobs of
    BASIC, since no unexpected values are fetched), then only the failed ones again in ``result_format`` to
    report their unexpected counts and samples."""
    if not any(r.type in GX_TYPES for r in rules):
        return []
    if not session_holder:
        session_holder.append(GxSession())
    session: GxSession = session_holder[0]
    name = table.replace("/", "__")
    first = session.run(name, df, build_expectations(session.gxe, rules, bind, schema), "BOOLEAN_ONLY")
    failed = {_key(r.expectation_config.meta["rule"], r.expectation_config.type, r.expectation_config.kwargs)
              for r in first if not r.success}
    detailed: dict[tuple[int, str], Any] = {}
    if failed and result_format != "BOOLEAN_ONLY":
        again = [e for e in build_expectations(session.gxe, rules, bind, schema)
                 if _key(e.meta["rule"], e.expectation_type, e.configuration.kwargs) in failed]
        for r in session.run(name + "__failures", df, again, result_format):
            cfg = r.expectation_config
            detailed[_key(cfg.meta["rule"], cfg.type, cfg.kwargs)] = r
    out = []
    for r in first:
        cfg = r.expectation_config
        key = _key(cfg.meta["rule"], cfg.type, cfg.kwargs)
        rule = rules[key[0]]
        if r.success:
            out.append(_from_gx(table, r, rule, _passing_observed(cfg, rows)))
        else:
            out.append(_from_gx(table, detailed.get(key, r), rule))
    return out


# ----------------------------------------------------------------------------- checks computed in Spark here

def present_identifiers(schema: StructType, forbidden: Iterable[str]) -> list[str]:
    """Forbidden column names found anywhere in ``schema`` (nested struct, array and map fields included)."""
    forbidden = {c.lower() for c in forbidden}
    found: list[str] = []

    def walk(dtype: Any, prefix: str) -> None:
        if isinstance(dtype, StructType):
            for f in dtype.fields:
                path = f"{prefix}{f.name}"
                if f.name.lower() in forbidden:
                    found.append(path)
                walk(f.dataType, path + ".")
        elif isinstance(dtype, ArrayType):
            walk(dtype.elementType, prefix)
        elif isinstance(dtype, MapType):
            walk(dtype.valueType, prefix)

    walk(schema, "")
    return found


def check_column_absent(table: str, df: DataFrame, rule: Rule, bind: Bindings) -> DQResult:
    """No forbidden column (e.g. a direct identifier) in the table, at any nesting level. Schema only."""
    forbidden = bind.resolve(rule.args["columns"])
    found = present_identifiers(df.schema, forbidden)
    label = "direct identifiers" if rule.args["columns"] == "@direct_identifiers" else ", ".join(forbidden)
    return DQResult(table, "expect_columns_to_be_absent", not found,
                    ("present: " + ", ".join(found)) if found else "none present", rule.severity,
                    f"rule column_absent; columns={label} ({len(forbidden)}); schema check (GX has no "
                    f"expectation for a column that must not exist)", rule.category)


def _eligible_pairs(elig: DataFrame, rule: Rule) -> tuple[DataFrame, list[str], str]:
    """Eligible (id[, by_column value]) pairs for the rule, the join columns, and a label."""
    from pipelines.consent.gate import PROCESSINGS

    col = rule.column or "customer_id"
    if rule.args.get("processing"):
        processing = rule.args["processing"]
        flag = PROCESSINGS.get(processing)
        if flag is None:
            raise ConfigError(f"{QUALITY_FILE}: unknown processing {processing!r}")
        return elig.where(F.col(flag)).select(F.col("customer_id").alias(col)).distinct(), [col], processing
    by = rule.args["by_column"]
    parts = []
    for value, processing in rule.args["processings"].items():
        flag = PROCESSINGS.get(processing)
        if flag is None:
            raise ConfigError(f"{QUALITY_FILE}: unknown processing {processing!r}")
        parts.append(elig.where(F.col(flag)).select(F.col("customer_id").alias(col), F.lit(str(value)).alias(by)))
    pairs = parts[0]
    for p in parts[1:]:
        pairs = pairs.unionByName(p)
    label = ", ".join(f"{by}={v}: {p}" for v, p in rule.args["processings"].items())
    return pairs.distinct(), [col, by], label


def check_eligible_ids(table: str, df: DataFrame, rule: Rule, elig: DataFrame | None, rows: int) -> DQResult:
    """Every id of the table (``rows`` rows) is eligible for the processing in ``silver/eligibility``:
    one anti-join count."""
    name = f"expect_ids_to_be_eligible({rule.column})"
    if elig is None:
        return DQResult(table, name, False, "error: silver/eligibility not found", rule.severity,
                        "rule eligible_ids; no eligibility table for this run", rule.category)
    pairs, keys, label = _eligible_pairs(elig, rule)
    row = (df.select(*keys).join(pairs, keys, "left_anti")
           .agg(F.count("*").alias("bad")).first())
    bad = int(row["bad"] or 0)
    return DQResult(table, name, bad == 0, f"{bad} of {rows} rows not eligible", rule.severity,
                    f"rule eligible_ids; {label}; anti-join with silver/eligibility computed in Spark "
                    f"(GX has no cross-table expectation)", rule.category)


def _metric(metrics: Mapping[str, float], key: str) -> float:
    return float(metrics.get(key) or 0.0)


def check_quarantine_rate(table: str, source: str, rule: Rule, metrics: Mapping[str, float]) -> DQResult:
    """Share of the run's delivered rows that ingestion quarantined (from the ingestion counts)."""
    rows = _metric(metrics, f"ingest.{source}.rows")
    quarantined = _metric(metrics, f"ingest.{source}.quarantined")
    limit = float(rule.args["max"])
    rate = quarantined / rows if rows else 0.0
    prefix = f"quarantine.{source}."
    reasons = sorted(((k[len(prefix):], v) for k, v in metrics.items() if k.startswith(prefix) and v),
                     key=lambda kv: (-kv[1], kv[0]))[:3]
    top = ("; top reasons: " + ", ".join(f"{k} ({int(v)})" for k, v in reasons)) if reasons else ""
    return DQResult(table, f"expect_quarantine_rate_to_be_at_most({limit:g})", rate <= limit,
                    f"{rate:.4f} ({int(quarantined)} of {int(rows)} rows)", rule.severity,
                    f"rule quarantine_rate; max={limit:g}{top}; from the run's ingestion counts", rule.category)


def check_row_count_change(table: str, rule: Rule, rows: int, quarantined: float,
                           previous: tuple[int, str] | None) -> DQResult:
    """Rows ingested by this run against the last earlier run that ingested any (volume anomaly)."""
    name = "expect_row_count_change_vs_previous_run"
    max_drop = float(rule.args.get("max_drop", 1.0))
    max_growth = float(rule.args.get("max_growth", math.inf))
    args = f"rule row_count_change; max_drop={max_drop:g}; max_growth={max_growth:g}"
    if rows == 0 and not quarantined:
        return DQResult(table, name, True, "no delivery in this run", rule.severity,
                        args + "; nothing to compare (freshness covers a feed that stopped)", rule.category)
    if previous is None:
        return DQResult(table, name, True, f"{rows} rows; no previous run", rule.severity, args, rule.category)
    before, run_id = previous
    change = rows / before - 1.0
    ok = -max_drop <= change <= max_growth
    return DQResult(table, name, ok, f"{rows} rows vs {before} ({change:+.1%})", rule.severity,
                    f"{args}; previous run {run_id}; computed from ops/dq_results (GX has no cross-run expectation)",
                    rule.category)


def check_freshness(table: str, full: DataFrame | None, rule: Rule, bind: Bindings) -> DQResult:
    """The latest value of ``rule.column`` in the whole table is at most ``max_age_days`` before the end of the
    as-of day. One aggregate, in epoch seconds so that neither the session nor the driver timezone matters."""
    name = f"expect_data_to_be_fresh({rule.column})"
    days = float(rule.args["max_age_days"])
    args = f"rule freshness; max_age_days={days:g}; whole table, computed in Spark (GX sees only the run's rows)"
    latest = None
    if full is not None:
        latest = full.agg(F.max(F.col(rule.column).cast("timestamp")).cast("long").alias("m")).first()["m"]
    if latest is None:
        return DQResult(table, name, False, "no rows", rule.severity, args, rule.category)
    age = (bind.as_of_end.timestamp() - latest) / 86400
    shown = datetime.fromtimestamp(latest, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    return DQResult(table, name, age <= days, f"latest {shown}, {age:.1f} days before the end of {bind.as_of}",
                    rule.severity, args, rule.category)


def previous_row_counts(ctx: Any) -> dict[str, tuple[int, str]]:
    """Per table, the row count of the last earlier run that ingested rows (from ``ops/dq_results``)."""
    path = ctx.wh.table("ops", "dq_results")
    if not io.exists(ctx.spark, path):
        return {}
    count = F.col("observed_value").cast("long")
    w = Window.partitionBy("table").orderBy(F.col("as_of").desc(), F.col("run_id").desc())
    rows = (io.read(ctx.spark, path)
            .where((F.col("expectation") == ROW_COUNT) & (F.col("run_id") != ctx.run_id)
                   & (F.col("as_of") <= F.lit(ctx.as_of)) & (count > 0))
            .select("table", "run_id", "as_of", count.alias("n"))
            .withColumn("_rn", F.row_number().over(w)).where("_rn = 1").collect())
    return {r["table"]: (int(r["n"]), r["run_id"]) for r in rows}


# -------------------------------------------------------------------------------------------- validation

def _bindings(ctx: Any) -> Bindings:
    return Bindings(ctx.settings, ctx.as_of, ctx.started)


def _stage(ctx: Any, name: str):
    progress = getattr(ctx, "progress", None)
    return progress.stage(name) if progress is not None else nullcontext({})


def _record_time(ctx: Any, table: str, seconds: float) -> None:
    metrics = getattr(ctx, "metrics", None)
    if metrics is not None:
        metrics[f"dq.seconds.{table.replace('/', '.')}"] = round(seconds, 3)


def validate_inputs(ctx: Any) -> list[DQResult]:
    """Check every silver source after ingestion: the run's new rows with GX, plus run-level checks.

    ``ctx`` needs ``spark``, ``settings``, ``wh``, ``run_id``, ``as_of``, ``started`` and ``metrics`` (the
    ingestion counts ``ingest.<source>.rows|quarantined``); ``progress`` is optional. Only the rows this run
    ingested go through GX, so the cost follows the day's delivery, not the history.
    """
    rules = load_quality_rules(ctx.settings.conf_dir)
    bind = _bindings(ctx)
    previous = previous_row_counts(ctx)
    session: list = []
    results: list[DQResult] = []
    for source in SOURCES:
        table_rules = rules.inputs.get(source, ())
        if table_rules:
            results += _validate_source(ctx, source, table_rules, bind, previous.get(f"silver/{source}"),
                                        session, rules.result_format)
    return results


def _validate_source(ctx: Any, source: str, table_rules: Sequence[Rule], bind: Bindings,
                     previous: tuple[int, str] | None, session: list, result_format: str) -> list[DQResult]:
    table = f"silver/{source}"
    metrics: Mapping[str, float] = getattr(ctx, "metrics", None) or {}
    start = time.perf_counter()
    results: list[DQResult] = []
    with _stage(ctx, f"quality {table}") as counts:
        path = ctx.wh.table("silver", source)
        full = io.read(ctx.spark, path) if io.exists(ctx.spark, path) else None
        batch = (full.where(F.col("_run_id") == ctx.run_id).persist(StorageLevel.MEMORY_AND_DISK)
                 if full is not None else None)
        try:
            rows = batch.count() if batch is not None else 0
            gx_rules = list(table_rules)
            if not any(r.type == "row_count_between" for r in gx_rules):
                # Always recorded: the next run compares its volume with this one.
                gx_rules.append(Rule("row_count_between", args={"min_value": 0}, severity="warning"))
            if rows:
                results += _run_gx(session, table, batch, rows, gx_rules, bind, result_format, silver_schema(source))
            else:
                results.append(_empty_batch_row_count(table, gx_rules))
            for rule in table_rules:
                if rule.type == "quarantine_rate":
                    results.append(check_quarantine_rate(table, source, rule, metrics))
                elif rule.type == "row_count_change":
                    quarantined = _metric(metrics, f"ingest.{source}.quarantined")
                    results.append(check_row_count_change(table, rule, rows, quarantined, previous))
                elif rule.type == "freshness":
                    results.append(check_freshness(table, full, rule, bind))
                elif rule.type == "column_absent":
                    schema_only = full if full is not None else ctx.spark.createDataFrame([], silver_schema(source))
                    results.append(check_column_absent(table, schema_only, rule, bind))
            counts.update(rows=rows)
        finally:
            if batch is not None:
                batch.unpersist()
    _record_time(ctx, table, time.perf_counter() - start)
    return results


def _empty_batch_row_count(table: str, rules: Sequence[Rule]) -> DQResult:
    """No rows ingested by this run: the row-count rule is decided without GX; value checks have nothing to see."""
    rule = next(r for r in rules if r.type == "row_count_between")
    lo, hi = rule.args.get("min_value"), rule.args.get("max_value")
    ok = (lo is None or 0 >= lo) and (hi is None or 0 <= hi)
    return DQResult(table, ROW_COUNT, ok, "0", rule.severity,
                    "rule row_count_between; no rows ingested by this run, value checks skipped", rule.category)


def validate_outputs(ctx: Any) -> list[DQResult]:
    """Check every gold DataFrame in ``ctx.outputs`` that has rules, before it is published.

    Outputs that are not cached yet are persisted here and left persisted: publication reuses them, and
    ``run_daily`` unpersists every output after publishing.
    """
    rules = load_quality_rules(ctx.settings.conf_dir)
    bind = _bindings(ctx)
    session: list = []
    results: list[DQResult] = []
    elig: list[DataFrame | None] = []
    for name, df in ctx.outputs.items():
        table_rules = rules.outputs.get(name, ())
        if not table_rules:
            continue
        table = f"gold/{name}"
        start = time.perf_counter()
        with _stage(ctx, f"quality {table}"):
            if not df.is_cached:
                df.persist(StorageLevel.MEMORY_AND_DISK)
            rows = df.count()
            results += _run_gx(session, table, df, rows, table_rules, bind, rules.result_format)
            for rule in table_rules:
                if rule.type == "column_absent":
                    results.append(check_column_absent(table, df, rule, bind))
                elif rule.type == "eligible_ids":
                    if not elig:
                        path = ctx.wh.table("silver", "eligibility")
                        elig.append(io.read(ctx.spark, path) if io.exists(ctx.spark, path) else None)
                    results.append(check_eligible_ids(table, df, rule, elig[0], rows))
                elif rule.type == "freshness":
                    results.append(check_freshness(table, df, rule, bind))
        _record_time(ctx, table, time.perf_counter() - start)
    return results


# ------------------------------------------------------------------------------------------------ results

def critical_failures(results: Iterable[DQResult]) -> list[DQResult]:
    """Failed results of critical rules: any of them blocks publication."""
    return [r for r in results if not r.success and r.severity == "critical"]


def describe_failures(failures: Sequence[DQResult], report_dir: Path | None = None) -> str:
    """One line for stderr / ``ops/runs.message`` naming the critical failures."""
    shown = "; ".join(f"{f.table} {f.expectation}: {f.observed_value}" for f in failures[:3])
    more = f" (+{len(failures) - 3} more)" if len(failures) > 3 else ""
    where = f"; report: {report_dir / 'dq_report.html'}" if report_dir else ""
    return (f"{len(failures)} critical data-quality failure(s), nothing published (the previous version stays): "
            f"{shown}{more}{where}")


def results_frame(ctx: Any, results: Sequence[DQResult]) -> DataFrame:
    """The results as rows of ``ops/dq_results``."""
    rows = [(ctx.run_id, r.table, r.expectation, r.success, r.observed_value, r.severity, r.details, ctx.as_of)
            for r in results]
    return ctx.spark.createDataFrame(rows, DQ_RESULTS)


def record_results(ctx: Any, results: Sequence[DQResult]) -> Path:
    """Store the run's results in ``ops/dq_results`` (replacing any earlier recording of the same run) and
    write ``<warehouse>/reports/<run_id>/``: ``dq_report.html``, ``privacy_summary.html``, ``dq_results.json``.

    Call it once per run with all results (inputs and outputs). Returns the report folder.
    """
    from pipelines.quality.report import write_reports

    results = list(results)
    run_filter = "run_id = '" + str(ctx.run_id).replace("'", "''") + "'"
    io.replace_where(results_frame(ctx, results), ctx.wh.table("ops", "dq_results"), run_filter)
    metrics = getattr(ctx, "metrics", None)
    if metrics is not None:
        metrics["dq.checks"] = float(len(results))
        metrics["dq.failed.critical"] = float(len(critical_failures(results)))
        metrics["dq.failed.warning"] = float(sum(1 for r in results if not r.success and r.severity == "warning"))
    folder = ctx.wh.reports / str(ctx.run_id)
    write_reports(folder, results, run_id=str(ctx.run_id), as_of=ctx.as_of, started=ctx.started,
                  metrics=dict(metrics or {}))
    (folder / "dq_results.json").write_text(json.dumps(
        {"run_id": str(ctx.run_id), "as_of": ctx.as_of.isoformat(), "results": [asdict(r) for r in results]},
        indent=2), encoding="utf-8")
    return folder


__all__ = [
    "DQResult", "Rule", "QualityRules", "Bindings", "load_quality_rules", "parse_quality_rules",
    "validate_inputs", "validate_outputs", "record_results", "critical_failures", "describe_failures",
    "present_identifiers", "previous_row_counts", "results_frame",
]
