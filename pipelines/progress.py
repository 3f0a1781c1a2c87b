"""Progress on the console: one line per stage with its duration and row counts (stderr, no secrets)."""
from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator


@dataclass
class Progress:
    """Collects stage timings (seconds) and prints progress lines; ``quiet`` silences printing only."""

    quiet: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[audience] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[dict]:
        """Time a stage; the yielded dict collects counts printed at the end of the stage."""
        counts: dict = {}
        start = time.perf_counter()
        self.say(f"{name} ...")
        try:
            yield counts
        finally:
            elapsed = time.perf_counter() - start
            self.timings[name] = self.timings.get(name, 0.0) + elapsed
            detail = ", ".join(f"{k}={v}" for k, v in counts.items())
            self.say(f"{name} done in {elapsed:.1f}s" + (f" ({detail})" if detail else ""))
