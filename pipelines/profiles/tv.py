"""TV interests (P1, P3, C6) and the interest scoring shared by both channels.

Everything here is a pure ``DataFrame -> DataFrame`` transform built from Spark built-ins (no Python UDF).

Evidence units
--------------
Scoring works on *evidence units*: ``customer_id, day, source, quantity, amount, interests`` where
``quantity`` is what happened (minutes watched, events), ``amount`` is the quantity times the source's
weight (1 for TV minutes; ``web_event_weights``, ``loyalty_weight``, ``purchase_weight`` on the web) and
``interests`` the distinct IAB Audience Taxonomy 1.1 ids the unit is evidence for.

A TV unit is one row of ``silver/tv_daily_genre_minutes``: a customer's minutes of one (genre, sub-genre)
on one local day, decoder, app and web summed. It carries the interest of its genre
(``conf/mappings/ctv_genre_to_audience.csv``) and of its sub-genre (``subgenre_to_audience.csv``, matched
on the lower-cased, trimmed text), each id at most once: 60 minutes of Sports/Football are 60 minutes of
"Sports fan" *and* 60 minutes of "Football fan", but they count once in the customer's total.
Units of a genre on the special-category deny-list (P4) and units with no mapped interest are dropped
before anything is computed, so they weigh in no total and no population figure.

Formula (an analyst can recompute a score by hand)
--------------------------------------------------
With as-of date ``A``, decay epoch ``E`` (``profiles.epoch``), half-life ``h`` days, look-back ``w`` days::

    weight(d)   = 2 ** ((d - E) / h)  /  2 ** ((A - E) / h)        (= 2 ** ((d - A) / h))
    a unit of day d counts in window w when  A - w < d <= A        (w days, the as-of day included)

    W(c, i)     = sum of amount * weight(d) over customer c's units carrying interest i
    T(c)        = sum of amount * weight(d) over all of c's units (each unit once)
    share(c, i) = W(c, i) / T(c)
    pop(i)      = sum over c of W(c, i)  /  sum over c of T(c)       (c: customers eligible for the profile)
    lift(c, i)  = share(c, i) / pop(i)
    score       = round(lift, 4)

The first factor of the weight is anchored to a fixed epoch, so a day's weighted evidence never changes
as days pass; dividing by the as-of factor expresses it as "minutes (or events) as of A".

An interest is *published* when, in the longest look-back, ``W(c, i) >= min_evidence`` (``min_tv_minutes``
for minutes, ``min_web_events`` for events) and ``lift >= min_lift``; a customer keeps the
``max_interests`` highest scores (ties: lower audience id first). Every window's figures are kept as
internal evidence (``silver/interest_evidence``), never exported.

Worked example (half-life 7 days, one 28-day window): customer A watched 120 min of Sports/Football on A
and 60 min of Drama on A - 7 (weight 1/2); customer B 120 min of Drama on A and 60 min of Sports on
A - 14 (weight 1/4). T(A) = 120 + 30 = 150, T(B) = 120 + 15 = 135; pop(Football) = 120 / 285;
share(A, Football) = 120 / 150 = 0.8; lift = 0.8 / (120 / 285) = 1.9, score 1.9.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType

from pipelines import io
from pipelines.config import ProfileSettings
from pipelines.schemas import INTEREST

#: Columns of an evidence-unit DataFrame (see the module docstring).
UNIT_COLUMNS = ("customer_id", "day", "source", "quantity", "amount", "interests")

#: ``2 ** x`` overflows a double above x = 1024; refuse well before (the epoch must follow the as-of date).
_MAX_DECAY_EXPONENT = 900.0

TV_SOURCE = "tv_viewing"


# --------------------------------------------------------------------------------------------- shared helpers


#: Microseconds in a day: a local wall clock in microseconds since 1970-01-01 00:00, divided by it, is a day number.
_MICROS_PER_DAY = 86_400_000_000


def local_day(ts: Column, tz: str) -> Column:
    """The calendar date of an instant in time zone ``tz``, whatever the session time zone.

    ``from_utc_timestamp`` adds ``tz``'s offset at that instant (daylight saving time included) to the instant's
    microseconds, which gives ``tz``'s wall clock counted from 1970-01-01 00:00; the day number is that count
    divided by a day, rounded down. No step uses the session time zone. It replaced ``to_date(convert_timezone(
    None, tz, ts::timestamp_ntz))``, which gives the same dates (checked on the 2.9M viewing rows of the 100k
    benchmark and by ``tests/unit/test_profiles_scores.py``) at 5 times the cost; Spark evaluates it twice per row
    where a filter on the day is pushed below an aggregation by day, as in the core TV profile computation, where
    the change saved about 2.5 s of 21 s at 100k customers (``benchmarks/results/2026-11-29-scoring-core.md``).
    """
    wall_micros = F.unix_micros(F.from_utc_timestamp(ts, F.lit(tz)))
    return F.date_from_unix_date(F.floor(wall_micros / F.lit(_MICROS_PER_DAY)).cast(IntegerType()))


def subgenre_key_col(subgenre: Column) -> Column:
    """Spark twin of :func:`pipelines.reference.taxonomy.subgenre_key`: whitespace collapsed, trimmed, lower."""
    return F.lower(F.trim(F.regexp_replace(subgenre, r"\s+", " ")))


def recency_weight(day: Column, as_of: date, epoch: date, half_life_days: float) -> Column:
    """``2 ** ((day - epoch) / h) / 2 ** ((as_of - epoch) / h)``: 1 on the as-of day, 1/2 one half-life before.

    Raises ``ValueError`` when the as-of date is so far from the epoch that the anchored factor would
    overflow a double (move ``profiles.epoch`` forward).
    """
    if half_life_days <= 0:
        raise ValueError(f"profiles.half_life_days must be positive, got {half_life_days}")
    exponent = (as_of - epoch).days / half_life_days
    if abs(exponent) > _MAX_DECAY_EXPONENT:
        raise ValueError(
            f"profiles.epoch {epoch} is {abs((as_of - epoch).days)} days from the as-of date {as_of}: with a "
            f"half-life of {half_life_days} days the decay factor overflows; move the epoch closer"
        )
    anchor = 2.0 ** exponent
    return F.pow(F.lit(2.0), F.datediff(day, F.lit(epoch)) / F.lit(float(half_life_days))) / F.lit(anchor)


@dataclass(frozen=True)
class ScoringParams:
    """Everything the scoring formula needs (see the module docstring)."""

    as_of: date
    epoch: date
    half_life_days: float
    windows: tuple[int, ...]
    min_evidence: float
    min_lift: float

    def __post_init__(self) -> None:
        if not self.windows or any(w <= 0 for w in self.windows):
            raise ValueError(f"profiles.lookback_days must be positive day counts, got {self.windows}")

    @property
    def longest(self) -> int:
        return max(self.windows)

    @classmethod
    def for_minutes(cls, profiles: ProfileSettings, as_of: date) -> "ScoringParams":
        """TV minutes: evidence threshold ``min_tv_minutes``."""
        return cls(as_of, profiles.epoch, float(profiles.half_life_days), tuple(profiles.lookback_days),
                   float(profiles.min_tv_minutes), float(profiles.min_lift))

    @classmethod
    def for_events(cls, profiles: ProfileSettings, as_of: date) -> "ScoringParams":
        """Web, loyalty and purchase events: evidence threshold ``min_web_events``."""
        return cls(as_of, profiles.epoch, float(profiles.half_life_days), tuple(profiles.lookback_days),
                   float(profiles.min_web_events), float(profiles.min_lift))


@dataclass(frozen=True)
class Scores:
    """Output of :func:`score_interests`.

    ``interests``: customer_id, window_days, iab_audience_id, weighted, share, population_share, lift, score,
    qualifies (one row per customer, window and interest with evidence).
    ``sources``: the same per source: customer_id, window_days, iab_audience_id, source, quantity (undecayed
    minutes or events), weighted (that source's part of the decayed, weighted evidence), then the interest's
    share, population_share, lift and score.
    """

    interests: DataFrame
    sources: DataFrame


#: Pseudo interest id carrying a customer's total T(c) through the same aggregation as the interests.
_TOTAL = -1


def _identity(df: DataFrame) -> DataFrame:
    return df


def score_interests(units: DataFrame, params: ScoringParams,
                    cut: Callable[[DataFrame], DataFrame] = _identity) -> Scores:
    """Recency-weighted, population-relative interest scores of evidence units, per look-back window.

    The population is every customer present in ``units``: callers pass units of eligible customers only,
    and a customer without units would add zero to both sums of ``pop(i)``.

    One aggregation serves every figure: each unit is also counted under the pseudo interest ``-1``, whose
    sums are T(c) (per customer) and the population total (per window); window functions then put W(c, i)
    and T(c) side by side without joins, and the population figures come from one small aggregate.

    ``cut`` (the profiles stage passes :func:`pipelines.io.materialise`) is applied twice: to the per-source sums,
    which both the population figures and the per-customer figures read (uncut, Spark computed them twice: it
    does not reuse the exchange of a self-joined aggregate), and to the scored rows, of which ``interests`` and
    ``sources`` are then projections. The three window functions share one sort: the most specific (per
    interest, ordered by source) runs first, and its ordering satisfies the other two.
    """
    spark = units.sparkSession
    windows = io.local_frame(spark, [(int(w),) for w in sorted(set(params.windows))], "window_days int")
    weight = recency_weight(F.col("day"), params.as_of, params.epoch, params.half_life_days)
    in_window = F.col("day") > F.date_sub(F.lit(params.as_of), F.col("window_days"))
    # One shuffle by customer: the aggregation and the per-customer window functions below reuse it.
    by_source = cut(
        units.where((F.col("day") <= F.lit(params.as_of))
                    & (F.col("day") > F.date_sub(F.lit(params.as_of), params.longest))
                    & (F.col("amount") > 0) & (F.size("interests") > 0))
        .join(F.broadcast(windows), in_window, "inner")
        .select("customer_id", "window_days", "source", "quantity", (F.col("amount") * weight).alias("weighted"),
                F.array_union(F.col("interests").cast("array<int>"), F.array(F.lit(_TOTAL))).alias("_ids"))
        .repartition("customer_id")
        .select("customer_id", "window_days", "source", "quantity", "weighted",
                F.explode("_ids").alias("iab_audience_id"))
        .groupBy("customer_id", "window_days", "iab_audience_id", "source")
        .agg(F.sum("quantity").alias("quantity"), F.sum("weighted").alias("weighted"))
    )
    # Population sums per window and interest; the pseudo interest's sum is the population total.
    population = (
        by_source.groupBy("window_days", "iab_audience_id").agg(F.sum("weighted").alias("population_weighted"))
        .withColumn("population_total", F.sum(F.when(F.col("iab_audience_id") == _TOTAL,
                                                      F.col("population_weighted"))).over(
            Window.partitionBy("window_days")))
    )
    customer = Window.partitionBy("customer_id", "window_days")
    interest = Window.partitionBy("customer_id", "window_days", "iab_audience_id")
    scored = cut(
        by_source
        .withColumn("_first", F.row_number().over(interest.orderBy("source")) == 1)
        .withColumn("interest_weighted", F.sum("weighted").over(interest))
        .withColumn("total", F.sum(F.when(F.col("iab_audience_id") == _TOTAL, F.col("weighted"))).over(customer))
        .where(F.col("iab_audience_id") != _TOTAL)
        .join(F.broadcast(population), ["window_days", "iab_audience_id"])
        .withColumn("share", F.try_divide(F.col("interest_weighted"), F.col("total")))
        .withColumn("population_share", F.try_divide(F.col("population_weighted"), F.col("population_total")))
        .withColumn("lift", F.try_divide(F.col("share"), F.col("population_share")))
        .withColumn("score", F.round("lift", 4))
        .withColumn("qualifies", F.coalesce(
            (F.col("interest_weighted") >= F.lit(params.min_evidence)) & (F.col("lift") >= F.lit(params.min_lift)),
            F.lit(False)))
        .withColumn("iab_audience_id", F.col("iab_audience_id").cast(IntegerType()))
    )
    figures = ("share", "population_share", "lift", "score")
    sources = scored.select("customer_id", "window_days", "iab_audience_id", "source", "quantity", "weighted",
                            *figures)
    interests = scored.where(F.col("_first")).select(
        "customer_id", "window_days", "iab_audience_id", F.col("interest_weighted").alias("weighted"), *figures,
        "qualifies")
    return Scores(interests=interests, sources=sources)


def qualified(scores: Scores, params: ScoringParams) -> DataFrame:
    """``customer_id, iab_audience_id, score`` of the interests that qualify in the longest look-back."""
    return (
        scores.interests.where((F.col("window_days") == params.longest) & F.col("qualifies"))
        .select("customer_id", "iab_audience_id", "score")
    )


def top_interests(candidates: DataFrame, labels: DataFrame, max_interests: int) -> DataFrame:
    """``customer_id, interests``: at most ``max_interests`` per customer, highest score first.

    ``candidates``: customer_id, iab_audience_id, score (one row per customer and interest);
    ``labels``: iab_audience_id, interest (the readable label of the mapping tables).
    The array elements follow :data:`pipelines.schemas.INTEREST`.
    """
    rank = F.row_number().over(
        Window.partitionBy("customer_id").orderBy(F.col("score").desc(), F.col("iab_audience_id").asc()))
    ranked = (
        candidates.join(F.broadcast(labels), "iab_audience_id", "left")
        .withColumn("rank", rank)
        .where(F.col("rank") <= max_interests)
    )
    # array_sort on (rank, ...) structs orders by rank; transform then drops the rank (both built-ins).
    return ranked.groupBy("customer_id").agg(
        F.transform(
            F.array_sort(F.collect_list(F.struct("rank", "interest", "iab_audience_id", "score"))),
            lambda s: F.struct(
                s["interest"].alias("interest"),
                s["iab_audience_id"].cast(IntegerType()).alias("iab_audience_id"),
                s["score"].cast("double").alias("score"),
            ),
        ).alias("interests")
    )


def empty_interests() -> Column:
    """An empty ``array<INTEREST>`` (customers without a published interest)."""
    return F.array().cast(ArrayType(INTEREST))


# --------------------------------------------------------------------------------------------------- TV only


def tv_daily_genre_minutes(viewing: DataFrame, tz: str) -> DataFrame:
    """``silver/tv_viewing`` -> minutes per customer, local day, genre and sub-genre (all platforms summed).

    Columns: customer_id, day, genre, subgenre (normalised key, see :func:`subgenre_key_col`; null when
    none), minutes (double), views (long). A per-source aggregate: it joins nothing, and it holds every
    customer's viewing, because billing and anonymous reporting may use viewing that profiles may not (C6).
    """
    return (
        viewing.where(F.col("customer_id").isNotNull() & F.col("start_ts").isNotNull()
                      & F.col("duration_s").isNotNull() & F.col("genre").isNotNull())
        .select(
            "customer_id",
            local_day(F.col("start_ts"), tz).alias("day"),
            "genre",
            F.nullif(subgenre_key_col(F.col("subgenre")), F.lit("")).alias("subgenre"),
            "duration_s",
        )
        .groupBy("customer_id", "day", "genre", "subgenre")
        .agg((F.sum("duration_s") / F.lit(60.0)).alias("minutes"), F.count(F.lit(1)).alias("views"))
    )


def tv_units(daily: DataFrame, genre_map: DataFrame, subgenre_map: DataFrame) -> DataFrame:
    """Evidence units (source ``tv_viewing``, quantity = amount = minutes) of TV daily aggregates.

    ``genre_map``: genre, genre_audience_id (null: the genre yields no interest), genre_denied (its content
    category or audience node is a special category: the unit is dropped whatever its sub-genre says).
    ``subgenre_map``: subgenre, subgenre_audience_id (only mapped, non-denied rows).
    """
    units = (
        daily.join(F.broadcast(genre_map), "genre", "left")
        .join(F.broadcast(subgenre_map), "subgenre", "left")
        .where(~F.coalesce(F.col("genre_denied"), F.lit(False)))
        .select(
            "customer_id", "day", F.lit(TV_SOURCE).alias("source"),
            F.col("minutes").alias("quantity"), F.col("minutes").alias("amount"),
            F.array_distinct(F.array_compact(F.array(
                F.col("genre_audience_id").cast(IntegerType()),
                F.col("subgenre_audience_id").cast(IntegerType()),
            ))).alias("interests"),
        )
    )
    return units.where(F.size("interests") > 0)
