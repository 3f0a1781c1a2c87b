"""Compile a segment rule into one Spark boolean ``Column`` (built-in functions only).

Attribute names are looked up in the catalogue, which gives the column; values travel as literals.
No SQL text from a definition file ever reaches Spark, so a definition cannot inject an expression.

Null semantics (documented in ``segments/README.md``): every condition is false when its data is
missing (``coalesce(condition, false)``), so ``not`` is a plain complement: ``not: {gender: [F]}``
includes people whose gender is unknown, while ``gender: {not_in: [F]}`` requires a known gender.
Every segment also carries an age guard (``age >= minimum_age``, C5) on top of its rule, whatever
the profiles already guarantee.

Example (with an active SparkSession)::

    >>> from pipelines.config import CONF_DIR
    >>> from pipelines.segments.catalogue import load_catalogue
    >>> from pipelines.segments.model import parse_rule_text
    >>> rule, _ = parse_rule_text("all: [{age: {min: 25, max: 34}}, {not: {gender: [F]}}]")
    >>> str(rule_column(rule, load_catalogue(CONF_DIR)))  # doctest: +SKIP
    "Column<'(coalesce(((age >= 25) AND (age <= 34)), false) AND (NOT coalesce((gender IN (F)), false)))'>"
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, StringType, StructField, StructType

from pipelines.segments.catalogue import (
    ArrayHas,
    Between,
    Catalogue,
    InterestScore,
    InValues,
    IsBool,
    Predicate,
    RecencyDays,
)
from pipelines.segments.model import AllOf, AnyOf, Condition, Node, Not, SegmentDefinition

#: ``gold/segment_membership``: one row per customer, segment and channel.
SEGMENT_MEMBERSHIP = StructType([
    StructField("segment", StringType(), False),
    StructField("channel", StringType(), False),
    StructField("customer_id", StringType(), False),
    StructField("as_of", DateType(), False),
])


class SegmentCompileError(ValueError):
    """A rule uses something the catalogue refuses; validate the definitions first."""


def _values(values: Sequence[object]) -> Column:
    return F.array(*[F.lit(v) for v in values])


def predicate_column(p: Predicate) -> Column:
    """The Spark condition of one predicate; null (missing data) is turned into false."""
    if isinstance(p, InValues):
        inside = F.col(p.column).isin(list(p.values)) if p.values else F.lit(False)
        expr = F.col(p.column).isNotNull() & ~inside if p.negated else inside
    elif isinstance(p, Between):
        bounds = ([F.col(p.column) >= p.low] if p.low is not None else []) + \
                 ([F.col(p.column) <= p.high] if p.high is not None else [])
        expr = reduce(lambda a, b: a & b, bounds) if bounds else F.col(p.column).isNotNull()
    elif isinstance(p, IsBool):
        expr = F.col(p.column) == F.lit(p.value)
    elif isinstance(p, ArrayHas):
        # A missing array (no purchase, no service) counts as empty: "none of" holds for it.
        arr = F.coalesce(F.col(p.column), F.array().cast("array<string>"))
        if not p.values:
            expr = F.lit(p.mode != "any_of")
        elif p.mode == "any_of":
            expr = F.arrays_overlap(arr, _values(p.values))
        elif p.mode == "all_of":
            expr = reduce(lambda a, b: a & b, [F.array_contains(arr, v) for v in p.values])
        else:
            expr = ~F.arrays_overlap(arr, _values(p.values))
    elif isinstance(p, InterestScore):
        ids = list(p.ids)
        min_score = p.min_score

        def matches(x: Column) -> Column:
            same = x["iab_audience_id"] == ids[0] if len(ids) == 1 else x["iab_audience_id"].isin(ids)
            return same & (x["score"] >= min_score) if min_score is not None else same

        expr = F.exists(p.column, matches)
    elif isinstance(p, RecencyDays):
        bounds = ([F.col(p.column) >= p.min_days] if p.min_days is not None else []) + \
                 ([F.col(p.column) <= p.max_days] if p.max_days is not None else [])
        expr = reduce(lambda a, b: a & b, bounds) if bounds else F.col(p.column).isNotNull()
    else:  # pragma: no cover - exhaustive over Predicate
        raise TypeError(f"unknown predicate {p!r}")
    return F.coalesce(expr, F.lit(False))


def rule_column(node: Node, catalogue: Catalogue, where: str = "") -> Column:
    """The Spark condition of a rule tree; raises :class:`SegmentCompileError` on a refused condition."""
    if isinstance(node, Condition):
        interpretation = catalogue.interpret(node)
        if interpretation.predicate is None or interpretation.has_errors:
            reasons = "; ".join(m for s, m in interpretation.findings if s == "error")
            raise SegmentCompileError(f"{where}:{node.line}: {reasons or 'condition cannot be compiled'}")
        return predicate_column(interpretation.predicate)
    if isinstance(node, Not):
        return ~rule_column(node.child, catalogue, where)
    parts = [rule_column(child, catalogue, where) for child in node.children]
    if isinstance(node, AllOf):
        return reduce(lambda a, b: a & b, parts)
    if isinstance(node, AnyOf):
        return reduce(lambda a, b: a | b, parts)
    raise TypeError(f"unknown rule node {node!r}")  # pragma: no cover


def adult_guard(minimum_age: int) -> Column:
    """No segment ever reaches a minor (C5), whatever its rule says and whatever the profiles hold."""
    return F.coalesce(F.col("age") >= F.lit(minimum_age), F.lit(False))


def segment_column(definition: SegmentDefinition, catalogue: Catalogue, minimum_age: int) -> Column:
    """A definition's full membership condition: its rule and the age guard."""
    return rule_column(definition.rule, catalogue, definition.path) & adult_guard(minimum_age)


def channel_membership(profiles: DataFrame, channel: str, definitions: Sequence[SegmentDefinition],
                       catalogue: Catalogue, minimum_age: int, as_of: date) -> DataFrame:
    """Members of every definition active on ``channel``, in one pass over that channel's profiles.

    Each profile row gets the array of segment names whose condition holds, which is then exploded:
    one scan whatever the number of segments.
    """
    active = [d for d in definitions if channel in d.channels]
    if not active:
        return profiles.sparkSession.createDataFrame([], SEGMENT_MEMBERSHIP)
    names = F.array_compact(F.array(*[
        F.when(segment_column(d, catalogue, minimum_age), F.lit(d.name)) for d in active
    ]))
    return (
        profiles.select(F.col("customer_id"), F.explode(names).alias("segment"))
        .select(
            F.col("segment"),
            F.lit(channel).alias("channel"),
            F.col("customer_id"),
            F.lit(as_of).cast("date").alias("as_of"),
        )
    )


def segment_membership(profiles: Mapping[str, DataFrame], definitions: Sequence[SegmentDefinition],
                       catalogue: Catalogue, minimum_age: int, as_of: date) -> DataFrame:
    """``gold/segment_membership`` from the profiles of each channel (``{"tv": ..., "web": ...}``)."""
    parts = [channel_membership(df, channel, definitions, catalogue, minimum_age, as_of)
             for channel, df in sorted(profiles.items())]
    return reduce(DataFrame.unionByName, parts)
