"""Staged report rows (learners' data in clear) do not outlive their run."""

import datetime as dt
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

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
        s.add_all(
            [
                Course(course_id="c1", created_by=CREATOR, user_consent_required=True, synced_at=now),
                Batch(batch_id="b1", course_id="c1", created_by=BATCH_CREATOR, mentors=[MENTOR], synced_at=now),
            ]
        )
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
    write_summary(
        nightly.output_dir(run_id, "userinfo"),
        {"requests": {published.request_id: {"header": HEADER, "rows": 2, "left_out": {}}}},
    )
    write_summary(
        nightly.output_dir(run_id, "progress"),
        {"requests": {failing.request_id: {"error": "the report failed its checks", "transient": False}}},
    )

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
    assert csv == (
        "\ufeffUser UUID,User Name,Email ID\r\nL1,Ada Lovelace,ada@example.org\r\nL2,Alan Turing,alan@example.org\r\n"
    )

    # The next run's claim deletes this run's folder too; its own stays.
    nightly.claim_requests("scheduled__2026-11-29", DAY + dt.timedelta(days=1))
    assert not nightly.run_dir(run_id).exists() and figures.exists()


# --- a kill during publishing leaves no learner's data in clear anywhere ------------------------

# publish_reports in a process of its own, paused at one step of packaging (the parent
# SIGKILLs it there): `csv`, the CSV written and not yet zipped; `zip`, the zip written
# and not yet uploaded; `upload`, the zip copied beside its place and not yet renamed.
PUBLISH = """
import datetime as dt, os, sys, time
from pathlib import Path
from coursedash import nightly, packaging, storage

run_id, step, paused = sys.argv[1], sys.argv[2], Path(sys.argv[3])

def pause():
    paused.write_text(step)
    time.sleep(600)

if step == "csv":
    packaging.zip_file = lambda *args: pause()
elif step == "zip":
    storage.LocalStore.put = lambda self, source, key: pause()
else:
    replace = os.replace
    os.replace = lambda src, dst: pause() if Path(str(src)).name.startswith(".upload-") else replace(src, dst)
nightly.publish_reports(run_id, dt.date(2026, 11, 28))
"""
PII = ["Ada Lovelace", "ada.lovelace@example.org", "+919800000001", "Alan Turing", "alan.turing@example.org"]


def clear_text_in(*folders) -> list[str]:
    """Every file under `folders` holding a learner's name, e-mail or phone in clear."""
    found = []
    for folder in folders:
        for path in (p for p in folder.rglob("*") if p.is_file()):
            data = path.read_bytes()
            if any(value.encode() in data for value in PII):
                found.append(str(path))
    return found


def test_a_kill_at_any_step_of_publishing_leaves_no_clear_text_once_retried(app_env, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests import handlake
    from tests.conftest import ROOT

    work, reports, temp = app_env / "work", app_env / "reports", tmp_path / "tmp"
    temp.mkdir()
    handlake.store_catalogue()
    with db.session() as s:
        request = store.submit(s, CREATOR, "c1", "b1", "userinfo", PASSWORD)
    run_id = "scheduled__2026-11-28"
    nightly.claim_requests(run_id, DAY)
    rows = [["L1", PII[0], PII[1], PII[2]], ["L2", PII[3], PII[4], ""]] * 500
    header = [*HEADER, "Mobile Number"]
    write_summary(
        nightly.output_dir(run_id, "userinfo"),
        {"requests": {request.request_id: {"header": header, "rows": len(rows), "left_out": {}}}},
    )

    for step in ("csv", "zip", "upload"):
        stage(run_id, request, rows)
        paused = tmp_path / f"paused-{step}"
        child = subprocess.Popen(
            [sys.executable, "-c", PUBLISH, run_id, step, str(paused)],
            env={**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 60
            while not paused.exists():
                assert child.poll() is None and time.monotonic() < deadline, child.stderr.read()
                time.sleep(0.05)
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            child.kill()
            child.wait()
        # Killed with the CSV or zip in the making: in the run's folder, never in a temporary
        # folder no run sweeps; killed mid-upload: a partial file beside the report's place.
        assert list(temp.iterdir()) == []
        if step == "csv":
            csv = [str(p) for p in nightly.packaging_dir(run_id).rglob("*.csv")]
            assert csv and set(csv) <= set(clear_text_in(work))  # beside the staged rows
        if step == "upload":
            assert [p.name[:8] for p in reports.rglob(".upload-*")] == [".upload-"]

        # The task's retry publishes it and leaves no clear text, no partial file behind.
        assert nightly.publish_reports(run_id, DAY)["SUCCESS"] == 1
        with db.session() as s:
            published = s.get(ReportRequest, request.request_id)
            assert published.status == "SUCCESS"
            s.execute(
                update(ReportRequest)
                .where(ReportRequest.request_id == request.request_id)
                .values(status="PROCESSING", claimed_by_run=run_id)
            )  # for the next step's kill
            s.commit()
        assert clear_text_in(work, temp, reports) == []
        assert not nightly.packaging_dir(run_id).exists() and list(reports.rglob(".upload-*")) == []
    with report_store().open(published.object_key) as f:
        (tmp_path / "r.zip").write_bytes(f.read())
    csv = read_zip(tmp_path / "r.zip", PASSWORD)["b1_userinfo_20261128.csv"].decode()
    assert csv.count(PII[0]) == 500 and csv.count(PII[4]) == 500


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)  # no database involved: the folder's settings
def test_a_failed_upload_leaves_no_partial_file(app_env, tmp_path):
    """The disk refuses the write (the file size limit stands in for a full disk): nothing stays."""
    import errno
    import resource
    import signal

    source = tmp_path / "r.zip"
    source.write_bytes(os.urandom(256 * 1024))
    store_ = report_store()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, hard))
    try:
        with pytest.raises(OSError) as refused:
            store_.put(source, "c1/b1/userinfo/r.zip")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert refused.value.errno == errno.EFBIG
    assert [p for p in (app_env / "reports").rglob("*") if p.is_file()] == []
    store_.put(source, "c1/b1/userinfo/r.zip")  # with room, the same upload goes through
    assert (app_env / "reports" / "c1/b1/userinfo/r.zip").read_bytes() == source.read_bytes()
