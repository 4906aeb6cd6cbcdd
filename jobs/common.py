"""What every report job shares: the manifest, reading the lake, cell formats, staging.

A report job reads the night's manifest (request ids and batches, never passwords),
reads each lake table it needs once, pruned to the requested batches, and stages every
request's rows as one sorted Parquet file of ready-to-write CSV cells under
`<out>/rows/request_id=<id>/`, with `<out>/_SUMMARY.json` written last.
"""

from __future__ import annotations

import argparse
import logging

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from coursedash.manifest import Manifest
from schemas.lake import TABLES

log = logging.getLogger("coursedash.jobs")

class LakeSchemaError(ValueError):
    pass


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", required=True, help="the night's manifest for this report type")
    parser.add_argument("--out", required=True, help="folder to stage the rows and summary in")
    return parser.parse_args(argv)


def requests_frame(spark: SparkSession, manifest: Manifest) -> DataFrame:
    return spark.createDataFrame(
        [(r["request_id"], r["course_id"], r["batch_id"]) for r in manifest.requests],
        "request_id string, course_id string, batch_id string",
    )


def missing_batches(batches: DataFrame, manifest: Manifest) -> dict[str, dict]:
    """Summary errors for requests whose batch is no longer in the lake: nothing to build."""
    known = {r["batch_id"] for r in batches.select("batch_id").distinct().collect()}
    return {
        r["request_id"]: {
            "error": f"batch {r['batch_id']} is no longer in the learner data, so no report can be built",
            "transient": False,
        }
        for r in manifest.requests
        if r["batch_id"] not in known
    }


def read_table(spark: SparkSession, lake_uri: str, table: str) -> DataFrame:
    """Read a lake table with its contract schema, after checking the files agree with it.

    Spark fills a missing column with nulls and fails late and vaguely on a wrong type;
    both are lake errors worth a clear message naming the table and the column.
    """
    path = f"{lake_uri.rstrip('/')}/{table}"
    expected = TABLES[table]
    try:
        as_found = spark.read.parquet(path)
    except Exception as e:  # AnalysisException: path missing or no Parquet files
        raise LakeSchemaError(f"lake table {table!r} cannot be read at {path}: {str(e).splitlines()[0]}") from e
    found = {f.name: f.dataType for f in as_found.schema.fields}
    # Partition folder values have guessed types; the contract schema casts them.
    partitions = {seg.split("=", 1)[0] for f in as_found.inputFiles() for seg in f.split("/") if "=" in seg}
    problems = []
    for field in expected.fields:
        if field.name not in found:
            problems.append(f"column {field.name!r} is missing (expected {field.dataType.simpleString()})")
        elif field.name not in partitions and not _compatible(found[field.name], field.dataType):
            problems.append(
                f"column {field.name!r} is {found[field.name].simpleString()}, "
                f"expected {field.dataType.simpleString()}"
            )
    if problems:
        raise LakeSchemaError(f"lake table {table!r} at {path} does not match the contract: " + "; ".join(problems))
    return spark.read.schema(expected).parquet(path).select(*expected.fieldNames())


def _compatible(found, expected) -> bool:
    # Parquet keeps timestamps without zone as timestamp_ntz; both hold UTC here.
    return found == expected or {found.simpleString(), expected.simpleString()} <= {"timestamp", "timestamp_ntz"}


def dedupe(df: DataFrame, keys: list[str], *order: Column) -> DataFrame:
    """One row per key: the first by `order` (every column breaks remaining ties)."""
    from pyspark.sql.window import Window

    tiebreak = [F.col(c).asc_nulls_last() for c in df.columns if not _is_complex(df, c)]
    w = Window.partitionBy(*keys).orderBy(*order, *tiebreak)
    return df.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1").drop("_rn")


def _is_complex(df: DataFrame, column: str) -> bool:
    return df.schema[column].dataType.typeName() in ("map", "array", "struct")


# --- cell formats (CONTRACT §4) --------------------------------------------------------

def text(col: Column | str) -> Column:
    """A text cell from the lake, guarded against spreadsheet formula injection."""
    c = F.col(col) if isinstance(col, str) else col
    return F.when(c.rlike(r"^[=+\-@\t\r]"), F.concat(F.lit("'"), c)).otherwise(c)


def date_cell(col: Column | str) -> Column:
    return F.date_format(col, "dd/MM/yyyy")


def datetime_cell(col: Column | str) -> Column:
    return F.date_format(col, "dd/MM/yyyy HH:mm:ss")


def plain_number(col: Column | str) -> Column:
    """A number from the lake as a plain decimal, never with an exponent: 12.5, 3, 0.0000001."""
    as_decimal = F.col(col).try_cast("decimal(38,12)") if isinstance(col, str) else col.try_cast("decimal(38,12)")
    return F.regexp_replace(as_decimal.cast(StringType()), r"\.?0+$", "")


def percent(score: Column, max_score: Column) -> Column:
    """100 * score / max with two decimals, half up; null when max is 0 or either is null."""
    exact = F.try_divide(score.try_cast("decimal(38,10)") * 100, max_score.try_cast("decimal(38,10)"))
    return F.round(exact, 2).cast(StringType())


# --- staging ---------------------------------------------------------------------------

def stage(rows: DataFrame, out: str, sort_by: list[str], counters: dict[str, Column] | None = None) -> dict:
    """Write each request's cells, sorted, as one Parquet file; return counts per request.

    `rows` has request_id, the sort columns and `cells` (array<string> in header order).
    Repartitioning by request puts each request in one task, so each gets one file
    whose rows stay in sort order. `counters` name boolean columns to count per request
    (dirty rows kept or dropped); the rows are cached so the lake is read only once.
    """
    counters = counters or {}
    rows = rows.persist()
    try:
        (
            rows.repartition("request_id")
            .sortWithinPartitions("request_id", *sort_by)
            .select("request_id", "cells")
            .write.mode("overwrite")
            .partitionBy("request_id")
            .parquet(f"{out.rstrip('/')}/rows")
        )
        aggregates = [F.count(F.lit(1)).alias("rows")] + [
            F.count(F.when(flag, True)).alias(name) for name, flag in counters.items()
        ]
        return {
            r["request_id"]: {k: v for k, v in r.asDict().items() if k != "request_id"}
            for r in rows.groupBy("request_id").agg(*aggregates).collect()
        }
    finally:
        rows.unpersist()


# --- rows left out of a report, counted -------------------------------------------------

def flag_duplicates(df: DataFrame, keys: list[str], *order: Column) -> DataFrame:
    """`df` with a boolean `duplicate`: false on the one row per key `dedupe` keeps, true on the rest.

    For reports that count the duplicates they resolve: the extra rows stay until
    staging has counted them (see `stage_reported`).
    """
    from pyspark.sql.window import Window

    tiebreak = [F.col(c).asc_nulls_last() for c in df.columns if not _is_complex(df, c)]
    w = Window.partitionBy(*keys).orderBy(*order, *tiebreak)
    return df.withColumn("duplicate", F.row_number().over(w) > 1)


def stage_reported(rows: DataFrame, out: str, sort_by: list[str], counters: dict[str, Column] | None = None) -> dict:
    """`stage` the rows of the report, and count the rows left out of it, by reason, in the same pass.

    `rows` also has a string column `dropped`: null on a row of the report, else the
    summary counter the row is counted under (e.g. `learners_without_consent`). Only
    report rows are written; `counters` count among them. A request gets a reason's
    count only when some row has it: callers default the others to 0.
    """
    rows = rows.persist()  # written, then counted: the lake is still read once
    try:
        counts = stage(rows.filter(F.col("dropped").isNull()), out, sort_by, counters)
        for r in rows.filter(F.col("dropped").isNotNull()).groupBy("request_id", "dropped").count().collect():
            counts.setdefault(r["request_id"], {})[r["dropped"]] = r["count"]
        return counts
    finally:
        rows.unpersist()
