"""Course Progress Exhaust for every progress request of the night, in one pass.

Built by jobs/night.py, with the night's other report types.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coursedash.manifest import Manifest
from jobs import common
from jobs.common import date_cell, text
from jobs.frames import UNPLACED, dedupe, learners, one_batch_each, one_content_each, one_course_each
from schemas.reports import PROGRESS_COLUMNS, assessment_headers


def progress_percent(required_ids: str, content_status: str, completed_on: str):
    """100 when completed; else round-half-up of 100 * C / N over required contents, 0 when N = 0."""
    n = F.size(required_ids)
    c = F.size(F.filter(required_ids, lambda x: F.try_element_at(content_status, x) == 2))
    return (
        F.when(F.col(completed_on).isNotNull(), F.lit(100))
        .when(n == 0, F.lit(0))
        .otherwise(((c * 200 + n) / (n * 2)).cast("int"))
    )


def best_attempts(attempts: DataFrame, assessments: DataFrame, batches: DataFrame) -> DataFrame:
    """Per batch x learner x assessment of its course: the highest score, ties to the latest."""
    of_course = (
        attempts.drop("course_id")
        .join(one_batch_each(batches).select("batch_id", "course_id"), "batch_id")
        .join(assessments.select("course_id", "content_id"), ["course_id", "content_id"])
    )
    return dedupe(
        of_course,
        ["batch_id", "user_id", "content_id"],
        F.col("total_score").desc_nulls_last(),
        F.col("last_attempted_on").desc_nulls_last(),
    )


def scores_by_learner(best: DataFrame) -> DataFrame:
    """batch_id, user_id, a map content_id -> score cell, and the Total Score cell."""
    return best.groupBy("batch_id", "user_id").agg(
        F.map_from_entries(
            F.collect_list(F.struct("content_id", common.percent(F.col("total_score"), F.col("total_max_score"))))
        ).alias("score_by_content"),
        common.percent(F.sum("total_score"), F.sum("total_max_score")).alias("total_score_cell"),
    )


def course_outline(contents: DataFrame) -> DataFrame:
    """Per course, one row: the ids of its required (non-optional) contents, and its assessments in course order."""
    placed = F.struct(F.coalesce("position", F.lit(UNPLACED)).alias("position"), "content_id")
    return contents.groupBy("course_id").agg(
        F.collect_list(F.when(~F.coalesce("is_optional", F.lit(False)), F.col("content_id"))).alias("required_ids"),
        F.transform(
            F.array_sort(F.collect_list(F.when(F.col("is_assessment"), placed))), lambda s: s["content_id"]
        ).alias("assessment_ids"),
    )


def learner_progress(learners_: DataFrame, batches: DataFrame, contents: DataFrame, attempts: DataFrame) -> DataFrame:
    """The learners with what their Progress, Certificate Status and score cells are made of.

    `learners_`: one row per learner and batch, with the batch's `course_id` and the
    enrolment's columns (jobs.frames.learners). Adds `progress` (int), `certificate_issued`
    (boolean), `total_score_cell` (text or null), `score_by_content` and `assessment_ids`.
    The report and the dashboard's figures (jobs/dashboard_figures.py) both take them from
    here, so that the chart and the report always agree.
    """
    contents = one_content_each(contents)
    scores = scores_by_learner(best_attempts(attempts, contents.filter(F.col("is_assessment")), batches))
    rows = learners_.join(course_outline(contents), "course_id", "left").join(scores, ["batch_id", "user_id"], "left")
    return (
        rows.withColumn("required_ids", F.coalesce("required_ids", F.array().cast("array<string>")))
        .withColumn("assessment_ids", F.coalesce("assessment_ids", F.array().cast("array<string>")))
        .withColumn("progress", progress_percent("required_ids", "content_status", "completed_on"))
        .withColumn("certificate_issued", F.size("issued_certificates") > 0)
    )


def transform(
    requests: DataFrame,
    courses: DataFrame,
    batches: DataFrame,
    contents: DataFrame,
    enrolments: DataFrame,
    attempts: DataFrame,
    users: DataFrame,
) -> DataFrame:
    """request_id, user_id, missing_user and `cells` in PROGRESS_COLUMNS + assessment order."""
    profile = dedupe(users, ["user_id"]).withColumn("_known", F.lit(True))
    rows = (
        learner_progress(learners(requests, batches, enrolments), batches, contents, attempts)
        .join(one_course_each(courses).select("course_id", F.col("name").alias("course_name")), "course_id", "left")
        .join(one_batch_each(batches).select("batch_id", F.col("name").alias("batch_name")), "batch_id", "left")
        .join(profile, "user_id", "left")
    )
    fixed = [
        text("course_id"),
        text("course_name"),
        text("batch_id"),
        text("batch_name"),
        text("user_id"),
        text("state"),
        text("district"),
        text("org_name"),
        text("school_id"),
        text("school_name"),
        text("block"),
        text("cluster"),
        text("user_type"),
        text("user_sub_type"),
        text("board"),
        date_cell("enrolled_on"),
        date_cell("completed_on"),
        F.when(F.col("certificate_issued"), F.lit("Issued")),
        F.col("progress").cast("string"),
        F.col("total_score_cell"),
    ]
    assert len(fixed) == len(PROGRESS_COLUMNS)
    per_assessment = F.transform("assessment_ids", lambda cid: F.try_element_at("score_by_content", cid))
    return rows.select(
        "request_id",
        "user_id",
        F.col("_known").isNull().alias("missing_user"),
        F.concat(F.array(*fixed), per_assessment).alias("cells"),
    )


def headers(contents: DataFrame, course_ids: list[str]) -> dict[str, list[str]]:
    """Each requested course's full header: the fixed columns, then its assessments."""
    assessments = (
        one_content_each(contents)
        .filter(F.col("is_assessment"))
        .select("course_id", "content_id", "name", F.coalesce("position", F.lit(UNPLACED)).alias("position"))
        .orderBy("course_id", "position", "content_id")
        .collect()
    )
    result = {}
    for course_id in course_ids:
        mine = [(a["content_id"], a["name"] or a["content_id"]) for a in assessments if a["course_id"] == course_id]
        result[course_id] = list(PROGRESS_COLUMNS) + assessment_headers(mine)
    return result


def load(rows: DataFrame, out: str, manifest: Manifest, header_by_course: dict[str, list[str]], errors: dict) -> dict:
    missing = {"users.missing": F.col("missing_user")}
    return common.load_report(
        "progress", rows, out, manifest, errors, lambda r: header_by_course[r["course_id"]], ["user_id"], missing
    )


def finish(frames: dict[str, DataFrame], out: str, manifest: Manifest, errors: dict) -> dict:
    header_by_course = headers(frames["contents"], manifest.course_ids)
    return load(transform(**frames), out, manifest, header_by_course, errors)


JOB = common.ReportJob(tables=("courses", "batches", "contents", "enrolments", "attempts", "users"), finish=finish)
