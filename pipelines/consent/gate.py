"""The consent gate: effective consent per customer and purpose, eligibility, and filter-before-join.

Contract section 2: the effective state of a purpose at an as-of date is the action of the latest event at
or before the end of that date (midnight, Europe/Brussels); with no event, the default of the purpose's legal
basis (consent: not granted; legitimate interest: granted until objected). On an exact tie a withdrawal wins.

Eligibility adds the rules every purpose shares: an adult (C5) who has not asked for erasure. Sources are
reduced to eligible customers with :func:`only_eligible` *before* they meet any other source (C2).

Example::

    >>> state = consent_state(events, customers, settings, date(2026, 11, 25))
    >>> elig = eligibility(state, customers, erasures, identity_links, settings, date(2026, 11, 25))
    >>> viewing_ok = only_eligible(viewing, elig, "tv_profile")
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import TimestampType

from pipelines import io
from pipelines.config import Settings

#: Eligibility columns of :func:`eligibility`, one per processing that the pipeline runs.
PROCESSINGS: dict[str, str] = {
    "tv_profile": "eligible_tv_profile",
    "web_profile": "eligible_web_profile",
    "ads_and_data": "eligible_ads_and_data",
    "list_refinement_tv": "eligible_list_refinement_tv",
    "list_refinement_web": "eligible_list_refinement_web",
    "marketing": "eligible_marketing",
}


def end_of_day(as_of: date, tz: str) -> datetime:
    """The instant at which ``as_of`` ends in ``tz`` (next local midnight), as an aware UTC datetime."""
    local_midnight = datetime.combine(as_of + timedelta(days=1), time(0), ZoneInfo(tz))
    return local_midnight.astimezone(timezone.utc)


def _ts(value: datetime) -> Column:
    return F.lit(value).cast(TimestampType())


def consent_state(consent_events: DataFrame, customers: DataFrame, settings: Settings, as_of: date) -> DataFrame:
    """``silver/consent_state``: one row per (customer, configured purpose) at ``as_of``.

    Columns: customer_id, purpose, granted, effective_since (null when the basis default applies), basis,
    source ("event" or "default"), as_of.
    """
    cutoff = _ts(end_of_day(as_of, settings.timezone))
    purposes = [(p.name, p.basis, p.default_granted) for p in settings.purposes.values()]
    defaults = io.local_frame(consent_events.sparkSession, purposes,
                              "purpose string, basis string, default_granted boolean")
    w = Window.partitionBy("customer_id", "purpose").orderBy(
        F.col("event_ts").desc(), (F.col("action") == "withdraw").desc(), F.col("event_id").desc())
    latest = (
        consent_events.where(F.col("event_ts") <= cutoff)
        .withColumn("_rn", F.row_number().over(w)).where("_rn = 1")
        .select("customer_id", "purpose", (F.col("action") == "grant").alias("_granted"),
                F.col("event_ts").alias("_since"))
    )
    grid = customers.select("customer_id").distinct().crossJoin(F.broadcast(defaults))
    return (
        grid.join(latest, ["customer_id", "purpose"], "left")
        .select(
            "customer_id", "purpose",
            F.coalesce("_granted", "default_granted").alias("granted"),
            F.col("_since").alias("effective_since"),
            "basis",
            F.when(F.col("_since").isNotNull(), F.lit("event")).otherwise(F.lit("default")).alias("source"),
            F.lit(as_of).alias("as_of"),
        )
    )


def age_at(birth_date: Column, as_of: date) -> Column:
    """Completed years at ``as_of`` (exact, leap days included); null for an unknown birth date."""
    d = F.lit(as_of)
    before_birthday = F.date_format(d, "MMdd") < F.date_format(birth_date, "MMdd")
    return F.year(d) - F.year(birth_date) - F.when(before_birthday, 1).otherwise(0)


def eligibility(
    state: DataFrame,
    customers: DataFrame,
    erasures: DataFrame,
    identity_links: DataFrame,
    settings: Settings,
    as_of: date,
) -> DataFrame:
    """One row per customer: age, adult, erased, authenticated, ``consent_<purpose>`` and ``eligible_*`` flags.

    Minors (C5), people with an unknown birth date and people who asked for erasure are eligible for nothing.
    The web profile also needs third-party ad cookies accepted and one authentication at least (C4); the
    per-event TCF check happens where web events are read.
    """
    cutoff = _ts(end_of_day(as_of, settings.timezone))
    granted = (
        state.groupBy("customer_id")
        .pivot("purpose", sorted(settings.purposes))
        .agg(F.first("granted"))
    )
    for p in settings.purposes:
        granted = granted.withColumnRenamed(p, f"consent_{p}")
    erased = erasures.select("customer_id").distinct().withColumn("erased", F.lit(True))
    authenticated = (
        identity_links.where(F.col("authenticated_at") <= cutoff)
        .select("customer_id").distinct().withColumn("authenticated", F.lit(True))
    )
    base = (
        customers.select("customer_id", age_at(F.col("birth_date"), as_of).alias("age"))
        .join(granted, "customer_id", "left")
        .join(erased, "customer_id", "left")
        .join(authenticated, "customer_id", "left")
        .fillna(False, subset=["erased", "authenticated"])
        .withColumn("adult", F.coalesce(F.col("age") >= settings.minimum_age, F.lit(False)))
    )
    allowed = F.col("adult") & ~F.col("erased")

    def has(purpose: str) -> Column:
        return F.coalesce(F.col(f"consent_{purpose}"), F.lit(False)) if purpose in settings.purposes else F.lit(False)

    web = allowed & has("web_profile") & has("proximus_3p_ad_cookies") & F.col("authenticated")
    tv = allowed & has("tv_personalised_ads")
    refine = allowed & has("advertiser_list_refinement")
    return base.select(
        "*",
        tv.alias("eligible_tv_profile"),
        web.alias("eligible_web_profile"),
        (allowed & has("ads_and_data")).alias("eligible_ads_and_data"),
        (refine & tv).alias("eligible_list_refinement_tv"),
        (refine & web).alias("eligible_list_refinement_web"),
        (allowed & has("marketing")).alias("eligible_marketing"),
        F.lit(as_of).alias("as_of"),
    )


def eligible_ids(elig: DataFrame, processing: str) -> DataFrame:
    """Customer ids eligible for a processing (a key of :data:`PROCESSINGS`)."""
    try:
        column = PROCESSINGS[processing]
    except KeyError:
        raise ValueError(f"unknown processing {processing!r}; known: {', '.join(PROCESSINGS)}") from None
    return elig.where(F.col(column)).select("customer_id")


def exclusive_devices(links: DataFrame, eligible: DataFrame) -> DataFrame:
    """The rows of ``links`` (``customer_id, id_type, id_value``, ...) whose customer is in ``eligible`` (a frame of
    ``customer_id``) and whose device is linked to nobody outside it.

    A cookie, mobile advertising id or decoder shared with someone who is not eligible (a minor, a person who
    withdrew or objected, an id no customer record knows) is left out for everyone: what the device does cannot
    be told apart from what that person does, so profiling or targeting it would profile or target them (C3, C5).
    ``links`` should hold every customer's links (as of the cutoff the caller applies), not only eligible ones.
    """
    ok = F.broadcast(eligible.select(F.col("customer_id").alias("_eligible_id")))
    on = F.col("customer_id") == F.col("_eligible_id")
    shared = links.join(ok, on, "left_anti").select("id_type", "id_value").distinct()
    return links.join(ok, on, "left_semi").join(shared, ["id_type", "id_value"], "left_anti")


def only_eligible(df: DataFrame, elig: DataFrame, processing: str, key: str = "customer_id") -> DataFrame:
    """Filter-before-join (C2): keep the rows of ``df`` whose ``key`` is eligible for ``processing``.

    A left-semi join against the (small, broadcast) eligible ids: nothing of an ineligible customer passes,
    and no column of the eligibility table is added to the source.
    """
    ids = eligible_ids(elig, processing).withColumnRenamed("customer_id", "_eligible_id")
    return df.join(F.broadcast(ids), F.col(key) == F.col("_eligible_id"), "left_semi")
