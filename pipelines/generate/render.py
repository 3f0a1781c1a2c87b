"""Rendering of generated rows as landing-zone lines (contract section 2), bad rows included.

A source frame holds the contract columns as strings plus three helper columns: ``date`` (the delivery
folder, ``YYYY-MM-DD``), ``_t`` and ``_k`` (sort keys: the row's seconds in the window, and a key unique per
row). :func:`render_lines` turns it into one text line per row (CSV with RFC 4180 quoting, or JSON) and adds
the malformed copies that real deliveries contain.

Bad rows are *extra* rows: a valid row stays as it is and, for a ``bad_row_share`` of rows, a damaged copy
follows it. So the valid content of a landing zone does not depend on ``bad_row_share``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.generate.draws import uniform

#: CSV rendering: RFC 4180 (a quote inside a quoted field is doubled), nothing trimmed, null = empty.
CSV_OPTIONS = {
    "sep": ",",
    "quote": '"',
    "escape": '"',
    "nullValue": "",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
}
#: JSON rendering: nulls are written (every contract key is present on every line).
JSON_OPTIONS = {"ignoreNullFields": "false"}

WRONG_TYPE = "wrong_type"
UNKNOWN_CODE = "unknown_code"
DUPLICATE = "duplicate"
FUTURE_TIMESTAMP = "future_timestamp"
TRUNCATED = "truncated"
NOT_JSON = "not_json"

#: A malformed date and timestamp that still look like ISO-8601 at first sight.
BAD_DATE = "2026-13-45"
BAD_TIMESTAMP = "2026-13-45T25:61:00+01:00"
FUTURE_YEAR = "2099"


@dataclass(frozen=True)
class BadRowSpec:
    """How rows of one source get damaged: per kind, the columns and the values to put there."""

    wrong_type: Sequence[tuple[str, str]] = ()
    unknown_code: Sequence[tuple[str, str]] = ()
    future: Sequence[str] = ()  # timestamp columns that can be pushed to the year 2099
    extra: Mapping[str, str] = field(default_factory=dict)

    def kinds(self, fmt: str) -> tuple[str, ...]:
        """The bad-row kinds this source gets, in a fixed order."""
        out = []
        if self.wrong_type:
            out.append(WRONG_TYPE)
        if self.unknown_code:
            out.append(UNKNOWN_CODE)
        out.append(DUPLICATE)
        if self.future:
            out.append(FUTURE_TIMESTAMP)
        out.append(TRUNCATED)
        if fmt == "jsonl":
            out.append(NOT_JSON)
        return tuple(out)


# --------------------------------------------------------------------------------------------- timestamps


def local_time(start: date, day: Column, seconds: Column) -> Column:
    """Local wall-clock time (TIMESTAMP_NTZ) ``day`` days and ``seconds`` seconds after ``start`` 00:00."""
    return F.timestamp_add("SECOND", (day * 86400 + seconds).cast("long"), F.lit(start).cast("timestamp_ntz"))


def iso_local(local: Column, tz: str) -> Column:
    """ISO-8601 with the zone's offset at that instant, e.g. ``2026-11-25T20:15:00+01:00``.

    Independent of the session time zone: wall time -> UTC -> wall time again (a time that does not exist,
    in the spring-forward gap, moves to the valid time at the same instant), offset = the difference.
    """
    utc = F.convert_timezone(F.lit(tz), F.lit("UTC"), local)
    wall = F.convert_timezone(F.lit("UTC"), F.lit(tz), utc)
    offset = F.timestamp_diff("MINUTE", utc, wall)
    magnitude = F.abs(offset)
    return F.concat(
        F.date_format(wall, "yyyy-MM-dd'T'HH:mm:ss"),
        F.when(offset < 0, F.lit("-")).otherwise(F.lit("+")),
        F.lpad(F.floor(magnitude / 60).cast("string"), 2, "0"),
        F.lit(":"),
        F.lpad(F.pmod(magnitude, F.lit(60)).cast("string"), 2, "0"),
    )


def day_of(iso: Column) -> Column:
    """The local date part (``YYYY-MM-DD``) of a rendered timestamp."""
    return F.substring(iso, 1, 10)


def bool_text(flag: Column) -> Column:
    """``true``/``false`` (null stays null)."""
    return F.when(flag, F.lit("true")).when(~flag, F.lit("false"))


def date_text(d: Column) -> Column:
    """``YYYY-MM-DD`` of a DATE column."""
    return F.date_format(d, "yyyy-MM-dd")


# --------------------------------------------------------------------------------------------- lines


def render(columns: Sequence[str], fmt: str, overrides: Mapping[str, Column] | None = None) -> Column:
    """One CSV or JSON line of the given columns, with some columns replaced by ``overrides``."""
    overrides = overrides or {}
    row = F.struct(*[overrides.get(c, F.col(c)).alias(c) for c in columns])
    if fmt == "csv":
        return F.to_csv(row, CSV_OPTIONS)
    if fmt == "jsonl":
        return F.to_json(row, JSON_OPTIONS)
    raise ValueError(f"unknown landing format {fmt!r}")


def _to_year_2099(col: str) -> Column:
    # 29 February does not exist in 2099: keep the row a *future* one, not a wrong type.
    pushed = F.concat(F.lit(FUTURE_YEAR), F.substring(F.col(col), 5, 1000))
    return F.regexp_replace(pushed, f"^{FUTURE_YEAR}-02-29", f"{FUTURE_YEAR}-02-28")


def _truncate(line: Column, u: Column, fmt: str) -> Column:
    """Cut a line in the middle, as an interrupted transfer does.

    CSV: the cut falls before the last separator (so fields are missing) and never leaves a quote open (an
    open quote would swallow the next lines in a CSV reader). JSON: anywhere before the closing brace.
    """
    length = F.length(line)
    cut = F.floor(length * (F.lit(0.3) + F.lit(0.4) * u)).cast("int")
    if fmt == "jsonl":
        return F.substring(line, 1, F.greatest(cut, F.lit(1)))
    last_sep = length - F.instr(F.reverse(line), ",") + 1
    prefix = F.substring(line, 1, F.greatest(F.least(cut, last_sep - 1), F.lit(1)))
    quotes = F.length(prefix) - F.length(F.regexp_replace(prefix, '"', ""))
    return F.when(F.pmod(quotes, F.lit(2)) == 1, F.regexp_replace(prefix, '"[^"]*$', "")).otherwise(prefix)


def bad_line(columns: Sequence[str], fmt: str, spec: BadRowSpec, kind: Column, u: Column, valid: Column) -> Column:
    """The damaged copy of a row, for the kind index ``kind`` into ``spec.kinds(fmt)``.

    Column-level damage (wrong type, unknown code, year 2099) is one render whose cells are replaced where
    the kind and a drawn option say so; the other kinds work on the rendered line.
    """
    kinds = spec.kinds(fmt)
    index = {name: i for i, name in enumerate(kinds)}
    option = F.floor(u * 1_000_003)
    cells: dict[str, Column] = {}
    damage = {
        WRONG_TYPE: [(c, F.lit(v)) for c, v in spec.wrong_type],
        UNKNOWN_CODE: [(c, F.lit(v)) for c, v in spec.unknown_code],
        FUTURE_TIMESTAMP: [(c, _to_year_2099(c)) for c in spec.future],
    }
    for name, options in damage.items():
        if name not in index:
            continue
        chosen = F.pmod(option, F.lit(len(options)))
        for i, (col, value) in enumerate(options):
            cells[col] = F.when((kind == index[name]) & (chosen == i), value).otherwise(cells.get(col, F.col(col)))
    line = F.when(kind == index[DUPLICATE], valid).when(kind == index[TRUNCATED], _truncate(valid, u, fmt))
    if NOT_JSON in index:
        line = line.when(kind == index[NOT_JSON], render(columns, "csv"))  # a CSV line in a JSON feed
    return line.otherwise(render(columns, fmt, cells))


def render_lines(
    frame: DataFrame, columns: Sequence[str], fmt: str, spec: BadRowSpec, *, seed: int, source: str,
    bad_row_share: float,
) -> DataFrame:
    """``(value, date, _t, _k, _p)``: the rendered lines of a source frame, bad copies included.

    A row gets a damaged copy when a hash draw falls under ``bad_row_share``. So that every kind shows up
    even in tiny deliveries, the first rows of the first partition also get one, one kind each (positions
    are deterministic: frames are built from ``spark.range`` with a fixed partition count and no shuffle).
    """
    kinds = spec.kinds(fmt)
    frame = frame.withColumn("_valid", render(columns, fmt))
    valid = F.col("_valid")
    u_pick = uniform(seed, f"bad:{source}", "_k")
    u_kind = uniform(seed, f"bad-kind:{source}", "_k")
    u_how = uniform(seed, f"bad-how:{source}", "_k")
    df = frame.withColumn("_m", F.monotonically_increasing_id())
    forced = (F.spark_partition_id() == 0) & (F.col("_m") < len(kinds))
    if bad_row_share > 0:
        is_bad = forced | (u_pick < F.lit(bad_row_share))
        kind = F.when(forced, F.col("_m")).otherwise(F.floor(u_kind * len(kinds))).cast("int")
        df = df.withColumn("_bad", is_bad).withColumn("_kind", kind)
        lines = F.when(F.col("_bad"), F.array(valid, bad_line(columns, fmt, spec, F.col("_kind"), u_how, valid)))
        lines = lines.otherwise(F.array(valid))
    else:
        lines = F.array(valid)
    return df.select("date", "_t", "_k", F.posexplode(lines).alias("_p", "value"))
