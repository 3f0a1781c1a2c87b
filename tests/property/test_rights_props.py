"""Property (R1, C3): over random sequences of consent changes, erasures, replays of old landing files and daily
runs, no output ever holds a person after their erasure or withdrawal takes effect, and an erased person is in no
file under the warehouse at all -- data, old versions, logs -- however often old deliveries are re-ingested.

Each run is the daily job's ingestion stage (:func:`pipelines.jobs.daily.stage_ingest`: ingest ``erasure_requests``
-> erasure -> every other source through the tombstone filter), its consent gate, and gated audiences written as
``gold/tv_profiles`` and ``gold/web_profiles`` (the full profile computation is tested elsewhere).
"""
from __future__ import annotations

import json
import shutil
import tempfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings as hsettings, strategies as st
from pyspark.sql import functions as F

from pipelines import io
from pipelines.consent.gate import only_eligible
from pipelines.jobs.daily import RunContext, stage_gate, stage_ingest
from pipelines.progress import Progress
from pipelines.rights.erasure import files_mentioning
from pipelines.schemas import LANDING_COLUMNS

pytestmark = pytest.mark.slow

UTC = timezone.utc
DAY0 = date(2026, 11, 1)
PEOPLE = ("C00000011", "C00000012", "C00000013")
PURPOSES = ("tv_personalised_ads", "web_profile")


def cookie(p: str) -> str:
    return f"ck-{p[-2:]}-{'9f3a' * 2}"


def email(p: str) -> str:
    return f"person{p[-2:]}@example.be"


def phone(p: str) -> str:
    return f"+324700000{p[-2:]}"


def needles(p: str) -> list[str]:
    return [p, cookie(p), email(p), phone(p)]


def _csv(landing: Path, source: str, day: date, rows: list[dict]) -> None:
    path = landing / source / f"date={day}" / f"part-{len(list((landing / source).rglob('*.csv'))):04d}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = LANDING_COLUMNS[source]
    lines = [",".join(cols)] + [",".join(str(r.get(c, "")) for c in cols) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _jsonl(landing: Path, source: str, day: date, rows: list[dict]) -> None:
    path = landing / source / f"date={day}" / f"part-{len(list((landing / source).rglob('*.jsonl'))):04d}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")


def _consent(landing: Path, day: date, person: str, purpose: str, action: str, n: int) -> None:
    _jsonl(landing, "consent_events", day, [{
        "event_id": f"e-{day}-{n}-{person}-{purpose}", "customer_id": person, "purpose": purpose, "action": action,
        "channel": "myproximus_web", "event_ts": f"{day}T12:00:00+00:00"}])


def base_landing(landing: Path) -> None:
    _csv(landing, "customers", DAY0, [{
        "customer_id": p, "first_name": "A", "last_name": "B", "email": email(p), "phone": phone(p),
        "birth_date": "1980-05-05", "gender": "F", "language": "nl", "address_id": f"addr-{p}", "postal_code": "1000",
        "customer_type": "residential", "tv_subscription": "true", "internet_subscription": "true",
        "mobile_subscription": "false", "customer_since": "2015-01-01", "updated_at": f"{DAY0}T08:00:00+00:00"}
        for p in PEOPLE])
    _csv(landing, "identity_links", DAY0, [{
        "customer_id": p, "id_type": "cookie_id", "id_value": cookie(p), "site_domain": "proximus.be",
        "authenticated_at": f"{DAY0}T08:00:00+00:00"} for p in PEOPLE])
    _jsonl(landing, "web_events", DAY0, [{
        "event_id": f"w-{p}", "cookie_id": cookie(p), "ts": f"{DAY0}T09:00:00+00:00", "event_type": "page_view",
        "site_domain": "proximus.be", "site_owner": "proximus"} for p in PEOPLE])
    for n, p in enumerate(PEOPLE):
        for purpose in ("web_profile", "proximus_3p_ad_cookies"):
            _consent(landing, DAY0, p, purpose, "grant", n)


def daily_run(spark, settings, wh: io.Warehouse, landing: Path, as_of: date, keys) -> None:
    started = datetime.combine(as_of, datetime.min.time(), UTC) + timedelta(hours=21)
    ctx = RunContext(spark, settings, wh, landing, as_of, f"run-{as_of}", started, keys, progress=Progress(quiet=True))
    stage_ingest(ctx)  # the daily job's own order: erasure requests, erasure, tombstone filter, every other source
    elig = stage_gate(ctx)
    customers = ctx.silver("customers").select("customer_id").distinct()
    io.overwrite(only_eligible(customers, elig, "tv_profile").withColumn("as_of", F.lit(as_of)),
                 wh.table("gold", "tv_profiles"))
    links = only_eligible(ctx.silver("identity_links"), elig, "web_profile")
    web = links.groupBy("customer_id").agg(F.array_sort(F.collect_set("id_value")).alias("cookie_id"))
    io.overwrite(web.withColumn("mobile_ad_id", F.array().cast("array<string>")).withColumn("as_of", F.lit(as_of)),
                 wh.table("gold", "web_profiles"))
    elig.unpersist()


def expected(state: dict[tuple[str, str], str], erased: set[str]) -> tuple[set[str], set[str]]:
    """The model: TV is a legitimate interest (on until objected), the web profile a consent (granted at day 0)."""
    tv = {p for p in PEOPLE if p not in erased and state.get((p, "tv_personalised_ads"), "grant") == "grant"}
    web = {p for p in PEOPLE if p not in erased and state.get((p, "web_profile"), "grant") == "grant"}
    return tv, web


step = st.one_of(
    st.tuples(st.just("consent"), st.sampled_from(PEOPLE), st.sampled_from(PURPOSES), st.sampled_from(["grant", "withdraw"])),
    st.tuples(st.just("erase"), st.sampled_from(PEOPLE)),
    st.tuples(st.just("replay")),
)


@pytest.fixture(scope="module")
def day0(spark, settings, tmp_path_factory):
    """Keys, landing zone and warehouse after the day-0 run, the same for every example: built once, copied."""
    from pipelines.privacy.keys import load_keys, new_key_file

    base = tmp_path_factory.mktemp("rights-day0")
    new_key_file(base / "keys.json", ("adsdata",), now=datetime(2026, 1, 1, tzinfo=UTC))
    keys = load_keys(base / "keys.json")
    base_landing(base / "landing")
    daily_run(spark, settings, io.Warehouse(base / "warehouse"), base / "landing", DAY0, keys)
    return base, keys


@hsettings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(steps=st.lists(step, min_size=1, max_size=3))
@example(steps=[("consent", PEOPLE[0], "tv_personalised_ads", "withdraw"), ("erase", PEOPLE[1]), ("replay",)])
def test_nobody_is_in_any_output_after_erasure_or_withdrawal(spark, settings, day0, steps):
    template, keys = day0
    base = Path(tempfile.mkdtemp(prefix="rights-prop-"))
    try:
        landing, wh = base / "landing", io.Warehouse(base / "warehouse")
        shutil.copytree(template / "landing", landing)
        shutil.copytree(template / "warehouse", wh.root)
        state: dict[tuple[str, str], str] = {}
        erased: set[str] = set()
        for n, s in enumerate(steps, start=1):
            day = DAY0 + timedelta(days=n)
            if s[0] == "consent":
                _, person, purpose, action = s
                _consent(landing, day, person, purpose, action, n)
                state[(person, purpose)] = action
            elif s[0] == "erase":
                _csv(landing, "erasure_requests", day, [{"request_id": f"r-{n}", "customer_id": s[1],
                                                          "requested_at": f"{day}T10:00:00+00:00"}])
                erased.add(s[1])
            else:  # a replay: every landing file delivered so far is ingested again
                io.delete_where(spark, wh.table("ops", "ingested_files"), F.lit(True))
            daily_run(spark, settings, wh, landing, day, keys)

            tv, web = expected(state, erased)
            got_tv = {r.customer_id for r in io.read(spark, wh.table("gold", "tv_profiles")).collect()}
            got_web = {r.customer_id for r in io.read(spark, wh.table("gold", "web_profiles")).collect()}
            assert (got_tv, got_web) == (tv, web), f"after step {n} {s}"
            for person in sorted(erased):
                assert files_mentioning(wh.root, needles(person)) == [], f"{person} erased, still on disk after {s}"
        for person in sorted(set(PEOPLE) - erased):  # the scan does see people who were not erased
            assert files_mentioning(wh.root, [person]) != []
    finally:
        shutil.rmtree(base, ignore_errors=True)
