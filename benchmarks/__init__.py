"""Benchmarks of the daily pipeline (issue 10): ``python -m benchmarks.run`` (``make benchmark``).

* :mod:`benchmarks.run`: the harness (data generation, the four ratios, results JSON + markdown summary);
* :mod:`benchmarks.tv_core`: the core TV-profile computation in Spark and the same computation as DuckDB SQL;
* :mod:`benchmarks.probe`: the machine, versions, git commit, process memory and table checksums.

See ``benchmarks/README.md`` for how to reproduce a result and what each ratio means.
"""
