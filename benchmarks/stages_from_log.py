"""Per-stage seconds of the full runs in a ``benchmarks.run --verbose`` log, side by side, also for a run cut short.

The harness records a daily run's stage times only when the run ends. A full run at 1M customers takes hours; if
it is stopped (the session ends), its stages so far exist only in the log. This reads the log and prints, per
stage, the seconds at the smallest and at the largest customer count and their ratio, and for a run that did not
end a lower bound of ratio (d): the stages it completed take at least that long, whatever follows.

    .venv/bin/python -m benchmarks.stages_from_log LOG

Stages nested in another (the per-table ``quality silver/...`` and ``quality gold/...`` lines, parts of
``quality: inputs`` and ``quality: outputs``) are shown but not added to the totals. Counts and names only: the
progress lines hold no identifier.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

NESTED = ("quality silver/", "quality gold/")
_START = re.compile(r"\[benchmark\] (\d+) customers: full run as of")
_END = re.compile(r"\[benchmark\] (\d+) customers: full run (\w+) in ([\d.]+)s")
_STAGE = re.compile(r"\[audience\] (.+?) done in ([\d.]+)s")
_STARTED = re.compile(r"\[audience\] (.+?) \.\.\.$")


@dataclass
class FullRun:
    customers: int
    stages: dict[str, float] = field(default_factory=dict)
    status: str | None = None          # "succeeded"/"failed" from the harness; None: the log ends inside the run
    seconds: float | None = None       # end to end, when the run ended
    running: str | None = None         # the stage started last and not done (a run cut short)

    @property
    def stage_total(self) -> float:
        return sum(s for name, s in self.stages.items() if not name.startswith(NESTED))


def parse(lines: Iterable[str]) -> list[FullRun]:
    runs: list[FullRun] = []
    current: FullRun | None = None
    for line in lines:
        line = line.rstrip("\n")
        if m := _START.match(line):
            current = FullRun(int(m.group(1)))
            runs.append(current)
        elif (m := _END.match(line)) and current is not None:
            current.status, current.seconds, current.running = m.group(2), float(m.group(3)), None
            current = None
        elif current is not None and (m := _STAGE.match(line)):
            current.stages[m.group(1)] = float(m.group(2))
            if current.running == m.group(1):
                current.running = None
        elif current is not None and (m := _STARTED.match(line)):
            current.running = m.group(1)
    return runs


def _s(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def markdown(runs: list[FullRun]) -> str:
    if len(runs) < 2:
        raise ValueError(f"the log holds {len(runs)} full run(s); two customer counts are needed")
    small, big = min(runs, key=lambda r: r.customers), max(runs, key=lambda r: r.customers)
    names = list(small.stages) + [n for n in big.stages if n not in small.stages]
    out = [f"| stage | {small.customers:,} customers s | {big.customers:,} customers s | ratio |", "|---|---|---|---|"]
    for name in names:
        a, b = small.stages.get(name), big.stages.get(name)
        ratio = f"{b / a:.1f}" if a and b is not None else ""
        label = f"  {name} (nested)" if name.startswith(NESTED) else name
        out.append(f"| {label} | {_s(a)} | {_s(b)} | {ratio} |")
    out.append(f"| **stages, total (nested excluded)** | {_s(small.stage_total)} | {_s(big.stage_total)} | "
               f"{big.stage_total / small.stage_total:.1f} |")
    out.append("")
    for run in (small, big):
        if run.status is not None:
            out.append(f"- {run.customers:,} customers: full run {run.status} in {run.seconds:,.1f} s end to end.")
        else:
            out.append(f"- {run.customers:,} customers: the log ends inside the full run"
                       + (f", in stage `{run.running}`" if run.running else "")
                       + f"; its completed stages took {run.stage_total:,.1f} s.")
    if small.seconds and big.status is None:
        out.append(f"- Ratio (d) is at least {big.stage_total / small.seconds:.2f} (completed stages at "
                   f"{big.customers:,} / the whole run at {small.customers:,}); not measured.")
    elif small.seconds and big.seconds:
        out.append(f"- Ratio (d) = {big.seconds / small.seconds:.2f}.")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.stages_from_log", description=__doc__.split("\n\n")[0])
    p.add_argument("log", type=Path, help="the output of `python -m benchmarks.run --verbose`")
    args = p.parse_args(argv)
    try:
        print(markdown(parse(args.log.read_text().splitlines())), end="")
    except (OSError, ValueError) as exc:
        print(f"stages_from_log: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
