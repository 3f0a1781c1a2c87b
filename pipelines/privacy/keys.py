"""Secret keys: the only module that reads key material. Keys never appear in logs, MLflow or errors.

A key file is JSON, created by ``audience keys new`` and named at run time by the ``AUDIENCE_KEYS``
environment variable::

    {"format": 1,
     "recipients": {"adsdata": {"active": "adsdata-20261126-1a2b", "keys": {"adsdata-20261126-1a2b": {"secret": "<hex>", "created": "..."}}},
                    "internal": {...}}}

``internal`` keys are for the pipeline itself (erasure tombstones); every external recipient has its own keys
so pseudonyms never link across recipients.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Mapping

ENV_VAR = "AUDIENCE_KEYS"
INTERNAL = "internal"


class KeyError_(RuntimeError):
    """The key file is missing or malformed (messages never include key material)."""


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: bytes = b""

    def __repr__(self) -> str:  # never print the secret
        return f"Key(key_id={self.key_id!r}, secret=<{len(self.secret)} bytes>)"


@dataclass(frozen=True)
class RecipientKeys:
    recipient: str
    active: Key
    retired: tuple[Key, ...] = ()


@dataclass(frozen=True)
class KeyRing:
    recipients: Mapping[str, RecipientKeys]

    def active(self, recipient: str) -> Key:
        try:
            return self.recipients[recipient].active
        except KeyError:
            raise KeyError_(f"no key for recipient {recipient!r} in the key file; run `audience keys new`") from None

    def all_keys(self, recipient: str) -> tuple[Key, ...]:
        r = self.recipients.get(recipient)
        return () if r is None else (r.active, *r.retired)

    def __repr__(self) -> str:
        return f"KeyRing(recipients={sorted(self.recipients)})"


def _new_key_id(recipient: str, now: datetime) -> str:
    return f"{recipient}-{now:%Y%m%d}-{secrets.token_hex(3)}"


def new_key_file(path: Path, recipients: tuple[str, ...], now: datetime | None = None) -> dict[str, str]:
    """Write a key file with one fresh 256-bit key per recipient (plus ``internal``); returns the key ids."""
    now = now or datetime.now(timezone.utc)
    doc: dict = {"format": 1, "recipients": {}}
    ids = {}
    for r in (INTERNAL, *recipients):
        kid = _new_key_id(r, now)
        ids[r] = kid
        doc["recipients"][r] = {"active": kid, "keys": {kid: {"secret": secrets.token_hex(32), "created": now.isoformat()}}}
    _write_doc(Path(path), doc)
    return ids


def rotate(path: Path, recipient: str, now: datetime | None = None) -> str:
    """Add a fresh key for ``recipient`` and make it active; the old one stays (retired) for revocations."""
    now = now or datetime.now(timezone.utc)
    doc = _read_doc(path)
    entry = doc["recipients"].setdefault(recipient, {"keys": {}})
    kid = _new_key_id(recipient, now)
    entry["keys"][kid] = {"secret": secrets.token_hex(32), "created": now.isoformat()}
    entry["active"] = kid
    _write_doc(Path(path), doc)
    return kid


def _write_doc(path: Path, doc: dict) -> None:
    """Write the key file atomically (temp file, fsync, rename), mode 600.

    A crash half-way through ``rotate`` must never leave a truncated file: it holds the only copy of every key.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_doc(path: Path) -> dict:
    # Errors are raised outside the ``except`` blocks: a JSONDecodeError / UnicodeDecodeError holds the whole
    # file (secrets included) and would otherwise stay reachable as ``__context__`` of the error we raise.
    doc: object = None
    problem = ""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        problem = "not found"
    except (json.JSONDecodeError, UnicodeDecodeError):
        problem = "not valid JSON"
    if problem == "not found":
        raise KeyError_(f"key file not found: {path}")
    if problem:
        raise KeyError_(f"key file {path} is not valid JSON")
    if not isinstance(doc, dict) or doc.get("format") != 1 or not isinstance(doc.get("recipients"), dict):
        raise KeyError_(f"key file {path} has an unknown format (expected format 1)")
    return doc


def load_keys(path: Path) -> KeyRing:
    """Parse a key file into a :class:`KeyRing`."""
    doc = _read_doc(path)
    out = {}
    owners: dict[bytes, str] = {}
    for recipient, entry in doc["recipients"].items():
        keys: dict[str, Key] = {}
        active: Key | None = None
        try:
            keys = {kid: Key(kid, bytes.fromhex(v["secret"])) for kid, v in entry["keys"].items()}
            active = keys[entry["active"]]
        except (KeyError, ValueError, TypeError, AttributeError):
            active = None  # raised below, outside the handler (see _read_doc)
        if active is None:
            raise KeyError_(f"key file {path}: recipient {recipient!r} is malformed")
        for key in keys.values():
            if len(key.secret) < 16:
                raise KeyError_(f"key file {path}: key {key.key_id} is shorter than 128 bits")
            if key.secret in owners and owners[key.secret] != key.key_id:
                # The same secret under two key ids (two recipients, or copied on rotation) would give the same
                # pseudonyms and link them across recipients or keys (A2).
                raise KeyError_(f"key file {path}: keys {owners[key.secret]} and {key.key_id} share the same secret")
            owners[key.secret] = key.key_id
        out[recipient] = RecipientKeys(recipient, active, tuple(k for kid, k in sorted(keys.items()) if kid != active.key_id))
    if INTERNAL not in out:
        raise KeyError_(f"key file {path} has no internal key; create one with `audience keys new`")
    return KeyRing(out)


def keys_from_env() -> KeyRing:
    """The key ring named by ``AUDIENCE_KEYS``; a clear error when the variable is unset."""
    path = os.environ.get(ENV_VAR)
    if not path:
        raise KeyError_(f"{ENV_VAR} is not set: point it to a key file (create one with `audience keys new --out FILE`)")
    return load_keys(Path(path))
