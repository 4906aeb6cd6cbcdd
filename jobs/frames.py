"""The night's input frames: reading the lake, and the rules every report shares about its rows.

Each duplicate rule has a complete order, so that the same lake gives the same bytes however
its files are split (docs/lake.md, "Duplicates"): the named order first, then every column.
"""

from __future__ import annotations

import logging
import re

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.window import Window

from coursedash.spark import described
from schemas.lake import TABLES

log = logging.getLogger("coursedash.jobs")


class LakeSchemaError(ValueError):
    """The lake cannot give a truthful report: a table unreadable, a column missing or mistyped.

    Its message is for the people who requested a report: the table and the kind of
    problem in plain words, never a path, a file name or a Java name. `detail` is for
    the engineers' log.
    """

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail or message


UNPLACED = 2**31 - 1  # the position of a content without one (or unknown): after every placed one

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


def requests_frame(spark: SparkSession, requests: list[dict]) -> DataFrame:
    """The night's requests: id, course, batch and report type."""
    return spark.createDataFrame(
        [(r["request_id"], r["course_id"], r["batch_id"], r["report_type"]) for r in requests],
        "request_id string, course_id string, batch_id string, report_type string",
    )


def read_frames(
    spark: SparkSession, lake_uri: str, requests: list[dict], readers: dict[str, set[str]]
) -> tuple[dict[str, DataFrame], dict[str, LakeSchemaError], list[DataFrame]]:
    """The input frames, each pruned to the batches, courses or learners of the requests that read it.

    Also the unreadable ones, each with why, and the frames persisted here, for the caller
    to unpersist when the night's reports are built.

    `readers`: frame name -> the report types that read it (the requests carry their
    `report_type`). Every table's schema is checked here. The tables are then read where they are
    used: by their quality suite (only the columns it checks) and by the reports that
    need them, a number of scans that does not grow with the requests. Caching a large
    table costs several times its Parquet decoding, so only what every report derives
    the same way is persisted (`share`), which also catches a corrupt file here.
    """
    frames = {"requests": requests_frame(spark, requests)}
    unreadable: dict[str, LakeSchemaError] = {}
    persisted: list[DataFrame] = []
    for name in sorted(readers, key=lambda n: n == "users"):  # users after the enrolments they follow
        table, column = FRAMES[name]
        mine = [r for r in requests if r["report_type"] in readers[name]]
        try:
            df = read_table(spark, lake_uri, table)
            if column:
                df = df.filter(F.col(column).isin(sorted({r[column] for r in mine})))
            elif "enrolments" in frames:
                batches = sorted({r["batch_id"] for r in mine})
                learning = active_enrolments(frames["enrolments"]).filter(F.col("batch_id").isin(batches))
                df = df.join(learning.select("user_id").distinct(), "user_id", "left_semi")
            else:
                continue  # no learners to prune it to; whoever reads users reads enrolments, and fails by them
            frames[name] = df
            if name in SHARED:
                with described(spark, f"the night's {name}, shared by the reports"):
                    shared = SHARED[name](df).persist()
                    persisted.append(shared)
                    log.info("lake table %s: %d row(s) for the night's requests", table, shared.count())
        except Exception as e:
            problem = e if isinstance(e, LakeSchemaError) else lake_file_error(e, lake_uri)
            if problem is None:
                raise
            log.error("lake table %s cannot be used: %s", table, problem.detail)
            unreadable[name] = problem
            frames.pop(name, None)
    return frames, unreadable, persisted


def read_table(spark: SparkSession, lake_uri: str, table: str) -> DataFrame:
    """Read a lake table with its schema (schemas/lake.py), after checking the files agree with it.

    Spark fills a missing column with nulls and fails late and vaguely on a wrong type;
    both are lake errors worth a clear message naming the table and the column.
    """
    path = f"{lake_uri.rstrip('/')}/{table}"
    expected = TABLES[table]
    try:
        as_found = spark.read.parquet(path)
    except Exception as e:  # AnalysisException: path missing or no Parquet files
        raise LakeSchemaError(
            f"lake table {table!r} cannot be read: {_unreadable(str(e))}",
            f"lake table {table!r} cannot be read: {_first_line(e)}",
        ) from e
    found = {f.name: f.dataType for f in as_found.schema.fields}
    # Partition folder values have guessed types; the table's schema casts them.
    partitions = {seg.split("=", 1)[0] for f in as_found.inputFiles() for seg in f.split("/") if "=" in seg}
    problems = []
    for field in expected.fields:
        if field.name not in found:
            problems.append(f"column {field.name!r} is missing (expected {field.dataType.simpleString()})")
        elif field.name not in partitions and not _compatible(found[field.name], field.dataType):
            problems.append(
                f"column {field.name!r} is {found[field.name].simpleString()}, expected {field.dataType.simpleString()}"
            )
    if problems:
        raise LakeSchemaError(f"lake table {table!r} does not match its documented schema: " + "; ".join(problems))
    return spark.read.schema(expected).parquet(path).select(*expected.fieldNames())


def _compatible(found, expected) -> bool:
    # Parquet keeps timestamps without zone as timestamp_ntz; both hold UTC here.
    return found == expected or {found.simpleString(), expected.simpleString()} <= {"timestamp", "timestamp_ntz"}


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def _unreadable(text: str) -> str:
    """What kind of problem a Spark error reading a table or file is, in plain words."""
    if "PATH_NOT_FOUND" in text:
        return "its folder is missing"
    if "UNABLE_TO_INFER_SCHEMA" in text:
        return "its folder has no data files"
    if "not a Parquet file" in text:
        return "a file of it is not a Parquet file"
    if "FileNotFoundException" in text or "FILE_NOT_EXIST" in text:
        return "a file of it disappeared while it was read"
    return "a file of it is damaged"


def lake_file_error(e: Exception, lake_uri: str) -> LakeSchemaError | None:
    """A plain message for a Spark error that names a file of the lake (a corrupt file), else None.

    The file's name and Spark's cause go to `detail`, for the log.
    """
    text = str(e)
    root = re.escape(lake_uri.rstrip("/").removeprefix("file:"))
    found = re.search(rf"(?:file:)?{root}/([^/\s]+)/(?:[^\s]*/)?([^/\s]+?)\.?(?:\s|$)", text)
    if not found:
        return None
    table, name = found.groups()
    cause = next(
        (line.strip() for line in reversed(text.splitlines()) if "Caused by" in line or "not a Parquet file" in line),
        _first_line(e),
    )
    kind = _unreadable(text).replace("a file of it", "a file of lake table " + repr(table))
    return LakeSchemaError(kind, f"a file of lake table {table!r} cannot be read ({name}): {cause[:300]}")


def dedupe(df: DataFrame, keys: list[str], *order: Column) -> DataFrame:
    """One row per key: the first by `order`, then by every column (a complete order)."""
    w = Window.partitionBy(*keys).orderBy(*order, *_every_column(df))
    return df.withColumn("_rn", F.row_number().over(w)).filter("_rn = 1").drop("_rn")


def _every_column(df: DataFrame) -> list[Column]:
    """Every column as a sort key; a map by its sorted entries (Spark cannot order maps)."""
    keys = []
    for field in df.schema.fields:
        column = F.col(f"`{field.name}`")
        if field.dataType.typeName() == "map":
            column = F.array_sort(F.map_entries(column))
        keys.append(column.asc_nulls_last())
    return keys


def one_course_each(courses: DataFrame) -> DataFrame:
    """One row per course id: the latest created wins."""
    return dedupe(courses.filter(F.col("course_id").isNotNull()), ["course_id"], F.col("created_on").desc_nulls_last())


def one_batch_each(batches: DataFrame) -> DataFrame:
    """One row per batch id: the latest created wins."""
    return dedupe(batches.filter(F.col("batch_id").isNotNull()), ["batch_id"], F.col("created_on").desc_nulls_last())


def one_content_each(contents: DataFrame) -> DataFrame:
    """A course's contents with an id, one row each."""
    return dedupe(contents.filter(F.col("content_id").isNotNull()), ["course_id", "content_id"])


def active_enrolments(enrolments: DataFrame) -> DataFrame:
    """One row per learner and batch, of active enrolments only: the latest enrolment wins."""
    active = enrolments.filter(F.col("active") & F.col("user_id").isNotNull())
    return dedupe(
        active, ["batch_id", "user_id"], F.col("enrolled_on").desc_nulls_last(), F.col("completed_on").desc_nulls_last()
    )


def learners(requests: DataFrame, batches: DataFrame, enrolments: DataFrame) -> DataFrame:
    """Active enrolments of the requested batches, one row per learner and request."""
    known = one_batch_each(batches).select("batch_id", F.col("course_id").alias("_batch_course"))
    return (
        F.broadcast(requests)
        .join(known, "batch_id")
        .filter(F.col("course_id") == F.col("_batch_course"))
        .drop("_batch_course")
        .join(active_enrolments(enrolments).drop("course_id"), "batch_id")
    )


def missing_batches(batches: DataFrame, requests: list[dict]) -> dict[str, dict]:
    """Errors for requests whose batch is no longer in the lake, or now in another course."""
    course_of = {
        r["batch_id"]: r["course_id"] for r in one_batch_each(batches).select("batch_id", "course_id").collect()
    }
    errors = {}
    for r in requests:
        if r["batch_id"] not in course_of:
            message = f"batch {r['batch_id']} is no longer in the learner data, so no report can be built"
        elif course_of[r["batch_id"]] != r["course_id"]:
            message = f"batch {r['batch_id']} no longer belongs to course {r['course_id']}, so no report can be built"
        else:
            continue
        errors[r["request_id"]] = {"error": message, "transient": False}
    return errors


# What every report and suite derives the same way from a frame, persisted once a night
# (jobs.frames.read_frames): Spark's cache manager then serves each later use of the
# same plan (every report's `learners`, `one_batch_each`, ...) from memory.
SHARED = {
    "courses": one_course_each,
    "batches": one_batch_each,
    "contents": one_content_each,
    "enrolments": active_enrolments,
    "users": lambda users: users,  # pruned by a join to the learners: worth keeping
}
