"""One night reads one lake: a lake rewritten during the build fails the reports that read it, to be built again."""

import datetime as dt
import shutil

import pytest

from coursedash import db, nightly, reports, store, sync
from coursedash.db import Batch, ReportRequest
from coursedash.manifest import Manifest, read_summary, write_summary
from jobs import dashboard_figures, night, quality
from tests import handlake
from tests.lakefixtures import write_lake
from tests.test_staging_cleanup import stage

DAY = dt.date(2026, 11, 28)
REWRITTEN = ("enrolments", "assessment_attempts", "question_responses")


def reloaded(tables: dict) -> dict:
    """The same learners under new ids, as an upstream job's next full load might bring them."""

    def new_ids(row):
        user = row.get("user_id")
        return {**row, "user_id": "N" + user[1:]} if isinstance(user, str) and user.startswith("L") else row

    return {table: [new_ids(row) for row in rows] for table, rows in tables.items()}


def rewrite_in_place(lake, scratch) -> None:
    """What an upstream job does: replace three tables' files where they are, under the same names."""
    write_lake(scratch, reloaded(handlake.TABLES))
    for table in REWRITTEN:
        shutil.copyfile(scratch / table / "part-00000.parquet", lake / table / "part-00000.parquet")


def night_of(spark, run_id: str, day: dt.date) -> dict:
    """claim_requests, the night's build in this process's Spark, publish_reports."""
    claimed = nightly.claim_requests(run_id, day)
    night.build(
        spark,
        [
            (Manifest.load(path), str(nightly.output_dir(run_id, report_type)))
            for report_type, path in claimed["manifests"].items()
        ],
    )
    return nightly.publish_reports(run_id, day)


def shown(request_id: str) -> dict:
    with db.session() as s:
        return reports.as_json(s.get(ReportRequest, request_id))


CHANGED = (
    "The learner data changed while tonight's reports were being built (lake tables assessment_attempts, "
    "enrolments and question_responses rewritten), so this report could have mixed old and new data. "
    "It will be retried in the next nightly run (attempt 2 of 3)."
)


# The build runs in Spark once, on SQLite; what the database does with its outcome (fail
# as transient, claim again) is checked on both databases below, without Spark.
@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_a_lake_rewritten_during_the_build_fails_its_reports_as_transient_to_be_built_again(
    app_env, spark, monkeypatch, caplog
):
    lake = app_env / "lake"
    write_lake(lake, handlake.TABLES)
    handlake.store_catalogue()
    with db.session() as s:
        responses = store.submit(s, handlake.MENTOR, "c1", "b1", "response").request_id
    suites = quality.lake_findings

    def rewritten_meanwhile(*args):  # the night has read its enrolments, not yet its responses
        rewrite_in_place(lake, app_env / "next")
        return suites(*args)

    monkeypatch.setattr(quality, "lake_findings", rewritten_meanwhile)
    assert night_of(spark, "run-1", DAY)["FAILED"] == 1
    monkeypatch.setattr(quality, "lake_findings", suites)
    # What it would have published as ready: old enrolments and new responses, not one row.
    assert read_summary(nightly.output_dir("run-1", "response"))["requests"][responses]["rows"] == 0
    assert (shown(responses)["status"], shown(responses)["will_retry"], shown(responses)["error"]) == (
        "FAILED",
        True,
        CHANGED,
    )
    assert f"request {responses}: the lake changed while it was built" in caplog.text

    # The next night takes it again, to build it from one lake (the build itself: every other night test).
    assert nightly.claim_requests("run-2", DAY + dt.timedelta(days=1))["request_ids"] == [responses]


def test_publishing_fails_only_the_requests_whose_tables_changed_and_the_next_run_takes_them(app_env):
    from coursedash import lakefiles

    lake = app_env / "lake"
    write_lake(lake, handlake.TABLES)
    handlake.store_catalogue()
    with db.session() as s:
        responses = store.submit(s, handlake.MENTOR, "c1", "b1", "response").request_id
        profiles = store.submit(s, handlake.CREATOR, "c1", "b1", "userinfo", "Passw0rd-one").request_id
    run_id = "run-1"
    assert set(nightly.claim_requests(run_id, DAY)["request_ids"]) == {responses, profiles}
    # What the build leaves: staged rows, and per type the tables it read as it listed them first.
    read = {
        "response": [
            "assessment_attempts",
            "batches",
            "course_contents",
            "courses",
            "enrolments",
            "question_responses",
        ],
        "userinfo": ["batches", "courses", "enrolments", "user_consents", "users"],
    }
    with db.session() as s:
        for rid, report_type in ((responses, "response"), (profiles, "userinfo")):
            stage(run_id, s.get(ReportRequest, rid), [["L1"]])
            write_summary(
                nightly.output_dir(run_id, report_type),
                {
                    "requests": {rid: {"header": ["User UUID"], "rows": 1, "left_out": {}}},
                    "lake": {"uri": str(lake), "files": lakefiles.snapshot(str(lake), read[report_type])},
                },
            )
    # Only the responses' own tables change; the enrolments both read are left alone this time.
    write_lake(app_env / "next", reloaded(handlake.TABLES))
    for table in ("assessment_attempts", "question_responses"):
        (lake / table / "part-00000.parquet").unlink()
        shutil.copyfile(app_env / "next" / table / "part-00000.parquet", lake / table / "part-00001.parquet")

    assert nightly.publish_reports(run_id, DAY)["SUCCESS"] == 1
    assert shown(profiles)["status"] == "SUCCESS"
    assert (shown(responses)["status"], shown(responses)["will_retry"]) == ("FAILED", True)
    assert "(lake tables assessment_attempts and question_responses rewritten)" in shown(responses)["error"]
    assert nightly.claim_requests("run-2", DAY + dt.timedelta(days=1))["request_ids"] == [responses]


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_figures_of_a_lake_rewritten_while_they_were_computed_are_not_stored(app_env, spark, monkeypatch, caplog):
    lake, out = app_env / "lake", app_env / "figures"
    write_lake(lake, handlake.TABLES)
    extract = dashboard_figures.extract

    def rewritten_meanwhile(*args):  # listed, not yet read
        rewrite_in_place(lake, app_env / "next")
        return extract(*args)

    monkeypatch.setattr(dashboard_figures, "extract", rewritten_meanwhile)
    dashboard_figures.build(spark, str(lake), str(out))
    with caplog.at_level("WARNING", logger="coursedash.sync"):
        outcome = sync.store_night_figures(out)  # the DAG's sync_dashboard: the night goes on
    assert (outcome["courses"], outcome["batches"]) == (0, 0)
    assert (
        "(assessment_attempts: 0 file(s) added, 0 removed, 1 rewritten; enrolments: 0 file(s) added, 0 removed, "
        "1 rewritten), so they could mix old and new data: they were not stored" in outcome["not_stored"]
    )
    assert "the dashboard keeps its earlier figures until the next night" in caplog.text
    with db.session() as s:
        assert s.query(Batch).count() == 0
    with pytest.raises(sync.LakeChanged, match="while the dashboard figures were computed"):
        sync.load_figures(out)  # `coursedash sync`: a UserError, one line and exit status 2

    # Computed again from one lake, they are stored, even if the lake changes after they were computed.
    monkeypatch.setattr(dashboard_figures, "extract", extract)
    dashboard_figures.build(spark, str(lake), str(out))
    rewrite_in_place(lake, app_env / "after")
    stored = sync.store_night_figures(out)
    assert "not_stored" not in stored and stored["batches"] > 0
    with db.session() as s:
        assert s.query(Batch).count() == stored["batches"]
