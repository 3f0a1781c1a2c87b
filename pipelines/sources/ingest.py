"""Ingestion: landing files → bronze (raw lines) → silver (typed, validated, deduplicated) + quarantine.

Only files not ingested before are read (``ops/ingested_files`` is the bookkeeping), so a daily run reads
one day. A file is marked ingested last, so a run that dies half-way is completed by the next one without
duplicating anything: with ``recover`` (the daily job sets it when the previous run did not succeed), the rows
an interrupted run left for the files being ingested are deleted first from bronze, the quarantine and (event
sources) silver; snapshot sources are upserted by key anyway. Keys already in silver from earlier files are
re-deliveries: quarantined as duplicates, never inserted twice.

CSV header rows (contract section 2: "with a header row"). Each file's first line is read once in Python
(:func:`read_headers`): the contract's columns in the contract's order, quoted or not, is a header and dropped; the
same names in another order are mapped by name (a reordered extract is not loaded with its columns swapped); a
header naming a column the contract does not have, or lacking one, quarantines every line of that file with the
reason (rows cannot be read without knowing which field is which). A first line where fewer than half the fields
name a contract column is no header: it is read as data, as it always was.
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Mapping

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from pipelines import io
from pipelines.rights.erasure import LINE_IDS, line_identifiers
from pipelines.schemas import LANDING_COLUMNS, LANDING_FORMAT, SILVER_TYPES, landing_string_schema
from pipelines.sources.rules import SourceRules, first_failure, rule_predicates, typed

INGESTED_FILES = StructType([
    StructField("source", StringType()), StructField("file", StringType()), StructField("run_id", StringType()),
    StructField("ingested_at", TimestampType()), StructField("rows", LongType()), StructField("quarantined", LongType()),
])

_CORRUPT = "_corrupt_record"


@dataclass(frozen=True)
class IngestResult:
    """What one source contributed to a run."""

    source: str
    files: int = 0
    rows: int = 0
    valid: int = 0
    quarantined: int = 0
    reasons: Mapping[str, int] = field(default_factory=dict)


def new_files(spark: SparkSession, wh: io.Warehouse, landing: Path, source: str) -> list[Path]:
    """Landing files of ``source`` not ingested by an earlier run."""
    done_table = io.read(spark, wh.table("ops", "ingested_files"), INGESTED_FILES)
    done = {r.file for r in done_table.where(F.col("source") == source).select("file").collect()}
    return [p for p in io.list_landing_files(landing, source) if str(p.relative_to(landing)) not in done]


@dataclass(frozen=True)
class FileHeaders:
    """What the first lines of a batch of CSV files say (:func:`read_headers`); files by path relative to the
    landing root."""

    #: Header lines as delivered (dropped before parsing).
    texts: frozenset[str] = frozenset()
    #: File -> its column order, for files that order the contract's columns differently.
    orders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: File -> why its header does not fit (every line of the file is quarantined with it).
    errors: Mapping[str, str] = field(default_factory=dict)


def _first_line(path: Path) -> str:
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        line = f.readline()
    return line.removeprefix("\ufeff").removesuffix("\n").removesuffix("\r")


def read_headers(files: list[Path], landing: Path, source: str) -> FileHeaders:
    """The header row of each CSV file of ``source`` (see the module docs); an empty ``FileHeaders`` for JSONL."""
    if LANDING_FORMAT[source] != "csv":
        return FileHeaders()
    cols = LANDING_COLUMNS[source]
    texts: set[str] = set()
    orders: dict[str, tuple[str, ...]] = {}
    errors: dict[str, str] = {}
    for path in files:
        line = _first_line(path)
        names = [n.strip().lower() for n in next(csv.reader([line]), [])]
        if len(set(names) & set(cols)) * 2 < len(cols):
            continue  # not a header row (fewer than half the fields name a column): the first line is data
        rel = str(path.relative_to(landing))
        missing = [c for c in cols if c not in names]
        unknown = sorted({n for n in names if n not in cols})
        if missing or unknown or len(names) != len(cols):
            problems = [f"missing {', '.join(missing)}" if missing else "",
                        f"unknown {', '.join(unknown)}" if unknown else "",
                        "a column named twice" if not missing and not unknown else ""]
            errors[rel] = "header does not match the contract: " + "; ".join(p for p in problems if p)
            continue
        texts.add(line)
        if tuple(names) != tuple(cols):
            orders[rel] = tuple(names)
    return FileHeaders(frozenset(texts), orders, errors)


def _by_file(mapping: Mapping[str, object], value) -> Column | None:
    """``CASE _source_file WHEN f THEN value(mapping[f]) ...`` over the files of ``mapping`` (None when empty)."""
    out = None
    for f in sorted(mapping):
        cond = F.col("_source_file") == F.lit(f)
        out = F.when(cond, value(mapping[f])) if out is None else out.when(cond, value(mapping[f]))
    return out


def read_raw_lines(spark: SparkSession, files: list[Path], landing: Path, source: str,
                   headers: FileHeaders | None = None) -> DataFrame:
    """Raw lines with their file (relative to the landing root) and a line id; header and blank lines dropped
    (``headers``: :func:`read_headers` of ``files``, for header rows other than the contract's exact line)."""
    header = ",".join(LANDING_COLUMNS[source])
    known = sorted((headers.texts if headers is not None else frozenset()) | {header})
    raw = F.regexp_replace(F.regexp_replace(F.col("value"), "^\ufeff", ""), "\r$", "")
    root = str(landing.resolve()).rstrip("/")
    return (
        spark.read.option("lineSep", "\n").text([str(p.resolve()) for p in files])
        .select(
            raw.alias("raw"),
            # _metadata.file_path is a URI (file:/...); keep the path relative to the landing root.
            F.regexp_replace(F.expr("try_url_decode(_metadata.file_path)"), "^file:(//)?", "").alias("_abs"),
            F.monotonically_increasing_id().alias("_line"),
        )
        .withColumn("_source_file", F.expr(f"substring(_abs, {len(root) + 2})"))
        .drop("_abs")
        .where((F.trim(F.col("raw")) != "") & ~F.col("raw").isin(known))
    )


def parse_lines(lines: DataFrame, source: str, headers: FileHeaders | None = None) -> DataFrame:
    """Split raw lines into the source's string columns plus ``_parse_error`` (null when the line parses).

    ``headers`` (:func:`read_headers`): files whose header orders the columns differently are parsed in their own
    order and mapped by name; every line of a file whose header does not fit gets that as its error."""
    cols = LANDING_COLUMNS[source]
    schema = landing_string_schema(source)
    if LANDING_FORMAT[source] == "jsonl":
        with_corrupt = StructType(schema.fields + [StructField(_CORRUPT, StringType())])
        parsed = F.from_json("raw", with_corrupt, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": _CORRUPT})
        error = (
            F.when(~F.trim(F.col("raw")).startswith("{"), F.lit("malformed JSON: not an object"))
            .when(F.col("_p").isNull() | F.col(f"_p.{_CORRUPT}").isNotNull(), F.lit("malformed JSON: truncated or invalid line"))
        )
    else:
        parsed = _csv_fields(cols)
        # RFC 4180: count fields outside quotes; an odd number of quotes means the line was cut inside a field.
        # A line without quotes (nearly every line) has one field more than commas: counted with literal
        # replaces; only a line with quotes pays the regular expression that blanks out quoted fields. The counts
        # are columns of their own, computed once per line (inlined, the CASE evaluated them up to three times);
        # together half of parse_lines' time on tv_viewing (benchmarks/results/2026-11-28-ingest-parse-cost.md).
        unquoted = F.regexp_replace(F.col("raw"), r'"([^"]|"")*"', "Q")
        lines = (lines.withColumn("_nq", _occurrences(F.col("raw"), '"'))
                 .withColumn("_nf", F.when(F.col("_nq") == 0, _occurrences(F.col("raw"), ",") + 1)
                             .otherwise(F.size(F.split(unquoted, ",", -1)))))
        error = (
            F.when(F.col("_nq") % 2 == 1, F.lit("truncated line: unbalanced quote"))
            .when(F.col("_nf") < len(cols), F.lit(f"truncated line: fewer than {len(cols)} fields"))
            .when(F.col("_nf") > len(cols), F.lit(f"malformed line: more than {len(cols)} fields"))
        )
        if headers is not None and headers.orders:
            def in_order(order: tuple[str, ...]) -> Column:
                own = _csv_fields(order)
                return F.struct(*[own[c].alias(c) for c in cols])
            parsed = _by_file(headers.orders, in_order).otherwise(parsed)
        if headers is not None and headers.errors:
            error = F.coalesce(_by_file(headers.errors, F.lit), error)
    return (
        lines.withColumn("_p", parsed)
        .withColumn("_parse_error", error)
        .select("raw", "_source_file", "_line", "_parse_error", *[F.col(f"_p.{c}").alias(c) for c in cols])
    )


def _csv_fields(order: tuple[str, ...]) -> Column:
    """The raw CSV line as a struct of string fields named ``order``, in that order."""
    return F.from_csv("raw", ", ".join(f"`{c}` STRING" for c in order), {"escape": '"', "mode": "PERMISSIVE"})


def _occurrences(text: Column, char: str) -> Column:
    """How many times ``char`` occurs in ``text`` (a literal replace: no regular expression)."""
    return F.length(text) - F.length(F.replace(text, F.lit(char), F.lit("")))


def validate(parsed: DataFrame, rules: SourceRules, reference: Mapping[str, frozenset[str]],
             ingested_at: datetime, max_skew_minutes: int, min_year: int) -> DataFrame:
    """Add ``_reason``: the parse error, else the first failing rule, else a duplicate key within the batch.

    Also adds the typed value of every non-string column (:func:`typed_column` names them), computed once per row
    for the checks and for :func:`to_silver`, rather than cast again in each check and in silver.
    """
    types = SILVER_TYPES[rules.source]
    casts = {c: typed_column(c) for c, t in types.items() if not isinstance(t, StringType)}
    parsed = parsed.select("*", *[typed(c, types[c]).alias(name) for c, name in casts.items()])
    checks = rule_predicates(rules, reference, F.lit(ingested_at).cast(TimestampType()), max_skew_minutes, min_year,
                             typed_columns={c: F.col(name) for c, name in casts.items()})
    flagged = parsed.withColumn("_reason", F.coalesce(F.col("_parse_error"), first_failure(checks)))
    key_cols = [F.trim(F.col(k)) for k in rules.key]
    order = Window.partitionBy(*key_cols, F.col("_reason").isNull()).orderBy("_source_file", "_line")
    dup = F.col("_reason").isNull() & (F.row_number().over(order) > 1)
    return flagged.withColumn("_reason", F.when(dup, F.lit("duplicate: " + ",".join(rules.key))).otherwise(F.col("_reason")))


def typed_column(column: str) -> str:
    """The column :func:`validate` adds with the typed value of a landing column."""
    return f"_typed_{column}"


def to_silver(valid: DataFrame, source: str, run_id: str, ingested_at: datetime) -> DataFrame:
    """Typed silver rows (contract columns, then lineage); the typed values :func:`validate` added are reused."""
    types = SILVER_TYPES[source]
    have = set(valid.columns)
    return valid.select(
        *[(F.col(typed_column(c)) if typed_column(c) in have else typed(c, t)).alias(c) for c, t in types.items()],
        "_source_file", "_line", F.lit(run_id).alias("_run_id"),
        F.lit(ingested_at).cast(TimestampType()).alias("_ingested_at"),
    )


def quarantine_rows(rejected: DataFrame, source: str, run_id: str, ingested_at: datetime,
                    as_of: date | None = None) -> DataFrame:
    """Rows of ``ops/quarantine``; ``customer_id`` kept (when the source has one) so erasure can find them.
    ``as_of``: the run's as-of date (contract section 3: every table has one); default the UTC date of
    ``ingested_at``."""
    cid = F.col("customer_id") if "customer_id" in LANDING_COLUMNS[source] else F.lit(None).cast(StringType())
    day = as_of if as_of is not None else (ingested_at if ingested_at.tzinfo else ingested_at.replace(
        tzinfo=timezone.utc)).astimezone(timezone.utc).date()
    return rejected.select(
        F.lit(source).alias("source"), F.col("_reason").alias("reason"), "raw",
        F.col("_source_file").alias("source_file"), F.col("_line").alias("line"), F.lit(run_id).alias("run_id"),
        cid.alias("customer_id"), F.lit(ingested_at).cast(TimestampType()).alias("quarantined_at"),
        F.lit(day).cast(DateType()).alias("as_of"),
    )


def ingest_source(
    spark: SparkSession,
    wh: io.Warehouse,
    landing: Path,
    rules: SourceRules,
    reference: Mapping[str, frozenset[str]],
    run_id: str,
    ingested_at: datetime,
    max_skew_minutes: int = 10,
    min_year: int = 1900,
    excluded: DataFrame | None = None,
    line_filter: Callable[[DataFrame], DataFrame] | None = None,
    recover: bool = True,
    max_batch_bytes: int = 0,
    as_of: date | None = None,
) -> IngestResult:
    """Ingest the new files of one source.

    ``excluded`` (column ``customer_id``) lists people with a pending erasure request, and ``line_filter`` (the
    erasure tombstones, :func:`pipelines.rights.erasure.tombstone_filter`) drops raw lines of people already
    erased: those rows are neither stored in bronze nor quarantined, so re-delivered files never bring them back.
    ``recover``: first delete the rows an interrupted run may have left for these files (see the module docs;
    the daily job passes False when the previous run succeeded: then no such row can exist, and the deletes
    are three Delta operations per source saved).
    ``max_batch_bytes`` (conf ``ingestion.max_batch_mb``; 0: no limit): an event source's new files are ingested
    in batches of whole files of at most that many bytes of landing text, oldest first, each batch written and
    recorded in ``ops/ingested_files`` before the next is read, so the rows held at once stay bounded however many
    days a full refresh brings (:func:`file_batches`). A key repeated in a later batch is then quarantined as
    "duplicate: already ingested" (within one batch: "duplicate: <key>"); either way it is stored once. A snapshot
    source is one batch: its latest row per key is chosen within the batch.
    ``as_of``: the run's as-of date, stored with the quarantined rows (default: the UTC date of ``ingested_at``).
    """
    source = rules.source
    files = new_files(spark, wh, landing, source)
    parts = [_ingest_files(spark, wh, landing, rules, batch, reference, run_id, ingested_at, max_skew_minutes,
                           min_year, excluded, line_filter, recover, as_of)
             for batch in file_batches(files, 0 if rules.snapshot is not None else max_batch_bytes)]
    return IngestResult(source, sum(r.files for r in parts), sum(r.rows for r in parts),
                        sum(r.valid for r in parts), sum(r.quarantined for r in parts),
                        dict(sum((Counter(r.reasons) for r in parts), Counter())))


def file_batches(files: list[Path], max_bytes: int) -> list[list[Path]]:
    """``files`` (in delivery order) cut into consecutive batches of at most ``max_bytes`` each; a file larger
    than that is a batch of its own; 0: one batch."""
    if max_bytes < 0:
        raise ValueError(f"the batch size must be 0 (no limit) or more, got {max_bytes}")
    if not files:
        return []
    if max_bytes == 0:
        return [list(files)]
    batches: list[list[Path]] = [[]]
    size = 0
    for f in files:
        n = f.stat().st_size
        if batches[-1] and size + n > max_bytes:
            batches.append([])
            size = 0
        batches[-1].append(f)
        size += n
    return batches


def _ingest_files(
    spark: SparkSession,
    wh: io.Warehouse,
    landing: Path,
    rules: SourceRules,
    files: list[Path],
    reference: Mapping[str, frozenset[str]],
    run_id: str,
    ingested_at: datetime,
    max_skew_minutes: int,
    min_year: int,
    excluded: DataFrame | None,
    line_filter: Callable[[DataFrame], DataFrame] | None,
    recover: bool,
    as_of: date | None = None,
) -> IngestResult:
    """One batch of :func:`ingest_source`: bronze, quarantine, silver and ``ops/ingested_files`` for ``files``."""
    source = rules.source
    rel = [str(p.relative_to(landing)) for p in files]
    headers = read_headers(files, landing, source)
    lines = read_raw_lines(spark, files, landing, source, headers)
    if excluded is not None and "customer_id" in LANDING_COLUMNS[source]:
        lines = _drop_excluded(lines, source, excluded, headers)
    if line_filter is not None:
        lines = line_filter(lines)
    # Materialised once: line ids must not change between the bronze write and the quarantine write.
    lines = io.materialise(lines)
    checked: DataFrame | None = None
    try:
        # Bronze also stores each parsed line's identifier tokens (what erasure and access look up, see
        # pipelines.rights.erasure.line_identifiers): the line is parsed here once more rather than bronze being
        # written from the wide validated rows below, which measured slower (benchmarks/ingest_side_by_side.py).
        bronze = parse_lines(lines, source, headers).select(
            F.lit(source).alias("source"), "raw", "_source_file", "_line", F.lit(run_id).alias("_run_id"),
            F.lit(ingested_at).cast(TimestampType()).alias("_ingested_at"),
            line_identifiers(source, F.col("_parse_error")).alias(LINE_IDS),
        )
        if recover:
            io.delete_where(spark, wh.table("bronze", source), F.col("_source_file").isin(rel))
        io.append(bronze, wh.table("bronze", source))

        checked = validate(parse_lines(lines, source, headers), rules, reference, ingested_at, max_skew_minutes,
                           min_year)
        checked = io.materialise(checked)
        silver_path = wh.table("silver", source)
        if recover and rules.snapshot is None:  # else an interrupted run's rows would look like re-deliveries
            io.delete_where(spark, silver_path, F.col("_source_file").isin(rel))
        valid = checked.where(F.col("_reason").isNull())
        if rules.snapshot is None and io.exists(spark, silver_path):
            # A key already in silver is a re-delivery: quarantined as a duplicate, never inserted twice.
            known = io.read(spark, silver_path).select(*[F.col(k).cast("string").alias(f"_k_{k}") for k in rules.key])
            typed_keys = [typed(k, SILVER_TYPES[source][k]).cast("string").alias(f"_k_{k}") for k in rules.key]
            seen = (valid.select("_source_file", "_line", *typed_keys)
                    .join(known, [f"_k_{k}" for k in rules.key], "left_semi").select("_source_file", "_line")
                    .withColumn("_seen", F.lit(True)))
            checked = (checked.join(seen, ["_source_file", "_line"], "left")
                       .withColumn("_reason", F.when(F.col("_seen"), F.lit("duplicate: already ingested"))
                                   .otherwise(F.col("_reason"))).drop("_seen"))
            # Materialised before silver changes: re-evaluating the check after the insert would see the
            # batch's own rows as "already ingested".
            checked = io.materialise(checked)
            valid = checked.where(F.col("_reason").isNull())

        q_path = wh.table("ops", "quarantine")
        if recover:
            io.delete_where(spark, q_path, F.col("source_file").isin(rel))
        io.append(quarantine_rows(checked.where(F.col("_reason").isNotNull()), source, run_id, ingested_at,
                                  as_of), q_path)

        silver = to_silver(valid, source, run_id, ingested_at)
        if rules.snapshot is None:
            # Keys already in silver were quarantined above (checked is materialised) and keys repeated within the
            # batch by validate(): a plain append adds only new keys, without a MERGE's second join.
            io.append(silver, silver_path)
        else:
            silver = _latest_per_key(silver, rules.snapshot.key, rules.snapshot.order_by)
            io.upsert(silver, silver_path, rules.snapshot.key, newer_than=rules.snapshot.order_by)

        # Rows and quarantined rows per file and per reason, in one job.
        counts = checked.groupBy("_source_file", "_reason").agg(F.count("*").alias("n")).collect()
        stats: dict[str, list[int]] = {}
        reasons: dict[str, int] = {}
        for r in counts:
            per_file = stats.setdefault(r._source_file, [0, 0])
            per_file[0] += r.n
            if r._reason is not None:
                per_file[1] += r.n
                reasons[r._reason] = reasons.get(r._reason, 0) + r.n
        done = spark.createDataFrame(
            [(source, f, run_id, ingested_at, *stats.get(f, (0, 0))) for f in rel], INGESTED_FILES)
        io.append(done, wh.table("ops", "ingested_files"))
        rows = sum(v[0] for v in stats.values())
        quarantined = sum(v[1] for v in stats.values())
        return IngestResult(source, len(files), rows, rows - quarantined, quarantined, reasons)
    finally:
        for df in (lines, checked):
            if df is not None:
                df.unpersist()


def _latest_per_key(df: DataFrame, key: tuple[str, ...], order_by: str | None) -> DataFrame:
    """Snapshot sources: within a batch, the latest row per key wins (by ``order_by``, then delivery order)."""
    order = [F.col(order_by).desc_nulls_last()] if order_by else []
    w = Window.partitionBy(*key).orderBy(*order, F.col("_source_file").desc(), F.col("_line").desc())
    return df.withColumn("_rn", F.row_number().over(w)).where("_rn = 1").drop("_rn")


def _drop_excluded(lines: DataFrame, source: str, excluded: DataFrame, headers: FileHeaders | None = None) -> DataFrame:
    if LANDING_FORMAT[source] == "jsonl":
        cid = F.get_json_object("raw", "$.customer_id")
    else:
        cid = _csv_fields(LANDING_COLUMNS[source])["customer_id"]
        if headers is not None and headers.orders:  # a reordered file: its customer id is where its header says
            cid = _by_file(headers.orders, lambda order: _csv_fields(order)["customer_id"]).otherwise(cid)
    return (lines.withColumn("_cid", F.trim(cid))
            .join(F.broadcast(excluded.select(F.col("customer_id").alias("_cid"))), "_cid", "left_anti")
            .drop("_cid"))
