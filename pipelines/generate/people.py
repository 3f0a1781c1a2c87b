"""Synthetic people: every attribute is a pure function of a person key (a long), so any source can
recompute a customer's age, language, favourite genres or devices without joining a customer table.

Keys ``0 .. customers-1`` are customers; keys from :data:`ANON_BASE` up are anonymous web visitors (people
who are not customers, or never identify themselves) and get the same kind of profile.

Example (needs a SparkSession ``spark`` and a :class:`GenContext` ``ctx``)::

    people = with_core(spark.range(10).withColumnRenamed("id", "pk"), ctx, "p_age", "p_hh", "p_fav1")
    with_home(people, ctx).select("pk", "p_age", "p_lang", "g_postal", "p_fav1").show()
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cached_property

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, StringType, StructField, StructType

from pipelines.generate import vocab
from pipelines.generate.draws import (
    between, exponential, literal_array, normal, pick, raw_hash, uniform, uuid4, weighted, weighted_by,
)
from pipelines.generate.refdata import HOBBY_THEMES, POSTAL_SLOTS, Reference

#: Person keys of anonymous web visitors start here (far above any customer count).
ANON_BASE = 1 << 40
#: Share of customers who join during the window (first delivered on their join day).
JOIN_SHARE = 0.02
#: Share of customers living at the address of the previous customer (a household of two).
SHARED_ADDRESS_SHARE = 0.12
#: Offset of the person key used to draw the new address of a customer who moves.
MOVE_KEY_OFFSET = 1 << 36


@dataclass(frozen=True)
class GenContext:
    """What every source builder needs: sizes, the window, the seed, reference data, the session."""

    spark: SparkSession
    seed: int
    customers: int
    days: int
    end: date
    tz: str
    minor_share: float
    erasure_share: float
    ref: Reference
    purposes: tuple[tuple[str, str], ...]  # (name, legal basis), configuration order

    @property
    def start(self) -> date:
        return self.end - timedelta(days=self.days - 1)

    def u(self, name: str, *keys: Column | str) -> Column:
        """A uniform draw of this run's seed."""
        return uniform(self.seed, name, *keys)

    @cached_property
    def slot_frame(self) -> DataFrame:
        """``_slot -> area`` (POSTAL_SLOTS rows): a draw of a slot is a draw of a postal code, weighted."""
        schema = StructType([
            StructField("_slot", IntegerType(), False),
            StructField("postal", StringType(), False),
            StructField("locality", StringType(), False),
            StructField("province", StringType(), False),
            StructField("region", StringType(), False),
            StructField("lang_area", StringType(), False),
            StructField("urban", StringType(), False),
        ])
        areas = self.ref.areas
        rows = [
            (s, a.postal_code, a.locality, a.province_code, a.region_code, a.language_area, a.urbanisation)
            for s, a in ((s, areas[i]) for s, i in enumerate(self.ref.slot_area))
        ]
        return self.spark.createDataFrame(rows, schema)


def customer_id(pk: Column) -> Column:
    """Customer number: a fixed bijective scramble of the key (C + 8 digits), not a running number."""
    return F.format_string("C%08d", F.pmod(pk * 7919 + 1_234_567, F.lit(100_000_000)))


def _genre_table(ref: Reference, group: int) -> list[tuple[str, float]]:
    return [(g, vocab.GENRE_WEIGHTS.get(g, (1.0, 1.0, 1.0))[group]) for g in ref.genres]


def genre_draw(ctx: GenContext, u: Column, age_group: Column) -> Column:
    """A CTV genre by popularity in the person's age group (0, 1, 2)."""
    return weighted_by(age_group, {g: _genre_table(ctx.ref, g) for g in (0, 1, 2)}, u, resolution=400)


#: Person attributes of :func:`with_core`: name -> (projection tier, attributes it needs).
CORE_ATTRIBUTES: dict[str, tuple[int, tuple[str, ...]]] = {
    "p_join": (0, ()), "p_shared": (0, ()), "p_minor": (0, ()), "p_attitude": (0, ()), "_band": (0, ()),
    "_gender": (0, ()), "p_sport": (0, ()), "p_hobby": (0, ()),
    "p_hh": (1, ("p_shared",)), "p_age": (1, ("p_minor", "_band")), "p_gender": (1, ("_gender",)),
    "p_business": (1, ("p_minor",)),
    "p_birth": (2, ("p_age",)), "p_age_group": (2, ("p_age",)),
    "p_tv": (3, ("p_age_group",)), "p_internet": (3, ("p_age_group",)), "p_mobile": (3, ("p_age_group",)),
    "p_tv_act": (3, ()), "p_web_act": (3, ("p_age_group",)), "p_tech": (3, ("p_age_group",)),
    "p_fav1": (3, ("p_age_group", "p_minor")), "p_fav2": (3, ("p_age_group", "p_minor")),
    "p_fav3": (3, ("p_age_group", "p_minor")),
}


def _closure(names: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in CORE_ATTRIBUTES:
            raise ValueError(f"unknown person attribute {name!r}")
        if name not in out:
            out.add(name)
            todo.extend(CORE_ATTRIBUTES[name][1])
    return out


def with_core(df: DataFrame, ctx: GenContext, *names: str, key: str = "pk") -> DataFrame:
    """Add the requested person attributes that need no reference join (and those they depend on).

    p_join (day index the customer joins, 0 for customers already there), p_shared/p_hh (household key:
    the key of the person whose address is shared), p_minor, p_age, p_birth, p_age_group (0 under 30, 1 under
    60, 2 older), p_gender, p_business, p_tv/p_internet/p_mobile (subscriptions), p_tv_act/p_web_act
    (activity multipliers), p_tech (technology fan), p_fav1..3 (favourite genres), p_sport (favourite sport),
    p_hobby (web interest theme), p_attitude (privacy-consciousness, 0..1).

    Only what is asked for is added: every DataFrame call re-analyses the whole plan, so unused columns
    cost time even though Spark prunes them before running.
    """
    k = F.col(key)
    u = ctx.u
    is_customer = k < ctx.customers
    multi_day = F.lit(ctx.days > 1)
    joins = is_customer & (u("join", k) < JOIN_SHARE) & multi_day
    join_day = F.when(joins, F.lit(1) + F.floor(u("join-day", k) * (ctx.days - 1))).otherwise(F.lit(0)).cast("long")

    def initial(x: Column) -> Column:
        return ~((u("join", x) < JOIN_SHARE) & multi_day)

    lows = literal_array([lo for lo, _, _ in vocab.AGE_BANDS])
    highs = literal_array([hi for _, hi, _ in vocab.AGE_BANDS])
    low, high = F.element_at(lows, F.col("_band") + 1), F.element_at(highs, F.col("_band") + 1)
    adult_age = low + F.floor(u("age", k) * (high - low + 1))
    group = F.col("p_age_group")
    tv = u("tv", k) < F.when(group == 0, 0.55).when(group == 1, 0.72).otherwise(0.8)
    mobile = u("mobile", k) < F.when(group == 2, 0.5).otherwise(0.72)
    genre_group = F.when(F.col("p_minor"), F.lit(0)).otherwise(group)
    definitions: dict[str, Callable[[], Column]] = {
        "p_join": lambda: join_day,
        "p_shared": lambda: is_customer & (k > 0) & (u("household", k) < SHARED_ADDRESS_SHARE)
        & ~(u("household", k - 1) < SHARED_ADDRESS_SHARE) & initial(k) & initial(k - 1),
        "p_minor": lambda: u("minor", k) < ctx.minor_share,
        "p_attitude": lambda: u("attitude", k),
        "_band": lambda: weighted(u("age-band", k), [(i, w) for i, (_, _, w) in enumerate(vocab.AGE_BANDS)]),
        "_gender": lambda: weighted(u("gender", k), [("F", 49), ("M", 48), ("X", 1), ("-", 2)]),
        "p_sport": lambda: weighted(u("sport", k), vocab.SPORT_SUBGENRES),
        "p_hobby": lambda: weighted(u("hobby", k), HOBBY_THEMES),
        "p_hh": lambda: F.when(F.col("p_shared"), k - 1).otherwise(k),
        "p_age": lambda: F.when(F.col("p_minor"), between(u("age", k), 12, 17)).otherwise(adult_age).cast("long"),
        "p_gender": lambda: F.when(F.col("_gender") != "-", F.col("_gender")),
        "p_business": lambda: ~F.col("p_minor") & (u("business", k) < 0.07),
        "p_birth": lambda: F.date_sub(F.add_months(F.lit(ctx.end), -12 * F.col("p_age").cast("int")),
                                      F.floor(u("birthday", k) * 365).cast("int")),
        "p_age_group": lambda: F.when(F.col("p_age") < 30, 0).when(F.col("p_age") < 60, 1).otherwise(2),
        "p_tv": lambda: tv,
        "p_internet": lambda: (u("internet", k) < 0.88) | ~(tv | mobile),
        "p_mobile": lambda: mobile,
        "p_tv_act": lambda: F.exp(F.lit(0.5) * normal(u("tv-act-1", k), u("tv-act-2", k))),
        "p_web_act": lambda: F.when(group == 0, 1.3).when(group == 1, 1.0).otherwise(0.6)
        * F.exp(F.lit(0.7) * normal(u("web-act-1", k), u("web-act-2", k))),
        "p_tech": lambda: u("tech", k) < F.when(group == 0, 0.22).when(group == 1, 0.15).otherwise(0.06),
        "p_fav1": lambda: genre_draw(ctx, u("fav1", k), genre_group),
        "p_fav2": lambda: genre_draw(ctx, u("fav2", k), genre_group),
        "p_fav3": lambda: genre_draw(ctx, u("fav3", k), genre_group),
    }
    wanted = _closure(names)
    for tier in sorted({CORE_ATTRIBUTES[n][0] for n in wanted}):
        batch = {n: definitions[n]() for n in CORE_ATTRIBUTES if n in wanted and CORE_ATTRIBUTES[n][0] == tier}
        df = df.withColumns(batch)
    return df


def postal_slot(seed: int, key: Column) -> Column:
    """Slot of the weighted postal-code draw for a household key."""
    return F.pmod(raw_hash(seed, "postal", key), F.lit(POSTAL_SLOTS)).cast("int")


def with_area(df: DataFrame, ctx: GenContext, key: Column, prefix: str) -> DataFrame:
    """Join the postal area drawn for ``key``: ``<prefix>postal``, ``locality``, ``province``, ``region``,
    ``lang_area`` and ``urban``. A broadcast hash join keeps the rows' partitioning and order."""
    area = ctx.slot_frame.select("_slot", *[F.col(c).alias(prefix + c) for c in ctx.slot_frame.columns[1:]])
    return df.withColumn("_slot", postal_slot(ctx.seed, key)).join(F.broadcast(area), "_slot").drop("_slot")


def with_home(df: DataFrame, ctx: GenContext) -> DataFrame:
    """Add the home area (``g_*``, from the household key ``p_hh``) and the language ``p_lang``."""
    df = with_area(df, ctx, F.col("p_hh"), "g_")
    lang = weighted_by(F.col("g_lang_area"), vocab.LANGUAGE_BY_AREA, ctx.u("language", "pk"))
    return df.withColumn("p_lang", lang)


def daytime_seconds(u_hour: Column, u_rest: Column, hours: tuple[float, ...]) -> Column:
    """Seconds since midnight, the hour drawn from relative weights per hour (a daily rhythm)."""
    hour = weighted(u_hour, list(enumerate(hours)))
    return (hour * 3600 + F.floor(u_rest * 3600)).cast("long")


def weekend(start: date, day: Column) -> Column:
    """True on Saturdays and Sundays (``day`` = index from ``start``)."""
    return F.dayofweek(F.date_add(F.lit(start), day.cast("int"))).isin(1, 7)


# ------------------------------------------------------------------------------------------------ devices

COOKIE_SLOTS = (0, 1)
MOBILE_SLOTS = (2, 3)
DECODER_SLOTS = (4, 5)
WEB_SLOTS = 4  # slots 0..3 browse the web (cookies and mobile advertising ids)


def device_exists(ctx: GenContext, pk: Column, slot: Column) -> Column:
    """Whether person ``pk`` has device ``slot`` (anonymous visitors: one cookie, slot 0).

    Needs ``p_tv`` for decoders (slots 4 and 5).
    """
    u = ctx.u
    anonymous = pk >= ANON_BASE
    return (
        F.when(anonymous, slot == 0)
        .when(slot == 0, u("cookie0", pk) < 0.93)
        .when(slot == 1, u("cookie1", pk) < 0.45)
        .when(slot == 2, u("mobile0", pk) < 0.62)
        .when(slot == 3, (u("mobile0", pk) < 0.62) & (u("mobile1", pk) < 0.2))
        .when(slot == 4, F.col("p_tv"))
        .when(slot == 5, F.col("p_tv") & (u("decoder1", pk) < 0.3))
        .otherwise(F.lit(False))
    )


def device_type(ctx: GenContext, pk: Column, slot: Column) -> Column:
    u = ctx.u("device-type", pk, slot)
    return (
        F.when(slot == 0, weighted(u, [("desktop", 55), ("mobile", 35), ("tablet", 10)]))
        .when(slot == 1, weighted(u, [("mobile", 60), ("tablet", 25), ("desktop", 15)]))
        .otherwise(weighted(u, [("mobile", 85), ("tablet", 15)]))
    )


def device_model(ctx: GenContext, pk: Column, slot: Column, dtype: Column) -> Column:
    """``"brand|model"`` of a device (consistent for the device); see :func:`brand_of`, :func:`model_of`."""
    tables = {t: [(f"{b}|{m}", w) for b, m, w in options] for t, options in vocab.DEVICES.items()}
    return weighted_by(dtype, tables, ctx.u("device-model", pk, slot))


def brand_of(brand_model: Column) -> Column:
    """Brand part of ``"brand|model"`` (null when not reported)."""
    brand = F.substring_index(brand_model, "|", 1)
    return F.when(brand != "", brand)


def model_of(brand_model: Column) -> Column:
    """Model part of ``"brand|model"`` (null when not reported)."""
    model = F.substring_index(brand_model, "|", -1)
    return F.when(model != "", model)


def device_id(ctx: GenContext, pk: Column, slot: Column, brand: Column) -> Column:
    """Cookie id (UUID), mobile advertising id (IDFA upper-case on Apple, GAID lower-case) or decoder serial."""
    madid = uuid4(ctx.seed, "madid", pk, slot)
    return (
        F.when(slot.isin(*COOKIE_SLOTS), uuid4(ctx.seed, "cookie", pk, slot))
        .when(slot.isin(*MOBILE_SLOTS), F.when(brand == "Apple", F.upper(madid)).otherwise(madid))
        .otherwise(F.format_string("PXD%011d", pk * 2 + (slot - 4) + 10_000_000_000))
    )


def id_type(slot: Column) -> Column:
    return (F.when(slot.isin(*COOKIE_SLOTS), F.lit("cookie_id"))
            .when(slot.isin(*MOBILE_SLOTS), F.lit("mobile_ad_id")).otherwise(F.lit("decoder_id")))


def exp_count(u: Column, mean: Column | float, cap: int) -> Column:
    """A small count with a long tail: floor of an exponential, capped."""
    return F.least(F.floor(exponential(u, mean)), F.lit(cap)).cast("long")


def local_name(ctx: GenContext, k: Column) -> tuple[Column, Column]:
    """(first name, last name) in the person's language (needs ``p_lang``, ``p_gender``)."""
    u_first, u_last = ctx.u("first-name", k), ctx.u("last-name", k)
    first, last = F.lit(None).cast("string"), F.lit(None).cast("string")
    for lang, by_gender in vocab.FIRST_NAMES.items():
        either = by_gender["F"] + by_gender["M"]
        chosen = (F.when(F.col("p_gender") == "F", pick(u_first, by_gender["F"]))
                  .when(F.col("p_gender") == "M", pick(u_first, by_gender["M"]))
                  .otherwise(pick(u_first, either)))
        first = F.when(F.col("p_lang") == lang, chosen).otherwise(first)
        last = F.when(F.col("p_lang") == lang, pick(u_last, vocab.LAST_NAMES[lang])).otherwise(last)
    return first, last


__all__ = [
    "ANON_BASE", "GenContext", "customer_id", "with_core", "with_home", "with_area", "daytime_seconds",
    "weekend", "device_exists", "device_type", "device_model", "brand_of", "model_of", "device_id", "id_type",
    "exp_count", "local_name", "genre_draw", "WEB_SLOTS", "COOKIE_SLOTS", "MOBILE_SLOTS", "DECODER_SLOTS",
    "MOVE_KEY_OFFSET",
]
