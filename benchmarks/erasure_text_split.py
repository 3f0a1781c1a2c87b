"""How erasure splits raw landing lines into fields: the current split against a candidate, side by side.

The erasure matched bronze and quarantine lines field by field (``pipelines.rights.erasure.text_fields``), so
every erasure split every bronze line of the warehouse (since commit 19f10c8 bronze lines that parsed are
matched by the identifier tokens stored at ingestion; the quarantine and unparsed lines still by their text). This times that split alone (explode and count the
non-empty fields) on one bronze table, read once and cached, for two ways of splitting, alternately, twice each:

* ``regex``: the current ``text_fields`` (one regular-expression split, then the hyphen parts);
* ``translate``: every separator first translated to a comma, then a one-character split (Java splits on one
  plain character without its regular-expression engine; the idea was that this would be faster).

    .venv/bin/python -m benchmarks.erasure_text_split BRONZE_TABLE

Results and the command: ``benchmarks/results/2026-11-27-100k-1m-partial.md`` ("Where the time goes").
"""
from __future__ import annotations

import sys
import time

from pyspark.sql import Column
from pyspark.sql import functions as F

from pipelines.config import load_settings
from pipelines.rights.erasure import text_fields
from pipelines.spark import build_session

#: The separators of ``text_fields`` as characters (Java's ``\\s`` spelled out).
SEPARATOR_CHARS = ' \t\n\x0b\f\r,"{}[]'


def translated_fields(text: Column) -> Column:
    fields = F.split(F.translate(F.lower(text), SEPARATOR_CHARS, "," * len(SEPARATOR_CHARS)), ",")
    return F.array_union(fields, F.split(F.concat_ws("-", fields), "-"))


def main(table: str) -> None:
    spark = build_session(load_settings(None).spark, **{"spark.ui.enabled": "false"})
    try:
        lines = spark.read.format("delta").load(table).select("raw").cache()
        print(f"lines: {lines.count()}", flush=True)
        for round_ in (1, 2):
            for name, split in (("regex", text_fields), ("translate", translated_fields)):
                started = time.perf_counter()
                n = lines.select(F.explode(split(F.col("raw"))).alias("f")).where(F.length("f") > 0).count()
                print(f"round {round_} {name}: {n} fields in {time.perf_counter() - started:.2f}s", flush=True)
    finally:
        spark.stop()


if __name__ == "__main__":
    main(sys.argv[1])
