"""The data-quality suites on hand-written lake frames and report frames."""

import pytest
from pyspark.sql.types import StringType, StructField, StructType

from schemas import expectations
from schemas.expectations import validate_lake, validate_report
from schemas.lake import TABLES
from schemas.reports import PROGRESS_COLUMNS, RESPONSE_COLUMNS, USERINFO_COLUMNS
from tests.lakefixtures import d, frame, ts

CLEAN = {
    "courses": [
        dict(
            course_id="do_c1",
            name="Maths",
            channel="org1",
            created_by="creator",
            status="Live",
            user_consent_required=True,
            created_on=ts("2026-01-01 00:00:00"),
        ),
        dict(course_id="do_c2", name="Draft", status=None),
    ],
    "course_contents": [
        dict(
            course_id="do_c1",
            content_id="q1",
            name="Quiz",
            content_type="QuestionSet",
            is_assessment=True,
            is_optional=False,
            position=1,
        )
    ],
    "batches": [
        dict(
            batch_id="b1",
            course_id="do_c1",
            name="B1",
            start_date=d("2026-01-01"),
            end_date=None,
            created_by="creator",
            mentors=["m1"],
            created_on=ts("2026-01-01 00:00:00"),
        )
    ],
    "enrolments": [
        dict(
            user_id="u1",
            course_id="do_c1",
            batch_id="b1",
            enrolled_on=ts("2026-01-02 00:00:00"),
            active=True,
            completed_on=None,
            content_status={"q1": 2},
            issued_certificates=[],
        )
    ],
    "assessment_attempts": [
        dict(
            user_id="u1",
            course_id="do_c1",
            batch_id="b1",
            content_id="q1",
            attempt_id="a1",
            last_attempted_on=ts("2026-01-03 00:00:00"),
            total_score=5.0,
            total_max_score=5.0,
        ),
        # a score with no max (and the reverse) is not compared
        dict(
            user_id="u1",
            course_id="do_c1",
            batch_id="b1",
            content_id="q1",
            attempt_id="a2",
            total_score=3.0,
            total_max_score=None,
        ),
    ],
    "question_responses": [
        dict(
            user_id="u1",
            course_id="do_c1",
            batch_id="b1",
            content_id="q1",
            attempt_id="a1",
            question_id="qq1",
            score=-1.0,
            max_score=2.0,
        ),  # negative marking is allowed
        dict(
            user_id="u1",
            course_id="do_c1",
            batch_id="b1",
            content_id="q1",
            attempt_id="a1",
            question_id="qq2",
            score=2.0,
            max_score=2.0,
        ),
    ],
    "users": [
        dict(user_id="u1", first_name="Asha", email="asha@example.org", status=1),
        dict(user_id="u2", status=None),
    ],
    "user_consents": [
        dict(user_id="u1", course_id="do_c1", status="ACTIVE", last_updated_on=ts("2026-01-02 00:00:00")),
        dict(user_id="u1", course_id="do_c1", status="REVOKED"),
    ],
}


def failures_by_column(outcome):
    return {f.column: f for f in outcome.failures}


# --- the lake -------------------------------------------------------------------------


def test_every_lake_table_has_a_clean_example():
    assert set(CLEAN) == set(TABLES)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_clean_lake_table_passes(spark, table):
    outcome = validate_lake(table, frame(spark, table, CLEAN[table]))
    assert (outcome.name, outcome.success, outcome.failures) == (f"lake.{table}", True, [])


def test_null_key_fails_naming_the_column_and_the_row(spark):
    rows = CLEAN["enrolments"] + [dict(CLEAN["enrolments"][0], user_id=None, batch_id="b7")]
    outcome = validate_lake("enrolments", frame(spark, "enrolments", rows))
    assert not outcome.success
    [failure] = outcome.failures
    assert (failure.expectation, failure.column, failure.unexpected_count) == (
        "expect_column_values_to_not_be_null",
        "user_id",
        1,
    )
    assert failure.description == "user_id must not be null"
    assert failure.examples == [{"user_id": None, "batch_id": "b7"}]


def test_score_above_max_fails(spark):
    bad = dict(CLEAN["assessment_attempts"][0], attempt_id="a9", total_score=6.5, total_max_score=5.0)
    rows = CLEAN["assessment_attempts"] + [bad]
    outcome = validate_lake("assessment_attempts", frame(spark, "assessment_attempts", rows))
    assert [(f.expectation, f.column, f.unexpected_count) for f in outcome.failures] == [
        ("expect_column_values_to_be_in_set", "total_score, total_max_score", 1)
    ]
    assert outcome.failures[0].examples == [
        {
            "user_id": "u1",
            "batch_id": "b1",
            "content_id": "q1",
            "attempt_id": "a9",
            "total_max_score": 5.0,
            "total_score": 6.5,
        }
    ]


def test_question_score_above_max_and_negative_max_fail(spark):
    base = CLEAN["question_responses"][0]
    rows = [
        dict(base, question_id="over", score=3.0, max_score=2.0),
        dict(base, question_id="neg", score=None, max_score=-1.0),
    ]
    outcome = validate_lake("question_responses", frame(spark, "question_responses", rows))
    found = failures_by_column(outcome)
    assert set(found) == {"score, max_score", "max_score"}
    assert found["score, max_score"].examples[0]["question_id"] == "over"
    assert found["max_score"].examples[0]["question_id"] == "neg"


def test_bad_consent_status_fails(spark):
    rows = CLEAN["user_consents"] + [dict(user_id="u2", course_id="do_c1", status="active")]
    outcome = validate_lake("user_consents", frame(spark, "user_consents", rows))
    [failure] = outcome.failures
    assert (failure.expectation, failure.column, failure.unexpected_count) == (
        "expect_column_values_to_be_in_set",
        "status",
        1,
    )
    assert failure.examples == [{"user_id": "u2", "course_id": "do_c1", "status": "active"}]


def test_unknown_user_status_and_course_status_fail(spark):
    users = [*CLEAN["users"], dict(user_id="u3", status=7)]
    courses = [*CLEAN["courses"], dict(course_id="do_c3", status="live")]
    found = validate_lake("users", frame(spark, "users", users)).failures
    assert [(f.column, f.examples) for f in found] == [("status", [{"user_id": "u3", "status": 7}])]
    found = validate_lake("courses", frame(spark, "courses", courses)).failures
    assert [(f.column, f.examples) for f in found] == [("status", [{"course_id": "do_c3", "status": "live"}])]


def test_a_row_of_an_unknown_batch_or_learner_passes(spark):
    enrolment = CLEAN["enrolments"][0]
    rows = [enrolment, dict(enrolment, batch_id="no_such_batch", user_id="no_such_user")]
    assert validate_lake("enrolments", frame(spark, "enrolments", rows)).success


def test_findings_count_their_rows_per_scope_under_a_note(spark):
    """Validated `by` a column, each failure counts its rows per value: a request's notes."""
    enrolment = dict(CLEAN["enrolments"][0], content_status={"q1": 2, "q2": 7})
    rows = [
        dict(enrolment, request_id="r1"),
        dict(enrolment, request_id="r1"),  # a duplicate
        dict(enrolment, request_id="r1", user_id=None),
        dict(enrolment, request_id="r2", user_id=None),
        dict(enrolment, request_id="r2", user_id="u2", active=None, content_status={"q1": 1}),
    ]
    df = frame(spark, "enrolments", [{k: v for k, v in r.items() if k != "request_id"} for r in rows])
    df = spark.createDataFrame(
        [(r["request_id"], *row) for r, row in zip(rows, df.collect(), strict=True)],
        f"request_id string, {df.schema.simpleString()[7:-1]}",
    )
    outcome = validate_lake("enrolments", df, by="request_id")
    found = {f.note: f.by_scope for f in outcome.failures}
    assert found == {
        "enrolments.no_learner": {"r1": 1, "r2": 1},
        "enrolments.duplicate": {"r1": 2},
        "enrolments.no_active_flag": {"r2": 1},
        "enrolments.unknown_content_status": {"r1": 3, "r2": 1},
    }
    # The log's examples do not repeat the scope column.
    assert all("request_id" not in example for f in outcome.failures for example in f.examples)


def test_every_lake_note_has_words_for_the_requester():
    from schemas.notes import REASONS

    notes = {e.meta.get("note") for table in TABLES for e in expectations.lake_expectations(table)}
    assert notes - {None} <= set(REASONS)


def test_empty_tables_pass(spark):
    assert validate_lake("question_responses", frame(spark, "question_responses", [])).success


def test_a_missing_column_is_reported_not_raised(spark):
    df = frame(spark, "users", [dict(user_id=None, status=1)]).drop("status")
    outcome = validate_lake("users", df)
    assert [(f.column, f.unexpected_count) for f in outcome.failures] == [("user_id", 1), ("status", None)]
    missing = outcome.failures[1].description
    assert 'could not be checked: Error: The column "status" in BatchData does not exist' in missing


def test_validation_leaves_the_frame_uncached(spark):
    df = frame(spark, "courses", CLEAN["courses"])
    validate_lake("courses", df)
    assert not df.is_cached  # GX's own default would persist() it for ever


def test_describe_names_the_expectation_count_and_example(spark):
    rows = CLEAN["batches"] + [dict(CLEAN["batches"][0], batch_id="b9", course_id=None)]
    text = validate_lake("batches", frame(spark, "batches", rows)).describe()
    assert text.splitlines() == [
        "lake.batches: 1 expectation(s) failed",
        "- course_id must not be null (expect_column_values_to_not_be_null [course_id]): 1 unexpected",
        "    e.g. {'batch_id': 'b9', 'course_id': None}",
    ]


# --- the reports ----------------------------------------------------------------------

SCORES = ["Quiz - Score", "Final - Score"]
HEADER = [*PROGRESS_COLUMNS, *SCORES]


def report_frame(spark, header, rows):
    schema = StructType([StructField(c, StringType()) for c in header])
    return spark.createDataFrame([tuple(r.get(c) for c in header) for r in rows], schema)


def progress_row(**cells):
    row = {c: "x" for c in PROGRESS_COLUMNS[:15]}
    row.update(
        {
            "Collection Id": "do_c1",
            "Batch Id": "b1",
            "User UUID": "u1",
            "Enrolment Date": "05/01/2026",
            "Completion Date": None,
            "Certificate Status": None,
            "Progress": "25",
            "Total Score": "46.67",
            "Quiz - Score": "100.00",
            "Final - Score": None,
        }
    )
    row.update(cells)
    return row


def test_progress_report_passes(spark):
    rows = [
        progress_row(),
        progress_row(
            **{
                "User UUID": "u2",
                "Progress": "100",
                "Certificate Status": "Issued",
                "Completion Date": "01/02/2026",
                "Total Score": "0.00",
                "Final - Score": "7.50",
                "State": "'=SUM(A1)",
                "Quiz - Score": "",
            }
        ),
        progress_row(**{"User UUID": "u3", "Progress": "0", "Total Score": None, "Quiz - Score": None}),
    ]
    outcome = validate_report("progress", HEADER, report_frame(spark, HEADER, rows))
    assert (outcome.name, outcome.success, outcome.failures) == ("report.progress", True, [])


def test_score_cells_are_plain_numbers_with_two_decimals(spark):
    header = [*PROGRESS_COLUMNS, "A - Score", "B - Score", "C - Score"]
    rows = [
        progress_row(**{"A - Score": "100.00", "B - Score": "007.50", "C - Score": "1e2", "Total Score": "46.7"}),
        progress_row(**{"User UUID": "u2", "A - Score": "0.00", "B - Score": "-5.00", "C - Score": "120.00"}),
    ]
    found = failures_by_column(validate_report("progress", header, report_frame(spark, header, rows)))
    assert sorted(found) == ["B - Score", "C - Score", "Total Score"]
    assert found["B - Score"].examples == [{"User UUID": "u1", "B - Score": "007.50"}]
    assert found["C - Score"].examples == [{"User UUID": "u1", "C - Score": "1e2"}]
    assert found["Total Score"].examples == [{"User UUID": "u1", "Total Score": "46.7"}]


@pytest.mark.parametrize("progress", ["101", "-1", "07", "", "12.5"])
def test_progress_must_be_an_integer_0_to_100(spark, progress):
    outcome = validate_report("progress", HEADER, report_frame(spark, HEADER, [progress_row(Progress=progress)]))
    [failure] = outcome.failures
    assert failure.column == "Progress"
    assert failure.examples == [{"User UUID": "u1", "Progress": progress or None}]


def test_wrong_column_order_fails(spark):
    swapped = list(HEADER)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    outcome = validate_report("progress", HEADER, report_frame(spark, swapped, [progress_row()]))
    [failure] = outcome.failures
    assert failure.expectation == "expect_table_columns_to_match_ordered_list"
    assert failure.examples == [
        {"position": 0, "expected": "Collection Id", "found": "Collection Name"},
        {"position": 1, "expected": "Collection Name", "found": "Collection Id"},
    ]


def test_extra_pii_column_fails(spark):
    with_email = [*HEADER, "email"]
    outcome = validate_report("progress", HEADER, report_frame(spark, with_email, [progress_row(email="a@b.org")]))
    assert not outcome.success
    assert [f.expectation for f in outcome.failures] == ["no_pii_columns", "expect_table_columns_to_match_ordered_list"]
    assert outcome.failures[0].examples == ["email"]
    assert "a@b.org" not in outcome.describe()


def test_header_must_start_with_the_fixed_columns(spark):
    header = [*PROGRESS_COLUMNS[:-1], "Email ID", "Quiz"]
    outcome = validate_report("progress", header, report_frame(spark, header, [progress_row()]))
    assert [f.expectation for f in outcome.failures] == [
        "no_pii_columns",
        "header_starts_with_progress_columns",
        "assessment_headers_end_with_score",
    ]
    assert outcome.failures[1].examples == [{"position": 19, "expected": "Total Score", "found": "Email ID"}]


def test_keys_must_not_be_empty_and_text_must_be_guarded(spark):
    rows = [
        progress_row(**{"User UUID": ""}),
        progress_row(**{"User UUID": "u2", "Batch Id": None, "District": "+91"}),
    ]
    found = failures_by_column(validate_report("progress", HEADER, report_frame(spark, HEADER, rows)))
    assert sorted(found) == ["Batch Id", "District", "User UUID"]
    assert found["District"].examples == [{"User UUID": "u2", "District": "+91"}]
    assert found["District"].expectation == "expect_column_values_to_not_match_regex"


def userinfo_row(**cells):
    row = {c: "x" for c in USERINFO_COLUMNS}
    row.update(
        {
            "User UUID": "u1",
            "Email ID": "a@b.org",
            "Mobile Number": "'+919800000000",
            "Consent Provided": "Yes",
            "Consent Provided Date": "04/01/2026",
        }
    )
    row.update(cells)
    return row


def test_userinfo_consent_must_be_yes_and_pii_stays_out_of_the_log(spark):
    header = list(USERINFO_COLUMNS)
    rows = [
        userinfo_row(),
        userinfo_row(**{"User UUID": "u2", "Consent Provided": "No", "Mobile Number": "+919811111111"}),
    ]
    outcome = validate_report("userinfo", header, report_frame(spark, header, rows))
    found = failures_by_column(outcome)
    assert sorted(found) == ["Consent Provided", "Mobile Number"]
    assert found["Consent Provided"].examples == [{"User UUID": "u2", "Consent Provided": "No"}]
    assert found["Mobile Number"].examples == [{"User UUID": "u2"}]
    assert "919811111111" not in outcome.describe()
    assert validate_report("userinfo", header, report_frame(spark, header, [userinfo_row()])).success


def test_response_numbers_are_plain_decimals(spark):
    header = list(RESPONSE_COLUMNS)
    row = {c: "x" for c in header}
    row.update(
        {
            "User UUID": "u1",
            "Attempted On": "11/01/2026 10:30:00",
            "Question Duration": "0.5",
            "Question Score": "-1",
            "Question Max Score": "10",
            "Question Response": "'-1",
        }
    )
    unattempted = dict(row, **{"Attempted On": None, "Question Id": "y"})
    ok = validate_report("response", header, report_frame(spark, header, [row, unattempted]))
    assert ok.success, ok.describe()
    bad = dict(row, **{"Question Score": "1.0E-7", "Attempted On": "2026-01-11 10:30:00"})
    found = failures_by_column(validate_report("response", header, report_frame(spark, header, [bad])))
    assert sorted(found) == ["Attempted On", "Question Score"]


def test_author_supplied_headers_with_dots_and_backticks(spark):
    # GX on Spark reads "." as struct access and chokes on "`": the names are mapped and back
    header = [*PROGRESS_COLUMNS, "Unit 1.2 - Score", "Quiz `x` (do_1) - Score", "Unit 1_2 - Score"]
    good = progress_row(**{"Unit 1.2 - Score": "1.00", "Quiz `x` (do_1) - Score": None, "Unit 1_2 - Score": "2.00"})
    assert validate_report("progress", header, report_frame(spark, header, [good])).success
    bad = dict(good, **{"User UUID": "u2", "Unit 1.2 - Score": "101.0", "Quiz `x` (do_1) - Score": "x"})
    found = failures_by_column(validate_report("progress", header, report_frame(spark, header, [good, bad])))
    assert sorted(found) == ["Quiz `x` (do_1) - Score", "Unit 1.2 - Score"]
    assert found["Unit 1.2 - Score"].examples == [{"User UUID": "u2", "Unit 1.2 - Score": "101.0"}]
    assert found["Quiz `x` (do_1) - Score"].examples == [{"User UUID": "u2", "Quiz `x` (do_1) - Score": "x"}]


def test_scores_outside_0_to_100_pass_as_computed(spark):
    """18 of 15 is 120.00; a negative maximum gives a negative share (the lake suite notes both)."""
    rows = [progress_row(**{"Quiz - Score": "120.00", "Total Score": "-50.00"})]
    outcome = validate_report("progress", HEADER, report_frame(spark, HEADER, rows))
    assert outcome.success, outcome.describe()


def test_a_repeated_learner_fails_only_the_request_it_is_in(spark):
    header = ["request_id", *HEADER]
    rows = [
        dict(progress_row(), request_id="r1"),
        dict(progress_row(), request_id="r1"),
        dict(progress_row(), request_id="r2"),
        dict(progress_row(**{"User UUID": "u2"}), request_id="r2"),
    ]
    outcome = validate_report("progress", HEADER, report_frame(spark, header, rows))
    [failure] = outcome.failures
    assert (failure.description, failure.by_scope) == ("one row per User UUID", {"r1": 2})


def test_empty_report_passes(spark):
    assert validate_report("progress", HEADER, report_frame(spark, HEADER, [])).success


def test_report_describe_mentions_the_expectation_and_an_example(spark):
    outcome = validate_report("progress", HEADER, report_frame(spark, HEADER, [progress_row(Progress="101")]))
    text = outcome.describe()
    assert "expect_column_values_to_match_regex" in text
    assert "Progress must be an integer from 0 to 100" in text
    assert "'Progress': '101'" in text


def test_unknown_names_are_refused():
    with pytest.raises(KeyError):
        expectations.lake_expectations("nope")
    with pytest.raises(KeyError):
        expectations.report_expectations("nope", [])


def _counts_of_gx_and_ours(monkeypatch, validate):
    """Each failing expectation's unexpected count: ours (validate()), and GX's own (SUMMARY format)
    on the frame our validation hands GX, with its derived columns."""
    ours = {f.description: f.unexpected_count for f in validate().failures if f.unexpected_count is not None}
    captured = {}
    monkeypatch.setattr(
        expectations,
        "_validate",
        lambda name, exps, df, *a, **k: captured.update(exps=exps, df=df) or expectations.Outcome(name, True),
    )
    validate()
    gx = expectations._gx()
    batch = expectations._batch_definition("check").get_batch(batch_parameters={"dataframe": captured["df"]})
    result = batch.validate(gx.ExpectationSuite(name="check", expectations=captured["exps"]), result_format="SUMMARY")
    theirs = {r.expectation_config.description: r.result.get("unexpected_count") for r in result.results}
    return ours, {d: n for d, n in theirs.items() if n}


@pytest.mark.parametrize("table", sorted(TABLES))
def test_our_row_conditions_count_what_great_expectations_counts(spark, table, monkeypatch):
    """The counts come from conditions of our own (`_unexpected`): on the dirty lake they are GX's."""
    from tests import dirtylake

    df = frame(spark, table, dirtylake.tables()[table] + CLEAN[table])
    ours, theirs = _counts_of_gx_and_ours(monkeypatch, lambda: validate_lake(table, df))
    assert ours and ours == theirs


def test_our_report_conditions_count_what_great_expectations_counts(spark, monkeypatch):
    rows = [
        progress_row(**{"User UUID": "", "Progress": "101", "Certificate Status": "Yes"}),
        progress_row(**{"User UUID": "u2", "District": "+91", "Quiz - Score": "1e2", "Enrolment Date": "2026-01-05"}),
        progress_row(**{"User UUID": "u2"}),
    ]
    df = report_frame(spark, HEADER, rows)
    ours, theirs = _counts_of_gx_and_ours(monkeypatch, lambda: validate_report("progress", HEADER, df))
    assert len(ours) == 7 and ours == theirs
