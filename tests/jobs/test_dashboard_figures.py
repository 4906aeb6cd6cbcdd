"""The dashboard's figures: each batch's learners and formulas are its Course Progress report's, aggregates only."""

import json
from collections import Counter

import pytest

from coursedash import sync
from coursedash.manifest import FIGURES_KNOWN_FILE
from coursedash.sync import FIGURE_TABLES
from jobs import dashboard_figures
from tests import figures, handlake
from tests.jobs.test_single_pass import last_execution, table_scans
from tests.lakefixtures import frame, ts, write_lake

# The module's tests share one computation of the hand lake's figures: one worker runs them all.
pytestmark = pytest.mark.xdist_group("dashboard_figures")


def computed(spark, lake, out, known: dict | None = None) -> tuple[dict, Counter]:
    """The figures the night writes for `lake`, by batch id, told the `known` fingerprints; and the tables scanned."""
    import pyarrow.parquet as pq

    out.mkdir()
    if known is not None:
        (out / FIGURES_KNOWN_FILE).write_text(json.dumps(known), encoding="utf-8")
    before = last_execution(spark)
    dashboard_figures.build(spark, str(lake), str(out))
    scans = table_scans(spark, before)
    return {b["batch_id"]: b for b in pq.read_table(out / "batches").to_pylist()}, scans


@pytest.fixture(scope="module")
def hand_figures(spark, tmp_path_factory):
    """The hand lake's figures as the first night writes them, and the lake tables the computation scanned."""
    # A short path: Spark's plan shortens a long one, and table_scans reads the table's name from its end.
    lake = write_lake(tmp_path_factory.mktemp("lake"), handlake.TABLES)
    return computed(spark, lake, tmp_path_factory.mktemp("figures") / "out")


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
            "figures_computed",
            "figures_fingerprint",
        }
        # What sync leaves as stored for a batch that was not computed: every figure.
        assert set(sync.FIGURES) == {*dashboard_figures.COUNTS, "weekly_enrolments", "average_total_score"}
        assert not any(learner in str(batch) for learner in learners), batch


def test_a_first_night_reads_the_small_tables_once_and_the_others_twice(hand_figures):
    batches, scans = hand_figures
    assert all(b["figures_computed"] for b in batches.values())
    # Once for the fingerprints, once for the figures; courses and batches are kept after one read.
    twice = ("course_contents", "enrolments", "assessment_attempts")
    assert scans == Counter({table: 2 if table in twice else 1 for table in FIGURE_TABLES})


def test_batches_whose_lake_rows_did_not_change_keep_their_figures_and_each_table_is_read_once(
    spark, hand_figures, tmp_path_factory
):
    first, _ = hand_figures
    known = {b: row["figures_fingerprint"] for b, row in first.items()}
    # The same rows laid out otherwise (reversed, two files, partitioned by batch) are the same rows.
    lake = write_lake(tmp_path_factory.mktemp("lake"), handlake.TABLES, split=True)  # short: see hand_figures
    batches, scans = computed(spark, lake, tmp_path_factory.mktemp("figures") / "out", known)
    assert {b: row["figures_fingerprint"] for b, row in batches.items()} == known
    assert not any(row["figures_computed"] for row in batches.values())
    for row in batches.values():  # the dashboard keeps its own: none are given
        assert all(row[name] is None for name in (*dashboard_figures.COUNTS, "weekly_enrolments"))
    assert batches["b1"]["name"] == first["b1"]["name"]  # the batch's own columns always are
    assert scans == Counter({table: 1 for table in FIGURE_TABLES})


def test_only_the_batches_whose_lake_rows_changed_are_computed_as_from_scratch(spark, hand_figures, tmp_path_factory):
    first, _ = hand_figures
    tables = {**handlake.TABLES}
    l2 = next(r for r in tables["enrolments"] if r["user_id"] == "L2")
    video = next(r for r in tables["course_contents"] if r["content_type"] != "QuestionSet")
    tables["enrolments"] = [*tables["enrolments"], dict(l2, completed_on=ts("2026-02-02 10:00:00"))]  # b1
    tables["course_contents"] = [*tables["course_contents"], dict(video, course_id="c2")]  # b9's course
    lake = write_lake(tmp_path_factory.mktemp("lake"), tables)
    out = tmp_path_factory.mktemp("figures")

    known = {b: row["figures_fingerprint"] for b, row in first.items()}
    batches, _ = computed(spark, lake, out / "tonight", known)
    assert {b for b, row in batches.items() if row["figures_computed"]} == {"b1", "b9"}
    assert batches["b2"]["figures_fingerprint"] == known["b2"]

    scratch, _ = computed(spark, lake, out / "scratch")
    for batch in ("b1", "b9"):
        assert batches[batch] == scratch[batch]
    assert figures.as_shown(batches["b1"])["completed_count"] == 2  # L2's latest enrolment: completed
    assert batches["b1"]["figures_fingerprint"] != known["b1"]


def test_a_value_moved_to_the_next_column_changes_the_fingerprint(spark):
    """xxhash64 skips a null: without a mark for it, (X, null) and (null, X) would hash alike."""

    def fingerprint(**scores):
        attempt = dict(user_id="u", course_id="c", batch_id="w", content_id="q", attempt_id="a", **scores)
        [row] = dashboard_figures.fingerprints(
            courses=frame(spark, "courses", [dict(course_id="c")]),
            batches=frame(spark, "batches", [dict(batch_id="w", course_id="c")]),
            contents=frame(spark, "course_contents", []),
            enrolments=frame(spark, "enrolments", []),
            attempts=frame(spark, "assessment_attempts", [attempt]),
        ).collect()
        return row["figures_fingerprint"]

    assert fingerprint(total_score=5.0) != fingerprint(total_max_score=5.0)
    assert fingerprint(total_score=5.0) == fingerprint(total_score=5.0)
