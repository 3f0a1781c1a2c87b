"""Deterministic pseudo-random draws as Spark ``Column`` expressions.

Every draw is a pure function of ``(seed, name, keys...)``: ``xxhash64`` of those values, turned into a
uniform double in ``[0, 1)``. Nothing depends on partitioning, task order or the machine, so the same seed
always yields the same rows, and two draws with different names are independent.

Example (needs a SparkSession ``spark``)::

    df = spark.range(3).select(uniform(42, "coin", "id").alias("u"))   # the same three values on every run
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

_TWO_53 = float(1 << 53)
#: Weighted draws with at most this many choices use a CASE chain, larger ones a slot array.
CASE_LIMIT = 4
ColumnOrName = Column | str


def _col(key: ColumnOrName) -> Column:
    return F.col(key) if isinstance(key, str) else key


def raw_hash(seed: int, name: str, *keys: ColumnOrName) -> Column:
    """The 64-bit hash behind every draw (keys should be longs or strings, consistently)."""
    return F.xxhash64(F.lit(seed), F.lit(name), *[_col(k) for k in keys])


def uniform(seed: int, name: str, *keys: ColumnOrName) -> Column:
    """Uniform double in ``[0, 1)`` (53 random bits)."""
    return F.shiftrightunsigned(raw_hash(seed, name, *keys), 11).cast("double") / _TWO_53


def between(u: Column, low: int, high: int) -> Column:
    """Integer uniformly in ``[low, high]`` (inclusive) from a uniform ``u``; a long column."""
    return (F.lit(low) + F.floor(u * (high - low + 1))).cast("long")


def exponential(u: Column, mean: Column | float) -> Column:
    """Exponential variate with the given mean (inverse CDF)."""
    return -F.log(F.lit(1.0) - u) * mean


def normal(u1: Column, u2: Column) -> Column:
    """Standard normal variate (Box-Muller) from two independent uniforms."""
    return F.sqrt(F.lit(-2.0) * F.log(F.lit(1.0) - u1)) * F.cos(F.lit(2 * math.pi) * u2)


#: Separator of values in an array literal's text (never part of a generated value).
_SEP = "\x01"


def literal_array(values: Sequence[Any]) -> Column:
    """An array literal of strings, numbers (ints, or doubles when any is a float) or booleans.

    Written as ``split('<values joined by \\x01>', '\\x01')``: three nodes for the analyser however long the
    array is (``array(...)`` has one node per element, and every DataFrame call re-analyses the plan), and the
    optimiser folds it into a literal, so a lookup costs one index per row.
    """
    if not values:
        raise ValueError("literal_array() needs at least one value")
    texts = [("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
             for v in values]
    if any(_SEP in t for t in texts):
        raise ValueError("array literal values may not contain \\x01")
    arr = F.split(F.lit(_SEP.join(texts)), _SEP)
    if all(isinstance(v, bool) for v in values):
        return arr.cast("array<boolean>")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return arr.cast("array<int>")
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return arr.cast("array<double>")
    if all(isinstance(v, str) for v in values):
        return arr
    raise TypeError("array literal values must be all str, all numbers or all bool")


def literal_map(pairs: Mapping[Any, Any]) -> Column:
    """A map literal (keys and values: str, int or bool)."""
    return F.map_from_arrays(literal_array(list(pairs)), literal_array(list(pairs.values())))


def literal_array_map(pairs: Mapping[str, Sequence[Any]]) -> Column:
    """A map literal from keys to arrays."""
    return F.map_from_arrays(literal_array(list(pairs)), F.array(*[literal_array(v) for v in pairs.values()]))


def pick(u: Column, values: Sequence[Any]) -> Column:
    """One of ``values`` with equal probability."""
    if not values:
        raise ValueError("pick() needs at least one value")
    return F.element_at(literal_array(values), (F.floor(u * len(values)) + 1).cast("int"))


def slots(choices: Sequence[tuple[Any, float]], resolution: int = 1000) -> list[Any]:
    """Spread weighted choices over ``resolution`` slots (largest remainder; every positive weight >= 1 slot).

    >>> slots([("a", 3), ("b", 1)], 4)
    ['a', 'a', 'a', 'b']
    """
    positive = [(value, float(weight)) for value, weight in choices if weight > 0]
    if not positive:
        raise ValueError("weighted choice needs at least one positive weight")
    total = sum(w for _, w in positive)
    exact = [w / total * resolution for _, w in positive]
    counts = [max(1, int(x)) for x in exact]
    by_remainder = sorted(range(len(positive)), key=lambda i: (-(exact[i] - int(exact[i])), i))
    for i in by_remainder[: max(0, resolution - sum(counts))]:
        counts[i] += 1
    # Tiny weights rounded up to one slot each: take the excess back from the largest counts.
    while sum(counts) > max(resolution, len(positive)):
        largest = max(range(len(counts)), key=lambda i: (counts[i], -i))
        counts[largest] -= 1
    return [value for (value, _), n in zip(positive, counts) for _ in range(n)]


def weighted(u: Column, choices: Sequence[tuple[Any, float]], resolution: int = 1000) -> Column:
    """One of the ``(value, weight)`` choices, with probability proportional to its weight.

    Up to :data:`CASE_LIMIT` choices: a CASE chain on cumulative thresholds (exact); more: an array literal of
    ``resolution`` slots (one index per row whatever the number of choices; weights rounded to 1/resolution).
    """
    positive = [(v, float(w)) for v, w in choices if w > 0]
    if not positive:
        raise ValueError("weighted choice needs at least one positive weight")
    if len(positive) > CASE_LIMIT:
        table = slots(positive, resolution)
        return F.element_at(literal_array(table), (F.floor(u * len(table)) + 1).cast("int"))
    total = sum(w for _, w in positive)
    expr, acc = None, 0.0
    for value, weight in positive[:-1]:
        acc += weight / total
        expr = F.when(u < acc, F.lit(value)) if expr is None else expr.when(u < acc, F.lit(value))
    last = F.lit(positive[-1][0])
    return last if expr is None else expr.otherwise(last)


def weighted_by(key: Column, tables: Mapping[Any, Sequence[tuple[Any, float]]], u: Column,
                resolution: int = 200) -> Column:
    """A weighted choice whose table depends on ``key``; null for a key without a table.

    All tables share one array literal (``resolution`` slots each) and a map from key to offset.
    """
    keys = list(tables)
    flat: list[Any] = []
    for k in keys:
        flat.extend(slots(tables[k], resolution))
    offsets = literal_map({k: i * resolution for i, k in enumerate(keys)})
    index = F.element_at(offsets, key) + F.floor(u * resolution).cast("int") + 1
    return F.element_at(literal_array(flat), index)


def hex_digits(seed: int, name: str, *keys: ColumnOrName) -> Column:
    """16 lowercase hex digits."""
    return F.lower(F.lpad(F.hex(raw_hash(seed, name, *keys)), 16, "0"))


def uuid4(seed: int, name: str, *keys: ColumnOrName) -> Column:
    """A version-4-shaped UUID string (lowercase), e.g. for cookie ids and advertising ids."""
    a = hex_digits(seed, name + "#a", *keys)
    b = hex_digits(seed, name + "#b", *keys)
    variant = pick(uniform(seed, name + "#v", *keys), ["8", "9", "a", "b"])
    return F.concat_ws(
        "-",
        F.substring(a, 1, 8),
        F.substring(a, 9, 4),
        F.concat(F.lit("4"), F.substring(a, 14, 3)),
        F.concat(variant, F.substring(b, 2, 3)),
        F.substring(b, 5, 12),
    )
