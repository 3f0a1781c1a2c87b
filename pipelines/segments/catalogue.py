"""The published attribute catalogue: the only attributes a segment rule may use, and what they mean.

Each :class:`Attribute` names the profile column it reads, its kind (which fixes the operators), its
allowed values, where the data comes from (for the transparency label), on which channel the privacy
policy allows it, and whether it is a special category (GDPR art. 9, P4: listed so that a rule using it
gets a clear refusal instead of "unknown attribute"). Values are read from the reference data in
``conf/`` (IAB age bands, Belgian geography, interest mappings, deny-list), never typed twice.

:meth:`Catalogue.interpret` turns one written condition into a typed :data:`Predicate` plus findings;
the compiler turns predicates into Spark columns, the linter reasons about them.

Example::

    >>> from pipelines.config import CONF_DIR
    >>> from pipelines.segments.model import Condition
    >>> cat = load_catalogue(CONF_DIR)
    >>> cat.interpret(Condition("age", {"min": 25, "max": 34}, 3))
    Interpretation(predicate=Between(attribute='age', column='age', low=25, high=34), findings=())
    >>> cat.interpret(Condition("religion", ["x"], 4)).findings[0][1][:40]
    'religion is a special-category attribute'
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from pipelines.reference.geo import Geography, load_geography
from pipelines.reference.taxonomy import (
    AUDIENCE_TAXONOMY_FILE,
    PRODUCT_CATEGORIES,
    PRODUCT_TIERS,
    AgeBand,
    AudienceNode,
    DenyList,
    iab_age_bands,
    load_audience_taxonomy,
    load_deny_list,
    load_mappings,
    subtree,
)
from pipelines.segments.model import AllOf, Condition, Not

# Kinds of attribute and the operators each accepts (a bare value or list is the first operator).
KIND_OPERATORS: Mapping[str, tuple[str, ...]] = {
    "enum": ("in", "not_in"),
    "range": ("min", "max"),
    "bool": ("is",),
    "array": ("any_of", "all_of", "none_of"),
    "interest": ("iab_audience_id", "name", "min_score", "include_children"),
    "recency": ("min_days", "max_days"),
    "forbidden": (),
}

# Data sources, worded for the transparency label.
ADMIN = "Administrative data (customer record)"
SOCIODEMO = "Socio-demographic data purchased from a data supplier (individual or household)"
AREA = "Neighbourhood statistics purchased from a data supplier"
CADASTRAL = "Cadastral data (public cadastral plan, Federal Public Service Finance)"
PURCHASES = "Proximus products purchased"
INTEREST_SOURCES: Mapping[str, str] = {
    "tv": "TV viewing behaviour by genre on Pickx (decoder, app and web)",
    "web": "TV viewing genres, Proximus purchases, Enjoy! and Pickx competitions, "
           "pages' content categories and ads seen or clicked (third-party ad cookies)",
}

BOTH = frozenset({"tv", "web"})
WEB = frozenset({"web"})


@dataclass(frozen=True)
class Attribute:
    """One catalogue entry. ``channels``: the profiles the privacy policy lets this data feed."""

    name: str
    column: str | None
    kind: str
    description: str
    source: str
    criteria: str  # IAB DTS audience criteria: declared, observed, inferred, modelled
    channels: frozenset[str] = BOTH
    values: tuple[str, ...] = ()
    nullable: bool = False
    special_category: bool = False
    lookback: str = "current"  # "current", "interests" or "purchases" (resolved from the settings)

    @property
    def operators(self) -> tuple[str, ...]:
        return KIND_OPERATORS[self.kind]


# --- predicates: a condition once checked against the catalogue ---------------------------------


@dataclass(frozen=True)
class InValues:
    """Column value in ``values`` (``negated``: a known value not in ``values``; unknown never matches)."""

    attribute: str
    column: str
    values: tuple[str, ...]
    negated: bool = False


@dataclass(frozen=True)
class Between:
    """Integer column within ``[low, high]`` (either bound may be open)."""

    attribute: str
    column: str
    low: int | None
    high: int | None


@dataclass(frozen=True)
class IsBool:
    attribute: str
    column: str
    value: bool


@dataclass(frozen=True)
class ArrayHas:
    """Array column holds any / all / none of ``values`` (a missing array counts as empty)."""

    attribute: str
    column: str
    values: tuple[str, ...]
    mode: str  # any_of, all_of, none_of


@dataclass(frozen=True)
class InterestScore:
    """An interest among ``ids`` with a score of at least ``min_score`` (None: any score)."""

    ids: tuple[int, ...]
    min_score: float | None
    label: str
    attribute: str = "interest"
    column: str = "interests"


@dataclass(frozen=True)
class RecencyDays:
    """Days since the last purchase within ``[min_days, max_days]``; never bought never matches."""

    min_days: int | None
    max_days: int | None
    attribute: str = "purchase_recency"
    column: str = "last_purchase_days"


Predicate = Union[InValues, Between, IsBool, ArrayHas, InterestScore, RecencyDays]
Finding = tuple[str, str]  # (severity, message)


@dataclass(frozen=True)
class Interpretation:
    """A condition's predicate (None when it cannot be evaluated at all) and what is wrong with it."""

    predicate: Predicate | None
    findings: tuple[Finding, ...] = ()

    @property
    def has_errors(self) -> bool:
        return any(severity == "error" for severity, _ in self.findings)


_AGE_LABEL = re.compile(r"^(\d+)\s*(?:-\s*(\d+)|\+)$")
MAX_AGE = 130


def age_range_of(label: str) -> tuple[int, int] | None:
    """Ages covered by an age band label ("25-29", "75+"), IAB or not; None when not a band label.

    >>> age_range_of("25-29"), age_range_of("75+"), age_range_of("13-17"), age_range_of("young")
    ((25, 29), (75, 130), (13, 17), None)
    """
    match = _AGE_LABEL.match(str(label).strip())
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else MAX_AGE


@dataclass(frozen=True)
class Catalogue:
    """The attribute catalogue with the reference data its values come from."""

    attributes: Mapping[str, Attribute]
    audience: Mapping[int, AudienceNode]
    deny: DenyList
    interest_labels: Mapping[int, str]  # interests some mapping derives, with their readable label
    age_bands: tuple[AgeBand, ...]
    geography: Geography

    def attribute(self, name: str) -> Attribute | None:
        return self.attributes.get(name)

    @property
    def usable(self) -> list[Attribute]:
        """The attributes analysts may use (special categories excluded), in catalogue order."""
        return [a for a in self.attributes.values() if not a.special_category]

    # -- interests -------------------------------------------------------------------------------

    def interest_label(self, audience_id: int) -> str:
        node = self.audience.get(audience_id)
        return self.interest_labels.get(audience_id) or (node.name if node else str(audience_id))

    def resolve_interest_name(self, name: str) -> tuple[list[int], str]:
        """Interest ids whose mapping label or IAB name is ``name`` (case-insensitive), and how it matched."""
        key = name.strip().casefold()
        by_label = sorted(i for i, label in self.interest_labels.items() if label.casefold() == key)
        if by_label:
            return by_label, "label"
        by_name = sorted(n.id for n in self.audience.values() if n.is_interest and n.name.casefold() == key)
        return by_name, "IAB name"

    # -- geography ---------------------------------------------------------------------------------

    def postal_codes_in(self, attribute: str, values: tuple[str, ...]) -> frozenset[str]:
        """Postal codes of the given regions / provinces / codes (unknown values contribute nothing)."""
        wanted = set(values)
        areas = self.geography.areas.values()
        if attribute == "region":
            return frozenset(a.postal_code for a in areas if a.region_code in wanted)
        if attribute == "province":
            return frozenset(a.postal_code for a in areas if a.province_code in wanted)
        return frozenset(a.postal_code for a in areas if a.postal_code in wanted)

    # -- interpretation ----------------------------------------------------------------------------

    def interpret(self, condition: Condition) -> Interpretation:
        """Check one condition against the catalogue and build its predicate."""
        attr = self.attributes.get(condition.attribute)
        if attr is None:
            close = difflib.get_close_matches(condition.attribute, [a.name for a in self.usable], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            return Interpretation(None, (("error", f"unknown attribute {condition.attribute!r}{hint}; "
                                          f"the catalogue lists {', '.join(a.name for a in self.usable)}"),))
        if attr.special_category:
            return Interpretation(None, (("error", f"{attr.name} is a special-category attribute (GDPR art. 9: "
                                          f"{attr.description}); it can never be used in a segment (P4)"),))
        handler = {
            "enum": self._enum, "range": self._range, "bool": self._bool, "array": self._array,
            "interest": self._interest, "recency": self._recency,
        }[attr.kind]
        return handler(attr, condition.spec)

    @staticmethod
    def _operator(attr: Attribute, spec: Any, default: str) -> tuple[str | None, Any, list[Finding]]:
        """(operator, operand) of a spec: a bare value/list means ``default``; a mapping holds one operator."""
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in attr.operators]
            if unknown or len(spec) != 1:
                return None, None, [("error", f"{attr.name} takes exactly one of: {', '.join(attr.operators)}"
                                     + (f" (got {', '.join(map(str, unknown))})" if unknown else ""))]
            ((op, operand),) = spec.items()
            return op, operand, []
        return default, spec, []

    @staticmethod
    def _as_list(operand: Any) -> list[Any]:
        return list(operand) if isinstance(operand, list) else [operand]

    def _enum(self, attr: Attribute, spec: Any) -> Interpretation:
        op, operand, findings = self._operator(attr, spec, "in")
        if op is None:
            return Interpretation(None, tuple(findings))
        values = []
        for value in self._as_list(operand):
            if attr.name == "postal_code" and isinstance(value, int) and not isinstance(value, bool):
                value = f"{value:04d}"  # YAML reads 1000 as a number
            values.append(str(value) if not isinstance(value, bool) else value)
        for value in values:
            if value in attr.values:
                continue
            if attr.name == "age_band" and age_range_of(str(value)) is not None:
                findings.append(("error", f"age_band {value!r} is not an IAB Audience Taxonomy age band "
                                          f"({', '.join(attr.values)})"))
            elif len(attr.values) > 20:
                findings.append(("error", f"unknown {attr.name} {value!r}"))
            else:
                findings.append(("error", f"unknown value {value!r} for {attr.name} "
                                          f"(allowed: {', '.join(attr.values)})"))
        return Interpretation(InValues(attr.name, attr.column or attr.name, tuple(values), op == "not_in"),
                              tuple(findings))

    def _range(self, attr: Attribute, spec: Any) -> Interpretation:
        if isinstance(spec, int) and not isinstance(spec, bool):
            return Interpretation(Between(attr.name, attr.column or attr.name, spec, spec))
        if not isinstance(spec, dict) or not spec or any(k not in ("min", "max") for k in spec):
            return Interpretation(None, (("error", f"{attr.name} takes min and/or max, e.g. {{min: 25, max: 34}}"),))
        bounds = {k: v for k, v in spec.items()}
        if any(not isinstance(v, int) or isinstance(v, bool) for v in bounds.values()):
            return Interpretation(None, (("error", f"{attr.name}: min and max must be whole numbers"),))
        return Interpretation(Between(attr.name, attr.column or attr.name, bounds.get("min"), bounds.get("max")))

    def _bool(self, attr: Attribute, spec: Any) -> Interpretation:
        if isinstance(spec, dict) and list(spec) == ["is"]:
            spec = spec["is"]
        if not isinstance(spec, bool):
            return Interpretation(None, (("error", f"{attr.name} takes true or false, got {spec!r}"),))
        return Interpretation(IsBool(attr.name, attr.column or attr.name, spec))

    def _array(self, attr: Attribute, spec: Any) -> Interpretation:
        op, operand, findings = self._operator(attr, spec, "any_of")
        if op is None:
            return Interpretation(None, tuple(findings))
        values: list[str] = []
        for value in self._as_list(operand):
            value = str(value)
            if attr.name == "products_owned" and ":" not in value and value in PRODUCT_CATEGORIES:
                values += [f"{value}:{tier}" for tier in PRODUCT_TIERS]  # a category means any tier
            elif value in attr.values:
                values.append(value)
            else:
                findings.append(("error", f"unknown value {value!r} for {attr.name} (allowed: "
                                 + (f"a category ({', '.join(PRODUCT_CATEGORIES)}) or category:tier "
                                    f"({', '.join(PRODUCT_TIERS)})" if attr.name == "products_owned"
                                    else ", ".join(attr.values)) + ")"))
                values.append(value)
        return Interpretation(ArrayHas(attr.name, attr.column or attr.name, tuple(dict.fromkeys(values)), op),
                              tuple(findings))

    def _recency(self, attr: Attribute, spec: Any) -> Interpretation:
        if not isinstance(spec, dict) or not spec or any(k not in attr.operators for k in spec):
            return Interpretation(None, (("error", f"{attr.name} takes min_days and/or max_days, "
                                                   "e.g. {max_days: 90}"),))
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in spec.values()):
            return Interpretation(None, (("error", f"{attr.name}: days must be whole numbers >= 0"),))
        return Interpretation(RecencyDays(spec.get("min_days"), spec.get("max_days")))

    def _interest(self, attr: Attribute, spec: Any) -> Interpretation:
        if isinstance(spec, bool) or not isinstance(spec, (int, str, dict)):
            return Interpretation(None, (("error", "interest takes an IAB audience id, a name, or "
                                                   "{iab_audience_id | name, min_score, include_children}"),))
        spec = {"iab_audience_id": spec} if isinstance(spec, int) else {"name": spec} if isinstance(spec, str) else spec
        unknown = [k for k in spec if k not in attr.operators]
        if unknown:
            return Interpretation(None, (("error", f"interest: unknown key(s) {', '.join(map(str, unknown))} "
                                                   f"(allowed: {', '.join(attr.operators)})"),))
        if ("iab_audience_id" in spec) == ("name" in spec):
            return Interpretation(None, (("error", "interest needs exactly one of iab_audience_id or name"),))
        min_score = spec.get("min_score")
        if min_score is not None and (isinstance(min_score, bool) or not isinstance(min_score, (int, float))
                                      or min_score <= 0):
            return Interpretation(None, (("error", f"interest: min_score must be a positive number, got {min_score!r}"),))
        findings: list[Finding] = []
        if "name" in spec:
            ids, how = self.resolve_interest_name(str(spec["name"]))
            if not ids:
                return Interpretation(None, (("error", f"unknown interest {spec['name']!r}: use an interest label "
                                                       "of conf/mappings or an IAB Interest name"),))
            if len(ids) > 1:
                return Interpretation(None, (("error", f"interest {spec['name']!r} is ambiguous ({how} of ids "
                                                       f"{', '.join(map(str, ids))}): use iab_audience_id"),))
            root = ids[0]
        else:
            root = spec["iab_audience_id"]
            if not isinstance(root, int) or isinstance(root, bool):
                return Interpretation(None, (("error", "interest: iab_audience_id must be an integer"),))
        node = self.audience.get(root)
        if node is None:
            return Interpretation(None, (("error", f"unknown IAB audience id {root} (not in Audience Taxonomy 1.1)"),))
        if not node.is_interest:
            return Interpretation(None, (("error", f"IAB audience id {root} ({node.condensed_name}) is not an "
                                                   "Interest node; use the catalogue's demographic attributes"),))
        include = spec.get("include_children", False)
        if not isinstance(include, bool):
            return Interpretation(None, (("error", "interest: include_children must be true or false"),))
        ids = tuple(sorted(subtree(self.audience, root))) if include else (root,)
        denied = [i for i in ids if self.deny.denies_audience(i)]
        if denied:
            names = ", ".join(f"{i} {self.audience[i].name}" for i in denied[:5])
            return Interpretation(None, (("error", f"interest {root} ({node.name}) "
                                          + ("includes" if include and root not in denied else "is")
                                          + f" a special category on the deny-list ({names}); GDPR art. 9 (P4)"),))
        if not any(i in self.interest_labels for i in ids):
            findings.append(("warning", f"no interest mapping derives IAB id {root} ({node.name})"
                             + (" or its children" if include else "") + ": no profile carries it, it matches nobody"))
        label = self.interest_label(root)
        return Interpretation(InterestScore(ids, float(min_score) if min_score is not None else None, label),
                              tuple(findings))


# --- describing rules in plain language (labels, pull-request summaries) -------------------------


def describe_predicate(p: Predicate) -> str:
    """Plain-language text of a predicate.

    >>> describe_predicate(Between("age", "age", 25, 34)), describe_predicate(InterestScore((663,), 1.5, "Football fan"))
    ('age 25 to 34', 'interest Football fan (IAB 663) with score >= 1.5')
    """
    if isinstance(p, InValues):
        return f"{p.attribute} {'not in' if p.negated else 'in'} {', '.join(map(str, p.values)) or '(nothing)'}"
    if isinstance(p, Between):
        if p.low is not None and p.high is not None:
            return f"{p.attribute} {p.low} to {p.high}"
        return f"{p.attribute} at least {p.low}" if p.low is not None else f"{p.attribute} at most {p.high}"
    if isinstance(p, IsBool):
        return f"{p.attribute} is {'yes' if p.value else 'no'}"
    if isinstance(p, ArrayHas):
        word = {"any_of": "any of", "all_of": "all of", "none_of": "none of"}[p.mode]
        return f"{p.attribute}: {word} {', '.join(p.values) or '(nothing)'}"
    if isinstance(p, InterestScore):
        ids = f"IAB {p.ids[0]}" + (f" and {len(p.ids) - 1} narrower" if len(p.ids) > 1 else "")
        return f"interest {p.label} ({ids})" + (f" with score >= {p.min_score:g}" if p.min_score is not None else "")
    low, high = p.min_days, p.max_days
    if low is not None and high is not None:
        return f"last purchase {low} to {high} days ago"
    return f"last purchase at least {low} days ago" if low is not None else f"last purchase within {high} days"


def describe_rule(node: Any, catalogue: Catalogue) -> str:
    """Plain-language text of a whole rule tree (unknown conditions are shown as written)."""
    if isinstance(node, Condition):
        predicate = catalogue.interpret(node).predicate
        return describe_predicate(predicate) if predicate is not None else f"{node.attribute}: {node.spec!r}"
    if isinstance(node, Not):
        return f"not ({describe_rule(node.child, catalogue)})"
    joiner = " and " if isinstance(node, AllOf) else " or "
    parts = [describe_rule(child, catalogue) if isinstance(child, (Condition, Not)) or len(child.children) == 1
             else f"({describe_rule(child, catalogue)})" for child in node.children]
    return joiner.join(parts)


# --- the catalogue itself --------------------------------------------------------------------------

#: Special categories of personal data (GDPR art. 9): listed so a rule using them is refused by name.
SPECIAL_CATEGORIES: Mapping[str, str] = {
    "health": "data concerning health",
    "religion": "religious or philosophical beliefs",
    "political_opinion": "political opinions",
    "ethnic_origin": "racial or ethnic origin",
    "nationality": "a proxy for racial or ethnic origin",
    "sexual_orientation": "sex life or sexual orientation",
    "trade_union_membership": "trade-union membership",
    "genetic_data": "genetic data",
    "biometric_data": "biometric data",
}


def _attributes(geography: Geography, age_bands: tuple[AgeBand, ...]) -> dict[str, Attribute]:
    products = tuple(f"{c}:{t}" for c in PRODUCT_CATEGORIES for t in PRODUCT_TIERS)
    attrs = [
        Attribute("age", "age", "range", "age in whole years at the as-of date", ADMIN, "declared"),
        Attribute("age_band", "age_band", "enum", "IAB Audience Taxonomy age band", ADMIN, "declared",
                  values=tuple(b.label for b in age_bands)),
        Attribute("gender", "gender", "enum", "gender as registered (F, M, X; may be unknown)", ADMIN, "declared",
                  values=("F", "M", "X"), nullable=True),
        Attribute("language", "language", "enum", "preferred language", ADMIN, "declared",
                  values=("nl", "fr", "de", "en")),
        Attribute("region", "region", "enum", "region of the address (ISO 3166-2:BE)", ADMIN, "declared",
                  values=tuple(sorted(geography.regions)), nullable=True),
        Attribute("province", "province", "enum", "province of the address (ISO 3166-2:BE; Brussels is BE-BRU)",
                  ADMIN, "declared", values=tuple(sorted(geography.provinces)), nullable=True),
        Attribute("postal_code", "postal_code", "enum", "postal code of the address", ADMIN, "declared",
                  values=tuple(sorted(geography.areas)), nullable=True),
        Attribute("customer_type", "customer_type", "enum", "residential or business customer", ADMIN, "declared",
                  values=("residential", "business")),
        Attribute("services", "services", "array", "Proximus services used", ADMIN, "observed",
                  values=("tv", "internet", "mobile")),
        Attribute("family_typology", "family_typology", "enum", "household composition", SOCIODEMO, "modelled",
                  values=("single", "couple_no_children", "family_young_children", "family_older_children",
                          "single_parent", "senior_household"), nullable=True),
        Attribute("household_size", "household_size", "range", "number of people in the household", SOCIODEMO,
                  "modelled", nullable=True),
        Attribute("income_band", "income_band", "enum", "household income band", SOCIODEMO, "modelled",
                  values=("low", "middle", "high"), nullable=True),
        Attribute("urbanisation", "urbanisation", "enum", "urbanisation of the neighbourhood", AREA, "modelled",
                  values=("urban", "suburban", "rural"), nullable=True),
        Attribute("dwelling_type", "dwelling_type", "enum", "type of dwelling at the address", CADASTRAL,
                  "observed", channels=WEB, values=("house", "apartment", "other"), nullable=True),
        Attribute("has_garden", "has_garden", "bool", "the address has a garden", CADASTRAL, "observed",
                  channels=WEB, nullable=True),
        Attribute("products_owned", "products_owned", "array", "Proximus devices bought (category or category:tier)",
                  PURCHASES, "observed", channels=WEB, values=products, lookback="purchases"),
        Attribute("purchase_recency", "last_purchase_days", "recency", "days since the last Proximus purchase",
                  PURCHASES, "observed", channels=WEB, nullable=True, lookback="purchases"),
        Attribute("interest", "interests", "interest",
                  "interest score (lift against the population) for an IAB Audience Taxonomy 1.1 Interest",
                  "interests", "inferred", lookback="interests"),
    ]
    attrs += [Attribute(name, None, "forbidden", why, "", "", special_category=True)
              for name, why in SPECIAL_CATEGORIES.items()]
    return {a.name: a for a in attrs}


@lru_cache(maxsize=4)
def load_catalogue(conf_dir: Path) -> Catalogue:
    """Build the catalogue from ``conf_dir`` (taxonomy, deny-list, mappings, geography); cached per folder."""
    audience = load_audience_taxonomy(conf_dir / AUDIENCE_TAXONOMY_FILE)
    deny = load_deny_list(conf_dir, audience)
    mappings = load_mappings(conf_dir)
    geography = load_geography(conf_dir)
    bands = iab_age_bands(audience)
    return Catalogue(
        attributes=_attributes(geography, bands),
        audience=audience,
        deny=deny,
        interest_labels=dict(mappings.interest_labels),
        age_bands=bands,
        geography=geography,
    )
