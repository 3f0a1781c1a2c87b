"""The erasure's identifier search in text, before and after :class:`pipelines.rights.erasure.Needles`, side by side.

A daily erasure redacts every request id with every identifier of the batch and checks every transaction-log
file of every table for every identifier. At a million customers a day's batch holds about ten thousand people
and seventy thousand identifiers; the 1M benchmark run stopped in the redaction for that reason. This times, in
one process (no Spark), with synthetic identifiers shaped like the generator's (customer ids, cookie ids,
e-mails):

- redaction of request ids: one ``re.sub`` per identifier (before; on a small sample of ids, it is that slow)
  and :meth:`Needles.redact` (after), seconds per request id;
- the transaction-log check of every table of a warehouse: one substring search per identifier (before) and
  :meth:`Needles.occur_in` (after, whole identifiers only); the synthetic identifiers occur in neither way, so
  both find nothing and the times compare the same work.

    .venv/bin/python -m benchmarks.erasure_needles WAREHOUSE --identifiers 6500 65000

Counts and timings only: the synthetic identifiers are not printed.
"""
from __future__ import annotations

import argparse
import random
import re
import string
import time
from pathlib import Path

from pipelines.rights.erasure import REDACTED, Needles, log_mentions, log_texts


def synthetic_identifiers(n: int, seed: int = 1) -> list[str]:
    rnd = random.Random(seed)
    customers = {f"c{rnd.randrange(10**8):08d}" for _ in range(n // 7)}
    cookies = {"ck-" + "".join(rnd.choices("0123456789abcdef", k=16)) for _ in range(n * 5 // 7)}
    emails = {"".join(rnd.choices(string.ascii_lowercase, k=8)) + "@example.be" for _ in range(n // 7)}
    return sorted(customers | cookies | emails)


def redact_before(text: str, needles: list[str]) -> str:
    """The implementation replaced (commit de09e44): one case-insensitive ``re.sub`` per identifier."""
    for needle in sorted(needles, key=len, reverse=True):
        text = re.sub(re.escape(needle), REDACTED, text, flags=re.IGNORECASE)
    return text


def log_mentions_before(path: Path, needles: list[str]) -> list[str]:
    """The check replaced (commit de09e44): one substring search per identifier and log file."""
    found = []
    for name, text in log_texts(path):
        text = text.lower()
        if any(n in text for n in needles):
            found.append(name)
    return found


def measure(warehouse: Path, n: int, sample_before: int, texts: int) -> dict:
    ids = synthetic_identifiers(n)
    needles = Needles(ids)
    requests = [f"ERQ-20261113-{ids[i % len(ids)].upper()}" for i in range(texts)]
    t = time.perf_counter()
    after = [needles.redact(r) for r in requests]
    redact_after = (time.perf_counter() - t) / texts
    t = time.perf_counter()
    before = [redact_before(r, ids) for r in requests[:sample_before]]
    redact_before_s = (time.perf_counter() - t) / sample_before
    assert before == after[:sample_before], "the two redactions differ"
    tables = sorted({p.parent for p in warehouse.rglob("_delta_log")})
    t = time.perf_counter()
    old = [log_mentions_before(p, ids) for p in tables]
    log_before = time.perf_counter() - t
    t = time.perf_counter()
    new = [log_mentions(p, needles) for p in tables]
    log_after = time.perf_counter() - t
    assert old == new, "the two log checks differ"
    return {"identifiers": len(ids), "request_id_s_before": redact_before_s, "request_id_s_after": redact_after,
            "tables": len(tables), "log_check_s_before": log_before, "log_check_s_after": log_after}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--identifiers", type=int, nargs="+", default=[6500, 65000])
    ap.add_argument("--sample-before", type=int, default=20, help="request ids redacted the old way (slow)")
    ap.add_argument("--texts", type=int, default=10000, help="request ids redacted the new way")
    args = ap.parse_args(argv)
    print("| identifiers | request id s, before | after | ratio | log check of all tables s, before | after | ratio |")
    print("|---|---|---|---|---|---|---|")
    for n in args.identifiers:
        r = measure(args.warehouse, n, args.sample_before, args.texts)
        print(f"| {r['identifiers']:,} | {r['request_id_s_before']:.5f} | {r['request_id_s_after']:.7f} | "
              f"{r['request_id_s_before'] / r['request_id_s_after']:,.0f} | {r['log_check_s_before']:.2f} "
              f"({r['tables']} tables) | {r['log_check_s_after']:.2f} | "
              f"{r['log_check_s_before'] / r['log_check_s_after']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
