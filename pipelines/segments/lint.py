"""Lint segment definitions: schema, catalogue, policy and logic checks, reported as ``file:line: problem``.

Errors (non-zero exit of ``audience segments validate``; the daily run skips the segment):

* unknown attribute, operator or value; unknown IAB id; an interest that is not an Interest node;
* special-category attribute or interest on the deny-list (GDPR art. 9, P4);
* an attribute the privacy policy does not let feed the segment's channel (e.g. cadastral data on TV);
* a rule that reaches minors (an age condition admitting ages under ``minimum_age``, C5);
* ``min_audience`` below the configured floor; missing owner; duplicate name;
* a purpose that is not configured, a channel without its purpose, a purpose that fits no channel;
* a rule that can never match (contradictions, empty lists, ``min > max``, ``not`` of something always true).

Warnings: a branch that can never match, a rule that matches every profile, an interest no mapping
derives, a file not named after its segment.

"Can never match" is decided exactly on a finite abstraction of the profiles: each attribute gets a
finite domain (ages 0-130, postal codes with their province and region, the catalogue values, and the
thresholds written in the rule for scores and counts); the rule is a formula over those variables and a
small tableau search looks for one satisfying profile. Region, province and postal code are one
variable, so ``region: [BE-WAL]`` with ``province: [BE-VAN]`` is a contradiction.

Example::

    >>> from pipelines.config import load_settings
    >>> from pipelines.segments.model import parse_text
    >>> text = "name: bad\\ndescription: Contradiction.\\nowner: x\\nchannels: [tv]\\n" \\
    ...        "purpose: tv_personalised_ads\\nmin_audience: 100\\nrule:\\n  all:\\n" \\
    ...        "    - gender: [F]\\n    - gender: [M]\\n"
    >>> defn = parse_text(text, "bad.yaml").definition
    >>> [str(p) for p in lint_definition(defn, load_catalogue(load_settings().conf_dir), load_settings())]
    ['bad.yaml:8: error: rule can never match: the conditions under `all` contradict each other']
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

from pipelines.config import Settings
from pipelines.segments.catalogue import (
    MAX_AGE,
    ArrayHas,
    Between,
    Catalogue,
    InterestScore,
    InValues,
    IsBool,
    Predicate,
    RecencyDays,
    age_range_of,
    describe_predicate,
    load_catalogue,
)
from pipelines.segments.model import (
    AllOf,
    Condition,
    Node,
    Not,
    ParseResult,
    Problem,
    SegmentDefinition,
    conditions,
    discover,
    parse_file,
)

#: The consent purpose each channel's profiles are built under (contract section 2).
CHANNEL_PURPOSES: Mapping[str, str] = {"tv": "tv_personalised_ads", "web": "web_profile"}
#: Further uses a segment may be declared for, on any channel (Ads & Data sharing, list refinement).
SHARING_PURPOSES: tuple[str, ...] = ("ads_and_data", "advertiser_list_refinement")

GEO_ATTRIBUTES = ("region", "province", "postal_code")
AGE_DOMAIN = frozenset(range(0, MAX_AGE + 1))
SEARCH_BUDGET = 50_000

# --- a finite abstraction of a profile -------------------------------------------------------------


@dataclass(frozen=True)
class Atom:
    """``var`` takes one of ``allowed`` (a subset of the variable's finite domain)."""

    var: str
    allowed: frozenset
    line: int


@dataclass(frozen=True)
class Conj:
    parts: tuple["Formula", ...]
    line: int


@dataclass(frozen=True)
class Disj:
    parts: tuple["Formula", ...]
    line: int


@dataclass(frozen=True)
class Neg:
    part: "Formula"
    line: int


@dataclass(frozen=True)
class Leaf:
    """The formula of one written condition (kept so explanations point at the condition)."""

    inner: "Formula"
    line: int
    text: str


Formula = Union[Atom, Conj, Disj, Neg, Leaf]


class _Budget(Exception):
    """The search gave up: the rule is treated as satisfiable (never a false error)."""


@dataclass
class Abstraction:
    """Variables and their finite domains for one rule, and the formula of each rule node."""

    catalogue: Catalogue
    min_lift: float
    domains: dict[str, frozenset] = field(default_factory=dict)
    thresholds: dict[str, set] = field(default_factory=lambda: defaultdict(set))
    _fresh: int = 0

    # -- domains -----------------------------------------------------------------------------------

    def _collect(self, p: Predicate) -> None:
        """First pass: the constants a rule compares numbers with (they decide the representatives)."""
        if isinstance(p, Between) and p.attribute != "age":
            self.thresholds[p.attribute].update(v for v in (p.low, p.high) if v is not None)
        elif isinstance(p, RecencyDays):
            self.thresholds[p.attribute].update(v for v in (p.min_days, p.max_days) if v is not None)
        elif isinstance(p, InterestScore):
            for i in p.ids:
                self.thresholds[f"interest={i}"].update([p.min_score] if p.min_score is not None else [])

    def domain(self, var: str) -> frozenset:
        if var in self.domains:
            return self.domains[var]
        attr = self.catalogue.attribute(var)
        if var == "age":
            dom = AGE_DOMAIN
        elif var == "place":
            dom = frozenset(self.catalogue.geography.areas) | {None}
        elif var.startswith("interest="):
            # Absent, the lowest stored score, each threshold and above all: every class of profile.
            ts = self.thresholds.get(var, set())
            dom = frozenset({None, self.min_lift, *ts, max(ts | {self.min_lift}) + 1.0})
        elif "=" in var:  # one element of an array attribute: held or not
            dom = frozenset({True, False})
        elif attr is not None and attr.kind in ("range", "recency"):
            ts = self.thresholds.get(var, set())
            floor = 1 if attr.kind == "range" else 0
            reps = {floor} | {v for t in ts for v in (t - 1, t, t + 1)}
            dom = frozenset({v for v in reps if v >= floor} | ({None} if attr.nullable else set()))
        elif attr is not None and attr.kind == "bool":
            dom = frozenset({True, False} | ({None} if attr.nullable else set()))
        elif attr is not None:
            dom = frozenset(attr.values) | ({None} if attr.nullable else set())
        else:
            dom = frozenset({True, False})
        self.domains[var] = dom
        return dom

    def _atom(self, var: str, allowed: Iterable[Any], line: int) -> Atom:
        return Atom(var, frozenset(allowed) & self.domain(var), line)

    def _unknown(self, line: int) -> Atom:
        # An unusable condition: a fresh free variable, so it can go either way.
        self._fresh += 1
        return Atom(f"?{self._fresh}", frozenset({True}), line)

    # -- translation -------------------------------------------------------------------------------

    def predicate_formula(self, p: Predicate, line: int) -> Formula:
        if isinstance(p, InValues):
            if p.attribute in GEO_ATTRIBUTES:
                var, allowed = "place", self.catalogue.postal_codes_in(p.attribute, p.values)
            elif p.attribute == "age_band":
                ranges = [age_range_of(v) for v in p.values]
                var, allowed = "age", frozenset(a for r in ranges if r for a in range(r[0], r[1] + 1))
            else:
                var, allowed = p.attribute, frozenset(p.values)
            if p.negated:
                allowed = self.domain(var) - allowed - {None}
            return self._atom(var, allowed, line)
        if isinstance(p, Between):
            var = "age" if p.attribute == "age" else p.attribute
            low = p.low if p.low is not None else float("-inf")
            high = p.high if p.high is not None else float("inf")
            return self._atom(var, (v for v in self.domain(var) if v is not None and low <= v <= high), line)
        if isinstance(p, IsBool):
            return self._atom(p.attribute, {p.value}, line)
        if isinstance(p, ArrayHas):
            held = p.mode != "none_of"
            atoms = tuple(self._atom(f"{p.attribute}={v}", {held}, line) for v in p.values)
            return Disj(atoms, line) if p.mode == "any_of" else Conj(atoms, line)
        if isinstance(p, InterestScore):
            atoms = []
            for i in p.ids:
                var = f"interest={i}"
                atoms.append(self._atom(var, (r for r in self.domain(var) if r is not None
                                              and (p.min_score is None or r >= p.min_score)), line))
            return Disj(tuple(atoms), line)
        low = p.min_days if p.min_days is not None else float("-inf")
        high = p.max_days if p.max_days is not None else float("inf")
        return self._atom(p.attribute, (v for v in self.domain(p.attribute) if v is not None and low <= v <= high),
                          line)

    def formula(self, node: Node, predicates: Mapping[int, Predicate | None]) -> Formula:
        """The formula of a rule node; ``predicates`` maps ``id(condition)`` to its predicate."""
        if isinstance(node, Condition):
            p = predicates.get(id(node))
            if p is None:
                return Leaf(self._unknown(node.line), node.line, f"{node.attribute}: {node.spec!r}")
            return Leaf(self.predicate_formula(p, node.line), node.line, describe_predicate(p))
        if isinstance(node, Not):
            return Neg(self.formula(node.child, predicates), node.line)
        parts = tuple(self.formula(child, predicates) for child in node.children)
        return Conj(parts, node.line) if isinstance(node, AllOf) else Disj(parts, node.line)

    # -- satisfiability ----------------------------------------------------------------------------

    def nnf(self, f: Formula, negate: bool = False) -> Formula:
        """Negation pushed down to the atoms (complement within the variable's domain)."""
        if isinstance(f, Atom):
            return Atom(f.var, self.domain(f.var) - f.allowed, f.line) if negate else f
        if isinstance(f, Leaf):
            return self.nnf(f.inner, negate)
        if isinstance(f, Neg):
            return self.nnf(f.part, not negate)
        parts = tuple(self.nnf(p, negate) for p in f.parts)
        if isinstance(f, Conj):
            return Disj(parts, f.line) if negate else Conj(parts, f.line)
        return Conj(parts, f.line) if negate else Disj(parts, f.line)

    def satisfiable(self, f: Formula) -> bool:
        """True when some profile satisfies ``f`` (also when the search budget runs out)."""
        steps = [0]

        def search(todo: list[Formula], env: dict[str, frozenset]) -> bool:
            steps[0] += 1
            if steps[0] > SEARCH_BUDGET:
                raise _Budget
            env = dict(env)
            todo = list(todo)
            branches: list[Disj] = []
            while todo:
                g = todo.pop()
                if isinstance(g, Atom):
                    current = env.get(g.var, self.domain(g.var)) & g.allowed
                    if not current:
                        return False
                    env[g.var] = current
                elif isinstance(g, Conj):
                    todo.extend(g.parts)
                else:
                    branches.append(g)  # type: ignore[arg-type]
            if not branches:
                return True
            first, rest = branches[0], branches[1:]
            return any(search(rest + [choice], env) for choice in first.parts)

        try:
            return search([self.nnf(f)], {})
        except _Budget:
            return True


def _age_set(f: Formula) -> frozenset | None:
    """Ages a rule explicitly admits; None when no age condition decides (the profiles' adults only)."""
    if isinstance(f, Atom):
        return f.allowed if f.var == "age" else None
    if isinstance(f, Leaf):
        return _age_set(f.inner)
    if isinstance(f, Neg):
        inner = _age_set(f.part)
        return None if inner is None else AGE_DOMAIN - inner
    sets = [s for s in (_age_set(p) for p in f.parts) if s is not None]
    if not sets:
        return None
    if isinstance(f, Conj):
        return frozenset.intersection(*sets)
    return frozenset.union(*sets)


def _minor_lines(f: Formula, minimum_age: int, negated: bool = False) -> list[int]:
    """Lines of age conditions that, with the polarity they have in the rule, admit minors."""
    if isinstance(f, Atom):
        admitted = AGE_DOMAIN - f.allowed if negated else f.allowed
        return [f.line] if f.var == "age" and any(a < minimum_age for a in admitted) else []
    if isinstance(f, Leaf):
        return _minor_lines(f.inner, minimum_age, negated)
    if isinstance(f, Neg):
        return _minor_lines(f.part, minimum_age, not negated)
    return [line for p in f.parts for line in _minor_lines(p, minimum_age, negated)]


def _explain_never(ab: Abstraction, f: Formula) -> list[tuple[int, str]]:
    """Where and why an unsatisfiable formula fails, as precisely as the tree allows."""
    if ab.satisfiable(f):
        return []
    if isinstance(f, Leaf):
        return [(f.line, f"the condition `{f.text}` can never be true")]
    if isinstance(f, Atom):
        return [(f.line, "this condition can never be true")]
    if isinstance(f, Neg):
        return [(f.line, "`not` of a condition that always holds")]
    failing = [p for p in f.parts if not ab.satisfiable(p)]
    if isinstance(f, Conj) and not failing:
        return [(f.line, "the conditions under `all` contradict each other")]
    return [item for p in failing for item in _explain_never(ab, p)]


def _dead_parts(ab: Abstraction, f: Formula) -> list[tuple[int, str]]:
    """Parts of a satisfiable rule that can never match on their own (dead branches)."""
    found: list[tuple[int, str]] = []
    children = (f.parts if isinstance(f, (Conj, Disj)) else (f.part,) if isinstance(f, Neg) else ())
    for child in children:
        if not ab.satisfiable(child):
            text = f"the condition `{child.text}`" if isinstance(child, Leaf) else "this part of the rule"
            found.append((child.line, f"{text} can never be true"
                          + (", so the `not` above it always holds" if isinstance(f, Neg) else " (dead condition)")))
        else:
            found += _dead_parts(ab, child)
    return found


# --- checks ---------------------------------------------------------------------------------------


def _policy_channels_note(attribute: str) -> str:
    return {"dwelling_type": "cadastral data", "has_garden": "cadastral data",
            "products_owned": "purchases", "purchase_recency": "purchases"}.get(attribute, "this data")


def lint_rule(defn: SegmentDefinition, catalogue: Catalogue, settings: Settings) -> list[Problem]:
    """Catalogue, channel, minors and satisfiability checks of one definition's rule."""
    problems: list[Problem] = []

    def add(line: int, message: str, severity: str = "error") -> None:
        problems.append(Problem(defn.path, line, message, severity))

    predicates: dict[int, Predicate | None] = {}
    rule_errors = False
    for cond in conditions(defn.rule):
        interpretation = catalogue.interpret(cond)
        predicates[id(cond)] = interpretation.predicate
        for severity, message in interpretation.findings:
            add(cond.line, message, severity)
            rule_errors |= severity == "error"
        attr = catalogue.attribute(cond.attribute)
        if attr is not None and not attr.special_category:
            for channel in defn.channels:
                if channel not in attr.channels:
                    add(cond.line, f"{attr.name} cannot be used on channel {channel}: the privacy policy lets "
                                   f"{_policy_channels_note(attr.name)} feed the "
                                   f"{' and '.join(sorted(attr.channels))} profile only")
                    rule_errors = True

    ab = Abstraction(catalogue, settings.profiles.min_lift)
    for p in predicates.values():
        if p is not None:
            ab._collect(p)
    rule = ab.formula(defn.rule, predicates)

    admitted = _age_set(rule)
    if admitted is not None and any(a < settings.minimum_age for a in admitted):
        minors = sorted(a for a in admitted if a < settings.minimum_age)
        lines = _minor_lines(rule, settings.minimum_age) or [defn.rule.line]
        add(lines[0], f"rule reaches minors: its age conditions admit ages {minors[0]}-{minors[-1]}, under the "
                      f"minimum age of {settings.minimum_age} (no profiling of minors, C5)")
        rule_errors = True

    if rule_errors:
        return problems  # the logic checks below would only repeat the errors above

    guard = Atom("age", frozenset(range(settings.minimum_age, MAX_AGE + 1)), defn.rule.line)
    if not ab.satisfiable(rule):
        for line, why in _explain_never(ab, rule):
            add(line, f"rule can never match: {why}")
    elif not ab.satisfiable(Conj((rule, guard), defn.rule.line)):
        add(defn.rule.line, f"rule can never match: it only admits people under {settings.minimum_age}, "
                            "who never have a profile")
    else:
        for line, why in _dead_parts(ab, rule):
            add(line, why, "warning")
        if not ab.satisfiable(Conj((Neg(rule, defn.rule.line), guard), defn.rule.line)):
            add(defn.rule.line, "rule matches every profile of its channel(s)", "warning")
    return problems


def lint_definition(defn: SegmentDefinition, catalogue: Catalogue, settings: Settings) -> list[Problem]:
    """Every check of one definition that does not need the other definitions."""
    problems: list[Problem] = []

    def add(field_name: str, message: str, severity: str = "error") -> None:
        problems.append(Problem(defn.path, defn.line_of(field_name), message, severity))

    if not defn.owner.strip():
        add("owner", "missing owner: every segment needs an owning team or person")
    stem = Path(defn.path).stem
    if stem != defn.name:
        add("name", f"file is named {stem!r} but the segment is {defn.name!r}; name the file {defn.name}.yaml",
            "warning")
    floor = settings.segments.min_audience_floor
    if defn.min_audience < floor:
        add("min_audience", f"min_audience {defn.min_audience} is below the global floor of {floor} "
                            "(segments.min_audience_floor)")

    for purpose in defn.purposes:
        if purpose not in settings.purposes:
            add("purpose", f"unknown purpose {purpose!r}; configured purposes: {', '.join(sorted(settings.purposes))}")
        elif purpose not in SHARING_PURPOSES and purpose not in {CHANNEL_PURPOSES[c] for c in defn.channels}:
            fits = [c for c, p in CHANNEL_PURPOSES.items() if p == purpose]
            add("purpose", f"purpose {purpose!r} does not fit channels {', '.join(defn.channels)}"
                           + (f" (it is the purpose of channel {fits[0]})" if fits else
                              " (segments are processed for a channel purpose, "
                              f"optionally with {' or '.join(SHARING_PURPOSES)})"))
    for channel in defn.channels:
        needed = CHANNEL_PURPOSES[channel]
        if needed not in defn.purposes:
            add("purpose", f"channel {channel} needs purpose {needed!r}: its profiles are built under that purpose")

    for audience_id in defn.iab_audience_ids:
        node = catalogue.audience.get(audience_id)
        if node is None:
            add("iab_audience_ids", f"unknown IAB audience id {audience_id} (not in Audience Taxonomy 1.1)")
        elif catalogue.deny.denies_audience(audience_id):
            add("iab_audience_ids", f"IAB audience id {audience_id} ({node.name}) is a special category on the "
                                    "deny-list; GDPR art. 9 (P4)")
    return problems + lint_rule(defn, catalogue, settings)


def lint_definitions(definitions: Sequence[SegmentDefinition], catalogue: Catalogue,
                     settings: Settings) -> list[Problem]:
    """Every check, including those across files (duplicate names)."""
    problems: list[Problem] = []
    first_seen: dict[str, SegmentDefinition] = {}
    for defn in definitions:
        problems += lint_definition(defn, catalogue, settings)
        earlier = first_seen.setdefault(defn.name, defn)
        if earlier is not defn:
            problems.append(Problem(defn.path, defn.line_of("name"), f"duplicate name {defn.name!r}: also defined "
                                    f"in {earlier.path}:{earlier.line_of('name')}"))
    return problems


@dataclass(frozen=True)
class ValidationResult:
    """Every parsed definition and every problem, sorted by file and line."""

    parsed: tuple[ParseResult, ...]
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.is_error]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def definitions(self) -> list[SegmentDefinition]:
        return [r.definition for r in self.parsed if r.definition is not None]

    @property
    def valid(self) -> list[SegmentDefinition]:
        """Definitions whose file has no error (only these are ever compiled and published)."""
        bad = {p.path for p in self.errors}
        return [d for d in self.definitions if d.path not in bad]


def validate_paths(paths: Iterable[Path], settings: Settings, catalogue: Catalogue | None = None) -> ValidationResult:
    """Parse and lint the definition files under ``paths`` (files or folders)."""
    catalogue = catalogue or load_catalogue(settings.conf_dir)
    parsed = tuple(parse_file(p) for p in discover(paths))
    problems = [p for r in parsed for p in r.problems]
    problems += lint_definitions([r.definition for r in parsed if r.definition is not None], catalogue, settings)
    return ValidationResult(parsed, tuple(sorted(problems, key=lambda p: (p.path, p.line, p.severity, p.message))))
