"""Segment definitions: parsing with line numbers, schema, and every lint rule with a definition that breaks it."""
from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from pipelines.config import PROJECT_ROOT, SegmentSettings
from pipelines.segments.catalogue import load_catalogue
from pipelines.segments.cli import cmd_validate
from pipelines.segments.lint import validate_paths
from pipelines.segments.model import SCHEMA_FILE, AllOf, Condition, Not, discover, parse_text

SEGMENTS = PROJECT_ROOT / "segments"

# A valid definition; each test changes one thing. The rule starts on line 8.
HEAD = """\
name: {name}
description: A segment written for a test.
owner: test-team
channels: [{channels}]
purpose: [{purpose}]
min_audience: {min_audience}
rule:
"""


def write(tmp_path: Path, name: str, rule: str, *, channels: str = "tv", purpose: str = "tv_personalised_ads",
          min_audience: int = 100, head: str | None = None) -> Path:
    path = tmp_path / f"{name}.yaml"
    text = (head if head is not None else HEAD).format(name=name, channels=channels, purpose=purpose,
                                                      min_audience=min_audience)
    path.write_text(text + textwrap.indent(textwrap.dedent(rule).strip("\n"), "  ") + "\n", encoding="utf-8")
    return path


def problems(settings, *paths: Path) -> list[str]:
    return [str(p) for p in validate_paths(list(paths), settings).problems]


@pytest.fixture(scope="module")
def catalogue(settings):
    return load_catalogue(settings.conf_dir)


# --- the shipped definitions ------------------------------------------------------------------------


def test_shipped_segments_are_valid_without_warnings(settings):
    assert problems(settings, SEGMENTS) == []


def test_shipped_segments_cover_both_channels_and_kinds(settings):
    defs = validate_paths([SEGMENTS], settings).definitions
    assert len(defs) >= 12
    assert {d.name for d in defs} == {Path(d.path).stem for d in defs}
    assert sum("tv" in d.channels for d in defs) >= 6 and sum("web" in d.channels for d in defs) >= 6
    attributes = {c.attribute for d in defs for c in _conditions(d.rule)}
    assert {"interest", "age", "age_band", "language", "region", "family_typology", "has_garden",
            "products_owned", "purchase_recency", "income_band"} <= attributes


def _conditions(node):
    from pipelines.segments.model import conditions
    return list(conditions(node))


def test_shipped_segments_follow_the_json_schema():
    from jsonschema import Draft202012Validator
    import yaml

    schema = json.loads(SCHEMA_FILE.read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    for path in discover([SEGMENTS]):
        assert list(validator.iter_errors(yaml.safe_load(path.read_text()))) == [], path


def test_json_schema_rejects_the_rule_shapes_the_parser_rejects(tmp_path):
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    base = {"name": "abc", "description": "ten characters", "owner": "o", "channels": ["tv"],
            "purpose": "tv_personalised_ads", "min_audience": 100}
    for rule in ({"all": []}, {"gender": ["F"], "language": ["fr"]}, {}, {"age": {"between": 3}}):
        assert list(validator.iter_errors({**base, "rule": rule})), rule


def test_readme_documents_every_catalogue_attribute(catalogue):
    readme = (SEGMENTS / "README.md").read_text()
    for attr in catalogue.attributes.values():
        assert f"`{attr.name}`" in readme, attr.name


# --- parsing ---------------------------------------------------------------------------------------


def test_parse_keeps_line_numbers_of_every_rule_node():
    text = HEAD.format(name="lines", channels="tv", purpose="tv_personalised_ads", min_audience=100) + (
        "  all:\n"
        "    - gender: [F]\n"
        "    - not:\n"
        "        language: [fr]\n")
    parsed = parse_text(text, "lines.yaml")
    assert parsed.problems == []
    assert parsed.definition.rule == AllOf(
        (Condition("gender", ["F"], 9), Not(Condition("language", ["fr"], 11), 10)), 8)
    assert parsed.definition.line_of("min_audience") == 6


def test_definition_hash_ignores_comments_and_key_order():
    a = parse_text("name: abc\ndescription: ten characters\nowner: o\nchannels: [tv]\npurpose: tv_personalised_ads\n"
                   "min_audience: 100\nrule: {gender: [F]}\n", "a.yaml").definition
    b = parse_text("# comment\nowner: o\nname: abc\ndescription: ten characters\nchannels: [tv]\nmin_audience: 100\n"
                   "purpose: tv_personalised_ads\nrule: {gender: [F]}\n", "a.yaml").definition
    c = parse_text("name: abc\ndescription: ten characters\nowner: o\nchannels: [tv]\npurpose: tv_personalised_ads\n"
                   "min_audience: 100\nrule: {gender: [M]}\n", "a.yaml").definition
    assert a.definition_hash == b.definition_hash != c.definition_hash


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path, settings):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ndescription: x\n  owner: [\n", encoding="utf-8")
    assert problems(settings, path) == [f"{path}:3: error: not valid YAML: mapping values are not allowed here"]


def test_duplicate_yaml_key_is_an_error(tmp_path, settings):
    path = write(tmp_path, "dup_key", "gender: [F]")
    path.write_text(path.read_text() + "owner: someone-else\n")
    assert problems(settings, path) == [f"{path}:9: error: duplicate key 'owner'"]


def test_schema_errors_point_at_their_field(tmp_path, settings):
    head = HEAD.replace("channels: [{channels}]", "channels: [{channels}, radio]").replace("rule:", "colour: blue\nrule:")
    path = write(tmp_path, "schema_bad", "gender: [F]", head=head)
    assert problems(settings, path) == [
        f"{path}:1: error: unknown field: Additional properties are not allowed ('colour' was unexpected)",
        f"{path}:4: error: channels.1: 'radio' is not one of ['tv', 'web']",
    ]


def test_rule_with_two_keys_is_an_error(tmp_path, settings):
    path = write(tmp_path, "two_keys", "gender: [F]\nlanguage: [fr]")
    assert problems(settings, path) == [
        f"{path}:8: error: a rule is a mapping with exactly one key: all, any, not or a catalogue attribute"]


# --- one test per lint rule ------------------------------------------------------------------------


def test_unknown_attribute(tmp_path, settings):
    path = write(tmp_path, "unknown_attr", "all:\n  - gender: [F]\n  - favourite_colour: [red]")
    assert problems(settings, path) == [
        f"{path}:10: error: unknown attribute 'favourite_colour'; the catalogue lists age, age_band, gender, "
        "language, region, province, postal_code, customer_type, services, family_typology, household_size, "
        "income_band, urbanisation, dwelling_type, has_garden, products_owned, purchase_recency, interest"]


def test_unknown_value_and_operator(tmp_path, settings):
    path = write(tmp_path, "unknown_value", "all:\n  - language: [fr, klingon]\n  - age: {between: [1, 2]}")
    assert problems(settings, path) == [
        f"{path}:9: error: unknown value 'klingon' for language (allowed: nl, fr, de, en)",
        f"{path}:10: error: age takes min and/or max, e.g. {{min: 25, max: 34}}",
    ]


@pytest.mark.parametrize("rule, message", [
    ("religion: [catholic]", "religion is a special-category attribute (GDPR art. 9: religious or philosophical "
                             "beliefs); it can never be used in a segment (P4)"),
    ("interest: {iab_audience_id: 530}", "interest 530 (Elections) is a special category on the deny-list "
                                         "(530 Elections); GDPR art. 9 (P4)"),
    ("interest: {name: Weight Loss}", "interest 414 (Weight Loss) is a special category on the deny-list "
                                      "(414 Weight Loss); GDPR art. 9 (P4)"),
    ("interest: {iab_audience_id: 522, include_children: true}",
     "interest 522 (News and Politics) includes a special category on the deny-list (529 Politics, 530 Elections, "
     "531 Political Issues, 532 War and Conflicts); GDPR art. 9 (P4)"),
])
def test_special_category_attribute_or_interest(tmp_path, settings, rule, message):
    path = write(tmp_path, "special", rule)
    assert problems(settings, path) == [f"{path}:8: error: {message}"]


def test_special_category_taxonomy_id_on_the_label(tmp_path, settings):
    head = HEAD.replace("rule:\n", "iab_audience_ids: [529]\nrule:\n")
    path = write(tmp_path, "special_label", "gender: [F]", head=head)
    assert problems(settings, path) == [
        f"{path}:7: error: IAB audience id 529 (Politics) is a special category on the deny-list; GDPR art. 9 (P4)"]


@pytest.mark.parametrize("rule, line, ages", [
    ("age_band: ['25-29', '13-17']", 8, "13-17"),
    ("age: {max: 16}", 8, "0-16"),
    ("all:\n  - gender: [F]\n  - not:\n      age: {min: 30}", 11, "0-17"),
    ("any:\n  - interest: 663\n  - age: {min: 16, max: 20}", 10, "16-17"),
])
def test_rule_reaching_minors(tmp_path, settings, rule, line, ages):
    path = write(tmp_path, "minors", rule)
    found = problems(settings, path)
    assert (f"{path}:{line}: error: rule reaches minors: its age conditions admit ages {ages}, under the minimum age "
            "of 18 (no profiling of minors, C5)") in found
    assert all(":error:" not in p for p in found)


def test_age_range_written_with_not_inside_adult_ages_is_fine(tmp_path, settings):
    path = write(tmp_path, "adults_25_34", "all:\n  - age: {min: 25}\n  - not: {age: {min: 35}}")
    assert problems(settings, path) == []


def test_minimum_age_comes_from_the_settings(tmp_path, settings):
    path = write(tmp_path, "over_19", "age: {min: 19}")
    assert problems(settings, path) == []
    assert problems(settings.replace(minimum_age=21), path) == [
        f"{path}:8: error: rule reaches minors: its age conditions admit ages 19-20, under the minimum age of 21 "
        "(no profiling of minors, C5)"]


def test_min_audience_below_the_floor(tmp_path, settings):
    path = write(tmp_path, "tiny", "gender: [F]", min_audience=49)
    assert problems(settings, path) == [
        f"{path}:6: error: min_audience 49 is below the global floor of 50 (segments.min_audience_floor)"]
    raised = settings.replace(segments=SegmentSettings(min_audience_floor=200))
    assert problems(raised, write(tmp_path, "small", "gender: [F]", min_audience=100)) == [
        f"{tmp_path / 'small.yaml'}:6: error: min_audience 100 is below the global floor of 200 "
        "(segments.min_audience_floor)"]


@pytest.mark.parametrize("owner_line, line", [("", 1), ("owner: '   '\n", 3)])
def test_missing_owner(tmp_path, settings, owner_line, line):
    path = write(tmp_path, "ownerless", "gender: [F]", head=HEAD.replace("owner: test-team\n", owner_line))
    assert problems(settings, path) == [
        f"{path}:{line}: error: missing owner: every segment needs an owning team or person"]


def test_duplicate_name_across_files(tmp_path, settings):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write(tmp_path / "a", "twin", "gender: [F]")
    second = write(tmp_path / "b", "twin", "gender: [M]")
    assert problems(settings, tmp_path / "a", tmp_path / "b") == [
        f"{second}:1: error: duplicate name 'twin': also defined in {first}:1"]


@pytest.mark.parametrize("rule, line, why", [
    ("all:\n  - gender: [F]\n  - gender: [M]", 8, "the conditions under `all` contradict each other"),
    ("age: {min: 40, max: 30}", 8, "the condition `age 40 to 30` can never be true"),
    ("gender: []", 8, "the condition `gender in (nothing)` can never be true"),
    ("not:\n  any:\n    - gender: [F]\n    - not: {gender: [F]}", 8, "`not` of a condition that always holds"),
    ("all:\n  - language: [fr]\n  - language: {not_in: [fr, nl]}", 8,
     "the conditions under `all` contradict each other"),
    ("all:\n  - region: [BE-WAL]\n  - province: [BE-VAN]", 8, "the conditions under `all` contradict each other"),
    ("all:\n  - interest: {iab_audience_id: 663, min_score: 1.5}\n  - not:\n      interest: {iab_audience_id: 663, "
     "min_score: 1.2}", 8, "the conditions under `all` contradict each other"),
    ("all:\n  - interest: 663\n  - any:\n      - postal_code: ['1000']\n      - region: [BE-BRU]\n"
     "  - province: [BE-VAN]", 8, "the conditions under `all` contradict each other"),
    ("any:\n  - services: []\n  - household_size: {min: 5, max: 4}", 9,
     "the condition `services: any of (nothing)` can never be true"),
])
def test_rule_that_can_never_match(tmp_path, settings, rule, line, why):
    path = write(tmp_path, "never", rule)
    found = problems(settings, path)
    assert found[0] == f"{path}:{line}: error: rule can never match: {why}"
    assert all(p.startswith(f"{path}:") and "can never match" in p for p in found)


def test_unknown_iab_id(tmp_path, settings):
    head = HEAD.replace("rule:\n", "iab_audience_ids: [999999]\nrule:\n")
    path = write(tmp_path, "unknown_iab", "interest: 888888", head=head)
    assert problems(settings, path) == [
        f"{path}:7: error: unknown IAB audience id 999999 (not in Audience Taxonomy 1.1)",
        f"{path}:9: error: unknown IAB audience id 888888 (not in Audience Taxonomy 1.1)",
    ]


def test_interest_must_be_an_interest_node(tmp_path, settings):
    path = write(tmp_path, "demo_as_interest", "interest: 5")
    assert problems(settings, path) == [
        f"{path}:8: error: IAB audience id 5 (Demographic | Age Range | 25-29) is not an Interest node; "
        "use the catalogue's demographic attributes"]


@pytest.mark.parametrize("channels, purpose, messages", [
    ("tv, web", "tv_personalised_ads", ["channel web needs purpose 'web_profile': its profiles are built under "
                                        "that purpose"]),
    ("tv", "tv_personalised_ads, web_profile", ["purpose 'web_profile' does not fit channels tv (it is the purpose "
                                                "of channel web)"]),
    ("tv", "tv_personalised_ads, marketing", ["purpose 'marketing' does not fit channels tv (segments are processed "
                                              "for a channel purpose, optionally with ads_and_data or "
                                              "advertiser_list_refinement)"]),
    ("web", "web_profile, astrology", ["unknown purpose 'astrology'; configured purposes: ads_and_data, "
                                       "advertiser_list_refinement, marketing, proximus_3p_ad_cookies, "
                                       "tv_personalised_ads, web_profile"]),
])
def test_channel_purpose_mismatch(tmp_path, settings, channels, purpose, messages):
    path = write(tmp_path, "mismatch", "gender: [F]", channels=channels, purpose=purpose)
    assert problems(settings, path) == [f"{path}:5: error: {m}" for m in messages]


def test_sharing_purposes_fit_any_channel(tmp_path, settings):
    path = write(tmp_path, "shared", "gender: [F]", purpose="tv_personalised_ads, ads_and_data, "
                                                             "advertiser_list_refinement")
    assert problems(settings, path) == []


def test_attribute_the_policy_keeps_off_a_channel(tmp_path, settings):
    path = write(tmp_path, "garden_on_tv", "has_garden: true", channels="tv, web",
                 purpose="tv_personalised_ads, web_profile")
    assert problems(settings, path) == [
        f"{path}:8: error: has_garden cannot be used on channel tv: the privacy policy lets cadastral data feed the "
        "web profile only"]


# --- warnings --------------------------------------------------------------------------------------


def test_dead_branch_everyone_rule_and_file_name_are_warnings(tmp_path, settings):
    dead = write(tmp_path, "dead_branch", "any:\n  - interest: 663\n  - all:\n      - gender: [F]\n      - gender: [M]")
    everyone = write(tmp_path, "everyone", "language: [nl, fr, de, en]")
    misnamed = tmp_path / "other_name.yaml"
    misnamed.write_text(write(tmp_path, "renamed", "gender: [F]").read_text())
    (tmp_path / "renamed.yaml").unlink()
    result = validate_paths([dead, everyone, misnamed], settings)
    assert result.ok
    assert [str(p) for p in result.problems] == [
        f"{dead}:10: warning: this part of the rule can never be true (dead condition)",
        f"{everyone}:8: warning: rule matches every profile of its channel(s)",
        f"{misnamed}:1: warning: file is named 'other_name' but the segment is 'renamed'; name the file renamed.yaml",
    ]


def test_interest_no_mapping_derives_is_a_warning(tmp_path, settings, catalogue):
    underived = next(n.id for n in catalogue.audience.values()
                     if n.is_interest and n.id not in catalogue.interest_labels
                     and not catalogue.deny.denies_audience(n.id))
    path = write(tmp_path, "underived", f"interest: {underived}")
    name = catalogue.audience[underived].name
    assert problems(settings, path) == [
        f"{path}:8: warning: no interest mapping derives IAB id {underived} ({name}): no profile carries it, "
        "it matches nobody"]


# --- command ---------------------------------------------------------------------------------------


def test_cmd_validate_exit_status_and_output(tmp_path, settings, capsys):
    good = write(tmp_path, "good_one", "gender: [F]")
    assert cmd_validate([good], settings) == 0
    assert capsys.readouterr().out == "1 segment definition(s) checked: 0 error(s), 0 warning(s)\n"

    bad = write(tmp_path, "bad_one", "gender: [F]", min_audience=10)
    assert cmd_validate([tmp_path], settings) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines() == [
        f"{bad}:6: error: min_audience 10 is below the global floor of 50 (segments.min_audience_floor)",
        "2 segment definition(s) checked: 1 error(s), 0 warning(s)",
    ]
    assert captured.err == "audience segments validate: 1 error(s) in 1 file(s)\n"


def test_cmd_validate_defaults_to_the_project_segments(settings, capsys):
    assert cmd_validate([], settings) == 0
    assert capsys.readouterr().out.startswith(f"{len(discover([SEGMENTS]))} segment definition(s) checked: 0 error(s)")


def test_cmd_validate_missing_path(tmp_path, settings, capsys):
    assert cmd_validate([tmp_path / "nope"], settings) == 1
    assert "not found" in capsys.readouterr().err
