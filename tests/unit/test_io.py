"""pipelines.io helpers that need no warehouse."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from pyspark.sql import Row

from pipelines import io

SCHEMA = ("a string, b int, c array<int>, d timestamp, e date, f double, g boolean, "
          "h array<struct<x:string,y:double>>, i bigint, j map<string,int>")
ROWS = [
    ("x", 1, [1, 2], datetime(2026, 3, 29, 1, 30, tzinfo=timezone.utc), date(2026, 1, 1), 1.5, True, [("q", 2.0)],
     10**12, {"k": 1}),
    # The same instant in another zone; nulls everywhere they are allowed.
    ("y", None, None, datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))), None, None, None, [], None,
     None),
    Row(a="z", b=2, c=[], d=datetime(2026, 1, 1, tzinfo=timezone.utc), e=date(2026, 2, 2), f=0.0, g=False, h=None,
        i=1, j={}),
    # A naive timestamp: both read it in the machine's local time.
    ("n", 3, [3], datetime(2026, 6, 1, 12, 0), date(2026, 6, 1), -1.0, True, None, 0, None),
]


def test_local_frame_holds_what_create_data_frame_holds_in_the_plan_itself(spark):
    expected = spark.createDataFrame(ROWS, SCHEMA)
    got = io.local_frame(spark, ROWS, SCHEMA)
    assert got.schema == expected.schema
    assert got.collect() == expected.collect()
    # Dicts keyed by column name give the same rows.
    as_dicts = io.local_frame(spark, [r.asDict(recursive=False) for r in expected.collect()], expected.schema)
    assert as_dicts.collect() == expected.collect()
    # No Python worker reads it: the rows are a LocalRelation, the RDD variant is a scan of a Python RDD.
    assert "LocalTableScan" in got._jdf.queryExecution().executedPlan().toString()
    assert "LocalTableScan" not in expected._jdf.queryExecution().executedPlan().toString()


def test_local_frame_refuses_a_value_of_the_wrong_type_and_allows_no_rows(spark):
    with pytest.raises(Exception, match="int"):
        io.local_frame(spark, [("x", "not a number")], "a string, b int")
    empty = io.local_frame(spark, [], "a string, b int")
    assert empty.count() == 0 and empty.schema.simpleString() == "struct<a:string,b:int>"
