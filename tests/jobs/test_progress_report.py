"""Every rule of docs/reports.md's Course Progress Exhaust on a few hand-written rows."""

import pytest

from jobs import progress_report
from tests.lakefixtures import d, frame, ts

# The module's tests share built frames (module fixtures): one worker runs them all (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("progress_report")

COURSE = "do_c1"
BATCH = "b1"


@pytest.fixture(scope="module")
def lake(spark):
    contents = [
        dict(course_id=COURSE, content_id="v1", name="Intro", is_assessment=False, is_optional=False, position=1),
        dict(course_id=COURSE, content_id="v2", name="Extra", is_assessment=False, is_optional=True, position=2),
        dict(course_id=COURSE, content_id="q1", name="Quiz", is_assessment=True, is_optional=False, position=4),
        dict(course_id=COURSE, content_id="q2", name="Quiz", is_assessment=True, is_optional=False, position=3),
        dict(course_id=COURSE, content_id="q3", name="Final", is_assessment=True, is_optional=False, position=5),
    ]
    enrol = dict(course_id=COURSE, batch_id=BATCH, active=True, enrolled_on=ts("2026-01-05 10:00:00"))
    enrolments = [
        # completed overrides content status
        dict(
            enrol,
            user_id="u1",
            completed_on=ts("2026-02-01 08:30:00"),
            content_status={"v1": 0},
            issued_certificates=["cert-1"],
        ),
        # 1 of 4 required done (v2 optional ignored): floor(25 + 0.5) = 25
        dict(enrol, user_id="u2", content_status={"v1": 2, "v2": 2, "q1": 1}, issued_certificates=[]),
        # the same learner twice: one row only
        dict(enrol, user_id="u2", content_status={"v1": 2, "v2": 2, "q1": 1}, issued_certificates=[]),
        # missing from users: kept, empty profile
        dict(enrol, user_id="u3", content_status={"v1": 2, "q1": 2, "q2": 2}),
        # inactive: not in the report
        dict(enrol, user_id="u4", active=False, content_status={"v1": 2}),
        # another batch: not in the report
        dict(enrol, user_id="u5", batch_id="b2", content_status={"v1": 2}),
    ]
    attempt = dict(course_id=COURSE, batch_id=BATCH)
    attempts = [
        # u2 on q1: best is 7/15; the tie at 7 goes to the later attempt (max 15 vs 20)
        dict(
            attempt,
            user_id="u2",
            content_id="q1",
            attempt_id="a1",
            total_score=5.0,
            total_max_score=15.0,
            last_attempted_on=ts("2026-01-10 00:00:00"),
        ),
        dict(
            attempt,
            user_id="u2",
            content_id="q1",
            attempt_id="a2",
            total_score=7.0,
            total_max_score=20.0,
            last_attempted_on=ts("2026-01-11 00:00:00"),
        ),
        dict(
            attempt,
            user_id="u2",
            content_id="q1",
            attempt_id="a3",
            total_score=7.0,
            total_max_score=15.0,
            last_attempted_on=ts("2026-01-12 00:00:00"),
        ),
        # u2 on q3: zero max score gives an empty cell, but counts in the total
        dict(
            attempt,
            user_id="u2",
            content_id="q3",
            attempt_id="a4",
            total_score=0.0,
            total_max_score=0.0,
            last_attempted_on=ts("2026-01-12 00:00:00"),
        ),
        # u3 on q2, twice the same row
        dict(
            attempt,
            user_id="u3",
            content_id="q2",
            attempt_id="a5",
            total_score=3.0,
            total_max_score=3.0,
            last_attempted_on=ts("2026-01-12 00:00:00"),
        ),
        dict(
            attempt,
            user_id="u3",
            content_id="q2",
            attempt_id="a5",
            total_score=3.0,
            total_max_score=3.0,
            last_attempted_on=ts("2026-01-12 00:00:00"),
        ),
        # not an assessment of the course: ignored
        dict(attempt, user_id="u3", content_id="other", attempt_id="a6", total_score=1.0, total_max_score=9.0),
    ]
    users = [
        dict(
            user_id="u1",
            first_name="Asha",
            state="Karnataka",
            district="Mysuru",
            org_name="=cmd()",
            school_id="S1",
            school_name='GHS, "North"',
            block="B",
            cluster="C",
            user_type="student",
            user_sub_type="",
            board="CBSE",
            email="asha@example.com",
            phone="+911234567890",
            status=1,
        ),
        dict(user_id="u2", first_name="प्रिया", state="Kerala", status=1),
        dict(user_id="u2", first_name="प्रिया", state="Kerala", status=1),
    ]
    return dict(
        requests=spark.createDataFrame([("r1", COURSE, BATCH)], "request_id string, course_id string, batch_id string"),
        courses=frame(spark, "courses", [dict(course_id=COURSE, name="+Maths", created_by="c")]),
        batches=frame(
            spark, "batches", [dict(batch_id=BATCH, course_id=COURSE, name="Batch 1", start_date=d("2026-01-01"))]
        ),
        contents=frame(spark, "course_contents", contents),
        enrolments=frame(spark, "enrolments", enrolments),
        attempts=frame(spark, "assessment_attempts", attempts),
        users=frame(spark, "users", users),
    )


@pytest.fixture(scope="module")
def rows(lake):
    result = progress_report.transform(**lake).orderBy("user_id").collect()
    return {r["user_id"]: r for r in result}


def cell(row, column):
    header = list(progress_report.PROGRESS_COLUMNS) + ["Quiz (q2) - Score", "Quiz (q1) - Score", "Final - Score"]
    return row["cells"][header.index(column)]


def test_one_row_per_active_learner_of_the_batch(rows):
    assert sorted(rows) == ["u1", "u2", "u3"]


def test_completion_overrides_content_status(rows):
    assert cell(rows["u1"], "Progress") == "100"
    assert cell(rows["u1"], "Completion Date") == "01/02/2026"
    assert cell(rows["u1"], "Certificate Status") == "Issued"


def test_progress_counts_required_contents_only(rows):
    # u2: v1 done of v1, q1, q2, q3 -> 25; u3: v1, q1, q2 done of 4 -> 75
    assert cell(rows["u2"], "Progress") == "25"
    assert cell(rows["u3"], "Progress") == "75"
    assert cell(rows["u2"], "Certificate Status") is None


def test_best_attempt_and_ties_go_to_the_latest(rows):
    assert cell(rows["u2"], "Quiz (q1) - Score") == "46.67"
    assert cell(rows["u2"], "Quiz (q2) - Score") is None


def test_zero_max_score_is_empty_but_counts_in_total(rows):
    assert cell(rows["u2"], "Final - Score") is None
    assert cell(rows["u2"], "Total Score") == "46.67"  # 100 * (7 + 0) / (15 + 0)
    assert cell(rows["u3"], "Total Score") == "100.00"
    assert cell(rows["u1"], "Total Score") is None


def test_missing_user_keeps_the_row_with_empty_profile(rows):
    assert rows["u3"]["missing_user"] is True
    assert cell(rows["u3"], "State") is None
    assert cell(rows["u3"], "User UUID") == "u3"
    assert rows["u1"]["missing_user"] is False


def test_text_cells_are_guarded_and_dates_formatted(rows):
    assert cell(rows["u1"], "Collection Name") == "'+Maths"
    assert cell(rows["u1"], "Org Name") == "'=cmd()"
    assert cell(rows["u1"], "School Name") == 'GHS, "North"'
    assert cell(rows["u1"], "Enrolment Date") == "05/01/2026"


def test_no_pii_reaches_the_cells(rows):
    everything = {c for r in rows.values() for c in r["cells"]}
    assert not everything & {"Asha", "प्रिया", "asha@example.com", "+911234567890", "'+911234567890"}


def test_headers_disambiguate_shared_names(lake):
    header = progress_report.headers(lake["contents"], [COURSE])[COURSE]
    assert header[len(progress_report.PROGRESS_COLUMNS) :] == [
        "Quiz (q2) - Score",
        "Quiz (q1) - Score",
        "Final - Score",
    ]


@pytest.mark.parametrize("done, expected", [(0, 0), (1, 13), (3, 38), (4, 50), (5, 63), (7, 88), (8, 100)])
def test_progress_rounds_half_up(spark, done, expected):
    """floor(100 * C / N + 0.5) with N = 8: 12.5 -> 13, 37.5 -> 38, 62.5 -> 63, 87.5 -> 88."""
    required = [f"c{i}" for i in range(8)]
    status = {cid: 2 if i < done else 1 for i, cid in enumerate(required)}
    df = spark.createDataFrame(
        [(required, status, None)], "required array<string>, status map<string,int>, completed timestamp"
    )
    [row] = df.select(progress_report.progress_percent("required", "status", "completed").alias("p")).collect()
    assert row.p == expected
