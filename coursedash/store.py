"""The report-request lifecycle (docs/lifecycle.md).

SUBMITTED -> PROCESSING -> SUCCESS | FAILED; a transient FAILED with attempts left is
taken again by the next run, so it keeps its (encrypted) password until it is final.
Its requester may cancel it while SUBMITTED or waiting for that retry: CANCELLED.
Every status change is a compare-and-set UPDATE, so two runs can never both own a
request and a late, stale run cannot overwrite what a newer run recorded.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
import uuid

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from coursedash import REPORT_TYPES, access, passwords
from coursedash.config import settings
from coursedash.db import Batch, Course, ReportRequest, rowcount, utcnow

log = logging.getLogger(__name__)


class RequestError(Exception):
    """A refusal with the HTTP status and code the API answers with."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(RequestError):
    pass


class BadPassword(BadRequest):
    """The zip password is missing where it is mandatory, or breaks the policy."""


class NotFound(RequestError):
    status, code = 404, "not_found"


class Forbidden(RequestError):
    status, code = 403, "forbidden"


class OpenRequestExists(RequestError):
    status, code = 409, "open_request_exists"


class NotRequestable(RequestError):
    status, code = 422, "not_requestable"


class NotCancellable(RequestError):
    status, code = 409, "not_cancellable"


class TooManyRequests(RequestError):
    """A user's submits or cancels over the hourly limit; `retry_after`: whole seconds until one more is allowed."""

    status, code = 429, "too_many_requests"

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after_seconds=retry_after)
        self.retry_after = retry_after


RATE_WINDOW = dt.timedelta(hours=1)


def visible_batch(s: Session, user_id: str, course_id: str, batch_id: str) -> tuple[Course, Batch]:
    """The course and batch, if the user has a role on them; 404 otherwise so ids cannot be probed."""
    course = s.get(Course, course_id)
    batch = s.get(Batch, batch_id)
    if course is None or batch is None or batch.course_id != course_id:
        raise NotFound(f"no batch {batch_id!r} in course {course_id!r}")
    if not access.can_see_batch(user_id, course, batch):
        raise NotFound(f"no batch {batch_id!r} in course {course_id!r}")
    return course, batch


def submit(
    s: Session,
    user_id: str,
    course_id: str,
    batch_id: str,
    report_type: str,
    password: str | None = None,
    email: str | None = None,
) -> ReportRequest:
    """A new request; `email` (the token's claim) gets an e-mail notice when SMTP is configured."""
    if report_type not in REPORT_TYPES:
        raise BadRequest(f"unknown report type {report_type!r}: use one of {', '.join(REPORT_TYPES)}")
    course, batch = visible_batch(s, user_id, course_id, batch_id)
    if not access.may_request(user_id, course, batch, report_type):
        raise Forbidden(f"you may not request a {report_type} report for batch {batch_id!r}")
    if report_type == "userinfo" and not course.user_consent_required:
        raise NotRequestable(
            f"course {course_id!r} does not ask learners for consent, so it has no User Profile report"
        )
    if password == "":
        password = None
    if password is None and access.PASSWORD_REQUIRED[report_type]:
        raise BadPassword(f"a password is mandatory for a {report_type} report: {passwords.POLICY}")
    if password is not None:
        try:
            passwords.check_policy(password)
        except passwords.PasswordPolicyError as e:
            raise BadPassword(str(e)) from None

    address = notice_address(email) if settings().smtp_url else None
    _within_rate(s, user_id, "report requests", ReportRequest.submitted_at, settings().submits_per_hour)
    request_id = str(uuid.uuid4())
    _supersede_retries(s, user_id, batch_id, report_type, request_id)
    request = ReportRequest(
        request_id=request_id,
        course_id=course_id,
        batch_id=batch_id,
        report_type=report_type,
        requested_by=user_id,
        status="SUBMITTED",
        password_token=passwords.encrypt(password) if password else None,
        password_protected=password is not None,
        submitted_at=utcnow(),
        attempts=0,
        notify_email=address,
        email_notice="pending" if address else None,
        webhook_notice="pending" if settings().webhook_url else None,
    )
    s.add(request)
    try:
        s.commit()
    except IntegrityError:
        s.rollback()
        existing = open_request(s, user_id, batch_id, report_type)
        raise OpenRequestExists(
            f"a {report_type} report for batch {batch_id!r} is already requested and being "
            f"processed (request {existing.request_id if existing else '?'})",
            request_id=existing.request_id if existing else None,
        ) from None
    log.info("request %s submitted: %s for batch %s by %s", request.request_id, report_type, batch_id, user_id)
    return request


UNUSABLE_ADDRESS = "the e-mail address for the report-ready notice can never be reached: "


def notice_address(email: str | None) -> str | None:
    """Where a notice goes: the address with its domain in IDNA (ASCII); None when `email` is not an address.

    Every mail server takes an IDNA domain; a part before the @ that is not ASCII needs a
    server offering SMTPUTF8, which coursedash.notify checks when it sends. An address
    with an invisible or space character, or a domain IDNA cannot spell, is refused
    (BadRequest) rather than kept for a notice that could never go. It goes into a mail
    header, so nothing that could break one passes.
    """
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    if not email:
        return None
    text = email.strip()
    local, _, domain = text.rpartition("@")
    if not local or "." not in domain.strip(".") or len(text) > 254:
        log.warning("the token's email claim is not an e-mail address; no e-mail notice")
        return None
    if any(unicodedata.category(c)[0] in "CZ" for c in text):  # zero-width, control, space, unassigned
        raise BadRequest(UNUSABLE_ADDRESS + "it contains an invisible or space character")
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise BadRequest(UNUSABLE_ADDRESS + "its domain is not a valid internationalised domain name") from None
    if not local.isascii():  # RFC 6531: sent as it is, to a server offering SMTPUTF8
        if len(local.encode()) > 64 or re.search(r'[\s"(),:;<>@\[\\\]]', local):
            log.warning("the token's email claim is not an e-mail address; no e-mail notice")
            return None
        return f"{local}@{ascii_domain}"
    try:
        return Address(addr_spec=f"{local}@{ascii_domain}").addr_spec
    except (HeaderParseError, ValueError, IndexError):
        log.warning("the token's email claim is not an e-mail address; no e-mail notice")
        return None


def open_request(s: Session, user_id: str, batch_id: str, report_type: str) -> ReportRequest | None:
    return s.scalars(
        select(ReportRequest).where(
            ReportRequest.requested_by == user_id,
            ReportRequest.batch_id == batch_id,
            ReportRequest.report_type == report_type,
            ReportRequest.status.in_(("SUBMITTED", "PROCESSING")),
        )
    ).first()


def _supersede_retries(s: Session, user_id: str, batch_id: str, report_type: str, new_request_id: str) -> None:
    """A new request replaces a failed one still waiting for its retry: run only one.

    The new request carries the notice; the replaced one sends none, and its message
    now says it will not be retried, and why.
    """
    waiting = s.scalars(
        select(ReportRequest).where(
            ReportRequest.requested_by == user_id,
            ReportRequest.batch_id == batch_id,
            ReportRequest.report_type == report_type,
            retryable(),
        )
    ).all()
    for r in waiting:
        reason = (r.error or "the report could not be built").split(" It will be retried")[0]
        s.execute(
            update(ReportRequest)
            .where(ReportRequest.request_id == r.request_id, retryable())
            .values(
                error=f"{reason} It will not be retried: request {new_request_id} replaced it.",
                error_transient=False,
                password_token=None,
                notify_email=None,
                email_notice=None,
                webhook_notice=None,
            )
            .execution_options(synchronize_session=False)
        )


def _within_rate(s: Session, user_id: str, what: str, when, limit: int, *where) -> None:
    """TooManyRequests when the user's rows with `when` in the last hour already reach `limit`.

    Counted in the database, so every server process (serve --workers, the CLI, the
    Sunbird facade) shares one limit; simultaneous calls may pass it by a few.
    """
    since = utcnow() - RATE_WINDOW
    mine = [ReportRequest.requested_by == user_id, when >= since, *where]
    count = s.execute(select(func.count()).select_from(ReportRequest).where(*mine)).scalar_one()
    if count < limit:
        return
    # One more is allowed once the oldest of those over the limit leaves the window.
    freed = s.execute(select(when).where(*mine).order_by(when).offset(count - limit).limit(1)).scalar_one()
    seconds = max(1, int((freed + RATE_WINDOW - utcnow()).total_seconds()) + 1)
    log.warning("user %s: %d %s in the last hour, the limit is %d", user_id, count, what, limit)
    raise TooManyRequests(
        f"too many {what}: at most {limit} an hour; try again in {_duration(seconds)}", retry_after=seconds
    )


def _duration(seconds: int) -> str:
    return f"{seconds} seconds" if seconds < 120 else f"{-(-seconds // 60)} minutes"


def will_retry(r: ReportRequest) -> bool:
    """A FAILED request the next nightly run takes again (docs/lifecycle.md, "Retries")."""
    return r.status == "FAILED" and bool(r.error_transient) and r.attempts < settings().max_attempts


def retryable():
    """The SQL condition of `will_retry`."""
    return and_(
        ReportRequest.status == "FAILED",
        ReportRequest.error_transient.is_(True),
        ReportRequest.attempts < settings().max_attempts,
    )


def claim(s: Session, run_id: str) -> list[ReportRequest]:
    """Take every request this run should build; safe to call again for the same run."""
    now = utcnow()
    stale_before = now - dt.timedelta(minutes=settings().stale_after_minutes)
    candidates = s.scalars(
        select(ReportRequest)
        .where(
            or_(
                ReportRequest.status == "SUBMITTED",
                retryable(),
                and_(
                    ReportRequest.status == "PROCESSING",
                    or_(ReportRequest.claimed_by_run == run_id, ReportRequest.claimed_at < stale_before),
                ),
            )
        )
        .order_by(ReportRequest.submitted_at)
        .execution_options(populate_existing=True)  # other runs may have changed them
    ).all()
    claimed = []
    for r in candidates:
        mine_already = r.status == "PROCESSING" and r.claimed_by_run == run_id
        if r.status == "PROCESSING" and not mine_already:
            if r.attempts >= settings().max_attempts:
                _give_up(s, r)
                continue
            log.warning("request %s was left PROCESSING by run %s; taking it again", r.request_id, r.claimed_by_run)
        # Compare-and-set on everything the candidate was chosen by: a row another run
        # or a new submit changed since the SELECT is left alone.
        unchanged = [
            ReportRequest.request_id == r.request_id,
            ReportRequest.status == r.status,
            ReportRequest.attempts == r.attempts,
            ReportRequest.error_transient.is_(r.error_transient),
            (ReportRequest.claimed_by_run == r.claimed_by_run)
            if r.claimed_by_run is not None
            else ReportRequest.claimed_by_run.is_(None),
        ]
        try:
            result = s.execute(
                update(ReportRequest)
                .where(*unchanged)
                .values(
                    status="PROCESSING",
                    claimed_by_run=run_id,
                    claimed_at=now,
                    attempts=r.attempts if mine_already else r.attempts + 1,
                    error=None,
                )
                .execution_options(synchronize_session=False)
            )
            s.commit()
        except IntegrityError:  # a newer open request for the same report won
            s.rollback()
            continue
        if rowcount(result) == 1:
            claimed.append(r.request_id)
    return list(
        s.scalars(
            select(ReportRequest)
            .where(ReportRequest.request_id.in_(claimed))
            .order_by(ReportRequest.submitted_at)
            .execution_options(populate_existing=True)
        ).all()
    )


def cancel(s: Session, user_id: str, request_id: str) -> ReportRequest:
    """The requester takes back a request not yet being built (docs/lifecycle.md, "Cancelling").

    One compare-and-set UPDATE: a cancel racing the nightly claim is settled by the
    database, and exactly one of them wins.
    """
    request = s.get(ReportRequest, request_id)
    course = s.get(Course, request.course_id) if request else None
    batch = s.get(Batch, request.batch_id) if request else None
    if request is None or course is None or batch is None or not access.can_see_batch(user_id, course, batch):
        raise NotFound(f"no report request {request_id!r}")
    if request.requested_by != user_id:
        raise Forbidden(f"only the person who requested report {request_id} may cancel it")
    _within_rate(
        s,
        user_id,
        "cancelled requests",
        ReportRequest.completed_at,
        settings().cancels_per_hour,
        ReportRequest.status == "CANCELLED",
    )
    result = s.execute(
        update(ReportRequest)
        .where(
            ReportRequest.request_id == request_id,
            ReportRequest.requested_by == user_id,
            or_(ReportRequest.status == "SUBMITTED", retryable()),
        )
        .values(
            status="CANCELLED",
            completed_at=utcnow(),
            error=None,
            error_transient=False,
            password_token=None,
            notify_email=None,
            email_notice=None,
            webhook_notice=None,
        )
        .execution_options(synchronize_session=False)
    )
    s.commit()
    s.refresh(request)
    if rowcount(result) != 1:
        if request.status == "PROCESSING":
            raise NotCancellable(f"report {request_id} is being built now and can no longer be cancelled")
        raise NotCancellable(
            f"report {request_id} has already ended ({request.status.lower()}); it cannot be cancelled"
        )
    log.info("request %s cancelled by %s", request_id, user_id)
    return request


def cancellable(r: ReportRequest) -> bool:
    return r.status == "SUBMITTED" or will_retry(r)


def _give_up(s: Session, r: ReportRequest) -> None:
    """A request whose runs keep dying is failed for good rather than taken every night."""
    log.error("request %s was left PROCESSING %d times; giving up", r.request_id, r.attempts)
    reason = f"the nightly run building this report stopped before it finished, {r.attempts} times"
    s.execute(
        update(ReportRequest)
        .where(
            ReportRequest.request_id == r.request_id,
            ReportRequest.status == "PROCESSING",
            ReportRequest.claimed_by_run == r.claimed_by_run,
        )
        .values(
            status="FAILED",
            error=failure_message(reason, r.attempts, transient=True),
            error_transient=False,
            password_token=None,
            completed_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    s.commit()


def _finish(s: Session, request_id: str, run_id: str, **values) -> bool:
    result = s.execute(
        update(ReportRequest)
        .where(
            ReportRequest.request_id == request_id,
            ReportRequest.status == "PROCESSING",
            ReportRequest.claimed_by_run == run_id,
        )
        .values(completed_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    s.commit()
    if rowcount(result) != 1:
        log.warning("request %s is no longer owned by run %s; its outcome was not recorded", request_id, run_id)
    return rowcount(result) == 1


def complete(
    s: Session,
    request_id: str,
    run_id: str,
    *,
    rows: int,
    size: int,
    key: str,
    report_date: dt.date,
    notes: list[dict] | None = None,
) -> bool:
    return _finish(
        s,
        request_id,
        run_id,
        status="SUCCESS",
        password_token=None,
        row_count=rows,
        file_size=size,
        object_key=key,
        report_date=report_date,
        error=None,
        error_transient=False,
        data_notes=notes or [],
    )


def failure_message(reason: str, attempts: int, transient: bool) -> str:
    """The stored error: why, and whether and when the report is tried again (docs/lifecycle.md)."""
    limit = settings().max_attempts
    sentence = reason[:1].upper() + reason[1:].rstrip(".") + "."
    if transient and attempts < limit:
        return f"{sentence} It will be retried in the next nightly run (attempt {attempts + 1} of {limit})."
    if transient:
        return f"{sentence} It will not be retried: all {limit} attempts failed. Request the report again later."
    return f"{sentence} It will not be retried."


def fail(s: Session, request_id: str, run_id: str, reason: str, *, transient: bool) -> bool:
    request = s.get(ReportRequest, request_id)
    attempts = request.attempts if request is not None else settings().max_attempts
    values = dict(status="FAILED", error=failure_message(reason, attempts, transient), error_transient=transient)
    if not (transient and attempts < settings().max_attempts):
        values["password_token"] = None  # final: the password is erased
    return _finish(s, request_id, run_id, **values)


def expire(s: Session, completed_before: dt.datetime) -> list[ReportRequest]:
    """Mark SUCCESS reports completed before the cut-off EXPIRED; return them (their files go next)."""
    candidates = s.scalars(
        select(ReportRequest).where(ReportRequest.status == "SUCCESS", ReportRequest.completed_at < completed_before)
    ).all()
    expired = []
    for r in candidates:
        result = s.execute(
            update(ReportRequest)
            .where(ReportRequest.request_id == r.request_id, ReportRequest.status == "SUCCESS")
            .values(status="EXPIRED")
            .execution_options(synchronize_session=False)
        )
        s.commit()
        if rowcount(result) == 1:
            expired.append(r)
    return expired


def password_of(request: ReportRequest) -> str | None:
    return passwords.decrypt(request.password_token) if request.password_token else None
