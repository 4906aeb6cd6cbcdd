"""Staged report rows (learners' data in clear) do not outlive their run."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from coursedash import db, nightly, store
from coursedash.db import Batch, Course, ReportRequest, utcnow
from coursedash.manifest import Manifest, read_summary, write_summary
from coursedash.packaging import read_zip
from coursedash.storage import report_store
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR

DAY = dt.date(2026, 11, 28)
PASSWORD = "Staged-r0ws"
HEADER = ["User UUID", "User Name", "Email ID"]


def stage(run_id: str, request: ReportRequest, rows: list[list[str]]) -> None:
    """What a report job leaves for publishing: one Parquet file of CSV cells per request."""
    folder = nightly.staged_rows_dir(run_id, request)
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"cells": pa.array(rows, pa.list_(pa.string()))}), folder / "part-00000.parquet")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_staged_rows_go_once_published_and_a_dead_runs_folder_at_the_next_claim(app_env):
    work = app_env / "work"
    now = utcnow()
    with db.session() as s:
        s.add_all([Course(course_id="c1", created_by=CREATOR, user_consent_required=True, synced_at=now),
                   Batch(batch_id="b1", course_id="c1", created_by=BATCH_CREATOR, mentors=[MENTOR], synced_at=now)])
        s.commit()
        published = store.submit(s, CREATOR, "c1", "b1", "userinfo", PASSWORD)
        failing = store.submit(s, MENTOR, "c1", "b1", "progress")

    # A run that died after its build left its manifest and learners' rows behind.
    dead = nightly.run_dir("scheduled__2026-11-27")
    Manifest("userinfo", "2026-11-27", "lake", [{"request_id": "old"}]).save(dead / "userinfo.manifest.json")
    (dead / "userinfo" / "rows" / "request_id=old").mkdir(parents=True)
    (dead / "userinfo" / "rows" / "request_id=old" / "part-0.parquet").write_bytes(b"Ada Lovelace")
    figures = work / "figures-running"  # a sync beside the claim: not a run's folder
    figures.mkdir()

    run_id = "scheduled__2026-11-28"
    claimed = nightly.claim_requests(run_id, DAY)
    assert not dead.exists() and figures.exists()
    assert sorted(claimed["request_ids"]) == sorted([published.request_id, failing.request_id])

    stage(run_id, published, [["L1", "Ada Lovelace", "ada@example.org"], ["L2", "Alan Turing", "alan@example.org"]])
    stage(run_id, failing, [["L1", "", ""]])
    write_summary(nightly.output_dir(run_id, "userinfo"),
                  {"requests": {published.request_id: {"header": HEADER, "rows": 2, "left_out": {}}}})
    write_summary(nightly.output_dir(run_id, "progress"),
                  {"requests": {failing.request_id: {"error": "the report failed its checks", "transient": False}}})

    assert nightly.publish_reports(run_id, DAY)["SUCCESS"] == 1
    with db.session() as s:
        done, failed = s.get(ReportRequest, published.request_id), s.get(ReportRequest, failing.request_id)
    assert (done.status, failed.status) == ("SUCCESS", "FAILED")
    for request in (done, failed):
        assert not nightly.staged_rows_dir(run_id, request).exists()
    assert not list(work.rglob("*.parquet"))
    # The summaries (counts and reasons only) stay for the run's log; the report is whole.
    assert read_summary(nightly.output_dir(run_id, "userinfo"))["requests"][done.request_id]["rows"] == 2
    with report_store().open(done.object_key) as f:
        (app_env / "r.zip").write_bytes(f.read())
    csv = read_zip(app_env / "r.zip", PASSWORD)["b1_userinfo_20261128.csv"].decode()
    assert csv == "\ufeffUser UUID,User Name,Email ID\r\nL1,Ada Lovelace,ada@example.org\r\nL2,Alan Turing,alan@example.org\r\n"

    # The next run's claim deletes this run's folder too; its own stays.
    nightly.claim_requests("scheduled__2026-11-29", DAY + dt.timedelta(days=1))
    assert not nightly.run_dir(run_id).exists() and figures.exists()
