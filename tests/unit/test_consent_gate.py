"""Consent state and eligibility: hand-written cases plus a property test against a plain-Python model."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from pipelines.consent import gate
from pipelines.schemas import silver_schema

BRU = ZoneInfo("Europe/Brussels")
AS_OF = date(2026, 11, 25)


def events_df(spark, rows):
    schema = "event_id string, customer_id string, purpose string, action string, channel string, event_ts timestamp"
    return spark.createDataFrame(rows, schema)


def customers_df(spark, rows):
    """rows: (customer_id, birth_date)"""
    full = [(cid, None, None, None, None, bd, None, "nl", None, "9000", "residential", True, True, True, None, None,
             datetime(2026, 1, 1, tzinfo=timezone.utc), "f", 1, "r", datetime(2026, 1, 1, tzinfo=timezone.utc))
            for cid, bd in rows]
    return spark.createDataFrame(full, silver_schema("customers"))


def bru(y, m, d, hh=12, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=BRU)


def test_end_of_day_is_brussels_midnight():
    # 25 Nov is winter time (UTC+1): the day ends at 23:00 UTC.
    assert gate.end_of_day(AS_OF, "Europe/Brussels") == datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)
    # 1 July is summer time (UTC+2).
    assert gate.end_of_day(date(2026, 7, 1), "Europe/Brussels") == datetime(2026, 7, 1, 22, 0, tzinfo=timezone.utc)


def test_consent_state_cases(spark, settings):
    ev = events_df(spark, [
        # withdrawn after a grant
        ("e1", "c1", "web_profile", "grant", "myproximus_web", bru(2026, 10, 1)),
        ("e2", "c1", "web_profile", "withdraw", "myproximus_app", bru(2026, 11, 1)),
        # re-granted after a withdrawal
        ("e3", "c2", "ads_and_data", "grant", "myproximus_web", bru(2026, 9, 1)),
        ("e4", "c2", "ads_and_data", "withdraw", "myproximus_web", bru(2026, 10, 1)),
        ("e5", "c2", "ads_and_data", "grant", "customer_service", bru(2026, 11, 20)),
        # future-dated: a grant after the as-of date does not count yet
        ("e6", "c3", "web_profile", "grant", "myproximus_web", bru(2026, 11, 26, 0, 30)),
        # late on the as-of date (local time) counts
        ("e7", "c3", "ads_and_data", "grant", "myproximus_web", bru(2026, 11, 25, 23, 59)),
        # objection to a legitimate interest
        ("e8", "c4", "tv_personalised_ads", "withdraw", "tv_settings", bru(2026, 11, 2)),
        # exact tie: the withdrawal wins
        ("e9", "c4", "marketing", "grant", "myproximus_web", bru(2026, 11, 3)),
        ("e10", "c4", "marketing", "withdraw", "myproximus_web", bru(2026, 11, 3)),
    ])
    cust = customers_df(spark, [(c, date(1980, 1, 1)) for c in ("c1", "c2", "c3", "c4")])
    state = gate.consent_state(ev, cust, settings, AS_OF)
    got = {(r.customer_id, r.purpose): (r.granted, r.source) for r in state.collect()}
    assert len(got) == 4 * len(settings.purposes)
    assert got[("c1", "web_profile")] == (False, "event")
    assert got[("c2", "ads_and_data")] == (True, "event")
    assert got[("c3", "web_profile")] == (False, "default")       # future-dated grant ignored
    assert got[("c3", "ads_and_data")] == (True, "event")
    assert got[("c4", "tv_personalised_ads")] == (False, "event")
    assert got[("c4", "marketing")] == (False, "event")
    # never asked: the basis default
    assert got[("c1", "tv_personalised_ads")] == (True, "default")     # legitimate interest
    assert got[("c1", "advertiser_list_refinement")] == (False, "default")  # consent
    since = {(r.customer_id, r.purpose): r.effective_since for r in state.collect()}
    assert since[("c2", "ads_and_data")] == datetime(2026, 11, 20, 11, 0)  # UTC session time zone
    assert since[("c1", "tv_personalised_ads")] is None
    # The future grant takes effect on the next day's as-of date.
    later = {(r.customer_id, r.purpose): r.granted for r in gate.consent_state(ev, cust, settings, AS_OF + timedelta(days=1)).collect()}
    assert later[("c3", "web_profile")] is True


def reference_state(history, purpose_default, cutoff):
    """Plain-Python model of contract section 2."""
    valid = [(ts, action == "withdraw", eid, action) for eid, ts, action in history if ts <= cutoff]
    if not valid:
        return purpose_default
    return max(valid)[3] == "grant"


PURPOSES = ["tv_personalised_ads", "web_profile", "ads_and_data"]
event_st = st.tuples(
    st.sampled_from(PURPOSES),
    st.sampled_from(["grant", "withdraw"]),
    st.integers(min_value=-400, max_value=200),  # hours relative to the end of the as-of date
)


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(histories=st.lists(st.lists(event_st, max_size=6), min_size=1, max_size=25))
def test_consent_state_matches_reference_model(spark, settings, histories):
    cutoff = gate.end_of_day(AS_OF, settings.timezone)
    rows, expected = [], {}
    for i, history in enumerate(histories):
        cid = f"c{i}"
        per_purpose = {p: [] for p in PURPOSES}
        for j, (purpose, action, hours) in enumerate(history):
            ts = cutoff + timedelta(hours=hours)
            eid = f"{cid}-{j}"
            rows.append((eid, cid, purpose, action, "myproximus_web", ts))
            per_purpose[purpose].append((eid, ts, action))
        for p in PURPOSES:
            expected[(cid, p)] = reference_state(per_purpose[p], settings.purposes[p].default_granted, cutoff)
    cust = customers_df(spark, [(f"c{i}", date(1980, 1, 1)) for i in range(len(histories))])
    state = gate.consent_state(events_df(spark, rows), cust, settings, AS_OF).where("purpose in ('tv_personalised_ads','web_profile','ads_and_data')")
    got = {(r.customer_id, r.purpose): r.granted for r in state.collect()}
    assert got == expected


def links_df(spark, rows):
    return spark.createDataFrame(rows, "customer_id string, id_type string, id_value string, site_domain string, authenticated_at timestamp")


def erasures_df(spark, ids):
    return spark.createDataFrame([(f"r{c}", c, bru(2026, 11, 1)) for c in ids], "request_id string, customer_id string, requested_at timestamp")


def all_granted(cids):
    return [(f"{c}-{p}", c, p, "grant", "myproximus_web", bru(2026, 11, 1))
            for c in cids for p in ("web_profile", "proximus_3p_ad_cookies", "ads_and_data", "advertiser_list_refinement")]


def test_eligibility_minors_erasure_and_web_conditions(spark, settings):
    cids = ["adult", "minor", "turns18", "nobirth", "erased", "noauth", "nocookies"]
    births = {"adult": date(1980, 5, 5), "minor": date(2010, 1, 1), "turns18": date(2008, 11, 25),
              "nobirth": None, "erased": date(1970, 1, 1), "noauth": date(1970, 1, 1), "nocookies": date(1970, 1, 1)}
    cust = customers_df(spark, [(c, births[c]) for c in cids])
    ev_rows = [r for r in all_granted(cids) if not (r[1] == "nocookies" and r[2] == "proximus_3p_ad_cookies")]
    state = gate.consent_state(events_df(spark, ev_rows), cust, settings, AS_OF)
    links = links_df(spark, [(c, "cookie_id", f"ck-{c}", "proximus.be", bru(2026, 10, 1)) for c in cids if c != "noauth"]
                     + [("noauth", "cookie_id", "ck-late", "proximus.be", bru(2026, 11, 27))])  # after as-of: not yet
    elig = gate.eligibility(state, cust, erasures_df(spark, ["erased"]), links, settings, AS_OF)
    got = elig.select("customer_id", "age", "eligible_tv_profile", "eligible_web_profile", "eligible_ads_and_data",
                      "eligible_list_refinement_web")
    expected = spark.createDataFrame([
        Row(customer_id="adult", age=46, eligible_tv_profile=True, eligible_web_profile=True, eligible_ads_and_data=True, eligible_list_refinement_web=True),
        Row(customer_id="minor", age=16, eligible_tv_profile=False, eligible_web_profile=False, eligible_ads_and_data=False, eligible_list_refinement_web=False),
        Row(customer_id="turns18", age=18, eligible_tv_profile=True, eligible_web_profile=True, eligible_ads_and_data=True, eligible_list_refinement_web=True),
        Row(customer_id="nobirth", age=None, eligible_tv_profile=False, eligible_web_profile=False, eligible_ads_and_data=False, eligible_list_refinement_web=False),
        Row(customer_id="erased", age=56, eligible_tv_profile=False, eligible_web_profile=False, eligible_ads_and_data=False, eligible_list_refinement_web=False),
        Row(customer_id="noauth", age=56, eligible_tv_profile=True, eligible_web_profile=False, eligible_ads_and_data=True, eligible_list_refinement_web=False),
        Row(customer_id="nocookies", age=56, eligible_tv_profile=True, eligible_web_profile=False, eligible_ads_and_data=True, eligible_list_refinement_web=False),
    ], got.schema)
    assertDataFrameEqual(got, expected)


def test_age_at_leap_day(spark):
    from pyspark.sql import functions as F

    df = spark.createDataFrame([(date(2008, 2, 29),)], "b date")
    ages = [df.select(gate.age_at(F.col("b"), d).alias("a")).first().a for d in
            (date(2026, 2, 28), date(2026, 3, 1), date(2028, 2, 28), date(2028, 2, 29))]
    assert ages == [17, 18, 19, 20]


def test_only_eligible_filters_before_join(spark, settings):
    """C2: a source reduced by the gate holds no row of an ineligible customer, and the reduction is a
    semi-join on the source itself (no column of the gate or of another source added)."""
    cust = customers_df(spark, [("yes", date(1980, 1, 1)), ("minor", date(2015, 1, 1)), ("objector", date(1980, 1, 1))])
    ev = events_df(spark, [("o1", "objector", "tv_personalised_ads", "withdraw", "tv_settings", bru(2026, 11, 1))])
    state = gate.consent_state(ev, cust, settings, AS_OF)
    elig = gate.eligibility(state, cust, erasures_df(spark, []), links_df(spark, []), settings, AS_OF)
    viewing = spark.createDataFrame([("v1", "yes", 60), ("v2", "minor", 60), ("v3", "objector", 60), ("v4", "stranger", 60)],
                                    "view_id string, customer_id string, duration_s int")
    gated = gate.only_eligible(viewing, elig, "tv_profile")
    assert gated.columns == viewing.columns
    assertDataFrameEqual(gated, spark.createDataFrame([("v1", "yes", 60)], viewing.schema))
    plan = gated._jdf.queryExecution().optimizedPlan().toString()
    assert "LeftSemi" in plan


def test_unknown_processing_is_a_clear_error(spark, settings):
    with pytest.raises(ValueError, match="unknown processing"):
        gate.eligible_ids(spark.createDataFrame([], "customer_id string"), "telepathy")
