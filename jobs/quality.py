"""Data-quality checks of a report job, with Great Expectations as the engine.

The rules: docs/lake.md, "Dirty rows".

Two kinds of finding, and only one of them stops a report:
- Row-level: the lake suites find rows that break an expectation (a null key, a value
  outside its enumeration, a score above its maximum, a duplicate). The report's
  formulas drop or pass them through, and each request counts the ones among the rows
  its report is built from, by the expectation's note code; its report is built.
- Blocking: the report suite guards what would make a report untruthful (its columns,
  one row per learner, cell formats, no PII in a non-PII report). A request whose rows
  fail it fails; the other requests are untouched.
Unreadable tables and wrong columns block too, earlier: see `jobs.frames.read_table`.
The job log lists every failing expectation with its count and example rows.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import reduce

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from coursedash.manifest import Manifest
from coursedash.spark import described
from jobs.frames import FRAMES, LakeSchemaError, lake_file_error, learners
from schemas.expectations import REQUEST, header_problems, validate_lake, validate_report

log = logging.getLogger("coursedash.jobs.quality")

REPORT_FAILED = "the report failed its final checks ({checks})"


def _scoped(key: str, df: DataFrame, requests: DataFrame, learner_rows: DataFrame) -> DataFrame:
    """The rows of an input frame each request's report is built from, with its request_id."""
    if key == "users":
        return df.join(learner_rows.select(REQUEST, "user_id"), "user_id")
    if key == "consents":
        return df.join(learner_rows.select(REQUEST, "user_id", "course_id"), ["user_id", "course_id"])
    column = FRAMES[key][1]
    assert column is not None  # only users has none, and it was joined above
    return df.join(F.broadcast(requests.select(REQUEST, column)), column)


def lake_findings(
    frames: dict[str, DataFrame], readers: dict[str, set[str]], lake_uri: str
) -> tuple[dict[str, dict[str, int]], dict[str, LakeSchemaError]]:
    """Per request, the rows of its inputs that break a lake expectation, by note code; and the frames found unreadable.

    Each input frame is validated once for the whole night, joined to the requests of
    the report types that read it (`readers`: frame name -> report types), so that a
    request counts only the rows of the tables its own report reads. A suite is the
    first full read of its table: a corrupt file found there makes the frame
    unreadable, for its readers to fail by, and the other suites go on.
    """
    requests = frames["requests"]
    # Only what the scoping joins read is kept: the enrolments' maps and arrays would
    # make this cache several times larger and slower to build.
    learner_rows = (
        learners(requests, frames["batches"], frames["enrolments"])
        .select(REQUEST, "report_type", "user_id", "course_id")
        .persist()
    )
    counts: dict[str, dict[str, int]] = {}
    unreadable: dict[str, LakeSchemaError] = {}
    for key, df in frames.items():
        types = sorted(readers.get(key, ()))
        if key not in FRAMES or not types:
            continue
        table = FRAMES[key][0]
        of_readers = F.col("report_type").isin(types)
        scoped = _scoped(key, df, requests.filter(of_readers), learner_rows.filter(of_readers))
        try:
            with described(df.sparkSession, f"lake suite of {table}"):
                outcome = validate_lake(table, scoped, by=REQUEST)
        except Exception as e:
            problem = lake_file_error(e, lake_uri)
            if problem is None:
                raise
            log.error("lake table %s cannot be used: %s", table, problem.detail)
            unreadable[key] = problem
            continue
        log.info("lake table %s: %d row(s) checked for the %s reports", table, outcome.rows, ", ".join(types))
        if outcome.success:
            continue
        log.warning(
            "lake table %s: rows that break its expectations (counted per request; the reports "
            "drop or pass them through and say so in their data notes):\n%s",
            table,
            outcome.describe(),
        )
        for failure in outcome.failures:
            for request_id, n in (failure.by_scope or {}).items():
                if failure.note:
                    mine = counts.setdefault(request_id, {})
                    mine[failure.note] = mine.get(failure.note, 0) + n
    learner_rows.unpersist()
    return counts, unreadable


def _as_columns(rows: DataFrame, header: list[str]) -> DataFrame:
    return rows.select(REQUEST, *[F.col("cells")[i].alias(name) for i, name in enumerate(header)])


def check_report(
    report_type: str, rows: DataFrame, manifest: Manifest, header_of: Callable[[dict], list[str]], pending: dict
) -> dict[str, dict]:
    """Errors for the requests whose report rows fail the report suite.

    Every request's rows are validated in one pass. Progress reports of different
    courses have different assessment columns: the pass sees the columns of all of
    them, empty in the rows of a course without one (an empty score cell is valid),
    and a header that breaks docs/reports.md fails its own requests only. A failure by
    row fails the requests whose rows broke it; one of the whole frame (its columns)
    fails them all.
    """
    if "dropped" in rows.columns:
        rows = rows.filter(F.col("dropped").isNull())
    groups: dict[tuple, list[str]] = {}
    for request in manifest.requests:
        if request["request_id"] not in pending:
            groups.setdefault(tuple(header_of(request)), []).append(request["request_id"])
    failing: dict[str, list[str]] = {}
    checked = []
    for header, ids in groups.items():
        problems = header_problems(report_type, list(header))
        for request_id in ids if problems else ():
            failing[request_id] = [p.description for p in problems]
        if not problems:
            checked.append((header, ids))
    if checked:
        # unionByName puts the columns a frame adds after the earlier frames' ones: the
        # fixed columns first, then every course's assessment columns.
        frame = reduce(
            lambda a, b: a.unionByName(b, allowMissingColumns=True),
            [_as_columns(rows.filter(F.col(REQUEST).isin(ids)), list(header)) for header, ids in checked],
        )
        outcome = validate_report(report_type, frame.columns[1:], frame)
        if not outcome.success:
            log.error("%s reports failed their quality checks:\n%s", report_type, outcome.describe())
        every_id = [request_id for _, ids in checked for request_id in ids]
        for failure in outcome.failures:
            for request_id in every_id if failure.by_scope is None else failure.by_scope:
                failing.setdefault(request_id, []).append(failure.description)
    errors = {}
    for request_id, checks in sorted(failing.items()):
        errors[request_id] = {"error": REPORT_FAILED.format(checks="; ".join(checks)), "transient": True}
        log.error("request %s: %s", request_id, errors[request_id]["error"])
    return errors
