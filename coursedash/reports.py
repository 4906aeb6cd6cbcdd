"""Reading requests back: what a user may see and download (docs/lifecycle.md, docs/api.md)."""

from __future__ import annotations

import datetime as dt
import logging
import re

from sqlalchemy import Text, case, cast, or_, select, update
from sqlalchemy.orm import Session

from coursedash import access, store
from coursedash.config import settings
from coursedash.db import Batch, Course, Download, ReportRequest, utcnow
from coursedash.storage import Missing, report_store

log = logging.getLogger(__name__)

STATUS_LABELS = {
    "SUBMITTED": "Submitted",
    "PROCESSING": "Pending",
    "SUCCESS": "Success",
    "FAILED": "Failure",
    "EXPIRED": "Expired",
    "CANCELLED": "Cancelled",
}
LAST_N = 10
REPORT_NAMES = {
    "progress": "Course Progress Exhaust",
    "userinfo": "User Profile Exhaust",
    "response": "Question Set Report",
}


class NotReady(store.RequestError):
    status, code = 409, "not_ready"


class Expired(store.RequestError):
    status, code = 410, "expired"


FILE_GONE = "the file is no longer available; request the report again"


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def as_json(r: ReportRequest) -> dict:
    """A request as the API shows it: never its password, nor the address a notice goes to."""
    return {
        "request_id": r.request_id,
        "course_id": r.course_id,
        "batch_id": r.batch_id,
        "report_type": r.report_type,
        "report_name": REPORT_NAMES[r.report_type],
        "status": r.status,
        "status_label": STATUS_LABELS[r.status],
        "requested_by": r.requested_by,
        "submitted_at": _iso(r.submitted_at),
        "completed_at": _iso(r.completed_at),
        "row_count": r.row_count,
        "file_size": r.file_size,
        "attempts": r.attempts,
        "max_attempts": settings().max_attempts,
        "will_retry": store.will_retry(r),
        "error": r.error,
        "data_notes": list(r.data_notes or []),
        "password_protected": r.password_protected,
        "cancellable": store.cancellable(r),
        # Per channel: null (none), "pending" (sent once it is final), "sent" or "failed".
        "notify": {"email": r.email_notice, "webhook": r.webhook_notice},
    }


def batch_status(batch: Batch, today: dt.date | None = None) -> str:
    """upcoming before start_date, live until the end of end_date (none: for ever), then expired."""
    today = today or utcnow().date()
    if batch.start_date is not None and today < batch.start_date:
        return "upcoming"
    if batch.end_date is not None and today > batch.end_date:
        return "expired"
    return "live"


def batch_figures(batch: Batch) -> dict:
    """How the batch is doing, as of `figures_as_of`: counts only, never who.

    The figures and their formulas: docs/reports.md, "The dashboard's figures".

    Each figure is null until a sync or a night has computed it (a batch synced before they existed).
    """
    bands = None
    if batch.progress_not_started is not None:
        bands = {
            "not_started": batch.progress_not_started,
            "started": batch.progress_started,
            "past_half": batch.progress_past_half,
            "completed": batch.progress_completed,
        }
    return {
        "enrolment_count": batch.enrolment_count,
        "completed_count": batch.completed_count,
        "progress_bands": bands,
        "certificates_issued": batch.certificates_issued,
        "weekly_enrolments": batch.weekly_enrolments,
        "average_total_score": batch.average_total_score,
        "figures_as_of": _iso(batch.figures_as_of),
    }


def requestable_types(user_id: str, course: Course, batch: Batch) -> list[str]:
    """The report types this user may request for this batch now (userinfo needs a consent course)."""
    return [
        t for t in access.report_types_for(user_id, course, batch) if t != "userinfo" or course.user_consent_required
    ]


def _mine_first(s: Session, user_id: str, course_ids=None) -> tuple[list[Course], list[Batch]]:
    """Courses and batches on which the user may have a role: a superset, access decides."""
    batch_role = Batch.created_by == user_id
    # The mentors JSON holds each id as a JSON string; a plain id appears in it verbatim.
    if re.fullmatch(r"[A-Za-z0-9_.:@+-]+", user_id):
        batch_role = or_(batch_role, cast(Batch.mentors, Text).contains(user_id, autoescape=True))
    else:
        batch_role = Batch.batch_id.is_not(None)  # unusual id: let access decide on every batch
    batches = select(Batch).where(batch_role)
    courses = select(Course).where(
        or_(Course.created_by == user_id, Course.course_id.in_(select(Batch.course_id).where(batch_role)))
    )
    if course_ids is not None:
        batches = batches.where(Batch.course_id.in_(course_ids))
        courses = courses.where(Course.course_id.in_(course_ids))
    return list(s.scalars(courses)), list(s.scalars(batches))


def visible_courses(s: Session, user_id: str, q: str = "") -> list[Course]:
    """Courses the user created or has a role on one of their batches, matched by id or name."""
    courses, batches = _mine_first(s, user_id)
    by_id = {c.course_id: c for c in courses}
    seen = {c.course_id for c in courses if access.roles(user_id, c)}
    seen |= {
        b.course_id for b in batches if b.course_id in by_id and access.can_see_batch(user_id, by_id[b.course_id], b)
    }
    needle = q.strip().casefold()
    found = [
        by_id[cid]
        for cid in seen
        if not needle or needle in cid.casefold() or needle in (by_id[cid].name or "").casefold()
    ]
    return sorted(found, key=lambda c: ((c.name or "").casefold(), c.course_id))


def visible_batches(s: Session, user_id: str, course_id: str) -> tuple[Course, list[Batch]]:
    """The course and the batches of it the user has a role on; 404 when there are none."""
    course = s.get(Course, course_id)
    if course is None:
        raise store.NotFound(f"no course {course_id!r}")
    if access.roles(user_id, course):
        batches = list(s.scalars(select(Batch).where(Batch.course_id == course_id)))
    else:
        batches = [b for b in _mine_first(s, user_id, [course_id])[1] if access.can_see_batch(user_id, course, b)]
        if not batches:
            raise store.NotFound(f"no course {course_id!r}")
    batches.sort(key=lambda b: (b.start_date or dt.date.min, (b.name or "").casefold(), b.batch_id))
    return course, batches


def downloadable(s: Session, user_id: str, course_id: str, batch_id: str) -> list[ReportRequest]:
    """The batch's "last ten" of the types this user may download: what people came for first.

    First what can be downloaded or is on its way (Success, Submitted, Pending, a
    Failure waiting for its retry), then what has ended (a final Failure, Expired,
    Cancelled); newest first within each (docs/lifecycle.md). However many requests are
    cancelled or replaced, they never push a ready report off the list.
    """
    course, batch = store.visible_batch(s, user_id, course_id, batch_id)
    types = access.report_types_for(user_id, course, batch)
    alive = or_(ReportRequest.status.in_(("SUCCESS", "SUBMITTED", "PROCESSING")), store.retryable())
    return list(
        s.scalars(
            select(ReportRequest)
            .where(ReportRequest.batch_id == batch_id, ReportRequest.report_type.in_(types))
            .order_by(case((alive, 0), else_=1), ReportRequest.submitted_at.desc(), ReportRequest.request_id.desc())
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
    from coursedash.nightly import report_file_name

    assert request.report_date is not None  # set by the night that built it
    return report_file_name(request, request.report_date, "zip")


def ready_request(s: Session, user_id: str, request_id: str) -> ReportRequest:
    """The request if this user may download it now: access and status checks, no audit row."""
    request = visible_request(s, user_id, request_id)
    if request.status == "EXPIRED":
        raise Expired(f"report {request_id} has expired; request it again")
    if request.status != "SUCCESS":
        raise NotReady(f"report {request_id} is not ready ({STATUS_LABELS[request.status]})")
    return request


def record_download(s: Session, user_id: str, request: ReportRequest, client_address: str | None) -> None:
    """The audit row: who downloaded which report, when, from where."""
    s.add(
        Download(request_id=request.request_id, user_id=user_id, client_address=client_address, downloaded_at=utcnow())
    )
    s.commit()


def open_download(s: Session, user_id: str, request_id: str, client_address: str | None, signed: bool = False):
    """(request, file name, signed URL or None, stream or None), audited once the file is found.

    With `signed`, a store that signs URLs (S3) gives a URL instead of a stream.
    """
    request = ready_request(s, user_id, request_id)
    name = download_name(request)
    store_ = report_store()
    try:
        if not request.object_key or (signed and not store_.exists(request.object_key)):
            raise Missing(request.object_key)
        url = store_.signed_url(request.object_key, name) if signed else None
        stream = None if url else store_.open(request.object_key)
    except Missing:
        _file_gone(s, request)
        raise Expired(FILE_GONE) from None
    record_download(s, user_id, request, client_address)
    return request, name, url, stream


def _file_gone(s: Session, request: ReportRequest) -> None:
    """A SUCCESS whose file left the store is EXPIRED: nobody can download it again."""
    log.warning(
        "request %s is SUCCESS but %s is not in the report store; marking it EXPIRED",
        request.request_id,
        request.object_key,
    )
    s.execute(
        update(ReportRequest)
        .where(ReportRequest.request_id == request.request_id, ReportRequest.status == "SUCCESS")
        .values(status="EXPIRED")
        .execution_options(synchronize_session=False)
    )
    s.commit()
