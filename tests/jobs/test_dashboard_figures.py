"""The dashboard's figures: each batch's learners and formulas are its Course Progress report's, aggregates only."""

from collections import Counter

import pytest

from coursedash.sync import FIGURE_TABLES
from jobs import dashboard_figures
from tests import figures, handlake
from tests.jobs.test_single_pass import last_execution, table_scans
from tests.lakefixtures import d, frame, ts, write_lake

# The module's tests share one computation of the hand lake's figures: one worker runs them all.
pytestmark = pytest.mark.xdist_group("dashboard_figures")


@pytest.fixture(scope="module")
def hand_figures(spark, tmp_path_factory):
    """The hand lake's figures as the night writes them, and the lake tables each computation scanned."""
    import pyarrow.parquet as pq

    # A short path: Spark's plan shortens a long one, and table_scans reads the table's name from its end.
    lake = write_lake(tmp_path_factory.mktemp("lake"), handlake.TABLES)
    out = tmp_path_factory.mktemp("figures")
    before = last_execution(spark)
    dashboard_figures.build(spark, str(lake), str(out))
    scans = table_scans(spark, before)
    return {b["batch_id"]: b for b in pq.read_table(out / "batches").to_pylist()}, scans


def test_each_batch_has_the_figures_of_its_progress_report(hand_figures):
    batches, _ = hand_figures
    b1 = figures.as_shown(batches["b1"])
    assert b1 == figures.from_report(figures.report_rows(handlake.B1_PROGRESS_CSV))
    # Written out, so that the count above cannot agree with itself by accident: L1 100, L2 33, L3 67;
    # L1 is certified; all three enrolled in the week of Monday 5 January; Total Scores 75.00 and 83.33.
    assert b1 == {
        "enrolment_count": 3,
        "completed_count": 1,
        "progress_bands": {"not_started": 0, "started": 1, "past_half": 1, "completed": 1},
        "certificates_issued": 1,
        "weekly_enrolments": [{"week_start": "2026-01-05", "count": 3}],
        "average_total_score": 79.17,  # 79.165, half up
    }
    empty = figures.from_report(figures.report_rows(handlake.B2_PROGRESS_CSV))
    assert figures.as_shown(batches["b2"]) == figures.as_shown(batches["b9"]) == empty
    assert empty["average_total_score"] is None and empty["weekly_enrolments"] == []


def test_the_figures_carry_no_learner(hand_figures):
    batches, _ = hand_figures
    learners = {r["user_id"] for r in handlake.TABLES["enrolments"]}
    for batch in batches.values():
        assert set(batch) == {
            "batch_id",
            "course_id",
            "name",
            "start_date",
            "end_date",
            "created_by",
            "mentors",
            *dashboard_figures.COUNTS,
            "weekly_enrolments",
            "average_total_score",
        }
        assert not any(learner in str(batch) for learner in learners), batch


def test_each_table_is_read_once(hand_figures):
    _, scans = hand_figures
    assert scans == Counter({table: 1 for table in FIGURE_TABLES})


def test_weeks_start_on_monday_in_utc_and_a_quiet_week_counts_zero(spark):
    enrol = dict(course_id="c", batch_id="w", active=True)
    enrolments = [
        dict(enrol, user_id="u1", enrolled_on=ts("2026-01-04 23:59:59")),  # a Sunday: the week of 29 December
        dict(enrol, user_id="u2", enrolled_on=ts("2026-01-05 00:00:00")),  # a Monday
        dict(enrol, user_id="u3", enrolled_on=ts("2026-01-25 12:00:00")),  # after a week of none
        dict(enrol, user_id="u4"),  # no date: counted, in no week
        dict(enrol, user_id="u5", active=False, enrolled_on=ts("2026-02-20 00:00:00")),  # not a learner of the report
    ]
    _, batches = dashboard_figures.transform(
        courses=frame(spark, "courses", [dict(course_id="c", name="C")]),
        batches=frame(spark, "batches", [dict(batch_id="w", course_id="c", start_date=d("2025-12-01"))]),
        contents=frame(spark, "course_contents", []),
        enrolments=frame(spark, "enrolments", enrolments),
        attempts=frame(spark, "assessment_attempts", []),
    )
    [row] = batches.collect()
    shown = figures.as_shown(row.asDict(recursive=True))
    assert shown["weekly_enrolments"] == [
        {"week_start": "2025-12-29", "count": 1},
        {"week_start": "2026-01-05", "count": 1},
        {"week_start": "2026-01-12", "count": 0},
        {"week_start": "2026-01-19", "count": 1},
    ]
    # No required content: Progress 0 for all four, as the report has it; no attempt, no average.
    assert shown["enrolment_count"] == shown["progress_bands"]["not_started"] == 4
    assert shown["average_total_score"] is None
