"""Compiler: each kind of condition against hand-computed member sets on a small profile fixture."""
from __future__ import annotations

import pytest

from pipelines.segments.catalogue import InValues, load_catalogue
from pipelines.segments.compiler import SegmentCompileError, adult_guard, predicate_column, rule_column
from pipelines.segments.model import Condition, parse_rule_text

from segment_fixtures import profiles

TV = ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]

# rule (YAML) -> expected members among TV. Minors (a5) and unknown ages (a7) are never members.
CASES = {
    "interest: {iab_audience_id: 663, min_score: 1.5}": {"a1"},
    "interest: 663": {"a1", "a3"},
    "interest: {name: Soccer, min_score: 1.21}": {"a1"},
    "interest: {name: Movie fan, include_children: true, min_score: 1.8}": {"a1"},
    "interest: {name: Movie fan, min_score: 1.8}": set(),
    "not: {gender: [F]}": {"a2", "a3", "a6"},
    "gender: {not_in: [F]}": {"a2", "a6"},
    "age: {min: 25, max: 34}": {"a1", "a2"},
    "age: 35": {"a6"},
    "age_band: ['25-29', '30-34']": {"a1", "a2"},
    "all: [{region: [BE-BRU]}, {language: [fr]}]": {"a1", "a2"},
    "any: [{province: [BE-VAN]}, {postal_code: [9000]}]": {"a3", "a4"},
    "products_owned: [smartphone]": {"a1", "a6"},
    "products_owned: {none_of: [smartphone]}": {"a2", "a3", "a4"},
    "products_owned: {all_of: ['smartphone:mid', 'tablet:premium']}": {"a6"},
    "services: [mobile]": {"a3", "a6"},
    "purchase_recency: {max_days: 100}": {"a1", "a6"},
    "purchase_recency: {min_days: 101}": {"a3"},
    "has_garden: true": {"a1", "a3", "a6"},
    "not: {has_garden: true}": {"a2", "a4"},
    "household_size: {min: 3}": {"a1", "a3"},
    "any: [{interest: {name: 'Quiz & game show fan', min_score: 1.5}}, {family_typology: [single]}]": {"a2", "a4"},
    "all: [{dwelling_type: [house]}, {not: {income_band: [high]}}]": {"a3"},
    "income_band: {not_in: [high]}": {"a2", "a3"},
    "urbanisation: [rural]": {"a4", "a6"},
    "language: [de]": {"a6"},
    "customer_type: [business]": set(),
}


def rule_of(text: str):
    node, problems = parse_rule_text(text)
    assert problems == []
    return node


@pytest.fixture(scope="module")
def catalogue(settings):
    return load_catalogue(settings.conf_dir)


def test_each_condition_selects_the_hand_computed_members(spark, catalogue, settings):
    df = profiles(spark, TV)
    columns = [(rule_column(rule_of(text), catalogue) & adult_guard(settings.minimum_age)).alias(f"r{i}")
               for i, text in enumerate(CASES)]
    rows = df.select("customer_id", *columns).collect()  # one job for every case
    got = {text: {r["customer_id"] for r in rows if r[f"r{i}"]} for i, text in enumerate(CASES)}
    assert got == CASES


def test_conditions_are_never_null(spark, catalogue):
    # Null-safe leaves: a missing value gives false, so `not` is a plain complement.
    df = profiles(spark, ["a7"])
    column = rule_column(rule_of("all: [{has_garden: false}, {not: {age: {min: 0}}}]"), catalogue)
    assert df.select(column.isNull().alias("n"), column.alias("v")).first().asDict() == {"n": False, "v": False}


def test_refused_condition_does_not_compile(catalogue):
    with pytest.raises(SegmentCompileError, match=r"seg.yaml:3: religion is a special-category"):
        rule_column(Condition("religion", ["x"], 3), catalogue, "seg.yaml")
    with pytest.raises(SegmentCompileError, match=r"unknown attribute 'shoe_size'"):
        rule_column(Condition("shoe_size", {"min": 40}, 3), catalogue, "seg.yaml")


def test_values_are_literals_never_sql(spark, catalogue, settings):
    # The catalogue refuses unknown values; even past it, a value that looks like SQL stays a literal
    # and selects nobody instead of everybody.
    value = "F' OR 1=1 OR gender='"
    with pytest.raises(SegmentCompileError, match="unknown value"):
        rule_column(Condition("gender", [value], 1), catalogue)
    injected = predicate_column(InValues("gender", "gender", (value,)))
    assert profiles(spark, ["a1", "a2"]).where(injected).count() == 0


def test_guard_excludes_minors_and_unknown_ages(spark, settings):
    rows = profiles(spark, ["a1", "a5", "a7"]).select("customer_id", adult_guard(settings.minimum_age).alias("g"))
    assert {r["customer_id"]: r["g"] for r in rows.collect()} == {"a1": True, "a5": False, "a7": False}
