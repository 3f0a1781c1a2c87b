"""Pseudonyms (A2): HMAC-SHA256 in Spark equals Python's ``hmac``; keyed per recipient and key; keys never leak.

RFC 4231 vectors pin the construction itself; hypothesis compares arbitrary ids and keys with ``hmac.new``.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io as _io
import json
import os
import stat
import traceback
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st
from pyspark.sql import functions as F

from pipelines.privacy.keys import Key, KeyError_, load_keys, new_key_file, rotate
from pipelines.privacy.pseudonym import (
    BLOCK_SIZE,
    PSEUDONYM_HEX_CHARS,
    hmac_pads,
    keyed_hash,
    pseudonymise,
)

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def python_pseudonym(secret: bytes, customer_id: str) -> str:
    """The reference: RFC 2104 HMAC-SHA256 of ``"customer:<id>"`` from the standard library."""
    return hmac.new(secret, f"customer:{customer_id}".encode(), hashlib.sha256).hexdigest()


def spark_pseudonyms(spark, keys: list[Key], ids: list[str]) -> dict[str, dict[str, str]]:
    """``{key_id: {customer_id: pseudo_id}}`` for every key, in one Spark job (one union, one collect)."""
    df = spark.createDataFrame([(i,) for i in ids], "customer_id string")
    parts = [pseudonymise(df, hmac_pads(k)) for k in keys]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    out: dict[str, dict[str, str]] = {k.key_id: {} for k in keys}
    for r in union.collect():
        out[r.key_id][r.customer_id] = r.pseudo_id
    return out


# ------------------------------------------------------------------------------------------- construction


#: RFC 4231 test cases 1 (short key), 2 (key shorter than the digest), 6 (key longer than a block: hashed first).
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First",
     "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
]


def test_spark_hmac_matches_rfc4231_vectors(spark):
    parts = []
    for n, (key, message, _) in enumerate(RFC4231):
        df = spark.createDataFrame([(n, bytearray(message))], "case int, m binary")
        mac = keyed_hash(df, hmac_pads(Key(f"k{n}", key)), F.col("m"), out="mac")
        parts.append(mac.select("case", "mac", "key_id"))
    rows = parts[0].unionByName(parts[1]).unionByName(parts[2]).collect()
    assert sorted((r.case, r.mac, r.key_id) for r in rows) == [
        (n, expected, f"k{n}") for n, (_, _, expected) in enumerate(RFC4231)]


def test_pads_follow_rfc2104():
    pads = hmac_pads(Key("k", b"\x01" * 32))
    assert pads.inner == bytes([0x01 ^ 0x36] * 32 + [0x36] * 32)
    assert pads.outer == bytes([0x01 ^ 0x5C] * 32 + [0x5C] * 32)
    long_key = bytes(range(100))
    hashed = hashlib.sha256(long_key).digest().ljust(BLOCK_SIZE, b"\0")
    assert hmac_pads(Key("k", long_key)).inner == bytes(b ^ 0x36 for b in hashed)
    with pytest.raises(ValueError, match="k-empty"):
        hmac_pads(Key("k-empty", b""))


@hsettings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(secrets=st.lists(st.binary(min_size=16, max_size=100), min_size=1, max_size=3, unique=True),
       ids=st.lists(st.text(max_size=80), min_size=1, max_size=25, unique=True))
def test_spark_pseudonym_equals_python_hmac(spark, secrets, ids):
    keys = [Key(f"k{n}", secret) for n, secret in enumerate(secrets)]
    got = spark_pseudonyms(spark, keys, ids)
    assert got == {k.key_id: {i: python_pseudonym(k.secret, i) for i in ids} for k in keys}


def test_pseudonymise_adds_only_pseudonym_and_key_id_null_stays_null(spark, keyring):
    df = spark.createDataFrame([(None, "x"), ("C1", "y")], "customer_id string, other string")
    out = pseudonymise(df, hmac_pads(keyring.active("adsdata")))
    assert out.columns == ["customer_id", "other", "pseudo_id", "key_id"]
    rows = {r.customer_id: r for r in out.collect()}
    assert rows[None].pseudo_id is None
    assert rows["C1"].pseudo_id == python_pseudonym(keyring.active("adsdata").secret, "C1")
    assert len(rows["C1"].pseudo_id) == PSEUDONYM_HEX_CHARS
    assert {r.key_id for r in rows.values()} == {keyring.active("adsdata").key_id}


# ------------------------------------------------------------------------------------------- linkability


def test_same_across_runs_different_across_recipients_and_keys(spark, tmp_path):
    path = tmp_path / "keys.json"
    new_key_file(path, ("adsdata", "other_partner"), now=NOW)
    ring = load_keys(path)
    rotate(path, "adsdata", now=NOW)
    rotated_ring = load_keys(path)
    ids = ["C000001", "C000002", "C000003"]
    old, new = ring.active("adsdata"), rotated_ring.active("adsdata")
    # A later run re-reads the file: the retired key is still the same key, so is its pseudonym.
    retired = next(k for k in rotated_ring.all_keys("adsdata") if k.key_id == old.key_id)
    got = spark_pseudonyms(spark, [old, ring.active("other_partner"), new], ids)
    again = spark_pseudonyms(spark, [retired], ids)

    assert again[old.key_id] == got[old.key_id]
    assert len(set(got[old.key_id].values())) == 3
    assert set(got[old.key_id].values()).isdisjoint(got[ring.active("other_partner").key_id].values())
    assert set(got[old.key_id].values()).isdisjoint(got[new.key_id].values())
    assert new.key_id != old.key_id
    assert rotated_ring.active("other_partner") == ring.active("other_partner")


@hsettings(max_examples=30, deadline=None)
@given(secret=st.binary(min_size=16, max_size=64), customer_id=st.text(max_size=40))
def test_pseudonym_is_no_unkeyed_hash_of_the_id(secret, customer_id):
    pseudo = python_pseudonym(secret, customer_id)  # equal to Spark's (property above)
    raw = customer_id.encode()
    unkeyed = set()
    for algo in ("sha256", "sha1", "md5"):
        for data in (raw, f"customer:{customer_id}".encode()):
            digest = hashlib.new(algo, data).digest()
            unkeyed |= {digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode()}
    assert pseudo not in unkeyed


# ------------------------------------------------------------------------------------------- key material


def _plan_text(df) -> str:
    buf = _io.StringIO()
    with contextlib.redirect_stdout(buf):
        df.explain(extended=True)
    return buf.getvalue() + df._jdf.queryExecution().toString()


def test_no_key_material_in_plans_or_reprs(spark, keyring):
    key = keyring.active("adsdata")
    pads = hmac_pads(key)
    df = pseudonymise(spark.createDataFrame([("C1",)], "customer_id string"), pads)
    text = (_plan_text(df) + repr(pads) + repr(key) + repr(keyring) + str(pads) + str(key)).lower()
    for material in (key.secret, pads.inner, pads.outer):
        assert material.hex() not in text
    assert key.key_id in repr(pads)


def _malformed_files(secret_hex: str) -> dict[str, str]:
    good = {"active": "adsdata-k1", "keys": {"adsdata-k1": {"secret": secret_hex, "created": "x"}}}
    internal = {"active": "internal-k1", "keys": {"internal-k1": {"secret": "ab" * 32, "created": "x"}}}

    def doc(adsdata: dict, **extra) -> str:
        return json.dumps({"format": 1, "recipients": {"internal": internal, "adsdata": adsdata}, **extra})

    return {
        "truncated json": doc(good)[:-40],
        "not hex": doc({**good, "keys": {"adsdata-k1": {"secret": secret_hex + "zz"}}}),
        "active missing": doc({**good, "active": "adsdata-k2"}),
        "short key": doc({"active": "adsdata-k1", "keys": {"adsdata-k1": {"secret": secret_hex[:16]}}}),
        "shared secret": doc({"active": "adsdata-k1", "keys": {"adsdata-k1": {"secret": "ab" * 32}}}),
        "secret as active": doc({**good, "active": secret_hex}),
        "wrong format": json.dumps({"format": 2, "secret": secret_hex}),
        "not utf-8": doc(good).replace("format", "form\udcffat").encode("utf-8", "surrogateescape").decode("latin-1"),
    }


@pytest.mark.parametrize("case", list(_malformed_files("00")))
def test_key_file_errors_never_carry_key_material(tmp_path, case):
    secret_hex = "5e" * 8 + "c7" * 24  # 32 bytes, easy to spot
    path = tmp_path / "keys.json"
    path.write_text(_malformed_files(secret_hex)[case], encoding="latin-1")
    with pytest.raises(KeyError_) as info:
        load_keys(path)
    exc = info.value
    chain, seen = [], exc
    while seen is not None:  # everything an error reporter could reach, suppressed context included
        chain += [str(seen), repr(seen), repr(getattr(seen, "doc", "")), repr(getattr(seen, "object", ""))]
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(chain + traceback.format_exception(exc)).lower()
    for fragment in (secret_hex, secret_hex[:16], "ab" * 32):
        assert fragment not in text, case
    assert str(path) in str(exc)


def test_key_files_are_private_and_written_atomically(tmp_path):
    path = tmp_path / "keys.json"
    ids = new_key_file(path, ("adsdata",), now=NOW)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    before = load_keys(path)
    new_id = rotate(path, "adsdata", now=NOW)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]  # no temp file left behind
    after = load_keys(path)
    assert after.active("adsdata").key_id == new_id != ids["adsdata"]
    assert after.active("adsdata").secret != before.active("adsdata").secret
    assert [k.key_id for k in after.all_keys("adsdata")] == [new_id, ids["adsdata"]]


def test_unknown_recipient_error_names_recipient_only(keyring):
    with pytest.raises(KeyError_, match="'nobody'") as info:
        keyring.active("nobody")
    assert keyring.active("adsdata").secret.hex() not in str(info.value)


def test_shared_secret_across_recipients_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    new_key_file(path, ("adsdata", "other_partner"), now=NOW)
    doc = json.loads(path.read_text())
    a = doc["recipients"]["adsdata"]
    b = doc["recipients"]["other_partner"]
    b["keys"][b["active"]]["secret"] = a["keys"][a["active"]]["secret"]
    path.write_text(json.dumps(doc))
    with pytest.raises(KeyError_, match="share the same secret"):
        load_keys(Path(path))
