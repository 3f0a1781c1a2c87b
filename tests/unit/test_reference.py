"""Reference data: IAB taxonomies, interest mappings, special-category deny-list (P3, P4), geography (G1)."""
from __future__ import annotations

import csv
import dataclasses
import importlib.util
import shutil
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.reference import geo as geo_module
from pipelines.reference import taxonomy as tx
from pipelines.reference.geo import big_city_weight, language_area, load_geography
from pipelines.reference.taxonomy import (
    AgeBand,
    MappingError,
    ReferenceDataError,
    ancestors,
    iab_age_bands,
    iab_gender_ids,
    load_audience_taxonomy,
    load_content_taxonomy,
    load_ctv_genres,
    load_deny_list,
    load_mappings,
    read_mappings,
    subgenre_key,
    subtree,
    validate_mappings,
)

CONF = Path(__file__).resolve().parents[2] / "conf"


@pytest.fixture(scope="module")
def audience():
    return load_audience_taxonomy(CONF / tx.AUDIENCE_TAXONOMY_FILE)


@pytest.fixture(scope="module")
def content():
    return load_content_taxonomy(CONF / tx.CONTENT_TAXONOMY_FILE)


@pytest.fixture(scope="module")
def deny(audience, content):
    return load_deny_list(CONF, audience, content)


@pytest.fixture(scope="module")
def mappings():
    return load_mappings(CONF)


@pytest.fixture(scope="module")
def geography():
    return load_geography(CONF)


def conf_copy(tmp_path: Path) -> Path:
    """A writable conf/ with the shipped reference files and a copy of the mappings."""
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "reference").symlink_to(CONF / "reference", target_is_directory=True)
    shutil.copytree(CONF / "mappings", conf / "mappings")
    return conf


# ---------------------------------------------------------------------------------------- taxonomies


def test_audience_taxonomy_parses_the_published_file(audience):
    assert len(audience) == 1558
    assert audience[3] == tx.AudienceNode(3, 2, "18-20", "Demographic | Age Range | 18-20",
                                          ("Demographic", "Age Range", "18-20"), "")
    assert audience[206].parent_id is None and audience[206].is_interest
    assert audience[550].name == "Pharmaceuticals, Conditions, and Symptoms"
    assert audience[1034].is_purchase_intent and not audience[1034].is_interest
    assert audience[55].extension_notes == "ISO-3166-1-alpha-3"
    assert Counter(n.tier1 for n in audience.values()) == {"Demographic": 197, "Interest": 497, "Purchase Intent*": 864}


def test_content_taxonomy_keeps_alphanumeric_ids(content):
    assert len(content) == 704
    assert content["KHPC5A"] == tx.ContentNode("KHPC5A", "SPSHQ5", "True Crime", ("Genres", "True Crime"), "")
    assert content["533"].parent_id == "483" and content["533"].name == "Soccer"
    assert content["324"].tiers == ("Entertainment", "Movies")


def test_age_bands_are_read_exactly_from_the_taxonomy(audience):
    expected = [
        AgeBand(18, 20, "18-20", 3), AgeBand(21, 24, "21-24", 4), AgeBand(25, 29, "25-29", 5),
        AgeBand(30, 34, "30-34", 6), AgeBand(35, 39, "35-39", 7), AgeBand(40, 44, "40-44", 8),
        AgeBand(45, 49, "45-49", 9), AgeBand(50, 54, "50-54", 10), AgeBand(55, 59, "55-59", 11),
        AgeBand(60, 64, "60-64", 12), AgeBand(65, 69, "65-69", 13), AgeBand(70, 74, "70-74", 14),
        AgeBand(75, None, "75+", 15),
    ]
    assert list(iab_age_bands(audience)) == expected
    assert tx.IAB_AGE_BANDS == expected


def test_gender_ids_are_read_from_the_taxonomy(audience):
    assert iab_gender_ids(audience) == {"F": 49, "M": 50, "X": 51, "unknown": 52}


def test_subtree_and_ancestors(audience):
    assert subtree(audience, 529) == {529, 530, 531, 532}
    assert ancestors(audience, 386) == (383, 382, 381, 206)


# ---------------------------------------------------------------------------------------- deny-list


def test_deny_list_expands_subtrees_to_known_descendants(deny):
    # 386 "Health Care and Physicians" is a grandchild of the denied root 381.
    assert {381, 382, 383, 386, 404} <= deny.audience_ids
    assert {529, 530, 531, 532} <= deny.audience_ids  # Politics and all of it
    assert {"459", "461", "462", "456"} <= deny.content_ids  # Christianity, Islam, Judaism, Astrology
    assert {"305", "301", "307", "308"} <= deny.content_ids  # Pregnancy, Mental Health, Sexual Health...
    assert "Rm3SiT" in deny.content_ids  # Adult & Explicit Sexual Content under Sensitive Topics


def test_healthy_living_is_denied_except_fitness(deny, audience):
    assert 406 in deny.audience_ids  # the generic node itself ("node" scope)
    assert {407, 412, 415, 416, 417, 420, 421} <= deny.audience_ids
    assert not {408, 409, 410} & deny.audience_ids  # Fitness and Exercise, Participant Sports, Running
    assert "223" in deny.content_ids and not {"225", "226", "227"} & deny.content_ids


def test_deny_list_is_exactly_the_expansion_of_its_entries(deny, audience, content):
    for taxonomy, nodes, denied, cast in (("audience", audience, deny.audience_ids, int),
                                          ("content", content, deny.content_ids, str)):
        roots = {cast(e.node_id) for e in deny.entries if e.taxonomy == taxonomy and e.scope == "subtree"}
        single = {cast(e.node_id) for e in deny.entries if e.taxonomy == taxonomy and e.scope == "node"}
        expected = {i for i in nodes if i in single or i in roots or set(ancestors(nodes, i)) & roots}
        assert denied == expected


def test_deny_list_rejects_a_misnamed_node(tmp_path):
    conf = conf_copy(tmp_path)
    path = conf / tx.DENY_LIST_FILE
    path.write_text(path.read_text(encoding="utf-8").replace("audience,529,Politics,", "audience,529,Politic,"),
                    encoding="utf-8")
    with pytest.raises(ReferenceDataError, match=r"audience node 529 is 'Politics', not 'Politic'"):
        load_deny_list(conf)


# ---------------------------------------------------------------------------------------- mappings


def _all_rows(mappings):
    for m in mappings.genres:
        yield "ctv_genre", m.ctv_genre, m.content_id, m.audience_id
    for m in mappings.subgenres:
        yield "subgenre", m.subgenre, m.content_id, m.audience_id
    for m in mappings.content:
        yield "content", m.content_id, m.content_id, m.audience_id
    for m in mappings.products:
        yield "product", f"{m.product_category}/{m.product_tier}", None, m.audience_id


def test_every_mapping_id_exists_and_no_interest_is_a_special_category(mappings, audience, content, deny):
    for table, key, content_id, audience_id in _all_rows(mappings):
        if content_id is not None:
            assert content_id in content, (table, key)
        if audience_id is not None:
            assert audience[audience_id].is_interest, (table, key)
            assert audience_id not in deny.audience_ids, (table, key)
            assert content_id not in deny.content_ids, (table, key)


def test_validation_of_shipped_mappings_finds_nothing(mappings, audience, content, deny):
    genres = load_ctv_genres(CONF / tx.CTV_GENRE_FILE)
    assert validate_mappings(mappings, audience, content, deny, genres) == []
    assert mappings.versions == {"ctv_genre": "1.0.0", "subgenre": "1.0.0", "content": "1.0.0", "product": "1.0.0"}


def test_genre_table_has_one_row_per_iab_ctv_genre(mappings, content):
    iab = load_ctv_genres(CONF / tx.CTV_GENRE_FILE)
    ours = {m.ctv_genre: m for m in mappings.genres}
    assert len(mappings.genres) == len(iab) == 44
    assert set(ours) == set(iab)
    # content ids copied from the IAB file, except the one it gives that Content 3.1 does not have
    dangling = {g for g, cid in iab.items() if cid not in content}
    assert dangling == {"News"}
    assert all(ours[g].content_id == iab[g] for g in iab if g not in dangling)
    assert ours["News"].content_id is None and ours["News"].audience_id == 528
    ignored = {g for g, m in ours.items() if m.audience_id is None}
    assert ignored == {"Politics", "Religion", "War"}
    assert (ours["Comedy"].audience_id, ours["Comedy"].interest) == (709, "Comedy fan")
    assert ours["Sitcom"].audience_id == 709


def test_subgenre_table(mappings):
    by_key = {m.key: m for m in mappings.subgenres}
    required = ["Football", "Cycling", "Tennis", "Formula 1", "Basketball", "Cooking", "Baking", "Gardening",
                "Travel", "Cars", "Technology", "Personal finance", "Fashion", "Home & DIY", "Pets",
                "Classical music", "Pop music", "Gaming", "Fitness", "Wine"]
    assert all(by_key[subgenre_key(s)].audience_id is not None for s in required)
    assert len([m for m in mappings.subgenres if m.audience_id is not None]) >= 20
    assert (by_key["football"].audience_id, by_key["football"].interest) == (663, "Football fan")
    assert ("formula 1", 610, "Motorsport fan") in mappings.subgenre_rows()
    assert by_key["politics"].audience_id is None and by_key["health"].audience_id is None


def test_product_table_only_lists_purchases_that_justify_an_interest(mappings):
    assert sorted(mappings.product_rows()) == [
        ("accessory", "premium", 703, "Technology early adopter"),
        ("laptop", "premium", 703, "Technology early adopter"),
        ("smart_home", "entry", 465, "Smart home enthusiast"),
        ("smart_home", "mid", 465, "Smart home enthusiast"),
        ("smart_home", "premium", 465, "Smart home enthusiast"),
        ("smartphone", "premium", 703, "Technology early adopter"),
        ("tablet", "premium", 703, "Technology early adopter"),
        ("tv", "premium", 703, "Technology early adopter"),
    ]


def test_content_mapping_examples(mappings):
    by_id = {m.content_id: m for m in mappings.content}
    assert (by_id["533"].audience_id, by_id["533"].interest, by_id["533"].match) == (663, "Football fan", "exact")
    assert (by_id["4"].audience_id, by_id["4"].match) == (243, "parent")       # Sedan -> Automotive
    assert (by_id["225"].audience_id, by_id["225"].match) == (408, "exact")    # Fitness stays
    assert (by_id["229"].audience_id, by_id["229"].match) == (None, "denied")  # Nutrition
    assert (by_id["389"].audience_id, by_id["389"].match) == (None, "denied target")  # War -> Politics node
    assert (by_id["480"].audience_id, by_id["480"].match) == (None, "excluded")  # lotteries
    assert "386" not in by_id and "286" not in by_id  # Politics, Medical Health: out of scope entirely
    assert len({m.content_id for m in mappings.content}) == len(mappings.content) == 620


def test_one_label_per_interest(mappings):
    labels: dict[int, set[str]] = {}
    for rows in (mappings.genres, mappings.subgenres, mappings.content, mappings.products):
        for m in rows:
            if m.audience_id is not None:
                labels.setdefault(m.audience_id, set()).add(m.interest)
    assert {k: v for k, v in labels.items() if len(v) != 1} == {}
    assert mappings.interest_labels[703] == "Technology early adopter"


def test_content_mapping_is_reproducible_from_the_generator():
    path = CONF / "mappings" / "build_content_to_audience.py"
    spec = importlib.util.spec_from_file_location("build_content_to_audience", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (CONF / "mappings" / "content_to_audience.csv").read_text(encoding="utf-8")
    assert module.render(module.build_rows(CONF)) == committed


def test_validate_mappings_reports_each_problem(mappings, audience, content, deny):
    genre = mappings.genres[0]  # Action -> 468
    broken = dataclasses.replace(
        mappings,
        genres=mappings.genres + (
            dataclasses.replace(genre, ctv_genre="Action"),                                # duplicate key
            dataclasses.replace(genre, ctv_genre="Medical", audience_id=386),              # denied target
            dataclasses.replace(genre, ctv_genre="Ages", audience_id=3, interest="Young"),  # not an interest
            dataclasses.replace(genre, ctv_genre="Nope", content_id="ZZZ", audience_id=99999),
            dataclasses.replace(genre, ctv_genre="Relabel", interest="Action lover"),      # second label for 468
        ),
        products=mappings.products + (
            tx.ProductMapping("phone", "gold", 703, "Technology early adopter", "1.0.0"),
        ),
    )
    problems = validate_mappings(broken, audience, content, deny)
    assert sorted(problems) == sorted([
        "ctv_genre 'Medical': audience id 386 (Health Care and Physicians) is a special category (deny-list)",
        "ctv_genre 'Ages': audience id 3 (Demographic | Age Range | 18-20) is not an Interest node",
        "ctv_genre 'Nope': content id ZZZ is not in Content Taxonomy 3.1",
        "ctv_genre 'Nope': audience id 99999 is not in Audience Taxonomy 1.1",
        "product 'phone/gold': unknown product_category (expected one of "
        "smartphone, tablet, laptop, tv, smart_home, accessory, subscription)",
        "product 'phone/gold': unknown product_tier (expected one of entry, mid, premium)",
        "ctv_genre 'Action': duplicate key",
        "audience id 468: one label per interest expected, found ['Action & adventure fan', 'Action lover']",
    ])


def test_validate_mappings_flags_interest_derived_from_special_content(mappings, audience, content, deny):
    sub = dataclasses.replace(mappings.subgenres[0], subgenre="Church", content_id="459", audience_id=663)
    broken = dataclasses.replace(mappings, subgenres=mappings.subgenres + (sub,))
    assert validate_mappings(broken, audience, content, deny) == [
        "subgenre 'Church': content id 459 is a special category and may not yield an interest",
    ]


def test_load_mappings_refuses_a_denied_target(tmp_path):
    conf = conf_copy(tmp_path)
    path = conf / "mappings" / "subgenre_to_audience.csv"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("Elections,387,530,Election watcher,1.0.0,\n")
    with pytest.raises(MappingError) as error:
        load_mappings(conf)
    message = str(error.value)
    assert "subgenre 'Elections': audience id 530 (Elections) is a special category (deny-list)" in message
    assert "subgenre 'Elections': content id 387 is a special category and may not yield an interest" in message


def test_load_mappings_refuses_mixed_versions(tmp_path):
    conf = conf_copy(tmp_path)
    path = conf / "mappings" / "product_to_audience.csv"
    with path.open("a", encoding="utf-8") as handle:
        handle.write("laptop,mid,690,Interested in Computing,1.0.1,\n")
    with pytest.raises(MappingError, match=r"same non-empty mapping_version, found \['1.0.0', '1.0.1'\]"):
        read_mappings(conf)


@given(st.text(alphabet=st.sampled_from("Fotbal 1\t\n"), max_size=20))
def test_subgenre_key_is_idempotent_and_ignores_spacing(text):
    key = subgenre_key(text)
    assert subgenre_key(key) == key
    assert subgenre_key(f"  {text.upper()}  ") == key
    assert "  " not in key and key == key.strip()


# ---------------------------------------------------------------------------------------- geography


def _raw_postal_rows():
    with (CONF / geo_module.POSTAL_CODES_FILE).open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_every_geographic_postal_code_gets_a_province_and_region(geography):
    rows = _raw_postal_rows()
    geographic = {code for code, _, _, province in rows if province}
    assert set(geography.areas) == geographic
    for code, _, _, province in rows:
        if province:
            area = geography.areas[code]
            assert area.province_code == geo_module.PROVINCE_BY_FRENCH_NAME[province]
            assert area.region_code == geo_module.region_of_province(area.province_code)


def test_known_areas(geography):
    assert (geography.areas["1000"].province_code, geography.areas["1000"].region_code) == ("BE-BRU", "BE-BRU")
    assert (geography.areas["9000"].province_code, geography.areas["9000"].region_code) == ("BE-VOV", "BE-VLG")
    assert geography.areas["4700"].language_area == "de"
    assert geography.areas["4700"].locality == "Eupen"
    assert geography.areas["2100"].is_main is False and geography.areas["2000"].is_main is True


def test_province_and_region_counts(geography):
    assert geography.provinces == {"BE-VAN", "BE-VBR", "BE-VLI", "BE-VOV", "BE-VWV", "BE-WBR", "BE-WHT",
                                   "BE-WLG", "BE-WLX", "BE-WNA", "BE-BRU"}
    assert geography.regions == {"BE-VLG", "BE-WAL", "BE-BRU"}
    assert Counter(a.province_code for a in geography.areas.values())["BE-BRU"] == 22
    assert len(geography.areas) == 1146


def test_non_geographic_codes_are_kept_apart(geography):
    assert len(geography.non_geographic) == 46
    assert {"1005", "1006", "1007", "1008", "0612", "9099"} <= set(geography.non_geographic)
    assert not set(geography.non_geographic) & set(geography.areas)
    assert geography.non_geographic["1008"] == "Chambre des Représentants"


def test_german_language_area_is_exactly_the_nine_municipalities(geography):
    german = {code for code, a in geography.areas.items() if a.language_area == "de"}
    assert german == {"4700", "4701", "4710", "4711", "4720", "4721", "4728", "4730", "4731", "4750", "4760",
                      "4761", "4770", "4771", "4780", "4782", "4783", "4784", "4790", "4791"}
    main = {loc.name for loc in geography.localities if loc.postal_code in german and loc.is_main}
    assert main == {"EUPEN", "LONTZEN", "LA CALAMINE", "RAEREN", "BUTGENBACH", "BULLANGE", "AMBLÈVE",
                    "SAINT-VITH", "BURG-REULAND"}


def test_language_area_follows_the_region_outside_the_german_community(geography):
    expected = {"BE-BRU": "bilingual", "BE-VLG": "nl", "BE-WAL": "fr"}
    for area in geography.areas.values():
        if area.language_area != "de":
            assert area.language_area == expected[area.region_code], area


@given(st.integers(min_value=1000, max_value=9999))
def test_language_area_partitions_all_codes(code):
    area = language_area(str(code))
    assert area == ("bilingual" if code < 1300 else "de" if 4700 <= code < 4800
                    else "fr" if code < 1500 or 4000 <= code < 8000 else "nl")


@pytest.mark.parametrize("bad", ["0612", "12345", "abc", "", "999"])
def test_language_area_rejects_non_postal_codes(bad):
    with pytest.raises(ValueError):
        language_area(bad)


def test_big_city_weights(geography):
    assert [big_city_weight(c) for c in ("1000", "1210", "2000", "2660", "9000", "6061", "4000", "8000",
                                         "3000", "7000", "2070", "8020", "4040", "4800")] == \
        [8, 8, 8, 8, 4, 4, 4, 2, 2, 2, 1, 1, 1, 1]
    assert Counter(a.big_city_weight for a in geography.areas.values()) == {8: 36, 4: 29, 2: 56, 1: 1025}
    for weight, codes in geo_module.BIG_CITIES.values():
        assert all(code in geography.areas for code in codes)


def test_coordinates(geography):
    assert {c for c, a in geography.areas.items() if a.lon is None or a.lat is None} == {"5352"}
    for area in geography.areas.values():
        if area.lon is not None:
            assert 2.5 < area.lon < 6.5 and 49.4 < area.lat < 51.6, area


def test_to_rows(geography):
    rows = geography.to_rows()
    assert len(rows) == 1146 and all(len(r) == len(geography.ROW_FIELDS) for r in rows)
    assert [r[0] for r in rows] == sorted(geography.areas)
    assert rows[0] == ("1000", "Bruxelles", "BE-BRU", "BE-BRU", "bilingual", 8, 4.351697, 50.8465573, True)
    assert dict(zip(geography.ROW_FIELDS, rows[0]))["province_code"] == "BE-BRU"
