"""Report requests in any state written straight to the database, with a real zip when published."""

import datetime as dt
import uuid

from coursedash import db, packaging
from coursedash.db import ReportRequest, utcnow
from coursedash.storage import report_store


def add_request(work_dir, user, report_type, status="SUCCESS", password=None, course="c1", batch="b1", **values):
    """A request of `user`; a SUCCESS one gets a one-row zip in the report store (AES with a password)."""
    request_id = str(uuid.uuid4())
    now = utcnow()
    row = dict(
        request_id=request_id,
        course_id=course,
        batch_id=batch,
        report_type=report_type,
        requested_by=user,
        status=status,
        submitted_at=now,
        attempts=1,
        password_protected=password is not None,
    )
    if status == "SUCCESS":
        csv, zipped = work_dir / f"{request_id}.csv", work_dir / f"{request_id}.zip"
        packaging.write_csv(csv, ["User UUID"], [["L1"]])
        packaging.zip_file(csv, zipped, f"{batch}_x.csv", password)
        key = f"{course}/{batch}/{report_type}/{request_id}.zip"
        report_store().put(zipped, key)
        row.update(
            completed_at=now,
            row_count=1,
            file_size=zipped.stat().st_size,
            object_key=key,
            report_date=dt.date(2026, 11, 28),
        )
    with db.session() as s:
        s.add(ReportRequest(**{**row, **values}))
        s.commit()
    return request_id
