"""Geo profiles (G1), their DP mode, and the anonymous viewing reports (C6): hand-computed cases.

The arithmetic behind each expectation is written next to it. Pure functions run without Spark; the Spark
tests use tiny DataFrames and the shared session. The attack harness is ``tests/property/test_geo_attack.py``.
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import numpy as np
import pytest
from pyspark.sql import DataFrame
from scipy import stats

from pipelines import io
from pipelines.config import CONF_DIR, GeoSettings
from pipelines.privacy.geo import (
    ATTRIBUTES,
    GEO_PROFILES,
    HAS,
    HAS_NOT,
    INTEREST_PARTITION,
    OTHER,
    ROOT,
    AreaProfile,
    AreaTree,
    DpDomain,
    GeoMemory,
    LeafTables,
    cell_partition,
    choose_partition,
    choose_showing,
    collect_leaf_tables,
    dp_domain,
    dp_rng,
    dp_sensitivity,
    geo_profiles_frame,
    geometric_alpha,
    geometric_noise,
    interest_candidates,
    memory_from_rows,
    memory_rows,
    noisy_area_tables,
    postal_code_interests,
    publish_geo,
    read_memory,
    residuals,
    rollup_tables,
    stage_geo,
    suppress_areas,
)
from pipelines.progress import Progress
from pipelines.reference.geo import load_geography
from pipelines.reports.viewing import (
    VIEWING_REPORTS,
    customer_regions,
    in_window,
    reportable_viewers,
    stage_viewing_reports,
    threshold_across_regions,
    viewing_cells,
    viewing_reports,
)
from pipelines.schemas import silver_schema


def pc(code: str) -> tuple[str, str]:
    return ("postal_code", code)


def prov(code: str) -> tuple[str, str]:
    return ("province", code)


def reg(code: str) -> tuple[str, str]:
    return ("region", code)


# ------------------------------------------------------------------------------------------------ the tree


def test_real_geography_tree() -> None:
    tree = AreaTree.from_geography(load_geography(CONF_DIR))
    assert list(tree.ancestors(pc("9000"))) == [prov("BE-VOV"), reg("BE-VLG"), ROOT]
    assert list(tree.ancestors(pc("1000"))) == [prov("BE-BRU"), reg("BE-BRU"), ROOT]  # Brussels: both levels
    assert list(tree.ancestors(pc("4700"))) == [prov("BE-WLG"), reg("BE-WAL"), ROOT]
    assert tree.children[ROOT] == (reg("BE-BRU"), reg("BE-VLG"), reg("BE-WAL"))
    assert sum(a[0] == "province" for a in tree.parent) == 11
    assert tree.children[reg("BE-BRU")] == (prov("BE-BRU"),)
    assert (tree.names[pc("9000")], tree.names[prov("BE-VOV")], tree.names[reg("BE-WAL")]) == \
        ("Gent", "Oost-Vlaanderen", "Région wallonne")
    assert (tree.parent_code(pc("9000")), tree.parent_code(reg("BE-VLG"))) == ("BE-VOV", "BE")
    assert tree.leaf("0612") is None  # Santa's postal code is not a place


def test_rollup_sums_every_level_and_ignores_unknown_codes() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R"), ("3", "Q", "S")])
    assert tree.rollup({"1": 4, "2": 6, "3": 5, "9": 100}) == {
        pc("1"): 4, pc("2"): 6, pc("3"): 5, prov("P"): 10, prov("Q"): 5, reg("R"): 10, reg("S"): 5, ROOT: 15}
    with pytest.raises(ValueError, match="two regions"):
        AreaTree.build([("1", "P", "R"), ("2", "P", "S")])


# ------------------------------------------------------------------------------------ counts: suppression


def test_a_lone_small_postal_code_takes_its_smallest_sibling_with_it() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R"), ("3", "P", "R")])
    s = suppress_areas(tree, tree.rollup({"1": 4, "2": 30, "3": 50}), k=10)
    # 4 alone would be P - 2 - 3; suppressing 2 (the smaller sibling) leaves 4 + 30 = 34 undivided
    assert (s.published, s.primary, s.secondary) == ({pc("3"), prov("P"), reg("R")}, {pc("1")}, {pc("2")})


def test_small_postal_codes_totalling_k_need_no_secondary_suppression() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R"), ("3", "P", "R")])
    s = suppress_areas(tree, tree.rollup({"1": 4, "2": 6, "3": 50}), k=10)
    assert (s.published, s.primary, s.secondary) == ({pc("3"), prov("P"), reg("R")}, {pc("1"), pc("2")}, set())


def test_the_national_total_makes_a_small_region_need_a_partner() -> None:
    # Regions R1 = 5, R2 = 40, R3 = 25 + 35; the national total 105 is public, so R1 = 105 - 40 - 60 unless
    # one more region goes. R2 and R3 have residual 0 (fully covered by their provinces): the smaller, R2, is
    # suppressed first, then its province, then its postal code (the first with a positive residual).
    tree = AreaTree.build([("1", "P1", "R1"), ("2", "P2", "R2"), ("3", "P3", "R3"), ("4", "P4", "R3")])
    s = suppress_areas(tree, tree.rollup({"1": 5, "2": 40, "3": 25, "4": 35}), k=10)
    assert s.published == {reg("R3"), prov("P3"), prov("P4"), pc("3"), pc("4")}
    assert s.secondary == {reg("R2"), prov("P2"), pc("2")}
    assert s.primary == {reg("R1"), prov("P1"), pc("1")}


def test_a_suppressed_province_can_keep_published_postal_codes() -> None:
    # R = P1 (3) + P2 (20 + 25). P1 alone would be R - P2: P2 goes (residual 0), then its smaller postal code 2.
    tree = AreaTree.build([("1", "P1", "R"), ("2", "P2", "R"), ("3", "P2", "R")])
    n = tree.rollup({"1": 3, "2": 20, "3": 25})
    s = suppress_areas(tree, n, k=10)
    assert (s.published, s.secondary) == ({reg("R"), pc("3")}, {prov("P2"), pc("2")})
    assert residuals(tree, n, s.published) == {ROOT: 0, reg("R"): 23, pc("3"): 25}


def test_memory_stops_yesterdays_province_from_being_subtracted_from_todays_region() -> None:
    # Today: a = 50, b = 5 (R0 = P00 + P01), c = 45 (R1). Alone, today would publish R0 = 55 after suppressing
    # P00 and a. But yesterday published P00 and a (50): R0 - P00 would give b's 5. R0 goes; then the country
    # minus P00 minus R1 would give 5 again: R1, P10 and c go too, leaving 100 - 50 = 50 undivided.
    tree = AreaTree.build([("a", "P00", "R0"), ("b", "P01", "R0"), ("c", "P10", "R1")])
    n = tree.rollup({"a": 50, "b": 5, "c": 45})
    alone = suppress_areas(tree, n, k=10)
    assert alone.published == {reg("R0"), reg("R1"), prov("P10"), pc("c")}
    remembered = suppress_areas(tree, n, k=10, remembered={prov("P00"), pc("a")})
    assert remembered.published == set()
    assert remembered.secondary == {prov("P00"), pc("a"), reg("R0"), reg("R1"), prov("P10"), pc("c")}


def test_forced_areas_are_never_published() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R")])
    s = suppress_areas(tree, tree.rollup({"1": 30, "2": 40}), k=10, forced=[pc("1")])
    # the forced postal code's 30 customers make a safe residual of P: nothing else has to go
    assert (s.published, s.primary, s.secondary) == ({reg("R"), prov("P"), pc("2")}, {pc("1")}, set())


# ------------------------------------------------------------------------------------ categories


@pytest.mark.parametrize(("counts", "shown"), [
    ({"F": 12, "M": 15, "X": 0}, {"F", "M"}),        # X is 0: nothing to hide
    ({"F": 12, "M": 15, "X": 2}, {"M"}),             # other = X 2 < 10: F (smallest) joins it: 14
    ({"F": 12, "M": 15, "X": 2, "unknown": 9}, {"F", "M"}),  # other = 2 + 9 = 11
    ({"F": 5, "M": 6}, set()),                       # nothing reaches 10
    ({"F": 10, "M": 3}, set()),                      # other 3 < 10 -> F joins: all merged
])
def test_cell_partition(counts, shown) -> None:
    assert cell_partition(counts, k=10) == frozenset(shown)


def test_choose_partition_takes_the_most_useful_rung_of_the_ladder() -> None:
    national = {"a": 100, "b": 80, "c": 40, "d": 15}
    # ladder: {a, b, c, d}, {a, b, c} (d merged), {a, b} (c merged too), {a}
    areas = {
        pc("1"): {"a": 20, "b": 20, "c": 10, "d": 10},  # fits every rung
        pc("2"): {"a": 30, "b": 15, "c": 4, "d": 6},    # c, d small but c + d = 10: fits {a, b} and {a}
        pc("3"): {"a": 12, "b": 11, "c": 3, "d": 9},    # c + d = 12: fits {a, b} and {a}
    }
    # scores: {a,b,c,d}: 4 (area 1); {a,b,c}: 3 (area 1: other d = 10); {a,b}: 2 x 3 = 6; {a}: 1 x 3 = 3
    assert choose_partition(national, areas, k=10) == {"a", "b"}
    assert choose_partition({"a": 5, "b": 3}, areas, k=10) == frozenset()


def test_choose_showing_hides_a_child_whose_sibling_would_be_derivable() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R"), ("3", "P", "R")])
    counts = {reg("R"): {"F": 45, "M": 30}, prov("P"): {"F": 45, "M": 30},
              pc("1"): {"F": 22, "M": 10}, pc("2"): {"F": 15, "M": 20}, pc("3"): {"F": 8, "M": 0}}
    part = frozenset({"F", "M"})
    # 3 does not fit (F 8). P - 1 - 2 = F 8, M 0: unsafe, so the smaller of 1 (32) and 2 (35) is hidden:
    # P - 2 = F 30, M 10. R - P = 0.
    assert choose_showing(tree, counts, list(counts), part, k=10) == {reg("R"), prov("P"), pc("2")}
    # with memory: yesterday 1 showed the partition, so the second pass counts it as known: P - 1 - 2 gives
    # F 8 again, and 2 (the one that can still be hidden) goes: P - 1 = F 23, M 20
    shown = choose_showing(tree, counts, list(counts), part, k=10, remembered={pc("1")})
    assert shown == {reg("R"), prov("P")}


def test_interest_candidates_are_the_top_fitting_interests_of_each_area() -> None:
    n = {pc("1"): 40}
    interests = {pc("1"): {7: 30, 8: 35, 9: 12, 10: 25, 11: 5}}
    # 8 (35 with, 5 without: 5 < 10) does not fit; 11 has 5; the top 2 of 30, 12, 25 are 7 and 10
    assert interest_candidates(n, interests, [pc("1")], k=10, top=2) == {7: {pc("1")}, 10: {pc("1")}}
    assert INTEREST_PARTITION == {HAS} and (HAS, HAS_NOT) == ("has", "has_not")


# ------------------------------------------------------------------------------------------ publication


def hand_leaves() -> LeafTables:
    """1000: 12 F (11 football fans); 1010: 5 F + 10 M, all fans; 2000: 10 F fans + 10 M (R2/P2)."""
    gender = {"1000": {"F": 12}, "1010": {"F": 5, "M": 10}, "2000": {"F": 10, "M": 10}}
    n = {c: sum(v.values()) for c, v in gender.items()}
    return LeafTables(
        n=n,
        attributes={"gender": gender, "age_band": {c: {"25-29": v} for c, v in n.items()},
                    "language": {c: {"nl": v} for c, v in n.items()},
                    "family_typology": {c: {"unknown": v} for c, v in n.items()}},
        interests={"1000": {7: 11}, "1010": {7: 15}, "2000": {7: 10}},
        labels={7: "Football fan"},
    )


HAND_TREE = AreaTree.build([("1000", "P1", "R1"), ("1010", "P1", "R1"), ("2000", "P2", "R2")])


def test_publish_geo_hand_computed() -> None:
    pub = publish_geo(HAND_TREE, rollup_tables(HAND_TREE, hand_leaves()), k=10, margin=0)
    same = {"age_band": {"25-29": 1.0}, "language": {"nl": 1.0}, "family_typology": {"unknown": 1.0}}
    fans = ((7, "Football fan", 0.5),)
    # gender: national F 27, M 20 -> partition {F, M}; 1010 (F 5) does not fit; P1 - 1000 = F 5: 1000 hidden.
    # interest 7: 1000 has 1 non-fan (< 10); P1/R1 have 1 non-fan too; 1010 is 15/15; 2000, P2, R2 10/20.
    assert pub.profiles == (
        AreaProfile("region", "R1", None, "BE", 27, {**same, "gender": {"F": 17 / 27, "M": 10 / 27}}, ()),
        AreaProfile("region", "R2", None, "BE", 20, {**same, "gender": {"F": 0.5, "M": 0.5}}, fans),
        AreaProfile("province", "P1", None, "R1", 27, {**same, "gender": {"F": 17 / 27, "M": 10 / 27}}, ()),
        AreaProfile("province", "P2", None, "R2", 20, {**same, "gender": {"F": 0.5, "M": 0.5}}, fans),
        AreaProfile("postal_code", "1000", None, "P1", 12, {**same, "gender": {OTHER: 1.0}}, ()),
        AreaProfile("postal_code", "1010", None, "P1", 15, {**same, "gender": {OTHER: 1.0}},
                    ((7, "Football fan", 1.0),)),
        AreaProfile("postal_code", "2000", None, "P2", 20, {**same, "gender": {"F": 0.5, "M": 0.5}}, fans),
    )
    assert pub.memory == GeoMemory(
        areas=frozenset({reg("R1"), reg("R2"), prov("P1"), prov("P2"), pc("1000"), pc("1010"), pc("2000")}),
        partitions={"age_band": {"25-29"}, "gender": {"F", "M"}, "language": {"nl"}, "family_typology": {"unknown"}},
        showing={**{a: pub.memory.areas for a in ("age_band", "language", "family_typology")},
                 "gender": frozenset({reg("R1"), reg("R2"), prov("P1"), prov("P2"), pc("2000")})},
        interests={7: frozenset({reg("R2"), prov("P2"), pc("1010"), pc("2000")})},
    )


def test_the_change_margin_raises_every_threshold_by_one() -> None:
    leaves = LeafTables(n={"1000": 10, "1010": 12, "2000": 30}, attributes={})
    everything = {reg("R1"), prov("P1"), pc("1000"), pc("1010"), reg("R2"), prov("P2"), pc("2000")}
    assert publish_geo(HAND_TREE, rollup_tables(HAND_TREE, leaves), k=10, margin=0).suppression.published == everything
    # margin 1: 1000 (10) is below 11, and P1 - 1010 = 10 would give it away: 1010 goes too
    pub = publish_geo(HAND_TREE, rollup_tables(HAND_TREE, leaves), k=10)
    assert pub.suppression.published == everything - {pc("1000"), pc("1010")}


def test_a_partition_is_kept_while_an_area_showed_it() -> None:
    tables = rollup_tables(HAND_TREE, hand_leaves())
    yesterday = GeoMemory(partitions={"gender": frozenset({"F"})}, showing={"gender": frozenset({reg("R2")})})
    pub = publish_geo(HAND_TREE, tables, k=10, margin=0, memory=yesterday)
    assert pub.partitions["gender"] == {"F"}  # not the {F, M} it would choose today
    nobody = GeoMemory(partitions={"gender": frozenset({"F"})}, showing={})
    assert publish_geo(HAND_TREE, tables, k=10, margin=0, memory=nobody).partitions["gender"] == {"F", "M"}


def test_memory_rows_round_trip() -> None:
    pub = publish_geo(HAND_TREE, rollup_tables(HAND_TREE, hand_leaves()), k=10, margin=0)
    assert memory_from_rows(memory_rows(pub.memory, date(2026, 11, 25))) == pub.memory


# ------------------------------------------------------------------------------------------------ DP mode


def test_geometric_noise_follows_the_discrete_laplace_distribution() -> None:
    alpha = geometric_alpha(epsilon=1.0, sensitivity=2)  # exp(-1/2)
    assert alpha == pytest.approx(math.exp(-0.5))
    draws = geometric_noise(np.random.default_rng(20261126), alpha, 200_000)
    assert draws.dtype == np.int64
    # moments: mean 0, variance 2 alpha / (1 - alpha)^2 = 7.46; tolerances are ~4 standard errors
    variance = 2 * alpha / (1 - alpha) ** 2
    assert abs(draws.mean()) < 4 * math.sqrt(variance / len(draws))
    assert draws.var() == pytest.approx(variance, rel=0.03)
    # the whole distribution: P(z) = (1 - alpha) / (1 + alpha) alpha^|z|, chi-square over -12..12 and the tails
    support = np.arange(-12, 13)
    pmf = (1 - alpha) / (1 + alpha) * alpha ** np.abs(support)
    observed = np.array([(draws == z).sum() for z in support] + [(np.abs(draws) > 12).sum()])
    expected = np.append(pmf, 1 - pmf.sum()) * len(draws)
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_neighbouring_counts_are_epsilon_indistinguishable() -> None:
    """The published value for a count c and for c + 1 (one more person): every outcome's probability
    differs by at most a factor exp(epsilon / sensitivity), empirically and exactly."""
    epsilon, sensitivity = 1.0, dp_sensitivity(len(ATTRIBUTES), 1)  # 6: customers + 4 attributes + 1 interest
    alpha = geometric_alpha(epsilon, sensitivity)
    bound = math.exp(epsilon / sensitivity)
    exact_ratios = [alpha ** abs(z) / alpha ** abs(z - 1) for z in range(-30, 31)]
    assert max(exact_ratios) == pytest.approx(bound)
    rng = np.random.default_rng(7)
    size = 400_000
    a = Counter((20 + geometric_noise(rng, alpha, size)).tolist())
    b = Counter((21 + geometric_noise(rng, alpha, size)).tolist())
    for value in range(15, 27):  # outcomes with plenty of mass: the ratio is within sampling error of the bound
        assert a[value] / b[value] < bound * 1.05 and b[value] / a[value] < bound * 1.05


def test_dp_rng_is_keyed_by_as_of_and_reproducible(keyring, tmp_path) -> None:
    from pipelines.privacy.keys import load_keys, new_key_file

    def draw(keys, day):
        return dp_rng(keys, day).integers(0, 2**32, 4).tolist()

    day = date(2026, 11, 25)
    assert draw(keyring, day) == draw(keyring, day)
    assert draw(keyring, day) != draw(keyring, date(2026, 11, 26))
    new_key_file(tmp_path / "other.json", ("adsdata",))
    assert draw(keyring, day) != draw(load_keys(tmp_path / "other.json"), day)


def test_noisy_tables_add_up_and_cover_the_whole_domain() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R"), ("3", "Q", "R")])
    domain = DpDomain(attributes={"age_band": ("18-20", "unknown"), "gender": ("F", "M", "unknown"),
                                  "language": ("nl", "unknown"), "family_typology": ("single", "unknown")},
                      interests=(7, 8))
    leaves = LeafTables(n={"1": 300}, attributes={"gender": {"1": {"F": 300}}, "language": {"1": {"xx": 300}}},
                        interests={"1": {7: 300, 99: 300}}, labels={7: "Football fan"})
    t = noisy_area_tables(tree, leaves, domain, epsilon=1.0, max_interests=1, rng=np.random.default_rng(3), k=10)
    for parent, children in ((prov("P"), [pc("1"), pc("2")]), (reg("R"), [prov("P"), prov("Q")]),
                             (ROOT, [reg("R")])):
        assert t.n[parent] == sum(t.n[c] for c in children)
        assert t.attributes["gender"][parent] == {g: sum(t.attributes["gender"][c][g] for c in children)
                                                  for g in ("F", "M", "unknown")}
    assert set(t.attributes["language"][pc("1")]) == {"nl", "unknown"}  # "xx" is outside the domain: unknown
    assert t.attributes["language"][pc("1")]["unknown"] > 200            # 300 + noise (standard deviation 8.5)
    assert all(v >= 10 for area in t.interests.values() for v in area.values())
    assert all(set(area) <= {7, 8} for area in t.interests.values())     # 99 is not a mapped interest
    assert any(t.n[pc(c)] != 0 for c in ("2", "3"))  # empty postal codes are noised too (else they'd stand out)


def test_dp_domain_comes_from_the_contract_and_the_taxonomy() -> None:
    domain = dp_domain(CONF_DIR)
    assert domain.attributes["gender"] == ("F", "M", "X", "unknown")
    assert domain.attributes["language"] == ("nl", "fr", "de", "en", "unknown")
    assert domain.attributes["age_band"][0] == "18-20" and domain.attributes["age_band"][-2:] == ("75+", "unknown")
    assert len(domain.attributes["family_typology"]) == 7
    assert 663 in domain.interests  # Football fan, from the mapping files


def test_dp_publication_never_shows_a_truly_small_area() -> None:
    tree = AreaTree.build([("1", "P", "R"), ("2", "P", "R")])
    leaves = LeafTables(n={"1": 9, "2": 40}, attributes={})
    exact = rollup_tables(tree, leaves)
    forced = [a for a, v in exact.n.items() if v < 10]
    for seed in range(20):  # whatever the noise, postal code 1 (9 people) stays unpublished
        noisy = noisy_area_tables(tree, leaves, DpDomain({a: ("unknown",) for a in ATTRIBUTES}, ()), 1.0, 1,
                                  np.random.default_rng(seed), 10)
        pub = publish_geo(tree, noisy, k=10, forced=forced)
        assert pc("1") not in pub.suppression.published


# ------------------------------------------------------------------------------------------------ Spark


def profile_rows(spark, rows: list[tuple]) -> DataFrame:
    """tv_profiles-like rows: (customer_id, postal_code, age_band, gender, language, family_typology, interests)."""
    schema = ("customer_id string, postal_code string, age_band string, gender string, language string, "
              f"family_typology string, interests array<struct<interest:string,iab_audience_id:int,score:double>>")
    return spark.createDataFrame(rows, schema)


def test_collect_leaf_tables(spark) -> None:
    tree = AreaTree.from_geography(load_geography(CONF_DIR))
    football, drama = ("Football fan", 663, 0.9), ("Drama fan", 710, 0.4)
    profiles = profile_rows(spark, [
        ("c1", "9000", "25-29", "F", "nl", "single", [football, drama]),
        ("c2", "9000", "25-29", None, "nl", None, [drama]),
        ("c3", "1000", "75+", "M", "fr", "single", []),
        ("c4", "0612", "75+", "M", "fr", "single", [football]),  # not a place: unlocated
        ("c5", None, "75+", "M", "fr", "single", None),           # no postal code: unlocated
    ])
    leaves, unlocated = collect_leaf_tables(profiles, tree)
    assert unlocated == 2
    assert leaves.n == {"9000": 2, "1000": 1}
    assert leaves.attributes["gender"] == {"9000": {"F": 1, "unknown": 1}, "1000": {"M": 1}}
    assert leaves.attributes["family_typology"] == {"9000": {"single": 1, "unknown": 1}, "1000": {"single": 1}}
    assert leaves.interests == {"9000": {663: 1, 710: 2}}
    assert leaves.labels == {663: "Football fan", 710: "Drama fan"}
    # DP contribution bound: each person counts for their best-scored interest only
    bounded = {(r["postal_code"], r["iab_audience_id"]): r["n"]
               for r in postal_code_interests(profiles, max_per_person=1).collect()}
    assert bounded == {("9000", 663): 1, ("9000", 710): 1, ("0612", 663): 1}


def test_geo_profiles_frame(spark) -> None:
    profile = AreaProfile("region", "BE-BRU", "Brussels-Capital Region", "BE", 12,
                          {"gender": {"F": 0.5, "M": 0.5}}, ((663, "Football fan", 0.75),))
    df = geo_profiles_frame(spark, [profile], date(2026, 11, 25))
    assert df.schema == GEO_PROFILES
    row = df.first().asDict(recursive=True)
    assert row == {"area_level": "region", "area_code": "BE-BRU", "area_name": "Brussels-Capital Region",
                   "parent_code": "BE", "n_customers": 12, "age_band_shares": {},
                   "gender_shares": {"F": 0.5, "M": 0.5}, "language_shares": {}, "family_typology_shares": {},
                   "top_interests": [{"iab_audience_id": 663, "interest": "Football fan", "share": 0.75}],
                   "as_of": date(2026, 11, 25)}


LINEAGE = {"_source_file": "test", "_line": 0, "_run_id": "r1", "_ingested_at": datetime(2026, 11, 27, tzinfo=timezone.utc)}


def silver(spark, source: str, rows: list[dict]) -> DataFrame:
    schema = silver_schema(source)
    return spark.createDataFrame([tuple({**LINEAGE, **r}.get(f.name) for f in schema.fields) for r in rows], schema)


def customer(cid: str, postal: str) -> dict:
    return {"customer_id": cid, "postal_code": postal, "updated_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}


def view(cid: str, channel: str, program: str | None, ts: datetime) -> dict:
    return {"view_id": f"{cid}-{channel}-{program}-{ts:%d%H%M}", "customer_id": cid, "platform": "decoder",
            "channel_id": channel, "program_id": program, "genre": "Sports", "start_ts": ts, "duration_s": 600}


def elig_rows(spark, rows: list[tuple[str, bool, bool]]) -> DataFrame:
    return spark.createDataFrame(rows, "customer_id string, adult boolean, erased boolean")


AS_OF = date(2026, 11, 25)


def test_window_uses_brussels_days(spark) -> None:
    rows = [view("c1", "een", None, datetime(2026, 11, 24, 22, 59, tzinfo=timezone.utc)),  # 23:59 on the 24th
            view("c1", "een", None, datetime(2026, 11, 24, 23, 0, tzinfo=timezone.utc)),   # 00:00 on the 25th
            view("c1", "een", None, datetime(2026, 11, 25, 23, 0, tzinfo=timezone.utc)),   # the 26th: later
            view("c1", "een", None, datetime(2026, 11, 23, 22, 59, tzinfo=timezone.utc))]  # the 23rd: too old
    got = sorted(r["day"] for r in in_window(silver(spark, "tv_viewing", rows), AS_OF, "Europe/Brussels", 2).collect())
    assert got == [date(2026, 11, 24), date(2026, 11, 25)]


def test_threshold_across_regions(spark) -> None:
    counts = spark.createDataFrame([
        ("d", "BE-BRU", "een", 3), ("d", "BE-VLG", "een", 40), ("d", "BE-WAL", "een", 12),   # 3 + 12 suppressed
        ("d", "BE-BRU", "vtm", 4), ("d", "BE-VLG", "vtm", 9), ("d", "BE-WAL", "vtm", 30),    # 4 + 9 = 13: enough
        ("d", "BE-BRU", "la1", 11), ("d", "BE-WAL", "la1", 50),                               # nothing small
    ], "day string, region_code string, channel_id string, viewers long")
    out = threshold_across_regions(counts, 10, ["day", "channel_id"], counts["viewers"] < 10)
    published = sorted((r["channel_id"], r["region_code"]) for r in out.where("published").collect())
    assert published == [("een", "BE-VLG"), ("la1", "BE-BRU"), ("la1", "BE-WAL"), ("vtm", "BE-WAL")]


def test_viewing_reports_count_objectors_but_not_minors_or_erased(spark) -> None:
    """k = 2. Region Flanders: c1, c2 (objected to TV personalisation, ``eligible_tv_profile`` false: still
    counted, C6), c3 (minor: never), c4 (erased: never). Wallonia: c5, c6. Programme m1 on een: c1, c2 in Flanders; programme m2: c1 only."""
    t = datetime(2026, 11, 25, 19, 0, tzinfo=timezone.utc)
    customers = silver(spark, "customers", [customer("c1", "9000"), customer("c2", "2000"), customer("c3", "9000"),
                                            customer("c4", "9000"), customer("c5", "4000"), customer("c6", "5000"),
                                            customer("c7", "0612")])
    viewing = silver(spark, "tv_viewing", [
        view("c1", "een", "m1", t), view("c2", "een", "m1", t), view("c1", "een", "m2", t),
        view("c3", "een", "m1", t), view("c4", "een", "m1", t), view("c7", "een", "m1", t),
        view("c5", "een", "m3", t), view("c6", "een", "m3", t), view("c5", "la1", None, t),
    ])
    elig = spark.createDataFrame(
        [("c1", True, False, True), ("c2", True, False, False), ("c3", False, False, False), ("c4", True, True, False),
         ("c5", True, False, True), ("c6", True, False, True), ("c7", True, False, True)],
        "customer_id string, adult boolean, erased boolean, eligible_tv_profile boolean")
    assert sorted(r["customer_id"] for r in reportable_viewers(elig).collect()) == ["c1", "c2", "c5", "c6", "c7"]
    postal = spark.createDataFrame([("9000", "BE-VLG"), ("2000", "BE-VLG"), ("4000", "BE-WAL"), ("5000", "BE-WAL")],
                                   "postal_code string, region_code string")
    names = spark.createDataFrame([("BE-VLG", "Vlaams Gewest"), ("BE-WAL", "Région wallonne")],
                                  "region_code string, region_name string")
    cells = viewing_cells(in_window(viewing, AS_OF, "Europe/Brussels", 1), reportable_viewers(elig),
                          customer_regions(customers, postal))
    reports = viewing_reports(cells, names, k=2, as_of=AS_OF)
    assert [(f.name, f.dataType) for f in reports.published.schema] == [(f.name, f.dataType) for f in VIEWING_REPORTS]
    got = sorted(tuple(r) for r in reports.published.collect())
    day = date(2026, 11, 25)
    # een: Flanders c1, c2 (2); Wallonia c5, c6 (2). la1: Wallonia c5 alone (1): suppressed, and no other region.
    # m1 Flanders: c1, c2 = 2, and een - m1 = 0: published. m2 Flanders: c1 alone: suppressed.
    # m3 Wallonia: c5, c6 = 2, een - m3 = 0: published.
    assert got == [
        ("channel", day, "BE-VLG", "Vlaams Gewest", "een", None, 2, AS_OF),
        ("channel", day, "BE-WAL", "Région wallonne", "een", None, 2, AS_OF),
        ("programme", day, "BE-VLG", "Vlaams Gewest", "een", "m1", 2, AS_OF),
        ("programme", day, "BE-WAL", "Région wallonne", "een", "m3", 2, AS_OF),
    ]


def test_a_programme_is_hidden_when_its_channel_minus_it_is_small(spark) -> None:
    """k = 2: een has 3 viewers, m1 has 2 of them: een - m1 = 1 person who watched een but not m1."""
    cells = spark.createDataFrame(
        [(c, date(2026, 11, 25), "BE-VLG", "een", p) for c, p in (("c1", "m1"), ("c2", "m1"), ("c3", "m9"))],
        "customer_id string, day date, region_code string, channel_id string, program_id string")
    names = spark.createDataFrame([("BE-VLG", "Vlaams Gewest")], "region_code string, region_name string")
    got = sorted((r["report"], str(r["program_id"]), r["viewers"], r["published"])
                 for r in viewing_reports(cells, names, k=2, as_of=AS_OF).cells.collect())
    assert got == [("channel", "None", 3, True), ("programme", "m1", 2, False), ("programme", "m9", 1, False)]


# ------------------------------------------------------------------------------------------------ the stage


@dataclass
class FakeContext:
    """The parts of ``RunContext`` the geo stage reads."""

    spark: object
    settings: object
    wh: io.Warehouse
    as_of: date
    keys: object
    frames: dict
    outputs: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    progress: Progress = field(default_factory=lambda: Progress(quiet=True))

    def silver(self, source: str) -> DataFrame:
        return self.frames[source]


def test_stages_publish_remember_and_rerun_identically(spark, settings, keyring, tmp_path) -> None:
    football = ("Football fan", 663, 0.9)
    rows = [(f"g{i}", "9000", "25-29", "F", "nl", "single", [football]) for i in range(4)]
    rows += [(f"a{i}", "2000", "30-34", "M", "nl", "single", []) for i in range(4)]
    rows += [("b1", "1000", "30-34", "M", "fr", "single", [])]  # Brussels: 1 < k
    small = settings.replace(geo=GeoSettings(k=2))  # with the margin, areas need 3 people
    t = datetime(2026, 11, 25, 19, 0, tzinfo=timezone.utc)
    frames = {"tv_viewing": silver(spark, "tv_viewing", [view("g0", "een", "m1", t), view("g1", "een", "m1", t),
                                                         view("g2", "een", "m1", t)]),
              "customers": silver(spark, "customers", [customer("g0", "9000"), customer("g1", "9000"),
                                                       customer("g2", "9000")])}
    elig = elig_rows(spark, [("g0", True, False), ("g1", True, False), ("g2", True, False)])

    def run(day: date, viewing: bool = False) -> tuple[list, FakeContext]:
        ctx = FakeContext(spark, small, io.Warehouse(tmp_path / "wh"), day, keyring, frames,
                          outputs={"tv_profiles": profile_rows(spark, rows)})
        stage_geo(ctx, elig)
        if viewing:
            stage_viewing_reports(ctx, elig)
        got = sorted((r["area_level"], r["area_code"], r["n_customers"]) for r in ctx.outputs["geo_profiles"].collect())
        return got, ctx

    got, ctx = run(AS_OF, viewing=True)
    # 9000 (4) and 2000 (4) in Flanders; Brussels' 1 would be the national 9 minus Flanders' 8. Flanders
    # (residual 0) goes, then the first of its equal provinces, BE-VAN (residual 0), then its postal code 2000:
    # 9 - 4 = 5 stays undivided.
    assert got == [("postal_code", "9000", 4), ("province", "BE-VOV", 4)]
    assert ctx.metrics["geo.cells_published.region"] == 0 and ctx.metrics["geo.cells_suppressed.region"] == 2
    assert ctx.metrics["geo.unlocated"] == 0
    assert ctx.metrics["reports.viewing.rows_published"] == 2  # een and m1 in Flanders: 3 viewers each
    reports = sorted((r["report"], str(r["program_id"]), r["viewers"]) for r in ctx.outputs["viewing_reports"].collect())
    assert reports == [("channel", "None", 3), ("programme", "m1", 3)]
    memory = read_memory(spark, tmp_path / "wh" / "ops" / "geo_memory", date(2026, 11, 26))
    assert memory.areas == {pc("9000"), prov("BE-VOV")}
    assert memory.interests == {663: frozenset({pc("9000"), prov("BE-VOV")})}
    again, _ = run(AS_OF)  # a rerun of the same day reads the same (empty) memory: same output
    assert again == got
    next_day, _ = run(date(2026, 11, 26))
    assert next_day == got
