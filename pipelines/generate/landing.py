"""``audience generate``: a realistic synthetic landing zone that follows contract section 2 exactly.

Layout: ``<landing>/<source>/date=YYYY-MM-DD/part-NNNNN.<csv|jsonl>``. Event sources get one folder per day
of the window (a daily run reads one day); snapshot sources (customers, sociodemo_*, cadastral) get a full
delivery on the first day and small deliveries later. CSV files are UTF-8 with a header row and RFC 4180
quoting; JSONL files hold one object per line with every contract key.

Deterministic: rows come from ``spark.range`` and hash draws of ``(seed, field, key)``, with partition counts
that depend on the sizes only and no shuffle, so the same options give byte-identical files.

Example (needs a SparkSession ``spark``)::

    >>> from pipelines.config import load_settings
    >>> counts = generate_landing(spark, Path("/tmp/landing"), GenerateOptions(customers=100, days=3),
    ...                           load_settings())
    >>> sorted(counts)[:2]
    ['cadastral', 'consent_events']
"""
from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import SparkSession

from pipelines.config import Settings
from pipelines.generate.people import GenContext
from pipelines.generate.refdata import load_reference
from pipelines.generate.render import BAD_DATE, BAD_TIMESTAMP, BadRowSpec, render_lines
from pipelines.generate.sources import BUILDERS, SNAPSHOT_SOURCES
from pipelines.schemas import LANDING_COLUMNS, LANDING_FORMAT
from pipelines.spark import session_conf

#: Sources generated concurrently.
PARALLEL_SOURCES = 2

#: Default end date: fixed, so that a default run is reproducible (the CLI passes ``--end-date``).
DEFAULT_END_DATE = date(2026, 11, 25)

#: How each source's rows get damaged (see :mod:`pipelines.generate.render`); every kind applies where the
#: source has such a column: wrong types, unknown codes, duplicates, future timestamps, truncated lines and,
#: in JSONL sources, lines that are not JSON.
BAD_ROWS: dict[str, BadRowSpec] = {
    "customers": BadRowSpec(
        wrong_type=[("birth_date", BAD_DATE), ("tv_subscription", "yes"), ("customer_since", "31/12/2019"),
                    ("updated_at", BAD_TIMESTAMP)],
        unknown_code=[("gender", "V"), ("language", "es"), ("customer_type", "government"), ("postal_code", "0612")],
        future=["updated_at"],
    ),
    "consent_events": BadRowSpec(
        wrong_type=[("event_ts", BAD_TIMESTAMP), ("event_ts", "yesterday")],
        unknown_code=[("purpose", "all_cookies"), ("action", "maybe"), ("channel", "fax")],
        future=["event_ts"],
    ),
    "erasure_requests": BadRowSpec(wrong_type=[("requested_at", BAD_TIMESTAMP), ("requested_at", "asap")],
                                   future=["requested_at"]),
    "identity_links": BadRowSpec(
        wrong_type=[("authenticated_at", BAD_TIMESTAMP), ("authenticated_at", "abc")],
        unknown_code=[("id_type", "imei")],
        future=["authenticated_at"],
    ),
    "tv_viewing": BadRowSpec(
        wrong_type=[("duration_s", "abc"), ("duration_s", "12.5min"), ("start_ts", BAD_TIMESTAMP)],
        unknown_code=[("platform", "radio"), ("genre", "Telenovela")],
        future=["start_ts"],
    ),
    "tv_ad_exposures": BadRowSpec(
        wrong_type=[("ts", BAD_TIMESTAMP), ("ts", "abc")],
        unknown_code=[("platform", "chromecast")],
        future=["ts"],
    ),
    "web_events": BadRowSpec(
        wrong_type=[("ts", "abc"), ("ts", BAD_TIMESTAMP)],
        unknown_code=[("event_type", "scroll"), ("site_owner", "partner"), ("content_category_id", "999999")],
        future=["ts"],
    ),
    "purchases": BadRowSpec(
        wrong_type=[("amount_eur", "12,50"), ("amount_eur", "abc"), ("purchased_at", BAD_TIMESTAMP)],
        unknown_code=[("product_category", "drone"), ("product_tier", "ultra")],
        future=["purchased_at"],
    ),
    "loyalty_events": BadRowSpec(
        wrong_type=[("ts", BAD_TIMESTAMP), ("ts", "abc")],
        unknown_code=[("program", "airmiles"), ("content_category_id", "XYZ123")],
        future=["ts"],
    ),
    "sociodemo_individual": BadRowSpec(
        wrong_type=[("household_size", "three"), ("valid_from", BAD_DATE)],
        unknown_code=[("family_typology", "commune"), ("income_band", "very_high")],
    ),
    "sociodemo_area": BadRowSpec(
        wrong_type=[("share_households_with_children", "n/a"), ("valid_from", BAD_DATE)],
        unknown_code=[("urbanisation", "metropolitan"), ("median_income_band", "very_high"), ("postal_code", "0612")],
    ),
    "cadastral": BadRowSpec(
        wrong_type=[("has_garden", "yes"), ("plot_area_m2", "n/a")],
        unknown_code=[("dwelling_type", "castle")],
    ),
}


def bad_row_kinds(source: str) -> tuple[str, ...]:
    """The kinds of malformed row a source receives (when ``bad_row_share > 0``)."""
    return BAD_ROWS[source].kinds(LANDING_FORMAT[source])


@dataclass(frozen=True)
class GenerateOptions:
    """What to generate: sizes, window (``days`` ending on ``end_date``), seed and shares of special rows."""

    customers: int = 2000
    days: int = 28
    end_date: date = DEFAULT_END_DATE
    seed: int = 42
    bad_row_share: float = 0.01  # share of malformed rows per source (0 disables)
    minor_share: float = 0.03
    erasure_share: float = 0.005

    def __post_init__(self) -> None:
        if self.customers < 1:
            raise ValueError(f"customers must be at least 1, got {self.customers}")
        if self.days < 1:
            raise ValueError(f"days must be at least 1, got {self.days}")
        for name in ("bad_row_share", "minor_share", "erasure_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within 0..1, got {value}")

    @property
    def start_date(self) -> date:
        return self.end_date - timedelta(days=self.days - 1)


def _part_order(path: Path) -> tuple[int, str]:
    # Spark names files part-<task>-<uuid>.c<nnn>.txt: order by task, then by file counter.
    pieces = path.name.split("-")
    return (int(pieces[1]), path.name.rsplit(".", 2)[-2])


def _copy_counting(src: Path, dest: Path, header: str | None) -> int:
    """Move ``src`` to ``dest`` (prefixing the CSV header) and return its number of lines."""
    lines = 0
    if header is None:
        os.replace(src, dest)
        with dest.open("rb") as fin:
            while chunk := fin.read(1 << 22):
                lines += chunk.count(b"\n")
        return lines
    with src.open("rb") as fin, dest.open("wb") as fout:
        fout.write(header.encode("utf-8") + b"\n")
        while chunk := fin.read(1 << 22):
            lines += chunk.count(b"\n")
            fout.write(chunk)
    src.unlink()
    return lines


def _publish(staging: Path, target: Path, ext: str, header: str | None, all_days: list[date] | None) -> int:
    """Move Spark's part files to ``target/date=.../part-NNNNN.<ext>`` (numbered per folder); count rows.

    ``all_days``: for event sources, every day gets a folder, with a header-only (or empty) file if needed.
    """
    rows = 0
    for folder in sorted(p for p in staging.iterdir() if p.is_dir() and p.name.startswith("date=")):
        out = target / folder.name
        out.mkdir(parents=True, exist_ok=True)
        for i, part in enumerate(sorted(folder.glob("part-*"), key=_part_order)):
            rows += _copy_counting(part, out / f"part-{i:05d}.{ext}", header)
    for day in all_days or ():
        out = target / f"date={day.isoformat()}"
        if not out.exists():
            out.mkdir(parents=True)
            (out / f"part-00000.{ext}").write_text("" if header is None else header + "\n", encoding="utf-8")
    shutil.rmtree(staging)
    return rows


def _context(spark: SparkSession, options: GenerateOptions, settings: Settings) -> GenContext:
    ref = load_reference(settings.conf_dir, vendor_id=settings.tcf.vendor_id, end=options.end_date, seed=options.seed)
    return GenContext(
        spark=spark, seed=options.seed, customers=options.customers, days=options.days, end=options.end_date,
        tz=settings.timezone, minor_share=options.minor_share, erasure_share=options.erasure_share, ref=ref,
        purposes=tuple((name, p.basis) for name, p in settings.purposes.items()),
    )


def write_source(ctx: GenContext, source: str, landing: Path, bad_row_share: float) -> int:
    """Generate and write one source under ``landing/<source>``; returns its number of rows (bad ones included)."""
    fmt = LANDING_FORMAT[source]
    columns = LANDING_COLUMNS[source]
    frame = BUILDERS[source](ctx)
    lines = render_lines(frame, columns, fmt, BAD_ROWS[source], seed=ctx.seed, source=source,
                         bad_row_share=bad_row_share)
    staging = landing / f"_staging_{source}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        # A total order inside each task (the key is unique per valid row; a bad copy follows its row), so
        # the bytes do not depend on sort spills; the writer needs no extra sort since ``date`` leads.
        (lines.sortWithinPartitions("date", "_t", "_k", "_p").select("value", "date")
         .write.mode("overwrite").partitionBy("date").text(str(staging)))
        target = landing / source
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        header = ",".join(columns) if fmt == "csv" else None
        days = None if source in SNAPSHOT_SOURCES else [ctx.start + timedelta(days=i) for i in range(ctx.days)]
        return _publish(staging, target, fmt, header, days)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def generate_landing(
    spark: SparkSession, landing: Path, options: GenerateOptions, settings: Settings, *,
    sources: Iterable[str] | None = None,
) -> dict[str, int]:
    """Write every landing source of contract section 2 under ``landing``; rows written per source.

    Existing ``landing/<source>`` folders are replaced (other content of ``landing`` is left alone). Row
    counts include the malformed rows (``bad_row_share``) and exclude CSV headers. ``sources`` restricts the
    run to some sources (each source is generated independently, so the files are the same either way).
    """
    landing = Path(landing)
    chosen = list(LANDING_COLUMNS) if sources is None else list(sources)
    unknown = sorted(set(chosen) - set(LANDING_COLUMNS))
    if unknown:
        raise ValueError(f"unknown landing source(s): {', '.join(unknown)}")
    landing.mkdir(parents=True, exist_ok=True)
    ctx = _context(spark, options, settings)
    # Whole-stage code generation is off while generating: the row renderers are wide expressions whose
    # generated class Janino cannot compile ("Failed to compile the generated Java code", a long ERROR trace);
    # Spark then falls back to interpreted evaluation anyway. Output is the same either way.
    # Two sources at a time: planning a source is single-threaded driver work, so this keeps both cores
    # busy on small runs. Sources are independent, so the output does not depend on the interleaving.
    with session_conf(spark, {"spark.sql.codegen.wholeStage": "false"}), \
            ThreadPoolExecutor(max_workers=PARALLEL_SOURCES) as pool:
        futures = {s: pool.submit(write_source, ctx, s, landing, options.bad_row_share) for s in chosen}
        return {source: future.result() for source, future in futures.items()}


__all__ = ["GenerateOptions", "generate_landing", "write_source", "bad_row_kinds", "BAD_ROWS", "DEFAULT_END_DATE"]
