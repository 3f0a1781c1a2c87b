"""One builder per landing source: ``GenContext -> DataFrame`` of contract columns (strings) plus ``date``
(delivery folder), ``_t`` (seconds since the window's first midnight, for ordering) and ``_k`` (unique key).

Every frame starts from ``spark.range`` with a partition count that depends only on the sizes (see
:func:`partitions`), and is built with hash draws and broadcast joins only: no shuffle, so the rows, their
order and the files they land in are the same on every run with the same seed.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from pipelines.generate import vocab
from pipelines.generate.draws import (
    between, literal_array, literal_array_map, literal_map, normal, pick, weighted, weighted_by,
)
from pipelines.generate.people import (
    ANON_BASE,
    MOBILE_SLOTS,
    MOVE_KEY_OFFSET,
    WEB_SLOTS,
    GenContext,
    brand_of,
    customer_id,
    daytime_seconds,
    device_exists,
    device_id,
    device_model,
    device_type,
    exp_count,
    genre_draw,
    id_type,
    local_name,
    model_of,
    weekend,
    with_area,
    with_core,
    with_home,
)
from pipelines.generate.refdata import CONTENT_THEMES, ENJOY_CONTENT, GENERAL_CONTENT, SPORT_CONTENT
from pipelines.generate.render import bool_text, date_text, day_of, iso_local, local_time
from pipelines.schemas import LANDING_COLUMNS

#: Target rows per task: the range's partition count grows with the data, never with the machine.
ROWS_PER_PARTITION = 1_500_000
#: Share of customers with a change (move, subscription, churn) delivered during the window.
CHANGE_SHARE = 0.03
#: Share of customers that never log in on a Proximus site or app (no identity links at all).
NEVER_AUTHENTICATE_SHARE = 0.18
#: Share of customers the socio-demographic supplier knows.
SOCIODEMO_SHARE = 0.6
#: Future-dated consent events (after the end date, in the last day's folder) fall in the first hours of the
#: next day, local time: after the as-of date of the run that ingests them, before its nightly start (contract
#: section 2: such events are kept and take effect on later as-of dates). Dated later, they would be
#: "timestamp after ingestion" and, all in one file, fail the quality gate of that day's run.
FUTURE_CONSENT_HOURS = 5


def partitions(expected_rows: float) -> int:
    """Partition count of a source's ``spark.range`` (a function of the data size only)."""
    return max(1, min(64, math.ceil(expected_rows / ROWS_PER_PARTITION)))


def _range(ctx: GenContext, n: int, expected_rows: float) -> DataFrame:
    return ctx.spark.range(0, max(n, 0), 1, partitions(expected_rows))


def _day_date(ctx: GenContext, day: Column) -> Column:
    return date_text(F.date_add(F.lit(ctx.start), day.cast("int")))


def _finish(df: DataFrame, source: str) -> DataFrame:
    cols = LANDING_COLUMNS[source]
    return df.select("date", F.col("_t").cast("long"), F.col("_k").cast("long"),
                     *[F.col(c).cast("string").alias(c) for c in cols])


def _choice_map(options: dict[str, tuple[tuple[str, float], ...]], key: Column, u: Column) -> Column:
    """A weighted draw whose table depends on ``key`` (null when ``key`` has no table)."""
    return weighted_by(key, options, u, resolution=100)


# ------------------------------------------------------------------------------------------- customers


def _with_changes(df: DataFrame, ctx: GenContext) -> DataFrame:
    """A change during the window for some customers: ``c_has``, ``c_day``, ``c_kind`` and, for a move,
    the new area ``m_*`` (needs ``p_join``)."""
    k, u = F.col("pk"), ctx.u
    room = F.lit(ctx.days - 1) - F.col("p_join")
    df = df.withColumns({
        "c_has": (u("change", k) < CHANGE_SHARE) & (room > 0),
        "c_day": F.col("p_join") + 1 + F.floor(u("change-day", k) * room).cast("long"),
        "c_kind": weighted(u("change-kind", k), [("move", 40), ("subscription", 45), ("churn", 15)]),
        "c_flip": between(u("change-flip", k), 0, 2),
    })
    return with_area(df, ctx, k + MOVE_KEY_OFFSET, "m_")


def _address_id(key: Column) -> Column:
    return F.format_string("ADR%012d", key)


def customers(ctx: GenContext) -> DataFrame:
    """First full delivery on the first day; then joiners on their day and changes (later ``updated_at``)."""
    n, u = ctx.customers, ctx.u
    df = _range(ctx, n, n * 1.05).withColumnRenamed("id", "pk")
    person = ("p_join", "p_hh", "p_minor", "p_birth", "p_gender", "p_business", "p_tv", "p_internet", "p_mobile")
    df = _with_changes(with_home(with_core(df, ctx, *person), ctx), ctx)
    df = df.withColumn("v", F.explode(F.sequence(F.lit(0), F.when(F.col("c_has"), 1).otherwise(0))))
    k, change = F.col("pk"), (F.col("v") == 1)
    moved = change & (F.col("c_kind") == "move")
    first, last = local_name(ctx, k)
    df = df.withColumns({"first_name": first, "last_name": last})

    # E-mail: ASCII local part from the name plus the key (unique), a common provider; some typed sloppily.
    def fold(column: str) -> Column:
        ascii_ = F.translate(F.lower(F.col(column)), "àâäéèêëïîôöùûüçñ", "aaaeeeeiioouuucn")
        return F.regexp_replace(ascii_, "[^a-z]", "")

    df = df.withColumns({"_f": fold("first_name"), "_l": fold("last_name"),
                         "_style": between(u("email-style", k), 0, 3)})
    f, l_, style = F.col("_f"), F.col("_l"), F.col("_style")
    local = (F.when(style == 0, F.concat_ws(".", f, l_)).when(style == 1, F.concat(f, l_))
             .when(style == 2, F.concat(F.substring(f, 1, 1), l_)).otherwise(F.concat(l_, F.lit("."), f)))
    suffix = F.concat((k % 9973).cast("string"),
                      F.when(k >= 9973, F.concat(F.lit("."), F.floor(k / 9973).cast("string"))).otherwise(F.lit("")))
    domain = weighted(u("email-domain", k), vocab.EMAIL_DOMAINS)
    df = df.withColumn("_email", F.concat(local, suffix, F.lit("@"), domain))
    sloppy, typed = u("email-sloppy", k), F.col("_email")
    # Some addresses typed with capitals or a leading space (matching normalises: trim, lower-case).
    email = F.when(sloppy < 0.04, F.initcap(typed)).when(sloppy < 0.05, F.concat(F.lit(" "), typed)).otherwise(typed)
    email = F.when(u("email-missing", k) >= 0.04, email)

    # Phone: E.164; mobile +32 4xx xx xx xx (unique per key), a landline for some, missing for a few.
    area = F.lit("2")
    for province, code in vocab.LANDLINE_AREA.items():
        area = F.when(F.col("g_province") == province, F.lit(code)).otherwise(area)
    df = df.withColumns({"_digits": F.lpad(F.pmod(k * 7919 + 4_242_421, F.lit(10_000_000)).cast("string"), 7, "0"),
                         "_area": area})
    mobile = F.concat(F.lit("+324"), pick(u("phone-prefix", k), ["6", "7", "8", "9"]), F.col("_digits"))
    landline = F.concat(F.lit("+32"), F.col("_area"),
                        F.expr("substring(concat(_digits, '01'), 1, 8 - length(_area))"))
    kind = u("phone-kind", k)
    phone = F.when(kind < 0.88, mobile).when(kind < 0.96, landline)

    start = F.lit(ctx.start)
    span_days = (ctx.start - date(1998, 1, 1)).days - 30
    since_raw = F.date_sub(start, (F.lit(30) + F.floor(F.pow(u("since", k), F.lit(1.6)) * span_days)).cast("int"))
    adult_since = F.least(F.greatest(since_raw, F.add_months(F.col("p_birth"), 216)), F.date_sub(start, 1))
    since = (F.when(F.col("p_join") > 0, F.date_add(start, F.col("p_join").cast("int")))
             .when(F.col("p_minor"), F.date_sub(start, between(u("since-minor", k), 30, 700).cast("int")))
             .otherwise(adult_since))
    df = df.withColumn("since", since)
    churned = (F.col("p_join") == 0) & (u("churned", k) < 0.03)
    gap = F.greatest(F.datediff(start, F.col("since")), F.lit(1))
    old_end = F.date_add(F.col("since"), F.floor(u("churn-date", k) * gap).cast("int"))
    contract_end = (F.when(change & (F.col("c_kind") == "churn"), F.date_add(start, F.col("c_day").cast("int")))
                    .when(churned, old_end))

    back = F.least(between(u("updated", k), 1, 700), F.datediff(start, F.col("since")))
    df = df.withColumns({
        "_secs": daytime_seconds(u("upd-hour", k, "v"), u("upd-rest", k, "v"), vocab.DAYTIME_HOURS),
        "_upd_day": F.when(change, F.col("c_day")).when(F.col("p_join") > 0, F.col("p_join")).otherwise(-back),
        "_day": F.when(change, F.col("c_day")).otherwise(F.col("p_join")),
    })

    def flipped(name: str, i: int) -> Column:
        flip = change & (F.col("c_kind") == "subscription") & (F.col("c_flip") == i)
        return F.when(flip, ~F.col(name)).otherwise(F.col(name))

    home = F.when(F.col("p_shared"), F.col("p_hh")).otherwise(k)
    out = df.withColumns({
        "customer_id": customer_id(k),
        "email": email,
        "phone": phone,
        "birth_date": date_text(F.col("p_birth")),
        "gender": F.col("p_gender"),
        "language": F.col("p_lang"),
        "address_id": F.when(moved, _address_id(k + MOVE_KEY_OFFSET)).otherwise(_address_id(home)),
        "postal_code": F.when(moved, F.col("m_postal")).otherwise(F.col("g_postal")),
        "customer_type": F.when(F.col("p_business"), "business").otherwise("residential"),
        "tv_subscription": bool_text(flipped("p_tv", 0)),
        "internet_subscription": bool_text(flipped("p_internet", 1)),
        "mobile_subscription": bool_text(flipped("p_mobile", 2)),
        "customer_since": date_text(F.col("since")),
        "contract_end": date_text(contract_end),
        "updated_at": iso_local(local_time(ctx.start, F.col("_upd_day"), F.col("_secs")), ctx.tz),
        "date": _day_date(ctx, F.col("_day")),
        "_t": F.col("_day") * 86400 + F.col("_secs"),
        "_k": k * 2 + F.col("v"),
    })
    return _finish(out, "customers")


def cadastral(ctx: GenContext) -> DataFrame:
    """One row per address: households' addresses first (joiners' on their day), new addresses of movers.

    Houses (with gardens and larger plots) are more common the more rural the postal code.
    """
    n, u = ctx.customers, ctx.u
    df = _range(ctx, n, n).withColumnRenamed("id", "pk")
    df = _with_changes(with_home(with_core(df, ctx, "p_join", "p_hh"), ctx), ctx)
    moves = F.col("c_has") & (F.col("c_kind") == "move")
    own = ~F.col("p_shared")  # a shared address is delivered once, with its first occupant
    df = df.withColumn("v", F.explode(F.filter(F.array(F.when(own, 0), F.when(moves, 1)), lambda x: x.isNotNull())))
    k, moved = F.col("pk"), F.col("v") == 1
    df = df.withColumns({
        "_urban": F.when(moved, F.col("m_urban")).otherwise(F.col("g_urban")),
        "_key": F.when(moved, k + MOVE_KEY_OFFSET).otherwise(k),
        "_day": F.when(moved, F.col("c_day")).otherwise(F.col("p_join")),
    })
    urban, key = F.col("_urban"), F.col("_key")
    dwellings = {"urban": (("apartment", 65), ("house", 30), ("other", 5)),
                 "suburban": (("house", 70), ("apartment", 27), ("other", 3)),
                 "rural": (("house", 88), ("apartment", 10), ("other", 2))}
    df = df.withColumn("dwelling_type", weighted_by(urban, dwellings, u("dwelling", key)))
    dwelling = F.col("dwelling_type")
    by_urbanisation = lambda urban_, suburban, rural: (  # noqa: E731
        F.when(urban == "urban", urban_).when(urban == "suburban", suburban).otherwise(rural))
    garden = F.when(dwelling == "house", by_urbanisation(0.6, 0.85, 0.95)) \
        .when(dwelling == "apartment", 0.08).otherwise(0.2)
    typical = F.when(dwelling == "house", by_urbanisation(140, 480, 900)).when(dwelling == "other", 600)
    spread = F.exp(F.lit(0.5) * normal(u("plot-1", key), u("plot-2", key)))
    out = df.withColumns({
        "address_id": _address_id(key),
        "has_garden": bool_text(u("garden", key) < garden),
        "plot_area_m2": F.round(typical * spread).cast("long").cast("string"),  # none for apartments
        "date": _day_date(ctx, F.col("_day")),
        "_t": F.col("_day") * 86400,
        "_k": k * 2 + F.col("v"),
    })
    return _finish(out, "cadastral")


def _weekly_days(ctx: GenContext) -> list[int]:
    return [d for d in range(7, ctx.days, 7)]


def sociodemo_individual(ctx: GenContext) -> DataFrame:
    """A supplier's household profile for ~60% of customers: full file on day one, weekly updates."""
    n, u = ctx.customers, ctx.u
    weekly = _weekly_days(ctx)
    df = _range(ctx, n, n * SOCIODEMO_SHARE).withColumnRenamed("id", "pk")
    df = with_home(with_core(df, ctx, "p_join", "p_hh", "p_age"), ctx)
    k = F.col("pk")
    if weekly:
        week_days = literal_array(weekly)
        # Joiners arrive with the first weekly delivery on or after their day, if any.
        first_after = F.try_element_at(F.filter(week_days, lambda d: d >= F.col("p_join")), F.lit(1))
        update_day = F.element_at(week_days, (F.floor(u("sd-update-day", k) * len(weekly)) + 1).cast("int"))
    else:
        first_after = update_day = F.lit(None).cast("int")
    df = df.withColumns({
        "_first": F.when(F.col("p_join") == 0, F.lit(0)).otherwise(first_after),
        "_update": update_day,
    })
    updated = (F.col("p_join") == 0) & (u("sd-update", k) < 0.03) & F.col("_update").isNotNull()
    df = df.where((u("sociodemo", k) < SOCIODEMO_SHARE) & F.col("_first").isNotNull())
    df = df.withColumn("v", F.explode(F.sequence(F.lit(0), F.when(updated, 1).otherwise(0))))
    df = df.withColumn("_day", F.when(F.col("v") == 1, F.col("_update")).otherwise(F.col("_first")).cast("long"))

    typology = F.lit(None).cast("string")
    for upper, choices in reversed(vocab.FAMILY_BY_AGE):
        typology = F.when(F.col("p_age") < upper, weighted(u("family", k, "v"), choices, 100)).otherwise(typology)
    df = df.withColumn("family_typology", typology)
    sizes = {name: tuple((x, 1) for x in range(lo, hi + 1)) for name, (lo, hi) in vocab.HOUSEHOLD_SIZE.items()}
    age, day = F.col("p_age"), F.col("_day")
    rich = F.when(F.col("g_urban") == "suburban", 0.1).otherwise(0.0) + F.when(age.between(35, 64), 0.08).otherwise(0.0)
    poor = F.when(age >= 70, 0.12).otherwise(0.0) + F.when(age < 25, 0.15).otherwise(0.0)
    ui = u("income", k)
    first_valid = date(ctx.start.year, 3 * ((ctx.start.month - 1) // 3) + 1, 1)  # the quarter's first day
    out = df.withColumns({
        "customer_id": customer_id(k),
        "supplier": F.lit("bisnode"),
        "household_size": weighted_by(F.col("family_typology"), sizes, u("hh-size", k, "v"), 60).cast("string"),
        "income_band": F.when(ui < 0.28 + poor - rich, "low").when(ui < 0.8 - rich * 0.5, "middle").otherwise("high"),
        "valid_from": F.when(day == 0, F.lit(first_valid.isoformat())).otherwise(_day_date(ctx, day)),
        "date": _day_date(ctx, day),
        "_t": day * 86400,
        "_k": k * 2 + F.col("v"),
    })
    return _finish(out, "sociodemo_individual")


def sociodemo_area(ctx: GenContext) -> DataFrame:
    """Statistics for every geographic postal code on day one; a corrected batch mid-window."""
    areas = ctx.ref.areas
    table = ctx.spark.createDataFrame(
        [(i, a.postal_code, a.province_code, a.urbanisation) for i, a in enumerate(areas)],
        "_i long, postal_code string, _province string, urbanisation string",
    )
    df = _range(ctx, len(areas), len(areas)).join(F.broadcast(table), F.col("id") == F.col("_i"))
    k, u = F.col("id"), ctx.u
    mid = ctx.days // 2
    revised = F.lit(mid > 0) & (u("area-revised", k) < 0.05)
    df = df.withColumn("v", F.explode(F.sequence(F.lit(0), F.when(revised, 1).otherwise(0))))
    urban = F.col("urbanisation")
    wealth = (F.when(F.col("_province").isin("BE-VBR", "BE-WBR"), 0.25).when(F.col("_province") == "BE-WHT", -0.2)
              .when(F.col("_province") == "BE-BRU", -0.1).otherwise(0.0)
              + F.when(urban == "suburban", 0.15).when(urban == "urban", -0.05).otherwise(0.0)
              + (u("area-income", k) - 0.5) * 0.8)
    income = F.when(wealth < -0.15, "low").when(wealth < 0.25, "middle").otherwise("high")
    children = (F.when(urban == "urban", 0.22).when(urban == "suburban", 0.31).otherwise(0.28)
                + (u("area-children", k, "v") - 0.5) * 0.1)
    df = df.withColumn("_day", F.when(F.col("v") == 1, F.lit(mid)).otherwise(F.lit(0)).cast("long"))
    day = F.col("_day")
    out = df.withColumns({
        "supplier": F.lit("statbel"),
        "median_income_band": income,
        "share_households_with_children": F.format_string("%.3f", children),
        "valid_from": F.when(day == 0, F.lit(date(ctx.start.year, 1, 1).isoformat())).otherwise(_day_date(ctx, day)),
        "date": _day_date(ctx, day),
        "_t": day * 86400,
        "_k": k * 2 + F.col("v"),
    })
    return _finish(out, "sociodemo_area")


# ------------------------------------------------------------------------------------------- consent


_ASKED = {"tv_personalised_ads": 0.35, "web_profile": 0.8, "proximus_3p_ad_cookies": 0.85,
          "advertiser_list_refinement": 0.6, "ads_and_data": 0.7, "marketing": 0.4}
_CHANNELS_TV = (("tv_settings", 40), ("myproximus_app", 25), ("myproximus_web", 20), ("customer_service", 15))
_CHANNELS = (("myproximus_web", 45), ("myproximus_app", 35), ("customer_service", 15), ("tv_settings", 5))


def consent_events(ctx: GenContext) -> DataFrame:
    """Per customer and purpose: never asked, or grants/withdrawals/re-grants; a few dated in the future.

    History before the window lands in the first day's folder, future-dated events (the night after the end
    date, before ``FUTURE_CONSENT_HOURS`` local time) in the last day's folder; everything else in the folder of
    its date.
    """
    names = [p for p, _ in ctx.purposes]
    consent_basis = [b == "consent" for _, b in ctx.purposes]
    asked_p = [_ASKED.get(p, 0.7 if b == "consent" else 0.35) for p, b in ctx.purposes]
    n_p, n, d = len(names), ctx.customers, ctx.days
    df = _range(ctx, n * n_p, n * n_p * 0.9).withColumn("pk", F.floor(F.col("id") / n_p).cast("long"))
    df = with_core(df.withColumn("pi", F.pmod(F.col("id"), F.lit(n_p))), ctx, "p_join", "p_attitude")
    k, pi, u = F.col("pk"), F.col("pi"), ctx.u
    is_consent = F.element_at(literal_array(consent_basis), (pi + 1).cast("int"))
    asked = u("asked", k, pi) < F.element_at(literal_array(asked_p), (pi + 1).cast("int"))
    un = u("n-events", k, pi)
    n_hist = F.when(asked, 1 + (un < 0.3).cast("int") + (un < 0.1).cast("int")).otherwise(0)
    future = u("future", k, pi) < 0.025
    a = F.col("p_attitude")
    first_grant = F.when(is_consent, u("first", k, pi) < 0.85 - 0.6 * a).otherwise(u("first", k, pi) >= 0.4 + 0.5 * a)
    t0 = (F.when(F.col("p_join") > 0, F.col("p_join") + F.floor(u("t0", k, pi) * (F.lit(d) - F.col("p_join"))))
          .when(u("in-window", k, pi) < 0.2, F.floor(u("t0", k, pi) * d))
          .otherwise(-1 - F.floor(u("t0", k, pi) * 1095))).cast("long")
    gap = (10 + F.floor(u("gap", k, pi) * 200)).cast("long")
    n_valid = F.when(n_hist > 0, F.least(n_hist, F.floor((F.lit(d - 1) - t0) / gap) + 1)).otherwise(0)
    last_grant = F.when(n_valid > 0, first_grant != (F.pmod(n_valid - 1, F.lit(2)) == 1))
    future_grant = F.when(last_grant.isNull(), is_consent).otherwise(~last_grant)
    total = n_hist + future.cast("int")
    df = (df.withColumn("_nh", n_hist).withColumn("_fut", future).withColumn("_t0", t0).withColumn("_gap", gap)
          .withColumn("_first", first_grant).withColumn("_fgrant", future_grant).withColumn("_cons", is_consent)
          .where(total > 0)
          .withColumn("e", F.explode(F.sequence(F.lit(0), total - 1))))
    e = F.col("e")
    is_future = F.col("_fut") & (e == F.col("_nh"))
    day = F.when(is_future, F.lit(d)).otherwise(F.col("_t0") + e * F.col("_gap")).cast("long")
    grant = F.when(is_future, F.col("_fgrant")).otherwise(F.col("_first") != (F.pmod(e, F.lit(2)) == 1))
    df = df.withColumns({
        "_future": is_future, "_day": day,
        "_secs": F.when(is_future, F.floor(u("ce-night", k, pi) * FUTURE_CONSENT_HOURS * 3600).cast("long"))
                  .otherwise(daytime_seconds(u("ce-hour", k, pi, e), u("ce-rest", k, pi, e), vocab.DAYTIME_HOURS)),
        "purpose": F.element_at(literal_array(names), (pi + 1).cast("int")),
    }).where(F.col("_future") | (F.col("_day") <= d - 1))
    channel = F.when(F.col("purpose") == "tv_personalised_ads", weighted(u("channel", k, pi, e), _CHANNELS_TV)) \
        .otherwise(weighted(u("channel", k, pi, e), _CHANNELS))
    day, secs = F.col("_day"), F.col("_secs")
    out = df.withColumns({
        "event_id": F.format_string("CE-%s-%d-%d", customer_id(k), pi, e),
        "customer_id": customer_id(k),
        "action": F.when(grant, "grant").otherwise("withdraw"),
        "channel": channel,
        "event_ts": iso_local(local_time(ctx.start, day, secs), ctx.tz),
        "date": _day_date(ctx, F.least(F.greatest(day, F.lit(0)), F.lit(d - 1))),
        "_t": day * 86400 + secs,
        "_k": F.col("id") * 8 + e,
    })
    return _finish(out, "consent_events")


def erasure_requests(ctx: GenContext) -> DataFrame:
    """Right-to-erasure requests of ``erasure_share`` of the customers, dated within the window."""
    n, u = ctx.customers, ctx.u
    df = with_core(_range(ctx, n, n * ctx.erasure_share).withColumnRenamed("id", "pk"), ctx, "p_join")
    k = F.col("pk")
    df = df.where(u("erasure", k) < ctx.erasure_share).withColumns({
        "_day": (F.col("p_join") + F.floor(u("erasure-day", k) * (F.lit(ctx.days) - F.col("p_join")))).cast("long"),
        "_secs": daytime_seconds(u("erasure-hour", k), u("erasure-rest", k), vocab.DAYTIME_HOURS),
    })
    day, secs = F.col("_day"), F.col("_secs")
    out = (
        df.withColumn("request_id", F.format_string("ERQ-%s-%s", F.regexp_replace(_day_date(ctx, day), "-", ""),
                                                    customer_id(k)))
        .withColumn("customer_id", customer_id(k))
        .withColumn("requested_at", iso_local(local_time(ctx.start, day, secs), ctx.tz))
        .withColumn("date", _day_date(ctx, day))
        .withColumn("_t", day * 86400 + secs)
        .withColumn("_k", k)
    )
    return _finish(out, "erasure_requests")


# ------------------------------------------------------------------------------------------- identities


def identity_links(ctx: GenContext) -> DataFrame:
    """Authentications of customers' devices on Proximus sites and apps (none for some customers)."""
    n, d, u = ctx.customers, ctx.days, ctx.u
    df = _range(ctx, n * 6, n * 4 * max(1.0, d / 14)).select(
        F.floor(F.col("id") / 6).cast("long").alias("pk"), F.pmod(F.col("id"), F.lit(6)).cast("long").alias("slot"),
        F.col("id"))
    df = with_core(df, ctx, "p_join", "p_tv")
    k, slot = F.col("pk"), F.col("slot")
    is_decoder = slot >= 4
    logs_in = (F.when(slot.isin(0, 1), 0.85).when(slot.isin(2, 3), 0.9).otherwise(1.0))
    df = df.where(device_exists(ctx, k, slot) & (u("never-auth", k) >= NEVER_AUTHENTICATE_SHARE)
                  & (u("device-auth", k, slot) < logs_in))
    n_auth = F.when(is_decoder, 1 + (u("n-auth", k, slot) < 0.15).cast("long")) \
        .otherwise(1 + exp_count(u("n-auth", k, slot), d / 14.0, 40))
    df = df.withColumn("j", F.explode(F.sequence(F.lit(0), (n_auth - 1).cast("int"))))
    j, room = F.col("j"), F.lit(d) - F.col("p_join")
    ud = u("auth-day", k, slot, "j")
    df = df.withColumns({
        "_day": (F.col("p_join") + F.floor(F.when(j == 0, ud * ud).otherwise(ud) * room)).cast("long"),
        "_secs": daytime_seconds(u("auth-hour", k, slot, "j"), u("auth-rest", k, slot, "j"), vocab.WEB_HOURS),
        "_dtype": device_type(ctx, k, slot),
    })
    day, secs = F.col("_day"), F.col("_secs")
    brand = brand_of(device_model(ctx, k, slot, F.col("_dtype")))
    us = u("auth-site", k, slot, "j")
    site = (F.when(slot.isin(0, 1), weighted(us, [("proximus.be", 45), ("pickx.be", 35), ("myproximus.be", 20)]))
            .when(slot.isin(2, 3), weighted(us, [("myproximus.be", 55), ("pickx.be", 45)]))
            .otherwise(F.lit("pickx.be")))
    out = (
        df.withColumn("customer_id", customer_id(k))
        .withColumn("id_type", id_type(slot))
        .withColumn("id_value", device_id(ctx, k, slot, brand))
        .withColumn("site_domain", site)
        .withColumn("authenticated_at", iso_local(local_time(ctx.start, day, secs), ctx.tz))
        .withColumn("date", _day_date(ctx, day))
        .withColumn("_t", day * 86400 + secs)
        .withColumn("_k", F.col("id") * 64 + j)
    )
    return _finish(out, "identity_links")


# ------------------------------------------------------------------------------------------- TV


TV_PERSON = ("p_join", "p_tv", "p_tv_act", "p_age_group", "p_minor", "p_fav1", "p_fav2", "p_fav3", "p_sport", "p_hh")
WEB_PERSON = ("p_tv", "p_web_act", "p_tech", "p_fav1", "p_fav2", "p_fav3", "p_sport", "p_hobby", "p_hh")


def _viewing_sessions(ctx: GenContext) -> DataFrame:
    """Viewing sessions per customer and day (day-major, so a task covers a few consecutive days)."""
    n, d, u = ctx.customers, ctx.days, ctx.u
    df = _range(ctx, n * d, n * d * 1.0).select(
        F.floor(F.col("id") / max(n, 1)).cast("long").alias("day"), F.pmod(F.col("id"), F.lit(max(n, 1))).alias("pk"),
        F.col("id"))
    df = with_core(df, ctx, *TV_PERSON)
    k, day = F.col("pk"), F.col("day")
    df = df.withColumn("_weekend", weekend(ctx.start, day))
    is_weekend = F.col("_weekend")
    watches = F.col("p_tv") | (u("ott", k) < 0.25)
    rate = F.col("p_tv_act") * F.when(F.col("p_tv"), 1.6).otherwise(0.7) * F.when(is_weekend, 1.15).otherwise(1.0)
    df = df.withColumn("_sessions", exp_count(u("sessions", k, day), rate, 8))
    df = df.where((day >= F.col("p_join")) & watches & (F.col("_sessions") > 0))
    df = with_home(df, ctx)
    df = df.withColumn("s", F.explode(F.sequence(F.lit(0), (F.col("_sessions") - 1).cast("int"))))
    s = F.col("s")
    hour_u, rest_u = u("tv-hour", k, day, s), u("tv-rest", k, day, s)
    secs = F.when(is_weekend, daytime_seconds(hour_u, rest_u, vocab.TV_HOURS_WEEKEND)) \
        .otherwise(daytime_seconds(hour_u, rest_u, vocab.TV_HOURS_WEEKDAY))
    up = u("platform", k, day, s)
    platform = (F.when(~F.col("p_tv"), weighted(up, [("app", 70), ("web", 30)]))
                .when(F.col("p_age_group") == 0, weighted(up, [("decoder", 45), ("app", 40), ("web", 15)]))
                .otherwise(weighted(up, [("decoder", 75), ("app", 18), ("web", 7)])))
    ug = u("genre-fav", k, day, s)
    favourite = F.element_at(F.array("p_fav1", "p_fav2", "p_fav3"),
                             F.when(ug < 0.5 * 0.65, 1).when(ug < 0.8 * 0.65, 2).otherwise(3))
    group = F.when(F.col("p_minor"), F.lit(0)).otherwise(F.col("p_age_group"))
    genre = F.when(ug < 0.65, favourite).otherwise(genre_draw(ctx, u("genre", k, day, s), group))
    df = df.withColumns({"_secs": secs, "platform": platform, "genre": genre})
    g, lang = F.col("genre"), F.col("p_lang")
    usub = u("subgenre", k, day, s)
    sport = F.when(usub < 0.6, F.col("p_sport")).otherwise(weighted(u("sport-any", k, day, s), vocab.SPORT_SUBGENRES))
    df = df.withColumn("_sub", F.when(g == "Sports", sport).otherwise(_choice_map(dict(vocab.SUBGENRES), g, usub)))
    sub = F.col("_sub")
    spelled = sub
    local_spelling = u("spelling", k, day, s) < 0.35
    for (lng, english), local_word in vocab.SUBGENRE_SPELLING.items():
        spelled = F.when(local_spelling & (lang == lng) & (sub == english), F.lit(local_word)).otherwise(spelled)
    uc, uch = u("channel-kind", k, day, s), u("channel", k, day, s)
    channel = (
        F.when((g == "Sports") & (uc < 0.6), weighted(uch, vocab.SPORTS_CHANNELS))
        .when(g.isin(*vocab.KIDS_GENRES) & (uc < 0.6), _choice_map(vocab.KIDS_CHANNELS, lang, uch))
        .when(g.isin(*vocab.FACTUAL_GENRES) & (uc < 0.35), weighted(uch, vocab.FACTUAL_CHANNELS))
        .otherwise(_choice_map(vocab.CHANNELS_BY_LANGUAGE, lang, uch))
    )
    minutes = F.coalesce(F.element_at(literal_map(vocab.GENRE_MINUTES), g), F.lit(40))
    spread = F.exp(F.lit(0.45) * normal(u("dur-1", k, day, s), u("dur-2", k, day, s)))
    zap = u("zap", k, day, s) < 0.12
    duration = F.when(zap, between(u("zap-len", k, day, s), 8, 180)) \
        .otherwise(F.least(F.floor(minutes * 60 * spread), F.lit(5 * 3600))).cast("long")
    df = df.withColumns({
        "subgenre": F.when(spelled != "", spelled),
        "channel_id": channel,
        "duration": duration,
        "_local": local_time(ctx.start, day, F.col("_secs")),
    })
    local = F.col("_local")
    return df.withColumns({
        "view_id": F.format_string("V%s-%s-%d", F.date_format(local, "yyyyMMdd"), customer_id(k), s),
        "program_id": F.concat(F.lit("PRG-"), F.col("channel_id"), F.lit("-"), F.date_format(local, "yyyyMMdd-HH")),
        "_t": day * 86400 + F.col("_secs"),
        "_k": F.col("id") * 16 + s,
    })


def tv_viewing(ctx: GenContext) -> DataFrame:
    """Viewing sessions on decoder, app and web: favourite genres, prime-time peak, sports sub-genres."""
    df = _viewing_sessions(ctx)
    out = (
        df.withColumn("customer_id", customer_id(F.col("pk")))
        .withColumn("start_ts", iso_local(F.col("_local"), ctx.tz))
        .withColumn("duration_s", F.col("duration").cast("string"))
        .withColumn("date", _day_date(ctx, F.col("day")))
    )
    return _finish(out, "tv_viewing")


def tv_ad_exposures(ctx: GenContext) -> DataFrame:
    """Addressable ads seen during longer sessions on decoder and app (same campaigns as online)."""
    df = _viewing_sessions(ctx)
    u = ctx.u
    key = F.col("_k")
    # An addressable break every half hour or so, some sessions without (live sport, public channels).
    df = df.withColumn("_ads", F.least(F.floor(F.col("duration") / 1800 * (0.3 + u("ads", key))), F.lit(3)).cast("int"))
    df = df.where(F.col("platform").isin("decoder", "app") & (F.col("duration") >= 600) & (F.col("_ads") > 0))
    df = df.withColumn("e", F.explode(F.sequence(F.lit(1), F.col("_ads"))))
    campaigns, advertisers = vocab.campaign_ids(), vocab.advertiser_of_campaigns()
    df = df.withColumns({
        "_offset": F.floor(F.col("duration") * F.col("e") / (F.col("_ads") + 1)).cast("long"),
        "_ci": weighted(u("tv-campaign", key, "e"), _campaign_weights()) + 1,
    })
    df = df.withColumn("ts", iso_local(local_time(ctx.start, F.col("day"), F.col("_secs") + F.col("_offset")), ctx.tz))
    out = df.withColumns({
        "exposure_id": F.concat(F.lit("EX"), F.substring(F.col("view_id"), 2, 100), F.lit("-"),
                                F.col("e").cast("string")),
        "customer_id": customer_id(F.col("pk")),
        "campaign_id": F.element_at(literal_array(campaigns), F.col("_ci")),
        "advertiser_id": F.element_at(literal_array(advertisers), F.col("_ci")),
        "date": day_of(F.col("ts")),
        "_t": F.col("_t") + F.col("_offset"),
        "_k": F.col("_k") * 8 + F.col("e"),
    }).where(F.col("date") <= ctx.end.isoformat())
    return _finish(out, "tv_ad_exposures")


# ------------------------------------------------------------------------------------------- web


def _campaign_weights() -> list[tuple[int, float]]:
    """Campaign index -> weight: a few big campaigns, a long tail."""
    return [(i, 1 / math.sqrt(i + 1)) for i in range(vocab.N_CAMPAIGNS)]


def _content_map(ctx: GenContext) -> Column:
    return literal_array_map(ctx.ref.genre_content)


def _themes_map() -> Column:
    return literal_array_map(CONTENT_THEMES)


def _element(arr: Column, u: Column) -> Column:
    return F.element_at(arr, (F.floor(u * F.size(arr)) + 1).cast("int"))


def _interest_content(ctx: GenContext, u: Column, u_pick: Column) -> Column:
    """A content category a person is into: a favourite genre (sports fans: their sport) or their hobby."""
    fav = F.element_at(F.array("p_fav1", "p_fav2", "p_fav3"), F.when(u < 0.25, 1).when(u < 0.4, 2).otherwise(3))
    sport = F.element_at(literal_map(SPORT_CONTENT), F.col("p_sport"))
    by_genre = F.when((fav == "Sports") & sport.isNotNull(), sport) \
        .otherwise(_element(F.element_at(_content_map(ctx), fav), u_pick))
    theme = F.when(F.col("p_tech"), F.lit("tech")).otherwise(F.col("p_hobby"))
    hobby = _element(F.element_at(_themes_map(), theme), u_pick)
    return F.when(u < 0.55, by_genre).otherwise(hobby)


def web_events(ctx: GenContext) -> DataFrame:
    """Page views, ad impressions and clicks of customers' cookies and mobile ad ids, and of anonymous cookies."""
    n, d, u = ctx.customers, ctx.days, ctx.u
    anonymous = max(1, n // 2)
    width = n * WEB_SLOTS + anonymous
    df = _range(ctx, width * d, n * d * 1.2).select(
        F.floor(F.col("id") / width).cast("long").alias("day"), F.pmod(F.col("id"), F.lit(width)).alias("w"),
        F.col("id"))
    w = F.col("w")
    df = df.select(
        "day", "id",
        F.when(w < n * WEB_SLOTS, F.floor(w / WEB_SLOTS)).otherwise(F.lit(ANON_BASE) + w - n * WEB_SLOTS)
        .cast("long").alias("pk"),
        F.when(w < n * WEB_SLOTS, F.pmod(w, F.lit(WEB_SLOTS))).otherwise(F.lit(0)).cast("long").alias("slot"),
    )
    df = with_core(df, ctx, *WEB_PERSON)
    k, slot, day = F.col("pk"), F.col("slot"), F.col("day")
    is_anon = k >= ANON_BASE
    p_active = F.when(is_anon, F.lit(0.1)).otherwise(0.15 * F.col("p_web_act")) \
        * F.when(weekend(ctx.start, day), 1.1).otherwise(1.0)
    df = df.where(device_exists(ctx, k, slot) & (u("web-active", k, slot, day) < p_active))
    df = with_home(df, ctx)
    pool = ctx.ref.tc_pool
    tc_choices = [(i, t.weight) for i, t in enumerate(pool)]
    is_mobile_id = slot.isin(*MOBILE_SLOTS)
    ug = u("geo", k, slot, day)
    away = _choice_map({lang: tuple((c, 1.0) for c in cities) for lang, cities in ctx.ref.big_city_names.items()},
                       F.col("p_lang"), u("geo-city", k, slot, day))
    # Per device and day (before the events are exploded): device, ids, consent string, whereabouts.
    df = df.withColumns({
        "_events": 1 + exp_count(u("web-events", k, slot, day), 2.2, 29),
        "_start": daytime_seconds(u("web-hour", k, slot, day), u("web-rest", k, slot, day), vocab.WEB_HOURS),
        "_dtype": device_type(ctx, k, slot),
        "_tc_device": weighted(u("tc-device", k, slot), tc_choices),
        "geo_city": F.when(ug < 0.05, F.lit(None)).when(ug < F.when(is_mobile_id, 0.65).otherwise(0.85),
                                                           F.col("g_locality")).otherwise(away),
    })
    df = df.withColumn("_bm", device_model(ctx, k, slot, F.col("_dtype")))
    df = df.withColumns({"device_type": F.col("_dtype"), "device_brand": brand_of(F.col("_bm")),
                         "device_model": model_of(F.col("_bm"))})
    df = df.withColumn("_id", device_id(ctx, k, slot, F.col("device_brand")))
    df = df.withColumn("e", F.explode(F.sequence(F.lit(0), (F.col("_events") - 1).cast("int"))))
    e = F.col("e")
    visit = F.floor(e / 3)  # a few events in a row on the same site
    uo = u("site-owner", k, slot, day, visit)
    site = F.when(uo < 0.18, weighted(u("site", k, slot, day, visit), vocab.PROXIMUS_SITES)) \
        .otherwise(_choice_map(vocab.THIRD_PARTY_SITES, F.col("p_lang"), u("site", k, slot, day, visit)))
    ucat = u("content", k, slot, day, e)
    general = weighted(u("content-general", k, slot, day, e), GENERAL_CONTENT)
    interest = _interest_content(ctx, u("content-interest", k, slot, day, e), u("content-pick", k, slot, day, e))
    content = F.when(ucat < F.when(is_anon, 0.35).otherwise(0.65), interest).otherwise(general)
    campaigns, advertisers = vocab.campaign_ids(), vocab.advertiser_of_campaigns()
    df = df.withColumns({
        "_secs": F.least(F.col("_start") + e * 40 + F.floor(u("web-gap", k, slot, day, e) * 40), F.lit(86399))
        .cast("long"),
        "site_domain": site,
        "event_type": weighted(u("event-type", k, slot, day, e), vocab.WEB_EVENT_TYPES),
        "content_category_id": content,
        "_ci": weighted(u("web-campaign", k, slot, day, e), _campaign_weights()) + 1,
    })
    site_col = F.col("site_domain")
    is_ad = F.col("event_type") != "page_view"
    tc_site = weighted(u("tc-site", k, slot, site_col), tc_choices)
    tc_index = F.when(u("tc-override", k, slot, site_col) < 0.15, tc_site).otherwise(F.col("_tc_device")) + 1
    # A few sites send no consent string at all.
    tc = F.when(u("tc-none", k, slot, site_col) >= 0.03,
                F.element_at(literal_array([t.tc_string for t in pool]), tc_index))
    secs = F.col("_secs")
    out = df.withColumns({
        "event_id": F.format_string("WE%s-%s-%d", F.regexp_replace(_day_date(ctx, day), "-", ""),
                                    F.col("id").cast("string"), e),
        "cookie_id": F.when(~is_mobile_id, F.col("_id")),
        "mobile_ad_id": F.when(is_mobile_id, F.col("_id")),
        "ts": iso_local(local_time(ctx.start, day, secs), ctx.tz),
        "site_owner": F.when(site_col.isin(*[s for s, _ in vocab.PROXIMUS_SITES]), "proximus").otherwise("third_party"),
        "campaign_id": F.when(is_ad, F.element_at(literal_array(campaigns), F.col("_ci"))),
        "advertiser_id": F.when(is_ad, F.element_at(literal_array(advertisers), F.col("_ci"))),
        "tc_string": tc,
        "date": _day_date(ctx, day),
        "_t": day * 86400 + secs,
        "_k": F.col("id") * 32 + e,
    })
    return _finish(out, "web_events")


# ------------------------------------------------------------------------------------------- commerce


def purchases(ctx: GenContext) -> DataFrame:
    """Shop purchases; technology fans buy premium smartphones and laptops."""
    n, d, u = ctx.customers, ctx.days, ctx.u
    df = with_core(_range(ctx, n, n * 0.1 * d / 28).withColumnRenamed("id", "pk"), ctx, "p_join", "p_tech")
    k = F.col("pk")
    p = F.least(F.lit(0.9), 0.1 * d / 28 * F.when(F.col("p_tech"), 3.0).otherwise(1.0))
    up = u("purchases", k)
    count = (up < p).cast("int") + (up < p * 0.25).cast("int") + (up < p * 0.05).cast("int")
    df = df.where(count > 0).withColumn("j", F.explode(F.sequence(F.lit(1), count)))
    j = F.col("j")
    df = df.withColumns({
        "_day": (F.col("p_join") + F.floor(u("purchase-day", k, j) * (F.lit(d) - F.col("p_join")))).cast("long"),
        "_secs": daytime_seconds(u("purchase-hour", k, j), u("purchase-rest", k, j), vocab.DAYTIME_HOURS),
    })
    day, secs = F.col("_day"), F.col("_secs")
    uc = u("category", k, j)
    category = F.when(F.col("p_tech"), weighted(uc, [(c, t) for c, t, _ in vocab.PRODUCT_MIX])) \
        .otherwise(weighted(uc, [(c, o) for c, _, o in vocab.PRODUCT_MIX]))
    ut = u("tier", k, j)
    tier = F.when(F.col("p_tech"), weighted(ut, vocab.TIER_MIX["tech"])) \
        .otherwise(weighted(ut, vocab.TIER_MIX["other"]))
    prices = literal_array_map({f"{c}/{t}": bounds for c, tiers in vocab.PRICES.items() for t, bounds in tiers.items()})
    bounds = F.element_at(prices, F.concat_ws("/", F.col("product_category"), F.col("product_tier")))
    low, high = F.element_at(bounds, 1), F.element_at(bounds, 2)
    amount = F.floor(low + u("price", k, j) * (high - low)) + 0.99
    out = (
        df.withColumn("product_category", category)
        .withColumn("product_tier", tier)
        .withColumn("purchase_id", F.format_string("PUR-%s-%d", customer_id(k), j))
        .withColumn("customer_id", customer_id(k))
        .withColumn("purchased_at", iso_local(local_time(ctx.start, day, secs), ctx.tz))
        .withColumn("amount_eur", F.format_string("%.2f", amount))
        .withColumn("date", _day_date(ctx, day))
        .withColumn("_t", day * 86400 + secs)
        .withColumn("_k", k * 8 + j)
    )
    return _finish(out, "purchases")


def loyalty_events(ctx: GenContext) -> DataFrame:
    """Enjoy! rewards and Pickx competitions, with the content category they are about."""
    n, d, u = ctx.customers, ctx.days, ctx.u
    person = ("p_join", "p_tv", "p_tech", "p_hobby", "p_sport", "p_fav1", "p_fav2", "p_fav3")
    df = with_core(_range(ctx, n, n * 0.5 * d / 28).withColumnRenamed("id", "pk"), ctx, *person)
    k = F.col("pk")
    pe = F.when(u("enjoy-member", k) < 0.3, 0.5 * d / 28).otherwise(0.0)
    pc = F.when(F.col("p_tv") & (u("competitor", k) < 0.3), 0.9 * d / 28).otherwise(0.0)
    ue, uc = u("enjoy-n", k), u("competition-n", k)
    n_enjoy = (ue < pe).cast("int") + (ue < pe / 3).cast("int") + (ue < pe / 9).cast("int")
    n_comp = (uc < pc).cast("int") + (uc < pc / 3).cast("int") + (uc < pc / 9).cast("int")
    df = df.withColumn("_ne", n_enjoy).where(n_enjoy + n_comp > 0)
    df = df.withColumn("j", F.explode(F.sequence(F.lit(0), n_enjoy + n_comp - 1)))
    j = F.col("j")
    is_enjoy = j < F.col("_ne")
    df = df.withColumns({
        "_day": (F.col("p_join") + F.floor(u("loyalty-day", k, j) * (F.lit(d) - F.col("p_join")))).cast("long"),
        "_secs": daytime_seconds(u("loyalty-hour", k, j), u("loyalty-rest", k, j), vocab.WEB_HOURS),
    })
    day, secs = F.col("_day"), F.col("_secs")
    enjoy_content = F.when((F.col("p_fav1") == "Sports") & (u("enjoy-sport", k, j) < 0.4),
                           F.element_at(literal_map(SPORT_CONTENT), F.col("p_sport"))) \
        .otherwise(weighted(u("enjoy-content", k, j), ENJOY_CONTENT))
    competition = _interest_content(ctx, u("comp-interest", k, j) * 0.55, u("comp-pick", k, j))
    out = (
        df.withColumn("event_id", F.format_string("LOY-%s-%d", customer_id(k), j))
        .withColumn("customer_id", customer_id(k))
        .withColumn("program", F.when(is_enjoy, "enjoy").otherwise("pickx_competition"))
        .withColumn("content_category_id", F.when(is_enjoy, enjoy_content).otherwise(competition))
        .withColumn("ts", iso_local(local_time(ctx.start, day, secs), ctx.tz))
        .withColumn("date", _day_date(ctx, day))
        .withColumn("_t", day * 86400 + secs)
        .withColumn("_k", k * 16 + j)
    )
    return _finish(out, "loyalty_events")


#: Builder of every landing source, in contract order.
BUILDERS: dict[str, Callable[[GenContext], DataFrame]] = {
    "customers": customers,
    "consent_events": consent_events,
    "erasure_requests": erasure_requests,
    "identity_links": identity_links,
    "tv_viewing": tv_viewing,
    "tv_ad_exposures": tv_ad_exposures,
    "web_events": web_events,
    "purchases": purchases,
    "loyalty_events": loyalty_events,
    "sociodemo_individual": sociodemo_individual,
    "sociodemo_area": sociodemo_area,
    "cadastral": cadastral,
}

#: Sources delivered as snapshots (a full file first, then small deliveries); the others are daily events.
SNAPSHOT_SOURCES = frozenset({"customers", "sociodemo_individual", "sociodemo_area", "cadastral"})

__all__ = ["BUILDERS", "SNAPSHOT_SOURCES", "partitions", "FUTURE_CONSENT_HOURS"]
