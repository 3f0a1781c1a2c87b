"""benchmarks/incremental_day.py: which days a harness data folder holds."""
from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from benchmarks.incremental_day import _days, main


def test_full_run_day_and_incremental_day_come_from_the_harness_folder_name():
    assert _days(Path("benchmarks/data/c100000-d30-s42-e2026-11-25")) == (date(2026, 11, 24), date(2026, 11, 25))
    assert _days(Path("c100-d5-s7-e2026-01-01")) == (date(2025, 12, 31), date(2026, 1, 1))
    with pytest.raises(SystemExit):
        _days(Path("somewhere/else"))


def test_measure_needs_a_snapshot_and_says_so(tmp_path):
    with pytest.raises(SystemExit):
        main(["measure"])  # argparse: data, snapshot and work folders are required
    with pytest.raises(FileNotFoundError):
        main(["measure", str(tmp_path / "c100-d5-s7-e2026-01-02"), str(tmp_path / "no-snapshot"), str(tmp_path / "w")])
