"""The segments stage of the daily run: membership, published statistics, transparency labels.

``gold/segment_membership`` (internal: who is in which segment on which channel) and
``gold/segment_stats`` (what advertisers may see, S2: the number of people per segment and channel,
*thresholded*). A published size is the count rounded down to ``segments.audience_rounding``, and
null when that is below the larger of ``segments.audience_threshold`` and the segment's
``min_audience``. So no published number is ever below the threshold, none is exact (except by
coincidence of a multiple), and a size only moves in steps of the rounding; the exact count exists
only inside the Spark plan and is never stored, logged or printed. Limits (see ``segments/README.md``):
rounding does not stop a determined observer from noticing that a size crossed a step boundary
between two days; it only bounds what can be learnt to "about ``rounding`` people joined or left".

Published sizes with threshold 50 and rounding 10 (``published_size``)::

    count          49    50    57    1234
    audience_size  null  50    50    1230
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from pipelines import io
from pipelines.config import PROJECT_ROOT, Settings
from pipelines.consent import gate
from pipelines.segments.catalogue import Catalogue, load_catalogue
from pipelines.segments.compiler import channel_membership, SEGMENT_MEMBERSHIP
from pipelines.segments.label import build_label, label_json, labels_html
from pipelines.segments.lint import validate_paths
from pipelines.segments.model import CHANNELS, SegmentDefinition

#: ``gold/segment_stats``: one row per segment and channel; ``audience_size`` is the published size.
SEGMENT_STATS = StructType([
    StructField("segment", StringType(), False),
    StructField("channel", StringType(), False),
    StructField("audience_size", LongType(), True),
    StructField("published", BooleanType(), False),
    StructField("min_audience", IntegerType(), False),
    StructField("audience_threshold", IntegerType(), False),
    StructField("audience_rounding", IntegerType(), False),
    StructField("purposes", ArrayType(StringType()), False),
    StructField("iab_audience_ids", ArrayType(IntegerType()), False),
    StructField("definition_hash", StringType(), False),
    StructField("label_path", StringType(), True),
    StructField("run_id", StringType(), False),
    StructField("as_of", DateType(), False),
])

HISTORY_TABLE = "segment_stats_history"

#: Eligibility processing behind each channel's profiles (membership re-checks it: C3, defence in depth).
CHANNEL_PROCESSING = {"tv": "tv_profile", "web": "web_profile"}


def segments_dir(settings: Settings) -> Path:
    """The folder of definition files (``segments.path``, relative to the project root)."""
    path = Path(settings.segments.path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def published_size(count: Column, threshold: int, rounding: int, min_audience: Column) -> Column:
    """The size advertisers may see: ``count`` rounded down to ``rounding``, null below the floor.

    The floor is the larger of ``threshold``, the segment's ``min_audience`` and 1, and it is compared with
    the *rounded* value, so every published number is a multiple of ``rounding`` and at least the floor.
    """
    step = max(int(rounding), 1)
    rounded = (count - F.pmod(count, F.lit(step))).cast(LongType())
    floor = F.greatest(F.lit(max(int(threshold), 1)), min_audience.cast(LongType()))
    return F.when(rounded >= floor, rounded).cast(LongType())


def segment_stats(membership: DataFrame, definitions: Sequence[SegmentDefinition], settings: Settings,
                  as_of: date, run_id: str, label_dir: str | None) -> DataFrame:
    """``gold/segment_stats``: a row for every segment and channel it declares (empty segments included)."""
    spark = membership.sparkSession
    seg = settings.segments
    pairs = io.local_frame(
        spark,
        [(d.name, ch, d.min_audience, list(d.purposes), list(d.iab_audience_ids), d.definition_hash,
          f"{label_dir}/{d.name}.json" if label_dir else None)
         for d in definitions for ch in d.channels],
        "segment string, channel string, min_audience int, purposes array<string>, iab_audience_ids array<int>, "
        "definition_hash string, label_path string",
    )
    counts = membership.groupBy("segment", "channel").agg(F.count(F.lit(1)).alias("_people"))
    size = published_size(F.coalesce(F.col("_people"), F.lit(0)), seg.audience_threshold, seg.audience_rounding,
                          F.col("min_audience"))
    return (
        pairs.join(counts, ["segment", "channel"], "left")
        .select(
            "segment", "channel",
            size.alias("audience_size"),
            size.isNotNull().alias("published"),
            "min_audience",
            F.lit(seg.audience_threshold).cast(IntegerType()).alias("audience_threshold"),
            F.lit(seg.audience_rounding).cast(IntegerType()).alias("audience_rounding"),
            "purposes", "iab_audience_ids", "definition_hash", "label_path",
            F.lit(run_id).alias("run_id"),
            F.lit(as_of).cast(DateType()).alias("as_of"),
        )
    )  # the exact count (_people) is dropped here: it is never stored


def membership_for(profiles: dict[str, DataFrame], elig: DataFrame | None, definitions: Sequence[SegmentDefinition],
                   catalogue: Catalogue, settings: Settings, as_of: date) -> DataFrame:
    """``gold/segment_membership``: members per channel, re-checked against that channel's eligibility."""
    parts = []
    for channel in CHANNELS:
        df = profiles[channel]
        if elig is not None:
            df = gate.only_eligible(df, elig, CHANNEL_PROCESSING[channel])
        parts.append(channel_membership(df, channel, definitions, catalogue, settings.minimum_age, as_of))
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def write_labels(directory: Path, labels: Sequence[dict[str, Any]]) -> None:
    """``<name>.json`` and ``<name>.html`` per segment and an ``index.html`` holding them all."""
    directory.mkdir(parents=True, exist_ok=True)
    for label in labels:
        name = label["segment"]["id"]
        (directory / f"{name}.json").write_text(label_json(label), encoding="utf-8")
        (directory / f"{name}.html").write_text(labels_html([label], f"Transparency label: {label['segment']['name']}"),
                                                encoding="utf-8")
    (directory / "index.html").write_text(labels_html(labels), encoding="utf-8")


def stage_segments(ctx: Any, elig: DataFrame) -> None:
    """Daily-run stage: validate ``segments/``, compute membership and published stats, write the labels.

    Reads ``ctx.outputs["tv_profiles"]`` and ``["web_profiles"]``; adds ``segment_membership`` and
    ``segment_stats`` (published by the run) and appends the stats to ``ops/segment_stats_history``
    (replacing this as-of, so a rerun is idempotent). A definition with errors is skipped, never
    published: CI should have refused it already. Metrics ``segments.<name>.<channel>`` hold the
    published size only.
    """
    settings: Settings = ctx.settings
    with ctx.progress.stage("segments") as counts:
        missing = [f"{ch}_profiles" for ch in CHANNELS if f"{ch}_profiles" not in ctx.outputs]
        if missing:
            raise RuntimeError(f"segments need the profile outputs {', '.join(missing)}: run the profile stage first")
        catalogue = load_catalogue(settings.conf_dir)
        result = validate_paths([segments_dir(settings)], settings, catalogue)
        for problem in result.errors:
            ctx.progress.say(f"segment skipped: {problem}")
        definitions = result.valid
        membership = io.materialise(membership_for(
            {ch: ctx.outputs[f"{ch}_profiles"] for ch in CHANNELS}, elig, definitions, catalogue, settings, ctx.as_of,
        ).select(*SEGMENT_MEMBERSHIP.fieldNames()))

        label_rel = f"reports/{ctx.run_id}/segments"
        computed = segment_stats(membership, definitions, settings, ctx.as_of, ctx.run_id, label_rel)
        rows = computed.collect()  # one row per segment and channel: bounded by the definitions, not the data
        stats = ctx.spark.createDataFrame(rows, SEGMENT_STATS)

        sizes: dict[str, dict[str, int | None]] = {}
        for row in rows:
            sizes.setdefault(row["segment"], {})[row["channel"]] = row["audience_size"]
            if row["audience_size"] is not None:
                ctx.metrics[f"segments.{row['segment']}.{row['channel']}"] = float(row["audience_size"])
        labels = [build_label(d, catalogue, settings, sizes.get(d.name, {}), ctx.as_of, ctx.run_id)
                  for d in definitions]
        write_labels(ctx.wh.root / label_rel, labels)
        io.replace_where(stats, ctx.wh.table("ops", HISTORY_TABLE), f"as_of = DATE'{ctx.as_of.isoformat()}'")

        ctx.outputs["segment_membership"] = membership
        ctx.outputs["segment_stats"] = stats
        published = sum(1 for r in rows if r["published"])
        ctx.metrics["segments.definitions"] = float(len(definitions))
        ctx.metrics["segments.invalid"] = float(len({p.path for p in result.errors}))
        ctx.metrics["segments.published"] = float(published)
        ctx.metrics["segments.suppressed"] = float(len(rows) - published)
        counts.update(segments=len(definitions), published=published, suppressed=len(rows) - published)


__all__ = [
    "SEGMENT_MEMBERSHIP", "SEGMENT_STATS", "HISTORY_TABLE", "published_size", "segment_stats",
    "membership_for", "stage_segments", "segments_dir", "write_labels",
]
