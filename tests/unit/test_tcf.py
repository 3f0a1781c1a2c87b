"""Tests for the TCF v2 core-segment codec and the C4 web-profile verdict (pipelines.consent.tcf)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.consent.tcf import TCString, TCStringError, decode, encode, tcf_verdicts, verdict

UTC = timezone.utc
PROXIMUS = 4242
C4_PURPOSES = (1, 3, 4)


def _utc(*args: int, micro: int = 0) -> datetime:
    return datetime(*args, microsecond=micro, tzinfo=UTC)


def _b64_from_bits(bits: str) -> str:
    """Bits -> base64url, padding the last character with zeros (as the reference test helpers do)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    bits += "0" * (-len(bits) % 6)
    return "".join(alphabet[int(bits[i:i + 6], 2)] for i in range(0, len(bits), 6))


# ------------------------------------------------------------------------------- published reference strings


def test_decode_iabtcf_java_bitfield_example_all_header_fields() -> None:
    # InteractiveAdvertisingBureau/iabtcf-java, iabtcf-decoder/src/test/java/com/iabtcf/decoder/TCStringV2Test.java
    # (testCanConstructTCModelFromBase64String)
    tc = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")
    assert tc == TCString(
        version=2,
        created=_utc(2020, 1, 26, 17, 1),
        last_updated=_utc(2021, 2, 2, 17, 1),
        cmp_id=675,
        cmp_version=2,
        consent_screen=1,
        consent_language="EN",
        vendor_list_version=15,
        tcf_policy_version=2,
        is_service_specific=False,
        use_non_standard_texts=False,
        special_feature_optins=frozenset({1}),
        purposes_consent=frozenset({2, 10}),
        purposes_li_transparency=frozenset({2, 9}),
        purpose_one_treatment=True,
        publisher_cc="AA",
        vendor_consents=frozenset(),
        vendor_legitimate_interests=frozenset(),
    )


def test_decode_iabtcf_java_vendor_bitfields() -> None:
    # iabtcf-java TCStringV2Test.java (testConstructConsentsFromBitFields)
    tc = decode("COrEAV4OrXx94ACABBENAHCIAD-AAAAAAACAAxAAAAgAIAwgAgAAAAEAgQAAAAAEAYQAQAAAACAAAABAAA")
    assert tc.purposes_consent == {3, 4, 5, 6, 7, 8, 9}
    assert tc.vendor_consents == {23, 37, 47, 48, 53, 65, 98}
    assert tc.vendor_legitimate_interests == {37, 47, 48, 53, 65, 98, 129}


def test_decode_iabtcf_java_range_encoded_vendors() -> None:
    # iabtcf-java TCStringV2Test.java (testRange, testCanParseRangeEncodedVendorLegitimateInterests);
    # the first string also carries a disclosed-vendors segment, which must be ignored.
    two_ranges = (
        "COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAYFfAV-BVkAGBVYFWAAA.IFoEUQQgAIQwgIwQABAEAAAAOIAACAIAAAAQAIAgEAACEAAAAAgAQ"
        "BAAAAAAAGBAAgAAAAAAAFAAECAAAgAAQARAEQAAAAAJAAIAAgAAAYQEAAAQmAgBC3ZAYzUw"
    )
    assert decode(two_ranges).vendor_consents == {702, 703}
    assert decode("COwBOpCOwBOpCLqAAAENAPCAAAAAAAAAAAAAFfwAQFfgUbABAUaAAA").vendor_consents == {703}
    assert decode("COv__-wOv__-wC2AAAENAPCgAAAAAAAAAAAAA_wAQA_gEBABAEAAAA").vendor_legitimate_interests == {128}


def test_decode_spec_service_specific_example_with_publisher_tc_segment() -> None:
    # InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework,
    # "TCFv2/IAB Tech Lab - Consent string and vendor list formats v2.md" (TC String Format section);
    # field values from peczenyj/GDPR-IAB-TCFv2, t/01-parse.t ("valid tcf v2 consent string using bitfield").
    tc = decode("CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA.argAC0gAAAAAAAAAAAA")
    assert tc.created == _utc(2008, 12, 7, 10, 4, 17, micro=700_000)  # epoch 1228644257.7
    assert tc.last_updated == _utc(2012, 1, 10, 17, 10, 13, micro=400_000)  # epoch 1326215413.4
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen, tc.consent_language) == (21, 7, 2, "EN")
    assert (tc.vendor_list_version, tc.tcf_policy_version, tc.publisher_cc) == (23, 2, "KM")
    assert (tc.is_service_specific, tc.use_non_standard_texts, tc.purpose_one_treatment) == (True, False, False)
    assert tc.special_feature_optins == {2}
    assert tc.purposes_consent == {1, 3, 9, 10}
    assert tc.purposes_li_transparency == {3, 4, 5, 8, 9, 10}
    assert tc.vendor_consents == {
        2, 3, 6, 7, 8, 10, 12, 13, 14, 15, 16, 21, 25, 27, 30, 31, 34, 35, 37, 38, 39, 42, 43, 49, 52, 54, 55, 56,
        57, 59, 60, 63, 64, 65, 66, 67, 68, 69, 73, 74, 76, 78, 83, 86, 87, 89, 90, 92, 96, 99, 100, 106, 109, 110,
        114, 115,
    }
    assert tc.vendor_legitimate_interests == {1, 9, 26, 27, 30, 36, 37, 43, 86, 97, 110, 113}


def test_decode_perl_range_example() -> None:
    # peczenyj/GDPR-IAB-TCFv2, t/01-parse.t ("valid tcf v2 consent string using range"): created 1587946020
    tc = decode("COyfVVoOyfVVoADACHENAwCAAAAAAAAAAAAAE5QBgALgAqgD8AQACSwEygJyAnSAMABgAFkAgQCDASeAmYBOgAA")
    assert tc.created == tc.last_updated == _utc(2020, 4, 27, 0, 7)
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen, tc.vendor_list_version) == (3, 2, 7, 48)
    assert (tc.is_service_specific, tc.publisher_cc, tc.purposes_consent) == (False, "AA", frozenset())
    assert tc.vendor_consents == {23, 42, 126, 127, 128, 587, 613, 626}
    assert tc.vendor_legitimate_interests == {24, 44, 129, 130, 131, 591, 614, 628}


def test_decode_skips_publisher_restrictions_and_rejects_a_cut_inside_them() -> None:
    # peczenyj/GDPR-IAB-TCFv2, t/01-parse.t ("check publisher restriction #2"): 7 restriction entries that
    # occupy bits 267..585 of the core segment. Cutting at 60 characters (360 bits) lands inside them.
    with_restrictions = (
        "COxPe2TOxPe2TALABAENAPCgAAAAAAAAAAAAAFAAAAoAAA4IACACAIABgACAFA4ADACAAIygAGADwAQBIAIAIB0AEAEBSACACAA"
    )
    tc = decode(with_restrictions)
    assert (tc.cmp_id, tc.purpose_one_treatment, tc.vendor_consents) == (11, False, frozenset())
    with pytest.raises(TCStringError, match="PubRestriction"):
        decode(with_restrictions[:60])


def test_publisher_restrictions_round_trip_and_an_undefined_type_is_invalid() -> None:
    entries = ((3, 0, frozenset({7, 8, 9, 4242})), (4, 2, frozenset({4242})), (7, 1, frozenset()))
    s = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, created=_utc(2024, 5, 1, 12),
               publisher_restrictions=entries)
    assert decode(s).publisher_restrictions == entries
    with pytest.raises(TCStringError, match="restriction type 3"):
        decode(encode(purposes_consent={1}, vendor_consents={1}, created=_utc(2024, 5, 1, 12),
                      publisher_restrictions=[(1, 3, {1})]))


def test_decode_iabtcf_java_publisher_restrictions_bit_string() -> None:
    # iabtcf-java TCStringV2Test.java (testPublisherRestrictions): three restrictions with no vendors.
    core = (
        "0000100011101011100" "1000000000000001010" "0000001110101110010" "0000000000000101000"
        "0000110011111000000" "0000000000000000100" "0011010000000011110" "0001000000000000000"
        + "0000000000000000000" * 5
        + "000000000011"  # NumPubRestrictions = 3
        + "000001" "01" "000000000000"
        + "000010" "00" "000000000000"
        + "000011" "10" "000000000000"
    )
    assert decode(_b64_from_bits(core)).publisher_restrictions == (
        (1, 1, frozenset()), (2, 0, frozenset()), (3, 2, frozenset()))
    # Claiming a fourth restriction that is not there is a truncation, not a silent success.
    fourth = core.replace("000000000011" "000001", "000000000100" "000001", 1)
    with pytest.raises(TCStringError, match="truncated"):
        decode(_b64_from_bits(fourth))


def test_decode_tcf_v23_string_with_policy_version_5() -> None:
    # peczenyj/GDPR-IAB-TCFv2, t/05-tcf-v23.t ("TCF v2.3 Legitimate Interest Restrictions"): policy_version 5
    tc = decode(
        "CP188cAQKFpAAAHABBENBSFsAP_gAEPgAAiQKqNX_H__bW9r8X73aft0eY1P9_j77uQxBhfJE-4FzLvW_JwXx2ExNA36tqIKmRIEu3bBIQNlHJH"
        "UTVigaogVryHMak2cpTNKJ6BkiFMRM2dYCF5vm4tj-QKY5_r993dx2D-t_dv83dzyz81Hn3f5_2e0eLCdQ5-tDfv9bROb-9IPd_78v4v8_l_rk2"
        "_eT1n_tevr7D_-ft8__XW_9_fff_9Pn_-uB_-_3_vf_EFUwCTDQqIA-wJCQg0DCKBACoKwgIoFAQAAJA0QEAJgwKdgYALrCRACAFAAMEAIAAQZ"
        "AAgAAAgAQiACQAoEAAEAgUAAYAEAwEABAwAAgAsBAIAAQHQMUwIIFAsIEjMioUwIQoEggJbKhBICgQVwhCLPAIgERMFAAgAAAVgACAsFgcSSAlQk"
        "ECXUG0AABAAgFEIFQgk9MAAwJmy1B4MG0ZWmAYPmCRDTAMgCIIyEAAAA.f_wACHwAAAAA"
    )
    assert tc.tcf_policy_version == 5
    assert 46 in tc.vendor_legitimate_interests and 46 not in tc.vendor_consents  # as the Perl test states


def test_decode_rejects_tcf_v1_string() -> None:
    # Fidzup/Consent-String-SDK-Ruby, test/test_vendor_consent_decoder.rb: a TCF v1.1 consent string (Version=1)
    with pytest.raises(TCStringError, match="version 1 is not supported"):
        decode("BOVeoB_OVeoFxC-AHAFRBtAAAAAhGAEAD4AXAA2YCEQ")


# ------------------------------------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("tc_string", "message"),
    [
        ("", "empty"),
        (".IFoEUQQgAIQ", "empty"),
        ("CO", "truncated"),
        ("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAA", "truncated"),  # reference string minus its last char
        ("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAA+AAA", "outside base64url"),
        ("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAA AAA", "outside base64url"),
    ],
)
def test_decode_rejects_malformed_strings(tc_string: str, message: str) -> None:
    with pytest.raises(TCStringError, match=message):
        decode(tc_string)


def test_decode_rejects_non_string() -> None:
    with pytest.raises(TCStringError, match="must be a str"):
        decode(1234)  # type: ignore[arg-type]


def test_decode_rejects_backwards_or_out_of_bounds_ranges() -> None:
    # A valid header taken from an encoded string: everything up to and including PublisherCC,
    # 6+36+36+12+12+6+12+12+6+1+1+12+24+24+1+12 = 213 bits.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    base = encode(purposes_consent={1}, vendor_consents=(), created=_utc(2024, 1, 1))
    head = "".join(format(alphabet.index(c), "06b") for c in base)[:213]
    empty_section = "0" * 16 + "0"
    backwards = format(10, "016b") + "1" + format(1, "012b") + "1" + format(9, "016b") + format(3, "016b")
    beyond_max = format(10, "016b") + "1" + format(1, "012b") + "0" + format(11, "016b")
    zero_id = format(10, "016b") + "1" + format(1, "012b") + "0" + format(0, "016b")
    for section in (backwards, beyond_max, zero_id):
        with pytest.raises(TCStringError, match="invalid VendorConsents range"):
            decode(_b64_from_bits(head + section + empty_section + "0" * 12))
    ok = format(10, "016b") + "1" + format(1, "012b") + "1" + format(3, "016b") + format(9, "016b")
    assert decode(_b64_from_bits(head + ok + empty_section + "0" * 12)).vendor_consents == set(range(3, 10))


def test_error_messages_echo_at_most_40_characters_of_the_input() -> None:
    secret = "BOVeoB_OVeoFxC-AHAFRBtAAAAAhGAEAD4AXAA2YCEQ" * 3  # version 1, 129 characters
    bad_char = "C" + "A" * 99 + "!" + "Q" * 50
    for text in (secret, bad_char, secret.replace("B", "C", 1)[:30] + "%" + secret):
        with pytest.raises(TCStringError) as error:
            decode(text)
        message = str(error.value)
        assert not any(text[i:i + 41] in message for i in range(len(text) - 40)), message


# ------------------------------------------------------------------------------------------------ round trips

purpose_sets = st.frozensets(st.integers(1, 24))
vendor_sets = st.one_of(
    st.frozensets(st.integers(1, 3000), max_size=80),
    st.frozensets(st.integers(1, 65535), max_size=4),
    st.builds(lambda a, n: frozenset(range(a, a + n)), st.integers(1, 5000), st.integers(1, 400)),
)
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2150, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 100_000 * 100_000))
encodings = st.sampled_from(["bitfield", "range", "auto"])


@settings(max_examples=150, deadline=None)
@given(
    purposes=purpose_sets,
    li_purposes=purpose_sets,
    vendors=vendor_sets,
    li_vendors=vendor_sets,
    encoding=encodings,
    created=instants,
    updated=instants,
    cmp_id=st.integers(0, 4095),
    language=st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2),
    service_specific=st.booleans(),
)
def test_encode_decode_round_trip(
    purposes: frozenset[int],
    li_purposes: frozenset[int],
    vendors: frozenset[int],
    li_vendors: frozenset[int],
    encoding: str,
    created: datetime,
    updated: datetime,
    cmp_id: int,
    language: str,
    service_specific: bool,
) -> None:
    tc_string = encode(
        purposes_consent=purposes,
        vendor_consents=vendors,
        vendor_encoding=encoding,  # type: ignore[arg-type]
        created=created,
        last_updated=updated,
        cmp_id=cmp_id,
        consent_language=language,
        purposes_li_transparency=li_purposes,
        vendor_legitimate_interests=li_vendors,
        is_service_specific=service_specific,
    )
    assert decode(tc_string) == TCString(
        version=2,
        created=created,
        last_updated=updated,
        cmp_id=cmp_id,
        cmp_version=1,
        consent_screen=1,
        consent_language=language,
        vendor_list_version=150,
        tcf_policy_version=4,
        is_service_specific=service_specific,
        use_non_standard_texts=False,
        special_feature_optins=frozenset(),
        purposes_consent=purposes,
        purposes_li_transparency=li_purposes,
        purpose_one_treatment=False,
        publisher_cc="BE",
        vendor_consents=vendors,
        vendor_legitimate_interests=li_vendors,
    )


@settings(max_examples=100, deadline=None)
@given(vendors=vendor_sets, purposes=purpose_sets, created=instants)
def test_range_and_bitfield_encodings_decode_equal_and_auto_is_shortest(
    vendors: frozenset[int], purposes: frozenset[int], created: datetime
) -> None:
    strings = {
        enc: encode(purposes_consent=purposes, vendor_consents=vendors, vendor_encoding=enc, created=created)
        for enc in ("bitfield", "range", "auto")
    }
    decoded = {enc: decode(s) for enc, s in strings.items()}
    assert decoded["bitfield"] == decoded["range"] == decoded["auto"]
    assert decoded["range"].vendor_consents == vendors
    # "auto" picks the smaller encoding per section, so it can beat both single-encoding strings.
    assert len(strings["auto"]) <= min(len(strings["bitfield"]), len(strings["range"]))


@settings(max_examples=100, deadline=None)
@given(vendors=vendor_sets, encoding=encodings, cut=st.floats(0, 1, exclude_max=True))
def test_every_truncation_of_an_encoded_string_is_rejected(vendors: frozenset[int], encoding: str, cut: float) -> None:
    tc_string = encode(
        purposes_consent={1, 3, 4}, vendor_consents=vendors, vendor_encoding=encoding, created=_utc(2024, 3, 1)
    )
    with pytest.raises(TCStringError):
        decode(tc_string[: int(cut * len(tc_string))])


def test_encode_range_and_bitfield_known_layout() -> None:
    # Hand-checked layout: vendors {4242} as one range entry vs. a 4242-bit field.
    created = _utc(2024, 5, 1)
    as_range = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, vendor_encoding="range", created=created)
    as_bits = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, vendor_encoding="bitfield", created=created)
    # 213 header bits + (16+1+12+1+16) + (16+1+12 empty LI range) + 12 = 300 bits = 50 characters
    assert len(as_range) == 50
    # 213 + (16+1+4242) + (16+1) + 12 = 4501 bits -> 751 characters
    assert len(as_bits) == 751
    # auto: range for the consents, an empty bit field (16+1 bits) for the legitimate interests -> 288 bits
    as_auto = encode(purposes_consent={1, 3, 4}, vendor_consents={4242}, created=created)
    assert len(as_auto) == 48
    assert as_auto[:43] == as_range[:43]  # same first 258 bits: header and the consent range entry
    assert as_range.startswith("C")  # version 2 in the first six bits, as in every v2 string


@pytest.mark.parametrize(
    "kwargs",
    [
        {"purposes_consent": {25}},
        {"purposes_consent": {0}},
        {"vendor_consents": {65536}},
        {"cmp_id": 4096},
        {"consent_language": "NLD"},
        {"publisher_cc": "B1"},
        {"created": datetime(2024, 1, 1)},  # naive datetime: ambiguous instant
        {"vendor_encoding": "zip"},
    ],
)
def test_encode_rejects_values_that_do_not_fit(kwargs: dict) -> None:
    arguments = {"purposes_consent": {1}, "vendor_consents": {1, 2, 3, 10}, "created": _utc(2024, 1, 1)} | kwargs
    with pytest.raises(ValueError):
        encode(**arguments)


# ---------------------------------------------------------------------------------------------------- verdict


def _c4_string(purposes: set[int], vendors: set[int], encoding: str = "auto", restrictions=()) -> str:
    return encode(
        purposes_consent=purposes, vendor_consents=vendors, vendor_encoding=encoding, created=_utc(2024, 5, 1, 12),
        publisher_restrictions=restrictions,
    )


@pytest.mark.parametrize(
    ("tc_string", "expected"),
    [
        (_c4_string({1, 3, 4}, {PROXIMUS}), "ok"),
        (_c4_string({1, 2, 3, 4, 7}, {12, PROXIMUS, 5000}, "bitfield"), "ok"),
        (_c4_string({1, 3, 4}, {PROXIMUS}) + ".IFoEUQQgAIQwgIwQ", "ok"),  # extra segments are ignored
        (_c4_string({1, 4}, {PROXIMUS}), "missing_purpose_3"),
        (_c4_string({1, 3}, {PROXIMUS}), "missing_purpose_4"),
        (_c4_string({1}, {PROXIMUS}), "missing_purpose_3"),  # the lowest missing purpose
        (_c4_string({3, 4}, {PROXIMUS}), "missing_purpose_1"),
        (_c4_string({1, 3, 4}, {4241, 4243}), "missing_vendor"),
        (_c4_string({1, 3, 4}, set()), "missing_vendor"),
        (_c4_string({1, 4}, set()), "missing_purpose_3"),  # purposes are reported before the vendor
        # Publisher restrictions (C4: the vendor needs consent to 1, 3 and 4): "not allowed" (0) and "requires
        # legitimate interest" (2) for Proximus take a required purpose away; "requires consent" (1) does not;
        # restrictions for other vendors or other purposes do not matter.
        (_c4_string({1, 3, 4}, {PROXIMUS}, restrictions=[(3, 0, {PROXIMUS - 1, PROXIMUS, PROXIMUS + 1})]),
         "restricted_purpose_3"),
        (_c4_string({1, 3, 4}, {PROXIMUS}, restrictions=[(4, 2, {PROXIMUS}), (1, 2, {PROXIMUS})]),
         "restricted_purpose_1"),
        (_c4_string({1, 3, 4}, {PROXIMUS}, restrictions=[(1, 1, {PROXIMUS}), (3, 1, range(1, 5000))]), "ok"),
        (_c4_string({1, 3, 4}, {PROXIMUS}, restrictions=[(3, 0, {12, 5000}), (2, 0, {PROXIMUS})]), "ok"),
        # peczenyj/GDPR-IAB-TCFv2 t/01-parse.t: purposes {1, 3, 9, 10}, so purpose 4 is the first gap
        ("CLcVDxRMWfGmWAVAHCENAXCkAKDAADnAABRgA5mdfCKZuYJez-NQm0TBMYA4oCAAGQYIAAAAAAEAIAEgAA", "missing_purpose_4"),
        ("BOVeoB_OVeoFxC-AHAFRBtAAAAAhGAEAD4AXAA2YCEQ", "invalid"),  # TCF v1
        ("not a consent string", "invalid"),
        ("C", "invalid"),
        ("", "missing"),
        ("   ", "missing"),
        (None, "missing"),
    ],
)
def test_verdict(tc_string: str | None, expected: str) -> None:
    assert verdict(tc_string, required_purposes=C4_PURPOSES, vendor_id=PROXIMUS) == expected


def test_consents_to_needs_every_purpose_and_the_vendor() -> None:
    tc = decode(_c4_string({1, 3, 4}, {PROXIMUS}))
    assert tc.consents_to(C4_PURPOSES, PROXIMUS) is True
    assert tc.consents_to((1, 3, 4, 5), PROXIMUS) is False
    assert tc.consents_to(C4_PURPOSES, 4243) is False
    assert tc.consents_to((), PROXIMUS) is True


# ------------------------------------------------------------------------------------------------------ Spark


def test_tcf_verdicts_one_row_per_distinct_string(spark) -> None:
    from pyspark.sql.types import BooleanType, StringType, StructField, StructType
    from pyspark.testing import assertDataFrameEqual

    ok = _c4_string({1, 3, 4}, {PROXIMUS})
    no_purpose_3 = _c4_string({1, 4}, {PROXIMUS}, "bitfield")
    no_vendor = _c4_string({1, 3, 4}, {1, 2})
    events = spark.createDataFrame(
        [
            ("e1", ok), ("e2", ok), ("e3", no_purpose_3), ("e4", None), ("e5", None), ("e6", "garbage!"),
            ("e7", ""), ("e8", no_vendor), ("e9", ok), ("e10", "garbage!"),
        ],
        "event_id string, tc_string string",
    )
    result = tcf_verdicts(events, vendor_id=PROXIMUS)
    assert result.schema == StructType(
        [
            StructField("tc_string", StringType(), True),
            StructField("tcf_ok", BooleanType(), False),
            StructField("tcf_reason", StringType(), False),
        ]
    )
    expected = spark.createDataFrame(
        [
            (ok, True, "ok"),
            (no_purpose_3, False, "missing_purpose_3"),
            (no_vendor, False, "missing_vendor"),
            (None, False, "missing"),
            ("garbage!", False, "invalid"),
            ("", False, "missing"),
        ],
        result.schema,
    )
    assertDataFrameEqual(result, expected, checkRowOrder=False)


def test_tcf_verdicts_custom_column_purposes_and_vendor(spark) -> None:
    from pyspark.testing import assertDataFrameEqual

    s = _c4_string({1, 2}, {7})
    events = spark.createDataFrame([(s, 1), (s, 2)], "consent string, n int")
    result = tcf_verdicts(events, column="consent", required_purposes=[2, 1], vendor_id=7)
    assertDataFrameEqual(result, spark.createDataFrame([(s, True, "ok")], result.schema))
    assert result.columns == ["consent", "tcf_ok", "tcf_reason"]
    strict = tcf_verdicts(events, column="consent", vendor_id=7)  # default purposes (1, 3, 4)
    assertDataFrameEqual(strict, spark.createDataFrame([(s, False, "missing_purpose_3")], strict.schema))
