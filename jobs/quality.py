"""Data-quality gates of a report job: the night's lake inputs, and each report before staging.

A failing suite never fails the night: it fails only the requests built on the data
that failed, as transient (the next run retries them once the data is fixed), and
the job log lists the failing expectations with example rows for the engineers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coursedash.manifest import Manifest
from jobs.common import FRAMES
from schemas.expectations import validate_lake, validate_report

log = logging.getLogger("coursedash.jobs.quality")

INPUT_FAILED = "the learner data for this batch failed quality checks; it will be retried"
REPORT_FAILED = "the report for this batch failed quality checks; it will be retried"


def _scope(key: str, df: DataFrame, request: dict, frames: dict[str, DataFrame]) -> tuple[tuple, DataFrame]:
    """The part of a frame one request is built from, and a key to share it between requests."""
    column = FRAMES[key][1]
    if column:
        return (column, request[column]), df.filter(F.col(column) == request[column])
    # users: the learners of the request's batch
    learners = frames["enrolments"].filter(F.col("batch_id") == request["batch_id"]).select("user_id")
    return ("batch_id", request["batch_id"]), df.join(learners, "user_id", "left_semi")


def check_inputs(frames: dict[str, DataFrame], manifest: Manifest, pending: dict) -> dict[str, dict]:
    """Errors for the requests whose input rows fail their table's suite.

    One validation per table for the whole night; only when a table fails is it
    validated again per batch (or course), to fail just the requests it feeds.
    """
    errors = {}
    for key, df in frames.items():
        if key not in FRAMES:
            continue
        outcome = validate_lake(FRAMES[key][0], df)
        if outcome.success:
            continue
        log.error("lake table %s failed its quality checks:\n%s", FRAMES[key][0], outcome.describe())
        verdicts: dict[tuple, bool] = {}
        for request in manifest.requests:
            if request["request_id"] in pending or request["request_id"] in errors:
                continue
            scope, part = _scope(key, df, request, frames)
            if scope not in verdicts:
                verdicts[scope] = validate_lake(FRAMES[key][0], part).success
            if not verdicts[scope]:
                errors[request["request_id"]] = {"error": INPUT_FAILED, "transient": True}
                log.error("request %s: %s (%s %s)", request["request_id"], INPUT_FAILED, *scope)
    return errors


def _as_columns(rows: DataFrame, header: list[str]) -> DataFrame:
    return rows.select(*[F.col("cells")[i].alias(name) for i, name in enumerate(header)])


def check_report(
    report_type: str, rows: DataFrame, manifest: Manifest, header_of: Callable[[dict], list[str]], pending: dict
) -> dict[str, dict]:
    """Errors for the requests whose report rows fail the report suite.

    Requests sharing a header (all of them, but for progress reports of different
    courses) are validated together; per request only when that group fails.
    """
    if "dropped" in rows.columns:
        rows = rows.filter(F.col("dropped").isNull())
    groups: dict[tuple, list[dict]] = {}
    for request in manifest.requests:
        if request["request_id"] not in pending:
            groups.setdefault(tuple(header_of(request)), []).append(request)
    errors = {}
    for header, requests in groups.items():
        ids = [r["request_id"] for r in requests]
        outcome = validate_report(report_type, list(header), _as_columns(rows.filter(F.col("request_id").isin(ids)), list(header)))
        if outcome.success:
            continue
        log.error("%s reports failed their quality checks:\n%s", report_type, outcome.describe())
        for request_id in ids:
            mine = _as_columns(rows.filter(F.col("request_id") == request_id), list(header))
            if len(ids) == 1 or not validate_report(report_type, list(header), mine).success:
                errors[request_id] = {"error": REPORT_FAILED, "transient": True}
                log.error("request %s: %s", request_id, REPORT_FAILED)
    return errors
