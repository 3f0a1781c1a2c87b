"""One example of the profile property tests, timed: build, collect the published profiles, collect the scores.

Uses ``tests/property/test_profiles_props.py``'s own ``Harness`` from whichever checkout is first on
``PYTHONPATH`` (an earlier commit from a ``git worktree``, or this one), on a fixed world of 5 customers, 16
viewing and 16 web events, a loyalty event and a purchase, with the test session's Spark settings. Results:
``benchmarks/results/2026-11-29-local-frames.md``.

    .venv/bin/python -m benchmarks.profile_example [--examples 4]
    PYTHONPATH=WORKTREE AUDIENCE_JAR_DIR=$PWD/.cache/jars .venv/bin/python -m benchmarks.profile_example
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

#: The test session's Spark settings (tests/conftest.py ``spark``), so an example costs what it costs in the test.
TEST_CONF = {
    "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2", "spark.default.parallelism": "2",
    "spark.driver.memory": "3g", "spark.sql.adaptive.enabled": "true",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.sources.parallelPartitionDiscovery.parallelism": "2", "spark.sql.codegen.wholeStage": "false",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.profile_example", description=__doc__.splitlines()[0])
    p.add_argument("--examples", type=int, default=4, help="how many times the same example runs (default 4)")
    args = p.parse_args(argv)

    import pipelines
    from pipelines.config import CONF_DIR, load_settings
    from pipelines.spark import build_session, session_conf

    sys.path.insert(0, str(Path(pipelines.__file__).resolve().parents[1] / "tests"))
    from property import test_profiles_props as props  # the checkout's own test harness

    settings = load_settings()
    spark = build_session(settings.spark, **TEST_CONF)
    world = props.World(
        customers=(("c0", True, True), ("c1", True, False), ("c2", False, True), ("c3", True, True),
                   ("c4", True, True)),
        viewing=tuple((f"c{i % 5}", props.GENRES[i % 8], props.SUBGENRES[i % 6], i % 30, 30 + i) for i in range(16)),
        events=tuple((f"c{i % 5}" if i % 7 else "nobody", props.CONTENT[i % 8], props.EVENT_TYPES[i % 3],
                      props.TC_OK, i % 30) for i in range(16)),
        loyalty=(("c0", "enjoy", "1", 3),), purchases=(("c1", "smartphone", "premium", 2),))
    try:
        # The module's tiny-data settings (its autouse fixture ``_tiny_data``).
        with session_conf(spark, {"spark.sql.defaultSizeInBytes": str(1 << 20), "spark.sql.shuffle.partitions": "1"}):
            harness = props.Harness(spark, CONF_DIR, settings)
            for i in range(args.examples):
                start = time.perf_counter()
                out = harness.build(world)
                built = time.perf_counter()
                props._published(out)
                published = time.perf_counter()
                props._own_figures(out)
                done = time.perf_counter()
                print(f"example {i + 1}: build {built - start:.2f} s, collect profiles {published - built:.2f} s, "
                      f"collect scores {done - published:.2f} s, total {done - start:.2f} s", flush=True)
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
