"""Advertiser list refinement (L1, L2): request and list validation, match keys, refinement, reports, CLI.

Pure functions are tested without Spark; the end-to-end tests run ``refine`` on tiny hand-written warehouses
(several requests per test: the machine is shared) and compare whole rows.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Mapping, Sequence

import pytest

from pipelines import io
from pipelines.config import RefinementSettings
from pipelines.progress import Progress
from pipelines.refinement.refine import (
    EMPTY_SHA256,
    REASONS,
    History,
    InvalidRequest,
    Prior,
    RefineRequest,
    UploadStats,
    admission_problems,
    guarded_figures,
    load_request,
    parse_request,
    published_count,
    refine,
    should_activate,
    validation_problems,
)

AS_OF = date(2026, 11, 25)
NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)
RULES = RefinementSettings()


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def email_hash(cid: str) -> str:
    """What an advertiser uploads for the customer ``cid`` (stored as `` CID@Example.COM `` below)."""
    return sha(f"{cid}@example.com")


# --------------------------------------------------------------------------------------------- requests

def test_parse_request_resolves_the_list_next_to_the_request_and_deduplicates_segments(tmp_path):
    got = parse_request({"request_id": "r-1", "advertiser_id": "acme.be", "list_path": "lists/a.csv", "channel": "web",
                         "include_segments": ["a", "b", "a"], "exclude_segments": ["c"]}, tmp_path)
    assert got == RefineRequest("r-1", "acme.be", tmp_path / "lists/a.csv", "web", ("a", "b"), ("c",))
    absolute = parse_request({"request_id": "r", "advertiser_id": "a", "list_path": "/data/l.csv", "channel": "tv"},
                             tmp_path)
    assert absolute.list_path == Path("/data/l.csv") and absolute.include_segments == ()


@pytest.mark.parametrize("doc, message", [
    ([], "request must be a JSON object"),
    ({"advertiser_id": "a", "list_path": "l", "channel": "tv"}, "request_id is missing or not an identifier"),
    ({"request_id": "r'; DROP", "advertiser_id": "a", "list_path": "l", "channel": "tv"}, "request_id is missing"),
    ({"request_id": "r", "advertiser_id": "", "list_path": "l", "channel": "tv"}, "advertiser_id is missing"),
    ({"request_id": "r", "advertiser_id": "a", "channel": "tv"}, "list_path is missing"),
    ({"request_id": "r", "advertiser_id": "a", "list_path": "l"}, "channel is missing"),
    ({"request_id": "r", "advertiser_id": "a", "list_path": "l", "channel": "tv", "include_segments": "x"},
     "include_segments must be a list of segment names"),
    ({"request_id": "r", "advertiser_id": "a", "list_path": "l", "channel": "tv", "exclude_segments": [1]},
     "exclude_segments must be a list of segment names"),
])
def test_parse_request_refuses_what_is_not_a_request(doc, message, tmp_path):
    with pytest.raises(InvalidRequest, match=message.replace("'", ".")):
        parse_request(doc, tmp_path)


def test_load_request_reports_unreadable_and_malformed_files_in_one_line(tmp_path):
    with pytest.raises(InvalidRequest, match="cannot read request file"):
        load_request(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"request_id": "r",\n  oops}')
    with pytest.raises(InvalidRequest, match=r"is not valid JSON \(line 2\)"):
        load_request(bad)


# ----------------------------------------------------------------------------------------- pure guard

def test_published_count_rounds_down_and_hides_small_audiences():
    assert [published_count(n, RULES) for n in (0, 1, 49, 50, 57, 59, 60, 1234)] == \
        [None, None, None, 50, 50, 50, 60, 1230]


def prior(eid: str, seq: int, request_id: str, matched, refined, diffs, origins=None) -> Prior:
    return Prior(eid, seq, request_id, {"matched": matched, "refined": refined},
                 origins or {"matched": request_id, "refined": request_id},
                 {"matched": diffs[0], "refined": diffs[1]})


def test_guard_repeats_the_earliest_close_figures_whether_or_not_the_sets_differ():
    priors = [prior("e2", 2, "r2", 80, 70, (10, 10)), prior("e1", 1, "r1", 60, 60, (0, 0))]
    got = guarded_figures("r3", {"matched": 61, "refined": 61}, priors, RULES)
    assert (got.figures, got.origins, got.status, got.reason) == (
        {"matched": 60, "refined": 60}, {"matched": "r1", "refined": "r1"}, "coarsened", REASONS["coarsened"])
    assert got.min_differences == {"matched": 0, "refined": 0}


def test_guard_answers_from_the_current_sets_when_every_earlier_one_is_far():
    got = guarded_figures("r2", {"matched": 1234, "refined": 577}, [prior("e1", 1, "r1", 60, 60, (50, 600))], RULES)
    assert (got.figures, got.status, got.reason) == ({"matched": 1230, "refined": 570}, "accepted", None)


def test_guard_figures_are_independent_per_kind_and_a_null_match_nulls_the_refinement():
    # Same list, other segment: matched set identical (repeated), refined set far (own figure).
    got = guarded_figures("r2", {"matched": 300, "refined": 120}, [prior("e1", 1, "r1", 300, 250, (0, 130))], RULES)
    assert got.figures == {"matched": 300, "refined": 120} and got.status == "coarsened"
    small = guarded_figures("r2", {"matched": 90, "refined": 90}, [prior("e1", 1, "r1", None, None, (40, 40))], RULES)
    assert (small.figures, small.status, small.reason) == (
        {"matched": None, "refined": None}, "refused", REASONS["small_audience"])


def test_a_rerun_gets_its_own_earlier_answer_back_with_the_same_status():
    got = guarded_figures("r1", {"matched": 95, "refined": 95}, [prior("e1", 1, "r1", 90, 90, (5, 5))], RULES)
    assert (got.figures, got.status, got.reason) == ({"matched": 90, "refined": 90}, "accepted", None)


def test_activation_needs_an_answer_and_a_large_enough_exact_audience():
    accepted = guarded_figures("r", {"matched": 60, "refined": 55}, [], RULES)
    assert should_activate(accepted, 55, RULES) is True
    repeated = guarded_figures("r2", {"matched": 60, "refined": 45}, [prior("e1", 1, "r1", 60, 60, (15, 15))], RULES)
    assert repeated.status == "coarsened" and should_activate(repeated, 45, RULES) is False
    refused = guarded_figures("r", {"matched": 40, "refined": 40}, [], RULES)
    assert should_activate(refused, 40, RULES) is False


OFFERED = {"tv": {"fans": True, "news": False}, "web": {"fans": True}}


def upload(valid: int, readable: bool = True, columns=("email_sha256",)) -> UploadStats:
    return UploadStats(readable, columns, valid, 0, valid)


@pytest.mark.parametrize("channel, include, exclude, stats, expected", [
    ("tv", ("fans",), (), upload(100), []),
    ("radio", ("fans",), (), upload(100), [REASONS["channel"]]),
    ("tv", ("fans", "cyclists"), ("golf",), upload(100), ["unknown segment(s) for this channel: cyclists, golf"]),
    ("web", ("news",), (), upload(100), ["unknown segment(s) for this channel: news"]),
    ("tv", ("news",), (), upload(100), ["segment(s) not offered for list refinement: news"]),
    ("tv", ("fans",), ("fans",), upload(100), ["segment(s) both included and excluded: fans"]),
    ("tv", (), (), upload(99), ["list below the minimum of 100 distinct well-formed rows"]),
    ("tv", (), (), upload(0, readable=False, columns=()), [REASONS["unreadable"]]),
    ("tv", (), (), upload(0, columns=()), [REASONS["no_key_column"]]),
])
def test_validation_problems(channel, include, exclude, stats, expected):
    req = RefineRequest("r", "a", Path("l.csv"), channel, include, exclude)
    assert validation_problems(req, stats, OFFERED, RULES) == expected


def test_budget_counts_evaluations_whatever_their_outcome():
    req = RefineRequest("r", "a", Path("l.csv"), "tv", (), ())
    rules = replace(RULES, budget_requests_per_period=2)
    two = History(({"evaluated": True}, {"evaluated": True}), 3, False)
    assert admission_problems(req, upload(100), OFFERED, two, rules) == [REASONS["budget"]]
    assert admission_problems(req, upload(100), OFFERED, replace(two, evaluations=two.evaluations[:1]), rules) == []
    # A request that is invalid anyway is refused for that, without a word about the budget.
    assert admission_problems(req, upload(5), OFFERED, two, rules) == [REASONS["too_small"].format(100)]


# ---------------------------------------------------------------------------------- upload and match keys

def test_uploaded_list_is_normalised_and_malformed_rows_are_counted_not_used(spark, tmp_path):
    from pipelines.refinement.refine import read_upload

    a, b = sha("a@example.com"), sha("+32470000001")
    path = tmp_path / "list.csv"
    path.write_text("\ufeffEmail_SHA256,phone_sha256,name\n"
                    f"{a},{b},Ann\n"
                    f" {a.upper()} ,,dup of row 1 by e-mail only\n"
                    f"{a},{b},exact duplicate\n"
                    "alice@example.com,,plain e-mail\n"
                    f"{a[:-1]},,truncated\n"
                    f"{EMPTY_SHA256},,hash of nothing\n"
                    f",{b}x,bad phone\n"
                    ",,empty\n"
                    f",{sha('+32470000002')},phone only\n")
    read = read_upload(spark, path)
    try:
        assert read.stats == replace(read.stats, readable=True, key_columns=("email_sha256", "phone_sha256"),
                                     total_rows=9, malformed_rows=5, valid_rows=3)
        keys = sorted((r.key_type, r.key_sha256) for r in read.keys.collect())
        assert keys == sorted([("email", a), ("phone", b), ("phone", sha("+32470000002"))])
    finally:
        read.release()
    assert read_upload(spark, tmp_path / "nope.csv").stats.readable is False
    (tmp_path / "raw.csv").write_text("email\nalice@example.com\n")
    assert read_upload(spark, tmp_path / "raw.csv").stats.key_columns == ()


def test_match_keys_hash_normalised_values_of_eligible_customers_only(spark, tmp_path):
    from pipelines.refinement.match_keys import stage_match_keys

    customers = spark.createDataFrame([
        ("c1", "  Alice.Doe@Example.COM ", "+32470000001"),
        ("c2", "bob@example.com", None),
        ("c3", "minor@example.com", "+32470000003"),
        ("c4", "", "+32470000004"),
        ("c5", "nothing@example.com", "+32470000005"),
    ], "customer_id string, email string, phone string")
    elig = spark.createDataFrame([
        ("c1", True, False, True, False), ("c2", True, False, False, True), ("c3", False, False, True, True),
        ("c4", True, False, True, True), ("c5", True, False, False, False),
    ], "customer_id string, adult boolean, erased boolean, eligible_list_refinement_tv boolean, "
       "eligible_list_refinement_web boolean")
    ctx = SimpleNamespace(spark=spark, wh=io.Warehouse(tmp_path / "wh"), as_of=AS_OF, metrics={},
                          progress=Progress(quiet=True), silver=lambda source: customers)
    stage_match_keys(ctx, elig)
    got = sorted(tuple(r) for r in io.read(spark, ctx.wh.table("silver", "match_keys")).collect())
    assert got == sorted([
        ("c1", "email", sha("alice.doe@example.com"), AS_OF),
        ("c1", "phone", sha("+32470000001"), AS_OF),
        ("c2", "email", sha("bob@example.com"), AS_OF),
        ("c4", "phone", sha("+32470000004"), AS_OF),
    ])
    assert ctx.metrics["refinement.match_keys"] == 4.0


# -------------------------------------------------------------------------------------- end to end

@dataclass(frozen=True)
class Person:
    cid: str
    tv: bool = True
    web: bool = False
    adult: bool = True
    segments: tuple[tuple[str, str], ...] = ()
    ids: tuple[tuple[str, str], ...] = ()


def build_warehouse(spark, root: Path, people: Sequence[Person], offered: Mapping[tuple[str, str], bool]) -> Path:
    """The tables ``refine`` reads, as the daily run publishes them; no match keys (computed on the fly)."""
    wh = io.Warehouse(root)
    io.overwrite(spark.createDataFrame([(p.cid, f" {p.cid.upper()}@Example.COM ", None) for p in people],
                                       "customer_id string, email string, phone string"),
                 wh.table("silver", "customers"))
    io.overwrite(spark.createDataFrame(
        [(p.cid, p.adult, False, p.tv and p.adult, p.web and p.adult, AS_OF) for p in people],
        "customer_id string, adult boolean, erased boolean, eligible_list_refinement_tv boolean, "
        "eligible_list_refinement_web boolean, as_of date"), wh.table("silver", "eligibility"))
    io.overwrite(spark.createDataFrame([(s, ch, p.cid, AS_OF) for p in people for s, ch in p.segments],
                                       "segment string, channel string, customer_id string, as_of date"),
                 wh.table("gold", "segment_membership"))
    io.overwrite(spark.createDataFrame(
        [(s, ch, ["tv_personalised_ads"] + (["advertiser_list_refinement"] if ok else []), AS_OF)
         for (s, ch), ok in offered.items()], "segment string, channel string, purposes array<string>, as_of date"),
        wh.table("gold", "segment_stats"))
    links = [(p.cid, t, v, "pickx.be", datetime(2026, 10, 1)) for p in people for t, v in p.ids]
    io.overwrite(spark.createDataFrame(links, "customer_id string, id_type string, id_value string, site_domain string, "
                                              "authenticated_at timestamp"), wh.table("silver", "identity_links"))
    return root


def write_request(folder: Path, request_id: str, advertiser: str, rows: Sequence[str], channel: str = "tv",
                  include: Sequence[str] = (), exclude: Sequence[str] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{request_id}.csv").write_text("email_sha256\n" + "".join(r + "\n" for r in rows))
    path = folder / f"{request_id}.json"
    path.write_text(json.dumps({"request_id": request_id, "advertiser_id": advertiser, "list_path": f"{request_id}.csv",
                                "channel": channel, "include_segments": list(include),
                                "exclude_segments": list(exclude)}))
    return path


VISIBLE = ("request_id", "advertiser_id", "status", "reason", "channel", "include_segments", "exclude_segments",
           "uploaded_rows", "malformed_rows", "matched_audience", "refined_audience", "requested_at", "as_of")


def small_world() -> list[Person]:
    """c1..c6 eligible on TV with decoders; segments a, b on TV; c7 no consent; c8 a minor; w1 web only."""
    seg = {"c1": ("a",), "c2": ("a", "b"), "c3": ("b",), "c4": (), "c5": ("a",), "c6": ("a",), "c7": ("a",),
           "c8": ("a",), "w1": ()}
    people = [Person(c, segments=tuple((s, "tv") for s in seg[c]), ids=(("decoder_id", f"dec-{c}"),
                                                                       ("cookie_id", f"ck-{c}")))
              for c in ("c1", "c2", "c3", "c4", "c5", "c6")]
    people.append(Person("c7", tv=False, segments=(("a", "tv"),), ids=(("decoder_id", "dec-c7"),)))
    people.append(Person("c8", adult=False, segments=(("a", "tv"),), ids=(("decoder_id", "dec-c8"),)))
    people.append(Person("w1", tv=False, web=True, segments=(("a", "web"),),
                         ids=(("cookie_id", "ck-w1"), ("mobile_ad_id", "maid-w1"), ("decoder_id", "dec-w1"))))
    return people


def test_refine_end_to_end_reports_activates_audits_and_reruns_idempotently(spark, settings, tmp_path):
    rules = replace(settings.refinement, min_upload_rows=5, min_audience=2, rounding=1, difference_k=2,
                    budget_requests_per_period=2)
    lax = settings.replace(refinement=rules)
    root = build_warehouse(spark, tmp_path / "wh", small_world(),
                           {("a", "tv"): True, ("b", "tv"): True, ("news", "tv"): False, ("a", "web"): True})
    wh = io.Warehouse(root)
    lists = tmp_path / "requests"
    everyone = [email_hash(c) for c in ("c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "w1")] + [sha("x@y.z")]

    # include a (any of), exclude b: c1, c5, c6 (c2 is in b; c7 has no consent; c8 is a minor; w1 is web only).
    first = refine(spark, lax, root, write_request(lists, "r1", "acme", everyone + ["not-a-hash"], "tv", ["a"], ["b"]), NOW)
    expected = {"request_id": "r1", "advertiser_id": "acme", "status": "accepted", "reason": None, "channel": "tv",
                "include_segments": ["a"], "exclude_segments": ["b"], "uploaded_rows": 11, "malformed_rows": 1,
                "matched_audience": 6, "refined_audience": 3, "requested_at": NOW, "as_of": AS_OF}
    assert dict(first.report) == expected
    activation = sorted((r.request_id, r.advertiser_id, r.channel, r.id_type, r.ad_serving_id, r.customer_id,
                         r.as_of, r.expires_at) for r in io.read(spark, wh.table("gold", "activation_lists")).collect())
    expires = AS_OF + timedelta(days=rules.budget_period_days)
    assert activation == [("r1", "acme", "tv", "decoder_id", f"dec-{c}", c, AS_OF, expires) for c in ("c1", "c5", "c6")]

    # The same request again (an hour later): same answer, still one report row and one activation list.
    again = refine(spark, lax, root, lists / "r1.json", NOW + timedelta(hours=1))
    assert dict(again.report) == {**expected, "requested_at": NOW + timedelta(hours=1)}

    # Invalid requests are recorded as refusals and do not use the budget...
    refine(spark, lax, root, write_request(lists, "r2", "acme", everyone, "tv", ["a", "cycling"], ["news"]),
           NOW + timedelta(hours=2))
    refine(spark, lax, root, write_request(lists, "r3", "acme", everyone[:4], "tv"), NOW + timedelta(hours=3))
    # ... while the third evaluation in the period is refused by the budget (r1 was evaluated twice).
    refine(spark, lax, root, write_request(lists, "r4", "acme", everyone, "web"), NOW + timedelta(hours=4))
    # Another advertiser has its own budget and memory: web, no segment: w1 only -> below the minimum of 2.
    refine(spark, lax, root, write_request(lists, "r1", "other", everyone, "web"), NOW + timedelta(hours=5))

    reports = {(r.advertiser_id, r.request_id): (r.status, r.reason, r.matched_audience, r.refined_audience)
               for r in io.read(spark, wh.table("gold", "advertiser_reports")).collect()}
    assert reports == {
        ("acme", "r1"): ("accepted", None, 6, 3),
        ("acme", "r2"): ("refused", "unknown segment(s) for this channel: cycling; "
                                    "segment(s) not offered for list refinement: news", None, None),
        ("acme", "r3"): ("refused", "list below the minimum of 5 distinct well-formed rows", None, None),
        ("acme", "r4"): ("refused", REASONS["budget"], None, None),
        ("other", "r1"): ("refused", REASONS["small_audience"], None, None),
    }
    audit = sorted((r.advertiser_id, r.seq, r.request_id, r.evaluated, r.matched_exact, r.refined_exact, r.status,
                    r.activated, r.matched_origin, r.min_difference_refined)
                   for r in io.read(spark, wh.table("ops", "refinement_audit")).collect())
    assert audit == [
        ("acme", 1, "r1", True, 6, 3, "accepted", True, "r1", None),
        ("acme", 2, "r1", True, 6, 3, "accepted", True, "r1", 0),
        ("acme", 3, "r2", False, None, None, "refused", False, None, None),
        ("acme", 4, "r3", False, None, None, "refused", False, None, None),
        ("acme", 5, "r4", False, None, None, "refused", False, None, None),
        ("other", 1, "r1", True, 1, 1, "refused", False, "r1", None),
    ]
    # Only acme's r1 is activated, once (the rerun replaced its rows); sets are kept for both evaluations.
    assert io.read(spark, wh.table("gold", "activation_lists")).count() == 3
    sets = sorted((r.kind, r.customer_id) for r in io.read(spark, wh.table("ops", "refinement_sets"))
                  .where("advertiser_id = 'other'").collect())
    assert sets == [("matched", "w1"), ("refined", "w1")]


def test_a_large_honest_list_gets_a_useful_answer(spark, settings, tmp_path):
    """2,000 uploaded rows, 650 consenting customers matched, 600 of them in the include segment."""
    people = [Person(f"f{i:04d}", segments=(("football_fans", "tv"),), ids=(("decoder_id", f"dec-{i}"),))
              for i in range(600)]
    people += [Person(f"n{i:04d}") for i in range(50)]  # matched, not fans
    people += [Person(f"x{i:04d}", tv=False, segments=(("football_fans", "tv"),)) for i in range(100)]  # no consent
    root = build_warehouse(spark, tmp_path / "wh", people, {("football_fans", "tv"): True})
    rows = [email_hash(p.cid) for p in people] + [sha(f"prospect{i}@example.org") for i in range(1250)]
    outcome = refine(spark, settings, root, write_request(tmp_path / "req", "big", "brand", rows, "tv",
                                                          ["football_fans"]), NOW)
    assert {k: outcome.report[k] for k in ("status", "uploaded_rows", "malformed_rows", "matched_audience",
                                            "refined_audience")} == {
        "status": "accepted", "uploaded_rows": 2000, "malformed_rows": 0, "matched_audience": 650,
        "refined_audience": 600}
    assert io.read(spark, io.Warehouse(root).table("gold", "activation_lists")).count() == 600


# -------------------------------------------------------------------------------------------------- CLI

def test_cli_refuses_bad_requests_and_missing_keys_before_starting_spark(tmp_path, monkeypatch, capsys, settings):
    from pipelines.refinement.cli import cmd_refine

    monkeypatch.delenv("AUDIENCE_KEYS", raising=False)
    request = tmp_path / "r.json"
    request.write_text("{not json")
    assert cmd_refine(tmp_path / "wh", request, settings) == 2
    assert "AUDIENCE_KEYS is not set" in capsys.readouterr().err

    from pipelines.privacy.keys import new_key_file

    new_key_file(tmp_path / "keys.json", ("adsdata",))
    monkeypatch.setenv("AUDIENCE_KEYS", str(tmp_path / "keys.json"))
    assert cmd_refine(tmp_path / "wh", request, settings) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"audience refine: invalid request: request file {request} is not valid JSON (line 1)"
    request.write_text(json.dumps({"request_id": "r", "advertiser_id": "a", "channel": "tv"}))
    assert cmd_refine(tmp_path / "wh", request, settings) == 2
    assert capsys.readouterr().err.strip() == "audience refine: invalid request: list_path is missing"


def test_report_json_prints_only_the_visible_row():
    from pipelines.refinement.cli import report_json

    line = report_json({"request_id": "r", "status": "refused", "matched_audience": None,
                        "requested_at": NOW, "as_of": AS_OF})
    assert json.loads(line) == {"request_id": "r", "status": "refused", "matched_audience": None,
                                "requested_at": "2026-11-26T09:00:00+00:00", "as_of": "2026-11-25"}


# ------------------------------------------------------------------------------- daily refresh (C3)

def test_activation_lists_lose_withdrawn_people_unlinked_ids_and_expired_rows(spark):
    from pipelines.refinement.refine import ACTIVATION_LISTS, refreshed_activation_lists

    lists = spark.createDataFrame([
        ("r1", "acme", "tv", "decoder_id", "dec-1", "c1", AS_OF, AS_OF + timedelta(days=30)),
        ("r1", "acme", "tv", "decoder_id", "dec-2", "c2", AS_OF, AS_OF + timedelta(days=30)),  # c2 withdrew
        ("r1", "acme", "tv", "decoder_id", "dec-old", "c1", AS_OF, AS_OF + timedelta(days=30)),  # link gone
        ("r0", "acme", "tv", "decoder_id", "dec-1", "c1", AS_OF, AS_OF + timedelta(days=1)),  # expired
        ("r2", "acme", "web", "cookie_id", "ck-1", "c1", AS_OF, AS_OF + timedelta(days=30)),  # c1 not web-eligible
    ], ACTIVATION_LISTS)
    elig = spark.createDataFrame([("c1", True, False, True, False), ("c2", True, False, False, False)],
                                 "customer_id string, adult boolean, erased boolean, "
                                 "eligible_list_refinement_tv boolean, eligible_list_refinement_web boolean")
    links = spark.createDataFrame([("c1", "decoder_id", "dec-1"), ("c2", "decoder_id", "dec-2"),
                                   ("c1", "cookie_id", "ck-1")], "customer_id string, id_type string, id_value string")
    got = refreshed_activation_lists(lists, elig, links, AS_OF + timedelta(days=1)).collect()
    assert [(r.request_id, r.ad_serving_id) for r in got] == [("r1", "dec-1")]

    # C3, C5: a minor (c3) starts using the decoder on the list: the decoder leaves it for everyone.
    minor = elig.unionByName(spark.createDataFrame([("c3", False, False, True, True)], elig.schema))
    shared = links.unionByName(spark.createDataFrame([("c3", "decoder_id", "dec-1")], links.schema))
    assert refreshed_activation_lists(lists, minor, shared, AS_OF + timedelta(days=1)).collect() == []


def test_activation_rows_leave_out_a_device_shared_with_someone_not_eligible(spark):
    """C3, C5: the family cookie is linked to c1 (refined, eligible) and to c9 (a minor): it is not activated;
    c1's own cookie is. Links authenticated after the as-of date do not count."""
    from pipelines.refinement.refine import RefineRequest, activation_rows

    links = spark.createDataFrame([
        ("c1", "cookie_id", "ck-1", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("c1", "cookie_id", "ck-family", datetime(2026, 11, 1, tzinfo=timezone.utc)),
        ("c9", "cookie_id", "ck-family", datetime(2026, 11, 2, tzinfo=timezone.utc)),
        ("c1", "decoder_id", "dec-1", datetime(2026, 11, 1, tzinfo=timezone.utc)),  # not a web id
    ], "customer_id string, id_type string, id_value string, authenticated_at timestamp")
    refined = spark.createDataFrame([("c1",)], "customer_id string")
    request = RefineRequest("r", "acme", Path("l.csv"), "web")
    cutoff = datetime(2026, 11, 26, tzinfo=timezone.utc)
    rows = activation_rows(refined, links, request, AS_OF, AS_OF + timedelta(days=30), cutoff, refined)
    assert [(r.customer_id, r.ad_serving_id) for r in rows.collect()] == [("c1", "ck-1")]
    # The minor's link dated after the cutoff does not exist yet on the as-of date: the family cookie is c1's.
    early = activation_rows(refined, links, request, AS_OF, AS_OF + timedelta(days=30),
                            datetime(2026, 11, 1, 12, tzinfo=timezone.utc), refined)
    assert sorted(r.ad_serving_id for r in early.collect()) == ["ck-1", "ck-family"]


# ---------------------------------------------------------------------------------- campaign reports

def test_campaign_reports_are_thresholded_rounded_and_carry_no_ids(spark):
    from pipelines.refinement.campaign_reports import CAMPAIGN_REPORTS, campaign_reports

    rules = RefinementSettings()  # min_audience 50, rounding 10
    day = datetime(2026, 11, 24, 12, 0)  # 13:00 in Brussels on the 24th
    late = datetime(2026, 11, 24, 23, 30)  # 00:30 on the 25th in Brussels
    exposures = [(f"x{i}", f"c{i:03d}", "camp-1", "acme", "ch1", "decoder", day) for i in range(57)]
    exposures += [(f"y{i}", f"c{i:03d}", "camp-1", "acme", "ch1", "decoder", day) for i in range(20)]  # repeats
    exposures += [(f"m{i}", f"minor{i}", "camp-2", "acme", "ch1", "decoder", day) for i in range(3)]
    exposures += [(f"z{i}", f"c{i:03d}", "camp-2", "acme", "ch1", "decoder", day) for i in range(48)]  # 48 + minors
    exposures += [(f"l{i}", f"c{i:03d}", "camp-3", "acme", "ch1", "decoder", late) for i in range(50)]
    exposures += [(f"o{i}", f"c{i:03d}", "camp-4", "acme", "ch1", "decoder", datetime(2026, 10, 1)) for i in range(60)]
    exposures += [(f"e{i}", "erased1", "camp-2", "acme", "ch1", "decoder", day) for i in range(5)]
    elig = spark.createDataFrame(
        [(f"c{i:03d}", True, False) for i in range(60)] + [(f"minor{i}", False, False) for i in range(3)]
        + [("erased1", True, True), ("web-minor", False, False)],
        "customer_id string, adult boolean, erased boolean")
    exp_df = spark.createDataFrame(exposures, "exposure_id string, customer_id string, campaign_id string, "
                                              "advertiser_id string, channel_id string, platform string, ts timestamp")
    web = [(f"w{i}", f"ck{i}", None, day, "ad_impression", "camp-9", "shop") for i in range(52)]
    web += [(f"v{i}", None, f"maid{i}", day, "ad_impression", "camp-9", "shop") for i in range(10)]
    web += [(f"p{i}", f"ck{i}", None, day, "page_view", None, None) for i in range(80)]
    web += [(f"k{i}", "ck-kid", None, day, "ad_impression", "camp-9", "shop") for i in range(7)]  # a minor's device
    web_df = spark.createDataFrame(web, "event_id string, cookie_id string, mobile_ad_id string, ts timestamp, "
                                        "event_type string, campaign_id string, advertiser_id string")
    links = spark.createDataFrame([("web-minor", "cookie_id", "ck-kid")], "customer_id string, id_type string, id_value string")
    got = campaign_reports(exp_df, web_df, links, elig, rules, AS_OF, "Europe/Brussels")
    assert [(f.name, f.dataType) for f in got.schema] == [(f.name, f.dataType) for f in CAMPAIGN_REPORTS]
    rows = sorted(tuple(r) for r in got.collect())
    assert rows == [
        ("camp-1", "acme", date(2026, 11, 24), "tv", 50, 70, AS_OF),   # reach 57, impressions 77
        ("camp-3", "acme", date(2026, 11, 25), "tv", 50, 50, AS_OF),   # the Brussels day
        ("camp-9", "shop", date(2026, 11, 24), "web", 60, 60, AS_OF),  # 52 cookies + 10 mobile ids
    ]  # camp-2: 48 adults (minors and the erased person are not counted); camp-4: outside the window
