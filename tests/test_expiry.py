"""Reports past their retention become EXPIRED and their files are deleted."""

import datetime as dt

from coursedash import db, nightly, store
from coursedash.db import Batch, Course, ReportRequest, utcnow
from coursedash.storage import report_store


def test_expire_reports_after_retention(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEDASH_RETENTION_DAYS", "30")
    now = utcnow()
    with db.session() as s:
        s.add_all([Course(course_id="c1", created_by="u1", synced_at=now),
                   Batch(batch_id="b1", course_id="c1", created_by="u1", mentors=[], synced_at=now)])
        s.commit()
        r = store.submit(s, "u1", "c1", "b1", "progress")
        store.claim(s, "run-1")
        key = nightly.object_key(r)
        zip_path = tmp_path / "r.zip"
        zip_path.write_bytes(b"zip")
        report_store().put(zip_path, key)
        store.complete(s, r.request_id, "run-1", rows=0, size=3, key=key, report_date=now.date())

    assert nightly.expire_reports(now + dt.timedelta(days=29)) == 0
    assert report_store().exists(key)
    assert nightly.expire_reports(now + dt.timedelta(days=31)) == 1
    assert not report_store().exists(key)
    with db.session() as s:
        assert s.get(ReportRequest, r.request_id).status == "EXPIRED"
    assert nightly.expire_reports(now + dt.timedelta(days=60)) == 0  # once only
