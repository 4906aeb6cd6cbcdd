"""Question Set Report for every response request of the night, in one pass.

One row per learner x attempt x question. It never reads `users`: no PII can reach it.

Built by jobs/night.py, with the night's other report types.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coursedash.manifest import Manifest
from jobs import common
from jobs.common import datetime_cell, plain_number, text
from jobs.frames import UNPLACED, dedupe, learners, one_batch_each, one_content_each, one_course_each
from schemas.reports import RESPONSE_COLUMNS

RESPONSE_KEY = ["user_id", "batch_id", "content_id", "attempt_id", "question_id"]
ATTEMPT_KEY = ["user_id", "batch_id", "content_id", "attempt_id"]
# Within a learner: assessments in course order, then attempt and question; content_id
# last, so that two contents sharing a position still sort the same way every time.
SORT_BY = ["user_id", "position", "attempt_id", "question_id", "content_id"]


def transform(
    requests: DataFrame,
    courses: DataFrame,
    batches: DataFrame,
    contents: DataFrame,
    enrolments: DataFrame,
    attempts: DataFrame,
    responses: DataFrame,
) -> DataFrame:
    """request_id, the SORT_BY columns, dropped and `cells` in RESPONSE_COLUMNS order.

    One response per key, the latest assessed (the lake suite counts the repeats). Each
    is in the frame once: reported, or with `dropped` naming why not (a learner without
    an active enrolment), so that staging counts what was left out in the same pass.
    Responses without a learner are dropped first; the lake suite counts them.
    """
    titles = one_content_each(contents).select(
        "course_id", "content_id", F.col("name").alias("content_name"), "position"
    )
    attempted = dedupe(attempts, ATTEMPT_KEY, F.col("last_attempted_on").desc_nulls_last()).select(
        *ATTEMPT_KEY, "last_attempted_on"
    )
    enrolled = learners(requests, batches, enrolments).select("request_id", "user_id", F.lit(True).alias("_enrolled"))
    latest = dedupe(
        responses.filter(F.col("user_id").isNotNull()), RESPONSE_KEY, F.col("assessed_on").desc_nulls_last()
    )
    rows = (
        # The request's course, checked against the batch by `learners`, names the contents.
        F.broadcast(requests)
        .join(latest.drop("course_id"), "batch_id")
        .join(enrolled, ["request_id", "user_id"], "left")
        .join(one_course_each(courses).select("course_id", F.col("name").alias("course_name")), "course_id", "left")
        .join(one_batch_each(batches).select("batch_id", F.col("name").alias("batch_name")), "batch_id", "left")
        .join(titles, ["course_id", "content_id"], "left")
        .join(attempted, ATTEMPT_KEY, "left")
    )
    dropped = F.when(F.col("_enrolled").isNull(), F.lit("responses.not_enrolled"))
    cells = [
        text("course_id"),
        text("course_name"),
        text("batch_id"),
        text("batch_name"),
        text("user_id"),
        text("content_id"),
        text("content_name"),
        text("attempt_id"),
        datetime_cell("last_attempted_on"),
        text("question_id"),
        text("question_type"),
        text("question_title"),
        text("question_description"),
        plain_number("duration_seconds"),
        plain_number("score"),
        plain_number("max_score"),
        text("options"),
        text("response"),
    ]
    assert len(cells) == len(RESPONSE_COLUMNS)
    return rows.select(
        "request_id",
        "user_id",
        F.coalesce("position", F.lit(UNPLACED)).alias("position"),
        "attempt_id",
        "question_id",
        "content_id",
        dropped.alias("dropped"),
        F.array(*cells).alias("cells"),
    )


def load(rows: DataFrame, out: str, manifest: Manifest, errors: dict) -> dict:
    return common.load_report("response", rows, out, manifest, errors, lambda r: list(RESPONSE_COLUMNS), SORT_BY)


def finish(frames: dict[str, DataFrame], out: str, manifest: Manifest, errors: dict) -> dict:
    return load(transform(**frames), out, manifest, errors)


JOB = common.ReportJob(tables=("courses", "batches", "contents", "enrolments", "attempts", "responses"), finish=finish)
