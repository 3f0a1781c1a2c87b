"""``audience``: the thin command line of the pipeline (contract section 1).

Exit status 0 on success; otherwise non-zero with a one-line reason on stderr. Flags override ``--conf``.
Secrets are never flags: ``run``, ``refine``, ``forget`` and ``access`` read the key file named by
``AUDIENCE_KEYS``.
"""
from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Sequence

from pipelines.config import ConfigError, Settings, load_settings


class UsageError(Exception):
    """A problem the user can fix; printed as one line."""


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from None


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {value}")
    return n


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(getattr(args, "conf", None))


def _spark(settings: Settings):
    from pipelines.spark import build_session

    return build_session(settings.spark)


def _keys():
    from pipelines.privacy.keys import keys_from_env

    return keys_from_env()


# --- commands -------------------------------------------------------------------------------------------

def cmd_generate(args: argparse.Namespace) -> int:
    from pipelines.generate.landing import GenerateOptions, generate_landing

    settings = _settings(args)
    options = GenerateOptions(customers=args.customers, days=args.days,
                              end_date=args.end_date or date.today() - timedelta(days=1), seed=args.seed)
    counts = generate_landing(_spark(settings), Path(args.landing), options, settings)
    for source, n in sorted(counts.items()):
        print(f"{source:22s} {n:>12,d} rows")
    print(f"landing zone written to {Path(args.landing).resolve()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from pipelines.jobs.daily import run_daily

    keys = _keys()
    settings = _settings(args)
    landing = Path(args.landing)
    if not landing.is_dir():
        raise UsageError(f"landing zone not found: {landing}")
    result = run_daily(_spark(settings), settings, landing, Path(args.warehouse), args.as_of, keys,
                       full_refresh=args.full_refresh)
    print(f"run {result.run_id} {result.status} as of {result.as_of}")
    for name in result.outputs:
        print(f"  gold/{name}: {Path(args.warehouse) / 'gold' / name}")
    return 0


def cmd_keys_new(args: argparse.Namespace) -> int:
    from pipelines.privacy.keys import new_key_file

    settings = _settings(args)
    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out} exists; refusing to overwrite keys (use --force to replace them)")
    ids = new_key_file(out, tuple(settings.adsdata.recipients))
    print(f"wrote key file {out} (mode 600) with key ids: " + ", ".join(f"{r}={k}" for r, k in ids.items()))
    print(f"use it with: export AUDIENCE_KEYS={out.resolve()}")
    return 0


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from pipelines.privacy.keys import ENV_VAR, rotate

    path = os.environ.get(ENV_VAR)
    if not path:
        raise UsageError(f"{ENV_VAR} is not set: point it to the key file to rotate")
    kid = rotate(Path(path), args.recipient)
    print(f"recipient {args.recipient}: new active key id {kid}; the next delivery revokes the old pseudonyms")
    return 0


def cmd_segments_validate(args: argparse.Namespace) -> int:
    from pipelines.segments.cli import cmd_validate

    return cmd_validate([Path(p) for p in args.paths], _settings(args))


def cmd_segments_preview(args: argparse.Namespace) -> int:
    from pipelines.segments.cli import cmd_preview

    return cmd_preview(Path(args.warehouse), _settings(args), args.markdown)


def cmd_refine(args: argparse.Namespace) -> int:
    from pipelines.refinement.cli import cmd_refine as refine

    return refine(Path(args.warehouse), Path(args.request), _settings(args))


def cmd_forget(args: argparse.Namespace) -> int:
    from pipelines.rights.cli import cmd_forget as forget

    return forget(Path(args.warehouse), args.customer_id, _settings(args))


def cmd_access(args: argparse.Namespace) -> int:
    from pipelines.rights.cli import cmd_access as access

    return access(Path(args.warehouse), args.customer_id, Path(args.out), _settings(args))


def cmd_demo(args: argparse.Namespace) -> int:
    from pipelines.demo import run_demo

    return run_demo(Path(args.workdir), customers=args.customers, days=args.days, settings=_settings(args))


# --- parser ---------------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="audience", description="Consent-gated advertising audience pipeline")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Callable[[argparse.Namespace], int], help_: str, parent=sub) -> argparse.ArgumentParser:
        sp = parent.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        sp.add_argument("--conf", type=Path, default=None, help="YAML merged over conf/base (and conf/local)")
        return sp

    sp = add("demo", cmd_demo, "generate a landing zone and run the daily pipeline on the embedded default")
    sp.add_argument("--workdir", default="demo-workdir", help="where landing, warehouse and keys go")
    # Small on purpose: a newcomer's first run on a laptop; `audience generate` makes bigger landing zones.
    sp.add_argument("--customers", type=_positive, default=1000)
    sp.add_argument("--days", type=_positive, default=14)

    sp = add("generate", cmd_generate, "write a synthetic landing zone (deterministic for a seed)")
    sp.add_argument("--landing", required=True)
    sp.add_argument("--customers", type=_positive, default=2000)
    sp.add_argument("--days", type=_positive, default=28)
    sp.add_argument("--end-date", type=_date, default=None, help="last day of data (default: yesterday)")
    sp.add_argument("--seed", type=int, default=42)

    sp = add("run", cmd_run, "the scheduled daily run")
    sp.add_argument("--landing", required=True)
    sp.add_argument("--warehouse", required=True)
    sp.add_argument("--as-of", type=_date, required=True, dest="as_of")
    sp.add_argument("--full-refresh", action="store_true", help="recompute derived tables from all silver data")

    sp = add("refine", cmd_refine, "refine one advertiser list (contract section 4); prints thresholded counts only")
    sp.add_argument("--warehouse", required=True)
    sp.add_argument("--request", required=True, help="request JSON naming the uploaded list")

    sp = add("forget", cmd_forget, "erase one data subject from every table, including old table versions")
    sp.add_argument("--warehouse", required=True)
    sp.add_argument("--customer-id", required=True, dest="customer_id")

    sp = add("access", cmd_access, "write everything held on one data subject as JSON (GDPR art. 15)")
    sp.add_argument("--warehouse", required=True)
    sp.add_argument("--customer-id", required=True, dest="customer_id")
    sp.add_argument("--out", required=True)

    segs = sub.add_parser("segments", help="segment definitions").add_subparsers(dest="segments_command", required=True)
    sp = add("validate", cmd_segments_validate, "check segment definitions (default: the project's segments/)", segs)
    sp.add_argument("paths", nargs="*", help="files or folders (default: segments/)")
    sp = add("preview", cmd_segments_preview, "thresholded size of every segment on the last run", segs)
    sp.add_argument("--warehouse", required=True)
    sp.add_argument("--markdown", metavar="BASE_REF", default=None,
                    help="also print a markdown summary of segments changed since BASE_REF (for a PR)")

    keys = sub.add_parser("keys", help="secret keys per recipient").add_subparsers(dest="keys_command", required=True)
    sp = add("new", cmd_keys_new, "write a key file with fresh random keys for every recipient", keys)
    sp.add_argument("--out", required=True)
    sp.add_argument("--force", action="store_true")
    sp = add("rotate", cmd_keys_rotate, "add a fresh active key for a recipient in $AUDIENCE_KEYS", keys)
    sp.add_argument("--recipient", default="adsdata")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, ConfigError) as exc:
        print(f"audience {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # one line, no traceback, no secrets (key errors never carry key material)
        from pipelines.jobs.daily import RunFailed  # noqa: F401  (imported for isinstance clarity below)
        from pipelines.io import WarehouseLocked
        from pipelines.privacy.keys import KeyError_

        if isinstance(exc, (KeyError_, WarehouseLocked)):
            print(f"audience {args.command}: {exc}", file=sys.stderr)
            return 2
        if os.environ.get("AUDIENCE_DEBUG"):
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"audience {args.command}: failed: {type(exc).__name__}: {first[:300]}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
