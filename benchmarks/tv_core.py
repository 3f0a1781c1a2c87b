"""The core TV-profile computation, twice: in Spark (the pipeline's own functions) and as DuckDB SQL.

Ratio (b) of issue 10 compares the two engines on *the same computation over the same Parquet files*:

    silver/tv_viewing (exported once)  ->  minutes per customer, local day, genre, sub-genre
        -> look-back window (longest), consent gate (customers eligible for the TV profile)
        -> evidence units (genre and sub-genre interests, deny-listed genres dropped)
        -> recency-weighted W(c, i), T(c), population shares, lift, score per look-back window   ("scores")
        -> qualifying interests of the longest window, top ``max_interests`` per customer         ("top")

The Spark side chains :func:`pipelines.profiles.tv.tv_daily_genre_minutes`, :func:`~pipelines.consent.gate.
only_eligible`, :func:`~pipelines.profiles.tv.tv_units`, :func:`~pipelines.profiles.tv.score_interests`,
:func:`~pipelines.profiles.tv.qualified` and :func:`~pipelines.profiles.tv.top_interests` exactly as
:func:`pipelines.profiles.build.build_profiles` does; the DuckDB side is :func:`duckdb_sql`, written from the
formula in :mod:`pipelines.profiles.tv`. Both write ``scores`` and ``top`` as Parquet, and
:func:`compare_outputs` checks (with DuckDB, on the files) that they hold the same rows.

Example (needs a SparkSession and a warehouse after a daily run)::

    >>> inputs = export_inputs(spark, Warehouse(Path("wh")), settings, Path("core/inputs"))
    >>> params = CoreParams.from_settings(settings, date(2026, 11, 24))
    >>> spark_tv_core(spark, inputs, params, Path("core/spark"))
    >>> duckdb_tv_core(duckdb.connect(), inputs, params, Path("core/duckdb"))
    >>> compare_outputs(duckdb.connect(), Path("core/spark"), Path("core/duckdb"))["equal"]
    True
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import Settings
from pipelines.consent.gate import only_eligible
from pipelines.profiles.build import profile_references
from pipelines.profiles.tv import (
    ScoringParams,
    qualified,
    score_interests,
    top_interests,
    tv_daily_genre_minutes,
    tv_units,
)

#: Columns of the ``scores`` output of both engines (``Scores.interests`` of the pipeline).
SCORE_COLUMNS = ("customer_id", "window_days", "iab_audience_id", "weighted", "share", "population_share", "lift",
                 "score", "qualifies")


@dataclass(frozen=True)
class CoreInputs:
    """Parquet folders both engines read (written once by :func:`export_inputs`)."""

    root: Path

    @property
    def viewing(self) -> Path:
        return self.root / "tv_viewing"

    @property
    def eligibility(self) -> Path:
        return self.root / "eligibility"

    @property
    def genre_map(self) -> Path:
        return self.root / "genre_map"

    @property
    def subgenre_map(self) -> Path:
        return self.root / "subgenre_map"

    @property
    def labels(self) -> Path:
        return self.root / "labels"


@dataclass(frozen=True)
class CoreParams:
    """What the computation depends on besides the data (from ``conf/``, plus the as-of date)."""

    as_of: date
    timezone: str
    scoring: ScoringParams
    max_interests: int

    @classmethod
    def from_settings(cls, settings: Settings, as_of: date) -> "CoreParams":
        return cls(as_of, settings.timezone, ScoringParams.for_minutes(settings.profiles, as_of),
                   int(settings.profiles.max_interests))

    @property
    def first_day(self) -> date:
        """First local day of the longest look-back (the as-of day included), as ``read_inputs`` filters."""
        return self.as_of - timedelta(days=self.scoring.longest - 1)


def export_inputs(spark: SparkSession, wh: io.Warehouse, settings: Settings, root: Path) -> CoreInputs:
    """Write the computation's inputs as Parquet: silver tv_viewing (the columns it reads), the TV eligibility
    of the last run, and the genre, sub-genre and label mappings (deny-list applied, as the pipeline loads them).

    Timestamps are written as ``TIMESTAMP_MICROS`` (UTC-adjusted) so DuckDB reads them as instants too.
    """
    inputs = CoreInputs(root)
    if root.exists():
        shutil.rmtree(root)
    key = "spark.sql.parquet.outputTimestampType"
    previous = spark.conf.get(key, None)
    spark.conf.set(key, "TIMESTAMP_MICROS")
    try:
        (io.read(spark, wh.table("silver", "tv_viewing"))
         .select("customer_id", "start_ts", "duration_s", "genre", "subgenre")
         .write.parquet(str(inputs.viewing)))
        (io.read(spark, wh.table("silver", "eligibility")).select("customer_id", "eligible_tv_profile")
         .write.parquet(str(inputs.eligibility)))
        refs = profile_references(spark, settings.conf_dir)
        refs.genre_map.coalesce(1).write.parquet(str(inputs.genre_map))
        refs.subgenre_map.coalesce(1).write.parquet(str(inputs.subgenre_map))
        refs.labels.coalesce(1).write.parquet(str(inputs.labels))
    finally:
        if previous is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, previous)
    return inputs


# --------------------------------------------------------------------------------------------------- Spark


def spark_tv_core(spark: SparkSession, inputs: CoreInputs, params: CoreParams, out: Path) -> None:
    """The pipeline's TV-profile computation on the exported Parquet; writes ``out/scores`` and ``out/top``.

    Same chain as :func:`pipelines.profiles.build.build_profiles` (and ``read_inputs``' window filter), with the
    same ``cut`` (:func:`pipelines.io.materialise`): the scoring's shared intermediates are computed once.
    """
    if out.exists():
        shutil.rmtree(out)
    viewing = spark.read.parquet(str(inputs.viewing))
    elig = spark.read.parquet(str(inputs.eligibility))
    daily = tv_daily_genre_minutes(viewing, params.timezone).where(
        (F.col("day") >= F.lit(params.first_day)) & (F.col("day") <= F.lit(params.as_of)))
    units = tv_units(only_eligible(daily, elig, "tv_profile"), spark.read.parquet(str(inputs.genre_map)),
                     spark.read.parquet(str(inputs.subgenre_map)))
    scores = score_interests(units, params.scoring, cut=io.materialise)
    scores.interests.select(*SCORE_COLUMNS).write.parquet(str(out / "scores"))
    top = top_interests(qualified(scores, params.scoring), spark.read.parquet(str(inputs.labels)),
                        params.max_interests)
    top.write.parquet(str(out / "top"))


# -------------------------------------------------------------------------------------------------- DuckDB


def _glob(folder: Path) -> str:
    return str(folder / "*.parquet").replace("'", "''")


def duckdb_sql(inputs: CoreInputs, params: CoreParams) -> tuple[str, str]:
    """``(scores_sql, top_sql)``: the computation as DuckDB SQL (``top_sql`` reads the temp table ``scores``).

    Formula of :mod:`pipelines.profiles.tv`: weight(d) = 2^((d - E) / h) / 2^((A - E) / h); a unit of day d
    counts in window w when A - w < d <= A; W(c, i), T(c) (each unit once), pop(i) = sum W / sum T,
    lift = (W / T) / pop, score = round(lift, 4); qualifies when W >= min_evidence and lift >= min_lift.
    """
    s = params.scoring
    anchor = 2.0 ** ((s.as_of - s.epoch).days / s.half_life_days)
    windows = ", ".join(f"({int(w)})" for w in sorted(set(s.windows)))
    tz = params.timezone.replace("'", "''")
    as_of = f"DATE '{params.as_of.isoformat()}'"
    scores_sql = f"""
CREATE OR REPLACE TEMP TABLE scores AS
WITH viewing AS (
    SELECT customer_id,
           CAST(timezone('{tz}', CAST(start_ts AS TIMESTAMPTZ)) AS DATE) AS day,
           genre,
           NULLIF(lower(trim(regexp_replace(subgenre, '\\s+', ' ', 'g'))), '') AS subgenre,
           duration_s
    FROM read_parquet('{_glob(inputs.viewing)}')
    WHERE customer_id IS NOT NULL AND start_ts IS NOT NULL AND duration_s IS NOT NULL AND genre IS NOT NULL
),
eligible AS (
    SELECT DISTINCT customer_id FROM read_parquet('{_glob(inputs.eligibility)}') WHERE eligible_tv_profile
),
daily AS (        -- minutes per customer, local day, genre, sub-genre; window and consent gate first
    SELECT customer_id, day, genre, subgenre, SUM(duration_s) / 60.0 AS minutes
    FROM viewing
    WHERE day >= DATE '{params.first_day.isoformat()}' AND day <= {as_of}
      AND customer_id IN (SELECT customer_id FROM eligible)
    GROUP BY ALL
),
units AS (        -- one evidence unit per daily row: its genre and sub-genre interests, each once
    SELECT d.customer_id, d.day, d.minutes AS amount,
           list_distinct(list_filter([CAST(g.genre_audience_id AS INTEGER), CAST(s.subgenre_audience_id AS INTEGER)],
                                     lambda x: x IS NOT NULL)) AS interests
    FROM daily d
    LEFT JOIN read_parquet('{_glob(inputs.genre_map)}') g ON d.genre = g.genre
    LEFT JOIN read_parquet('{_glob(inputs.subgenre_map)}') s ON d.subgenre = s.subgenre
    WHERE NOT coalesce(g.genre_denied, false)
),
windowed AS (
    SELECT u.customer_id, w.window_days, u.interests,
           u.amount * pow(2.0, (u.day - DATE '{s.epoch.isoformat()}') / {float(s.half_life_days)!r}) / {anchor!r}
               AS weighted
    FROM units u JOIN (VALUES {windows}) AS w(window_days) ON u.day > {as_of} - w.window_days
    WHERE u.amount > 0 AND len(u.interests) > 0
      AND u.day <= {as_of} AND u.day > {as_of} - {int(s.longest)}
),
totals AS (       -- T(c) per window: every unit once
    SELECT customer_id, window_days, SUM(weighted) AS total FROM windowed GROUP BY ALL
),
per_interest AS ( -- W(c, i)
    SELECT customer_id, window_days, iab_audience_id, SUM(weighted) AS weighted
    FROM (SELECT customer_id, window_days, weighted, unnest(interests) AS iab_audience_id FROM windowed)
    GROUP BY ALL
),
population AS (
    SELECT p.window_days, p.iab_audience_id, p.population_weighted / t.population_total AS population_share
    FROM (SELECT window_days, iab_audience_id, SUM(weighted) AS population_weighted
          FROM per_interest GROUP BY ALL) p
    JOIN (SELECT window_days, SUM(total) AS population_total FROM totals GROUP BY ALL) t USING (window_days)
)
SELECT customer_id, window_days, iab_audience_id, weighted, share, population_share, lift,
       round(lift, 4) AS score,
       coalesce(weighted >= {float(s.min_evidence)!r} AND lift >= {float(s.min_lift)!r}, false) AS qualifies
FROM (
    SELECT i.customer_id, i.window_days, i.iab_audience_id, i.weighted,
           i.weighted / t.total AS share, p.population_share,
           (i.weighted / t.total) / p.population_share AS lift
    FROM per_interest i
    JOIN totals t USING (customer_id, window_days)
    JOIN population p USING (window_days, iab_audience_id)
)
"""
    top_sql = f"""
SELECT customer_id,
       list(struct_pack(interest := interest, iab_audience_id := iab_audience_id, score := score)
            ORDER BY rank) AS interests
FROM (
    SELECT q.customer_id, q.iab_audience_id, q.score, l.interest,
           row_number() OVER (PARTITION BY q.customer_id ORDER BY q.score DESC, q.iab_audience_id ASC) AS rank
    FROM scores q LEFT JOIN read_parquet('{_glob(inputs.labels)}') l USING (iab_audience_id)
    WHERE q.window_days = {int(s.longest)} AND q.qualifies
)
WHERE rank <= {int(params.max_interests)}
GROUP BY customer_id
"""
    return scores_sql, top_sql


def duckdb_tv_core(con, inputs: CoreInputs, params: CoreParams, out: Path) -> None:
    """The same computation in DuckDB (``con``: a connection); writes ``out/scores`` and ``out/top`` as Parquet."""
    if out.exists():
        shutil.rmtree(out)
    (out / "scores").mkdir(parents=True)
    (out / "top").mkdir(parents=True)
    scores_sql, top_sql = duckdb_sql(inputs, params)
    con.execute("SET TimeZone = 'UTC'")  # naive timestamps, if any, are UTC instants (the session zone of Spark)
    con.execute(scores_sql)
    columns = ", ".join(SCORE_COLUMNS)
    con.execute(f"COPY (SELECT {columns} FROM scores) TO '{out / 'scores' / 'part-0.parquet'}' (FORMAT parquet)")
    con.execute(f"COPY ({top_sql}) TO '{out / 'top' / 'part-0.parquet'}' (FORMAT parquet)")
    con.execute("DROP TABLE scores")


# ----------------------------------------------------------------------------------------------- checking


def _top_rows(folder: Path) -> str:
    return f"""
SELECT customer_id, rank, i.interest AS interest, i.iab_audience_id AS iab_audience_id,
       CAST(round(i.score * 10000) AS BIGINT) AS score_e4
FROM (SELECT customer_id, generate_subscripts(interests, 1) AS rank, unnest(interests) AS i
      FROM read_parquet('{_glob(folder / 'top')}'))
"""


def _score_rows(folder: Path) -> str:
    return f"""
SELECT customer_id, window_days, iab_audience_id, weighted, qualifies,
       CAST(round(score * 10000) AS BIGINT) AS score_e4
FROM read_parquet('{_glob(folder / 'scores')}')
"""


def checksums(con, folder: Path) -> dict[str, object]:
    """Order-independent checksums of one engine's outputs (sum of DuckDB ``hash`` over the rows).

    Scores enter as integers of 1e-4 (they are rounded to 4 decimals), so both engines' doubles compare exactly;
    the decayed sums ``weighted`` are left out of the checksum (summation order changes their last bits) and
    compared with a tolerance by :func:`compare_outputs`.
    """
    top = con.execute(f"""
SELECT count(*), count(DISTINCT customer_id),
       CAST(sum(CAST(hash(customer_id, rank, interest, iab_audience_id, score_e4) AS HUGEINT)) AS VARCHAR)
FROM ({_top_rows(folder)})""").fetchone()
    scores = con.execute(f"""
SELECT count(*), sum(CAST(qualifies AS INTEGER)),
       CAST(sum(CAST(hash(customer_id, window_days, iab_audience_id, score_e4, qualifies) AS HUGEINT)) AS VARCHAR)
FROM ({_score_rows(folder)})""").fetchone()
    return {
        "top_rows": int(top[0]), "top_customers": int(top[1]), "top_checksum": top[2] or "0",
        "score_rows": int(scores[0]), "qualifying": int(scores[1] or 0), "scores_checksum": scores[2] or "0",
    }


def compare_outputs(con, left: Path, right: Path, rel_tol: float = 1e-9) -> dict[str, object]:
    """Row-by-row comparison of two engines' outputs: rows only on one side, differing scores or qualification,
    differing published interests (customer, rank), and the largest relative difference of ``weighted``."""
    diff = con.execute(f"""
SELECT count(*) FILTER (WHERE a.customer_id IS NULL) AS only_right,
       count(*) FILTER (WHERE b.customer_id IS NULL) AS only_left,
       count(*) FILTER (WHERE a.score_e4 <> b.score_e4 OR a.qualifies <> b.qualifies) AS differing,
       coalesce(max(abs(a.weighted - b.weighted) / greatest(abs(a.weighted), 1e-300)), 0) AS max_rel_diff
FROM ({_score_rows(left)}) a
FULL OUTER JOIN ({_score_rows(right)}) b USING (customer_id, window_days, iab_audience_id)""").fetchone()
    top = con.execute(f"""
SELECT count(*) FROM ({_top_rows(left)}) a FULL OUTER JOIN ({_top_rows(right)}) b USING (customer_id, rank)
WHERE a.customer_id IS NULL OR b.customer_id IS NULL OR a.iab_audience_id <> b.iab_audience_id
   OR a.score_e4 <> b.score_e4 OR a.interest IS DISTINCT FROM b.interest""").fetchone()
    left_sums, right_sums = checksums(con, left), checksums(con, right)
    result = {
        "score_rows_only_left": int(diff[1]), "score_rows_only_right": int(diff[0]),
        "score_rows_differing": int(diff[2]), "weighted_max_rel_diff": float(diff[3]),
        "top_rows_differing": int(top[0]),
    }
    result["equal"] = (
        left_sums == right_sums and result["weighted_max_rel_diff"] <= rel_tol
        and not any(result[k] for k in ("score_rows_only_left", "score_rows_only_right", "score_rows_differing",
                                         "top_rows_differing"))
    )
    return result
