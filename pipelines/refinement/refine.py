"""Advertiser list refinement (L1, L2): ``audience refine --warehouse DIR --request FILE``.

An advertiser uploads a list of hashed e-mails and/or phones (contract section 4). The list is matched with
the customers who allow ``advertiser_list_refinement`` and are eligible for the request's channel, refined
with Proximus segments, and turned into an internal activation list for the ad server. The advertiser gets
back one row of ``gold/advertiser_reports`` and nothing else.

Data flow (one request, under the warehouse lock)::

    request JSON ──► validate (channel, segments, list readable, minimum size)   input only
    list CSV ──► well-formed hashes (malformed rows counted, never stored)
        │  join silver/match_keys, reduced to people eligible for the channel (adult, not erased, consent)
        ▼
    matched set M ──► refined set R = M ∩ (member of ANY include segment) − (member of ANY exclude segment)
        │  guard (below) against this advertiser's earlier evaluations
        ▼
    ops/refinement_sets (internal: M and R of each evaluation, kept for one budget period)
    ops/refinement_audit (internal: every request, exact numbers, decisions)
    gold/activation_lists (internal: ad-serving ids of R, accepted/coarsened requests only)
    gold/advertiser_reports (what the advertiser sees: thresholded figures, status, a generic reason)

Segments: ``include_segments`` keeps people who are members of *any* of them (empty: everybody matched);
``exclude_segments`` drops members of *any* of them. Only segments published for the request's channel by the
last daily run (``gold/segment_stats``) and declaring the purpose ``advertiser_list_refinement`` in their
definition may be used ("segmentation criteria proposed by Proximus").

What the advertiser sees (L2)
-----------------------------
* ``uploaded_rows``: data rows of the file, rounded down to ``refinement.rounding``; ``malformed_rows`` exactly
  (both describe the advertiser's own file only: no customer data is involved, and an exact count of bad rows
  is what they need to fix it).
* ``matched_audience`` and ``refined_audience``: the exact count rounded down to ``refinement.rounding``, and
  null when that is below ``refinement.min_audience``. No noise: rounding plus the guards below, so that a
  repeated request gives a repeatable answer (noise would be averaged away by repetition).
* ``status`` ``accepted`` | ``coarsened`` | ``refused`` and a ``reason`` from a fixed vocabulary
  (:data:`REASONS`). A reason never names an earlier request, a number of people or a difference: "would
  differ from request R1 by 1 person" would itself be the leak.

Guards, in order
----------------
1. **Validation** (input only): unknown channel, unknown or not-offered segments, a segment both included
   and excluded, an unreadable list or one without a hash column, fewer than ``min_upload_rows`` distinct
   well-formed rows → ``refused``. A list of one person is refused here, and padded with fake hashes it
   matches one person at most, which rounds to null.
2. **Budget**: at most ``budget_requests_per_period`` *evaluated* requests (those that reached the customer
   data, whatever their outcome) per advertiser in the last ``budget_period_days`` → ``refused``. Counting
   accepted requests only would make the budget itself depend on who matched.
3. **Differencing guard**, in the manner of Google Ads Data Hub's difference check. The exact sets M and R of
   every evaluation are kept (internally) for one budget period. For each figure (matched, refined), the new
   set B is compared with the same set A of each earlier evaluation of the advertiser in the period: when
   ``|A Δ B| < difference_k`` -- **including 0** -- the figure is not computed from B: the earlier
   evaluation's published figure is repeated (status ``coarsened`` when that figure came from another
   request). The earliest such evaluation wins, so the answer is stable.

   Why not "refuse when ``0 < |A Δ B| < k``"? Then L+target is refused when the target matched
   (``|A Δ B| = 1``) and accepted when not (``|A Δ B| = 0``): the status is the leak. Repeating the earlier
   figure whenever the sets are close, identical or not, makes the answer the same in both cases.

   The comparison is between result sets, not uploaded lists, because padding a list with fake hashes changes
   the upload as much as the attacker likes but the result not at all. Earlier evaluations of the *same*
   request id count too, so reusing a request id does not erase the guard's memory; a rerun of an unchanged
   request gets back its own earlier figures (and status), which makes reruns idempotent.
4. **Minimum audience**: a refined figure that is null (below ``min_audience``, own or repeated) →
   ``refused`` with no activation list; an activation list also needs the exact refined set to reach
   ``min_audience``.

Internal tables hold the exact numbers (``ops/refinement_audit``) and the sets (``ops/refinement_sets``,
pruned by the daily run after one budget period). Neither is ever given to an advertiser; both have ``customer_id`` columns
(sets, activation lists) so that ``audience forget`` and ``audience access`` find a person in them.

Limits (what these guards do not stop)
--------------------------------------
* Thresholds have edges: an attacker who knew that exactly ``k - 1`` *other* people of a list difference
  match could tell from "coarsened or not" whether one more did; knowing that needs exact counts the
  advertiser never sees. Likewise a single answer whose exact count sits at a rounding step moves with one
  person, but telling that requires the exact count of the others, which the guard never releases.
* The guard's memory is one budget period and one advertiser id: an advertiser waiting a period, or using
  several advertiser accounts, starts afresh (account vetting is an operational control).
* Campaign delivery (:mod:`pipelines.refinement.campaign_reports`) is thresholded and rounded separately.

Example::

    >>> outcome = refine(spark, settings, Path("warehouse"), Path("requests/r1.json"), now)
    >>> outcome.report["status"], outcome.report["refined_audience"]
    ('accepted', 600)
"""
from __future__ import annotations

import csv
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

from pipelines import io
from pipelines.config import RefinementSettings, Settings
from pipelines.consent.gate import end_of_day, exclusive_devices
from pipelines.refinement.match_keys import (
    KEY_COLUMNS,
    REFINEMENT_ELIGIBILITY,
    match_keys,
)

CHANNELS = ("tv", "web")
STATUSES = ("accepted", "coarsened", "refused")
KINDS = ("matched", "refined")
REFINEMENT_PURPOSE = "advertiser_list_refinement"

#: Ad-serving id types per channel: decoders for TV, cookies and mobile ad ids for the web.
AD_SERVING_ID_TYPES: dict[str, tuple[str, ...]] = {"tv": ("decoder_id",), "web": ("cookie_id", "mobile_ad_id")}

#: The only reasons an advertiser ever reads (plus the names of their own unknown segments).
REASONS = {
    "unreadable": "list file not found or not readable",
    "no_key_column": "list has no email_sha256 or phone_sha256 column",
    "channel": "unknown channel (expected tv or web)",
    "unknown_segments": "unknown segment(s) for this channel: {}",
    "not_offered": "segment(s) not offered for list refinement: {}",
    "include_exclude": "segment(s) both included and excluded: {}",
    "too_small": "list below the minimum of {} distinct well-formed rows",
    "budget": "request budget for the period exhausted",
    "small_audience": "audience below the minimum size",
    "coarsened": "close to an earlier request: its figures are repeated",
}

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
_HEX64 = "^[0-9a-f]{64}$"
#: SHA-256 of the empty string: a "hash" of a missing value, never a person.
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

ADVERTISER_REPORTS = StructType([
    StructField("request_id", StringType(), False),
    StructField("advertiser_id", StringType(), False),
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),
    StructField("channel", StringType(), True),
    StructField("include_segments", ArrayType(StringType()), True),
    StructField("exclude_segments", ArrayType(StringType()), True),
    StructField("uploaded_rows", LongType(), True),
    StructField("malformed_rows", LongType(), True),
    StructField("matched_audience", LongType(), True),
    StructField("refined_audience", LongType(), True),
    StructField("requested_at", TimestampType(), False),
    StructField("as_of", DateType(), False),
])

#: ``ops/refinement_audit``: every evaluation of every request (internal; exact numbers and decisions).
REFINEMENT_AUDIT = StructType([
    StructField("evaluation_id", StringType(), False),
    StructField("seq", LongType(), False),
    StructField("request_id", StringType(), False),
    StructField("advertiser_id", StringType(), False),
    StructField("channel", StringType(), True),
    StructField("include_segments", ArrayType(StringType()), True),
    StructField("exclude_segments", ArrayType(StringType()), True),
    StructField("list_path", StringType(), True),
    StructField("list_sha256", StringType(), True),
    StructField("total_rows", LongType(), True),
    StructField("malformed_rows", LongType(), True),
    StructField("valid_rows", LongType(), True),
    StructField("evaluated", BooleanType(), False),
    StructField("matched_exact", LongType(), True),
    StructField("refined_exact", LongType(), True),
    StructField("matched_audience", LongType(), True),
    StructField("refined_audience", LongType(), True),
    StructField("matched_origin", StringType(), True),
    StructField("refined_origin", StringType(), True),
    StructField("min_difference_matched", LongType(), True),
    StructField("min_difference_refined", LongType(), True),
    StructField("status", StringType(), False),
    StructField("reason", StringType(), True),
    StructField("activated", BooleanType(), False),
    StructField("requested_at", TimestampType(), False),
    StructField("as_of", DateType(), False),
])

#: ``ops/refinement_sets``: the exact matched and refined sets of each evaluation (internal, one period).
REFINEMENT_SETS = StructType([
    StructField("evaluation_id", StringType(), False),
    StructField("advertiser_id", StringType(), False),
    StructField("requested_at", TimestampType(), False),
    StructField("kind", StringType(), False),
    StructField("customer_id", StringType(), False),
])

#: ``gold/activation_lists``: internal, for the ad server only. ``customer_id`` is there for erasure, access
#: and the daily consent refresh; the ad server needs only ``ad_serving_id``.
ACTIVATION_LISTS = StructType([
    StructField("request_id", StringType(), False),
    StructField("advertiser_id", StringType(), False),
    StructField("channel", StringType(), False),
    StructField("id_type", StringType(), False),
    StructField("ad_serving_id", StringType(), False),
    StructField("customer_id", StringType(), False),
    StructField("as_of", DateType(), False),
    StructField("expires_at", DateType(), False),
])


class InvalidRequest(ValueError):
    """The request file cannot be read as a request (no report row can be written for it)."""


class RefineError(RuntimeError):
    """The warehouse cannot serve a refinement (for example: no daily run yet)."""


# --- request ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefineRequest:
    """A parsed request file (contract section 4); ``list_path`` resolved against the request's folder."""

    request_id: str
    advertiser_id: str
    list_path: Path
    channel: str
    include_segments: tuple[str, ...] = ()
    exclude_segments: tuple[str, ...] = ()


def _names(doc: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InvalidRequest(f"{key} must be a list of segment names")
    return tuple(dict.fromkeys(v.strip() for v in value))  # de-duplicated, order kept


def parse_request(doc: Any, base_dir: Path) -> RefineRequest:
    """Check the shape of a request document; raises :class:`InvalidRequest` with a one-line reason.

    >>> parse_request({"request_id": "r1", "advertiser_id": "a1", "list_path": "l.csv", "channel": "tv"}, Path("/x"))
    RefineRequest(request_id='r1', advertiser_id='a1', list_path=PosixPath('/x/l.csv'), channel='tv', include_segments=(), exclude_segments=())
    """
    if not isinstance(doc, dict):
        raise InvalidRequest("request must be a JSON object")
    for key in ("request_id", "advertiser_id"):
        value = doc.get(key)
        if not isinstance(value, str) or not _ID.match(value):
            raise InvalidRequest(f"{key} is missing or not an identifier (letters, digits, . _ : -; at most 128)")
    list_path = doc.get("list_path")
    if not isinstance(list_path, str) or not list_path.strip():
        raise InvalidRequest("list_path is missing")
    channel = doc.get("channel")
    if not isinstance(channel, str):
        raise InvalidRequest("channel is missing (tv or web)")
    path = Path(list_path.strip())
    return RefineRequest(
        request_id=doc["request_id"],
        advertiser_id=doc["advertiser_id"],
        list_path=path if path.is_absolute() else base_dir / path,
        channel=channel.strip(),
        include_segments=_names(doc, "include_segments"),
        exclude_segments=_names(doc, "exclude_segments"),
    )


def load_request(path: Path) -> RefineRequest:
    """Read and check a request file; raises :class:`InvalidRequest`."""
    text: str | None = None
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"cannot read request file {path}: {exc.__class__.__name__}") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidRequest(f"request file {path} is not valid JSON (line {exc.lineno})") from None
    return parse_request(doc, Path(path).resolve().parent)


# --- uploaded list ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class UploadStats:
    """What the file says about itself (no customer data): readable, has a key column, row counts."""

    readable: bool
    key_columns: tuple[str, ...] = ()
    total_rows: int = 0
    malformed_rows: int = 0
    valid_rows: int = 0
    sha256: str | None = None


def list_header(path: Path) -> list[str] | None:
    """Lower-cased header names of a CSV file, or None when it cannot be read."""
    try:
        with Path(path).open(encoding="utf-8-sig", newline="") as fh:
            return [h.strip().lower() for h in next(csv.reader(fh), [])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_cell(value: Column) -> Column:
    """A cell as a hash: trimmed, lower-cased; null when empty."""
    v = F.lower(F.trim(value))
    return F.when(v != "", v)


def is_well_formed(cell: Column) -> Column:
    """64 lowercase hex digits and not the hash of an empty value."""
    return cell.rlike(_HEX64) & (cell != F.lit(EMPTY_SHA256))


def upload_cells(raw: DataFrame, key_columns: Sequence[str]) -> DataFrame:
    """One row per data row: a normalised cell per key type present, and ``_ok``.

    A row is well-formed when it has at least one hash and every non-empty cell is a well-formed hash; a row
    holding anything else (a plain e-mail, a truncated hash) is malformed as a whole and never used.
    """
    types = [t for t, c in KEY_COLUMNS.items() if c in key_columns]
    cells = raw.select(*[hash_cell(F.col(KEY_COLUMNS[t])).alias(t) for t in types])
    present = F.lit(False)
    bad = F.lit(False)
    for t in types:
        present = present | F.col(t).isNotNull()
        bad = bad | (F.col(t).isNotNull() & ~is_well_formed(F.col(t)))
    return cells.withColumn("_ok", present & ~bad)


def upload_counts(cells: DataFrame) -> tuple[int, int, int]:
    """(total rows, malformed rows, distinct well-formed rows) in one pass."""
    types = [c for c in cells.columns if c != "_ok"]
    row_key = F.concat_ws("|", *[F.coalesce(F.col(t), F.lit("")) for t in types])
    r = cells.agg(
        F.count(F.lit(1)).alias("total"),
        F.sum(F.when(~F.col("_ok"), 1).otherwise(0)).alias("malformed"),
        F.countDistinct(F.when(F.col("_ok"), row_key)).alias("valid"),
    ).first()
    return int(r["total"] or 0), int(r["malformed"] or 0), int(r["valid"] or 0)


def upload_keys(cells: DataFrame) -> DataFrame:
    """``key_type, key_sha256``: the distinct keys of well-formed rows."""
    types = [c for c in cells.columns if c != "_ok"]
    ok = cells.where("_ok")
    parts = [ok.select(F.lit(t).alias("key_type"), F.col(t).alias("key_sha256")).where(F.col(t).isNotNull())
             for t in types]
    out = parts[0]
    for p in parts[1:]:
        out = out.unionByName(p)
    return out.distinct()


@dataclass(frozen=True)
class Upload:
    """A read list: its statistics, and its keys when usable (``release`` frees the cached rows)."""

    stats: UploadStats
    keys: DataFrame | None = None
    cached: DataFrame | None = None

    def release(self) -> None:
        if self.cached is not None:
            self.cached.unpersist()


def read_upload(spark: SparkSession, path: Path) -> Upload:
    """Read the list: its statistics and (when usable) its keys; malformed values are dropped here."""
    path = Path(path)
    header = list_header(path) if path.is_file() else None
    if header is None:
        return Upload(UploadStats(readable=False))
    key_columns = tuple(c for c in KEY_COLUMNS.values() if c in header)
    if not key_columns:
        return Upload(UploadStats(readable=True, sha256=file_sha256(path)))
    # Names by position from the file's own header; other columns are read as ignored placeholders.
    names = [h if h in key_columns and header.index(h) == i else f"_ignored_{i}" for i, h in enumerate(header)]
    schema = StructType([StructField(n, StringType(), True) for n in names])
    raw = spark.read.schema(schema).option("header", True).option("mode", "PERMISSIVE").csv(str(path))
    cells = upload_cells(raw, key_columns).persist(StorageLevel.MEMORY_AND_DISK)
    total, malformed, valid = upload_counts(cells)
    stats = UploadStats(True, key_columns, total, malformed, valid, file_sha256(path))
    return Upload(stats, upload_keys(cells), cells)


# --- warehouse state ----------------------------------------------------------------------------------------

def offered_segments(spark: SparkSession, wh: io.Warehouse, settings: Settings) -> dict[str, dict[str, bool]]:
    """Per channel, each known segment and whether it declares ``advertiser_list_refinement``.

    Known = published for that channel by the last daily run (``gold/segment_stats``); before any run, the
    valid definitions under ``segments/``. Bounded by the number of definitions, so collected.
    """
    out: dict[str, dict[str, bool]] = {ch: {} for ch in CHANNELS}
    path = wh.table("gold", "segment_stats")
    if io.exists(spark, path):
        stats = io.read(spark, path)
        purposes = F.col("purposes") if "purposes" in stats.columns else F.array().cast("array<string>")
        as_of = F.col("as_of") if "as_of" in stats.columns else F.lit(None).cast(DateType())
        rows = stats.select("segment", "channel", F.array_contains(purposes, REFINEMENT_PURPOSE).alias("ok"),
                            as_of.alias("as_of")).collect()
        last = max((r["as_of"] for r in rows if r["as_of"] is not None), default=None)
        for r in rows:
            if r["channel"] in out and r["as_of"] == last:
                out[r["channel"]][r["segment"]] = bool(r["ok"])
        return out
    from pipelines.segments.model import discover, parse_file
    from pipelines.segments.stats import segments_dir

    for file in discover([segments_dir(settings)]):
        d = parse_file(file).definition
        if d is not None:
            for ch in d.channels:
                if ch in out:
                    out[ch][d.name] = REFINEMENT_PURPOSE in d.purposes
    return out


def eligibility_as_of(spark: SparkSession, wh: io.Warehouse) -> tuple[DataFrame, date]:
    """``silver/eligibility`` of the last daily run and its as-of date; :class:`RefineError` before any run."""
    path = wh.table("silver", "eligibility")
    if not io.exists(spark, path):
        raise RefineError(f"no consent eligibility in {wh.root}: run the daily pipeline (audience run) first")
    elig = io.read(spark, path)
    first = elig.select("as_of").limit(1).collect()  # one as-of per table: the daily run replaces it whole
    as_of = first[0]["as_of"] if first else None
    if as_of is None:
        raise RefineError(f"the eligibility table of {wh.root} is empty: run the daily pipeline first")
    return elig, as_of


def customer_keys(spark: SparkSession, wh: io.Warehouse, elig: DataFrame, as_of: date) -> DataFrame:
    """``silver/match_keys`` (computed by the daily run); computed on the fly, not stored, when absent."""
    path = wh.table("silver", "match_keys")
    if io.exists(spark, path):
        return io.read(spark, path)
    customers = wh.table("silver", "customers")
    if not io.exists(spark, customers):
        raise RefineError(f"no customers in {wh.root}: run the daily pipeline first")
    return match_keys(io.read(spark, customers), elig, as_of)


# --- matching and refinement (DataFrame -> DataFrame) -----------------------------------------------------

def channel_eligible(elig: DataFrame, channel: str) -> DataFrame:
    """``customer_id`` of adults, not erased, eligible for list refinement on ``channel``."""
    ok = (F.coalesce(F.col(REFINEMENT_ELIGIBILITY[channel]), F.lit(False))
          & F.coalesce(F.col("adult"), F.lit(False)) & ~F.coalesce(F.col("erased"), F.lit(True)))
    return elig.where(ok).select("customer_id")


def matched_customers(keys: DataFrame, customer_key_table: DataFrame, elig: DataFrame, channel: str) -> DataFrame:
    """``customer_id`` of eligible customers with at least one key in the upload (filter before join)."""
    eligible_keys = customer_key_table.join(F.broadcast(channel_eligible(elig, channel)), "customer_id", "left_semi")
    return eligible_keys.join(keys, ["key_type", "key_sha256"], "left_semi").select("customer_id").distinct()


def refined_customers(matched: DataFrame, membership: DataFrame, channel: str,
                      include: Sequence[str], exclude: Sequence[str]) -> DataFrame:
    """Matched people in ANY include segment (all when none) and in NO exclude segment, on ``channel``."""
    members = membership.where(F.col("channel") == channel)
    out = matched
    if include:
        inc = members.where(F.col("segment").isin(list(include))).select("customer_id")
        out = out.join(inc, "customer_id", "left_semi")
    if exclude:
        exc = members.where(F.col("segment").isin(list(exclude))).select("customer_id")
        out = out.join(exc, "customer_id", "left_anti")
    return out


def activation_rows(refined: DataFrame, identity_links: DataFrame, request: RefineRequest, as_of: date,
                    expires_at: date, cutoff: datetime, eligible: DataFrame) -> DataFrame:
    """``gold/activation_lists`` rows: the channel's ad-serving ids linked (by the as-of date) to refined people,
    except ids also linked to someone not in ``eligible`` (:func:`channel_eligible` of the channel):
    :func:`pipelines.consent.gate.exclusive_devices`."""
    links = identity_links.where(
        F.col("id_type").isin(list(AD_SERVING_ID_TYPES[request.channel]))
        & F.col("id_value").isNotNull()
        & (F.col("authenticated_at") <= F.lit(cutoff).cast(TimestampType()))
    )
    return (
        exclusive_devices(links, eligible).join(refined, "customer_id", "left_semi")
        .select(
            F.lit(request.request_id).alias("request_id"),
            F.lit(request.advertiser_id).alias("advertiser_id"),
            F.lit(request.channel).alias("channel"),
            "id_type",
            F.col("id_value").alias("ad_serving_id"),
            "customer_id",
            F.lit(as_of).cast(DateType()).alias("as_of"),
            F.lit(expires_at).cast(DateType()).alias("expires_at"),
        )
        .distinct()
    )


# --- validation and the guard (pure) -----------------------------------------------------------------------

def validation_problems(request: RefineRequest, upload: UploadStats, offered: Mapping[str, Mapping[str, bool]],
                        rules: RefinementSettings) -> list[str]:
    """Input-only reasons to refuse (empty when the request may be evaluated)."""
    problems: list[str] = []
    if request.channel not in CHANNELS:
        problems.append(REASONS["channel"])
    else:
        known = offered.get(request.channel, {})
        names = [*request.include_segments, *request.exclude_segments]
        unknown = [s for s in names if s not in known]
        if unknown:
            problems.append(REASONS["unknown_segments"].format(", ".join(unknown)))
        not_offered = [s for s in names if s in known and not known[s]]
        if not_offered:
            problems.append(REASONS["not_offered"].format(", ".join(not_offered)))
    both = [s for s in request.include_segments if s in request.exclude_segments]
    if both:
        problems.append(REASONS["include_exclude"].format(", ".join(both)))
    if not upload.readable:
        problems.append(REASONS["unreadable"])
    elif not upload.key_columns:
        problems.append(REASONS["no_key_column"])
    elif upload.valid_rows < rules.min_upload_rows:
        problems.append(REASONS["too_small"].format(rules.min_upload_rows))
    return problems


def admission_problems(request: RefineRequest, upload: UploadStats, offered: Mapping[str, Mapping[str, bool]],
                       history: "History", rules: RefinementSettings) -> list[str]:
    """Guards 1 and 2: validation, then the budget (evaluated requests in the period, whatever their outcome)."""
    problems = validation_problems(request, upload, offered, rules)
    if not problems and len(history.evaluations) >= rules.budget_requests_per_period:
        problems = [REASONS["budget"]]
    return problems


def round_down(n: int | None, rounding: int) -> int | None:
    """``n`` rounded down to a multiple of ``rounding`` (None stays None)."""
    if n is None:
        return None
    step = max(int(rounding), 1)
    return n - n % step


def published_count(n: int, rules: RefinementSettings) -> int | None:
    """A customer count as an advertiser may see it: rounded down, null below ``min_audience``.

    >>> published_count(57, RefinementSettings()), published_count(49, RefinementSettings())
    (50, None)
    """
    rounded = round_down(n, rules.rounding)
    return rounded if rounded is not None and rounded >= max(rules.min_audience, 1) else None


@dataclass(frozen=True)
class Prior:
    """An earlier evaluation of the same advertiser, with the differences of its sets to the current ones."""

    evaluation_id: str
    seq: int
    request_id: str
    figures: Mapping[str, int | None]
    origins: Mapping[str, str]
    differences: Mapping[str, int]


@dataclass(frozen=True)
class Guarded:
    """The figures an advertiser may see for one evaluation, and where each came from."""

    figures: Mapping[str, int | None]
    origins: Mapping[str, str]
    status: str
    reason: str | None
    min_differences: Mapping[str, int | None] = field(default_factory=dict)


def guarded_figures(request_id: str, exact: Mapping[str, int], priors: Sequence[Prior],
                    rules: RefinementSettings) -> Guarded:
    """Apply the differencing guard and the minimum audience (module docstring, guards 3 and 4).

    Per figure: the earliest prior whose set differs from the current one by fewer than ``difference_k``
    people (0 included) lends its published figure and origin; otherwise the figure is the current exact
    count, published. ``coarsened`` when a figure came from another request; ``refused`` when the refined
    figure is null. A null matched figure nulls the refined one (it can never be larger).
    """
    ordered = sorted(priors, key=lambda p: p.seq)
    figures: dict[str, int | None] = {}
    origins: dict[str, str] = {}
    for kind in KINDS:
        anchor = next((p for p in ordered if p.differences[kind] < rules.difference_k), None)
        if anchor is None:
            figures[kind], origins[kind] = published_count(exact[kind], rules), request_id
        else:
            figures[kind], origins[kind] = anchor.figures[kind], anchor.origins[kind]
    if figures["matched"] is None:
        figures["refined"] = None
    mins = {k: min((p.differences[k] for p in ordered), default=None) for k in KINDS}
    if figures["refined"] is None:
        return Guarded(figures, origins, "refused", REASONS["small_audience"], mins)
    if any(origins[k] != request_id for k in KINDS):
        return Guarded(figures, origins, "coarsened", REASONS["coarsened"], mins)
    return Guarded(figures, origins, "accepted", None, mins)


def should_activate(guarded: Guarded, refined_exact: int, rules: RefinementSettings) -> bool:
    """Activation lists only for answered requests whose exact refined audience reaches the minimum."""
    return guarded.status in ("accepted", "coarsened") and refined_exact >= max(rules.min_audience, 1)


# --- history --------------------------------------------------------------------------------------------

def period_start(now: datetime, rules: RefinementSettings) -> datetime:
    return now - timedelta(days=rules.budget_period_days)


@dataclass(frozen=True)
class History:
    """What the audit says about one advertiser: evaluations in the period, and this request's past."""

    evaluations: tuple[Any, ...]
    next_seq: int
    was_activated: bool


def advertiser_history(audit: DataFrame, advertiser_id: str, request_id: str, now: datetime,
                       rules: RefinementSettings) -> History:
    """One small query of ``ops/refinement_audit`` (bounded by the budget plus this request's reruns).

    ``seq`` orders an advertiser's evaluations; only the order within one period matters to the guard.
    """
    start = F.lit(period_start(now, rules)).cast(TimestampType())
    end = F.lit(now).cast(TimestampType())
    in_period = F.col("evaluated") & (F.col("requested_at") > start) & (F.col("requested_at") <= end)
    last_seq = F.max("seq").over(Window.partitionBy("advertiser_id"))
    rows = (audit.where(F.col("advertiser_id") == advertiser_id)
            .select("*", in_period.alias("_in_period"), last_seq.alias("_last_seq"))
            .where(F.col("_in_period") | (F.col("request_id") == request_id) | (F.col("seq") == F.col("_last_seq")))
            .orderBy("seq").collect())
    return History(
        evaluations=tuple(r for r in rows if r["_in_period"]),
        next_seq=max((int(r["seq"]) for r in rows), default=0) + 1,
        was_activated=any(r["activated"] and r["request_id"] == request_id for r in rows),
    )


#: Pseudo evaluation id under which :func:`set_sizes` reports the current sets.
CURRENT = ""


def set_sizes(earlier_sets: DataFrame | None, current: DataFrame) -> dict[tuple[str, str], tuple[int, int]]:
    """Per (evaluation_id, kind): (size of the set, size of its intersection with the current set).

    The current sets come back under :data:`CURRENT`. With them, ``|A Δ B| = |A| + |B| - 2 |A ∩ B|``. One
    aggregate (one Spark job) whose result is bounded by the number of evaluations, not by the data.
    """
    parts = current.select(F.lit(CURRENT).alias("evaluation_id"), "kind", "customer_id", F.lit(1).alias("_in_current"))
    if earlier_sets is not None:
        marked = current.select("kind", "customer_id", F.lit(1).alias("_in_current"))
        parts = parts.unionByName(earlier_sets.select("evaluation_id", "kind", "customer_id")
                                  .join(marked, ["kind", "customer_id"], "left"))
    rows = parts.groupBy("evaluation_id", "kind").agg(
        F.count(F.lit(1)).alias("size"), F.count("_in_current").alias("both")).collect()
    return {(r["evaluation_id"], r["kind"]): (int(r["size"]), int(r["both"])) for r in rows}


def priors_from(evaluations: Sequence[Any], sizes: Mapping[tuple[str, str], tuple[int, int]],
                exact: Mapping[str, int]) -> list[Prior]:
    """Earlier evaluations as :class:`Prior` values with their set differences to the current sets."""
    out = []
    for e in evaluations:
        diffs = {}
        for kind in KINDS:
            a, both = sizes.get((e["evaluation_id"], kind), (0, 0))
            diffs[kind] = a + exact[kind] - 2 * both
        out.append(Prior(
            e["evaluation_id"], int(e["seq"]), e["request_id"],
            {"matched": e["matched_audience"], "refined": e["refined_audience"]},
            {"matched": e["matched_origin"], "refined": e["refined_origin"]},
            diffs,
        ))
    return out


# --- the command --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RefineOutcome:
    """The advertiser-visible report row (all an advertiser may be told) and the internal evaluation id."""

    report: Mapping[str, Any]
    evaluation_id: str

    @property
    def status(self) -> str:
        return str(self.report["status"])


def refine(spark: SparkSession, settings: Settings, warehouse: Path, request_path: Path, now: datetime) -> RefineOutcome:
    """Refine one advertiser list (contract section 4) under the warehouse lock; see the module docstring.

    Raises :class:`InvalidRequest` for a request file that is not a request (nothing recorded) and
    :class:`RefineError` when the warehouse has no daily run yet. Every other outcome, refusals included, is
    recorded: one row per request in ``gold/advertiser_reports`` (a rerun replaces it) and one row per
    evaluation in ``ops/refinement_audit``.
    """
    request = load_request(Path(request_path))
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    wh = io.Warehouse(Path(warehouse))
    with wh.lock(f"refine {request.request_id}"):
        return _refine_locked(spark, settings, wh, request, now)


def _refine_locked(spark: SparkSession, settings: Settings, wh: io.Warehouse, request: RefineRequest,
                   now: datetime) -> RefineOutcome:
    rules = settings.refinement
    elig, as_of = eligibility_as_of(spark, wh)
    read = read_upload(spark, request.list_path)
    upload = read.stats
    audit_path = wh.table("ops", "refinement_audit")
    sets_path = wh.table("ops", "refinement_sets")
    history = advertiser_history(io.read(spark, audit_path, REFINEMENT_AUDIT), request.advertiser_id,
                                 request.request_id, now, rules)
    problems = admission_problems(request, upload, offered_segments(spark, wh, settings), history, rules)
    evaluation_id = f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}"
    # Scoped by advertiser too: one advertiser's request id can never replace another's rows.
    condition = f"advertiser_id = '{request.advertiser_id}' AND request_id = '{request.request_id}'"  # both match _ID

    exact: dict[str, int] = {}
    guarded: Guarded | None = None
    activated = False
    current: DataFrame | None = None
    try:
        if not problems:
            assert read.keys is not None
            current = evaluation_sets(spark, wh, request, read.keys, elig, as_of).persist(StorageLevel.MEMORY_AND_DISK)
            earlier_ids = [e["evaluation_id"] for e in history.evaluations]
            earlier = (io.read(spark, sets_path, REFINEMENT_SETS).where(F.col("evaluation_id").isin(earlier_ids))
                       if earlier_ids else None)
            sizes = set_sizes(earlier, current)
            exact = {k: sizes.get((CURRENT, k), (0, 0))[0] for k in KINDS}
            guarded = guarded_figures(request.request_id, exact, priors_from(history.evaluations, sizes, exact), rules)
            activated = should_activate(guarded, exact["refined"], rules)
            # The guard's memory is written before any answer: a crash afterwards errs on the safe side.
            io.append(current.select(
                F.lit(evaluation_id).alias("evaluation_id"), F.lit(request.advertiser_id).alias("advertiser_id"),
                F.lit(now).cast(TimestampType()).alias("requested_at"), "kind", "customer_id"), sets_path)

        report = report_row(request, upload, guarded, problems, rules, now, as_of)
        io.append(spark.createDataFrame(
            [audit_row(evaluation_id, history.next_seq, request, upload, exact, guarded, report, activated)],
            REFINEMENT_AUDIT), audit_path)

        activation_path = wh.table("gold", "activation_lists")
        if activated:
            assert current is not None
            rows = activation_rows(current.where(F.col("kind") == "refined").select("customer_id"),
                                   _identity_links(spark, wh), request, as_of,
                                   as_of + timedelta(days=rules.budget_period_days),
                                   end_of_day(as_of, settings.timezone), channel_eligible(elig, request.channel))
            io.replace_where(rows.select(*ACTIVATION_LISTS.fieldNames()), activation_path, condition)
        elif history.was_activated:
            io.delete_where(spark, activation_path, F.expr(condition))
        io.replace_where(spark.createDataFrame([report], ADVERTISER_REPORTS),
                         wh.table("gold", "advertiser_reports"), condition)
    finally:
        if current is not None:
            current.unpersist()
        read.release()
    return RefineOutcome(report, evaluation_id)


def evaluation_sets(spark: SparkSession, wh: io.Warehouse, request: RefineRequest, keys: DataFrame,
                    elig: DataFrame, as_of: date) -> DataFrame:
    """``kind, customer_id``: the matched set M and the refined set R of one request (not yet computed)."""
    matched = matched_customers(keys, customer_keys(spark, wh, elig, as_of), elig, request.channel)
    membership = io.read(spark, wh.table("gold", "segment_membership"),
                         StructType([StructField(c, StringType()) for c in ("segment", "channel", "customer_id")]))
    refined = refined_customers(matched, membership, request.channel, request.include_segments,
                                request.exclude_segments)
    return (matched.select(F.lit("matched").alias("kind"), "customer_id")
            .unionByName(refined.select(F.lit("refined").alias("kind"), "customer_id")))


def _identity_links(spark: SparkSession, wh: io.Warehouse) -> DataFrame:
    schema = StructType([StructField("customer_id", StringType()), StructField("id_type", StringType()),
                         StructField("id_value", StringType()), StructField("authenticated_at", TimestampType())])
    return io.read(spark, wh.table("silver", "identity_links"), schema)


def report_row(request: RefineRequest, upload: UploadStats, guarded: Guarded | None, problems: Sequence[str],
               rules: RefinementSettings, now: datetime, as_of: date) -> dict[str, Any]:
    """The advertiser-visible row: thresholded figures, status and a generic reason, nothing else."""
    status, reason = ("refused", "; ".join(problems)) if guarded is None else (guarded.status, guarded.reason)
    return {
        "request_id": request.request_id,
        "advertiser_id": request.advertiser_id,
        "status": status,
        "reason": reason,
        "channel": request.channel,
        "include_segments": list(request.include_segments),
        "exclude_segments": list(request.exclude_segments),
        "uploaded_rows": round_down(upload.total_rows, rules.rounding) if upload.readable else None,
        "malformed_rows": upload.malformed_rows if upload.key_columns else None,
        "matched_audience": guarded.figures["matched"] if guarded else None,
        "refined_audience": guarded.figures["refined"] if guarded else None,
        "requested_at": now,
        "as_of": as_of,
    }


def audit_row(evaluation_id: str, seq: int, request: RefineRequest, upload: UploadStats, exact: Mapping[str, int],
              guarded: Guarded | None, report: Mapping[str, Any], activated: bool) -> dict[str, Any]:
    """The internal audit row: the report plus exact numbers, origins of the figures and the decisions."""
    return {
        "evaluation_id": evaluation_id, "seq": seq, "request_id": request.request_id,
        "advertiser_id": request.advertiser_id, "channel": request.channel,
        "include_segments": list(request.include_segments), "exclude_segments": list(request.exclude_segments),
        "list_path": str(request.list_path), "list_sha256": upload.sha256,
        "total_rows": upload.total_rows if upload.readable else None,
        "malformed_rows": upload.malformed_rows if upload.key_columns else None,
        "valid_rows": upload.valid_rows if upload.key_columns else None,
        "evaluated": guarded is not None,
        "matched_exact": exact.get("matched"), "refined_exact": exact.get("refined"),
        "matched_audience": report["matched_audience"], "refined_audience": report["refined_audience"],
        "matched_origin": guarded.origins["matched"] if guarded else None,
        "refined_origin": guarded.origins["refined"] if guarded else None,
        "min_difference_matched": guarded.min_differences.get("matched") if guarded else None,
        "min_difference_refined": guarded.min_differences.get("refined") if guarded else None,
        "status": report["status"], "reason": report["reason"], "activated": activated,
        "requested_at": report["requested_at"], "as_of": report["as_of"],
    }


# --- daily refresh (C3) ----------------------------------------------------------------------------------

def refreshed_activation_lists(lists: DataFrame, elig: DataFrame, identity_links: DataFrame, as_of: date) -> DataFrame:
    """Activation rows still valid at ``as_of``: not expired, the person still eligible for the list's channel,
    and the ad-serving id still linked to them and to nobody who is not (:func:`pipelines.consent.gate.
    exclusive_devices`). A withdrawal or erasure thus empties every list at the next run, and so does a minor or an
    objector starting to use a device on a list.
    """
    links = identity_links.select("customer_id", "id_type", "id_value").distinct()
    valid = None
    for channel in CHANNELS:
        part = (exclusive_devices(links.where(F.col("id_type").isin(list(AD_SERVING_ID_TYPES[channel]))),
                                  channel_eligible(elig, channel))
                .select("customer_id", F.lit(channel).alias("channel"), "id_type",
                        F.col("id_value").alias("ad_serving_id")))
        valid = part if valid is None else valid.unionByName(part)
    return (
        lists.where(F.col("expires_at") > F.lit(as_of).cast(DateType()))
        .join(valid, ["customer_id", "channel", "id_type", "ad_serving_id"], "left_semi")
    )


def prune_sets(spark: SparkSession, wh: io.Warehouse, now: datetime, rules: RefinementSettings) -> None:
    """Delete the evaluation sets older than one budget period: the guard never looks further back."""
    io.delete_where(spark, wh.table("ops", "refinement_sets"),
                    F.col("requested_at") <= F.lit(period_start(now, rules)).cast(TimestampType()))


def stage_activation_lists(ctx: Any, elig: DataFrame) -> None:
    """Daily-run stage: drop from ``gold/activation_lists`` what consent, erasure or expiry no longer allows,
    and prune ``ops/refinement_sets`` older than one budget period (data minimisation).

    Puts the refreshed table in ``ctx.outputs["activation_lists"]`` (published by the run); does nothing
    before the first refinement.
    """
    prune_sets(ctx.spark, ctx.wh, ctx.started, ctx.settings.refinement)
    path = ctx.wh.table("gold", "activation_lists")
    if not io.exists(ctx.spark, path):
        return
    with ctx.progress.stage("activation lists refresh"):
        lists = io.read(ctx.spark, path).select(*ACTIVATION_LISTS.fieldNames())
        kept = refreshed_activation_lists(lists, elig, ctx.silver("identity_links"), ctx.as_of)
        ctx.outputs["activation_lists"] = io.materialise(kept)


__all__ = [
    "ADVERTISER_REPORTS", "REFINEMENT_AUDIT", "REFINEMENT_SETS", "ACTIVATION_LISTS", "AD_SERVING_ID_TYPES",
    "REASONS", "InvalidRequest", "RefineError", "RefineRequest", "RefineOutcome", "Upload", "UploadStats", "Prior", "Guarded",
    "parse_request", "load_request", "read_upload", "upload_cells", "upload_counts", "upload_keys",
    "offered_segments", "validation_problems", "admission_problems", "matched_customers", "refined_customers", "activation_rows",
    "evaluation_sets", "report_row", "audit_row", "History", "advertiser_history", "set_sizes", "CURRENT", "prune_sets",
    "round_down", "published_count", "guarded_figures", "should_activate", "priors_from",
    "refine", "refreshed_activation_lists", "stage_activation_lists",
]
