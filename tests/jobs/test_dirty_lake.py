"""A dirty lake: row-level dirt never withholds a report; only an untruthful lake fails one (docs/lake.md)."""

import re

import pytest

from coursedash.manifest import Manifest
from jobs import night
from schemas.notes import data_notes
from schemas.reports import PROGRESS_COLUMNS, RESPONSE_COLUMNS
from tests import dirtylake, handlake
from tests.lakefixtures import write_lake

# The row-level tests share one night of every type (a module fixture): one worker runs the module.
pytestmark = pytest.mark.xdist_group("dirty_lake")


def build(spark, lake, out, batches_of: dict[str, tuple[str, ...]]) -> dict[str, dict]:
    """One night of the report types in `batches_of`, a request per batch: each type's summary by request.

    Request ids are `<type>_<batch>`, staged under `out/<type>`.
    """
    night_ = [
        (
            Manifest(
                report_type,
                "2026-11-28",
                str(lake),
                [{"request_id": f"{report_type}_{b}", "course_id": "c1", "batch_id": b} for b in batches],
            ),
            str(out / report_type),
        )
        for report_type, batches in batches_of.items()
    ]
    return {t: summary["requests"] for t, summary in night.build(spark, night_).items()}


def staged_cells(out, request_id):
    import pyarrow.parquet as pq

    report_type = request_id.split("_")[0]
    [path] = (out / report_type / "rows" / f"request_id={request_id}").glob("*.parquet")
    return pq.read_table(path).column("cells").to_pylist()


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    """The dirty lake's night: progress for b1 and b2, userinfo and response for b1; and its folder."""
    root = tmp_path_factory.mktemp("dirty")
    lake = write_lake(root / "lake", dirtylake.tables())
    out = root / "out"
    return build(spark, lake, out, {"progress": ("b1", "b2"), "userinfo": ("b1",), "response": ("b1",)}), out


def test_progress_is_built_with_every_row_level_case_counted(built):
    summaries, out = built
    summary = summaries["progress"]
    assert summary["progress_b1"]["left_out"] == dirtylake.B1_NOTES["progress"]
    assert summary["progress_b2"]["left_out"] == dirtylake.B2_PROGRESS_NOTES  # b1's dirt is not b2's
    header = summary["progress_b1"]["header"]
    assert header[len(PROGRESS_COLUMNS) :] == ["Quiz - Score", 'Test "A" - Score', "Final - Score"]  # unplaced: last

    def cells(row):
        return dict(zip(header, row, strict=True))

    rows = {r[4]: cells(r) for r in staged_cells(out, "progress_b1")}
    assert sorted(rows) == ["L1", "L2", "L3"]  # no learner, no active flag: left out; L2 once
    score = ["Progress", "Total Score", "Quiz - Score", 'Test "A" - Score', "Final - Score"]
    # L1: 18 of 15 is 120.00, as computed; total (18 + 3) / (15 + 4).
    assert [rows["L1"][c] for c in score] == ["100", "110.53", "120.00", "75.00", None]
    # L2: a maximum of 0 leaves the cell empty; a profile status of 3 keeps the row.
    assert [rows["L2"][c] for c in score] == ["25", "83.33", "83.33", None, None]
    assert rows["L2"]["State"] == "Kerala"
    # L3: a negative maximum is shown as computed; status 5 is not completed (2 of 4 required).
    assert [rows["L3"][c] for c in score] == ["50", "-50.00", None, "-50.00", None]
    assert rows["L1"]["District"] == "Chennai"  # of L1's two profiles, the first by every column


def test_the_dashboard_figures_count_what_each_progress_report_holds(spark, built):
    """Dirty rows and all: each band, count and average is what the batch's report says (tests/figures.py)."""
    from jobs import dashboard_figures
    from tests import figures

    summaries, out = built
    frames = dashboard_figures.extract(spark, str(out.parent / "lake"))
    _, batches = dashboard_figures.transform(**frames)
    shown = {r["batch_id"]: figures.as_shown(r.asDict(recursive=True)) for r in batches.collect()}
    for batch in ("b1", "b2"):
        header = summaries["progress"][f"progress_{batch}"]["header"]
        staged = (out / "progress" / "rows" / f"request_id=progress_{batch}").exists()  # b2 has no learner
        rows = (
            [dict(zip(header, cells, strict=True)) for cells in staged_cells(out, f"progress_{batch}")]
            if staged
            else []
        )
        assert shown[batch] == figures.from_report(rows), batch
    # L1 110.53 (18 of 15 as computed), L2 83.33, L3 -50.00 (a negative maximum): the mean of the cells.
    assert shown["b1"]["average_total_score"] == 47.95
    assert shown["b1"]["progress_bands"] == {"not_started": 0, "started": 1, "past_half": 1, "completed": 1}


def test_userinfo_leaves_out_what_is_not_an_active_consent(built):
    summaries, out = built
    assert summaries["userinfo"]["userinfo_b1"]["left_out"] == dirtylake.B1_NOTES["userinfo"]
    # L1's latest consent is PENDING, L2's REVOKED: only L3 (missing from users) is in.
    assert [row[4] for row in staged_cells(out, "userinfo_b1")] == ["L3"]


def test_responses_pass_through_or_drop_as_the_formulas_say(built):
    summaries, out = built
    assert summaries["response"]["response_b1"]["left_out"] == dirtylake.B1_NOTES["response"]
    rows = [dict(zip(RESPONSE_COLUMNS, r, strict=True)) for r in staged_cells(out, "response_b1")]
    keys = [(r["User UUID"], r["Attempt Id"], r["Question Id"]) for r in rows]
    assert keys == [
        ("L1", "at1", None),
        ("L1", "at1", "qq1"),
        ("L1", "at1", "qq2"),
        ("L1", "at1", "qq3"),
        ("L2", "at3", "qq1"),
        ("L2", "at_missing", "qq1"),
    ]
    over = rows[3]
    assert (over["Question Score"], over["Question Max Score"]) == ("5", "2")  # shown as recorded


def test_notes_read_as_sentences_with_their_counts():
    notes = data_notes(dirtylake.B1_NOTES["progress"])
    by_reason = {n["reason"]: n["rows"] for n in notes}
    assert by_reason["2 assessment attempts scored above their maximum; shown as computed"] == 2
    assert by_reason["1 enrolment without a learner was left out"] == 1
    assert by_reason["1 learner is missing from the user profile table; their profile cells are empty"] == 1
    assert all(set(n) == {"reason", "rows"} and n["rows"] > 0 for n in notes)
    for learner in ("L1", "L2", "L3", "L6", *handlake.PII_VALUES):
        assert learner not in str(notes)


# --- what blocks: the lake cannot give a truthful report --------------------------------


def broken_lake(tmp_path, **tables):
    return write_lake(tmp_path / "lake", {**handlake.TABLES, **tables})


def retype(lake, table, column, arrow_type):
    """Rewrite a table with one column of another type, as a broken upstream job would."""
    import pyarrow.parquet as pq

    path = next((lake / table).glob("*.parquet"))
    data = pq.read_table(path)
    i = data.schema.get_field_index(column)
    pq.write_table(data.set_column(i, column, data.column(column).cast(arrow_type)), path)


def test_a_column_of_the_wrong_type_fails_the_requests_that_read_it_naming_it(spark, tmp_path):
    import pyarrow as pa

    lake = broken_lake(tmp_path)
    retype(lake, "users", "status", pa.string())
    summaries = build(spark, lake, tmp_path, {"progress": ("b1",), "response": ("b1",)})
    assert summaries["progress"]["progress_b1"] == {
        "error": "the learner data could not be read: lake table 'users' does not match its documented schema: "
        "column 'status' is string, expected int",
        "transient": True,
    }
    # The response report does not read users: it is built the same night.
    assert "error" not in summaries["response"]["response_b1"]


def test_a_missing_column_or_table_is_named(spark, tmp_path):
    import shutil

    import pyarrow.parquet as pq

    lake = broken_lake(tmp_path)
    path = next((lake / "question_responses").glob("*.parquet"))
    pq.write_table(pq.read_table(path).drop(["score"]), path)
    shutil.rmtree(lake / "user_consents")
    summaries = build(spark, lake, tmp_path, {"response": ("b1",), "userinfo": ("b1",), "progress": ("b1",)})
    error = summaries["response"]["response_b1"]["error"]
    assert "lake table 'question_responses'" in error and "column 'score' is missing (expected double)" in error
    error = summaries["userinfo"]["userinfo_b1"]["error"]
    assert error == (
        "the learner data could not be read: lake table 'user_consents' cannot be read: its folder is missing"
    )
    assert plain(error) and plain(summaries["response"]["response_b1"]["error"])
    assert "error" not in summaries["progress"]["progress_b1"]  # it reads neither


def plain(error: str) -> bool:
    """Words for a creator or mentor: no path, file name, exception or Java object (`o776.parquet`)."""
    return not re.search(r"/|\.parquet|Exception|Error|\bo\d+\.|SQLSTATE|\[[A-Z_]+\]", error)


def test_a_corrupt_file_names_its_table_for_people_and_the_file_for_the_log(spark, tmp_path, caplog):
    lake = broken_lake(tmp_path)
    (lake / "assessment_attempts" / "part-00001.parquet").write_bytes(b"PAR1 this is not parquet")
    error = build(spark, lake, tmp_path, {"progress": ("b1",)})["progress"]["progress_b1"]["error"]
    assert error == (
        "the learner data could not be read: a file of lake table 'assessment_attempts' is not a Parquet file"
    )
    assert plain(error)
    # The engineers' detail: the file and Spark's cause, beside the request it failed.
    detail = next(r.getMessage() for r in caplog.records if "request(s) progress_b1" in r.getMessage())
    assert "part-00001.parquet" in detail and "assessment_attempts" in detail
