"""Attack harness for ``gold/geo_profiles`` (G1): random populations over a small synthetic geography.

Worlds: 2-3 regions of 1-2 provinces of 1-3 postal codes, ``k`` from 3 to 5, up to a few dozen people with an
age band, gender, language and interests, clustered so that small cells abound. Publication is exactly what
the pipeline does (:func:`pipelines.privacy.geo.publish_geo`, default change margin); the second of two runs
remembers the first one's publication, as ``ops/geo_memory`` makes the daily job do.

The attacker sees only what is published -- every row at the three levels: ``n_customers``, the share maps and
``top_interests`` -- plus the public geography, the national number of customers, the category domains, and
that counts are non-negative integers that add up along the geography. For two consecutive runs it also knows
that exactly one person joined, or exactly one person moved (keeping their attributes), in between.

Targets (cells): every postal code, province and region, alone and crossed with every category of every
attribute and with having / not having every interest. A cell is *sensitive* when its true count is between 1
and ``k - 1``; the attacker *recovers* it when the published data force its value into ``[1, k - 1]``.

What the harness asserts:

* named differencing attacks (a parent minus its published children at every level, the national total minus
  the published regions, share × n per category, a parent's category count minus its children's) never yield
  a count between 1 and ``k - 1``;
* one run, integer program: for every sensitive cell, some integer population consistent with everything
  published puts ``k`` or more people in it. That is stronger than "not recovered";
* two runs, integer program, the same for every cell counted over the *stayers* (everybody but the person who
  joined or moved), with both runs' publications and the one-person change as constraints;
* no published area has fewer than ``k`` customers, and totals are consistent across levels: every published
  ``n_customers`` is the true count of its area, a published parent minus its published children is 0 or at
  least ``k``, a parent whose populated children are all published is their sum (the regions: the national
  total), and the shares of every published area sum to 1;
* the invariant behind the shares (safe block residuals), and that the integer program does catch a naive
  publication without complementary suppression.

What it does not assert (see :mod:`pipelines.privacy.geo`): exact counts show the change itself -- a cell known
to be empty in one run holds at most the newcomer in the next, and someone who knows that one given person
joined can read that person's categories in the shares of an area published in both runs. The DP mode, tested
in ``tests/unit/test_geo.py``, is the answer to that. Runs further apart than consecutive ones are not tested.
"""
from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from pipelines.privacy.geo import (
    ATTRIBUTES,
    OTHER,
    ROOT,
    Area,
    AreaTree,
    GeoMemory,
    LeafTables,
    block_counts,
    is_safe,
    publish_geo,
    residuals,
    rollup_tables,
)

DOMAINS = {"age_band": ("18-34", "35-54", "55+"), "gender": ("F", "M"), "language": ("fr", "nl"),
           "family_typology": ("unknown",)}
INTERESTS = (101, 102, 103)
LABELS = {i: f"interest {i}" for i in INTERESTS}
TOP = 2

# ------------------------------------------------------------------------------------------- populations


@dataclass(frozen=True)
class Person:
    postal_code: str
    age_band: str
    gender: str
    language: str
    family_typology: str
    interests: frozenset[int]


@dataclass(frozen=True)
class World:
    k: int
    areas: tuple[tuple[str, str, str], ...]  # (postal code, province, region)
    people: tuple[Person, ...]
    tree: AreaTree = field(compare=False, repr=False)


def leaf_tables(people: tuple[Person, ...]) -> LeafTables:
    n: Counter = Counter(p.postal_code for p in people)
    attributes = {a: defaultdict(Counter) for a in ATTRIBUTES}
    interests: dict[str, Counter] = defaultdict(Counter)
    for p in people:
        for a in ATTRIBUTES:
            attributes[a][p.postal_code][getattr(p, a)] += 1
        for i in p.interests:
            interests[p.postal_code][i] += 1
    return LeafTables(dict(n), {a: {c: dict(v) for c, v in t.items()} for a, t in attributes.items()},
                      {c: dict(v) for c, v in interests.items()}, LABELS)


def person(postal_codes: list[str]) -> st.SearchStrategy[Person]:
    return st.builds(
        Person, st.sampled_from(postal_codes), st.sampled_from(DOMAINS["age_band"]),
        st.sampled_from(DOMAINS["gender"]), st.sampled_from(DOMAINS["language"]),
        st.just("unknown"), st.frozensets(st.sampled_from(INTERESTS)),
    )


@st.composite
def worlds(draw, max_people: int = 70) -> World:
    """2-3 regions of 1-2 provinces of 1-3 postal codes; people spread with clusters so that small cells abound."""
    k = draw(st.integers(3, 5))
    areas = []
    for r in range(draw(st.integers(2, 3))):
        for p in range(draw(st.integers(1, 2))):
            for c in range(draw(st.integers(1, 3))):
                areas.append((f"{r}{p}{c}0", f"P{r}{p}", f"R{r}"))
    codes = [a[0] for a in areas]
    # a few postal codes get most people, the others a handful: both big cells and small cells occur
    weights = draw(st.lists(st.sampled_from([0, 1, 1, 2, 6]), min_size=len(codes), max_size=len(codes)))
    pool = [c for c, w in zip(codes, weights) for _ in range(w)] or codes
    people = draw(st.lists(person(pool), max_size=max_people))
    return World(k, tuple(areas), tuple(people), AreaTree.build(areas))


def publish(world: World, people: tuple[Person, ...] | None = None, previous=None):
    """Publish a population (the world's by default), remembering the previous run's publication if given."""
    tables = rollup_tables(world.tree, leaf_tables(world.people if people is None else people))
    memory = previous.memory if previous is not None else GeoMemory()
    return publish_geo(world.tree, tables, world.k, TOP, memory=memory), tables


# ------------------------------------------------------------------------------------------- the attacker


class IntegerProgram:
    """Non-negative integer unknowns and linear constraints; asks whether a target can reach a value (HiGHS)."""

    def __init__(self, upper: int) -> None:
        self.upper = upper
        self.index: dict[tuple, int] = {}
        self.ub: list[float] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def var(self, key: tuple, ub: float | None = None) -> int:
        if key not in self.index:
            self.index[key] = len(self.index)
            self.ub.append(self.upper if ub is None else ub)
        return self.index[key]

    def add(self, coefs: dict[int, float], lo: float, hi: float) -> None:
        self.rows.append((coefs, lo, hi))

    def eq(self, coefs: dict[int, float], value: float) -> None:
        self.add(coefs, value, value)

    def _solve(self, objective: dict[int, float], extra: tuple[dict[int, float], float, float] | None):
        n = len(self.index)
        if getattr(self, "_matrix", (None, -1))[1] != len(self.rows):  # build once per set of constraints
            data = [(r, j, v) for r, (coefs, _, _) in enumerate(self.rows) for j, v in coefs.items()]
            r, j, v = zip(*data)
            self._matrix = (sparse.csr_array((v, (r, j)), shape=(len(self.rows), n)), len(self.rows))
        a, lo, hi = self._matrix[0], [r[1] for r in self.rows], [r[2] for r in self.rows]
        if extra is not None:
            coefs, xlo, xhi = extra
            row = sparse.csr_array((list(coefs.values()), ([0] * len(coefs), list(coefs))), shape=(1, n))
            a, lo, hi = sparse.vstack([a, row], format="csr"), [*lo, xlo], [*hi, xhi]
        c = np.zeros(n)
        for j, v in objective.items():
            c[j] += v
        return milp(c, integrality=np.ones(n), bounds=Bounds(np.zeros(n), np.array(self.ub)),
                    constraints=LinearConstraint(a, lo, hi))

    def can_reach(self, form: dict[int, float], value: int) -> bool:
        """Is some integer solution consistent with everything observed with ``form >= value``?"""
        res = self._solve({}, (form, value, math.inf))
        assert res.status in (0, 2), res.message
        return res.status == 0

    def maximum(self, form: dict[int, float]) -> float:
        res = self._solve({j: -v for j, v in form.items()}, None)
        assert res.status == 0, f"the true population must be feasible: {res.message}"
        return -res.fun


def leaves_of(tree: AreaTree, area: Area) -> list[str]:
    if area[0] == "postal_code":
        return [area[1]]
    return [code for child in tree.children.get(area, ()) for code in leaves_of(tree, child)]


@dataclass(frozen=True)
class Cell:
    """The people of some postal codes, optionally with one category or with / without one interest."""

    description: str
    codes: frozenset[str]
    attr: str | None = None
    cat: str | None = None
    interest: int | None = None
    has: bool = True

    def holds(self, p: Person) -> bool:
        if p.postal_code not in self.codes:
            return False
        if self.attr is not None:
            return getattr(p, self.attr) == self.cat
        if self.interest is not None:
            return (self.interest in p.interests) == self.has
        return True

    def form(self, n, x, y) -> dict[int, float]:
        """The cell's count as a linear form over per-postal-code unknowns (accessors ``n``, ``x``, ``y``)."""
        if self.attr is not None:
            return {x(self.attr, c, self.cat): 1 for c in self.codes}
        if self.interest is not None and self.has:
            return {y(self.interest, c): 1 for c in self.codes}
        form = {n(c): 1 for c in self.codes}
        if self.interest is not None:  # without the interest: people minus people with it
            form.update({y(self.interest, c): -1 for c in self.codes})
        return form


def cells(world: World) -> list[Cell]:
    """Every area alone, with each category of each attribute, and with / without each interest."""
    out = []
    for area in world.tree.top_down:
        if area == ROOT:
            continue
        codes = frozenset(leaves_of(world.tree, area))
        out.append(Cell(f"{area}", codes))
        out += [Cell(f"{area} {a}={c}", codes, attr=a, cat=c) for a, cats in DOMAINS.items() for c in cats]
        out += [Cell(f"{area} {w} {i}", codes, interest=i, has=(w == "has"))
                for i in INTERESTS for w in ("has", "has not")]
    return out


class Observer:
    """The unknowns of one run (per postal code: people, per category, per interest) and what was published."""

    def __init__(self, ip: IntegerProgram, world: World, run: str) -> None:
        self.ip, self.world, self.run = ip, world, run
        self.codes = [a[0] for a in world.areas]
        for code in self.codes:
            n = self.n(code)
            for attr, cats in DOMAINS.items():
                ip.eq({**{self.x(attr, code, c): 1 for c in cats}, n: -1}, 0)
            for i in INTERESTS:
                ip.add({self.y(i, code): 1, n: -1}, -math.inf, 0)

    def n(self, code: str) -> int:
        return self.ip.var((self.run, "n", code))

    def x(self, attr: str, code: str, cat: str) -> int:
        return self.ip.var((self.run, attr, code, cat))

    def y(self, interest: int, code: str) -> int:
        return self.ip.var((self.run, "interest", interest, code))

    def form(self, cell: Cell) -> dict[int, float]:
        return cell.form(self.n, self.x, self.y)

    def observe(self, profiles, national: int) -> None:
        """Everything published, as linear equalities on the unknowns."""
        self.ip.eq({self.n(c): 1 for c in self.codes}, national)
        for p in profiles:
            codes = leaves_of(self.world.tree, (p.area_level, p.area_code))
            self.ip.eq({self.n(c): 1 for c in codes}, p.n_customers)
            for attr, shares in p.shares.items():
                shown = {c for c in shares if c != OTHER}
                blocks = {c: [c] for c in shown}
                blocks[OTHER] = [c for c in DOMAINS[attr] if c not in shown]
                for block, cats in blocks.items():
                    count = round(shares.get(block, 0.0) * p.n_customers)
                    self.ip.eq({self.x(attr, code, cat): 1 for code in codes for cat in cats}, count)
            for interest, _, share in p.top_interests:
                self.ip.eq({self.y(interest, c): 1 for c in codes}, round(share * p.n_customers))

    def targets(self, people: tuple[Person, ...]) -> list[tuple[str, dict[int, float], int]]:
        """(description, linear form, true value) of every sensitive cell of this run."""
        out = [(f"{self.run}: {c.description}", self.form(c), sum(map(c.holds, people))) for c in cells(self.world)]
        return [t for t in out if 0 < t[2] < self.world.k]


class Change:
    """One person joined (``join``) or moved keeping their attributes (``move``) between two observed runs.

    The unknowns ``-`` (left a postal code) and ``+`` (arrived in one) are 0/1 per postal code, category and
    interest; the stayers -- everybody but the person who changed -- are run 1 minus the ``-`` unknowns.
    """

    def __init__(self, ip: IntegerProgram, before: Observer, after: Observer, kind: str) -> None:
        self.ip, self.before = ip, before
        codes = before.codes
        plus = {c: self.n(c, "+") for c in codes}
        minus = {c: self.n(c, "-") for c in codes}
        ip.eq(dict.fromkeys(plus.values(), 1), 1)
        ip.eq(dict.fromkeys(minus.values(), 1), 1 if kind == "move" else 0)
        for c in codes:
            ip.eq({after.n(c): 1, before.n(c): -1, plus[c]: -1, minus[c]: 1}, 0)
        for attr, cats in DOMAINS.items():
            for cat in cats:
                for c in codes:
                    ip.eq({after.x(attr, c, cat): 1, before.x(attr, c, cat): -1,
                           self.x(attr, c, cat, "+"): -1, self.x(attr, c, cat, "-"): 1}, 0)
                if kind == "move":  # the same person: the same category on both sides
                    ip.eq({**{self.x(attr, c, cat, "+"): 1 for c in codes},
                           **{self.x(attr, c, cat, "-"): -1 for c in codes}}, 0)
            for c in codes:
                for side, mark in (("+", plus[c]), ("-", minus[c])):
                    ip.eq({**{self.x(attr, c, cat, side): 1 for cat in cats}, mark: -1}, 0)
        for i in INTERESTS:
            for c in codes:
                ip.eq({after.y(i, c): 1, before.y(i, c): -1, self.y(i, c, "+"): -1, self.y(i, c, "-"): 1}, 0)
                ip.add({self.y(i, c, "+"): 1, plus[c]: -1}, -math.inf, 0)
                ip.add({self.y(i, c, "-"): 1, minus[c]: -1}, -math.inf, 0)
            if kind == "move":
                ip.eq({**{self.y(i, c, "+"): 1 for c in codes}, **{self.y(i, c, "-"): -1 for c in codes}}, 0)

    def n(self, code: str, side: str) -> int:
        return self.ip.var((side, code), 1)

    def x(self, attr: str, code: str, cat: str, side: str) -> int:
        return self.ip.var((side, attr, code, cat), 1)

    def y(self, interest: int, code: str, side: str) -> int:
        return self.ip.var((side, interest, code), 1)

    def stayer_targets(self, stayers: tuple[Person, ...], world: World) -> list[tuple[str, dict[int, float], int]]:
        """Sensitive cells counted over the stayers: run-1 unknowns minus the person who left."""
        out = []
        for cell in cells(world):
            form = dict(self.before.form(cell))
            gone = cell.form(lambda c: self.n(c, "-"), lambda a, c, v: self.x(a, c, v, "-"),
                             lambda i, c: self.y(i, c, "-"))
            for j, v in gone.items():
                form[j] = form.get(j, 0) - v
            value = sum(map(cell.holds, stayers))
            if 0 < value < world.k:
                out.append((f"stayers: {cell.description}", form, value))
        return out


def assert_nothing_recovered(ip: IntegerProgram, targets, k: int) -> None:
    for description, form, value in targets:
        if not ip.can_reach(form, k):
            top = ip.maximum(form)
            raise AssertionError(f"{description}: true {value}, published data allow at most {top:g} < k={k}")


# ------------------------------------------------------------------------------------------- properties

#: The integer-program attacks are slow (a MILP per sensitive cell; marked ``slow``): 40 worlds by default; a
#: soak run sets ``GEO_ATTACK_EXAMPLES=500``.
HARNESS = settings(max_examples=int(os.environ.get("GEO_ATTACK_EXAMPLES", "40")), deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


@given(worlds(max_people=120))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_published_area_below_k_and_totals_consistent(world: World) -> None:
    pub, tables = publish(world)
    k, tree = world.k, world.tree
    truth = tree.rollup(Counter(p.postal_code for p in world.people))
    rows = {(p.area_level, p.area_code): p for p in pub.profiles}
    for area, row in rows.items():
        assert row.n_customers >= k
        assert row.n_customers == truth[area]  # exact mode: the true count of the area
        for attr, shares in row.shares.items():
            assert math.isclose(sum(shares.values()), 1.0), (area, attr, shares)
    national = truth.get(ROOT, 0)
    if national < k:  # the whole population is one small cell: nothing at all is published
        assert not rows
        return
    for parent in [ROOT, *(a for a in rows if a[0] != "postal_code")]:
        total = national if parent == ROOT else rows[parent].n_customers
        children = tree.children.get(parent, ())
        published_children = [c for c in children if c in rows]
        rest = total - sum(rows[c].n_customers for c in published_children)
        assert is_safe(rest, k), f"{parent}: {total} minus published children leaves {rest}"
        if all(c in rows for c in children if truth.get(c, 0)):
            assert rest == 0
    assert all(is_safe(v, k) for v in residuals(tree, truth, pub.suppression.published).values())


@given(worlds(max_people=120))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_named_differencing_attacks_recover_nothing(world: World) -> None:
    """Parent minus published children (all levels, national included); share × n; category differences."""
    pub, _ = publish(world)
    k, tree = world.k, world.tree
    rows = {(p.area_level, p.area_code): p for p in pub.profiles}
    national = len(world.people)
    derived: list[tuple[str, int]] = []
    for parent in [ROOT, *rows] if national >= k else []:  # below k nationally nothing is published
        total = national if parent == ROOT else rows[parent].n_customers
        frontier = [c for c in tree.children.get(parent, ())]
        published_below: list[Area] = []
        while frontier:  # maximal published descendants: children, or grandchildren of suppressed children
            a = frontier.pop()
            if a in rows:
                published_below.append(a)
            else:
                frontier += tree.children.get(a, ())
        derived.append((f"{parent} minus published below", total - sum(rows[a].n_customers for a in published_below)))
        if parent == ROOT:
            continue
        row = rows[parent]
        for attr, shares in row.shares.items():
            counts = {c: round(s * row.n_customers) for c, s in shares.items()}
            derived += [(f"{parent} {attr}={c} (share x n)", v) for c, v in counts.items()]
            for child in published_below:
                child_shares = rows[child].shares[attr]
                if set(child_shares) == set(shares):  # same partition: per-block difference is meaningful
                    for c in counts:
                        counts[c] -= round(child_shares[c] * rows[child].n_customers)
            if all(set(rows[c].shares[attr]) == set(shares) for c in published_below):
                derived += [(f"{parent} {attr}={c} minus published below", v) for c, v in counts.items()]
        for interest, _, share in row.top_interests:
            has = round(share * row.n_customers)
            derived += [(f"{parent} has {interest}", has), (f"{parent} has not {interest}", row.n_customers - has)]
    bad = [(d, v) for d, v in derived if not is_safe(v, k)]
    assert not bad, bad


@pytest.mark.slow
@given(worlds(max_people=60))
@HARNESS
def test_integer_program_recovers_nothing_from_one_run(world: World) -> None:
    assume(len(world.people) >= world.k)  # a national total below k is a small cell known to everyone
    pub, _ = publish(world)
    ip = IntegerProgram(upper=len(world.people))
    run = Observer(ip, world, "run")
    run.observe(pub.profiles, len(world.people))
    assert_nothing_recovered(ip, run.targets(world.people), world.k)


@pytest.mark.slow
@given(worlds(max_people=36), st.data())
@HARNESS
def test_integer_program_recovers_nothing_about_stayers_from_two_runs(world: World, data) -> None:
    """Run 2 differs from run 1 by one person who joined, or one person who moved (same attributes).

    Targets are counted over the stayers (everybody but that person): exact counts cannot hide the change
    itself -- a cell known to be empty in run 1 holds at most the newcomer in run 2 -- but it must reveal
    nothing about anybody else.
    """
    assume(len(world.people) >= world.k)  # a national total below k is a small cell known to everyone
    codes = [a[0] for a in world.areas]
    kind = data.draw(st.sampled_from(["join", "move"]))
    if kind == "join":
        stayers = world.people
        second = (*world.people, data.draw(person(codes)))
    else:
        i = data.draw(st.integers(0, len(world.people) - 1))
        moved = world.people[i]
        destination = data.draw(st.sampled_from([c for c in codes if c != moved.postal_code] or codes))
        stayers = (*world.people[:i], *world.people[i + 1:])
        second = (*stayers, Person(destination, *[getattr(moved, a) for a in ATTRIBUTES], moved.interests))
    first_pub, _ = publish(world)
    second_pub, _ = publish(world, second, previous=first_pub)
    ip = IntegerProgram(upper=len(second))
    before, after = Observer(ip, world, "run 1"), Observer(ip, world, "run 2")
    before.observe(first_pub.profiles, len(world.people))
    after.observe(second_pub.profiles, len(second))
    change = Change(ip, before, after, kind)
    assert_nothing_recovered(ip, change.stayer_targets(stayers, world), world.k)


@given(worlds(max_people=120))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_block_residuals_are_safe(world: World) -> None:
    """The invariant behind the share guarantee: one partition per attribute, safe block residuals."""
    pub, tables = publish(world)
    k, tree = world.k, world.tree
    tables_by_attr = {**{a: (tables.attributes[a], pub.partitions[a], pub.showing[a]) for a in ATTRIBUTES}}
    for interest, areas in pub.interests.items():
        table = {a: {"has": tables.interests.get(a, {}).get(interest, 0)} for a in tree.top_down}
        for a in table:
            table[a]["has_not"] = tables.n.get(a, 0) - table[a]["has"]
        tables_by_attr[interest] = (table, frozenset({"has"}), areas)
    for attr, (counts, part, shown) in tables_by_attr.items():
        assert shown <= pub.suppression.published
        for area in shown:
            below = [d for d in shown if tree.nearest(d, shown) == area]
            residual = block_counts(counts[area], part)
            for d in below:
                for b, v in block_counts(counts[d], part).items():
                    residual[b] -= v
            assert all(is_safe(v, k) for v in residual.values()), (attr, area, residual)


def test_harness_catches_a_naive_publication() -> None:
    """The integer program is a real attacker: publishing every area with n >= k without complementary
    suppression lets it recover the lone small postal code of a province."""
    areas = (("1000", "P1", "R1"), ("1010", "P1", "R1"), ("2000", "P2", "R1"))
    tree = AreaTree.build(areas)
    people = tuple(Person(code, "18-34", "F", "nl", "unknown", frozenset())
                   for code, count in (("1000", 2), ("1010", 12), ("2000", 12)) for _ in range(count))
    world = World(3, areas, people, tree)
    from pipelines.privacy.geo import AreaProfile

    truth = tree.rollup(Counter(p.postal_code for p in people))
    naive = [AreaProfile(a[0], a[1], None, None, v, {}, ()) for a, v in truth.items() if a != ROOT and v >= world.k]
    ip = IntegerProgram(upper=len(people))
    run = Observer(ip, world, "naive")
    run.observe(naive, len(people))
    targets = [t for t in run.targets(people) if t[0] == "naive: ('postal_code', '1000')"]
    assert [v for _, _, v in targets] == [2]
    with pytest.raises(AssertionError, match="allow at most 2"):
        assert_nothing_recovered(ip, targets, world.k)
