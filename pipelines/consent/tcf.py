"""IAB TCF v2 (v2.0 - v2.2) TC string codec for the core segment, and the web-profile check (requirement C4).

A web event counts towards a web profile only when its ``tc_string`` consents to TCF purposes 1, 3 and 4 and
to Proximus' vendor id (``tcf.vendor_id`` in the configuration). This module decodes the *core* segment of a
TC string (the text before the first ``.``; the optional disclosed-vendors, allowed-vendors and publisher-TC
segments carry no consent for Proximus as a vendor and are ignored) and turns it into a verdict.

Format: "Transparency and Consent String with Global Vendor & CMP List Formats", section "The Core String",
InteractiveAdvertisingBureau/GDPR-Transparency-and-Consent-Framework,
``TCFv2/IAB Tech Lab - Consent string and vendor list formats v2.md``. Fields are big-endian, bits numbered
left to right, and the bit stream is written as base64url without padding (each character is 6 bits).
TCF v2.2 kept the v2.0 bit layout (only ``UseNonStandardStacks`` was renamed ``UseNonStandardTexts``; the
policy version is 4 for v2.2, 5 for v2.3), so one codec covers all v2 strings.

Why our own codec: the PyPI packages (``iab-tcf`` 0.2.2, last released 2022) decode only, depend on a
``bitarray`` fork and ship a top-level ``tests`` package; the core segment is ~40 fields, small enough to own.

Example:
    >>> from datetime import datetime, timezone
    >>> s = encode(purposes_consent={1, 3, 4}, vendor_consents={4242},
    ...            created=datetime(2024, 5, 1, tzinfo=timezone.utc))
    >>> verdict(s, required_purposes=(1, 3, 4), vendor_id=4242)
    'ok'
    >>> verdict(s, required_purposes=(1, 2, 3), vendor_id=4242)
    'missing_purpose_2'
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pragma: no cover - imports for type hints only
    import pandas as pd
    from pyspark.sql import DataFrame

__all__ = [
    "TCString",
    "TCStringError",
    "decode",
    "encode",
    "verdict",
    "tcf_verdicts",
    "VERDICT_OK",
    "VERDICT_MISSING",
    "VERDICT_INVALID",
    "VERDICT_MISSING_VENDOR",
    "RESTRICTION_NOT_ALLOWED",
    "RESTRICTION_REQUIRE_CONSENT",
    "RESTRICTION_REQUIRE_LI",
]

VERDICT_OK = "ok"
VERDICT_MISSING = "missing"
VERDICT_INVALID = "invalid"
VERDICT_MISSING_VENDOR = "missing_vendor"
_MISSING_PURPOSE = "missing_purpose_{}"
_RESTRICTED_PURPOSE = "restricted_purpose_{}"

#: Publisher restriction types (TCF v2 core segment): the purpose is flatly not allowed for the vendor; it requires
#: consent; it requires legitimate interest (then the vendor may not rely on the user's consent for it).
RESTRICTION_NOT_ALLOWED, RESTRICTION_REQUIRE_CONSENT, RESTRICTION_REQUIRE_LI = 0, 1, 2

_SUPPORTED_VERSION = 2
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_SEXTETS = {ch: format(i, "06b") for i, ch in enumerate(_ALPHABET)}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MAX_ECHO = 40  # error messages never repeat more of the (possibly user-supplied) input than this

# Field widths of the core segment, in spec order.
_VERSION, _TIMESTAMP, _CMP_ID, _CMP_VERSION, _CONSENT_SCREEN = 6, 36, 12, 12, 6
_LETTER, _VENDOR_LIST_VERSION, _POLICY_VERSION = 6, 12, 6
_SPECIAL_FEATURES, _PURPOSES = 12, 24
_VENDOR_ID, _NUM_ENTRIES, _PURPOSE_ID, _RESTRICTION_TYPE = 16, 12, 6, 2

VendorEncoding = Literal["bitfield", "range", "auto"]


class TCStringError(ValueError):
    """A TC string that cannot be decoded: bad characters, unsupported version, truncated or inconsistent."""


@dataclass(frozen=True)
class TCString:
    """The decoded core segment of a TCF v2 TC string. ``publisher_restrictions``: ``(purpose id, restriction type,
    vendor ids)`` per entry, in string order."""

    version: int
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    tcf_policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_optins: frozenset[int]
    purposes_consent: frozenset[int]
    purposes_li_transparency: frozenset[int]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: frozenset[int]
    vendor_legitimate_interests: frozenset[int]
    publisher_restrictions: tuple[tuple[int, int, frozenset[int]], ...] = ()

    def consents_to(self, purposes: Iterable[int], vendor_id: int) -> bool:
        """True when the user consented to every purpose in ``purposes`` and to vendor ``vendor_id``.

        >>> from datetime import datetime, timezone
        >>> tc = decode(encode(purposes_consent={1, 3, 4}, vendor_consents={7},
        ...                    created=datetime(2024, 1, 1, tzinfo=timezone.utc)))
        >>> tc.consents_to((1, 3, 4), 7), tc.consents_to((1, 2), 7), tc.consents_to((1,), 8)
        (True, False, False)
        """
        return set(purposes) <= self.purposes_consent and vendor_id in self.vendor_consents


# --------------------------------------------------------------------------------------------------- decoding


def _excerpt(text: str) -> str:
    """At most ``_MAX_ECHO`` characters of ``text`` for an error message."""
    return repr(text[:_MAX_ECHO] + ("..." if len(text) > _MAX_ECHO else ""))


class _BitReader:
    """Sequential reader over the bits of one base64url segment; raises TCStringError past the end."""

    def __init__(self, segment: str) -> None:
        # Some encoders append '=' padding; it carries no bits. Any other non-alphabet character is an error.
        body = segment.rstrip("=")
        bad = next((ch for ch in body if ch not in _SEXTETS), None)
        if bad is not None:
            raise TCStringError(f"TC string has a character outside base64url ({bad!r}): {_excerpt(segment)}")
        self._bits = "".join(_SEXTETS[ch] for ch in body)
        self._pos = 0

    def take(self, width: int, field: str) -> str:
        end = self._pos + width
        if end > len(self._bits):
            raise TCStringError(
                f"TC string truncated: {field} needs bits {self._pos}..{end - 1} but the core segment has "
                f"{len(self._bits)} bits"
            )
        bits, self._pos = self._bits[self._pos:end], end
        return bits

    def int(self, width: int, field: str) -> int:
        return int(self.take(width, field), 2) if width else 0

    def flag(self, field: str) -> bool:
        return self.take(1, field) == "1"

    def ids(self, width: int, field: str) -> frozenset[int]:
        """A fixed-width bit field where bit i (0-based, left to right) means id i + 1."""
        return frozenset(i + 1 for i, bit in enumerate(self.take(width, field)) if bit == "1")

    def letters(self, field: str) -> str:
        codes = (self.int(_LETTER, field), self.int(_LETTER, field))
        if any(code > 25 for code in codes):
            raise TCStringError(f"TC string has an invalid {field} letter code {codes}")
        return "".join(chr(ord("A") + code) for code in codes)

    def instant(self, field: str) -> datetime:
        return _EPOCH + timedelta(milliseconds=100 * self.int(_TIMESTAMP, field))


def _read_ranges(reader: _BitReader, field: str, max_vendor_id: int | None) -> frozenset[int]:
    """NumEntries (12) then RangeEntry* (IsARange 1, Start 16, [End 16]); ids bounded by ``max_vendor_id``."""
    ids: set[int] = set()
    for _ in range(reader.int(_NUM_ENTRIES, f"{field}.NumEntries")):
        is_range = reader.flag(f"{field}.IsARange")
        start = reader.int(_VENDOR_ID, f"{field}.StartOrOnlyVendorId")
        end = reader.int(_VENDOR_ID, f"{field}.EndVendorId") if is_range else start
        upper = max_vendor_id if max_vendor_id is not None else (1 << _VENDOR_ID) - 1
        if not 1 <= start <= end <= upper:
            raise TCStringError(f"TC string has an invalid {field} range {start}..{end} (max vendor id {upper})")
        ids.update(range(start, end + 1))
    return frozenset(ids)


def _read_vendor_section(reader: _BitReader, field: str) -> frozenset[int]:
    """MaxVendorId (16), IsRangeEncoding (1), then a MaxVendorId-bit field or a range section."""
    max_vendor_id = reader.int(_VENDOR_ID, f"{field}.MaxVendorId")
    if reader.flag(f"{field}.IsRangeEncoding"):
        return _read_ranges(reader, field, max_vendor_id)
    return reader.ids(max_vendor_id, f"{field}.BitField")


def _read_publisher_restrictions(reader: _BitReader) -> tuple[tuple[int, int, frozenset[int]], ...]:
    """NumPubRestrictions (12) then per entry PurposeId (6), RestrictionType (2) and a range section of vendors.

    A string cut inside a restriction is rejected as truncated; restriction type 3 is undefined, hence invalid.
    """
    entries = []
    for _ in range(reader.int(_NUM_ENTRIES, "NumPubRestrictions")):
        purpose = reader.int(_PURPOSE_ID, "PubRestriction.PurposeId")
        kind = reader.int(_RESTRICTION_TYPE, "PubRestriction.RestrictionType")
        if kind > RESTRICTION_REQUIRE_LI:
            raise TCStringError(f"TC string has an undefined publisher restriction type {kind}")
        entries.append((purpose, kind, _read_ranges(reader, "PubRestriction", None)))
    return tuple(entries)


def decode(tc_string: str) -> TCString:
    """Decode the core segment (the text before the first ``.``) of a TCF v2 TC string.

    Raises ``TCStringError`` (a ``ValueError``) for anything that is not a complete version-2 core segment;
    the message quotes at most 40 characters of the input.

    >>> tc = decode("COtybn4PA_zT4KjACBENAPCIAEBAAECAAIAAAAAAAAAA")  # iabtcf-java TCStringV2Test
    >>> tc.cmp_id, tc.consent_language, sorted(tc.purposes_consent)
    (675, 'EN', [2, 10])
    """
    if not isinstance(tc_string, str):
        raise TCStringError(f"TC string must be a str, got {type(tc_string).__name__}")
    core = tc_string.split(".", 1)[0]
    if not core:
        raise TCStringError("TC string is empty")
    reader = _BitReader(core)
    version = reader.int(_VERSION, "Version")
    if version != _SUPPORTED_VERSION:
        raise TCStringError(f"TC string version {version} is not supported (expected 2): {_excerpt(tc_string)}")
    decoded = TCString(
        version=version,
        created=reader.instant("Created"),
        last_updated=reader.instant("LastUpdated"),
        cmp_id=reader.int(_CMP_ID, "CmpId"),
        cmp_version=reader.int(_CMP_VERSION, "CmpVersion"),
        consent_screen=reader.int(_CONSENT_SCREEN, "ConsentScreen"),
        consent_language=reader.letters("ConsentLanguage"),
        vendor_list_version=reader.int(_VENDOR_LIST_VERSION, "VendorListVersion"),
        tcf_policy_version=reader.int(_POLICY_VERSION, "TcfPolicyVersion"),
        is_service_specific=reader.flag("IsServiceSpecific"),
        use_non_standard_texts=reader.flag("UseNonStandardTexts"),
        special_feature_optins=reader.ids(_SPECIAL_FEATURES, "SpecialFeatureOptIns"),
        purposes_consent=reader.ids(_PURPOSES, "PurposesConsent"),
        purposes_li_transparency=reader.ids(_PURPOSES, "PurposesLITransparency"),
        purpose_one_treatment=reader.flag("PurposeOneTreatment"),
        publisher_cc=reader.letters("PublisherCC"),
        vendor_consents=_read_vendor_section(reader, "VendorConsents"),
        vendor_legitimate_interests=_read_vendor_section(reader, "VendorLegitimateInterests"),
        publisher_restrictions=_read_publisher_restrictions(reader),
    )
    return decoded


# --------------------------------------------------------------------------------------------------- encoding


class _BitWriter:
    def __init__(self) -> None:
        self._chunks: list[str] = []

    def int(self, value: int, width: int, field: str) -> None:
        if not 0 <= value < (1 << width):
            raise ValueError(f"{field}={value} does not fit in {width} bits")
        if width:
            self._chunks.append(format(value, f"0{width}b"))

    def flag(self, value: bool) -> None:
        self._chunks.append("1" if value else "0")

    def ids(self, ids: frozenset[int], width: int) -> None:
        self._chunks.append("".join("1" if i in ids else "0" for i in range(1, width + 1)))

    def letters(self, text: str, field: str) -> None:
        if len(text) != 2 or not text.isascii() or not text.isalpha():
            raise ValueError(f"{field} must be two letters A-Z, got {text!r}")
        for ch in text.upper():
            self.int(ord(ch) - ord("A"), _LETTER, field)

    def instant(self, moment: datetime, field: str) -> None:
        if moment.tzinfo is None:
            raise ValueError(f"{field} must be timezone-aware (TC strings store UTC deciseconds)")
        deciseconds = round((moment - _EPOCH) / timedelta(milliseconds=100))
        self.int(deciseconds, _TIMESTAMP, field)

    def base64url(self) -> str:
        bits = "".join(self._chunks)
        bits += "0" * (-len(bits) % 6)  # pad to whole base64 characters; no '=' padding
        return "".join(_ALPHABET[int(bits[i:i + 6], 2)] for i in range(0, len(bits), 6))


def _id_set(values: Iterable[int], field: str, upper: int) -> frozenset[int]:
    ids = frozenset(values)
    out_of_range = sorted(i for i in ids if not 1 <= i <= upper)
    if out_of_range:
        raise ValueError(f"{field} ids must be within 1..{upper}, got {out_of_range[:5]}")
    return ids


def _runs(ids: frozenset[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive ids, e.g. {1, 2, 3, 7} -> [(1, 3), (7, 7)]."""
    runs: list[tuple[int, int]] = []
    for i in sorted(ids):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def _range_bits(runs: list[tuple[int, int]]) -> int:
    return _NUM_ENTRIES + sum(1 + _VENDOR_ID + (_VENDOR_ID if start != end else 0) for start, end in runs)


def _write_vendor_section(writer: _BitWriter, ids: frozenset[int], encoding: VendorEncoding) -> None:
    max_vendor_id = max(ids, default=0)
    runs = _runs(ids)
    if encoding == "auto":
        # The spec asks encoders to pick the smaller of the two; ties go to the bit field.
        encoding = "range" if _range_bits(runs) < max_vendor_id else "bitfield"
    writer.int(max_vendor_id, _VENDOR_ID, "MaxVendorId")
    writer.flag(encoding == "range")
    if encoding == "bitfield":
        writer.ids(ids, max_vendor_id)
        return
    if encoding != "range":
        raise ValueError(f"vendor_encoding must be 'bitfield', 'range' or 'auto', got {encoding!r}")
    _write_ranges(writer, ids, "VendorConsents")


def _write_ranges(writer: _BitWriter, ids: frozenset[int], field: str) -> None:
    """NumEntries (12) then one RangeEntry per run of consecutive ids (the twin of :func:`_read_ranges`)."""
    runs = _runs(ids)
    writer.int(len(runs), _NUM_ENTRIES, f"{field}.NumEntries")
    for start, end in runs:
        writer.flag(start != end)
        writer.int(start, _VENDOR_ID, f"{field}.StartOrOnlyVendorId")
        if start != end:
            writer.int(end, _VENDOR_ID, f"{field}.EndVendorId")


def encode(
    *,
    purposes_consent: Iterable[int],
    vendor_consents: Iterable[int],
    vendor_encoding: VendorEncoding = "auto",
    created: datetime,
    last_updated: datetime | None = None,
    cmp_id: int = 300,
    cmp_version: int = 1,
    consent_screen: int = 1,
    consent_language: str = "NL",
    vendor_list_version: int = 150,
    tcf_policy_version: int = 4,
    purposes_li_transparency: Iterable[int] = (),
    vendor_legitimate_interests: Iterable[int] = (),
    publisher_cc: str = "BE",
    is_service_specific: bool = True,
    publisher_restrictions: Iterable[tuple[int, int, Iterable[int]]] = (),
) -> str:
    """Encode a version-2 core segment (no other segments) as base64url.

    ``publisher_restrictions``: ``(purpose id, restriction type, vendor ids)`` entries, vendors written as ranges.

    ``vendor_encoding`` applies to both vendor sections; ``"auto"`` picks the shorter one as the spec asks.
    Special feature opt-ins are empty, ``UseNonStandardTexts`` and ``PurposeOneTreatment`` are false.
    Datetimes must be timezone-aware; they are stored as UTC deciseconds. ``last_updated`` defaults to
    ``created``. Raises ``ValueError`` for values that do not fit their field.

    >>> from datetime import datetime, timezone
    >>> s = encode(purposes_consent={1}, vendor_consents={2}, created=datetime(2020, 1, 1, tzinfo=timezone.utc))
    >>> sorted(decode(s).vendor_consents), decode(s).publisher_cc
    ([2], 'BE')
    """
    writer = _BitWriter()
    writer.int(_SUPPORTED_VERSION, _VERSION, "Version")
    writer.instant(created, "created")
    writer.instant(created if last_updated is None else last_updated, "last_updated")
    writer.int(cmp_id, _CMP_ID, "cmp_id")
    writer.int(cmp_version, _CMP_VERSION, "cmp_version")
    writer.int(consent_screen, _CONSENT_SCREEN, "consent_screen")
    writer.letters(consent_language, "consent_language")
    writer.int(vendor_list_version, _VENDOR_LIST_VERSION, "vendor_list_version")
    writer.int(tcf_policy_version, _POLICY_VERSION, "tcf_policy_version")
    writer.flag(is_service_specific)
    writer.flag(False)  # UseNonStandardTexts
    writer.ids(frozenset(), _SPECIAL_FEATURES)
    writer.ids(_id_set(purposes_consent, "purposes_consent", _PURPOSES), _PURPOSES)
    writer.ids(_id_set(purposes_li_transparency, "purposes_li_transparency", _PURPOSES), _PURPOSES)
    writer.flag(False)  # PurposeOneTreatment
    writer.letters(publisher_cc, "publisher_cc")
    max_id = (1 << _VENDOR_ID) - 1
    _write_vendor_section(writer, _id_set(vendor_consents, "vendor_consents", max_id), vendor_encoding)
    _write_vendor_section(
        writer, _id_set(vendor_legitimate_interests, "vendor_legitimate_interests", max_id), vendor_encoding
    )
    restrictions = list(publisher_restrictions)
    writer.int(len(restrictions), _NUM_ENTRIES, "NumPubRestrictions")
    for purpose, kind, vendors in restrictions:
        writer.int(purpose, _PURPOSE_ID, "PubRestriction.PurposeId")
        writer.int(kind, _RESTRICTION_TYPE, "PubRestriction.RestrictionType")
        _write_ranges(writer, _id_set(vendors, "PubRestriction vendors", max_id), "PubRestriction")
    return writer.base64url()


# ---------------------------------------------------------------------------------------------- the C4 check


def verdict(tc_string: str | None, *, required_purposes: Iterable[int], vendor_id: int) -> str:
    """Why a TC string does or does not pass the web-profile check (requirement C4).

    Returns ``"ok"``; ``"missing"`` for None or an empty/blank string (the site sent no TC string);
    ``"invalid"`` when it does not decode; ``"missing_purpose_<n>"`` for the lowest required purpose without
    consent; else ``"missing_vendor"`` when ``vendor_id`` has no consent; else ``"restricted_purpose_<n>"`` for the
    lowest required purpose the publisher restricts for ``vendor_id`` (not allowed, or legitimate interest
    required: either way the vendor may not rely on the consent for it). Purpose 1 is required as a consent bit
    even when ``PurposeOneTreatment`` is set: C4 asks for consent, not for a jurisdiction exception.

    >>> verdict(None, required_purposes=(1, 3, 4), vendor_id=4242), verdict("x", required_purposes=(1,), vendor_id=1)
    ('missing', 'invalid')
    """
    if tc_string is None or (isinstance(tc_string, str) and not tc_string.strip()):
        return VERDICT_MISSING
    try:
        decoded = decode(tc_string)
    except TCStringError:
        return VERDICT_INVALID
    required = set(required_purposes)  # once: an iterator would be empty by the restriction check
    missing = sorted(required - decoded.purposes_consent)
    if missing:
        return _MISSING_PURPOSE.format(missing[0])
    if vendor_id not in decoded.vendor_consents:
        return VERDICT_MISSING_VENDOR
    restricted = sorted(p for p, kind, vendors in decoded.publisher_restrictions
                        if p in required and vendor_id in vendors
                        and kind in (RESTRICTION_NOT_ALLOWED, RESTRICTION_REQUIRE_LI))
    if restricted:
        return _RESTRICTED_PURPOSE.format(restricted[0])
    return VERDICT_OK


def tcf_verdicts(
    df: DataFrame,
    *,
    column: str = "tc_string",
    required_purposes: Iterable[int] = (1, 3, 4),
    vendor_id: int,
) -> DataFrame:
    """One row per distinct value of ``column``: ``(<column>, tcf_ok boolean, tcf_reason string)``.

    The key column keeps the input name (``tc_string`` by default) so the result joins back on it; a null
    string yields one row with ``tcf_ok = false`` and ``tcf_reason = "missing"`` (join it null-safely, e.g.
    ``eqNullSafe``, or treat unmatched events as missing). ``tcf_reason`` is the ``verdict`` of the string.

    Each distinct string is decoded once, so the cost follows the number of distinct consent strings, not
    the number of events.

    Example (needs a SparkSession ``spark``)::

        verdicts = tcf_verdicts(web_events, vendor_id=cfg.tcf.vendor_id)
        gated = web_events.join(verdicts, on="tc_string", how="left").where("tcf_ok")
    """
    from pyspark.sql.types import BooleanType, StringType, StructField, StructType

    purposes = tuple(sorted(set(required_purposes)))
    schema = StructType(
        [
            StructField(column, StringType(), True),
            StructField("tcf_ok", BooleanType(), False),
            StructField("tcf_reason", StringType(), False),
        ]
    )

    # pandas (Arrow batches via mapInPandas) rather than built-in functions: Spark has no built-in for
    # bit-level parsing of variable-length fields (range entries and bit fields whose length is read from
    # the string itself), and batches avoid a row-wise Python UDF.
    def _decide(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        import pandas as pd

        for batch in batches:
            strings = batch[column]
            reasons = [
                verdict(s if isinstance(s, str) else None, required_purposes=purposes, vendor_id=vendor_id)
                for s in strings
            ]
            yield pd.DataFrame(
                {
                    column: strings,
                    "tcf_ok": [reason == VERDICT_OK for reason in reasons],
                    "tcf_reason": reasons,
                }
            )

    return df.select(df[column].cast("string").alias(column)).distinct().mapInPandas(_decide, schema=schema)

