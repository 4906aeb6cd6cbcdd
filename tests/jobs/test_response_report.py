"""Every rule of docs/reports.md's Question Set Report on a few hand-written rows."""

import inspect

import pytest

from coursedash.manifest import Manifest, read_summary
from coursedash.packaging import write_csv
from jobs import night, response_report
from schemas.reports import RESPONSE_COLUMNS
from tests.lakefixtures import d, frame, ts

# The module's tests share built frames (module fixtures): one worker runs them all (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("response_report")

COURSE = "do_c1"
BATCH = "b1"
# JSON as the lake keeps it: commas, quotes and a newline inside one cell.
OPTIONS = '[{"index": 0, "text": "a, b"},\n {"index": 1, "text": "say \\"hi\\""}]'


def response(user_id, content_id, attempt_id, question_id, assessed_on="2026-01-20 00:00:00", **values):
    return dict(
        user_id=user_id,
        course_id=COURSE,
        batch_id=BATCH,
        content_id=content_id,
        attempt_id=attempt_id,
        question_id=question_id,
        assessed_on=ts(assessed_on),
        **values,
    )


def attempt(user_id, content_id, attempt_id, when):
    return dict(
        user_id=user_id,
        course_id=COURSE,
        batch_id=BATCH,
        content_id=content_id,
        attempt_id=attempt_id,
        last_attempted_on=ts(when),
        total_score=1.0,
        total_max_score=1.0,
    )


@pytest.fixture(scope="module")
def lake(spark):
    contents = [
        # position order (qs_z before qs_a) is not content_id order
        dict(course_id=COURSE, content_id="qs_z", name='Warm-up, "easy"', is_assessment=True, position=1),
        dict(course_id=COURSE, content_id="qs_a", name="=Sum", is_assessment=True, position=2),
        dict(course_id=COURSE, content_id="v1", name="Video", is_assessment=False, position=0),
    ]
    enrol = dict(course_id=COURSE, batch_id=BATCH, active=True, enrolled_on=ts("2026-01-05 10:00:00"))
    enrolments = [
        dict(enrol, user_id="u1"),
        dict(enrol, user_id="u1"),  # enrolled twice: still one learner, no doubled rows
        dict(enrol, user_id="U2"),
        dict(enrol, user_id="u3", active=False),
    ]
    attempts = [
        # a1 twice: the latest wins
        attempt("u1", "qs_a", "a1", "2026-01-10 09:00:00"),
        attempt("u1", "qs_a", "a1", "2026-01-11 10:30:00"),
        attempt("u1", "qs_z", "a2", "2026-01-09 08:00:00"),
        attempt("U2", "qs_z", "a5", "2026-01-12 07:05:09"),
        attempt("u1", "qs_gone", "a9", "2026-01-13 00:00:00"),
        # u1's a3 on qs_a is missing: empty Attempted On
    ]
    responses = [
        response(
            "u1",
            "qs_a",
            "a1",
            "q2",
            "2026-01-11 10:31:00",
            question_type="mcq",
            duration_seconds=0.0,
            score=1.0,
            max_score=1.0,
            options="[]",
            response='"b"',
        ),
        # an earlier assessment of the same question: resolved away
        response(
            "u1",
            "qs_a",
            "a1",
            "q2",
            "2026-01-10 09:01:00",
            question_type="mcq",
            duration_seconds=5.0,
            score=0.0,
            max_score=1.0,
            options="[]",
            response='"a"',
        ),
        response(
            "u1",
            "qs_a",
            "a1",
            "q1",
            question_type="mmcq",
            question_title="Title",
            duration_seconds=12960000.5,
            score=0.0004,
            max_score=1.0,
            options=OPTIONS,
            response='{"chosen": [0, 1]}',
        ),
        response("u1", "qs_a", "a3", "q1", question_type="mcq"),
        response(
            "u1",
            "qs_z",
            "a2",
            "q1",
            question_type="mcq",
            question_title="=SUM(A1)",
            question_description="Line one\nline two",
            duration_seconds=0.5,
            max_score=10.0,
            options="[]",
            response="-1",
        ),
        # a content the course no longer lists: kept, untitled, after the known ones
        response("u1", "qs_gone", "a9", "q1", question_type="mcq"),
        response(
            "U2",
            "qs_z",
            "a5",
            "q1",
            question_type="mcq",
            question_title="Pick one",
            duration_seconds=30.0,
            score=1.0,
            max_score=1.0,
            options='["x"]',
            response='["x"]',
        ),
        # no active enrolment: not reported, counted (u4's duplicate counts as a duplicate)
        response("u3", "qs_a", "a7", "q1"),
        response("u4", "qs_a", "a8", "q1", "2026-01-20 00:00:00"),
        response("u4", "qs_a", "a8", "q1", "2026-01-21 00:00:00"),
        # another batch: not even read for this request
        dict(response("u1", "qs_a", "a1", "q1"), batch_id="b2"),
    ]
    return dict(
        requests=spark.createDataFrame([("r1", COURSE, BATCH)], "request_id string, course_id string, batch_id string"),
        courses=frame(spark, "courses", [dict(course_id=COURSE, name="Maths")]),
        batches=frame(
            spark, "batches", [dict(batch_id=BATCH, course_id=COURSE, name="Batch 1", start_date=d("2026-01-01"))]
        ),
        contents=frame(spark, "course_contents", contents),
        enrolments=frame(spark, "enrolments", enrolments),
        attempts=frame(spark, "assessment_attempts", attempts),
        responses=frame(spark, "question_responses", responses),
    )


@pytest.fixture(scope="module")
def transformed(lake):
    return response_report.transform(**lake).orderBy(*response_report.SORT_BY).collect()


@pytest.fixture(scope="module")
def rows(transformed):
    return [r for r in transformed if r["dropped"] is None]


def by_key(rows):
    return {(r["user_id"], r["content_id"], r["attempt_id"], r["question_id"]): r for r in rows}


def cell(row, column):
    return row["cells"][RESPONSE_COLUMNS.index(column)]


def test_sorted_by_user_then_position_attempt_question(rows):
    assert [(r["user_id"], r["content_id"], r["attempt_id"], r["question_id"]) for r in rows] == [
        ("U2", "qs_z", "a5", "q1"),  # "U" < "u" in byte order
        ("u1", "qs_z", "a2", "q1"),
        ("u1", "qs_a", "a1", "q1"),
        ("u1", "qs_a", "a1", "q2"),
        ("u1", "qs_a", "a3", "q1"),
        ("u1", "qs_gone", "a9", "q1"),
    ]


def test_duplicate_responses_resolved_by_latest_assessed_on(rows, transformed):
    latest = by_key(rows)[("u1", "qs_a", "a1", "q2")]
    assert cell(latest, "Question Score") == "1"
    assert cell(latest, "Question Response") == '"b"'
    # The repeat is gone before any row is kept or dropped (the lake suite counts it).
    dropped = sorted((r["user_id"], r["dropped"]) for r in transformed if r["dropped"] is not None)
    assert dropped == [("u3", "responses.not_enrolled"), ("u4", "responses.not_enrolled")]


def test_attempted_on_is_the_latest_attempt_row_or_empty(rows):
    keyed = by_key(rows)
    assert cell(keyed[("u1", "qs_a", "a1", "q1")], "Attempted On") == "11/01/2026 10:30:00"
    assert cell(keyed[("U2", "qs_z", "a5", "q1")], "Attempted On") == "12/01/2026 07:05:09"
    assert cell(keyed[("u1", "qs_a", "a3", "q1")], "Attempted On") is None


def test_questionset_title_from_course_contents(rows):
    keyed = by_key(rows)
    assert cell(keyed[("u1", "qs_z", "a2", "q1")], "QuestionSet Title") == 'Warm-up, "easy"'
    assert cell(keyed[("u1", "qs_a", "a1", "q1")], "QuestionSet Title") == "'=Sum"
    assert cell(keyed[("u1", "qs_gone", "a9", "q1")], "QuestionSet Title") is None


def test_numbers_are_plain_decimals(rows):
    row = by_key(rows)[("u1", "qs_a", "a1", "q1")]
    assert [cell(row, c) for c in ("Question Duration", "Question Score", "Question Max Score")] == [
        "12960000.5",
        "0.0004",
        "1",
    ]
    row = by_key(rows)[("u1", "qs_z", "a2", "q1")]
    assert [cell(row, c) for c in ("Question Duration", "Question Score", "Question Max Score")] == ["0.5", None, "10"]


def test_json_is_kept_as_is_and_text_is_guarded(rows):
    keyed = by_key(rows)
    assert cell(keyed[("u1", "qs_a", "a1", "q1")], "Question Options") == OPTIONS
    assert cell(keyed[("u1", "qs_z", "a2", "q1")], "Question Response") == "'-1"
    assert cell(keyed[("u1", "qs_z", "a2", "q1")], "Question Title") == "'=SUM(A1)"


def test_no_pii_can_reach_the_report():
    assert "users" not in inspect.signature(response_report.transform).parameters


EXPECTED_CSV = "\ufeff" + (
    "Collection Id,Collection Name,Batch Id,Batch Name,User UUID,QuestionSet Id,QuestionSet Title,Attempt Id,"
    "Attempted On,Question Id,Question Type,Question Title,Question Description,Question Duration,"
    "Question Score,Question Max Score,Question Options,Question Response\r\n"
    'do_c1,Maths,b1,Batch 1,U2,qs_z,"Warm-up, ""easy""",a5,12/01/2026 07:05:09,q1,mcq,Pick one,,30,1,1,'
    '"[""x""]","[""x""]"\r\n'
    'do_c1,Maths,b1,Batch 1,u1,qs_z,"Warm-up, ""easy""",a2,09/01/2026 08:00:00,q1,mcq,\'=SUM(A1),'
    '"Line one\nline two",0.5,,10,[],\'-1\r\n'
    "do_c1,Maths,b1,Batch 1,u1,qs_a,'=Sum,a1,11/01/2026 10:30:00,q1,mmcq,Title,,12960000.5,0.0004,1,"
    '"[{""index"": 0, ""text"": ""a, b""},\n {""index"": 1, ""text"": ""say \\""hi\\""""}]",'
    '"{""chosen"": [0, 1]}"\r\n'
    'do_c1,Maths,b1,Batch 1,u1,qs_a,\'=Sum,a1,11/01/2026 10:30:00,q2,mcq,,,0,1,1,[],"""b"""\r\n'
    "do_c1,Maths,b1,Batch 1,u1,qs_a,'=Sum,a3,,q1,mcq,,,,,,,\r\n"
    "do_c1,Maths,b1,Batch 1,u1,qs_gone,,a9,13/01/2026 00:00:00,q1,mcq,,,,,,,\r\n"
)


def test_csv_of_one_request_as_written(lake, tmp_path):
    rows = (
        response_report.transform(**lake)
        .filter("request_id = 'r1' AND dropped IS NULL")
        .orderBy(*response_report.SORT_BY)
        .collect()
    )
    path = tmp_path / "r1.csv"
    write_csv(path, RESPONSE_COLUMNS, (r["cells"] for r in rows))
    assert path.read_bytes().decode("utf-8") == EXPECTED_CSV


def test_the_night_stages_sorted_rows_and_the_summary(spark, tmp_path):
    import pyarrow.parquet as pq

    from tests.lakefixtures import write_lake

    enrol = dict(course_id=COURSE, batch_id=BATCH, active=True, enrolled_on=ts("2026-01-05 10:00:00"))
    answer = dict(question_type="mcq", score=1.0, max_score=2.0, options="[]", response="[0]")
    write_lake(
        tmp_path / "lake",
        {
            "courses": [dict(course_id=COURSE, name="Maths")],
            "batches": [
                dict(batch_id=BATCH, course_id=COURSE, name="One"),
                dict(batch_id="b2", course_id=COURSE, name="Two"),
            ],
            "course_contents": [
                dict(course_id=COURSE, content_id="qs_z", name="First", is_assessment=True, position=1),
                dict(course_id=COURSE, content_id="qs_a", name="Second", is_assessment=True, position=2),
            ],
            "enrolments": [dict(enrol, user_id="L1"), dict(enrol, user_id="L2")],
            "assessment_attempts": [attempt("L1", "qs_a", "a1", "2026-01-10 09:00:00")],
            "question_responses": [
                response("L2", "qs_a", "a3", "q1", **answer),
                response("L1", "qs_a", "a1", "q2", **answer),
                response("L1", "qs_a", "a1", "q1", **answer),
                response("L1", "qs_a", "a1", "q1", "2026-01-19 00:00:00", **answer),
                response("L1", "qs_z", "a2", "q1", **answer),
                response("L9", "qs_z", "a4", "q1", **answer),
            ],
            # in the lake, but never read by this job
            "users": [dict(user_id="L1", first_name="Asha", email="asha@example.org", phone="+919812345678")],
        },
    )
    manifest = tmp_path / "response.manifest.json"
    Manifest(
        "response",
        "2026-02-01",
        str(tmp_path / "lake"),
        [
            {"request_id": "r1", "course_id": COURSE, "batch_id": BATCH},
            {"request_id": "r2", "course_id": COURSE, "batch_id": "b2"},
            {"request_id": "r_gone", "course_id": COURSE, "batch_id": "b_gone"},
        ],
    ).save(manifest)
    out = tmp_path / "out"

    night.build(spark, [(Manifest.load(manifest), str(out))])  # the DAG's tests run it with spark-submit

    header = list(RESPONSE_COLUMNS)
    summary = read_summary(out)
    # The files of the tables it read, as listed before reading: publishing checks them unchanged.
    assert sorted(summary.pop("lake")["files"]) == [
        "assessment_attempts",
        "batches",
        "course_contents",
        "courses",
        "enrolments",
        "question_responses",
    ]
    assert summary == {
        "report_type": "response",
        "requests": {
            # L1's answer to q1 of a1 twice (both rows counted by the lake suite), L9 not enrolled.
            "r1": {"header": header, "rows": 4, "left_out": {"responses.duplicate": 2, "responses.not_enrolled": 1}},
            "r2": {"header": header, "rows": 0, "left_out": {}},
            "r_gone": {
                "error": "batch b_gone is no longer in the learner data, so no report can be built",
                "transient": False,
            },
        },
    }
    [staged] = (out / "rows" / "request_id=r1").glob("*.parquet")
    head = [COURSE, "Maths", BATCH, "One"]
    tail = ["mcq", None, None, None, "1", "2", "[]", "[0]"]
    assert pq.read_table(staged).column("cells").to_pylist() == [
        head + ["L1", "qs_z", "First", "a2", None, "q1"] + tail,
        head + ["L1", "qs_a", "Second", "a1", "10/01/2026 09:00:00", "q1"] + tail,
        head + ["L1", "qs_a", "Second", "a1", "10/01/2026 09:00:00", "q2"] + tail,
        head + ["L2", "qs_a", "Second", "a3", None, "q1"] + tail,
    ]
