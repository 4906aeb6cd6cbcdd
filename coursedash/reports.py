"""Reading requests back: what a user may see and download (CONTRACT §2, §5)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from coursedash import access, store
from coursedash.db import Batch, Course, Download, ReportRequest, utcnow
from coursedash.storage import report_store

STATUS_LABELS = {
    "SUBMITTED": "Submitted",
    "PROCESSING": "Pending",
    "SUCCESS": "Success",
    "FAILED": "Failure",
    "EXPIRED": "Expired",
}
LAST_N = 10


class NotReady(store.RequestError):
    status, code = 409, "not_ready"


class Expired(store.RequestError):
    status, code = 410, "expired"


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def as_json(r: ReportRequest) -> dict:
    """A request as the API shows it: never its password."""
    return {
        "request_id": r.request_id,
        "course_id": r.course_id,
        "batch_id": r.batch_id,
        "report_type": r.report_type,
        "status": r.status,
        "status_label": STATUS_LABELS[r.status],
        "requested_by": r.requested_by,
        "submitted_at": _iso(r.submitted_at),
        "completed_at": _iso(r.completed_at),
        "row_count": r.row_count,
        "file_size": r.file_size,
        "attempts": r.attempts,
        "error": r.error,
    }


def downloadable(s: Session, user_id: str, course_id: str, batch_id: str) -> list[ReportRequest]:
    """The batch's last ten requests of the types this user may download, newest first."""
    course, batch = store.visible_batch(s, user_id, course_id, batch_id)
    types = access.report_types_for(user_id, course, batch)
    return list(
        s.scalars(
            select(ReportRequest)
            .where(ReportRequest.batch_id == batch_id, ReportRequest.report_type.in_(types))
            .order_by(ReportRequest.submitted_at.desc(), ReportRequest.request_id.desc())
            .limit(LAST_N)
        )
    )


def visible_request(s: Session, user_id: str, request_id: str) -> ReportRequest:
    """The request if the user may download its type for its batch; 404 when they have no role."""
    request = s.get(ReportRequest, request_id)
    if request is None:
        raise store.NotFound(f"no report request {request_id!r}")
    course, batch = s.get(Course, request.course_id), s.get(Batch, request.batch_id)
    if course is None or batch is None or not access.can_see_batch(user_id, course, batch):
        raise store.NotFound(f"no report request {request_id!r}")
    if not access.may_request(user_id, course, batch, request.report_type):
        raise store.Forbidden(f"you may not download {request.report_type} reports of batch {request.batch_id!r}")
    return request


def download_name(request: ReportRequest) -> str:
    return f"{request.batch_id}_{request.report_type}_{request.report_date:%Y%m%d}.zip"


def check_downloadable(s: Session, user_id: str, request_id: str, client_address: str | None) -> ReportRequest:
    """Access and status checks at download time, and the audit row."""
    request = visible_request(s, user_id, request_id)
    if request.status == "EXPIRED":
        raise Expired(f"report {request_id} has expired; request it again")
    if request.status != "SUCCESS":
        raise NotReady(f"report {request_id} is not ready ({STATUS_LABELS[request.status]})")
    s.add(Download(request_id=request_id, user_id=user_id, client_address=client_address, downloaded_at=utcnow()))
    s.commit()
    return request


def open_download(s: Session, user_id: str, request_id: str, client_address: str | None):
    """(request, file name, a readable stream of the zip)."""
    request = check_downloadable(s, user_id, request_id, client_address)
    return request, download_name(request), report_store().open(request.object_key)
