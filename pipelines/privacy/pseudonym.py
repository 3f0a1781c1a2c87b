"""Pseudonyms for partners: keyed, deterministic HMAC-SHA256, computed by Spark built-ins (no UDF).

``pseudo_id = lower-hex HMAC-SHA256(K_recipient_key, "customer:" + customer_id)`` (RFC 2104), full 256 bits
(64 hex characters). The same customer gets the same pseudonym in every run under one key; a different
recipient or a rotated key gives an unrelated one, so pseudonyms never link across recipients or keys (A2).

Why HMAC-SHA256 rather than AES-SIV:

* The recipient must not be able to identify anyone directly; nobody needs to *decrypt* a pseudonym. The
  pipeline keeps its own record of who received which pseudonym (``ops/adsdata_ledger``), so a one-way keyed
  PRF is enough and stronger by design: even the key holder cannot invert it, only recompute it.
* Spark has SHA-256 (``sha2``), ``concat`` on binary and ``unhex``, so HMAC is a plain Column expression that
  runs in the JVM on any cluster. Spark's ``aes_encrypt`` offers ECB/CBC/GCM, not SIV: deterministic AES would
  mean ECB (leaks equal blocks) or GCM with a fixed IV (breaks GCM); real AES-SIV would need a Python UDF and a
  new dependency on the hot path.
* Full 256 bits, not truncated: no collision analysis needed, and it is the usual format partners accept.

Why the key is passed as *data* (a one-row broadcast table) and not as a binary literal: a literal is printed
in every plan (``explain``, Spark UI, event logs, some error messages), and ``K xor ipad`` gives ``K`` back
by one more xor. As a column of a tiny in-memory table, the padded key never appears in any plan string.

The ``"customer:"`` prefix separates domains: the same key could never give the same value for a customer
id and, say, a device id that happen to be equal strings.

Example::

    >>> pads = hmac_pads(keyring.active("adsdata"))
    >>> pseudonymise(customers.select("customer_id"), pads).columns
    ['customer_id', 'pseudo_id', 'key_id']
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BinaryType, StructField, StructType

from pipelines.privacy.keys import Key

#: SHA-256 block size in bytes (RFC 2104 ``B``).
BLOCK_SIZE = 64
_IPAD, _OPAD = 0x36, 0x5C
#: Length of a pseudonym: full lower-case hex of HMAC-SHA256.
PSEUDONYM_HEX_CHARS = 64
#: Domain-separation prefix of the pseudonymised message.
CUSTOMER_NAMESPACE = "customer"

# Internal column names of the key table; dropped before a DataFrame leaves this module.
_INNER, _OUTER = "_hmac_inner_pad", "_hmac_outer_pad"
_PAD_SCHEMA = StructType([StructField(_INNER, BinaryType(), False), StructField(_OUTER, BinaryType(), False)])


@dataclass(frozen=True)
class HmacPads:
    """The key of one recipient prepared for HMAC: ``(K' xor ipad, K' xor opad)`` with ``K'`` the padded key.

    ``repr`` shows the key id only: pads are key material.
    """

    key_id: str
    inner: bytes = field(repr=False)
    outer: bytes = field(repr=False)


def hmac_pads(key: Key) -> HmacPads:
    """RFC 2104 key preparation: keys longer than a block are hashed first, then zero-padded to 64 bytes.

    >>> p = hmac_pads(Key("k1", b"\\x01" * 32))
    >>> len(p.inner), p.inner[0], p.outer[0], p.inner[-1]
    (64, 55, 93, 54)
    """
    secret = key.secret
    if not secret:
        raise ValueError(f"key {key.key_id} is empty")
    if len(secret) > BLOCK_SIZE:
        secret = hashlib.sha256(secret).digest()
    padded = secret.ljust(BLOCK_SIZE, b"\0")
    return HmacPads(key.key_id, bytes(b ^ _IPAD for b in padded), bytes(b ^ _OPAD for b in padded))


def hmac_sha256_hex(message: Column, inner_pad: Column, outer_pad: Column) -> Column:
    """``HMAC-SHA256(K, message)`` as lower-case hex, from built-ins only.

    ``HMAC(K, m) = SHA256((K' xor opad) || SHA256((K' xor ipad) || m))``; ``message`` is binary, or a string
    (hashed as its UTF-8 bytes); the pads are binary columns (see :func:`pseudonymise`). Null in, null out.
    """
    inner_digest = F.unhex(F.sha2(F.concat(inner_pad, message.cast(BinaryType())), 256))
    return F.sha2(F.concat(outer_pad, inner_digest), 256)


def customer_message(customer_id: Column, namespace: str = CUSTOMER_NAMESPACE) -> Column:
    """The pseudonymised message: ``"<namespace>:<customer_id>"`` as UTF-8 (null for a null id)."""
    return F.concat(F.lit(f"{namespace}:"), customer_id.cast("string"))


def _pad_table(spark: SparkSession, pads: HmacPads) -> DataFrame:
    # Key material travels as data (never a literal in a plan): see the module docstring.
    return spark.createDataFrame([(bytearray(pads.inner), bytearray(pads.outer))], _PAD_SCHEMA)


def keyed_hash(df: DataFrame, pads: HmacPads, message: Column, out: str = "pseudo_id") -> DataFrame:
    """``df`` plus ``out`` = ``HMAC-SHA256(key, message)`` (lower-case hex) and ``key_id``; nothing else is added.

    The key joins as a one-row broadcast table (never a literal): no plan string ever holds it.
    """
    keyed = df.crossJoin(F.broadcast(_pad_table(df.sparkSession, pads)))
    digest = hmac_sha256_hex(message, F.col(_INNER), F.col(_OUTER))
    return keyed.select(*[F.col(c) for c in df.columns], digest.alias(out), F.lit(pads.key_id).alias("key_id"))


def pseudonymise(
    df: DataFrame,
    pads: HmacPads,
    id_column: str = "customer_id",
    out: str = "pseudo_id",
    namespace: str = CUSTOMER_NAMESPACE,
) -> DataFrame:
    """``df`` plus ``out`` (HMAC-SHA256 hex of ``"<namespace>:<id>"``) and ``key_id``; nothing else is added.

    Call it on one row per customer (not per event): the cost is two SHA-256 per row. This is the function the
    benchmark times on its own.
    """
    return keyed_hash(df, pads, customer_message(F.col(id_column), namespace), out)
