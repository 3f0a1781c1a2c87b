"""Privacy invariants of the profiles (C2, C4, C5, C6, P3, P4), as hypothesis properties over small random worlds.

A world is a handful of customers with random eligibility and random viewing, web events (with passing or
failing TC strings, on linked or unlinked devices), loyalty events and purchases, including special categories.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from pipelines import io
from pipelines.config import ProfileSettings
from pipelines.consent.tcf import encode, verdict
from pipelines.profiles.build import ProfileInputs, build_profiles, profile_references
from pipelines.profiles.tv import tv_daily_genre_minutes
from pipelines.profiles.web import tc_hash, web_daily_category_events
from pipelines.reference.taxonomy import AUDIENCE_TAXONOMY_FILE, load_audience_taxonomy, load_deny_list
from pipelines.schemas import silver_schema

AS_OF = date(2026, 3, 31)
TZ = "Europe/Brussels"
UTC = timezone.utc
PROFILES = ProfileSettings(
    epoch=date(2026, 1, 1), half_life_days=14.0, lookback_days=(7, 28), min_tv_minutes=10.0, min_web_events=1.0,
    min_lift=1.0, max_interests=5, web_event_weights={"page_view": 1.0, "ad_impression": 0.25, "ad_click": 3.0},
    loyalty_weight=2.0, purchase_lookback_days=365, purchase_weight=5.0,
)
_CREATED = datetime(2026, 1, 1, tzinfo=UTC)
TC_OK = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, created=_CREATED)
TC_FAILING = (
    encode(purposes_consent={1, 4}, vendor_consents={4242}, created=_CREATED),       # lacks purpose 3
    encode(purposes_consent={1, 3}, vendor_consents={4242}, created=_CREATED),       # lacks purpose 4
    encode(purposes_consent={1, 3, 4}, vendor_consents={11, 4241}, created=_CREATED),  # lacks the vendor
    None,
    "not-a-tc-string",
)
GENRES = ("Sports", "Drama", "Cooking", "Religion", "Politics", "News", "Comedy", "War")
SUBGENRES = (None, "Football", " voetbal ", "Wine", "Koken", "free text")
# Content categories: mapped ones, and special categories (453 Religion, 386 Politics, 286 Medical Health).
CONTENT = ("1", "52", "533", "216", "453", "386", "286", "596")
EVENT_TYPES = ("page_view", "ad_impression", "ad_click")
PRODUCTS = (("smartphone", "premium"), ("smart_home", "entry"), ("tablet", "entry"), ("laptop", "premium"))
PROGRAMS = ("enjoy", "pickx_competition")

# Each example runs the whole profile computation on Spark (seconds, not microseconds): few examples, each a
# world with several customers and a mix of every kind of event, rather than many tiny worlds.
PROPERTY = settings(max_examples=5, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@dataclass(frozen=True)
class World:
    customers: tuple[tuple[str, bool, bool], ...]                # (id, eligible tv, eligible web)
    viewing: tuple[tuple[str, str, str | None, int, int], ...]   # (customer, genre, subgenre, days ago, minutes)
    events: tuple[tuple[str, str, str, str | None, int], ...]    # (device owner or "nobody", content, type, tc, days ago)
    loyalty: tuple[tuple[str, str, str, int], ...]               # (customer, program, content, days ago)
    purchases: tuple[tuple[str, str, str, int], ...]             # (customer, category, tier, days ago)


def _ids(n: int) -> list[str]:
    return [f"c{i}" for i in range(n)]


@st.composite
def worlds(draw, min_customers: int = 2, max_customers: int = 6) -> World:
    n = draw(st.integers(min_customers, max_customers))
    ids = _ids(n)
    customers = tuple((c, draw(st.booleans()), draw(st.booleans())) for c in ids)
    who = st.sampled_from(ids)
    days = st.integers(0, 35)
    viewing = draw(st.lists(st.tuples(who, st.sampled_from(GENRES), st.sampled_from(SUBGENRES), days,
                                      st.integers(1, 240)), max_size=16))
    events = draw(st.lists(st.tuples(st.sampled_from([*ids, "nobody"]), st.sampled_from(CONTENT),
                                     st.sampled_from(EVENT_TYPES), st.sampled_from((TC_OK, TC_OK, *TC_FAILING)), days),
                           max_size=16))
    loyalty = draw(st.lists(st.tuples(who, st.sampled_from(PROGRAMS), st.sampled_from(CONTENT), days), max_size=3))
    purchases = draw(st.lists(st.tuples(who, *map(st.sampled_from, zip(*PRODUCTS)), days), max_size=3))
    return World(customers, tuple(viewing), tuple(events), tuple(loyalty), tuple(purchases))


def _at(days_ago: int) -> datetime:
    return datetime(2026, 3, 31, 17, tzinfo=UTC) - timedelta(days=days_ago)


def _silver(spark, source: str, rows: list[dict]) -> DataFrame:
    schema = silver_schema(source)
    lineage = {"_source_file": "prop", "_line": 0, "_run_id": "r", "_ingested_at": datetime(2026, 4, 1, tzinfo=UTC)}
    return io.local_frame(spark, [{**lineage, **r} for r in rows], schema)


class Harness:
    """Turns a world into profile outputs; reference tables and TC verdicts are built once."""

    def __init__(self, spark, conf_dir, settings) -> None:
        self.spark = spark
        self.refs = profile_references(spark, conf_dir)
        self.cfg = settings.replace(profiles=PROFILES, timezone=TZ)
        strings = [s for s in (TC_OK, *TC_FAILING) if s is not None]
        # Verdicts decided once in Python (the C4 codec), so no example pays for a pandas step.
        self.verdicts = io.local_frame(
            spark, [(s, verdict(s, required_purposes=(1, 3, 4), vendor_id=4242) == "ok") for s in strings],
            "tc_string string, tcf_ok boolean",
        ).select(tc_hash(F.col("tc_string")).alias("tc_hash"), "tcf_ok")
        self.audience = load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE)
        self.deny = load_deny_list(conf_dir)

    def build(self, world: World):
        spark = self.spark
        ids = [c for c, _, _ in world.customers]
        elig = io.local_frame(spark, [(c, 40, tv, web) for c, tv, web in world.customers],
                              "customer_id string, age int, eligible_tv_profile boolean, "
                              "eligible_web_profile boolean")
        customers = _silver(spark, "customers", [
            {"customer_id": c, "gender": "F", "language": "fr", "address_id": f"a-{c}", "postal_code": "1000",
             "customer_type": "residential", "tv_subscription": True, "internet_subscription": True,
             "mobile_subscription": True, "updated_at": _CREATED} for c in ids])
        viewing = _silver(spark, "tv_viewing", [
            {"view_id": f"v{i}", "customer_id": c, "platform": "app", "genre": g, "subgenre": s,
             "start_ts": _at(d), "duration_s": m * 60} for i, (c, g, s, d, m) in enumerate(world.viewing)])
        events = _silver(spark, "web_events", [
            {"event_id": f"w{i}", "cookie_id": f"ck-{c}", "ts": _at(d), "event_type": t, "content_category_id": k,
             "tc_string": tc} for i, (c, k, t, tc, d) in enumerate(world.events)])
        links = _silver(spark, "identity_links", [
            {"customer_id": c, "id_type": "cookie_id", "id_value": f"ck-{c}", "authenticated_at": _CREATED}
            for c in ids])
        loyalty = _silver(spark, "loyalty_events", [
            {"event_id": f"l{i}", "customer_id": c, "program": p, "content_category_id": k, "ts": _at(d)}
            for i, (c, p, k, d) in enumerate(world.loyalty)])
        purchases = _silver(spark, "purchases", [
            {"purchase_id": f"p{i}", "customer_id": c, "product_category": cat, "product_tier": tier,
             "purchased_at": _at(d)} for i, (c, cat, tier, d) in enumerate(world.purchases)])
        inputs = ProfileInputs(
            customers=customers, sociodemo_individual=_silver(spark, "sociodemo_individual", []),
            sociodemo_area=_silver(spark, "sociodemo_area", []), cadastral=_silver(spark, "cadastral", []),
            purchases=purchases, loyalty_events=loyalty, identity_links=links,
            tv_ad_exposures=_silver(spark, "tv_ad_exposures", []),
            tv_daily=tv_daily_genre_minutes(viewing, TZ),
            web_daily=web_daily_category_events(events, self.verdicts, TZ),
        )
        return build_profiles(inputs, elig, self.refs, self.cfg, AS_OF, cut=io.materialise)


@pytest.fixture(scope="module", autouse=True)
def _tiny_data(tiny_data_spark):
    """Small-input Spark settings for this module (see ``tiny_data_spark`` in tests/conftest.py)."""


@pytest.fixture(scope="module")
def harness(spark, conf_dir, settings) -> Harness:
    return Harness(spark, conf_dir, settings)


def _published(out) -> dict[tuple[str, str], list[tuple[int, float]]]:
    """{(channel, customer): [(audience id, score), ...]} in published order, both tables in one Spark job."""
    def side(df: DataFrame, channel: str) -> DataFrame:
        return df.select(F.lit(channel).alias("channel"), "customer_id",
                         F.transform("interests", lambda i: F.struct(i["iab_audience_id"], i["score"])).alias("i"))
    rows = side(out.tv_profiles, "tv").unionByName(side(out.web_profiles, "web")).collect()
    return {(r.channel, r.customer_id): [tuple(x) for x in r.i] for r in rows}


def _own_figures(out) -> dict[tuple, tuple[float, float]]:
    """{(scoring, customer, window, interest): (weighted evidence, share)} over every scoring, one Spark job."""
    parts = [s.interests.select(F.lit(name).alias("scoring"), "customer_id", "window_days", "iab_audience_id",
                                "weighted", "share") for name, s in out.scores.items()]
    df = parts[0]
    for part in parts[1:]:
        df = df.unionByName(part)
    return {(r.scoring, r.customer_id, r.window_days, r.iab_audience_id): (r.weighted, r.share) for r in df.collect()}


def _close(a: dict, b: dict) -> bool:
    """Same keys and values equal up to float summation order."""
    return a.keys() == b.keys() and all(
        all(abs(x - y) <= 1e-9 * max(1.0, abs(x), abs(y)) for x, y in zip(a[k], b[k])) for k in a)


@PROPERTY
@given(world=worlds())
def test_only_eligible_customers_appear_with_valid_interests(harness: Harness, world: World) -> None:
    out = harness.build(world)
    published = _published(out)
    eligible = {"tv": {c for c, tv, _ in world.customers if tv}, "web": {c for c, _, web in world.customers if web}}
    # C1/C2/C5/C6: every eligible customer has a profile, nobody else has one.
    assert {ch: {c for (x, c) in published if x == ch} for ch in ("tv", "web")} == eligible
    evidence = out.evidence.select("channel", "customer_id", "iab_audience_id").collect()
    assert all(r.customer_id in eligible[r.channel] for r in evidence)
    # P3/P4: every published interest is an Audience Taxonomy 1.1 Interest node outside the deny-list.
    ids = {i for interests in published.values() for i, _ in interests} | {r.iab_audience_id for r in evidence}
    assert all(i in harness.audience and harness.audience[i].is_interest for i in ids), ids
    assert not ids & harness.deny.audience_ids
    # Published order: score descending, at most max_interests.
    assert all(len(v) <= PROFILES.max_interests and [s for _, s in v] == sorted((s for _, s in v), reverse=True)
               for v in published.values())


@PROPERTY
@given(world=worlds(), salt=st.text(alphabet="xyz019-", min_size=1, max_size=4), data=st.data())
def test_relabelling_customer_ids_does_not_change_scores(harness: Harness, world: World, salt: str, data) -> None:
    ids = [c for c, _, _ in world.customers]
    order = data.draw(st.permutations(range(len(ids))))
    rename = {c: f"{salt}-{order[i]}" for i, c in enumerate(ids)}  # new, reordered, distinct ids
    renamed = World(
        customers=tuple((rename[c], tv, web) for c, tv, web in world.customers),
        viewing=tuple((rename[c], *rest) for c, *rest in world.viewing),
        events=tuple((rename.get(c, c), *rest) for c, *rest in world.events),
        loyalty=tuple((rename[c], *rest) for c, *rest in world.loyalty),
        purchases=tuple((rename[c], *rest) for c, *rest in world.purchases),
    )
    before = _published(harness.build(world))
    after = _published(harness.build(renamed))
    assert {(ch, rename[c]): v for (ch, c), v in before.items()} == after


@PROPERTY
@given(world=worlds(max_customers=3), other=worlds(min_customers=1, max_customers=1))
def test_another_customers_events_never_change_own_figures(harness: Harness, world: World, other: World) -> None:
    # The newcomer "c9" is eligible for everything and brings random activity of its own. Lift depends on
    # the population, so the invariant is each existing customer's own weighted evidence and shares.
    def as_c9(c: str) -> str:
        return "c9" if c == "c0" else c
    extended = World(
        customers=world.customers + (("c9", True, True),),
        viewing=world.viewing + tuple((as_c9(c), *r) for c, *r in other.viewing),
        events=world.events + tuple((as_c9(c), *r) for c, *r in other.events if c != "nobody"),
        loyalty=world.loyalty + tuple((as_c9(c), *r) for c, *r in other.loyalty),
        purchases=world.purchases + tuple((as_c9(c), *r) for c, *r in other.purchases),
    )
    before = _own_figures(harness.build(world))
    after = {k: v for k, v in _own_figures(harness.build(extended)).items() if k[1] != "c9"}
    assert _close(before, after)


@PROPERTY
@given(world=worlds(), failing=st.lists(
    st.tuples(st.sampled_from(["c0", "c1", "nobody"]), st.sampled_from(CONTENT), st.sampled_from(EVENT_TYPES),
              st.sampled_from(TC_FAILING), st.integers(0, 35)), min_size=1, max_size=8))
def test_web_events_failing_the_tcf_check_contribute_nothing(harness: Harness, world: World, failing) -> None:
    with_failing = replace(world, events=world.events + tuple(failing))
    before, after = harness.build(world), harness.build(with_failing)
    assert _published(after) == _published(before)
    assert _close(_own_figures(after), _own_figures(before))
