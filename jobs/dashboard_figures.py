"""The dashboard's figures: courses, and batches with their enrolment and completion counts.

Computed by the night's Spark application (jobs/night.py --figures DIR), beside the
reports, and by `coursedash sync` alone; coursedash.sync stores them.
"""

from __future__ import annotations

import json
import logging
from functools import reduce
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from coursedash.manifest import SKIPPED_FILE
from jobs.frames import active_enrolments, one_batch_each, one_course_each, read_table

log = logging.getLogger("coursedash.jobs.figures")

def extract(spark: SparkSession, lake_uri: str) -> dict[str, DataFrame]:
    return {name: read_table(spark, lake_uri, name) for name in ("courses", "batches", "enrolments")}


def _count(df: DataFrame) -> DataFrame:
    return df.select(F.count(F.lit(1)).alias("n"))


def _conflicts(df: DataFrame, key: str) -> DataFrame:
    """Rows of an id beyond the one kept that disagree with it: distinct rows per id, less one."""
    per_id = df.filter(F.col(key).isNotNull()).distinct().groupBy(key).count()
    return per_id.select(F.coalesce(F.sum(F.col("count") - 1), F.lit(0)).alias("n"))


def skipped(courses: DataFrame, batches: DataFrame, kept_courses: DataFrame) -> dict[str, DataFrame]:
    """The rows sync cannot store, one single-row count per reason (CONTRACT §3: counted, never silent)."""
    known = kept_courses.select("course_id")
    batch_rows = one_batch_each(batches)
    return {
        "courses without an id": _count(courses.filter(F.col("course_id").isNull())),
        "courses repeated with different values (the latest was kept)": _conflicts(courses, "course_id"),
        "batches without an id": _count(batches.filter(F.col("batch_id").isNull())),
        "batches repeated with different values (the latest was kept)": _conflicts(batches, "batch_id"),
        "batches without a course": _count(batch_rows.filter(F.col("course_id").isNull())),
        "batches of a course not in the lake": _count(
            batch_rows.filter(F.col("course_id").isNotNull()).join(known, "course_id", "left_anti")
        ),
    }


def transform(courses: DataFrame, batches: DataFrame, enrolments: DataFrame) -> tuple[DataFrame, DataFrame]:
    """One row per course, and one per batch of a known course with its active learners and completions."""
    courses = one_course_each(courses).select(
        "course_id", "name", "channel", "created_by", "status",
        F.coalesce("user_consent_required", F.lit(False)).alias("user_consent_required"),
    )
    # The same learners the reports count, so the figures agree with them.
    learners = active_enrolments(enrolments)
    counts = learners.groupBy("batch_id").agg(
        F.count(F.lit(1)).alias("enrolment_count"),
        F.count(F.col("completed_on")).alias("completed_count"),
    )
    batches = (
        one_batch_each(batches)
        .join(courses.select("course_id"), "course_id", "left_semi")
        .join(counts, "batch_id", "left")
        .select(
            "batch_id", "course_id", "name", "start_date", "end_date", "created_by", "mentors",
            F.coalesce("enrolment_count", F.lit(0)).alias("enrolment_count"),
            F.coalesce("completed_count", F.lit(0)).alias("completed_count"),
        )
    )
    return courses, batches


def load(courses: DataFrame, batches: DataFrame, skipped_rows: dict[str, DataFrame], out: str) -> None:
    courses.coalesce(1).write.mode("overwrite").parquet(f"{out}/courses")
    batches.coalesce(1).write.mode("overwrite").parquet(f"{out}/batches")
    # One query for every count: each is a single row.
    row = reduce(DataFrame.crossJoin, [df.select(F.col("n").alias(f"n{i}")) for i, df in enumerate(skipped_rows.values())])
    counts = dict(zip(skipped_rows, row.first()))
    (Path(out) / SKIPPED_FILE).write_text(json.dumps({k: v for k, v in counts.items() if v}), encoding="utf-8")


def build(spark: SparkSession, lake_uri: str, out: str) -> None:
    """Read the lake's courses, batches and enrolments whole, and write their figures to `out`."""
    frames = extract(spark, lake_uri)
    courses, batches = transform(**frames)
    load(courses, batches, skipped(frames["courses"], frames["batches"], courses), out)
    log.info("dashboard figures written to %s", out)
