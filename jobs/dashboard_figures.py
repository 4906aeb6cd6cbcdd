"""The dashboard's figures: courses, and batches with their enrolment and completion counts.

    spark-submit jobs/dashboard_figures.py --lake LAKE --out DIR
"""

from __future__ import annotations

import argparse
import logging
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from jobs import common
from jobs.common import active_enrolments, dedupe

log = logging.getLogger("coursedash.jobs.figures")


def extract(spark: SparkSession, lake_uri: str) -> dict[str, DataFrame]:
    return {name: common.read_table(spark, lake_uri, name) for name in ("courses", "batches", "enrolments")}


def transform(courses: DataFrame, batches: DataFrame, enrolments: DataFrame) -> tuple[DataFrame, DataFrame]:
    """One row per course, and one per batch with its active learners and completions."""
    courses = dedupe(courses.filter(F.col("course_id").isNotNull()), ["course_id"]).select(
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
        dedupe(batches.filter(F.col("batch_id").isNotNull()), ["batch_id"])
        .join(counts, "batch_id", "left")
        .select(
            "batch_id", "course_id", "name", "start_date", "end_date", "created_by", "mentors",
            F.coalesce("enrolment_count", F.lit(0)).alias("enrolment_count"),
            F.coalesce("completed_count", F.lit(0)).alias("completed_count"),
        )
    )
    return courses, batches


def load(courses: DataFrame, batches: DataFrame, out: str) -> None:
    courses.coalesce(1).write.mode("overwrite").parquet(f"{out}/courses")
    batches.coalesce(1).write.mode("overwrite").parquet(f"{out}/batches")


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser()
    parser.add_argument("--lake", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    from coursedash.spark import get_session

    spark = get_session("dashboard_figures")
    load(*transform(**extract(spark, args.lake)), args.out)
    log.info("dashboard figures written to %s", args.out)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
