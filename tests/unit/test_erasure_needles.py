"""Erasure's identifier search in text (request ids, transaction logs): same answers as one search per identifier,
whatever the identifiers and the text; an erased identifier never survives a redaction; the transaction-log check
finds identifiers whole, so another person's longer id does not fail an erasure."""
from __future__ import annotations

import json
import re

from hypothesis import given, settings as hsettings, strategies as st

from pipelines.rights.erasure import REDACTED, Needles, log_mentions, redacted

# Identifier-like strings over a small alphabet, so they often occur in, overlap and nest in each other and in the
# texts; some characters are regex-special or change length when lower-cased ("İ").
ALPHABET = "aAcC01-.@+ ]^\\İ"
needle_lists = st.lists(st.text(ALPHABET, min_size=1, max_size=6), max_size=12)
texts = st.text(ALPHABET + '"{}:,x', max_size=60)


def naive_occur(needles: list[str], text: str) -> bool:
    return any(n.lower() in text.lower() for n in needles)


def naive_whole(needles: list[str], text: str) -> bool:
    """One search per identifier and occurrence: found where no letter or digit touches it on either side."""
    low = text.lower()
    for n in {n.lower() for n in needles if n}:
        at = low.find(n)
        while at >= 0:
            end = at + len(n)
            if not (at and low[at - 1].isalnum()) and not (end < len(low) and low[end].isalnum()):
                return True
            at = low.find(n, at + 1)
    return False


@hsettings(max_examples=400, deadline=None)
@given(needle_lists, texts)
def test_occur_in_answers_as_one_search_per_identifier_for_whole_occurrences(needles, text):
    assert Needles(needles).occur_in(text) == naive_whole(needles, text)


@hsettings(max_examples=400, deadline=None)
@given(needle_lists, texts)
def test_no_identifier_survives_a_redaction_and_text_without_one_is_unchanged(needles, text):
    out = redacted(text, needles)
    found = naive_occur(needles, text)
    assert out == text if not found else out != text
    if found:  # what is left around the markers holds no identifier (the marker itself is not personal data)
        assert not any(naive_occur(needles, part) for part in out.split(REDACTED))
        assert len(out.replace(REDACTED, "")) < len(text)  # something was cut, not only marked


@hsettings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r"C\d{3}", fullmatch=True), min_size=1, max_size=8), st.data())
def test_a_redaction_keeps_every_character_outside_an_identifier(ids, data):
    """Request ids built from customer ids: the id goes, everything else stays exactly."""
    prefix = data.draw(st.from_regex(r"ERQ-\d{8}-", fullmatch=True))
    target = data.draw(st.sampled_from(ids))
    assert redacted(f"{prefix}{target.lower()}/x", ids) == f"{prefix}{REDACTED}/x"


def test_examples():
    assert Needles(["c01", "ck-9"]).redact("ERQ-1-C01/CK-9") == f"ERQ-1-{REDACTED}/{REDACTED}"
    assert Needles(["c01"]).occur_in('{"minValues":{"customer_id":"C01"}}')
    assert Needles(["c01"]).occur_in("ERQ-20261113-C01") and Needles(["c01"]).occur_in("c01@x.be")
    assert not Needles(["c01"]).occur_in("c0 1") and not Needles(["c01"]).occur_in("xc01 c012")
    assert Needles(["c01", "c01-x"]).occur_in("c01-xy")  # the longer one runs into a letter, the shorter does not
    assert not Needles([]).occur_in("anything") and redacted("anything", []) == "anything"
    assert redacted(None, ["c01"]) is None
    # longest first where identifiers nest: the longer one goes whole
    assert redacted("id C0123", ["c01", "c0123"]) == f"id {REDACTED}"
    assert not re.search("c01", redacted("C01C0C01", ["c01"]).lower())


def test_log_mentions_reads_commits_and_checkpoints(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    log = tmp_path / "_delta_log"
    log.mkdir()
    (log / "00000000000000000000.json").write_text(json.dumps({"add": {"stats": '{"minValues":{"id":"C0042"}}'}}))
    pq.write_table(pa.table({"add": [json.dumps({"partitionValues": {"device": "CK-7"}})]}),
                   log / "00000000000000000001.checkpoint.parquet")
    assert log_mentions(tmp_path, ["c0042"]) == ["00000000000000000000.json"]
    assert log_mentions(tmp_path, Needles(["ck-7", "c0042"])) == [
        "00000000000000000000.json", "00000000000000000001.checkpoint.parquet"]
    assert log_mentions(tmp_path, ["c9"]) == [] and log_mentions(tmp_path, []) == []


def test_another_persons_longer_id_in_the_statistics_is_not_the_erased_person(tmp_path):
    """The 1M benchmark's case: an erased person's malformed decoder id is the start of someone else's, whose
    raw line is the min value of bronze's raw column; the check must not call that a trace of the erased person,
    and must still find the erased person's own id wherever it stands whole."""
    log = tmp_path / "_delta_log"
    log.mkdir()
    stats = {"minValues": {"raw": "C00000007,decoder_id,PXD12345678"}, "maxValues": {"raw": "C00000009,cookie_id,ck-1"}}
    (log / "00000000000000000001.json").write_text(json.dumps({"add": {"stats": json.dumps(stats)}}))
    assert log_mentions(tmp_path, ["pxd12", "c0000000"]) == []
    assert log_mentions(tmp_path, ["pxd12", "c00000009"]) == ["00000000000000000001.json"]
    assert log_mentions(tmp_path, ["PXD12345678"]) == ["00000000000000000001.json"]
