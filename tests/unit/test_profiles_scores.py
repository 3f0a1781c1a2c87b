"""Hand-computed interest scores (P1-P4, C4, C6) on tiny fixtures, through ``build_profiles``.

The arithmetic is written next to each expectation. The fixtures use a half-life of 7 days and an epoch 70 days
before the as-of date, so every weight is an exact power of two and the weighted figures compare exactly.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines.config import ProfileSettings
from pipelines.consent.tcf import encode, tcf_verdicts
from pipelines.profiles.build import ProfileInputs, build_profiles, profile_references
from pipelines.profiles.tv import tv_daily_genre_minutes
from pipelines.profiles.web import tc_hash, web_daily_category_events
from pipelines.schemas import silver_schema

AS_OF = date(2026, 3, 31)
TZ = "Europe/Brussels"
PROFILES = ProfileSettings(
    epoch=date(2026, 1, 20),  # 70 days before AS_OF: (d - epoch) / 7 is an integer for the days used below
    half_life_days=7.0,
    lookback_days=(7, 28),
    min_tv_minutes=30.0,
    min_web_events=3.0,
    min_lift=1.2,
    max_interests=20,
    web_event_weights={"page_view": 1.0, "ad_click": 3.0},
    loyalty_weight=2.0,
    purchase_lookback_days=365,
    purchase_weight=5.0,
)
_CREATED = datetime(2026, 1, 1, tzinfo=timezone.utc)
TC_OK = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, created=_CREATED)
TC_NO_P3 = encode(purposes_consent={1, 4}, vendor_consents={4242}, created=_CREATED)
TC_NO_VENDOR = encode(purposes_consent={1, 3, 4}, vendor_consents={7}, created=_CREATED)

# Audience ids used below (conf/mappings): Sports 607, Football 663, Drama 710, Cooking 371,
# Automotive content "1" -> Car enthusiast 243, Business content "52" -> 268, premium smartphone -> 703.


def at(day: int, hour: int = 18) -> datetime:
    """An instant on March ``day`` 2026 (18:00 UTC is the same local day in Brussels)."""
    return datetime(2026, 3, day, hour, tzinfo=timezone.utc)


def silver(spark, source: str, rows: list[dict]) -> DataFrame:
    """A silver-schema DataFrame from partial dicts (missing columns null; lineage filled)."""
    schema = silver_schema(source)
    lineage = {"_source_file": "test", "_line": 0, "_run_id": "r1", "_ingested_at": datetime(2026, 4, 1, tzinfo=timezone.utc)}
    return spark.createDataFrame([tuple({**lineage, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


def customer(cid: str, birth: date = date(1990, 6, 1), postal: str = "9000", **extra) -> dict:
    return {"customer_id": cid, "birth_date": birth, "gender": "F", "language": "nl", "address_id": f"addr-{cid}",
            "postal_code": postal, "customer_type": "residential", "tv_subscription": True,
            "internet_subscription": True, "mobile_subscription": False,
            "updated_at": datetime(2026, 1, 1, tzinfo=timezone.utc), **extra}


def eligibility(spark, rows: list[tuple[str, int, bool, bool]]) -> DataFrame:
    """(customer_id, age, eligible_tv_profile, eligible_web_profile), as ``gate.eligibility`` names them."""
    return spark.createDataFrame(rows, "customer_id string, age int, eligible_tv_profile boolean, "
                                       "eligible_web_profile boolean")


def view(vid: str, cid: str, genre: str, minutes: int, day: int, subgenre: str | None = None,
         platform: str = "decoder") -> dict:
    return {"view_id": vid, "customer_id": cid, "platform": platform, "genre": genre, "subgenre": subgenre,
            "start_ts": at(day), "duration_s": minutes * 60}


def web_event(eid: str, cookie: str | None, content: str, tc: str | None, day: int = 31,
              event_type: str = "page_view", mobile: str | None = None) -> dict:
    return {"event_id": eid, "cookie_id": cookie, "mobile_ad_id": mobile, "ts": at(day), "event_type": event_type,
            "content_category_id": content, "tc_string": tc}


def link(cid: str, id_type: str, value: str, when: datetime = datetime(2026, 3, 1, tzinfo=timezone.utc)) -> dict:
    return {"customer_id": cid, "id_type": id_type, "id_value": value, "site_domain": "proximus.be",
            "authenticated_at": when}


def inputs(spark, *, customers, viewing=(), events=(), links=(), loyalty=(), purchases=(), exposures=(),
           individual=(), area=(), cadastral=()) -> ProfileInputs:
    events_df = silver(spark, "web_events", list(events))
    verdicts = tcf_verdicts(events_df, vendor_id=4242).select(
        tc_hash(F.col("tc_string")).alias("tc_hash"), "tcf_ok")
    return ProfileInputs(
        customers=silver(spark, "customers", list(customers)),
        sociodemo_individual=silver(spark, "sociodemo_individual", list(individual)),
        sociodemo_area=silver(spark, "sociodemo_area", list(area)),
        cadastral=silver(spark, "cadastral", list(cadastral)),
        purchases=silver(spark, "purchases", list(purchases)),
        loyalty_events=silver(spark, "loyalty_events", list(loyalty)),
        identity_links=silver(spark, "identity_links", list(links)),
        tv_ad_exposures=silver(spark, "tv_ad_exposures", list(exposures)),
        tv_daily=tv_daily_genre_minutes(silver(spark, "tv_viewing", list(viewing)), TZ),
        web_daily=web_daily_category_events(events_df, verdicts, TZ),
    )


@pytest.fixture(scope="module", autouse=True)
def _tiny_data(tiny_data_spark):
    """Small-input Spark settings for this module (see ``tiny_data_spark`` in tests/conftest.py)."""


@pytest.fixture(scope="module")
def refs(spark, conf_dir):
    return profile_references(spark, conf_dir)


@pytest.fixture(scope="module")
def cfg(settings):
    return settings.replace(profiles=PROFILES, timezone=TZ)


def interests_by_customer(df: DataFrame) -> dict[str, list[tuple]]:
    return {r.customer_id: [(i.interest, i.iab_audience_id, i.score) for i in r.interests]
            for r in df.select("customer_id", "interests").collect()}


# ----------------------------------------------------------------------------------------------------- TV


@pytest.fixture(scope="module")
def tv_world(spark, refs, cfg):
    viewing = [
        # A: Sports/Football 120 min on A (weight 1); Drama 60 min on A-7 (weight 1/2).
        view("v1", "A", "Sports", 90, 31, subgenre="Football", platform="decoder"),
        view("v2", "A", "Sports", 30, 31, subgenre="  football ", platform="app"),  # same key after trimming
        view("v3", "A", "Drama", 60, 24, platform="web"),
        # A: Religion is a special category (content 453): dropped before anything, total included.
        view("v4", "A", "Religion", 500, 31),
        # B: Drama 120 min on A; Sports 60 min on A-14 (weight 1/4).
        view("v5", "B", "Drama", 120, 31),
        view("v6", "B", "Sports", 60, 17),
        # C objected to TV personalisation, D is a minor: their viewing must weigh nowhere.
        view("v7", "C", "Cooking", 600, 31),
        view("v8", "D", "Comedy", 300, 31),
        # A: a view before the longest look-back (3 March; the window is 4..31 March) and one after the
        # as-of date are ignored.
        view("v9", "A", "Cooking", 500, 3),
        {**view("v10", "A", "Cooking", 500, 31), "start_ts": datetime(2026, 4, 2, 18, tzinfo=timezone.utc)},
    ]
    customers = [customer("A"), customer("B"), customer("C"), customer("D", birth=date(2010, 1, 1))]
    elig = eligibility(spark, [("A", 35, True, False), ("B", 35, True, False), ("C", 35, False, False),
                               ("D", 16, False, False)])
    out = build_profiles(inputs(spark, customers=customers, viewing=viewing), elig, refs, cfg, AS_OF)
    return out


def test_tv_scores_match_hand_computation(tv_world) -> None:
    # 28-day window (the longest), weights 2**((d - AS_OF)/7):
    #   A: W(Sports 607) = 120, W(Football 663) = 120, W(Drama 710) = 60 * 1/2 = 30, T(A) = 120 + 30 = 150
    #   B: W(Drama) = 120, W(Sports) = 60 * 1/4 = 15, T(B) = 135
    #   population: total 285; Sports 135, Football 120, Drama 150
    #   A Football: (120/150) / (120/285) = 1.9
    #   A Sports:   (120/150) / (135/285) = 228/135 = 1.68888... -> 1.6889
    #   A Drama:    (30/150)  / (150/285) = 0.38 < min_lift: not published
    #   B Drama:    (120/135) / (150/285) = 1.68888... -> 1.6889 (evidence 120 >= 30 minutes)
    #   B Sports:   (15/135)  / (135/285) = 0.2346 (and 15 < 30 minutes): not published
    assert interests_by_customer(tv_world.tv_profiles) == {
        "A": [("Football fan", 663, 1.9), ("Sports fan", 607, 1.6889)],
        "B": [("Drama fan", 710, 1.6889)],
    }


def test_tv_evidence_per_window_and_source(tv_world) -> None:
    # 7-day window (AS_OF-6 .. AS_OF): A has 120 min of Sports/Football, B 120 min of Drama; total 240;
    # population share of each 120/240 = 0.5; A's shares 1.0 -> lift 2.0; B's Drama share 1.0 -> lift 2.0.
    rows = tv_world.evidence.where("channel = 'tv'").select(
        "customer_id", "iab_audience_id", "source", "window_days", "minutes_or_events", "weighted_evidence",
        "share", "score").collect()
    assert sorted(tuple(r) for r in rows) == [
        ("A", 607, "tv_viewing", 7, 120.0, 120.0, 1.0, 2.0),
        ("A", 607, "tv_viewing", 28, 120.0, 120.0, 0.8, 1.6889),
        ("A", 663, "tv_viewing", 7, 120.0, 120.0, 1.0, 2.0),
        ("A", 663, "tv_viewing", 28, 120.0, 120.0, 0.8, 1.9),
        ("B", 710, "tv_viewing", 7, 120.0, 120.0, 1.0, 2.0),
        ("B", 710, "tv_viewing", 28, 120.0, 120.0, 120 / 135, 1.6889),
    ]


def test_tv_population_figures_exclude_objectors_and_denied_genres(tv_world) -> None:
    # If C's 600 Cooking minutes or A's 500 Religion minutes counted, the totals below would differ.
    rows = tv_world.scores["tv"].interests.where("window_days = 28").select(
        "customer_id", "iab_audience_id", "weighted", "population_share").collect()
    assert sorted(tuple(r) for r in rows) == [
        ("A", 607, 120.0, 135 / 285),
        ("A", 663, 120.0, 120 / 285),
        ("A", 710, 30.0, 150 / 285),
        ("B", 607, 15.0, 135 / 285),
        ("B", 710, 120.0, 150 / 285),
    ]


def test_max_interests_keeps_the_highest_scores(spark, refs, cfg) -> None:
    viewing = [view("v1", "A", "Sports", 120, 31, subgenre="Football"), view("v2", "A", "Drama", 60, 24),
               view("v3", "B", "Drama", 120, 31), view("v4", "B", "Sports", 60, 17)]
    elig = eligibility(spark, [("A", 35, True, False), ("B", 35, True, False)])
    one = cfg.replace(profiles=ProfileSettings(**{**PROFILES.__dict__, "max_interests": 1}))
    out = build_profiles(inputs(spark, customers=[customer("A"), customer("B")], viewing=viewing), elig, refs, one,
                         AS_OF)
    assert interests_by_customer(out.tv_profiles) == {"A": [("Football fan", 663, 1.9)],
                                                      "B": [("Drama fan", 710, 1.6889)]}


def test_tv_daily_aggregate_keeps_objectors_viewing_for_reporting(spark) -> None:
    # C6: the per-source aggregate holds everyone's viewing; the gate applies when profiles read it.
    daily = tv_daily_genre_minutes(silver(spark, "tv_viewing", [
        view("v1", "C", "Cooking", 90, 31, platform="decoder"), view("v2", "C", "Cooking", 30, 31, platform="app"),
        view("v3", "C", "Sports", 45, 30, subgenre=" Formula   1 "),
    ]), TZ)
    assert sorted(tuple(r) for r in daily.collect()) == [
        ("C", date(2026, 3, 30), "Sports", "formula 1", 45.0, 1),
        ("C", date(2026, 3, 31), "Cooking", None, 120.0, 2),
    ]


def test_local_day_follows_brussels_time(spark) -> None:
    # 22:30 UTC on 30 March 2026 is 00:30 on 31 March in Brussels (CEST, UTC+2).
    daily = tv_daily_genre_minutes(silver(spark, "tv_viewing", [
        {**view("v1", "A", "Drama", 10, 30), "start_ts": datetime(2026, 3, 30, 22, 30, tzinfo=timezone.utc)},
        {**view("v2", "A", "Drama", 10, 30), "start_ts": datetime(2026, 3, 30, 21, 30, tzinfo=timezone.utc)},
    ]), TZ)
    assert sorted((r.day, r.minutes) for r in daily.collect()) == [(date(2026, 3, 30), 10.0), (date(2026, 3, 31), 10.0)]



@pytest.mark.parametrize("session_tz", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_local_day_is_the_zone_calendar_date_across_daylight_saving_changes(spark, session_tz) -> None:
    # Every 7.5 minutes over the days around both 2026 changes, 1970's first instants (day 0 and before), and the
    # last microsecond before and the first at each Brussels midnight of those days: local_day must give the
    # date Python's zoneinfo gives, whatever the session time zone.
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from pipelines.profiles.tv import local_day
    from pipelines.spark import session_conf

    zone = ZoneInfo(TZ)
    instants = [datetime(1969, 12, 31, 22, 59, 59, 999999, tzinfo=timezone.utc),
                datetime(1969, 12, 31, 23, 0, tzinfo=timezone.utc)]
    for start in (datetime(2026, 3, 27, tzinfo=timezone.utc), datetime(2026, 10, 23, tzinfo=timezone.utc)):
        instants += [start + timedelta(minutes=7.5 * i) for i in range(4 * 24 * 8)]
        for d in range(4):
            midnight = datetime.combine(start.date() + timedelta(days=d), datetime.min.time(), zone)
            instants += [midnight - timedelta(microseconds=1), midnight]
    expected = [ts.astimezone(zone).date() for ts in instants]
    with session_conf(spark, {"spark.sql.session.timeZone": session_tz}):
        df = spark.createDataFrame([(i, ts) for i, ts in enumerate(instants)], "i int, ts timestamp")
        got = [r.day for r in df.select("i", local_day(F.col("ts"), TZ).alias("day")).orderBy("i").collect()]
    wrong = [(instants[i], expected[i], got[i]) for i in range(len(instants)) if got[i] != expected[i]]
    assert not wrong, wrong[:5]


# ---------------------------------------------------------------------------------------------------- web


@pytest.fixture(scope="module")
def web_world(spark, refs, cfg):
    customers = [customer(c) for c in ("A", "B", "E", "F")]
    # A, B: eligible for web and TV; E: web only (objected to TV personalisation); F: not eligible for web.
    elig = eligibility(spark, [("A", 35, True, True), ("B", 35, True, True), ("E", 35, False, True),
                               ("F", 35, True, False)])
    events = [
        web_event("w1", "ck-a", "1", TC_OK), web_event("w2", "ck-a", "1", TC_OK),
        web_event("w3", "ck-a", "1", TC_OK, event_type="ad_click"),
        web_event("w4", "ck-a", "1", TC_OK, event_type="ad_impression"),   # no weight configured: ignored
        *[web_event(f"x{i}", "ck-a", "52", TC_NO_P3) for i in range(5)],  # fails C4 (purpose 3)
        web_event("w5", None, "1", TC_NO_VENDOR, mobile="m-a"),            # fails C4 (vendor)
        web_event("w6", "ck-a", "1", None),                                 # no TC string
        *[web_event(f"r{i}", "ck-a", "453", TC_OK) for i in range(3)],      # Religion: special category
        *[web_event(f"b{i}", "ck-b", "52", TC_OK) for i in range(4)],
        web_event("b9", "ck-b", "1", TC_OK, day=24),
        *[web_event(f"z{i}", "ck-z", "1", TC_OK) for i in range(10)],      # unlinked device
        *[web_event(f"f{i}", "ck-f", "52", TC_OK) for i in range(10)],      # device of a non-eligible customer
        web_event("b10", "ck-b2", "52", TC_OK),                             # linked only after the as-of date
    ]
    links = [link("A", "cookie_id", "ck-a"), link("A", "mobile_ad_id", "m-a"), link("A", "cookie_id", "ck-a"),
             link("A", "decoder_id", "dec-a"), link("B", "cookie_id", "ck-b"), link("E", "cookie_id", "ck-e"),
             link("F", "cookie_id", "ck-f"),
             link("B", "cookie_id", "ck-b2", when=datetime(2026, 4, 5, tzinfo=timezone.utc))]
    loyalty = [{"event_id": "l1", "customer_id": "A", "program": "enjoy", "content_category_id": "52", "ts": at(31)},
               {"event_id": "l2", "customer_id": "F", "program": "enjoy", "content_category_id": "1", "ts": at(31)}]
    purchases = [{"purchase_id": "p1", "customer_id": "B", "product_category": "smartphone",
                  "product_tier": "premium", "purchased_at": at(31), "amount_eur": 999.0}]
    viewing = [view("v1", "A", "Cooking", 60, 31), view("v2", "B", "Drama", 60, 31),
               view("v3", "E", "Sports", 600, 31)]
    exposures = [
        {"exposure_id": f"e{i}", "customer_id": "A", "campaign_id": c, "ts": at(d)}
        for i, (c, d) in enumerate([("c2", 31), ("c1", 20), ("c1", 3), ("c3", 1)])  # window: 4..31 March
    ] + [{"exposure_id": "e9", "customer_id": "E", "campaign_id": "c1", "ts": at(31)}]
    data = inputs(spark, customers=customers, viewing=viewing, events=events, links=links, loyalty=loyalty,
                  purchases=purchases, exposures=exposures)
    return build_profiles(data, elig, refs, cfg, AS_OF)


def test_web_scores_match_hand_computation(web_world) -> None:
    # Event scale, 28-day window, weights page_view 1, ad_click 3, loyalty 2, purchase 5:
    #   A: Car 243 = 2 page views + 1 click * 3 = 5; Business 268 = 1 Enjoy! event * 2 = 2; T(A) = 7
    #   B: Business 268 = 4; Car 243 = 1 page view on A-7 * 1/2 = 0.5; Tech 703 = premium smartphone 5; T(B) = 9.5
    #   population: total 16.5; Car 5.5, Business 6, Tech 5
    #   A Car:      (5/7) / (5.5/16.5) = 15/7 = 2.142857 -> 2.1429 (evidence 5 >= 3)
    #   A Business: (2/7) / (6/16.5) = 0.7857: no
    #   B Business: (4/9.5) / (6/16.5) = 66/57 = 1.1579 < 1.2: no
    #   B Tech:     (5/9.5) / (5/16.5) = 16.5/9.5 = 1.736842 -> 1.7368
    # Viewing (minutes, customers eligible for web AND TV: A, B; E objected): A Cooking 60, B Drama 60;
    #   population 120, each share 1.0 / 0.5 -> lift 2.0. E's 600 Sports minutes count nowhere.
    # The web score of an interest is the larger of its event and viewing scores.
    assert interests_by_customer(web_world.web_profiles) == {
        "A": [("Car enthusiast", 243, 2.1429), ("Cooking enthusiast", 371, 2.0)],
        "B": [("Drama fan", 710, 2.0), ("Technology early adopter", 703, 1.7368)],
        "E": [],
    }


def test_web_evidence_names_its_sources(web_world) -> None:
    rows = web_world.evidence.where("channel = 'web' AND window_days = 28").select(
        "customer_id", "iab_audience_id", "source", "minutes_or_events", "weighted_evidence", "score").collect()
    assert sorted(tuple(r) for r in rows) == [
        ("A", 243, "web_ad_click", 1.0, 3.0, 2.1429),
        ("A", 243, "web_page_view", 2.0, 2.0, 2.1429),
        ("A", 371, "tv_viewing", 60.0, 60.0, 2.0),
        ("B", 703, "purchases", 1.0, 5.0, 1.7368),
        ("B", 710, "tv_viewing", 60.0, 60.0, 2.0),
    ]


def test_web_ad_ids_and_exposure_features(web_world) -> None:
    rows = web_world.web_profiles.select("customer_id", "cookie_id", "mobile_ad_id", "tv_ad_exposures_28d",
                                         "exposed_campaigns").collect()
    # A: exposures on 31 and 20 March count (3 and 1 March are outside AS_OF-27 .. AS_OF = 4..31 March).
    # E is not eligible for TV personalisation: exposure features are null, not zero.
    assert sorted(tuple(r) for r in rows) == [
        ("A", ["ck-a"], ["m-a"], 2, ["c1", "c2"]),
        ("B", ["ck-b"], [], 0, []),
        ("E", ["ck-e"], [], None, None),
    ]


def test_a_device_shared_with_an_ineligible_person_is_nobodys(spark, refs, cfg) -> None:
    """C3, C5: the family cookie is linked to A (adult, eligible) and to M (a minor); the tablet's mobile id to A
    and to W (withdrew the web profile). What those devices do may be M's or W's browsing: it weighs in nobody's
    profile and neither id is published. A's own cookie still counts."""
    customers = [customer("A"), customer("M", birth=date(2012, 6, 1)), customer("W")]
    elig = eligibility(spark, [("A", 35, True, True), ("M", 13, False, False), ("W", 35, True, False)])
    events = [*[web_event(f"f{i}", "ck-family", "1", TC_OK) for i in range(10)],
              *[web_event(f"t{i}", None, "1", TC_OK, mobile="m-tablet") for i in range(10)],
              *[web_event(f"a{i}", "ck-a", "52", TC_OK) for i in range(4)]]
    links = [link("A", "cookie_id", "ck-family"), link("M", "cookie_id", "ck-family"),
             link("A", "mobile_ad_id", "m-tablet"), link("W", "mobile_ad_id", "m-tablet"),
             link("A", "cookie_id", "ck-a")]
    out = build_profiles(inputs(spark, customers=customers, events=events, links=links), elig, refs, cfg, AS_OF)
    rows = out.web_profiles.select("customer_id", "cookie_id", "mobile_ad_id").collect()
    assert [tuple(r) for r in rows] == [("A", ["ck-a"], [])]
    evidence = out.scores["web"].sources.where("customer_id = 'A'").select("iab_audience_id", "quantity").distinct()
    assert sorted(tuple(r) for r in evidence.collect()) == [(268, 4.0)]  # Business from ck-a; no Car at all


def test_failing_tc_strings_contribute_nothing(spark, refs, cfg) -> None:
    # Only failing events: no evidence, no interest, for anybody.
    customers = [customer("A"), customer("B")]
    elig = eligibility(spark, [("A", 35, True, True), ("B", 35, True, True)])
    events = [web_event(f"x{i}", "ck-a", "1", tc) for i, tc in enumerate([TC_NO_P3, TC_NO_VENDOR, None, "garbage"] * 3)]
    out = build_profiles(inputs(spark, customers=customers, events=events,
                                links=[link("A", "cookie_id", "ck-a")]), elig, refs, cfg, AS_OF)
    assert out.scores["web"].sources.count() == 0
    assert interests_by_customer(out.web_profiles) == {"A": [], "B": []}
