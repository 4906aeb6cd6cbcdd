"""Report-ready notices (CONTRACT §2): an e-mail to the requester and/or a signed webhook.

The nightly `notify_requesters` task sends them once a request is final: SUCCESS, or a
FAILED that will not be retried (never for CANCELLED). Each channel's outcome is recorded
on the request right after it is sent, so a rerun never sends it again; a notice that
could not be sent stays pending for the next run, until the report's retention ends.
A notice names the request and links to the dashboard: never the file, a link that
opens it, a password or a learner's data.

A crash between a server accepting a notice and its being recorded would send it again
on the next run; the e-mail's Message-ID and the webhook's Idempotency-Key are the same
every time, so the receiver can tell it is a repeat.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from coursedash import db, store
from coursedash.config import settings
from coursedash.db import Batch, Course, ReportRequest, utcnow
from coursedash.reports import REPORT_NAMES, STATUS_LABELS, _iso

log = logging.getLogger(__name__)

PENDING, SENT, FAILED = "pending", "sent", "failed"
SMTP_TIMEOUT = 30.0
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_TRIES = 4
WEBHOOK_BACKOFF = 1.0  # seconds before the second try, doubled after each


class Refused(Exception):
    """The receiver refused this notice for good: it is not tried again."""


class Later(Exception):
    """This notice cannot be sent now: the next run tries again."""


class ChannelDown(Later):
    """The channel cannot send anything now: the rest of this run skips it."""


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _when(value: dt.datetime | None) -> str:
    return f"{value:%d/%m/%Y %H:%M} UTC" if value else "—"


def dashboard_link(r: ReportRequest) -> str:
    """The batch's page on the dashboard (sign-in needed): never the file itself."""
    return f"{settings().public_url}/#course={quote(r.course_id, safe='')}&batch={quote(r.batch_id, safe='')}"


def email_message(r: ReportRequest, course: Course | None, batch: Batch | None) -> EmailMessage:
    report = REPORT_NAMES[r.report_type]
    course_name = _one_line(course.name if course else None) or r.course_id
    batch_name = _one_line(batch.name if batch else None) or r.batch_id
    ok = r.status == "SUCCESS"
    msg = EmailMessage()
    msg["Subject"] = f"{report} for {batch_name}: {'ready to download' if ok else 'could not be built'}"
    msg["From"] = settings().mail_from
    msg["To"] = r.notify_email
    msg["Date"] = formatdate(usegmt=True)
    msg["Message-ID"] = f"<notice-{r.request_id}@coursedash>"  # the same on a resend
    facts = [
        f"Course:    {course_name} ({r.course_id})",
        f"Batch:     {batch_name} ({r.batch_id})",
        f"Report:    {report}",
        f"Status:    {STATUS_LABELS[r.status]}",
        f"Requested: {_when(r.submitted_at)}",
        f"Finished:  {_when(r.completed_at)}",
    ]
    if ok:
        facts.append(f"Rows:      {r.row_count}")
        opening = f"The {report} you requested is ready."
        closing = (
            f"Download it from the Course Dashboard (sign in first):\n{dashboard_link(r)}\n\n"
            f"It can be downloaded for {settings().retention_days} days. "
            "If you chose a password for it, you need that password to open the zip."
        )
    else:
        opening = f"The {report} you requested could not be built.\n\nWhy: {r.error or 'the report could not be built'}"
        closing = f"You can request it again on the Course Dashboard:\n{dashboard_link(r)}"
    msg.set_content(
        "Hello,\n\n" + opening + "\n\n" + "\n".join(facts) + "\n\n" + closing + "\n\n"
        "You get this e-mail because you requested this report.\n-- Course Dashboard\n"
    )
    return msg


def webhook_event(r: ReportRequest) -> bytes:
    return json.dumps(
        {
            "request_id": r.request_id,
            "course_id": r.course_id,
            "batch_id": r.batch_id,
            "report_type": r.report_type,
            "status": r.status,
            "completed_at": _iso(r.completed_at),
            "row_count": r.row_count,
        },
        separators=(",", ":"),
    ).encode()


def signature(body: bytes, secret: str) -> str:
    """The X-Coursedash-Signature value: HMAC-SHA256 of the exact body bytes, in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Mailer:
    """One SMTP connection for the run, opened on the first e-mail (STARTTLS where offered)."""

    def __init__(self, url: str | None):
        self.url = url
        self.smtp: smtplib.SMTP | None = None
        self.down: str | None = None if url else "COURSEDASH_SMTP_URL is not set"

    def _connect(self) -> smtplib.SMTP:
        parts = urlsplit(self.url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ChannelDown("COURSEDASH_SMTP_URL must look like smtp://user:password@host:587")
        context = ssl.create_default_context()
        if parts.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(parts.hostname, parts.port or 465, timeout=SMTP_TIMEOUT, context=context)
        else:
            smtp = smtplib.SMTP(parts.hostname, parts.port or 25, timeout=SMTP_TIMEOUT)
        try:
            if parts.scheme == "smtp":
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=context)
                    smtp.ehlo()
            if parts.username:
                if not isinstance(smtp.sock, ssl.SSLSocket):
                    raise ChannelDown("the mail server offers no TLS: the SMTP password is not sent in clear")
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, msg: EmailMessage) -> None:
        if self.down:
            raise ChannelDown(self.down)
        try:
            if self.smtp is None:
                self.smtp = self._connect()
            self.smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _text in e.recipients.values()]
            if all(500 <= code < 600 for code in codes):
                raise Refused(f"the mail server refused the address ({codes[0]})") from None
            raise Later(f"the mail server deferred the address ({codes[0]})") from None
        except ChannelDown as e:
            self.down = str(e)
            raise
        except (smtplib.SMTPException, OSError) as e:
            self.down = f"the mail server could not be used ({type(e).__name__}: {e})"
            self.close()
            raise ChannelDown(self.down) from None

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self.smtp = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect would turn the POST into a GET: answer it as refused


class Webhook:
    """POSTs signed events; retries 5xx and timeouts with backoff, never a 4xx."""

    def __init__(self, url: str | None, secret: str | None):
        self.url, self.secret = url, secret
        self.down = None
        if not url:
            self.down = "COURSEDASH_WEBHOOK_URL is not set"
        elif not secret:
            self.down = "COURSEDASH_WEBHOOK_SECRET is not set: events are never sent unsigned"
        self.opener = urllib.request.build_opener(_NoRedirect)

    def send(self, r: ReportRequest) -> None:
        if self.down:
            raise ChannelDown(self.down)
        body = webhook_event(r)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "coursedash-notify",
            "X-Coursedash-Signature": signature(body, self.secret),
            "Idempotency-Key": f"coursedash-{r.request_id}",
        }
        delay = WEBHOOK_BACKOFF
        for attempt in range(1, WEBHOOK_TRIES + 1):
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with self.opener.open(request, timeout=WEBHOOK_TIMEOUT):
                    return
            except urllib.error.HTTPError as e:
                if e.code < 500:
                    raise Refused(f"the webhook answered {e.code}") from None
                problem = f"the webhook answered {e.code}"
            except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                problem = f"the webhook could not be reached ({getattr(e, 'reason', e)})"
            log.warning("request %s: %s (try %d of %d)", r.request_id, problem, attempt, WEBHOOK_TRIES)
            if attempt < WEBHOOK_TRIES:
                time.sleep(delay)
                delay *= 2
        self.down = problem
        raise ChannelDown(problem)


# --- bookkeeping: every change a compare-and-set, like the request lifecycle ----------


def _claim(s: Session, r: ReportRequest, run_id: str) -> bool:
    """This run sends the request's notices; another run busy with them keeps them."""
    now = utcnow()
    result = s.execute(
        update(ReportRequest)
        .where(
            ReportRequest.request_id == r.request_id,
            or_(
                ReportRequest.notice_claimed_by.is_(None),
                ReportRequest.notice_claimed_by == run_id,  # this run's task, tried again
                ReportRequest.notice_claimed_at < now - dt.timedelta(minutes=settings().stale_after_minutes),
            ),
        )
        .values(notice_claimed_by=run_id, notice_claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    s.commit()
    return result.rowcount == 1


def _release(s: Session, r: ReportRequest, run_id: str) -> None:
    s.execute(
        update(ReportRequest)
        .where(ReportRequest.request_id == r.request_id, ReportRequest.notice_claimed_by == run_id)
        .values(notice_claimed_by=None, notice_claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    s.commit()


def _record(s: Session, r: ReportRequest, channel: str, outcome: str, run_id: str | None = None) -> None:
    """A channel's notice settled: sent, or failed for good. The e-mail address goes with it."""
    column = getattr(ReportRequest, f"{channel}_notice")
    values = {f"{channel}_notice": outcome, f"{channel}_notice_at": utcnow()}
    if channel == "email":
        values["notify_email"] = None
    where = [ReportRequest.request_id == r.request_id, column == PENDING]
    if run_id is not None:
        where.append(ReportRequest.notice_claimed_by == run_id)
    s.execute(update(ReportRequest).where(*where).values(**values).execution_options(synchronize_session=False))
    s.commit()


def _pending(s: Session) -> list[ReportRequest]:
    return list(
        s.scalars(
            select(ReportRequest)
            .where(
                ReportRequest.status.in_(("SUCCESS", "FAILED", "EXPIRED")),
                or_(ReportRequest.email_notice == PENDING, ReportRequest.webhook_notice == PENDING),
            )
            .order_by(ReportRequest.completed_at)
        )
    )


def _channels(r: ReportRequest) -> list[str]:
    return [c for c in ("email", "webhook") if getattr(r, f"{c}_notice") == PENDING]


def notify_requesters(run_id: str) -> dict:
    """Send every notice that is due; never raises, so notices never fail the night."""
    counts = {c: {SENT: 0, FAILED: 0, PENDING: 0} for c in ("email", "webhook")}
    try:
        _notify(run_id, counts)
    except Exception:  # a database gone away: every notice stays pending for the next run
        log.exception("notices could not be sent this run; the next run tries again")
    log.info("run %s notices: %s", run_id, counts)
    return counts


def _notify(run_id: str, counts: dict) -> None:
    cut_off = utcnow() - dt.timedelta(days=settings().retention_days)
    mailer = Mailer(settings().smtp_url)
    webhook = Webhook(settings().webhook_url, settings().webhook_secret)
    try:
        with db.session() as s:
            for r in _pending(s):
                if store.will_retry(r):
                    continue  # not final: nothing is sent while a retry is due
                if r.status == "EXPIRED" or r.completed_at < cut_off:
                    for channel in _channels(r):
                        log.error("request %s: its %s notice was never sent; giving up", r.request_id, channel)
                        _record(s, r, channel, FAILED)
                        counts[channel][FAILED] += 1
                    continue
                if not _claim(s, r, run_id):
                    log.info("request %s: another run is sending its notices", r.request_id)
                    continue
                try:
                    for channel in _channels(r):
                        counts[channel][_send(s, r, channel, mailer, webhook, run_id)] += 1
                finally:
                    _release(s, r, run_id)
    finally:
        mailer.close()


def _send(s: Session, r: ReportRequest, channel: str, mailer: Mailer, webhook: Webhook, run_id: str) -> str:
    """One channel's notice for one request: the outcome recorded, or why it waits."""
    try:
        if channel == "email":
            mailer.send(email_message(r, s.get(Course, r.course_id), s.get(Batch, r.batch_id)))
        else:
            webhook.send(r)
    except Refused as e:
        log.error("request %s: %s notice refused, not tried again: %s", r.request_id, channel, e)
        _record(s, r, channel, FAILED, run_id)
        return FAILED
    except Later as e:
        log.warning("request %s: %s notice not sent, the next run tries again: %s", r.request_id, channel, e)
        return PENDING
    except Exception:  # one notice failing never stops the others
        log.exception("request %s: %s notice not sent, the next run tries again", r.request_id, channel)
        return PENDING
    _record(s, r, channel, SENT, run_id)
    log.info("request %s: %s notice sent (%s)", r.request_id, channel, r.status)
    return SENT
