"""What every report job shares: the manifest, reading the lake, cell formats, staging.

A report job reads the night's manifest (request ids and batches, never passwords),
reads each lake table it needs once, pruned to the requested batches, and stages every
request's rows as one sorted Parquet file of ready-to-write CSV cells under
`<out>/rows/request_id=<id>/`, with `<out>/_SUMMARY.json` written last.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from coursedash.manifest import Manifest, clear_summary, write_summary
from schemas.lake import TABLES
from schemas.reports import FORMULA_START_RE

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
    """Summary errors for requests whose batch is no longer in the lake, or in another course."""
    course_of = {r["batch_id"]: r["course_id"] for r in batches.select("batch_id", "course_id").distinct().collect()}
    errors = {}
    for r in manifest.requests:
        if r["batch_id"] not in course_of:
            message = f"batch {r['batch_id']} is no longer in the learner data, so no report can be built"
        elif course_of[r["batch_id"]] != r["course_id"]:
            message = f"batch {r['batch_id']} no longer belongs to course {r['course_id']}, so no report can be built"
        else:
            continue
        errors[r["request_id"]] = {"error": message, "transient": False}
    return errors


# A job's input frames: name -> (lake table, the column that prunes it to the night).
FRAMES = {
    "courses": ("courses", "course_id"),
    "batches": ("batches", "batch_id"),
    "contents": ("course_contents", "course_id"),
    "enrolments": ("enrolments", "batch_id"),
    "attempts": ("assessment_attempts", "batch_id"),
    "responses": ("question_responses", "batch_id"),
    "consents": ("user_consents", "course_id"),
    "users": ("users", None),  # no batch or course: pruned to the night's learners
}


def extract(spark: SparkSession, manifest: Manifest, names: tuple[str, ...]) -> dict[str, DataFrame]:
    """The named input frames, each read once and pruned to the night's batches and courses."""
    wanted = {"batch_id": manifest.batch_ids, "course_id": manifest.course_ids}
    frames = {"requests": requests_frame(spark, manifest)}
    for name in sorted(names, key=lambda n: n == "users"):  # users after the enrolments they follow
        table, column = FRAMES[name]
        df = read_table(spark, manifest.lake_uri, table)
        if column:
            frames[name] = df.filter(F.col(column).isin(wanted[column]))
        else:
            learners = frames["enrolments"].select("user_id").distinct()
            frames[name] = df.join(learners, "user_id", "left_semi")
    return frames


def active_enrolments(enrolments: DataFrame) -> DataFrame:
    """One row per learner and batch, of active enrolments only: the latest enrolment wins."""
    active = enrolments.filter(F.col("active") & F.col("user_id").isNotNull())
    return dedupe(
        active, ["batch_id", "user_id"], F.col("enrolled_on").desc_nulls_last(), F.col("completed_on").desc_nulls_last()
    )


def learners(requests: DataFrame, batches: DataFrame, enrolments: DataFrame) -> DataFrame:
    """Active enrolments of the requested batches, one row per learner and request."""
    one_each = active_enrolments(enrolments)
    known = dedupe(batches, ["batch_id"]).select("batch_id", F.col("course_id").alias("_batch_course"))
    return (
        F.broadcast(requests)
        .join(known, "batch_id")
        .filter(F.col("course_id") == F.col("_batch_course"))
        .drop("_batch_course")
        .join(one_each.drop("course_id"), "batch_id")
    )


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
    return F.when(c.rlike(FORMULA_START_RE), F.concat(F.lit("'"), c)).otherwise(c)


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
    (dirty rows kept or dropped). The rows are written, then counted: they come cached
    from `checked`, so the lake is not read again.
    """
    counters = counters or {}
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
    count only when some row has it: callers default the others to 0. Like `stage`,
    it wants the rows cached.
    """
    counts = stage(rows.filter(F.col("dropped").isNull()), out, sort_by, counters)
    for r in rows.filter(F.col("dropped").isNotNull()).groupBy("request_id", "dropped").count().collect():
        counts.setdefault(r["request_id"], {})[r["dropped"]] = r["count"]
    return counts


# --- the shared main ------------------------------------------------------------------

def summarize(
    report_type: str,
    manifest: Manifest,
    counts: dict,
    errors: dict,
    header_of: Callable[[dict], list[str]],
    counters: tuple[str, ...],
) -> dict:
    """Each request's header and counts, or its error; every counter present, 0 by default."""
    empty = {"rows": 0, **{name: 0 for name in counters}}
    return {
        "report_type": report_type,
        "requests": {
            r["request_id"]: errors.get(r["request_id"])
            or {"header": header_of(r), **empty, **counts.get(r["request_id"], {})}
            for r in manifest.requests
        },
    }


def checked(
    report_type: str, rows: DataFrame, manifest: Manifest, errors: dict, header_of: Callable[[dict], list[str]]
) -> tuple[DataFrame, dict]:
    """The rows of the requests whose reports pass their checks, and all errors so far."""
    from jobs import quality

    rows = rows.persist()  # validated, staged, counted: computed once (freed by `build`)
    errors = {**errors, **quality.check_report(report_type, rows, manifest, header_of, pending=errors)}
    return (rows.filter(~F.col("request_id").isin(list(errors))) if errors else rows), errors


def build(
    spark: SparkSession,
    manifest: Manifest,
    out: str,
    extract: Callable[[SparkSession, Manifest], dict[str, DataFrame]],
    finish: Callable[[dict[str, DataFrame], str, Manifest, dict], dict],
) -> dict:
    """Extract, check the inputs, and let `finish` stage the rows and write the summary.

    `finish(frames, out, manifest, errors)` gets the requests already known to fail
    (batch gone, inputs failing their checks) and returns the summary it wrote.
    """
    from jobs import quality

    # Cached: the quality checks and the report both read them, the lake only once.
    frames = {name: df if name == "requests" else df.persist() for name, df in extract(spark, manifest).items()}
    try:
        errors = missing_batches(frames["batches"], manifest)
        errors.update(quality.check_inputs(frames, manifest, pending=errors))
        return finish(frames, out, manifest, errors)
    finally:
        spark.catalog.clearCache()  # the frames and the report rows


def load_report(
    report_type: str,
    rows: DataFrame,
    out: str,
    manifest: Manifest,
    errors: dict,
    header_of: Callable[[dict], list[str]],
    sort_by: list[str],
    counter_names: tuple[str, ...],
    counters: dict[str, Column] | None = None,
) -> dict:
    """A job's load: check the reports, stage those that pass, write and return the summary.

    Rows with a `dropped` column are staged with `stage_reported`, which also counts
    the rows left out; `counter_names` lists every counter the summary must show.
    """
    rows, errors = checked(report_type, rows, manifest, errors, header_of)
    staging = stage_reported if "dropped" in rows.columns else stage
    counts = staging(rows, out, sort_by, counters)
    summary = summarize(report_type, manifest, counts, errors, header_of, counter_names)
    write_summary(out, summary)
    return summary


def run(
    report_type: str,
    argv: list[str] | None,
    extract: Callable[[SparkSession, Manifest], dict[str, DataFrame]],
    finish: Callable[[dict[str, DataFrame], str, Manifest, dict], dict],
) -> None:
    """A report job's main: arguments, manifest, session, `build`, a log line per request."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    manifest = Manifest.load(args.manifest)
    clear_summary(args.out)
    log.info("building %d %s report(s) for %d batch(es)", len(manifest.requests), report_type, len(manifest.batch_ids))
    from coursedash.spark import get_session

    spark = get_session(f"{report_type}_report")
    summary = build(spark, manifest, args.out, extract, finish)
    for request_id, info in summary["requests"].items():
        if "error" in info:
            log.error("request %s: %s", request_id, info["error"])
        else:
            counts = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in info.items() if k != "header")
            log.info("request %s: %s", request_id, counts)
    spark.stop()
