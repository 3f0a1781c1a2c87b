"""Anonymous geographic profiles (G1): ``gold/geo_profiles`` at postal code, province and region level.

What is aggregated, and why. The policy ("Personalized TV advertising") says: *"The profiles for personalized TV
ads of customers who live in the same geographical area can be aggregated to create one aggregated profile of
that geographical area. In this aggregated profile, it is no longer possible to recognize individual
customers."* The geo profiles are therefore built from ``gold/tv_profiles`` only (customers eligible for TV
personalisation: adults, not erased, not objecting), not from the union with the web profiles: the web profile
rests on consent for another purpose, and the policy names the TV profiles as the source of aggregated
profiles. Customers whose postal code is not a geographic Belgian postal code (unknown, non-geographic) are in
no area; they are counted in the metric ``geo.unlocated`` and nowhere else.

Data flow (top to bottom, as :func:`stage_geo` runs it)::

    ctx.outputs["tv_profiles"] --(Spark: counts per postal code)--> LeafTables      (collected: bounded by
          |                                                                          geography x categories,
          |                                                                          not by data volume)
    rollup_tables (exact) | noisy_area_tables (DP mode) --> AreaTables (country -> region -> province -> code)
    ops/geo_memory (previous run's publication) --> GeoMemory
    publish_geo: suppress_areas    which areas are published (k rule, complementary suppression)
                 choose_partition  one partition of each attribute's categories (shown one by one / "other")
                 choose_showing    which published areas show each attribute and each interest
              -> AreaProfile rows -> ctx.outputs["geo_profiles"] (published by the lead); GeoMemory -> ops/

The anonymous viewing reports (C6) are :mod:`pipelines.reports.viewing`.

Threat model. The attacker knows every published row at the three levels, the public geography (which postal
code lies in which province and region), the *national* number of customers (treated as public: it is easy to
learn elsewhere), that counts add up along the geography, are integers and are non-negative; and, for two
consecutive runs, that one person joined, left or moved in between. National *category* distributions are not
published by this module and are not assumed known. The attacker is not assumed to reason about *why* an area
is missing (the suppression pattern) beyond these linear facts.

Guarantee for one run, in terms of *residuals*. For every known node -- the country and every published area
-- its residual is its count minus the counts of its maximal published descendants (published areas below it
with no published area in between): the customers one can place in that node but in no published area below
it. Whatever the attacker derives about areas is a sum of residuals, and within one residual the customers can
sit in any of its postal codes. :func:`suppress_areas` makes every residual 0 or at least ``k``, so any set of
postal codes (a suppressed postal code, a province, any union) holding 1 to ``k - 1`` customers is consistent
with the published data holding ``k`` or more: no small cell is recovered, neither directly nor as a parent
minus its published children, at any level.

Shares follow the same idea per attribute (age band, gender, language, family typology; each interest is a
yes/no attribute). Each attribute has *one* partition of its categories for the whole publication: the shown
categories one by one, the rest merged into ``"other"`` (:func:`choose_partition` picks the most useful rung of a
ladder of coarsenings). A published area either shows the attribute with that partition -- when every block
counts 0 or at least ``k`` there -- or publishes ``{"other": 1.0}``. Per showing area and block, the *block
residual* (its block count minus those of its maximal showing descendants) must also be 0 or at least ``k``:
:func:`choose_showing` hides descendants, smallest first, until it is. Then what shares × n let one derive is,
per block residual, a table whose rows are area residuals (>= k or 0) and whose columns are block residuals
(>= k or 0) with only its margins known; any cell of it -- "customers of suppressed postal code X aged 18-20" --
can hold ``min(row, column) >= k`` people, so nothing below ``k`` is recovered. One partition everywhere is
what makes this hold: a child merging categories its parent shows one by one would overlap the parent's blocks
and could pin a small count.

Two consecutive runs. Three measures, checked by the property tests with an integer program over both runs:

* a margin: every threshold is ``k + geo change margin`` (one person). A joiner, leaver or mover changes any
  count by at most one, so a cell crossing the threshold between runs still holds ``k`` or more other people;
* memory: the areas (and, per attribute, the showing areas) of the previous run count as known in a second
  pass of the suppression, so two runs with different suppression patterns cannot be subtracted from each
  other (``ops/geo_memory``, read for the latest as-of before the run's, so reruns are idempotent);
* a stable partition: an attribute keeps the previous run's partition while any area showed it.

What exact counts cannot hide is the change itself: someone who knows that one given person joined can read
that person's categories from share differences of an area published in both runs. The DP mode is the answer
to that; it is what to enable for reports that leave the company. Runs further apart than consecutive ones are
not covered by the memory (the number of changes in between is unknown to the attacker, but not bounded).

Consistency across levels ("totals consistent"): (1) a published ``n_customers`` is the number of TV-profile
customers living in that area (exact mode), so a parent equals the sum of *all* its children; (2) for every
published area, ``n_customers`` minus the sum over its published children is 0 or at least ``k`` (the rolled-up,
unpublished children), and likewise the national total minus the published regions; (3) when every child
holding customers is published, the parent is exactly their sum (regions: the national total); (4) per
attribute, the shares of a published area sum to 1, and a block count (share × n) of a showing area minus those
of its showing children is 0 or at least ``k``. In DP mode (1) holds for the noisy counts: every published
figure is the sum of the noisy postal code figures below it, so (2)-(4) hold as stated.

DP mode (``geo.dp_epsilon`` set). Every leaf count -- postal code × (customers, each category of each attribute
over its public domain, each interest of the mapping files) -- gets two-sided geometric noise (the discrete
Laplace mechanism) with ``alpha = exp(-epsilon / sensitivity)``; sensitivity is the L1 change of all leaf counts
when one person is added or removed: 1 (customers) + 1 per attribute + the interest bound, each person counting
for at most ``geo.dp_max_contribution`` interests (their top scores). Provinces, regions, thresholds,
suppression and shares are computed from the noisy leaves (post-processing, no extra budget), so totals stay
consistent. One non-private step remains, required by the contract: an area whose *true* count is below ``k``
is never published. Noise is drawn on the driver with numpy (not in Spark: the tables are small and a seeded
generator is testable), seeded with an HMAC of the as-of date under the pipeline's internal key: a rerun of the
same as-of publishes the same numbers (idempotent, and re-running cannot be used to average the noise away),
and nobody without the key can reproduce it. Each run spends ``epsilon``; budgets compose over runs.
"""
from __future__ import annotations

import hashlib
import hmac
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from pipelines import io
from pipelines.privacy.keys import INTERNAL, KeyRing
from pipelines.reference.geo import PROVINCE_NAMES, REGION_NAMES, Geography, load_geography
from pipelines.reference.taxonomy import AUDIENCE_TAXONOMY_FILE, iab_age_bands, load_audience_taxonomy, load_mappings
from pipelines.sources.rules import load_source_rules

if TYPE_CHECKING:  # the daily job imports this stage; its context is needed for type hints only
    from pipelines.jobs.daily import RunContext

#: An area of the tree: (level, code). Level and code together, because Brussels is both a region and a
#: province with the same ISO code ``BE-BRU``.
Area = tuple[str, str]

LEVELS = ("region", "province", "postal_code")
COUNTRY = "country"
ROOT: Area = (COUNTRY, "BE")
OTHER = "other"
UNKNOWN = "unknown"
HAS, HAS_NOT = "has", "has_not"

#: Profile columns aggregated into shares, in published order.
ATTRIBUTES = ("age_band", "gender", "language", "family_typology")
SHARE_COLUMNS = {a: f"{a}_shares" for a in ATTRIBUTES}

#: Interests per area in ``top_interests`` (requested setting ``geo.top_interests``).
TOP_INTERESTS = 10

#: People of margin on every threshold: one change between two runs cannot bring a derived count below k
#: (requested setting ``geo.change_margin``).
CHANGE_MARGIN = 1

TOP_INTEREST = StructType([
    StructField("iab_audience_id", IntegerType(), True),
    StructField("interest", StringType(), True),
    StructField("share", DoubleType(), True),
])

#: Schema of ``gold/geo_profiles``.
GEO_PROFILES = StructType([
    StructField("area_level", StringType(), False),
    StructField("area_code", StringType(), False),
    StructField("area_name", StringType(), True),
    StructField("parent_code", StringType(), True),
    StructField("n_customers", LongType(), False),
    *[StructField(SHARE_COLUMNS[a], MapType(StringType(), DoubleType()), True) for a in ATTRIBUTES],
    StructField("top_interests", ArrayType(TOP_INTEREST), True),
    StructField("as_of", DateType(), False),
])


# ------------------------------------------------------------------------------------------------ the tree


@dataclass(frozen=True)
class AreaTree:
    """Country -> region -> province -> postal code, from (postal code, province, region) triples.

    >>> tree = AreaTree.build([("1000", "BE-BRU", "BE-BRU"), ("9000", "BE-VOV", "BE-VLG")])
    >>> tree.parent[("postal_code", "9000")], tree.parent[("province", "BE-VOV")]
    (('province', 'BE-VOV'), ('region', 'BE-VLG'))
    >>> tree.rollup({"9000": 12, "1000": 3})[ROOT]
    15
    """

    parent: Mapping[Area, Area]
    children: Mapping[Area, tuple[Area, ...]]
    names: Mapping[Area, str]
    top_down: tuple[Area, ...]  # the country, then regions, provinces, postal codes (each level sorted)

    @classmethod
    def build(cls, postal_areas: Iterable[tuple[str, str, str]], names: Mapping[Area, str] | None = None) -> "AreaTree":
        """Tree of the given ``(postal_code, province_code, region_code)``; a province must lie in one region."""
        parent: dict[Area, Area] = {}
        for postal, province, region in postal_areas:
            p, r = ("province", province), ("region", region)
            if parent.get(p, r) != r:
                raise ValueError(f"province {province} lies in two regions: {parent[p][1]} and {region}")
            parent[("postal_code", postal)] = p
            parent[p] = r
            parent[r] = ROOT
        children: dict[Area, list[Area]] = defaultdict(list)
        for child, up in parent.items():
            children[up].append(child)
        depth = {COUNTRY: 0, **{level: i + 1 for i, level in enumerate(LEVELS)}}
        order = (ROOT, *sorted(parent, key=lambda a: (depth[a[0]], a[1])))
        return cls(parent=dict(parent), children={a: tuple(sorted(c)) for a, c in children.items()},
                   names=dict(names or {}), top_down=order)

    @classmethod
    def from_geography(cls, geo: Geography) -> "AreaTree":
        """The real Belgian tree: postal codes named after their locality, ISO provinces and regions."""
        names: dict[Area, str] = {ROOT: "Belgium"}
        names.update({("province", c): n for c, n in PROVINCE_NAMES.items()})
        names.update({("region", c): n for c, n in REGION_NAMES.items()})
        names.update({("postal_code", a.postal_code): a.locality for a in geo.areas.values()})
        return cls.build(((a.postal_code, a.province_code, a.region_code) for a in geo.areas.values()), names)

    @staticmethod
    def depth(area: Area) -> int:
        return 0 if area[0] == COUNTRY else LEVELS.index(area[0]) + 1

    def leaf(self, postal_code: str) -> Area | None:
        """The area of a postal code, or None when the code is not in the tree."""
        area = ("postal_code", postal_code)
        return area if area in self.parent else None

    def ancestors(self, area: Area) -> Iterable[Area]:
        """Parent, grandparent, ... up to and including the country."""
        while area in self.parent:
            area = self.parent[area]
            yield area

    def nearest(self, area: Area, among: Mapping[Area, object] | set[Area] | frozenset[Area]) -> Area | None:
        """The closest strict ancestor of ``area`` that is in ``among`` (None if there is none)."""
        return next((a for a in self.ancestors(area) if a in among), None)

    def parent_code(self, area: Area) -> str | None:
        up = self.parent.get(area)
        return up[1] if up is not None else None

    def rollup(self, leaves: Mapping[str, int]) -> dict[Area, int]:
        """Counts per area from counts per postal code (codes outside the tree are ignored)."""
        out: dict[Area, int] = defaultdict(int)
        for code, value in leaves.items():
            leaf = self.leaf(code)
            if leaf is not None and value:
                out[leaf] += value
                for up in self.ancestors(leaf):
                    out[up] += value
        return dict(out)

    def rollup_counts(self, leaves: Mapping[str, Mapping[object, int]]) -> dict[Area, dict]:
        """Per-key counts per area from per-key counts per postal code."""
        out: dict[Area, dict] = defaultdict(lambda: defaultdict(int))
        for code, counts in leaves.items():
            leaf = self.leaf(code)
            if leaf is None:
                continue
            for area in (leaf, *self.ancestors(leaf)):
                bucket = out[area]
                for key, value in counts.items():
                    bucket[key] += value
        return {a: dict(c) for a, c in out.items()}


# ------------------------------------------------------------------------------------ counts: suppression


def is_safe(count: int, k: int) -> bool:
    """A count that may be published or derived: nobody (0) or at least ``k`` people.

    >>> is_safe(0, 10), is_safe(3, 10), is_safe(10, 10)
    (True, False, True)
    """
    return count == 0 or count >= k


def maximal_published(tree: AreaTree, area: Area, published: frozenset[Area] | set[Area]) -> list[Area]:
    """Published areas strictly below ``area`` with no published area in between."""
    out, stack = [], list(tree.children.get(area, ()))
    while stack:
        a = stack.pop()
        if a in published:
            out.append(a)
        else:
            stack.extend(tree.children.get(a, ()))
    return sorted(out)


def residuals(tree: AreaTree, n: Mapping[Area, int], published: frozenset[Area] | set[Area]) -> dict[Area, int]:
    """For the country and every published area: its count minus its maximal published descendants' counts.

    These are the finest counts the published data determine (see the module docstring): all must be 0 or >= k.
    """
    known = [ROOT, *sorted(published)]
    return {a: n.get(a, 0) - sum(n.get(d, 0) for d in maximal_published(tree, a, published)) for a in known}


@dataclass(frozen=True)
class Suppression:
    """Published areas; primary suppressions (fewer than k, or forced) and secondary (complementary) ones."""

    published: frozenset[Area]
    primary: frozenset[Area]
    secondary: frozenset[Area]


def suppress_areas(tree: AreaTree, n: Mapping[Area, int], k: int, forced: Iterable[Area] = (),
                   remembered: Iterable[Area] = ()) -> Suppression:
    """Publish areas with at least ``k`` customers, then suppress more until every residual is 0 or >= k.

    Primary: an area with ``0 < n < k`` (or in ``forced``) is not published; its customers stay counted in its
    province and region (the roll-up). Secondary (complementary): top-down over the country and the known
    areas, while a node's residual is unsafe, suppress one of its maximal known descendants -- one with a
    positive residual first, the smallest first -- whose customers then join the residual. With only primary
    suppressions below a node, this is "the suppressed children of a parent total 0 or at least k".

    ``remembered``: the areas the previous run published. After the pass above, a second pass counts them as
    known too (with today's counts, which differ from the published ones by the day's changes): the attacker
    keeps them and they cannot be taken back, so a residual only a remembered area could fix is fixed by
    suppressing the node itself. This stops two consecutive runs with different suppression patterns from
    being subtracted from each other.

    >>> tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R"), ("3", "P", "R")])
    >>> n = tree.rollup({"1": 4, "2": 30, "3": 50})
    >>> s = suppress_areas(tree, n, k=10)
    >>> sorted(a[1] for a in s.published), sorted(a[1] for a in s.secondary)
    (['3', 'P', 'R'], ['2'])
    """
    forced = frozenset(forced)
    populated = [a for a in tree.top_down if a != ROOT and n.get(a, 0) != 0]
    primary = {a for a in populated if n[a] < k or a in forced}
    published = {a for a in populated if a not in primary}
    secondary: set[Area] = set()

    def settle(old: set[Area]) -> None:
        changed = True
        while changed:  # suppressing a node itself (second pass) can unsettle its ancestors: repeat
            changed = False
            for node in tree.top_down:
                while node == ROOT or node in published or node in old:
                    known = published | old
                    below = maximal_published(tree, node, known)
                    residual = n.get(node, 0) - sum(n.get(d, 0) for d in below)
                    if is_safe(residual, k):
                        break
                    movable = [d for d in below if d in published and d not in old]
                    if movable:
                        own = {d: n[d] - sum(n.get(e, 0) for e in maximal_published(tree, d, known)) for d in movable}
                        pick = min([d for d in movable if own[d] > 0] or movable, key=lambda d: (n[d], tree.depth(d), d))
                    elif node in published and node not in old:
                        pick = node
                    else:  # only the previous run's figures are involved: nothing published now can change them
                        break
                    published.discard(pick)
                    secondary.add(pick)
                    changed = True

    # Today alone, then together with the previous run. Suppressing an area adds its (safe) residual to its
    # known ancestor's (safe) residual, so the second pass never breaks what the first one settled.
    settle(set())
    old = {a for a in remembered if a in tree.parent}
    if old:
        settle(old)
    return Suppression(frozenset(published), frozenset(primary), frozenset(secondary))


# ------------------------------------------------------------------------------------ categories: partitions

#: A partition of an attribute's categories: those shown one by one; everything else is merged into ``"other"``.
#: The empty partition shows nothing.
HIDDEN: frozenset[str] = frozenset()
#: Interests are yes/no attributes with one fixed partition: "has it" shown, "has not" as the rest.
INTEREST_PARTITION = frozenset({HAS})


def cell_partition(counts: Mapping[str, int], k: int) -> frozenset[str]:
    """Within-cell rule: show categories with at least ``k`` people; the rest merge into ``"other"``.

    When the merged rest holds between 1 and ``k - 1`` people, the smallest shown category joins it, until the
    rest is 0 or at least ``k`` (a published share × n gives a count, so no merged rest may be small either).

    >>> sorted(cell_partition({"F": 12, "M": 15, "X": 2}, k=10))
    ['M']
    >>> sorted(cell_partition({"F": 12, "M": 15, "X": 0}, k=10))
    ['F', 'M']
    >>> cell_partition({"F": 5, "M": 6}, k=10)
    frozenset()
    """
    shown = sorted((c for c, v in counts.items() if v >= k), key=lambda c: (counts[c], c))
    rest = sum(counts.values()) - sum(counts[c] for c in shown)
    while shown and not is_safe(rest, k):
        rest += counts[shown.pop(0)]
    return frozenset(shown)


def block_counts(counts: Mapping[str, int], shown: frozenset[str]) -> dict[str, int]:
    """Counts of the blocks of a partition: each shown category, and ``"other"`` for everything else."""
    blocks = {c: counts.get(c, 0) for c in shown}
    blocks[OTHER] = sum(counts.values()) - sum(blocks.values())
    return blocks


def fits(counts: Mapping[str, int], shown: frozenset[str], k: int) -> bool:
    """True when every block of the partition counts 0 or at least ``k`` people in this area."""
    return all(is_safe(v, k) for v in block_counts(counts, shown).values())


def choose_partition(national: Mapping[str, int], counts: Mapping[Area, Mapping[str, int]], k: int) -> frozenset[str]:
    """The one partition of an attribute used by every area: the most useful rung of a ladder of coarsenings.

    The ladder starts from :func:`cell_partition` of the national counts and merges the nationally smallest
    shown category into ``"other"`` one at a time. Each rung scores the number of categories it shows, summed
    over the areas of ``counts`` it fits (0 or >= k in every block); the best score wins, the finer on a tie.
    A finer partition says more about big areas, a coarser one fits more small areas.

    >>> national = {"F": 60, "M": 50, "X": 12}
    >>> areas = {("postal_code", "1"): {"F": 10, "M": 12, "X": 1}, ("postal_code", "2"): {"F": 14, "M": 10, "X": 3}}
    >>> sorted(choose_partition(national, areas, k=10))  # F, M, X and F, M fit neither area; F fits both
    ['F']
    """
    first = cell_partition(national, k)
    order = sorted(first, key=lambda c: (national.get(c, 0), c))
    ladder = [frozenset(order[i:]) for i in range(len(order))]
    if not ladder:
        return HIDDEN

    def score(part: frozenset[str]) -> tuple[int, int]:
        return sum(len(part) for c in counts.values() if fits(c, part, k)), len(part)

    return max(ladder, key=score)


def choose_showing(tree: AreaTree, counts: Mapping[Area, Mapping[str, int]], allowed: Iterable[Area],
                   partition: frozenset[str], k: int, remembered: Iterable[Area] = ()) -> frozenset[Area]:
    """The areas that show an attribute with ``partition``: allowed, fitting, and with safe block residuals.

    ``counts`` must hold every area that may be involved (allowed and remembered ones). An allowed area shows
    the attribute when every block counts 0 or at least ``k`` there (the within-cell rule). Then, deepest first,
    while a block residual of a showing area -- its block count minus those of its maximal showing
    descendants -- is unsafe, hide the smallest descendant holding people of that block (its people join the
    residual). A second pass does the same with the areas of ``remembered`` counted as showing.

    ``remembered``: the areas that showed the attribute in the previous run (with the same partition). The
    attacker keeps their figures, so in the second pass they count as known and cannot be taken back: when only
    they are involved, the area itself is hidden.

    >>> tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R")])
    >>> counts = {("province", "P"): {"F": 30, "M": 24}, ("postal_code", "1"): {"F": 22, "M": 10},
    ...           ("postal_code", "2"): {"F": 8, "M": 14}}
    >>> sorted(a[1] for a in choose_showing(tree, counts, counts, frozenset({"F", "M"}), k=10))
    ['P']
    """
    if not partition:
        return frozenset()
    showing = {a for a in allowed if a in counts and fits(counts[a], partition, k)}
    empty: Mapping[str, int] = {}

    def blocks(area: Area) -> dict[str, int]:
        return block_counts(counts.get(area, empty), partition)

    def settle(old: set[Area]) -> None:
        changed = True
        while changed:  # hiding an area itself (second pass) can unsettle its ancestors: repeat
            changed = False
            for area in sorted(showing | old, key=lambda a: (-tree.depth(a), a)):
                while area in showing or area in old:
                    below = maximal_published(tree, area, showing | old)
                    parts = {d: blocks(d) for d in below}
                    residual = blocks(area)
                    for part in parts.values():
                        for b, v in part.items():
                            residual[b] -= v
                    bad = sorted(b for b, v in residual.items() if not is_safe(v, k))
                    if not bad:
                        break
                    movable = [d for d in below if d in showing and d not in old and parts[d][bad[0]] != 0]
                    if movable:
                        showing.discard(min(movable, key=lambda d: (sum(blocks(d).values()), tree.depth(d), d)))
                    elif area in showing and area not in old:
                        showing.discard(area)
                    else:  # only the previous run's figures are involved: nothing shown now can change them
                        break
                    changed = True

    settle(set())
    old = {a for a in remembered if a in tree.parent}
    if old:
        settle(old)
    return frozenset(showing)


def interest_candidates(n: Mapping[Area, int], interests: Mapping[Area, Mapping[int, int]],
                        allowed: Iterable[Area], k: int, top: int) -> dict[int, set[Area]]:
    """Per interest, the areas offering it: each area's ``top`` most common interests that fit there."""
    out: dict[int, set[Area]] = defaultdict(set)
    for area in allowed:
        fitting = [(-c, i) for i, c in interests.get(area, {}).items()
                   if c >= k and fits({HAS: c, HAS_NOT: n[area] - c}, INTEREST_PARTITION, k)]
        for _, interest in sorted(fitting)[:top]:
            out[interest].add(area)
    return out


def yes_no(n: Mapping[Area, int], interests: Mapping[Area, Mapping[int, int]], interest: int,
           areas: Iterable[Area]) -> dict[Area, dict[str, int]]:
    """``{area: {"has": c, "has_not": n - c}}`` for one interest."""
    return {a: {HAS: interests.get(a, {}).get(interest, 0), HAS_NOT: n.get(a, 0) - interests.get(a, {}).get(interest, 0)}
            for a in areas}


# ------------------------------------------------------------------------------------------ publication


@dataclass(frozen=True)
class LeafTables:
    """Counts per postal code: the only input of the pure part (collected from Spark, or written by tests).

    ``attributes[attribute][postal_code][category]``; ``interests[postal_code][iab_audience_id]`` counts people
    with that interest; ``labels`` names the interests.
    """

    n: Mapping[str, int]
    attributes: Mapping[str, Mapping[str, Mapping[str, int]]]
    interests: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    labels: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AreaTables:
    """Counts per area, the country included (rolled up from :class:`LeafTables`, exact or noisy).

    Interest counts below ``k`` may be left out: no area can show them.
    """

    n: Mapping[Area, int]
    attributes: Mapping[str, Mapping[Area, Mapping[str, int]]]
    interests: Mapping[Area, Mapping[int, int]]
    labels: Mapping[int, str]


def rollup_tables(tree: AreaTree, leaves: LeafTables) -> AreaTables:
    """Exact counts per area: every area holds the sum of its postal codes (customers of small codes included)."""
    return AreaTables(
        n=tree.rollup(leaves.n),
        attributes={a: tree.rollup_counts(leaves.attributes.get(a, {})) for a in ATTRIBUTES},
        interests=tree.rollup_counts(leaves.interests),
        labels=dict(leaves.labels),
    )


@dataclass(frozen=True)
class GeoMemory:
    """What the previous run published. Whoever reads both runs keeps it, so this run treats it as known."""

    areas: frozenset[Area] = frozenset()
    partitions: Mapping[str, frozenset[str]] = field(default_factory=dict)  # attribute -> shown categories
    showing: Mapping[str, frozenset[Area]] = field(default_factory=dict)    # attribute -> areas showing it
    interests: Mapping[int, frozenset[Area]] = field(default_factory=dict)  # interest -> areas listing it


@dataclass(frozen=True)
class AreaProfile:
    """One published row of ``gold/geo_profiles`` (``as_of`` is added when the DataFrame is built)."""

    area_level: str
    area_code: str
    area_name: str | None
    parent_code: str | None
    n_customers: int
    shares: Mapping[str, Mapping[str, float]]  # attribute -> category (or "other") -> share
    top_interests: tuple[tuple[int, str, float], ...]  # (iab_audience_id, interest, share), highest first


@dataclass(frozen=True)
class GeoPublication:
    """What one run publishes, with the decisions behind it (for metrics, tests and the next run's memory)."""

    profiles: tuple[AreaProfile, ...]
    suppression: Suppression
    partitions: Mapping[str, frozenset[str]]
    showing: Mapping[str, frozenset[Area]]
    interests: Mapping[int, frozenset[Area]]

    @property
    def memory(self) -> GeoMemory:
        """What the next run must treat as known."""
        return GeoMemory(self.suppression.published, dict(self.partitions), dict(self.showing), dict(self.interests))


def _shares(counts: Mapping[str, int], shown: frozenset[str]) -> dict[str, float]:
    total = sum(counts.values())
    if total <= 0:
        return {}
    blocks = block_counts(counts, shown)
    if blocks[OTHER] == 0:
        del blocks[OTHER]
    return {c: v / total for c, v in sorted(blocks.items())}


def publish_geo(tree: AreaTree, tables: AreaTables, k: int, top_interests: int = TOP_INTERESTS,
                forced: Iterable[Area] = (), memory: GeoMemory = GeoMemory(),
                margin: int = CHANGE_MARGIN) -> GeoPublication:
    """Published profiles of the areas passing :func:`suppress_areas`, shares per :func:`choose_showing`.

    Every threshold is applied as ``k + margin``: a person who joins, leaves or moves between two runs changes
    any count by at most one, so whatever either run lets one derive stays at ``k`` or more for everybody else.
    Each attribute has one partition for all areas (:func:`choose_partition`); it is kept from the previous
    run as long as some area showed it then (a changed partition would let the two runs be intersected). An
    attribute an area does not show is published as ``{"other": 1.0}``; ``"other"`` is left out when it is 0.
    """
    k = k + margin
    suppression = suppress_areas(tree, tables.n, k, forced, memory.areas)
    published = suppression.published
    partitions: dict[str, frozenset[str]] = {}
    showing: dict[str, frozenset[Area]] = {}
    for attr in ATTRIBUTES:
        counts = tables.attributes.get(attr, {})
        remembered = memory.showing.get(attr, frozenset())
        if remembered and attr in memory.partitions:
            partitions[attr] = memory.partitions[attr]
        else:
            partitions[attr] = choose_partition(counts.get(ROOT, {}), {a: counts.get(a, {}) for a in published}, k)
        showing[attr] = choose_showing(tree, counts, published, partitions[attr], k, remembered)
    candidates = interest_candidates(tables.n, tables.interests, published, k, top_interests)
    interests: dict[int, frozenset[Area]] = {}
    for interest in sorted(set(candidates) | set(memory.interests)):
        remembered = memory.interests.get(interest, frozenset())
        involved = set(candidates.get(interest, ())) | set(remembered)
        involved |= {up for a in involved for up in tree.ancestors(a)}
        table = yes_no(tables.n, tables.interests, interest, involved)
        shown = choose_showing(tree, table, candidates.get(interest, ()), INTEREST_PARTITION, k, remembered)
        if shown:
            interests[interest] = shown
    listed: dict[Area, list[int]] = defaultdict(list)
    for interest, areas in interests.items():
        for area in areas:
            listed[area].append(interest)
    profiles = []
    for area in (a for a in tree.top_down if a in published):
        n = tables.n[area]
        shares = {attr: _shares(tables.attributes.get(attr, {}).get(area, {}),
                                partitions[attr] if area in showing[attr] else HIDDEN)
                  for attr in ATTRIBUTES}
        top = sorted(((i, tables.labels.get(i, str(i)), min(1.0, tables.interests[area][i] / n)) for i in listed[area]),
                     key=lambda t: (-t[2], t[0]))
        profiles.append(AreaProfile(area[0], area[1], tree.names.get(area), tree.parent_code(area), n, shares,
                                    tuple(top)))
    return GeoPublication(tuple(profiles), suppression, partitions, showing, interests)


# ------------------------------------------------------------------------------------------------ DP mode


@dataclass(frozen=True)
class DpDomain:
    """Public category domains: noise goes on every one of them, present in the data or not."""

    attributes: Mapping[str, tuple[str, ...]]
    interests: tuple[int, ...]


def dp_sensitivity(n_attributes: int, max_interests: int) -> int:
    """L1 change of all leaf counts when one person is added or removed: customers, attributes, interests.

    >>> dp_sensitivity(4, 1)
    6
    """
    return 1 + n_attributes + max_interests


def geometric_alpha(epsilon: float, sensitivity: int) -> float:
    """Parameter of the two-sided geometric mechanism: ``P(z) ∝ alpha ** |z|`` with ``alpha = exp(-eps/Δ)``."""
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise ValueError(f"geo.dp_epsilon must be a positive number, got {epsilon!r}")
    return math.exp(-epsilon / sensitivity)


def geometric_noise(rng: np.random.Generator, alpha: float, size: int | tuple[int, ...]) -> np.ndarray:
    """Two-sided geometric (discrete Laplace) noise: the difference of two geometric draws.

    ``P(Z = z) = (1 - alpha) / (1 + alpha) * alpha ** |z|``; variance ``2 alpha / (1 - alpha) ** 2``. Integer
    noise on integer counts avoids the floating-point weaknesses of a textbook Laplace sampler.
    """
    p = 1.0 - alpha
    return (rng.geometric(p, size) - rng.geometric(p, size)).astype(np.int64)


def dp_rng(keys: KeyRing, as_of: date) -> np.random.Generator:
    """Generator seeded by HMAC-SHA256(internal key, as-of): same noise for a rerun, unpredictable without the key."""
    digest = hmac.new(keys.active(INTERNAL).secret, f"geo-dp|{as_of.isoformat()}".encode(), hashlib.sha256).digest()
    return np.random.default_rng(np.random.SeedSequence(int.from_bytes(digest, "big")))


def noisy_area_tables(tree: AreaTree, leaves: LeafTables, domain: DpDomain, epsilon: float, max_interests: int,
                      rng: np.random.Generator, k: int) -> AreaTables:
    """DP counts per area: noise on every leaf cell of the public domain, then sums up the tree.

    Leaves of ``leaves`` must already respect the contribution bound (at most ``max_interests`` interests per
    person). Values outside the domain are counted as ``"unknown"`` (attributes) or dropped (interests). Interest
    counts below ``k`` are left out of the result: no area can show them.
    """
    codes = sorted(a[1] for a in tree.parent if a[0] == "postal_code")
    index = {c: i for i, c in enumerate(codes)}
    alpha = geometric_alpha(epsilon, dp_sensitivity(len(ATTRIBUTES), max_interests))
    chains = [[a for a in (tree.leaf(c), *tree.ancestors(tree.leaf(c))) if a is not None] for c in codes]
    areas = sorted({a for chain in chains for a in chain}, key=lambda a: (tree.depth(a), a[1]))
    area_index = {a: i for i, a in enumerate(areas)}
    # membership[area, postal code] = 1: sums up the tree in one matrix product (in floating point for BLAS
    # speed; every value is an integer far below 2**53, so the sums are exact)
    membership = np.zeros((len(areas), len(codes)))
    for j, chain in enumerate(chains):
        for a in chain:
            membership[area_index[a], j] = 1.0

    def noisy(matrix: np.ndarray) -> np.ndarray:
        leaves_noisy = (matrix + geometric_noise(rng, alpha, matrix.shape)).astype(np.float64)
        return np.rint(membership @ leaves_noisy).astype(np.int64)

    n_leaf = np.zeros((len(codes), 1), dtype=np.int64)
    for code, value in leaves.n.items():
        if code in index:
            n_leaf[index[code], 0] = value
    n_area = noisy(n_leaf)[:, 0]

    attributes: dict[str, dict[Area, dict[str, int]]] = {}
    for attr in ATTRIBUTES:
        cats = tuple(domain.attributes[attr])
        col = {c: i for i, c in enumerate(cats)}
        m = np.zeros((len(codes), len(cats)), dtype=np.int64)
        for code, counts in leaves.attributes.get(attr, {}).items():
            if code in index:
                for cat, value in counts.items():
                    m[index[code], col.get(cat, col[UNKNOWN])] += value
        summed = noisy(m)
        attributes[attr] = {a: {c: int(summed[i, j]) for j, c in enumerate(cats)} for a, i in area_index.items()}

    ids = tuple(domain.interests)
    icol = {i: j for j, i in enumerate(ids)}
    im = np.zeros((len(codes), len(ids)), dtype=np.int64)
    for code, counts in leaves.interests.items():
        if code in index:
            for interest, value in counts.items():
                if interest in icol:
                    im[index[code], icol[interest]] += value
    isummed = noisy(im)
    interests: dict[Area, dict[int, int]] = {}
    for a, i in area_index.items():
        row = isummed[i]
        keep = np.nonzero(row >= k)[0]
        interests[a] = {ids[j]: int(row[j]) for j in keep}
    return AreaTables(
        n={a: int(n_area[i]) for a, i in area_index.items()},
        attributes=attributes,
        interests=interests,
        labels=dict(leaves.labels),
    )


def dp_domain(conf_dir: Path) -> DpDomain:
    """The public domains: contract code lists (``conf/base/sources.yml``), IAB age bands, mapped interests."""
    rules = load_source_rules(conf_dir)
    bands = iab_age_bands(load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE))

    def codes(source: str, column: str) -> tuple[str, ...]:
        return (*rules[source].allowed[column], UNKNOWN)

    return DpDomain(
        attributes={
            "age_band": (*(b.label for b in bands), UNKNOWN),
            "gender": codes("customers", "gender"),
            "language": codes("customers", "language"),
            "family_typology": codes("sociodemo_individual", "family_typology"),
        },
        interests=tuple(sorted(load_mappings(conf_dir).interest_labels)),
    )


# ------------------------------------------------------------------------------------------ Spark side


def category(column: str) -> Column:
    """A profile attribute as a category: its value as a string, ``"unknown"`` when null."""
    return F.coalesce(F.col(column).cast(StringType()), F.lit(UNKNOWN))


def postal_code_counts(profiles: DataFrame) -> DataFrame:
    """``postal_code, n``: distinct customers per postal code (null codes kept, to be counted as unlocated)."""
    return profiles.groupBy("postal_code").agg(F.countDistinct("customer_id").alias("n"))


def postal_code_categories(profiles: DataFrame) -> DataFrame:
    """``postal_code, attribute, category, n`` for the attributes of :data:`ATTRIBUTES`."""
    pairs = F.array(*[F.struct(F.lit(a).alias("attribute"), category(a).alias("category")) for a in ATTRIBUTES])
    return (
        profiles.select("postal_code", "customer_id", F.explode(pairs).alias("_p"))
        .groupBy("postal_code", F.col("_p.attribute").alias("attribute"), F.col("_p.category").alias("category"))
        .agg(F.countDistinct("customer_id").alias("n"))
    )


def postal_code_interests(profiles: DataFrame, max_per_person: int | None = None) -> DataFrame:
    """``postal_code, iab_audience_id, interest, n``: people per interest; optionally each person's top interests only.

    ``max_per_person`` is the DP contribution bound: a person counts for their ``max_per_person`` highest scores.
    """
    ranked = F.transform("interests", lambda i: F.struct(i["score"].alias("score"),
                                                         i["iab_audience_id"].alias("iab_audience_id"),
                                                         i["interest"].alias("interest")))
    kept = F.sort_array(ranked, asc=False)
    if max_per_person is not None:
        kept = F.slice(kept, 1, max_per_person)
    return (
        profiles.select("postal_code", "customer_id", F.explode_outer(kept).alias("_i"))
        .where(F.col("_i.iab_audience_id").isNotNull())
        .groupBy("postal_code", F.col("_i.iab_audience_id").alias("iab_audience_id"))
        .agg(F.countDistinct("customer_id").alias("n"), F.min("_i.interest").alias("interest"))
    )


def collect_leaf_tables(profiles: DataFrame, tree: AreaTree, max_interests: int | None = None) -> tuple[LeafTables, int]:
    """Counts per postal code on the driver (one Spark job), and the number of unlocated customers.

    The collected rows are at most one per (postal code, category or interest): bounded by the reference
    geography and taxonomy, not by the number of customers.
    """
    null = F.lit(None).cast(StringType())
    rows = (
        postal_code_counts(profiles).select("postal_code", F.lit("n").alias("kind"), null.alias("key"), "n",
                                            null.alias("label"))
        .unionByName(postal_code_categories(profiles).select(
            "postal_code", F.col("attribute").alias("kind"), F.col("category").alias("key"), "n", null.alias("label")))
        .unionByName(postal_code_interests(profiles, max_interests).select(
            "postal_code", F.lit("interest").alias("kind"), F.col("iab_audience_id").cast(StringType()).alias("key"),
            "n", F.col("interest").alias("label")))
        .collect()
    )
    n: dict[str, int] = {}
    unlocated = 0
    for row in rows:
        if row["kind"] == "n":
            if row["postal_code"] is not None and tree.leaf(row["postal_code"]) is not None:
                n[row["postal_code"]] = int(row["n"])
            else:
                unlocated += int(row["n"])
    attributes: dict[str, dict[str, dict[str, int]]] = {a: defaultdict(dict) for a in ATTRIBUTES}
    interests: dict[str, dict[int, int]] = defaultdict(dict)
    labels: dict[int, str] = {}
    for row in rows:
        code = row["postal_code"]
        if code not in n or row["kind"] == "n":
            continue
        if row["kind"] == "interest":
            interests[code][int(row["key"])] = int(row["n"])
            labels.setdefault(int(row["key"]), row["label"])
        else:
            attributes[row["kind"]][code][row["key"]] = int(row["n"])
    leaves = LeafTables(n=n, attributes={a: dict(v) for a, v in attributes.items()}, interests=dict(interests),
                        labels=labels)
    return leaves, unlocated


def geo_profiles_frame(spark: SparkSession, profiles: Iterable[AreaProfile], as_of: date) -> DataFrame:
    """``gold/geo_profiles`` rows as a DataFrame with :data:`GEO_PROFILES` (a few thousand rows at most)."""
    rows = [
        (p.area_level, p.area_code, p.area_name, p.parent_code, p.n_customers,
         *[dict(p.shares.get(a, {})) for a in ATTRIBUTES], [tuple(t) for t in p.top_interests], as_of)
        for p in profiles
    ]
    return spark.createDataFrame(rows, GEO_PROFILES)


#: ``ops/geo_memory``: what each run published, by as-of -- area codes and category names only, nobody's data.
#: One row per kind and name (a few hundred rows a day): ``area`` (the published areas), ``partition`` and
#: ``showing`` per attribute, ``interest`` per interest id. Areas are written ``"<level>:<code>"``.
MEMORY_TABLE = "geo_memory"
GEO_MEMORY = StructType([
    StructField("as_of", DateType(), True),
    StructField("kind", StringType(), True),
    StructField("name", StringType(), True),
    StructField("areas", ArrayType(StringType()), True),
    StructField("categories", ArrayType(StringType()), True),
])


def _area_keys(areas: Iterable[Area]) -> list[str]:
    return sorted(f"{level}:{code}" for level, code in areas)


def _areas(keys: Iterable[str] | None) -> frozenset[Area]:
    return frozenset(tuple(k.split(":", 1)) for k in keys or ())  # type: ignore[misc]


def memory_rows(memory: GeoMemory, as_of: date) -> list[tuple]:
    """:class:`GeoMemory` as rows of :data:`GEO_MEMORY`."""
    rows = [(as_of, "area", None, _area_keys(memory.areas), None)]
    rows += [(as_of, "partition", attr, None, sorted(part)) for attr, part in sorted(memory.partitions.items())]
    rows += [(as_of, "showing", attr, _area_keys(areas), None) for attr, areas in sorted(memory.showing.items())]
    rows += [(as_of, "interest", str(i), _area_keys(areas), None) for i, areas in sorted(memory.interests.items())]
    return rows


def memory_from_rows(rows: Iterable) -> GeoMemory:
    """The inverse of :func:`memory_rows` (rows of one as-of)."""
    areas: frozenset[Area] = frozenset()
    partitions: dict[str, frozenset[str]] = {}
    showing: dict[str, frozenset[Area]] = {}
    interests: dict[int, frozenset[Area]] = {}
    for _, kind, name, keys, categories in rows:
        if kind == "area":
            areas = _areas(keys)
        elif kind == "partition":
            partitions[name] = frozenset(categories or ())
        elif kind == "showing":
            showing[name] = _areas(keys)
        elif kind == "interest":
            interests[int(name)] = _areas(keys)
    return GeoMemory(areas, partitions, showing, interests)


def read_memory(spark: SparkSession, path: Path, as_of: date) -> GeoMemory:
    """The memory of the latest run *before* ``as_of`` (empty without one): a rerun of a day sees what the
    first run of that day saw."""
    table = io.read(spark, path, GEO_MEMORY)
    latest = table.where(F.col("as_of") < F.lit(as_of)).agg(F.max("as_of").alias("d")).first()["d"]
    if latest is None:
        return GeoMemory()
    rows = table.where(F.col("as_of") == F.lit(latest)).select(*GEO_MEMORY.fieldNames()).collect()
    return memory_from_rows(tuple(r) for r in rows)


def write_memory(spark: SparkSession, path: Path, memory: GeoMemory, as_of: date) -> None:
    """Replace the memory rows of ``as_of`` (idempotent)."""
    df = spark.createDataFrame(memory_rows(memory, as_of), GEO_MEMORY)
    io.replace_where(df, path, f"as_of = DATE'{as_of.isoformat()}'")


def publication_metrics(tree: AreaTree, pub: GeoPublication) -> dict[str, float]:
    """``geo.cells_published.<level>``, ``geo.cells_suppressed.<level>`` (primary + secondary), ``...secondary``."""
    metrics: dict[str, float] = {}
    for level in LEVELS:
        metrics[f"geo.cells_published.{level}"] = float(sum(a[0] == level for a in pub.suppression.published))
        metrics[f"geo.cells_suppressed.{level}"] = float(
            sum(a[0] == level for a in pub.suppression.primary | pub.suppression.secondary))
        metrics[f"geo.cells_suppressed_secondary.{level}"] = float(
            sum(a[0] == level for a in pub.suppression.secondary))
    return metrics


def stage_geo(ctx: "RunContext", elig: DataFrame) -> None:
    """Put ``geo_profiles`` (from ``ctx.outputs["tv_profiles"]``) into ``ctx.outputs``.

    Reads and writes ``ops/geo_memory`` (the previous run's publication, see the module docstring). Metrics:
    ``geo.cells_published.<level>``, ``geo.cells_suppressed.<level>`` (and ``..._secondary``), ``geo.unlocated``,
    and ``geo.dp_epsilon`` in DP mode. ``elig`` is not needed: the TV profiles are already gated.
    """
    settings = ctx.settings.geo
    with ctx.progress.stage("geo profiles") as counts:
        tree = AreaTree.from_geography(load_geography(ctx.settings.conf_dir))
        dp = settings.dp_epsilon is not None
        bound = settings.dp_max_contribution if dp else None
        leaves, unlocated = collect_leaf_tables(ctx.outputs["tv_profiles"], tree, bound)
        exact = rollup_tables(tree, leaves)
        if dp:
            tables = noisy_area_tables(tree, leaves, dp_domain(ctx.settings.conf_dir), float(settings.dp_epsilon),
                                       settings.dp_max_contribution, dp_rng(ctx.keys, ctx.as_of), settings.k)
            # the contract: an area with fewer than k customers is never published, whatever the noise says
            forced = [a for a in tables.n if exact.n.get(a, 0) < settings.k]
            ctx.metrics["geo.dp_epsilon"] = float(settings.dp_epsilon)
        else:
            tables, forced = exact, []
        memory_path = ctx.wh.table("ops", MEMORY_TABLE)
        pub = publish_geo(tree, tables, settings.k, TOP_INTERESTS, forced,
                          read_memory(ctx.spark, memory_path, ctx.as_of), CHANGE_MARGIN)
        ctx.outputs["geo_profiles"] = geo_profiles_frame(ctx.spark, pub.profiles, ctx.as_of)
        write_memory(ctx.spark, memory_path, pub.memory, ctx.as_of)
        ctx.metrics.update(publication_metrics(tree, pub))
        ctx.metrics["geo.unlocated"] = float(unlocated)
        counts.update(published=len(pub.suppression.published),
                      suppressed=len(pub.suppression.primary | pub.suppression.secondary))
