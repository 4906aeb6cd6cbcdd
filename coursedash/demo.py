"""The main job on the embedded defaults: sample lake, sync, a few requests, one nightly run."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from coursedash import db, store
from coursedash.airflow_env import airflow_env
from coursedash.cli import _table
from coursedash.config import settings
from coursedash.db import Batch, Course, ReportRequest

log = logging.getLogger(__name__)
DEMO_PASSWORD = "Demo-pass-2026"  # printed below on purpose: it is sample data


def _airflow(*args: str) -> None:
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, *args], env=airflow_env(), check=True)


def _submit(s, user, course, batch, report_type, password=None) -> str | None:
    try:
        return store.submit(s, user, course, batch, report_type, password).request_id
    except store.OpenRequestExists as e:
        log.warning("%s", e.message)
        return e.extra.get("request_id")


def run(learners: int = 200, date: str | None = None) -> None:
    from coursedash.lakegen import generate_lake
    from coursedash.sync import sync

    run_date = dt.date.fromisoformat(date) if date else dt.date.today()
    generate_lake(settings().lake_uri, learners=learners, today=run_date)
    sync()
    with db.session() as s:
        consent_course = s.scalars(select(Course).where(Course.user_consent_required.is_(True)).order_by(Course.course_id)).first()
        batch = s.scalars(
            select(Batch).where(Batch.course_id == consent_course.course_id).order_by(Batch.batch_id)
        ).first()
        creator, mentor = consent_course.created_by, (batch.mentors or [None])[0]
        ids = [
            _submit(s, creator, batch.course_id, batch.batch_id, "progress", DEMO_PASSWORD),
            _submit(s, creator, batch.course_id, batch.batch_id, "userinfo", DEMO_PASSWORD),
            _submit(s, mentor, batch.course_id, batch.batch_id, "progress"),
            _submit(s, mentor, batch.course_id, batch.batch_id, "response"),
        ]
    _airflow("db", "migrate")
    _airflow("dags", "test", "course_reports_nightly", run_date.isoformat())
    with db.session() as s:
        rows = []
        for r in s.scalars(select(ReportRequest).where(ReportRequest.request_id.in_([i for i in ids if i]))):
            where = Path(settings().reports_uri) / r.object_key if r.object_key else None
            rows.append({
                "request": r.request_id, "type": r.report_type, "by": r.requested_by, "status": r.status,
                "rows": r.row_count, "file": where or r.error,
            })
    print()
    print(_table(rows, ["request", "type", "by", "status", "rows", "file"]))
    print(f"\nZips with a password open with: 7z x -p{DEMO_PASSWORD} FILE")
