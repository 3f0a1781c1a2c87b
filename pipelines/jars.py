"""Delta Lake's JVM jars: resolved once from Maven Central into ``.cache/jars`` and reused offline.

PyPI's ``delta-spark`` ships only the Python API. ``make setup`` runs ``python -m pipelines.jars fetch``,
which asks Maven (``mvn dependency:copy``) for the pinned artifacts; every SparkSession then passes the
cached files as ``spark.jars`` instead of resolving ``spark.jars.packages`` at each start.

Example::

    $ python -m pipelines.jars fetch
    $ python -m pipelines.jars path
    /repo/.cache/jars/delta-spark_4.1_2.13-4.1.0.jar,/repo/.cache/jars/delta-storage-4.1.0.jar
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: Pinned to the delta-spark Python package (4.1.0) and the Spark minor version (4.1) in pyproject.toml.
DELTA_VERSION = "4.1.0"
ARTIFACTS: tuple[tuple[str, str, str], ...] = (
    ("io.delta", "delta-spark_4.1_2.13", DELTA_VERSION),
    ("io.delta", "delta-storage", DELTA_VERSION),
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def jar_dir() -> Path:
    """Folder holding the cached jars (``AUDIENCE_JAR_DIR`` overrides, e.g. on a cluster image)."""
    return Path(os.environ.get("AUDIENCE_JAR_DIR", PROJECT_ROOT / ".cache" / "jars"))


def jar_paths() -> list[Path]:
    """Paths of the pinned jars in the cache, in ``ARTIFACTS`` order."""
    return [jar_dir() / f"{artifact}-{version}.jar" for _, artifact, version in ARTIFACTS]


def missing_jars() -> list[Path]:
    """Pinned jars not yet in the cache."""
    return [p for p in jar_paths() if not p.is_file()]


def fetch() -> list[Path]:
    """Resolve the pinned jars into the cache with Maven; a no-op when all are present."""
    target = jar_dir()
    target.mkdir(parents=True, exist_ok=True)
    if not missing_jars():
        (target / ".resolved").touch()
        return jar_paths()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise SystemExit("jars: Maven (mvn) is required once to fetch Delta's jars; install it (apt-get install maven)")
    for group, artifact, version in ARTIFACTS:
        dest = target / f"{artifact}-{version}.jar"
        if dest.is_file():
            continue
        cmd = [
            mvn, "-q", "-B", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy",
            f"-Dartifact={group}:{artifact}:{version}:jar", f"-DoutputDirectory={target}",
        ]
        print(f"jars: fetching {group}:{artifact}:{version}", file=sys.stderr)
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not dest.is_file():
            tail = (done.stdout + done.stderr).strip().splitlines()[-5:]
            raise SystemExit(f"jars: could not fetch {artifact}: " + " | ".join(tail))
    (target / ".resolved").touch()
    return jar_paths()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["fetch"]:
        for p in fetch():
            print(p)
        return 0
    if args[:1] == ["path"]:
        print(",".join(str(p) for p in jar_paths()))
        return 0
    print("usage: python -m pipelines.jars fetch|path", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
