"""Erasure (R1, C3): a person leaves every table, every old table version and every later ingestion.

``forget`` (``audience forget`` and the daily :func:`stage_erasure`) does, for a batch of customer ids::

    1. plan       every Delta table of the warehouse -> its rule in ERASURE_MAP (unknown table: generic rule)
    2. identify   the person's identifiers: customer id, device ids (identity links, raw and quarantined link
                  lines, web profiles, activation lists), e-mail and phone (silver, raw and quarantined
                  customer lines), Ads & Data pseudonyms (ledger)
    3. tombstone  ops/tombstones += keyed hash of the customer id and of each device id (written first: a
                  crash after this point is finished by the next run, never undone by a re-ingestion)
    4. delete     per table, the matching rows' locator tuples are found by equi-joins of each locator
                  column with the person's identifiers of its kind (:func:`matched_keys`), then one MERGE on
                  those tuples deletes the rows (the Ads & Data ledger is scrubbed instead, so the next
                  delivery revokes the pseudonyms: "a revocation goes to Ads & Data"); no tuple, no MERGE.
                  Steps 4 and 5 run in phases (:func:`erasure_phases`): every other table, then the
                  quarantine, then the other tables the identifiers come from, then those that say who is
                  pending, so an erasure that fails half-way is found and finished by the next run's
    5. purge      per table: REORG ... APPLY (PURGE) (deletion vectors hide rows, they do not remove them);
                  where rows went or the log still mentions the person (column statistics hold min/max
                  values!), a checkpoint and the removal of every older log entry; then the files of older
                  versions deleted at once (:func:`vacuum_now`: directly from the live file list, which the
                  new checkpoint gives, or Delta's VACUUM RETAIN 0 HOURS when that is not safe)
    6. verify     no ``_delta_log`` file mentions any identifier of the person as a whole token (not inside a longer
                  run of letters and digits: someone else's id may contain a short one), or ErasureIncomplete

How a table identifies a person is declared once, in :data:`ERASURE_MAP`: by customer id, by device id
(web events carry no customer id), by pseudonym, or by matching the raw text of a landing line against every
identifier as a whole CSV/JSON field (bronze and quarantine; a bronze line that parsed is matched by the
identifier tokens ingestion stored with it, :func:`line_identifiers`, so an erasure does not split every line
of the warehouse into fields). A test checks that every table a full run
creates is covered, so a new table cannot be forgotten; at run time an unmapped table is still searched (every
string column, as text) and reported.

**Retention override (documented).** Delta refuses ``VACUUM`` with a retention below
``delta.deletedFileRetentionDuration`` (7 days) unless ``spark.databricks.delta.retentionDurationCheck.enabled``
is false, because a concurrent reader or a time-travel query may still need the old files. Erasure must delete
exactly those files, so the check is switched off on the session *for the duration of each erasure VACUUM only*
and restored right after (:func:`retention_check_disabled`). This is safe because erasure runs under the
warehouse lock (no concurrent run) and because time travel to versions holding an erased person is precisely
what must become impossible. For the same reason the transaction log before the erasure is removed (Delta's own
log cleanup only deletes entries older than ``delta.logRetentionDuration``, truncated to the day): after an
erasure, a table's history starts at the erasure.

**What is deliberately kept.** ``ops/tombstones`` (keyed hashes: they are what keeps the person erased, and
without the internal key nobody can tell whose they are); the Ads & Data pseudonyms in ``ops/adsdata_ledger``
with their customer id removed, until the next delivery has revoked them (the ledger drops them then); earlier
delivery copies under ``exports/`` (pseudonymous files as delivered, pruned by the retention stage); aggregates
(segment sizes, geo profiles, reports) from which nobody can be singled out.

**Tombstones at ingestion.** :func:`tombstone_filter` gives ingestion a filter for raw landing lines: every
whole field of a line is hashed with the internal key(s) and a line is dropped, before bronze, silver or the
quarantine see it, when one of its fields is a tombstoned customer or device id. Re-delivering or re-ingesting
old landing files therefore never brings an erased person back. Tombstones store ``HMAC-SHA256(internal key,
"tombstone:" + lower(trim(id)))`` only, with the key id, request id and date; a rotated internal key keeps its
old tombstones working as long as the retired key stays in the key file (:func:`tombstoned` refuses otherwise).

Example::

    >>> report = forget(spark, settings, wh, ["C00001234"], keys, now)
    >>> report.people, report.summary()
    (1, 'erased 1 person(s): ... rows deleted in ... tables, ... tables purged, ...')
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Iterator
from urllib.parse import unquote
from zoneinfo import ZoneInfo

from delta.tables import DeltaTable
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DateType, StringType, StructField, StructType

from pipelines import io
from pipelines.config import Settings
from pipelines.privacy.keys import INTERNAL, KeyRing
from pipelines.privacy.pseudonym import hmac_pads, keyed_hash
from pipelines.schemas import LANDING_COLUMNS, LANDING_FORMAT, landing_string_schema

if TYPE_CHECKING:  # type hints only: the daily job imports the stages
    from pipelines.jobs.daily import RunContext

# ------------------------------------------------------------------------------------------- the erasure map

#: How a column identifies a person.
CUSTOMER = "customer_id"   # the column holds the customer id
DEVICE = "device_id"       # the column holds a cookie id, mobile advertising id, decoder id or ad-serving id
PSEUDONYM = "pseudo_id"    # the column holds an Ads & Data pseudonym of the person
TEXT = "text"              # free text (a raw landing line, a report string): any whole field may be an identifier
KINDS = (CUSTOMER, DEVICE, PSEUDONYM, TEXT)

#: What erasure does to a table.
DELETE = "delete"  # delete the person's rows
SCRUB = "scrub"    # set the identifying columns to null, keep the row (Ads & Data ledger: revocation pending)
KEEP = "keep"      # holds nobody (the rule's note says why)


@dataclass(frozen=True)
class Locator:
    """A column of a table that can hold one of the person's identifiers."""

    column: str
    kind: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown identifier kind {self.kind!r}; expected one of {', '.join(KINDS)}")


@dataclass(frozen=True)
class TableRule:
    """How erasure (and access) treats the tables matching ``pattern`` (``layer/name``, ``*`` allowed)."""

    pattern: str
    action: str
    locators: tuple[Locator, ...] = ()
    note: str = ""

    def __post_init__(self) -> None:
        if self.action not in (DELETE, SCRUB, KEEP):
            raise ValueError(f"{self.pattern}: unknown action {self.action!r}")
        if (self.action == KEEP) == bool(self.locators):
            raise ValueError(f"{self.pattern}: a {self.action} rule needs {'no' if self.action == KEEP else 'some'} locators")


def _delete(pattern: str, *locators: tuple[str, str], note: str = "") -> TableRule:
    return TableRule(pattern, DELETE, tuple(Locator(c, k) for c, k in locators), note)


def _keep(pattern: str, note: str) -> TableRule:
    return TableRule(pattern, KEEP, (), note)


#: Per table, the columns that identify a person. Exact names win over patterns. Keep it in step with the
#: tables the pipeline writes: ``tests/unit/test_erasure.py`` fails when a table is missing.
ERASURE_MAP: tuple[TableRule, ...] = (
    # bronze: raw landing lines of every source; the person is any whole field of the line.
    _delete("bronze/*", ("raw", TEXT), note="raw landing lines: matched field by field against every identifier"),
    # silver sources
    _delete("silver/customers", ("customer_id", CUSTOMER)),
    _delete("silver/consent_events", ("customer_id", CUSTOMER)),
    _delete("silver/erasure_requests", ("customer_id", CUSTOMER),
            note="the request itself goes too; its id stays with the tombstone"),
    _delete("silver/identity_links", ("customer_id", CUSTOMER), ("id_value", DEVICE)),
    _delete("silver/tv_viewing", ("customer_id", CUSTOMER)),
    _delete("silver/tv_ad_exposures", ("customer_id", CUSTOMER)),
    _delete("silver/web_events", ("cookie_id", DEVICE), ("mobile_ad_id", DEVICE),
            note="no customer id: found through the person's device ids"),
    _delete("silver/purchases", ("customer_id", CUSTOMER)),
    _delete("silver/loyalty_events", ("customer_id", CUSTOMER)),
    _delete("silver/sociodemo_individual", ("customer_id", CUSTOMER)),
    _keep("silver/sociodemo_area", "statistics per postal code, nobody's record"),
    _keep("silver/cadastral", "dwellings by address id; the link to a person lives in silver/customers"),
    # silver derived
    _delete("silver/consent_state", ("customer_id", CUSTOMER)),
    _delete("silver/eligibility", ("customer_id", CUSTOMER)),
    _delete("silver/interest_evidence", ("customer_id", CUSTOMER)),
    _delete("silver/tv_daily_genre_minutes", ("customer_id", CUSTOMER)),
    _delete("silver/web_daily_category_events", ("cookie_id", DEVICE), ("mobile_ad_id", DEVICE)),
    _delete("silver/match_keys", ("customer_id", CUSTOMER)),
    _keep("silver/tcf_verdicts", "verdicts per TC-string hash, no person"),
    # gold
    _delete("gold/tv_profiles", ("customer_id", CUSTOMER)),
    _delete("gold/web_profiles", ("customer_id", CUSTOMER), ("cookie_id", DEVICE), ("mobile_ad_id", DEVICE)),
    _delete("gold/segment_membership", ("customer_id", CUSTOMER)),
    _delete("gold/adsdata_export", ("pseudo_id", PSEUDONYM), note="pseudonymous profile: found through the ledger"),
    _keep("gold/adsdata_revocations", "pseudonyms to delete at Ads & Data: the instruction itself, no identifier"),
    _delete("gold/activation_lists", ("customer_id", CUSTOMER), ("ad_serving_id", DEVICE)),
    _keep("gold/segment_stats", "thresholded audience sizes"),
    _keep("gold/geo_profiles", "k-anonymous area aggregates"),
    _keep("gold/advertiser_reports", "thresholded counts per request"),
    _keep("gold/campaign_reports", "thresholded campaign figures"),
    _keep("gold/viewing_reports", "anonymous viewing reports"),
    # ops
    _delete("ops/quarantine", ("customer_id", CUSTOMER), ("raw", TEXT),
            note="rejected raw lines: by customer id, and field by field (web events have no customer id)"),
    TableRule("ops/adsdata_ledger", SCRUB, (Locator("customer_id", CUSTOMER),),
              "customer id removed, pseudonyms kept until the next delivery revokes them (reason erased)"),
    _delete("ops/refinement_sets", ("customer_id", CUSTOMER)),
    _delete("ops/dq_results", ("observed_value", TEXT), ("details", TEXT),
            note="identifier columns are redacted from samples; matched as text to be sure"),
    _keep("ops/tombstones", "keyed hashes that keep erased people out of every ingestion"),
    _keep("ops/ingested_files", "landing file bookkeeping"),
    _keep("ops/runs", "run bookkeeping"),
    _keep("ops/profile_aggregate_runs", "aggregate bookkeeping"),
    _keep("ops/segment_stats_history", "thresholded segment sizes per run"),
    _keep("ops/refinement_audit", "request bookkeeping with exact counts, no person"),
    _keep("ops/geo_memory", "area codes and category names of earlier publications"),
)

#: Column names that identify a person wherever they appear (used for tables the map does not know).
IDENTIFYING_COLUMNS: Mapping[str, str] = {
    "customer_id": CUSTOMER, "cookie_id": DEVICE, "mobile_ad_id": DEVICE, "decoder_id": DEVICE,
    "id_value": DEVICE, "ad_serving_id": DEVICE, "pseudo_id": PSEUDONYM,
}


class ErasureMapError(ValueError):
    """The erasure map names a column a table does not have (nothing was deleted)."""


class ErasureIncomplete(RuntimeError):
    """After the purge, some table's files still mention an erased person (names tables, never values)."""


class TombstoneKeyMissing(RuntimeError):
    """Tombstones exist under an internal key that the key file no longer holds."""


def table_name(wh: io.Warehouse, path: Path) -> str:
    """``layer/name`` of a table path of ``wh``."""
    rel = Path(path).relative_to(wh.root)
    return "/".join(rel.parts[:2])


def rule_for(name: str, rules: Sequence[TableRule] = ERASURE_MAP) -> TableRule | None:
    """The rule of table ``name`` (``layer/name``): the exact entry, else the first matching pattern."""
    for rule in rules:
        if rule.pattern == name:
            return rule
    for rule in rules:
        if any(ch in rule.pattern for ch in "*?[") and fnmatch.fnmatchcase(name, rule.pattern):
            return rule
    return None


def generic_rule(name: str, schema: StructType) -> TableRule:
    """Rule for a table the map does not know: known identifier columns by kind, every other string as text."""
    locators = []
    for f in schema.fields:
        kind = IDENTIFYING_COLUMNS.get(f.name)
        if kind is not None:
            locators.append(Locator(f.name, kind))
        elif isinstance(f.dataType, StringType):
            locators.append(Locator(f.name, TEXT))
    if not locators:
        return TableRule(name, KEEP, (), "unmapped table without string columns")
    return TableRule(name, DELETE, tuple(locators), "unmapped table: generic search")


def unmapped_tables(wh: io.Warehouse, rules: Sequence[TableRule] = ERASURE_MAP) -> list[str]:
    """Tables of ``wh`` that no rule covers (a test keeps this empty after a full run)."""
    return sorted(n for n in (table_name(wh, p) for p in wh.all_tables()) if rule_for(n, rules) is None)


def check_rule(rule: TableRule, name: str, schema: StructType) -> None:
    """Raise :class:`ErasureMapError` when a locator names a column ``schema`` lacks or cannot match."""
    for loc in rule.locators:
        if loc.column not in schema.fieldNames():
            raise ErasureMapError(f"erasure map: {name} has no column {loc.column!r} (rule {rule.pattern})")
        dtype = schema[loc.column].dataType
        ok = isinstance(dtype, StringType) or (
            loc.kind != TEXT and isinstance(dtype, ArrayType) and isinstance(dtype.elementType, StringType))
        if not ok:
            raise ErasureMapError(f"erasure map: {name}.{loc.column} is {dtype.simpleString()}, not a string")


# ------------------------------------------------------------------------------------------- the person

#: Separators of whole fields in a raw CSV line or JSON object (quotes, commas, braces, brackets, blanks).
FIELD_SEPARATORS = r'[\s,"{}\[\]]+'


def text_fields(text: Column) -> Column:
    """Lower-cased whole fields of a raw landing line (CSV or JSON), and the hyphen-separated parts of each:
    ``'ERQ-20261107-C1,"a@b.be"'`` -> ``["erq-20261107-c1", "a@b.be", "erq", "20261107", "c1"]``.

    A value matches a field only as a whole: ``C1`` never matches inside ``C12`` or ``xC1``. Hyphen parts count
    because operators build ids from ids (a request id ``ERQ-<day>-<customer id>``): a truncated request line
    ``ERQ-20261107-C1,C`` is still the person's, and would otherwise stay in bronze and in its file statistics
    (found at 100k customers: the erasure's own verification stopped the run). Identifiers with hyphens
    (cookie ids, advertising ids) still match as whole fields.
    """
    fields = F.split(F.lower(text), FIELD_SEPARATORS)
    return F.array_union(fields, F.split(F.concat_ws("-", fields), "-"))


#: Bronze column: the identifier tokens of a landing line that parsed, found once at ingestion
#: (:func:`line_identifiers`); null for a line that did not parse (or was ingested before the column existed).
LINE_IDS = "_ids"


def identifier_columns(source: str) -> list[str]:
    """Landing columns of ``source`` that can hold a person's identifier or an id built from one: the customer,
    device and contact columns and every ``*_id`` column (request, event, view, purchase ids embed customer ids)."""
    return [c for c in LANDING_COLUMNS[source] if c in ("email", "phone", "id_value") or c.endswith("_id")]


def line_identifiers(source: str, parse_error: Column) -> Column:
    """The tokens :func:`text_fields` would find in a parsed line's :func:`identifier_columns` (columns of that
    name in scope): each value lower-cased, and its hyphen parts. Stored with the bronze line, so that erasure and
    access look up a few tokens per line instead of splitting every line of the warehouse into fields at every
    erasure (at 100k customers that split was most of an erasure's time, and it grew with the warehouse, not with
    the people erased).

    Null, so the line is matched on its raw text as before, when the line did not parse (``parse_error``), when
    an identifier column holds a field separator (the value would split into several fields), or, for JSON, when
    the line has more keys than the contract: a field the contract does not name could hold anything. What this
    does not find, and the raw text would: a parsed line holding someone's identifier in a column that is not an
    identifier column (a name, a city, a device model), which by contract holds none.

    Cost: ingestion about 1.5x slower on tv_viewing when first measured (benchmarks/results/
    2026-11-27-ingest-side-by-side.md), much of it array_compact (see below), since replaced.
    """
    none = F.array().cast("array<string>")
    cols = [F.lower(F.col(c)) for c in identifier_columns(source)]
    if not cols:
        return F.when(parse_error.isNull(), none)
    joined = F.concat_ws("-", *cols)
    # A missing value becomes "" and array_remove drops it with the empty hyphen parts. Not array_compact, nor
    # any lambda filter: Spark replaces array_compact by filter(x -> x IS NOT NULL), a higher-order function
    # interpreted row by row; it was most of this column's cost (benchmarks/results/2026-11-28-ingest-parse-cost.md).
    present = [F.coalesce(c, F.lit("")) for c in cols]
    tokens = F.array_distinct(F.array_remove(F.concat(F.array(*present), F.split(joined, "-")), ""))
    unparsed = parse_error.isNotNull() | joined.rlike(FIELD_SEPARATORS)
    if LANDING_FORMAT[source] == "jsonl":  # keys: occurrences of '":' (a quote inside a value only adds some)
        keys = (F.length("raw") - F.length(F.replace(F.col("raw"), F.lit('":'), F.lit("")))) / 2
        unparsed = unparsed | (keys > len(LANDING_COLUMNS[source]))
    return F.when(~unparsed, tokens)


@dataclass(frozen=True, order=True)
class Identifier:
    """One identifier of an erased (or accessed) person."""

    customer_id: str
    kind: str      # customer_id, device_id, contact (e-mail or phone), pseudo_id
    value: str


CONTACT = "contact"


@dataclass(frozen=True)
class Subject:
    """Every identifier of a batch of people; ``repr`` shows counts only (it holds personal data)."""

    identifiers: tuple[Identifier, ...]

    def values(self, *kinds: str) -> list[str]:
        return sorted({i.value for i in self.identifiers if i.kind in kinds})

    @property
    def customer_ids(self) -> list[str]:
        return self.values(CUSTOMER)

    @property
    def needles(self) -> list[str]:
        """Lower-cased identifiers that must not survive anywhere (pseudonyms excluded: see module docs)."""
        return sorted({v.lower() for v in self.values(CUSTOMER, DEVICE, CONTACT) if v})

    def arrays(self) -> dict[str, list[str]]:
        """Match sets of :func:`subject_frame`: values as found and lower-cased; text fields lower-cased."""
        def both(values: Iterable[str]) -> list[str]:
            return sorted({v for v in values if v} | {v.lower() for v in values if v})
        return {
            "_ids": both(self.values(CUSTOMER)),
            "_devices": both(self.values(DEVICE)),
            "_pseudonyms": both(self.values(PSEUDONYM)),
            "_fields": self.needles,
        }

    def __repr__(self) -> str:
        kinds = {k: len(self.values(k)) for k in (CUSTOMER, DEVICE, CONTACT, PSEUDONYM)}
        return f"Subject({kinds})"


_SET_OF = {CUSTOMER: "_ids", DEVICE: "_devices", PSEUDONYM: "_pseudonyms", TEXT: "_fields"}
_SUBJECT_SCHEMA = StructType([StructField("_set", StringType(), False), StructField("_v", StringType(), False)])


def _existing(spark: SparkSession, wh: io.Warehouse, layer: str, name: str) -> DataFrame | None:
    path = wh.table(layer, name)
    return io.read(spark, path) if io.exists(spark, path) else None


def landing_fields(lines: DataFrame, source: str) -> DataFrame:
    """Parse raw landing lines of ``source`` into its (string) contract columns, leniently."""
    schema = landing_string_schema(source)
    if LANDING_FORMAT[source] == "jsonl":
        parsed = F.from_json("raw", schema, {"mode": "PERMISSIVE"})
    else:
        parsed = F.from_csv("raw", schema.simpleString(), {"escape": '"', "mode": "PERMISSIVE"})
    return lines.select(parsed.alias("_p")).select("_p.*")


def _identifier_rows(df: DataFrame, kind: str, value: Column) -> DataFrame:
    return df.select(F.trim(F.col("customer_id")).alias("customer_id"), F.lit(kind).alias("kind"),
                     F.trim(value).alias("value"))


def find_subject(spark: SparkSession, wh: io.Warehouse, customer_ids: Sequence[str]) -> Subject:
    """Every identifier the warehouse holds for ``customer_ids`` (one small collect: a few rows per person).

    Device ids come from silver, raw and quarantined identity links, web profiles and activation lists; e-mail
    and phone from silver, raw and quarantined customer records (older addresses included); pseudonyms from
    every snapshot of the Ads & Data ledger.
    """
    ids = sorted({c.strip() for c in customer_ids if c and c.strip()})
    # Computed once: the query below reads it in every branch, and a frame made from a Python list is otherwise
    # pickled again by a Python worker at each read (benchmarks/results/2026-11-29-local-frames.md).
    wanted = io.materialise(spark.createDataFrame([(c,) for c in ids], "customer_id string"))
    parts: list[DataFrame] = [_identifier_rows(wanted, CUSTOMER, F.col("customer_id"))]

    def add(df: DataFrame | None, kind: str, *columns: str) -> None:
        if df is None:
            return
        present = [c for c in columns if c in df.columns]
        if "customer_id" not in df.columns or not present:
            return
        mine = df.join(wanted, F.trim(df["customer_id"]) == wanted["customer_id"], "left_semi")
        for c in present:
            value = F.explode_outer(c) if isinstance(df.schema[c].dataType, ArrayType) else F.col(c)
            parts.append(_identifier_rows(mine.select("customer_id", value.alias("_v")), kind, F.col("_v")))

    def raw_lines(source: str) -> DataFrame | None:
        frames = []
        bronze = _existing(spark, wh, "bronze", source)
        if bronze is not None:
            frames.append(bronze.select("raw"))
        quarantine = _existing(spark, wh, "ops", "quarantine")
        if quarantine is not None:
            frames.append(quarantine.where(F.col("source") == source).select("raw"))
        if not frames:
            return None
        return landing_fields(reduce(DataFrame.unionByName, frames), source)

    add(_existing(spark, wh, "silver", "identity_links"), DEVICE, "id_value")
    add(raw_lines("identity_links"), DEVICE, "id_value")
    add(_existing(spark, wh, "gold", "web_profiles"), DEVICE, "cookie_id", "mobile_ad_id")
    add(_existing(spark, wh, "gold", "activation_lists"), DEVICE, "ad_serving_id")
    add(_existing(spark, wh, "silver", "customers"), CONTACT, "email", "phone")
    add(raw_lines("customers"), CONTACT, "email", "phone")
    add(_existing(spark, wh, "ops", "adsdata_ledger"), PSEUDONYM, "pseudo_id")
    rows = (reduce(DataFrame.unionByName, parts)
            .where(F.col("value").isNotNull() & (F.col("value") != "")).distinct().collect())
    return Subject(tuple(sorted(Identifier(r.customer_id, r.kind, r.value) for r in rows)))


#: The tables an erasure learns from, erased after every other table (:func:`erasure_phases`): the person's
#: identifiers (:func:`find_subject`), then who is pending (``silver/erasure_requests``; ``silver/customers`` for
#: the customers past their retention, :func:`pipelines.rights.retention.expired_customer_requests`).
IDENTIFIER_SOURCES = frozenset({
    "bronze/customers", "bronze/identity_links", "silver/identity_links", "gold/web_profiles",
    "gold/activation_lists", "ops/quarantine", "ops/adsdata_ledger"})
PENDING_SOURCES = frozenset({"silver/erasure_requests", "silver/customers"})
#: Identifier sources that also hold rows found only through identifiers the *other* sources give: the
#: quarantine keeps rejected lines of every source, and a web-event line carries a cookie, no customer id.
#: Erased alone, before the other sources, while those can still name the cookie. Every row of the other
#: sources carries the customer id (a column, or a field of the raw line).
SOURCES_WITH_FOREIGN_ROWS = frozenset({"ops/quarantine"})


def erasure_phases(names: Iterable[str]) -> list[list[str]]:
    """``names`` in the order an erasure must process them, each phase started once the one before is erased
    and purged: every other table; the identifier sources that hold rows found through another source's
    identifiers (the quarantine); the other identifier sources; the tables that say who is pending.

    Why: an erasure can fail half-way (a lost executor, a full disk, a killed process). The tombstones are
    written first, but the rows left behind are only found again by the next run's erasure if the request is
    still pending and the person's identifiers can still be found; both live in tables the erasure deletes from.
    A failure in the first phase leaves every source. A failure in the quarantine's phase leaves the other
    sources (the tables of a phase are erased side by side, so one that fails does not stop the others: with
    the quarantine in the same phase as the identity links, a failed quarantine could be left holding a web-event
    line whose cookie no table names any more). A failure in the third phase leaves rows that all carry the
    customer id, and the request still pending."""
    names = sorted(names)
    sources = IDENTIFIER_SOURCES - SOURCES_WITH_FOREIGN_ROWS
    return [[n for n in names if n not in IDENTIFIER_SOURCES | PENDING_SOURCES],
            [n for n in names if n in SOURCES_WITH_FOREIGN_ROWS], [n for n in names if n in sources],
            [n for n in names if n in PENDING_SOURCES]]


def subject_frame(spark: SparkSession, subject: Subject) -> DataFrame:
    """The subject's identifiers as rows ``(_set, _v)``: which match set (``_ids``, ``_devices``, ``_pseudonyms``,
    ``_fields``, see :meth:`Subject.arrays`) and the value. Data, never literals in a plan or a Delta log."""
    rows = [(name, v) for name, values in subject.arrays().items() for v in values]
    return spark.createDataFrame(rows, _SUBJECT_SCHEMA)


def _locator_columns(rule: TableRule) -> list[str]:
    return list(dict.fromkeys(loc.column for loc in rule.locators))


def _probe(loc: Locator, schema: StructType) -> Column:
    """What of a row's locator column is looked up among the subject's values (one row per candidate).

    Free text: each lower-cased whole field and hyphen part (never inside a longer field, see :func:`text_fields`);
    a bronze line's tokens found at ingestion (:func:`line_identifiers`) when it has them; an array column: each
    element as it is (the match set holds every value as found and lower-cased); any other column: its lower-cased
    value.
    """
    target = F.col(f"`{loc.column}`")
    if loc.kind == TEXT and loc.column == "raw" and LINE_IDS in schema.fieldNames():
        return F.explode(F.coalesce(F.col(LINE_IDS), text_fields(target)))  # bronze: tokens found at ingestion
    if loc.kind == TEXT:
        return F.explode(text_fields(target))
    if isinstance(schema[loc.column].dataType, ArrayType):
        return F.explode(target)
    return F.lower(target)


def matched_keys(df: DataFrame, rule: TableRule, subject_df: DataFrame, own_rows_only: bool = False) -> DataFrame:
    """The distinct tuples of ``df``'s locator columns (as ``_key0``, ``_key1``, ...) that belong to the subject.

    Whether a row belongs to the person depends on its locator columns only, so these tuples say exactly which
    rows go. Each locator is an equi-join (hash or broadcast) of the column's candidates with the subject's
    values of its kind: the cost grows with rows plus identifiers, not rows times identifiers (before, each row
    was tested against arrays of every identifier, which at 100k customers kept an erasure running for hours).

    Erasure matches any identifier: a row holding the person's device id goes, even when it is linked to another
    customer too (the device id is the erased person's identifier as well). ``own_rows_only`` (access) keeps, in
    a table with a customer id, only the person's own rows, plus rows without any customer id that hold one of
    their identifiers (quarantined web events): another customer's rows are never shown to the requester.
    """
    columns = _locator_columns(rule)
    extra = [LINE_IDS] if LINE_IDS in df.columns and LINE_IDS not in columns else []
    keys = df.select(*[F.col(f"`{c}`") for c in columns + extra])
    customer = [loc.column for loc in rule.locators if loc.kind == CUSTOMER]
    parts = []
    for loc in rule.locators:
        candidates = keys
        if own_rows_only and customer and loc.kind != CUSTOMER:
            candidates = keys.where(reduce(lambda a, b: a & b, [F.col(f"`{c}`").isNull() for c in customer]))
        values = subject_df.where(F.col("_set") == _SET_OF[loc.kind]).select(F.col("_v").alias("_probe"))
        probed = candidates.select(*[F.col(f"`{c}`") for c in columns], _probe(loc, df.schema).alias("_probe"))
        parts.append(probed.join(F.broadcast(values), "_probe", "left_semi").drop("_probe"))
    keyed = reduce(DataFrame.unionByName, parts).distinct()
    # Renamed: a frame derived from the target would otherwise share its column ids, and a join or MERGE of
    # the two could not tell ``t.raw`` from ``s.raw``.
    return keyed.select(*[F.col(f"`{c}`").alias(f"_key{i}") for i, c in enumerate(columns)])


def _same_keys(columns: Sequence[str]) -> Column:
    """Target ``t`` row and :func:`matched_keys` tuple ``s`` agree on every locator column (null-safe equality:
    an equi-join whose recorded form names columns only)."""
    return reduce(lambda a, b: a & b, [F.col(f"t.`{c}`").eqNullSafe(F.col(f"s._key{i}")) for i, c in enumerate(columns)])


def matching_rows(df: DataFrame, rule: TableRule, subject_df: DataFrame, own_rows_only: bool = False) -> DataFrame:
    """The rows of ``df`` that belong to the subject under ``rule`` (what erasure deletes, what access shows)."""
    if rule.action == KEEP:
        return df.limit(0)
    keys = matched_keys(df, rule, subject_df, own_rows_only)
    return df.alias("t").join(keys.alias("s"), _same_keys(_locator_columns(rule)), "left_semi")


# ------------------------------------------------------------------------------------------- delete and purge

#: Columns of the one-row frame a Delta MERGE returns (``DeltaMergeBuilder.execute``): rows deleted, rows updated.
_MERGE_DELETED, _MERGE_UPDATED = "num_deleted_rows", "num_updated_rows"


def erase_rows(spark: SparkSession, path: Path, rule: TableRule, subject_df: DataFrame) -> int:
    """Delete (or scrub) the person's rows of one table in one MERGE; returns the rows affected.

    The MERGE source is the table's own matched locator tuples (:func:`matched_keys`), frozen first, and the
    condition is null-safe equality on those columns: an equi-join whose recorded predicate names columns only.
    Each target row matches at most one (distinct) tuple, as a scrub (an update) requires. No tuple, no MERGE.
    The count is the one the MERGE returns (the same figure as its commit's ``numTargetRowsDeleted`` or
    ``numTargetRowsUpdated``; reading the table history before and after cost two Spark jobs per table).
    """
    dt = DeltaTable.forPath(spark, str(path))
    target = dt.toDF()
    schema = target.schema
    keys = io.materialise(matched_keys(target, rule, subject_df))
    if keys.isEmpty():
        return 0
    merge = dt.alias("t").merge(keys.alias("s"), _same_keys(_locator_columns(rule)))
    if rule.action == SCRUB:
        merge = merge.whenMatchedUpdate(set={
            loc.column: F.lit(None).cast(schema[loc.column].dataType) for loc in rule.locators})
        metric = _MERGE_UPDATED
    else:
        merge = merge.whenMatchedDelete()
        metric = _MERGE_DELETED
    result = merge.execute().first()  # a local one-row frame: no Spark job
    return int(result[metric] or 0) if result is not None else 0


RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"

#: Tables erased and purged at the same time (see :func:`forget`).
ERASURE_THREADS = 4


_override_lock = threading.Lock()
_override_depth = [0, None]  # open blocks, setting before the first one


@contextmanager
def retention_check_disabled(spark: SparkSession) -> Iterator[None]:
    """Allow ``VACUUM ... RETAIN 0 HOURS`` for the block only (see "Retention override" in the module docs).

    Re-entrant and thread-safe: erasure purges tables in parallel threads; the setting is restored when the
    last open block ends.
    """
    with _override_lock:
        if _override_depth[0] == 0:
            _override_depth[1] = spark.conf.get(RETENTION_CHECK, None)
            spark.conf.set(RETENTION_CHECK, "false")
        _override_depth[0] += 1
    try:
        yield
    finally:
        with _override_lock:
            _override_depth[0] -= 1
            if _override_depth[0] == 0:
                previous = _override_depth[1]
                if previous is None:
                    spark.conf.unset(RETENTION_CHECK)
                else:
                    spark.conf.set(RETENTION_CHECK, previous)


def _sql_path(path: Path) -> str:
    text = str(path)
    if "`" in text:
        raise ValueError(f"table path with a backtick is not supported: {text}")
    return f"delta.`{text}`"


def _delta_log(spark: SparkSession, path: Path):
    jvm = spark._jvm
    return jvm.org.apache.spark.sql.delta.DeltaLog.forTable(spark._jsparkSession, str(path))


def _fresh_snapshot(spark: SparkSession, path: Path):
    none = spark._jvm.scala.Option.empty()
    return _delta_log(spark, path).update(False, none, none)


def has_deletion_vectors(spark: SparkSession, path: Path) -> bool:
    """Whether live files of the table carry deletion vectors (rows hidden but still in the files).

    A table whose protocol lacks the ``deletionVectors`` feature cannot have any (new tables: pipelines/spark.py).
    Otherwise the snapshot's checksum gives the count when it has one, else the live file list is asked. Before,
    a missing checksum count meant "assume yes": every table without vectors got a REORG on every purge, which
    cost a job per table and, on a cluster, failed (Delta 4.1's REORG asks for an active SparkSession on the
    executors; tests/integration/test_cluster.py).
    """
    try:
        snapshot = _fresh_snapshot(spark, path)
        if not snapshot.protocol().readerFeatureNames().contains("deletionVectors"):
            return False
        count = snapshot.numDeletionVectorsOpt()
        if count.isDefined():
            return int(count.get()) > 0
        return snapshot.allFiles().toDF().where("deletionVector IS NOT NULL").limit(1).count() > 0
    except Exception:  # internal API changed: assume yes (a needless REORG costs time, a missed one leaves rows)
        return True


def purge_deletion_vectors(spark: SparkSession, path: Path) -> bool:
    """``REORG TABLE ... APPLY (PURGE)``: rewrite files whose rows are only hidden by deletion vectors."""
    if not has_deletion_vectors(spark, path):
        return False
    spark.sql(f"REORG TABLE {_sql_path(path)} APPLY (PURGE)").collect()
    return True


def vacuum_now(spark: SparkSession, path: Path, live: set[Path] | None = None) -> int | None:
    """``VACUUM ... RETAIN 0 HOURS``: delete every file no longer in the current version, right now.

    Returns the files deleted, or None when Delta's own ``VACUUM`` did the work.

    **Why not always Delta's VACUUM.** An erasure purges some forty small tables. Delta's ``VACUUM`` runs a
    distributed listing, an anti-join against the table state and two commits (VACUUM START/END) per table:
    about three seconds each on a two-core machine, most of an erasure's time (measured: benchmarks/results/
    erasure-purge.md). With a zero retention the rule is simple: every data file not referenced by the current
    snapshot goes. So when the table is local, has no live deletion vector (erasure REORGs them away first), no
    change-data directory, and every live file is found on disk under its decoded relative path, those files
    are deleted here directly from the snapshot's file list. In any other case (a remote store, an unexpected
    layout, a path that does not decode to a file on disk) Delta's VACUUM runs instead, so a mismatch can only
    cost time, never delete a live file. ``live`` is the snapshot's file list when the caller already has it
    (:func:`checkpointed_live_files`, right after :func:`compact_history`); otherwise Spark computes it. Hidden
    files (``.`` or ``_``) are left alone like Delta does, except the ``.crc`` checksum companion of a deleted
    file.
    """
    deleted = _vacuum_local(spark, Path(path), live)
    if deleted is None:
        with retention_check_disabled(spark):
            DeltaTable.forPath(spark, str(path)).vacuum(0.0)
    return deleted


def _live_files(spark: SparkSession, root: Path) -> set[Path] | None:
    """Absolute paths of the current snapshot's data files, or None when the direct purge must not be used."""
    snapshot = _fresh_snapshot(spark, root)
    files = DataFrame(snapshot.allFiles().toDF(), spark).select(
        "path", F.col("deletionVector").isNotNull().alias("dv")).collect()
    return _local_paths(root, ((row.path, row.dv) for row in files))


def _local_paths(root: Path, files: Iterable[tuple[str, bool]]) -> set[Path] | None:
    """Absolute paths of a snapshot's files given as (relative path as in the log, has a deletion vector), or
    None when one of them keeps the direct purge from being used."""
    live: set[Path] = set()
    for path, dv in files:
        if not path or dv or "://" in path or path.startswith(("/", "file:")):
            return None  # deletion vector files to keep, or a file outside the table directory
        live.add(root / unquote(path))
    return live


def _vacuum_local(spark: SparkSession, root: Path, live: set[Path] | None = None) -> int | None:
    if not root.is_dir() or (root / "_change_data").exists():
        return None
    live = _live_files(spark, root) if live is None else live
    if live is None:
        return None
    on_disk: list[Path] = []
    for parent, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        on_disk.extend(Path(parent) / n for n in names if not n.startswith(("_", ".")))
    if not live <= set(on_disk):
        return None  # a live file we cannot see: let Delta decide
    doomed = [f for f in on_disk if f not in live]
    for f in doomed:
        f.unlink()
        f.with_name(f".{f.name}.crc").unlink(missing_ok=True)
    for parent, dirs, names in os.walk(root, topdown=False):  # empty partition directories, as VACUUM does
        here = Path(parent)
        hidden = any(part.startswith(("_", ".")) for part in here.relative_to(root).parts)
        if here != root and not hidden and not any(here.iterdir()):
            here.rmdir()
    return len(doomed)


#: Versioned files of ``_delta_log``: commits, checksums, checkpoints, compacted commits and their .crc companions.
_LOG_FILE = re.compile(r"^\.?(\d{20})\.")


def compact_history(spark: SparkSession, path: Path) -> int:
    """Checkpoint the current version, then delete every older log entry; returns the files deleted.

    Older commits and checksums carry the column statistics (min/max values) of files that held the person;
    after the checkpoint, the table is fully described by it and the commits after it.
    """
    snapshot = _fresh_snapshot(spark, path)
    _delta_log(spark, path).checkpoint(snapshot, spark._jvm.scala.Option.empty())
    version = int(snapshot.version())
    removed = 0
    for f in sorted((Path(path) / "_delta_log").iterdir()):
        m = _LOG_FILE.match(f.name)
        if f.is_file() and m and int(m.group(1)) < version:
            f.unlink()
            removed += 1
    # Cached snapshots of this table still point at the deleted files. Only this table's entry is dropped:
    # clearing the whole cache (as before) made every other table of a threaded erasure rebuild its state.
    jvm = spark._jvm
    jvm.org.apache.spark.sql.delta.DeltaLog.invalidateCache(
        spark._jsparkSession, jvm.org.apache.hadoop.fs.Path(str(path)))
    return removed


_CLASSIC_CHECKPOINT = re.compile(r"^(\d{20})\.checkpoint\.parquet$")
_COMMIT = re.compile(r"^(\d{20})\.json$")


def checkpointed_live_files(root: Path) -> set[Path] | None:
    """The table's live data files, read from its checkpoint when the log is one checkpoint and nothing after it
    (as :func:`compact_history` leaves it), or None.

    The checkpoint is the table state Delta itself wrote (one ``add`` row per live file), so reading its ``add``
    paths with pyarrow gives the list :func:`_live_files` would compute, without a Spark job to rebuild the state
    (the cache of the table's snapshot was just dropped). Only a single-file classic checkpoint qualifies, with no
    commit after it, no deletion vector, paths inside the table directory, and as many files as the version's
    checksum (``.crc``) counts; in any other case None, and :func:`vacuum_now` asks Spark.
    """
    log = Path(root) / "_delta_log"
    if not log.is_dir():
        return None
    names = [f.name for f in log.iterdir() if f.is_file()]
    checkpoints = [int(m.group(1)) for m in map(_CLASSIC_CHECKPOINT.match, names) if m]
    if len(checkpoints) != 1 or any(n.startswith(f"{checkpoints[0]:020d}.checkpoint.") and not
                                    _CLASSIC_CHECKPOINT.match(n) for n in names):
        return None
    version = checkpoints[0]
    if any(int(m.group(1)) > version for m in map(_COMMIT.match, names) if m):
        return None
    try:
        counted = json.loads((log / f"{version:020d}.crc").read_text(encoding="utf-8"))["numFiles"]
        import pyarrow.parquet as pq  # one row per action: small next to the data

        add = pq.read_table(log / f"{version:020d}.checkpoint.parquet", columns=["add"]).column("add").combine_chunks()
        columns = (add.is_valid(), add.field("path"), add.field("deletionVector").is_valid())
        files = [(path, dv) for present, path, dv in zip(*(c.to_pylist() for c in columns)) if present]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    live = _local_paths(Path(root), files)
    return live if live is not None and len(live) == len(files) == int(counted) else None


def log_mentions(path: Path, needles: Needles | Sequence[str]) -> list[str]:
    """Files of the table's ``_delta_log`` whose content mentions one of ``needles`` whole (:meth:`Needles.occur_in`).

    JSON commits, checksums (they list every file with its statistics) and checkpoint Parquet files (decoded).
    """
    needles = needles if isinstance(needles, Needles) else Needles(needles)
    if not needles:
        return []
    return [name for name, text in log_texts(path) if needles.occur_in(text)]


def log_texts(path: Path) -> Iterator[tuple[str, str]]:
    """Name and text of every file of the table's ``_delta_log``, checkpoint Parquet files decoded to JSON."""
    for f in sorted((Path(path) / "_delta_log").rglob("*")):
        if not f.is_file():
            continue
        if f.suffix == ".parquet":
            import pyarrow.parquet as pq  # the checkpoint is small: one row per live file

            yield f.name, json.dumps(pq.read_table(f).to_pylist(), default=str)
        else:
            yield f.name, f.read_bytes().decode("utf-8", errors="replace")


@dataclass(frozen=True)
class PurgeResult:
    reorganised: bool
    log_files_removed: int


def purge_table(spark: SparkSession, path: Path, needles: Needles | Sequence[str],
                force_compaction: bool = False) -> PurgeResult:
    """Physically remove what was deleted: REORG (deletion vectors), old log entries if needed, VACUUM 0.

    The log is compacted before the VACUUM: the checkpoint it writes then gives the VACUUM its list of live files
    (:func:`checkpointed_live_files`) without a Spark job."""
    reorganised = purge_deletion_vectors(spark, path)
    removed, live = 0, None
    if force_compaction or log_mentions(path, needles):
        removed = compact_history(spark, path)
        live = checkpointed_live_files(path)
    vacuum_now(spark, path, live)
    return PurgeResult(reorganised, removed)


# ------------------------------------------------------------------------------------------- tombstones

TOMBSTONES = StructType([
    StructField("tombstone", StringType(), False),
    StructField("key_id", StringType(), False),
    StructField("kind", StringType(), False),
    StructField("request_id", StringType(), True),
    StructField("erased_on", DateType(), False),
])
TOMBSTONE_NAMESPACE = "tombstone"


def tombstones_path(wh: io.Warehouse) -> Path:
    return wh.table("ops", "tombstones")


def tombstone_message(value: Column) -> Column:
    """The hashed message: ``"tombstone:" + lower(trim(value))`` (customer and device ids alike)."""
    return F.concat(F.lit(f"{TOMBSTONE_NAMESPACE}:"), F.lower(F.trim(value)))


REDACTED = "[erased]"


class Needles:
    """A batch's identifiers (lower-cased), found and redacted in text in time independent of their number.

    A daily erasure at a million customers has about ten thousand people and seventy thousand identifiers. One
    ``re.sub`` per identifier and text (what :meth:`redact` replaced) made seven hundred million regex calls for
    the request ids alone, hours of driver time; one substring search per identifier and transaction-log file
    (what :meth:`occur_in` replaced) read the log seventy thousand times. Both now look up, at each position, the
    substrings of the identifiers' few distinct lengths in a set, longest first: a text costs its length times
    the number of distinct lengths. :meth:`occur_in` first cuts the text into runs of the characters identifiers
    are made of (any occurrence lies inside one run) and looks at each distinct run once: a transaction log
    repeats the same paths and values many times. :meth:`redact` replaces any substring (a request id loses too
    much rather than too little); :meth:`occur_in` finds whole identifiers only (see there why).

        >>> Needles(["c01", "ck-9"]).redact("ERQ-1-C01/CK-9")
        'ERQ-1-[erased]/[erased]'
        >>> Needles(["c01"]).occur_in('{"minValues":{"customer_id":"C01"}}'), Needles(["c01"]).occur_in("c012")
        (True, False)
    """

    def __init__(self, needles: Iterable[str]) -> None:
        self._set = frozenset(n.lower() for n in needles if n)
        self._lengths = sorted({len(n) for n in self._set}, reverse=True)
        alphabet = "".join(sorted({c for n in self._set for c in n}))
        self._runs = re.compile(f"[{re.escape(alphabet)}]+") if alphabet else None

    def __bool__(self) -> bool:
        return bool(self._set)

    def _width_at(self, folded: str, i: int) -> int:
        """Length of the longest identifier starting at ``folded[i]``, 0 if none does."""
        room = len(folded) - i
        return next((w for w in self._lengths if w <= room and folded[i:i + w] in self._set), 0)

    def occur_in(self, text: str) -> bool:
        """Whether any identifier occurs in ``text`` whole: case-insensitive, and not part of a longer run of letters
        and digits (``c01`` occurs in ``"x":"c01"`` and in ``erq-7-c01``, not in ``c012`` nor in ``xc01``).

        Whole, not as any substring: the transaction log keeps min/max statistics of the people who remain, and
        a short identifier of an erased person (a malformed decoder id ``pxd12`` from a quarantined line) is a
        substring of someone else's (``pxd12345678``). With substrings, the erasure's check failed the 1M
        benchmark run on such a statistic although nothing of the person was left.
        """
        if not self._set or self._runs is None:
            return False
        folded, seen = text.lower(), set()
        for m in self._runs.finditer(folded):
            start, end = m.span()
            key = (m.group(), start > 0 and folded[start - 1].isalnum(), end < len(folded) and folded[end].isalnum())
            if key not in seen:
                seen.add(key)
                if self._whole_in(*key):
                    return True
        return False

    def _whole_in(self, run: str, alnum_before: bool, alnum_after: bool) -> bool:
        """Whether an identifier lies in ``run`` with no letter or digit right before or after it."""
        n = len(run)
        for i in range(n - self._lengths[-1] + 1):
            if run[i - 1].isalnum() if i else alnum_before:
                continue
            for w in self._lengths:  # every length: a longer match may run into a letter where a shorter one ends
                if w <= n - i and run[i:i + w] in self._set and not (run[i + w].isalnum() if i + w < n else alnum_after):
                    return True
        return False

    def redact(self, text: str | None) -> str | None:
        """``text`` with every occurrence of an identifier replaced by ``[erased]`` (case-insensitive).

        Every occurrence in the text overlaps a replaced span, so none survives whole.
        """
        if not text or not self._set:
            return text
        folded, origin = text.lower(), None
        if len(folded) != len(text):  # a character lower-cases to several ("İ"): map positions back
            pieces = [c.lower() for c in text]
            folded, origin = "".join(pieces), [k for k, piece in enumerate(pieces) for _ in piece]
        spans, i = [], 0
        while i < len(folded):
            width = self._width_at(folded, i)
            if width:
                spans.append((i, i + width))
            i += width or 1
        if origin is not None:
            spans = [(origin[start], origin[end - 1] + 1) for start, end in spans]
        parts: list[str] = []
        kept = 0
        for start, end in spans:
            if end > kept:
                parts += [text[kept:max(start, kept)], REDACTED] if start >= kept else [REDACTED]
                kept = end
        parts.append(text[kept:])
        return "".join(parts)


def redacted(text: str | None, needles: Iterable[str]) -> str | None:
    """``text`` with every occurrence of an identifier replaced by ``[erased]``.

    Request ids are kept with the tombstones (the access report shows them to an erased person who asks), but
    operators often build them from the customer id ("ERQ-20261113-C01448380"): stored as they are, they would
    name the person the tombstone is meant to hide. Every identifier of the whole batch is a needle (a request id
    may name another person of the batch). Many texts: build one :class:`Needles` and call its ``redact``.
    """
    return Needles(needles).redact(text)


def tombstone_rows(spark: SparkSession, subject: Subject, keys: KeyRing, request_ids: Mapping[str, str],
                   day: date) -> DataFrame:
    """Tombstones of the subject's customer and device ids under the active internal key (no plaintext)."""
    rows = [(i.value, i.kind, request_ids.get(i.customer_id)) for i in subject.identifiers if i.kind in (CUSTOMER, DEVICE)]
    values = spark.createDataFrame(rows, "value string, kind string, request_id string")
    hashed = keyed_hash(values, hmac_pads(keys.active(INTERNAL)), tombstone_message(F.col("value")), out="tombstone")
    return hashed.select("tombstone", "key_id", "kind", "request_id", F.lit(day).cast(DateType()).alias("erased_on"))


def tombstoned(spark: SparkSession, wh: io.Warehouse, keys: KeyRing) -> DataFrame:
    """``ops/tombstones`` (tombstone, key_id, kind, request_id, erased_on); empty when nobody was erased.

    Raises :class:`TombstoneKeyMissing` when a tombstone's internal key is no longer in the key file: those
    people could otherwise come back with the next re-ingestion.
    """
    df = io.read(spark, tombstones_path(wh), TOMBSTONES)
    known = {k.key_id for k in keys.all_keys(INTERNAL)}
    used = {r.key_id for r in df.select("key_id").distinct().collect()}  # a handful of key ids
    missing = sorted(used - known)
    if missing:
        raise TombstoneKeyMissing(
            f"erasure tombstones use internal key(s) {', '.join(missing)}, which the key file no longer holds; "
            "restore the retired key(s), or erased people could be re-ingested")
    return df


def without_tombstoned(lines: DataFrame, tombstones: DataFrame, keys: KeyRing, column: str = "raw") -> DataFrame:
    """Drop the raw landing lines that hold a tombstoned customer or device id as a whole field.

    Each distinct field of the batch is hashed once per internal key (built-in SHA-256, no UDF) and equi-joined
    with the tombstones; the lines holding one of the few dead fields are found by another equi-join and left
    out (an anti-join on the line). Rows plus tombstones, not rows times tombstones: tombstones only grow.
    """
    fields = lines.select(F.col(column).alias("_line"), F.explode(text_fields(F.col(column))).alias("_field"))
    distinct = fields.select("_field").where(F.length("_field") > 0).distinct()
    dead: DataFrame | None = None
    for key in keys.all_keys(INTERNAL):
        mine = tombstones.where(F.col("key_id") == key.key_id).select(F.col("tombstone").alias("_tomb"))
        hashed = keyed_hash(distinct, hmac_pads(key), tombstone_message(F.col("_field")), out="_tomb")
        part = hashed.join(mine, "_tomb", "left_semi").select("_field")
        dead = part if dead is None else dead.unionByName(part)
    if dead is None:
        return lines
    dead_lines = fields.join(F.broadcast(dead.distinct()), "_field", "left_semi").select("_line").distinct()
    return lines.alias("l").join(dead_lines.alias("d"), F.col(f"l.`{column}`").eqNullSafe(F.col("d._line")),
                                 "left_anti")


def tombstone_filter(spark: SparkSession, wh: io.Warehouse, keys: KeyRing) -> Callable[[DataFrame], DataFrame]:
    """The filter ingestion applies to raw lines (column ``raw``) before storing anything: see module docs.

    Identity when nobody was ever erased, so the usual run pays nothing.
    """
    tombs = tombstoned(spark, wh, keys)
    if tombs.isEmpty():
        return lambda lines: lines
    tombs = io.materialise(tombs.select("tombstone", "key_id"))
    return lambda lines: without_tombstoned(lines, tombs, keys)


# ------------------------------------------------------------------------------------------- forget

@dataclass(frozen=True)
class ErasureReport:
    """What one erasure did: counts and table names only, never an identifier."""

    people: int = 0
    requests: tuple[str, ...] = ()
    rows_deleted: Mapping[str, int] = field(default_factory=dict)
    rows_scrubbed: Mapping[str, int] = field(default_factory=dict)
    tables_purged: int = 0
    histories_compacted: tuple[str, ...] = ()
    unmapped_tables: tuple[str, ...] = ()
    tombstones: int = 0
    pending_revocations: int = 0

    def summary(self) -> str:
        deleted = sum(self.rows_deleted.values())
        tables = sum(1 for v in self.rows_deleted.values() if v)
        text = (f"erased {self.people} person(s): {deleted} rows deleted in {tables} tables, "
                f"{sum(self.rows_scrubbed.values())} ledger rows scrubbed, {self.tables_purged} tables purged, "
                f"{len(self.histories_compacted)} table histories compacted, {self.tombstones} tombstones; "
                f"{self.pending_revocations} Ads & Data pseudonym(s) revoked at the next delivery")
        if self.unmapped_tables:
            text += f"; WARNING tables missing from the erasure map (searched generically): {', '.join(self.unmapped_tables)}"
        return text

    def metrics(self, prefix: str = "erasure") -> dict[str, float]:
        return {
            f"{prefix}.people": float(self.people),
            f"{prefix}.requests": float(len(self.requests)),
            f"{prefix}.rows_deleted": float(sum(self.rows_deleted.values())),
            f"{prefix}.rows_scrubbed": float(sum(self.rows_scrubbed.values())),
            f"{prefix}.tables_purged": float(self.tables_purged),
            f"{prefix}.histories_compacted": float(len(self.histories_compacted)),
            f"{prefix}.unmapped_tables": float(len(self.unmapped_tables)),
            f"{prefix}.tombstones": float(self.tombstones),
            f"{prefix}.pending_revocations": float(self.pending_revocations),
        }


def _plan(spark: SparkSession, wh: io.Warehouse) -> tuple[dict[str, tuple[Path, TableRule]], list[str]]:
    """Every table with its rule (checked against its schema before anything is deleted), and the unmapped."""
    plan: dict[str, tuple[Path, TableRule]] = {}
    unmapped = []
    for path in wh.all_tables():
        name = table_name(wh, path)
        schema = io.read(spark, path).schema
        rule = rule_for(name)
        if rule is None:
            unmapped.append(name)
            rule = generic_rule(name, schema)
        check_rule(rule, name, schema)
        plan[name] = (path, rule)
    return plan, unmapped


def _pending_revocations(spark: SparkSession, wh: io.Warehouse, subject: Subject) -> int:
    ledger = _existing(spark, wh, "ops", "adsdata_ledger")
    if ledger is None or not subject.values(PSEUDONYM):
        return 0
    latest = ledger.agg(F.max("as_of")).first()[0]
    mine = ledger.where((F.col("as_of") == F.lit(latest)) & F.col("revoked_at").isNull())
    ids = spark.createDataFrame([(c,) for c in subject.customer_ids], "customer_id string")
    return mine.join(ids, "customer_id", "left_semi").count()


def _bytes_on_disk(root: Path) -> int:
    """Bytes of the table's files under ``root`` (0 when it is not a local directory): the order of work only."""
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(root) for f in names)


def _local_day(now: datetime, tz: str) -> date:
    return (now if now.tzinfo else now.replace(tzinfo=ZoneInfo("UTC"))).astimezone(ZoneInfo(tz)).date()


def forget(
    spark: SparkSession,
    settings: Settings,
    wh: io.Warehouse,
    customer_ids: list[str],
    keys: KeyRing,
    now: datetime,
    *,
    request_ids: Mapping[str, str] | None = None,
) -> ErasureReport:
    """Erase ``customer_ids`` from every table and every old table version (R1); see the module docs.

    ``request_ids`` maps a customer id to its erasure request id (recorded with the tombstones); ``audience
    forget`` uses ``manual-<timestamp>``. The caller holds the warehouse lock. Idempotent: erasing an erased
    person again finds nothing and changes nothing but the purge.
    """
    ids = sorted({c.strip() for c in customer_ids if c and c.strip()})
    if not ids:
        return ErasureReport()
    default_request = f"manual-{now:%Y%m%dT%H%M%S}"
    requests = {c: (request_ids or {}).get(c) or default_request for c in ids}
    plan, unmapped = _plan(spark, wh)  # fails before any change when the map does not fit a table
    subject = find_subject(spark, wh, ids)
    needles = Needles(subject.needles)
    requests = {c: needles.redact(r) for c, r in requests.items()}  # kept with the tombstones: see redacted()
    pending = _pending_revocations(spark, wh, subject)

    # Tombstones first: from here on, no ingestion can bring the person back, even if the rest fails.
    tombs = tombstone_rows(spark, subject, keys, requests, _local_day(now, settings.timezone))
    io.insert_new(tombs, tombstones_path(wh), ("tombstone", "key_id"))
    n_tombstones = len([i for i in subject.identifiers if i.kind in (CUSTOMER, DEVICE)])

    source = io.materialise(subject_frame(spark, subject))

    # Per table: delete (or scrub) the person's rows, then purge every table that can hold a person, matched or
    # not: an older version may hold them (a profile overwritten after a withdrawal). Tables that hold nobody
    # have nothing to purge. Tables are independent, so they are processed by a few threads: most of the time of
    # a MERGE, REORG or VACUUM on a small table is driver-side latency, not CPU.
    def erase_and_purge(name: str, path: Path, rule: TableRule) -> tuple[int, PurgeResult]:
        n = erase_rows(spark, path, rule, source)
        return n, purge_table(spark, path, needles, force_compaction=n > 0)

    todo = sorted((name, path, rule) for name, (path, rule) in plan.items() if rule.action != KEEP)
    done: dict[str, tuple[int, PurgeResult]] = {}
    with retention_check_disabled(spark), ThreadPoolExecutor(max_workers=ERASURE_THREADS) as pool:
        for phase in erasure_phases(name for name, _, _ in todo):  # tables the rerun needs go last
            # Biggest first, so that the end of a phase does not wait on one big table started last.
            batch = sorted((t for t in todo if t[0] in phase), key=lambda t: -_bytes_on_disk(t[1]))
            done.update(zip([t[0] for t in batch], pool.map(lambda t: erase_and_purge(*t), batch)))
    deleted = {name: n for (name, _, rule) in todo for n in [done[name][0]] if rule.action != SCRUB}
    scrubbed = {name: n for (name, _, rule) in todo for n in [done[name][0]] if rule.action == SCRUB}
    compacted = [name for name in sorted(done) if done[name][1].log_files_removed]
    purged = todo
    # Verification covers every table, so a table wrongly declared as holding nobody is caught too.
    left = sorted(n for n, p in ((table_name(wh, p), p) for p in wh.all_tables()) if log_mentions(p, needles))
    if left:
        raise ErasureIncomplete(f"after the purge, the transaction log of {', '.join(left)} still mentions an erased person")
    return ErasureReport(
        people=len(ids), requests=tuple(sorted(set(requests.values()))), rows_deleted=deleted,
        rows_scrubbed=scrubbed, tables_purged=len(purged), histories_compacted=tuple(compacted),
        unmapped_tables=tuple(unmapped), tombstones=n_tombstones, pending_revocations=pending,
    )


def stage_erasure(ctx: RunContext, elig: DataFrame | None = None, *,
                  expired: Mapping[str, str] | None = None) -> ErasureReport:
    """Daily-run stage: erase everyone with a pending request in ``silver/erasure_requests``, and the customers
    in ``expired`` (customer id -> request id: those past their retention, see
    :func:`pipelines.rights.retention.expired_customer_requests`), in one :func:`forget`.

    The daily job runs it at the end of ingestion (:func:`pipelines.jobs.daily.stage_ingest`): every source of
    the run is in by then, so one erasure covers what today's files brought as well; and it vacuums files, so it
    must run before the gate, while no DataFrame of the run is reading the warehouse. One forget for everyone:
    its cost is per table, hardly per person. ``elig`` is accepted for the stage signature and not used.
    A request takes effect at once, whatever its ``requested_at``; processed requests leave
    ``silver/erasure_requests`` (their ids stay with the tombstones). Metrics ``erasure.*`` and
    ``retention.customers.erased``; ``erasure.quarantined_requests`` counts rejected request lines, which need
    an operator (an erasure request must never be lost silently).
    """
    with ctx.progress.stage("erasure") as counts:
        pending = (ctx.silver("erasure_requests").where(F.col("customer_id").isNotNull())
                   .groupBy("customer_id").agg(F.array_sort(F.collect_set("request_id")).alias("requests"))
                   .collect())  # pending requests only: processed ones are deleted
        requests = {r.customer_id: ",".join(x for x in r.requests if x) for r in pending}
        past_retention = {c: r for c, r in (expired or {}).items() if c not in requests}
        report = ErasureReport()
        if requests or past_retention:
            report = forget(ctx.spark, ctx.settings, ctx.wh, [*requests, *past_retention], ctx.keys, ctx.started,
                            request_ids={**requests, **past_retention})
        quarantine = _existing(ctx.spark, ctx.wh, "ops", "quarantine")
        rejected = 0 if quarantine is None else quarantine.where(
            (F.col("source") == "erasure_requests") & ~F.col("reason").startswith("duplicate")).count()
        ctx.metrics.update(report.metrics())
        ctx.metrics["erasure.quarantined_requests"] = float(rejected)
        ctx.metrics["retention.customers.erased"] = float(len(past_retention))
        counts.update(people=report.people, rows=sum(report.rows_deleted.values()), rejected_requests=rejected,
                      past_retention=len(past_retention))
    return report


# ------------------------------------------------------------------------------------------- verification

def files_mentioning(root: Path, needles: Sequence[str]) -> list[str]:
    """Every file under ``root`` (data, deletion vectors, logs, checkpoints, exports, reports) that mentions a
    needle: Parquet decoded (every column, every row group, footer statistics), other files as bytes.

    Used by the tests of R1 and by operators who want proof; reads everything, so it is not part of ``forget``.
    """
    import pyarrow.parquet as pq

    lowered = [n.lower() for n in needles if n]
    hits = []
    for f in sorted(Path(root).rglob("*")):
        if not f.is_file():
            continue
        texts = [f.read_bytes().decode("latin-1").lower()]
        if f.suffix == ".parquet":
            pf = pq.ParquetFile(f)
            texts.append(json.dumps(pf.read().to_pylist(), default=str).lower())
            md = pf.metadata
            for i in range(md.num_row_groups):
                for j in range(md.num_columns):
                    st = md.row_group(i).column(j).statistics
                    if st is not None and st.has_min_max:
                        texts.append(f"{st.min!s} {st.max!s}".lower())
        if any(n in t for t in texts for n in lowered):
            hits.append(str(f.relative_to(root)))
    return hits


__all__ = [
    "CUSTOMER", "DEVICE", "PSEUDONYM", "TEXT", "DELETE", "SCRUB", "KEEP", "Locator", "TableRule", "ERASURE_MAP",
    "IDENTIFYING_COLUMNS", "ErasureMapError", "ErasureIncomplete", "TombstoneKeyMissing", "table_name", "rule_for",
    "generic_rule", "unmapped_tables", "check_rule", "text_fields", "landing_fields", "Identifier", "Subject", "find_subject",
    "IDENTIFIER_SOURCES", "PENDING_SOURCES", "SOURCES_WITH_FOREIGN_ROWS", "erasure_phases",
    "subject_frame", "matched_keys", "matching_rows", "erase_rows", "retention_check_disabled", "has_deletion_vectors",
    "purge_deletion_vectors", "vacuum_now", "compact_history", "log_mentions", "log_texts", "Needles", "purge_table", "TOMBSTONES",
    "tombstones_path", "tombstone_message", "tombstone_rows", "tombstoned", "without_tombstoned", "tombstone_filter",
    "ErasureReport", "forget", "stage_erasure", "files_mentioning",
]
