"""The Ads & Data delivery (A1-A4, C3): coarse attributes, no identifier in any exported value, revocations,
expiry, rotation, idempotent reruns and the delivery files.

Customers of the fixtures (as-of 2026-03-31 unless said otherwise):

=======  ====  ======  ====  ======  ==============  ===========================================
id       age   gender  lang  postal  ads_and_data    profiles
=======  ====  ======  ====  ======  ==============  ===========================================
C001     35    F       nl    9000    granted         TV {Football 1.9, Sports 4.5}, web {Football 2.5,
                                                     Cooking 1.3}; segments football_fans (tv, web), cooks
C002     46    M       fr    4000    granted         web {Cooking 2.0}; segment cooks
C003     25    X       en    1000    granted         none (demographics only)
C004     15    F       nl    2000    granted         minor: never delivered
C005     40    M       nl    2000    not granted     TV {Football 3.0}; segment football_fans
=======  ====  ======  ====  ======  ==============  ===========================================
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from pyspark.sql import DataFrame, Row

from pipelines import io
from pipelines.exports.adsdata import (
    ADSDATA_EXPORT,
    ADSDATA_REVOCATIONS,
    LEDGER,
    _add_months,
    adsdata_demographics,
    adsdata_interests,
    adsdata_profiles,
    adsdata_segments,
    export_rows,
    forget_in_ledger,
    ledger_path,
    prune_deliveries,
    reconcile,
    revocation_rows,
    stage_adsdata,
)
from pipelines.privacy.keys import Key, load_keys, rotate
from pipelines.privacy.pseudonym import hmac_pads, pseudonymise
from pipelines.progress import Progress
from pipelines.schemas import DIRECT_IDENTIFIER_COLUMNS, silver_schema

AS_OF = date(2026, 3, 31)
INTEREST = "array<struct<interest:string,iab_audience_id:int,score:double>>"
TV_SCHEMA = f"customer_id string, postal_code string, interests {INTEREST}"
WEB_SCHEMA = f"customer_id string, postal_code string, interests {INTEREST}, cookie_id array<string>, " \
             "mobile_ad_id array<string>"
ELIG_SCHEMA = ("customer_id string, age int, adult boolean, erased boolean, consent_ads_and_data boolean, "
               "eligible_ads_and_data boolean")


# ------------------------------------------------------------------------------------------- fixtures


def pseudonym(secret: bytes, customer_id: str) -> str:
    """Reference pseudonym (Python's hmac): what the recipient must receive for ``customer_id``."""
    return hmac.new(secret, f"customer:{customer_id}".encode(), hashlib.sha256).hexdigest()


def customers_df(spark, people: list[dict]) -> DataFrame:
    schema = silver_schema("customers")
    lineage = {"_source_file": "test", "_line": 0, "_run_id": "r0",
               "_ingested_at": datetime(2026, 3, 1, tzinfo=timezone.utc),
               "updated_at": datetime(2026, 3, 1, tzinfo=timezone.utc), "customer_type": "residential"}
    return spark.createDataFrame([tuple({**lineage, **p}.get(f.name) for f in schema.fields) for p in people], schema)


def person(cid: str, first: str, last: str, gender: str | None, language: str, postal: str, **extra) -> dict:
    n = cid[1:]
    return {"customer_id": cid, "first_name": first, "last_name": last, "gender": gender, "language": language,
            "postal_code": postal, "email": f"{first.lower()}.{last.lower()}@example.be", "phone": f"+32470{n}000",
            "address_id": f"ADDR-{n}", "birth_date": date(1990, 1, 1), **extra}


PEOPLE = [
    person("C001", "Anna", "Peeters", "F", "nl", "9000"),
    person("C002", "Bruno", "Dubois", "M", "fr", "4000"),
    person("C003", "Chloé", "Janssens", "X", "en", "1000"),
    person("C004", "Dirk", "Maes", "F", "nl", "2000"),
    person("C005", "Eva", "Claes", "M", "nl", "2000"),
]
AGES = {"C001": 35, "C002": 46, "C003": 25, "C004": 15, "C005": 40}
DEVICES = {"C001": (["ck-4f1a9e7c-0001"], ["AAID-9F8E7D6C-0001"]), "C002": (["ck-4f1a9e7c-0002"], [])}


def elig_df(spark, consent: dict[str, bool] | None = None, erased: Iterable[str] = (),
            ages: dict[str, int] = AGES) -> DataFrame:
    """The gate's eligibility columns this stage reads (adult: 18+; eligible: adult, not erased, granted)."""
    consent = {"C001": True, "C002": True, "C003": True, "C004": True, "C005": False, **(consent or {})}
    rows = []
    for cid, age in ages.items():
        gone = cid in set(erased)
        rows.append((cid, age, age >= 18, gone, consent[cid], age >= 18 and not gone and consent[cid]))
    return spark.createDataFrame(rows, ELIG_SCHEMA)


def interests(*pairs: tuple[int, float]) -> list[tuple[str, int, float]]:
    return [(f"interest {i}", i, s) for i, s in pairs]


def profile_outputs(spark) -> dict[str, DataFrame]:
    tv = spark.createDataFrame([
        ("C001", "9000", interests((663, 1.9), (607, 4.5))),
        ("C005", "2000", interests((663, 3.0))),
    ], TV_SCHEMA)
    web = spark.createDataFrame([
        ("C001", "9000", interests((663, 2.5), (371, 1.3)), *DEVICES["C001"]),
        ("C002", "4000", interests((371, 2.0)), *DEVICES["C002"]),
    ], WEB_SCHEMA)
    membership = spark.createDataFrame([
        ("football_fans", "tv", "C001"), ("football_fans", "web", "C001"), ("cooks", "web", "C001"),
        ("cooks", "web", "C002"), ("football_fans", "tv", "C005"),
    ], "segment string, channel string, customer_id string")
    return {"tv_profiles": tv, "web_profiles": web, "segment_membership": membership}


def geography(spark) -> DataFrame:
    return spark.createDataFrame([("9000", "BE-VLG"), ("4000", "BE-WAL"), ("1000", "BE-BRU"), ("2000", "BE-VLG")],
                                 "postal_code string, region string")


@pytest.fixture(scope="module")
def bands():
    from pipelines.config import CONF_DIR
    from pipelines.reference.taxonomy import AUDIENCE_TAXONOMY_FILE, iab_age_bands, load_audience_taxonomy

    return iab_age_bands(load_audience_taxonomy(CONF_DIR / AUDIENCE_TAXONOMY_FILE))


# ------------------------------------------------------------------------------------------- leak checker


def forbidden_tokens(identifiers: Iterable[str]) -> set[str]:
    """Every identifier, and its unkeyed SHA-256/SHA-1/MD5 (hex in both cases, base64); e-mails also normalised
    (trimmed, lower-cased: the convention of advertisers' hashed lists)."""
    tokens: set[str] = set()
    for value in identifiers:
        for form in {value, value.strip().lower() if "@" in value else value}:
            tokens |= {form, base64.b64encode(form.encode()).decode()}
            for algo in ("sha256", "sha1", "md5"):
                digest = hashlib.new(algo, form.encode()).digest()
                tokens |= {digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode(),
                           base64.urlsafe_b64encode(digest).decode().rstrip("=")}
    return tokens


def flat_values(value: Any) -> list[str]:
    """Every scalar inside rows, structs and arrays, as text."""
    if value is None:
        return []
    if isinstance(value, Row):
        value = value.asDict(recursive=False)
    if isinstance(value, dict):
        return [v for item in value.values() for v in flat_values(item)]
    if isinstance(value, (list, tuple)):
        return [v for item in value for v in flat_values(item)]
    return [value.isoformat() if isinstance(value, date) else str(value)]


def leaks(values: Iterable[str], tokens: set[str]) -> list[tuple[str, str]]:
    """(value, token) pairs where a value is a token, or contains one of 8+ characters."""
    long_tokens = [t for t in tokens if len(t) >= 8]
    found = [(v, v) for v in values if v in tokens]
    found += [(v, t) for v in values for t in long_tokens if t in v]
    return sorted(set(found))


def identifiers_of(people: list[dict], devices: dict[str, tuple[list[str], list[str]]]) -> list[str]:
    ids = [p[c] for p in people for c in ("customer_id", "first_name", "last_name", "email", "phone", "address_id")
           if p.get(c)]
    return ids + [d for cookies, ads in devices.values() for d in (*cookies, *ads)]


def test_leak_checker_catches_every_variant():
    tokens = forbidden_tokens(["Anna.Peeters@Example.be "])
    digest = hashlib.md5(b"anna.peeters@example.be").hexdigest()
    assert leaks(["x", digest.upper()], tokens) == [(digest.upper(), digest.upper())]
    assert leaks([f"prefix-{digest}"], tokens) == [(f"prefix-{digest}", digest)]
    assert leaks(["anna.peeters@example.be"], tokens)
    assert leaks([base64.b64encode(hashlib.sha1(b"Anna.Peeters@Example.be ").digest()).decode()], tokens)
    assert not leaks(["nl", "BE-VLG", "25-29", "strong"], tokens)


# ------------------------------------------------------------------------------------------- attributes


def people_rows(df: DataFrame) -> dict[str, tuple]:
    return {r.customer_id: (r.age_band, r.gender, r.language, r.region,
                            [(i.iab_audience_id, i.level) for i in r.interests], list(r.segments))
            for r in df.collect()}


def test_profiles_are_gated_coarse_and_merged(spark, bands):
    outputs = profile_outputs(spark)
    elig = elig_df(spark)
    people = adsdata_profiles(
        adsdata_demographics(customers_df(spark, PEOPLE), elig, geography(spark), bands),
        adsdata_interests([outputs["tv_profiles"], outputs["web_profiles"]], elig, max_interests=20),
        adsdata_segments(outputs["segment_membership"], elig),
    )
    assert people_rows(people) == {
        # Football: max(1.9 TV, 2.5 web) = 2.5 -> strong; Sports 4.5 -> very_strong; Cooking 1.3 -> moderate.
        "C001": ("35-39", "F", "nl", "BE-VLG", [(371, "moderate"), (607, "very_strong"), (663, "strong")],
                 ["cooks", "football_fans"]),
        "C002": ("45-49", "M", "fr", "BE-WAL", [(371, "strong")], ["cooks"]),
        "C003": ("25-29", "X", "en", "BE-BRU", [], []),  # no profile at all: demographics only
    }  # C004 (minor) and C005 (no ads_and_data consent) are absent although C005 has a profile and a segment


def test_interest_cap_keeps_highest_scores_and_no_profile_works(spark):
    outputs = profile_outputs(spark)
    elig = elig_df(spark)
    capped = adsdata_interests([outputs["tv_profiles"], outputs["web_profiles"]], elig, max_interests=2)
    assert {r.customer_id: [(i.iab_audience_id, i.level) for i in r.interests] for r in capped.collect()} == {
        "C001": [(607, "very_strong"), (663, "strong")],  # Cooking (1.3) is the lowest: dropped
        "C002": [(371, "strong")],
    }
    assert adsdata_interests([], elig, 20).count() == 0
    assert adsdata_segments(None, elig).columns == ["customer_id", "segments"]


def test_delivery_schemas_hold_no_direct_identifier():
    delivered = {*ADSDATA_EXPORT.fieldNames(), *ADSDATA_REVOCATIONS.fieldNames()}
    assert not delivered & (DIRECT_IDENTIFIER_COLUMNS | {"postal_code", "province", "age"})
    assert "customer_id" in LEDGER.fieldNames()  # internal only: erasure and access find deliveries through it


# ------------------------------------------------------------------------------------------- reconciliation


K1, K2 = "adsdata-k1", "adsdata-k2"
D = date.fromisoformat
EXPIRES = D("2027-04-30")  # 2026-03-31 + 13 months (Spark add_months clamps to April's last day)


def ledger_row(pseudo: str, customer: str | None, key: str = K2, first: str = "2026-01-01", last: str = "2026-03-30",
               expires: str = "2027-04-30", h: str = "h", revoked: str | None = None, reason: str | None = None,
               detail: str | None = None) -> tuple:
    return ("adsdata", key, pseudo, customer, D(first), D(last), D(expires), h, D(revoked) if revoked else None,
            reason, detail, D("2026-03-30"))


def test_reconcile_classifies_every_case(spark):
    previous = spark.createDataFrame([
        ledger_row("p-same", "C001", h="h1"),
        ledger_row("p-chg", "C002", h="h-old"),
        ledger_row("p-wd", "C006"),
        ledger_row("p-minor", "C004"),
        ledger_row("p-erq", "C007"),
        ledger_row("p-gone", "C008"),
        ledger_row("p-scrub", None),
        ledger_row("p-rot", "C001", key=K1),
        ledger_row("p-stale", "C014", expires="2026-03-01"),
        ledger_row("p-oldrev", "C009", revoked="2025-01-01", reason="withdrawn", detail="consent_withdrawn"),
        ledger_row("p-rrev", "C010", revoked="2026-03-01", reason="withdrawn", detail="consent_withdrawn"),
        ledger_row("p-erev", None, revoked="2026-03-30", reason="erased", detail="subject_erased"),
        ledger_row("p-back", "C003", first="2025-12-01", revoked="2026-02-01", reason="withdrawn",
                   detail="consent_withdrawn"),
        ledger_row("p-exp", "C011", expires="2026-03-31", h="h5"),
    ], LEDGER)
    attrs = ("25-29", "F", "nl", "BE-VLG", [], [])
    current = spark.createDataFrame([
        ("C001", "p-same", K2, "h1", *attrs), ("C002", "p-chg", K2, "h2", *attrs),
        ("C003", "p-back", K2, "h3", *attrs), ("C011", "p-exp", K2, "h5", *attrs),
        ("C012", "p-new", K2, "h4", *attrs),
    ], "customer_id string, pseudo_id string, key_id string, profile_hash string, age_band string, gender string, "
       "language string, region string, interests array<struct<iab_audience_id:int,level:string>>, "
       "segments array<string>")
    ages = {c: 30 for c in ("C001", "C002", "C003", "C006", "C007", "C010", "C011", "C012", "C014")} | {"C004": 15}
    consent = {c: c not in ("C006", "C010") for c in ages}
    elig = elig_df(spark, consent=consent, erased=["C007"], ages=ages)

    out = reconcile(previous, current, elig, AS_OF, 13, K2, "adsdata")
    got = {r.pseudo_id: (r.key_id, r.customer_id, r.first_delivered, r.last_delivered, r.expires_at, r.profile_hash,
                         r.revoked_at, r.reason, r.detail, r.change) for r in out.collect()}
    a, last, rev = D("2026-01-01"), D("2026-03-30"), AS_OF
    assert got == {
        "p-same": (K2, "C001", a, AS_OF, EXPIRES, "h1", None, None, None, "unchanged"),
        "p-chg": (K2, "C002", a, AS_OF, EXPIRES, "h2", None, None, None, "changed"),
        "p-new": (K2, "C012", AS_OF, AS_OF, EXPIRES, "h4", None, None, None, "new"),
        # revoked before, delivered again: new for the recipient, first delivery kept for the record
        "p-back": (K2, "C003", D("2025-12-01"), AS_OF, EXPIRES, "h3", None, None, None, "new"),
        # the recipient had to delete it at expiry: same profile, but new to them
        "p-exp": (K2, "C011", a, AS_OF, EXPIRES, "h5", None, None, None, "new"),
        "p-wd": (K2, "C006", a, last, EXPIRES, "h", rev, "withdrawn", "consent_withdrawn", "revoked"),
        "p-minor": (K2, "C004", a, last, EXPIRES, "h", rev, "withdrawn", "no_longer_eligible", "revoked"),
        "p-erq": (K2, "C007", a, last, EXPIRES, "h", rev, "erased", "erasure_request", "revoked"),
        "p-gone": (K2, "C008", a, last, EXPIRES, "h", rev, "erased", "customer_removed", "revoked"),
        "p-scrub": (K2, None, a, last, EXPIRES, "h", rev, "erased", "subject_erased", "revoked"),
        "p-rot": (K1, "C001", a, last, EXPIRES, "h", rev, "expired", "key_rotated", "revoked"),
        "p-stale": (K2, "C014", a, last, D("2026-03-01"), "h", rev, "expired", "retention_limit", "revoked"),
        # revoked within 13 months: kept for the record, not revoked again
        "p-rrev": (K2, "C010", a, last, EXPIRES, "h", D("2026-03-01"), "withdrawn", "consent_withdrawn", None),
        # p-oldrev (revoked over 13 months ago) and p-erev (erased, already revoked) are dropped
    }
    revoked = {r.pseudo_id: (r.reason, r.key_id) for r in revocation_rows(out).collect()}
    assert revoked == {"p-wd": ("withdrawn", K2), "p-minor": ("withdrawn", K2), "p-erq": ("erased", K2),
                       "p-gone": ("erased", K2), "p-scrub": ("erased", K2), "p-rot": ("expired", K1),
                       "p-stale": ("expired", K2)}
    assert export_rows(out).columns == ADSDATA_EXPORT.fieldNames()


@pytest.mark.parametrize("day, months, expected", [
    ("2026-03-31", 13, "2027-04-30"), ("2026-01-31", 1, "2026-02-28"), ("2028-02-29", 12, "2029-02-28"),
    ("2026-11-15", 2, "2027-01-15"), ("2026-03-31", -13, "2025-02-28"),
])
def test_add_months_clamps_like_spark(day, months, expected):
    assert _add_months(D(day), months) == D(expected)


def test_prune_deliveries_keeps_recent_ones(tmp_path):
    for d in ("2025-02-27", "2025-02-28", "2026-03-31"):
        (tmp_path / f"as_of={d}").mkdir()
    (tmp_path / ".as_of=2020-01-01.tmp-x").mkdir()
    removed = prune_deliveries(tmp_path, D("2025-02-28"))
    assert [p.name for p in removed] == ["as_of=2025-02-27"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".as_of=2020-01-01.tmp-x", "as_of=2025-02-28",
                                                           "as_of=2026-03-31"]


# ------------------------------------------------------------------------------------------- property


name = st.text(alphabet="abcdefghijklmnopqrstuvwxyzéèçö", min_size=2, max_size=10).map(str.capitalize)
identity = st.fixed_dictionaries({
    "first": name, "last": name,
    "local": st.from_regex(r"[a-z][a-z0-9._]{0,15}", fullmatch=True),
    "phone": st.from_regex(r"\+32[0-9]{8,9}", fullmatch=True),
    "address": st.from_regex(r"A[0-9]{4,9}", fullmatch=True),
    "cookie": st.uuids().map(str), "maid": st.uuids().map(lambda u: str(u).upper()),
    "withdrawn": st.booleans(),
})


@hsettings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(identity, min_size=1, max_size=12))
def test_no_exported_value_is_an_identifier_or_its_unkeyed_hash(spark, keyring, bands, people):
    """Every value of the export and the revocations, against every identifier and its unkeyed hashes."""
    rows, devices, consent, ages = [], {}, {}, {}
    for n, p in enumerate(people):
        cid = f"C{n:06d}"
        rows.append(person(cid, p["first"], p["last"], "F", "nl", "9000", phone=p["phone"],
                           address_id=p["address"], email=f"{p['local']}@mail-{n}.be"))
        devices[cid] = ([p["cookie"]], [p["maid"]])
        consent[cid], ages[cid] = not p["withdrawn"], 30
    elig = elig_df(spark, consent=consent, ages=ages)
    web = spark.createDataFrame([(cid, "9000", interests((663, 2.5)), *devices[cid]) for cid in devices], WEB_SCHEMA)
    membership = spark.createDataFrame([("football_fans", "web", cid) for cid in devices],
                                       "segment string, channel string, customer_id string")
    key = keyring.active("adsdata")
    people_df = adsdata_profiles(adsdata_demographics(customers_df(spark, rows), elig, geography(spark), bands),
                                 adsdata_interests([web], elig, 20), adsdata_segments(membership, elig))
    # Everybody was delivered yesterday; the ones who withdrew are revoked today.
    previous = spark.createDataFrame(
        [ledger_row(pseudonym(key.secret, cid), cid, key=key.key_id) for cid in devices], LEDGER)
    out = reconcile(previous, pseudonymise(people_df, hmac_pads(key)), elig, AS_OF, 13, key.key_id, "adsdata")
    out = out.localCheckpoint()  # one execution; both selections below read it
    exported = export_rows(out).collect() + revocation_rows(out).collect()

    assert len(exported) == len(people)  # each person is either delivered or revoked
    values = [v for r in exported for v in flat_values(r)]
    assert leaks(values, forbidden_tokens(identifiers_of(rows, devices))) == []


# ------------------------------------------------------------------------------------------- the stage


def make_ctx(spark, settings, tmp_path: Path, keys, as_of: date, outputs: dict[str, DataFrame]):
    from pipelines.jobs.daily import RunContext

    ctx = RunContext(spark=spark, settings=settings, wh=io.Warehouse(tmp_path / "wh"), landing=tmp_path / "landing",
                     as_of=as_of, run_id=f"run-{as_of}", started=datetime(2026, 4, 2, 3, tzinfo=timezone.utc),
                     keys=keys, progress=Progress(quiet=True))
    ctx.outputs.update(outputs)
    return ctx


def run(spark, settings, tmp_path, keys, as_of, elig) -> tuple[Any, dict[str, tuple], dict[str, tuple]]:
    ctx = make_ctx(spark, settings, tmp_path, keys, as_of, profile_outputs(spark))
    stage_adsdata(ctx, elig)
    for action in ctx.after_publish:  # what publication does once the run's checks pass
        action()
    export = {r.pseudo_id: (r.key_id, r.change, r.expires_at, r.age_band, r.region, r.as_of)
              for r in ctx.outputs["adsdata_export"].collect()}
    revoked = {r.pseudo_id: (r.key_id, r.reason, r.detail, r.as_of)
               for r in ctx.outputs["adsdata_revocations"].collect()}
    return ctx, export, revoked


def read_delivery(folder: Path) -> tuple[dict, list[dict], list[dict]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == entry["sha256"], name
    return (manifest, pq.read_table(folder / "profiles.parquet").to_pylist(),
            pq.read_table(folder / "revocations.parquet").to_pylist())


def test_delivery_lifecycle_revocations_rerun_rotation_and_forget(spark, settings, keyring, tmp_path):
    """Run 1 delivers three people; C001 withdraws and C002 asks for erasure before run 2, which revokes both;
    rerunning run 2 changes nothing; after a key rotation and an erasure handled by ``audience forget`` (C003),
    run 3 re-delivers the remaining people under the new key and revokes the old pseudonyms."""
    io.overwrite(customers_df(spark, PEOPLE), tmp_path / "wh" / "silver" / "customers")
    key = keyring.active("adsdata")
    p1, p2, p3 = (pseudonym(key.secret, c) for c in ("C001", "C002", "C003"))
    d1, d2, d3 = D("2026-03-31"), D("2026-04-01"), D("2026-04-02")

    _, export1, revoked1 = run(spark, settings, tmp_path, keyring, d1, elig_df(spark))
    assert export1 == {p1: (key.key_id, "new", D("2027-04-30"), "35-39", "BE-VLG", d1),
                       p2: (key.key_id, "new", D("2027-04-30"), "45-49", "BE-WAL", d1),
                       p3: (key.key_id, "new", D("2027-04-30"), "25-29", "BE-BRU", d1)}
    assert revoked1 == {}

    # --- run 2: a withdrawal and an erasure request since run 1 ---------------------------------------------
    elig2 = elig_df(spark, consent={"C001": False}, erased=["C002"])
    ctx, export2, revoked2 = run(spark, settings, tmp_path, keyring, d2, elig2)
    assert export2 == {p3: (key.key_id, "unchanged", D("2027-05-01"), "25-29", "BE-BRU", d2)}
    assert revoked2 == {p1: (key.key_id, "withdrawn", "consent_withdrawn", d2),
                        p2: (key.key_id, "erased", "erasure_request", d2)}
    assert ctx.metrics["adsdata.adsdata.revoked_withdrawn"] == 1.0
    assert ctx.metrics["adsdata.adsdata.revoked_erased"] == 1.0
    assert ctx.params["adsdata.adsdata.key_id"] == key.key_id

    folder = tmp_path / "wh" / "exports" / "adsdata" / "as_of=2026-04-01"
    manifest, profiles, revocations = read_delivery(folder)
    assert {r["pseudo_id"]: r["expires_at"] for r in profiles} == {p3: D("2027-05-01")}
    assert {r["pseudo_id"]: r["reason"] for r in revocations} == {p1: "withdrawn", p2: "erased"}
    assert manifest["files"]["profiles.parquet"]["rows"] == 1
    assert manifest["files"]["revocations.parquet"]["rows"] == 2
    assert manifest["key_ids"] == [key.key_id]
    assert manifest["expiry"] == {"months": 13, "expires_at": "2027-05-01"}
    assert manifest["changes"] == {"new": 0, "changed": 0, "unchanged": 1}
    assert manifest["revocations"] == {"withdrawn": 1, "erased": 1, "expired": 0}
    # Nothing in the files or the manifest is an identifier, or an unkeyed hash of one.
    tokens = forbidden_tokens(identifiers_of(PEOPLE, DEVICES))
    values = [v for r in profiles + revocations for v in flat_values(r)] + [(folder / "manifest.json").read_text()]
    assert leaks(values, tokens) == []
    first_bytes = (folder / "profiles.parquet").read_bytes()

    # --- rerun of run 2: same delivery, folder replaced in one piece ----------------------------------------
    _, export2b, revoked2b = run(spark, settings, tmp_path, keyring, d2, elig2)
    assert (export2b, revoked2b) == (export2, revoked2)
    assert (folder / "profiles.parquet").read_bytes() == first_bytes
    assert sorted(p.name for p in folder.parent.iterdir()) == ["as_of=2026-03-31", "as_of=2026-04-01"]
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.json", "profiles.parquet", "revocations.parquet"]
    # The ledger (internal) knows whose pseudonyms were revoked and why.
    wh = io.Warehouse(tmp_path / "wh")
    ledger = io.read(spark, ledger_path(wh)).where("as_of = DATE'2026-04-01'")
    assert {(r.customer_id, r.reason) for r in ledger.collect()} == {("C001", "withdrawn"), ("C002", "erased"),
                                                                     ("C003", None)}

    # --- run 3: C001 grants again, C003 was erased by `audience forget`, the key was rotated ----------------
    rotate(tmp_path / "keys.json", "adsdata")  # the conftest keyring's file
    ring = load_keys(tmp_path / "keys.json")
    new = ring.active("adsdata")
    forget_in_ledger(spark, wh, "C003")
    elig3 = elig_df(spark, erased=["C002"], ages={"C001": 35, "C002": 46})  # C003 is gone from the customers
    _, export3, revoked3 = run(spark, settings, tmp_path, ring, d3, elig3)
    assert export3 == {pseudonym(new.secret, "C001"): (new.key_id, "new", D("2027-05-02"), "35-39", "BE-VLG", d3)}
    # C001's and C002's old pseudonyms were revoked in run 2 already; only C003's (still open) is revoked now.
    assert revoked3 == {p3: (key.key_id, "erased", "subject_erased", d3)}
    assert new.key_id != key.key_id and pseudonym(new.secret, "C001") != p1


def test_key_rotation_revokes_every_old_pseudonym_as_expired(spark, keyring):
    """Rotation, end to end through the pure steps: old pseudonyms revoked (expired / key_rotated), new ones new."""
    elig = elig_df(spark)
    old = keyring.active("adsdata")
    people = spark.createDataFrame([(c, "25-29", "F", "nl", "BE-VLG", [], [], "h") for c in ("C001", "C002")],
                                   "customer_id string, age_band string, gender string, language string, "
                                   "region string, interests array<struct<iab_audience_id:int,level:string>>, "
                                   "segments array<string>, profile_hash string")
    previous = spark.createDataFrame([ledger_row(pseudonym(old.secret, c), c, key=old.key_id, h="h")
                                      for c in ("C001", "C002")], LEDGER)
    new_secret = bytes(range(32))
    new = Key("adsdata-new", new_secret)
    out = reconcile(previous, pseudonymise(people, hmac_pads(new)), elig, AS_OF, 13, new.key_id, "adsdata")
    got = {(r.pseudo_id, r.key_id, r.change, r.reason, r.detail) for r in out.collect()}
    assert got == {
        (pseudonym(new_secret, "C001"), "adsdata-new", "new", None, None),
        (pseudonym(new_secret, "C002"), "adsdata-new", "new", None, None),
        (pseudonym(old.secret, "C001"), old.key_id, "revoked", "expired", "key_rotated"),
        (pseudonym(old.secret, "C002"), old.key_id, "revoked", "expired", "key_rotated"),
    }
