"""``audience forget`` and ``audience access``: thin commands over :mod:`~pipelines.rights.erasure` and
:mod:`~pipelines.rights.access`, wired into the ``audience`` parser by :mod:`pipelines.cli`.

Both read the key file named by ``AUDIENCE_KEYS`` first (and refuse to start without it), then take the warehouse
lock: erasure vacuums files that a concurrent run could be reading, and access must not read half-erased data.
Neither prints an identifier: the lock file, the console and the logs name the command only.
"""
from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

from pipelines.cli import UsageError
from pipelines.config import Settings


class RightsUsageError(UsageError):
    """A problem the operator can fix (printed as one line by ``audience``, exit status 2)."""


def _prepare(warehouse: Path, customer_id: str):
    from pipelines import io
    from pipelines.privacy.keys import keys_from_env

    keys = keys_from_env()  # before anything else: no key file, no start
    if not customer_id or not customer_id.strip():
        raise RightsUsageError("--customer-id must not be empty")
    wh = io.Warehouse(Path(warehouse))
    if not wh.root.is_dir():
        raise RightsUsageError(f"warehouse not found: {wh.root}")
    return keys, wh


def cmd_forget(warehouse: Path, customer_id: str, settings: Settings) -> int:
    """Erase one data subject from every table and every old table version; prints a one-line summary."""
    from pipelines.rights.erasure import forget
    from pipelines.spark import build_session

    keys, wh = _prepare(warehouse, customer_id)
    spark = build_session(settings.spark)
    with wh.lock("forget"):  # the lock file records the command, never the customer id
        report = forget(spark, settings, wh, [customer_id], keys, datetime.now(timezone.utc))
    print(f"audience forget: {report.summary()}")
    if report.unmapped_tables:
        print("audience forget: add the tables above to pipelines/rights/erasure.py ERASURE_MAP", file=sys.stderr)
    return 0


def cmd_access(warehouse: Path, customer_id: str, out: Path, settings: Settings) -> int:
    """Write everything held on one data subject to ``out`` as JSON (GDPR art. 15)."""
    from pipelines.rights.access import access_report, write_access_report
    from pipelines.spark import build_session

    keys, wh = _prepare(warehouse, customer_id)
    spark = build_session(settings.spark)
    with wh.lock("access"):
        doc = access_report(spark, settings, wh, customer_id, keys, now=datetime.now(timezone.utc))
    path = write_access_report(doc, Path(out))
    print(f"audience access: status {doc['status']}; document written to {path} (mode 600)")
    return 0


__all__ = ["RightsUsageError", "cmd_forget", "cmd_access"]
