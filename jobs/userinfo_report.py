"""User Profile Exhaust for every userinfo request of the night, in one pass.

The one report that carries PII (names, email, phone): only learners whose latest
consent for the course is ACTIVE are in it.

Built by jobs/night.py, with the night's other report types.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from coursedash.manifest import Manifest
from jobs import common
from jobs.common import date_cell, text
from jobs.frames import dedupe, learners, one_batch_each, one_course_each
from schemas.reports import USERINFO_COLUMNS


def latest_consents(consents: DataFrame) -> DataFrame:
    """user_id, course_id and the latest consent's status and time.

    Undated rows rank below dated ones. On a tie in time anything but ACTIVE wins:
    when in doubt, no PII leaves the system.
    """
    latest = dedupe(
        consents,
        ["user_id", "course_id"],
        F.col("last_updated_on").desc_nulls_last(),
        (F.col("status") == "ACTIVE").asc_nulls_first(),
    )
    return latest.select(
        "user_id", "course_id", F.col("status").alias("consent_status"), F.col("last_updated_on").alias("consent_on")
    )


def user_name(first: str, last: str) -> Column:
    """`first last`, each part trimmed; just the one present if the other is missing; null if both are."""
    parts = [F.nullif(F.trim(F.col(c)), F.lit("")) for c in (first, last)]
    return F.nullif(F.concat_ws(" ", *parts), F.lit(""))


def transform(
    requests: DataFrame,
    courses: DataFrame,
    batches: DataFrame,
    enrolments: DataFrame,
    users: DataFrame,
    consents: DataFrame,
) -> DataFrame:
    """request_id, user_id, missing_user, dropped and `cells` in USERINFO_COLUMNS order.

    Learners without an ACTIVE latest consent stay in the frame with `dropped` set, so
    that staging counts them in the same pass; their cells are null, so their PII is
    never even staged.
    """
    profile = dedupe(users, ["user_id"]).withColumn("_known", F.lit(True))
    rows = (
        learners(requests, batches, enrolments)
        .join(one_course_each(courses).select("course_id", F.col("name").alias("course_name")), "course_id", "left")
        .join(one_batch_each(batches).select("batch_id", F.col("name").alias("batch_name")), "batch_id", "left")
        .join(latest_consents(consents), ["user_id", "course_id"], "left")
        .join(profile, "user_id", "left")
    )
    consented = F.coalesce(F.col("consent_status") == "ACTIVE", F.lit(False))
    cells = [
        text("course_id"),
        text("course_name"),
        text("batch_id"),
        text("batch_name"),
        text("user_id"),
        text(user_name("first_name", "last_name")),
        text("user_type"),
        text("user_sub_type"),
        text("state"),
        text("district"),
        text("block"),
        text("cluster"),
        text("school_id"),
        text("school_name"),
        text("org_name"),
        text("email"),
        text("phone"),
        F.lit("Yes"),
        date_cell("consent_on"),
    ]
    assert len(cells) == len(USERINFO_COLUMNS)
    return rows.select(
        "request_id",
        "user_id",
        F.col("_known").isNull().alias("missing_user"),
        F.when(~consented, F.lit("consents.not_given")).alias("dropped"),
        F.when(consented, F.array(*cells)).alias("cells"),
    )


def load(rows: DataFrame, out: str, manifest: Manifest, errors: dict) -> dict:
    missing = {"users.missing": F.col("missing_user")}
    return common.load_report(
        "userinfo", rows, out, manifest, errors, lambda r: list(USERINFO_COLUMNS), ["user_id"], missing
    )


def finish(frames: dict[str, DataFrame], out: str, manifest: Manifest, errors: dict) -> dict:
    return load(transform(**frames), out, manifest, errors)


JOB = common.ReportJob(tables=("courses", "batches", "enrolments", "users", "consents"), finish=finish)
