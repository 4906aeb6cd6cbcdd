"""Reports past their retention become EXPIRED and their files are deleted."""

import datetime as dt

from sqlalchemy import update

from coursedash import db, nightly, store
from coursedash.db import Batch, Course, ReportRequest, utcnow
from coursedash.storage import report_store


def test_expire_reports_after_retention(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEDASH_RETENTION_DAYS", "30")
    now = utcnow()
    with db.session() as s:
        s.add_all(
            [
                Course(course_id="c1", created_by="u1", synced_at=now),
                Batch(batch_id="b1", course_id="c1", created_by="u1", mentors=[], synced_at=now),
            ]
        )
        s.commit()
        r = store.submit(s, "u1", "c1", "b1", "progress")
        store.claim(s, "run-1")
        key = nightly.object_key(r)
        zip_path = tmp_path / "r.zip"
        zip_path.write_bytes(b"zip")
        report_store().put(zip_path, key)
        store.complete(s, r.request_id, "run-1", rows=0, size=3, key=key, report_date=now.date())

    def completed_days_ago(days):
        with db.session() as s:
            s.execute(update(ReportRequest).values(completed_at=now - dt.timedelta(days=days)))
            s.commit()

    # A run for a date far ahead (a test, a backfill) does not expire what was built today.
    assert nightly.expire_reports(now + dt.timedelta(days=60)) == 0
    completed_days_ago(29)
    assert nightly.expire_reports(now) == 0
    assert report_store().exists(key)
    completed_days_ago(31)
    assert nightly.expire_reports(now) == 1
    assert not report_store().exists(key)
    with db.session() as s:
        assert s.get(ReportRequest, r.request_id).status == "EXPIRED"
    assert nightly.expire_reports(now) == 0  # once only


def test_ids_never_escape_the_reports_folder():
    from coursedash.db import ReportRequest

    r = ReportRequest(request_id="r1", course_id="../../etc", batch_id="b/../x", report_type="progress")
    assert nightly.object_key(r) == ".._.._etc/b_.._x/progress/r1.zip"  # one segment each
    assert nightly.report_file_name(r, dt.date(2026, 11, 28), "csv") == "b_.._x_progress_20261128.csv"
    assert ".." not in nightly.object_key(r).split("/")
