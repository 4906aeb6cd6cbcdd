"""jobs.quality.check_report: every request's report rows checked in one pass, whatever their columns."""

from pyspark.sql.types import ArrayType, StringType, StructField, StructType

from coursedash.manifest import Manifest
from jobs import quality
from schemas.reports import PROGRESS_COLUMNS
from tests.schemas.test_expectations import progress_row

# Two courses' progress reports: each course has its own assessment columns.
HEADERS = {"c1": [*PROGRESS_COLUMNS, "Quiz - Score"], "c2": [*PROGRESS_COLUMNS, "Exam - Score", "Final - Score"]}
REQUESTS = [
    {"request_id": "r1", "course_id": "c1", "batch_id": "b1"},
    {"request_id": "r2", "course_id": "c2", "batch_id": "b2"},
    {"request_id": "r3", "course_id": "c2", "batch_id": "b3"},
]


def check(spark, rows, headers=HEADERS, pending=None):
    """check_report on report rows given as (request_id, cells by column), cells in their request's header order."""
    schema = StructType([StructField("request_id", StringType()), StructField("cells", ArrayType(StringType()))])
    course = {r["request_id"]: r["course_id"] for r in REQUESTS}
    frame = spark.createDataFrame([(rid, [cells.get(c) for c in headers[course[rid]]]) for rid, cells in rows], schema)
    manifest = Manifest("progress", "2026-11-28", "unused", REQUESTS)
    return quality.check_report("progress", frame, manifest, lambda r: headers[r["course_id"]], pending or {})


ROWS = [
    ("r1", progress_row(**{"Quiz - Score": "50.00"})),
    ("r2", progress_row(**{"Exam - Score": "100.00", "Final - Score": None})),
    ("r3", progress_row(**{"Exam - Score": "1e2", "Final - Score": "7.50"})),  # not a plain number: r3 fails
]


def test_progress_reports_of_different_courses_are_checked_in_one_pass(spark, monkeypatch):
    validated = []
    real = quality.validate_report
    monkeypatch.setattr(
        quality, "validate_report", lambda kind, header, df: validated.append(header) or real(kind, header, df)
    )
    errors = check(spark, ROWS)
    assert validated == [[*PROGRESS_COLUMNS, "Quiz - Score", "Exam - Score", "Final - Score"]]
    assert errors == {
        "r3": {
            "error": "the report failed its final checks (Exam - Score must be empty or 0.00 to "
            "100.00 with two decimals)",
            "transient": True,
        }
    }


def test_a_header_not_of_the_documented_columns_fails_its_own_requests_only(spark):
    headers = {**HEADERS, "c2": [*PROGRESS_COLUMNS, "Exam"]}
    errors = check(spark, [("r1", progress_row(**{"Quiz - Score": "50.00"})), ("r2", progress_row(Exam="1"))], headers)
    assert sorted(errors) == ["r2", "r3"]
    assert "every column after the fixed ones must be an '<assessment name> - Score' column" in errors["r2"]["error"]


def test_a_request_already_failed_is_not_checked_again(spark):
    assert check(spark, ROWS, pending={"r3": {"error": "gone"}}) == {}
