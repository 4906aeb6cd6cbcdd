"""Report-ready notices (docs/lifecycle.md): an e-mail to the requester and/or a signed webhook.

The nightly `notify_requesters` task sends them once a request is final: SUCCESS, or a
FAILED that will not be retried (never for CANCELLED). Each channel's outcome is recorded
on the request right after it is sent, so a rerun never sends it again; a notice that
could not be sent stays pending for the next run, until the report's retention ends.
A notice names the request and links to the dashboard: never the file, a link that
opens it, a password or a learner's data.

A crash between a server accepting a notice and its being recorded would send it again
on the next run; the e-mail's Message-ID and the webhook's Idempotency-Key are the same
every time, so the receiver can tell it is a repeat.

Deadlines, not timeouts: a socket timeout bounds one read, and a server that trickles a
byte every few seconds never trips it. Each e-mail and each webhook delivery (all its
tries) has COURSEDASH_NOTICE_TIMEOUT_SECONDS in all, and a run's notices together
COURSEDASH_NOTIFY_TIMEOUT_SECONDS; what is left waits for the next run. A message a
server refuses fails that notice alone; only a server that cannot be used at all (down,
too slow, no TLS for the password) is skipped for the rest of the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import logging
import smtplib
import socket
import ssl
import threading
import time
import urllib.error
import urllib.request
from email.message import EmailMessage
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import quote, unquote, urlsplit

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from coursedash import db, store
from coursedash.config import settings
from coursedash.db import Batch, Course, ReportRequest, rowcount, utcnow
from coursedash.reports import REPORT_NAMES, STATUS_LABELS, _iso

log = logging.getLogger(__name__)

PENDING, SENT, FAILED = "pending", "sent", "failed"
SMTP_TIMEOUT = 30.0  # one read or write; the whole e-mail has the notice deadline
WEBHOOK_TIMEOUT = 10.0  # one try; the whole delivery has the notice deadline
WEBHOOK_TRIES = 4
WEBHOOK_BACKOFF = 1.0  # seconds before the second try, doubled after each
WEBHOOK_RETRIED = {408, 429}  # "too slow" and "too many": worth another try, like a 5xx
LEASE_DEADLINES = 3  # a notice claimed this many notice deadlines ago was claimed by a run that died


class Refused(Exception):
    """The receiver refused this notice for good: it is not tried again."""


class Later(Exception):
    """This notice cannot be sent now: the next run tries again."""


class ChannelDown(Later):
    """The channel cannot send anything now: the rest of this run skips it."""


class Deadline:
    """A time limit for a whole exchange with a server, however slowly it answers.

    When it passes, the watched connections are shut down, which ends whatever read or
    write is blocked on them (the caller sees an OSError and `passed`). `watch` takes a
    callable giving the connection's socket now: smtplib swaps it for a TLS one.
    """

    def __init__(self, seconds: float):
        self.seconds = max(0.0, seconds)
        self.ends = time.monotonic() + self.seconds
        self.passed = False
        self._sockets: list = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(self.seconds, self._expire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return max(0.0, self.ends - time.monotonic())

    def watch(self, socket_of) -> None:
        with self._lock:
            self._sockets.append(socket_of)
            passed = self.passed
        if passed:
            _shut(socket_of())

    def _expire(self) -> None:
        with self._lock:
            self.passed = True
            sockets = list(self._sockets)
        for socket_of in sockets:
            _shut(socket_of())

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._timer.cancel()


def _shut(sock) -> None:
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed
        # The plain socket's shutdown, also for a TLS one: its own would clear the TLS
        # state under the thread reading it.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _when(value: dt.datetime | None) -> str:
    return f"{value:%d/%m/%Y %H:%M} UTC" if value else "—"


def dashboard_link(r: ReportRequest) -> str:
    """The batch's page on the dashboard (sign-in needed): never the file itself."""
    return f"{settings().public_url}/#course={quote(r.course_id, safe='')}&batch={quote(r.batch_id, safe='')}"


def email_message(r: ReportRequest, course: Course | None, batch: Batch | None, address: str) -> EmailMessage:
    report = REPORT_NAMES[r.report_type]
    course_name = _one_line(course.name if course else None) or r.course_id
    batch_name = _one_line(batch.name if batch else None) or r.batch_id
    ok = r.status == "SUCCESS"
    msg = EmailMessage()
    msg["Subject"] = f"{report} for {batch_name}: {'ready to download' if ok else 'could not be built'}"
    msg["From"] = settings().mail_from
    msg["To"] = address
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

    def _connect(self, deadline: Deadline) -> smtplib.SMTP:
        parts = urlsplit(self.url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ChannelDown("COURSEDASH_SMTP_URL must look like smtp://user:password@host:587")
        context = ssl.create_default_context()
        timeout = max(0.1, min(SMTP_TIMEOUT, deadline.remaining()))
        smtp: smtplib.SMTP
        if parts.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(timeout=timeout, context=context)
        else:
            smtp = smtplib.SMTP(timeout=timeout)
        # Connected here rather than by the constructor, so that the deadline watches the
        # greeting too; the constructor would have kept the host for TLS's name check.
        smtp._host = parts.hostname  # type: ignore[attr-defined]  # smtplib's own, undeclared: no public setter
        deadline.watch(lambda: smtp.sock)
        try:
            smtp.connect(parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25))
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

    def send(self, msg: EmailMessage, address: str, seconds: float) -> None:
        """Send one e-mail to `address` within `seconds`, connecting first if need be."""
        if self.down:
            raise ChannelDown(self.down)
        with Deadline(seconds) as deadline:
            try:
                if self.smtp is None:
                    self.smtp = self._connect(deadline)
                else:
                    smtp = self.smtp
                    deadline.watch(lambda: smtp.sock)
                if not address.isascii() and not self.smtp.has_extn("smtputf8"):
                    raise Refused("the address is not ASCII before the @ and the mail server does not offer SMTPUTF8")
                self.smtp.send_message(msg, to_addrs=[address])
            except smtplib.SMTPRecipientsRefused as e:
                codes = [code for code, _text in e.recipients.values()]
                if all(500 <= code < 600 for code in codes):
                    raise Refused(f"the mail server refused the address ({codes[0]})") from None
                raise Later(f"the mail server deferred the address ({codes[0]})") from None
            except smtplib.SMTPDataError as e:  # this message, not the server: the others still go
                if 500 <= e.smtp_code < 600:
                    raise Refused(f"the mail server refused the message ({e.smtp_code})") from None
                raise Later(f"the mail server deferred the message ({e.smtp_code})") from None
            except ChannelDown as e:
                self.down = str(e)
                raise
            except (smtplib.SMTPException, OSError) as e:
                if deadline.passed:
                    self.down = f"the mail server did not take the e-mail within {deadline.seconds:g} s"
                else:
                    self.down = f"the mail server could not be used ({type(e).__name__}: {e})"
                self.close()
                raise ChannelDown(self.down) from None

    def close(self) -> None:
        """QUIT, briefly: a server too slow to answer it is cut off."""
        if self.smtp is not None:
            smtp, self.smtp = self.smtp, None
            with Deadline(5) as deadline:
                deadline.watch(lambda: smtp.sock)
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
            smtp.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a redirect would turn the POST into a GET: answer it as refused


def _opener(deadline: Deadline) -> urllib.request.OpenerDirector:
    """urllib, as usual (proxies from the environment), with every connection it opens watched by `deadline`."""

    def watched(base):
        class Connection(base):
            def connect(self):
                deadline.watch(lambda: self.sock)
                super().connect()

        return Connection

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(watched(http.client.HTTPConnection), req)

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(watched(http.client.HTTPSConnection), req, context=self._context)

    return urllib.request.build_opener(_NoRedirect, HTTP, HTTPS)


def _retry_after(headers) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date); None without one."""
    value = (headers or {}).get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError):
        return None


class Webhook:
    """POSTs signed events; retries 5xx, 408, 429 and timeouts with backoff (and Retry-After), never another 4xx."""

    def __init__(self, url: str | None, secret: str | None):
        self.url, self.secret = url, secret
        self.down = None
        if not url:
            self.down = "COURSEDASH_WEBHOOK_URL is not set"
        elif not secret:
            self.down = "COURSEDASH_WEBHOOK_SECRET is not set: events are never sent unsigned"

    def send(self, r: ReportRequest, seconds: float) -> None:
        """Deliver one event within `seconds`, all its tries and waits included."""
        if self.down:
            raise ChannelDown(self.down)
        assert self.url and self.secret  # else `down` says which is missing
        body = webhook_event(r)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "coursedash-notify",
            "X-Coursedash-Signature": signature(body, self.secret),
            "Idempotency-Key": f"coursedash-{r.request_id}",
        }
        delay = WEBHOOK_BACKOFF
        with Deadline(seconds) as deadline:
            opener = _opener(deadline)
            for attempt in range(1, WEBHOOK_TRIES + 1):
                wait = delay
                try:
                    request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                    with opener.open(request, timeout=max(0.1, min(WEBHOOK_TIMEOUT, deadline.remaining()))):
                        return
                except urllib.error.HTTPError as e:
                    if e.code < 500 and e.code not in WEBHOOK_RETRIED:
                        raise Refused(f"the webhook answered {e.code}") from None
                    problem = f"the webhook answered {e.code}"
                    wait = _retry_after(e.headers) or delay
                except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
                    if deadline.passed:
                        problem = f"the webhook did not answer within {deadline.seconds:g} s"
                    else:
                        problem = f"the webhook could not be reached ({getattr(e, 'reason', e)})"
                log.warning("request %s: %s (try %d of %d)", r.request_id, problem, attempt, WEBHOOK_TRIES)
                if attempt == WEBHOOK_TRIES or deadline.passed:
                    break
                if wait >= deadline.remaining():
                    problem += f"; the next try, in {wait:g} s, would be past the notice's deadline"
                    break
                time.sleep(wait)
                delay *= 2
        self.down = problem
        raise ChannelDown(problem)


# --- bookkeeping: every change a compare-and-set, like the request lifecycle ----------


def _claim(s: Session, r: ReportRequest, run_id: str) -> bool:
    """This run sends the request's notices; another run busy with them keeps them."""
    now = utcnow()
    lease = dt.timedelta(seconds=LEASE_DEADLINES * settings().notice_timeout_seconds)
    result = s.execute(
        update(ReportRequest)
        .where(
            ReportRequest.request_id == r.request_id,
            or_(
                ReportRequest.notice_claimed_by.is_(None),
                ReportRequest.notice_claimed_by == run_id,  # this run's task, tried again
                # A run sends a request's notices within two notice deadlines (the watchdog
                # sees to it), so a claim older than that belongs to a run that died.
                ReportRequest.notice_claimed_at < now - lease,
            ),
        )
        .values(notice_claimed_by=run_id, notice_claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    s.commit()
    return rowcount(result) == 1


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
    """Send every notice that is due, within the run's deadline; never fails the night.

    A database gone away leaves every notice pending for the next run. A task told to
    stop (coursedash.stop.Stopped, Airflow's timeout) is not an error of a notice: it
    ends the run, releasing what this run claimed.
    """
    counts = {c: {SENT: 0, FAILED: 0, PENDING: 0} for c in ("email", "webhook")}
    try:
        _notify(run_id, counts)
    except Exception:  # a database gone away: every notice stays pending for the next run
        log.exception("notices could not be sent this run; the next run tries again")
    log.info("run %s notices: %s", run_id, counts)
    return counts


def _notify(run_id: str, counts: dict) -> None:
    cfg = settings()
    ends = time.monotonic() + cfg.notify_timeout_seconds
    cut_off = utcnow() - dt.timedelta(days=cfg.retention_days)
    mailer = Mailer(cfg.smtp_url)
    webhook = Webhook(cfg.webhook_url, cfg.webhook_secret)
    try:
        with db.session() as s:
            due = _pending(s)
            for i, r in enumerate(due):
                if store.will_retry(r):
                    continue  # not final: nothing is sent while a retry is due
                if r.status == "EXPIRED" or (r.completed_at is not None and r.completed_at < cut_off):
                    for channel in _channels(r):
                        log.error("request %s: its %s notice was never sent; giving up", r.request_id, channel)
                        _record(s, r, channel, FAILED)
                        counts[channel][FAILED] += 1
                    continue
                if time.monotonic() >= ends:
                    waiting = sum(bool(_channels(q)) for q in due[i:] if not store.will_retry(q))
                    log.warning(
                        "run %s: the notices took COURSEDASH_NOTIFY_TIMEOUT_SECONDS (%g s); %d request(s)' "
                        "notices wait for the next run",
                        run_id,
                        cfg.notify_timeout_seconds,
                        waiting,
                    )
                    break
                if not _claim(s, r, run_id):
                    log.info("request %s: another run is sending its notices", r.request_id)
                    continue
                try:
                    for channel in _channels(r):
                        seconds = min(cfg.notice_timeout_seconds, max(0.0, ends - time.monotonic()))
                        counts[channel][_send(s, r, channel, mailer, webhook, run_id, seconds)] += 1
                finally:
                    _release(s, r, run_id)
    finally:
        mailer.close()


def _send(
    s: Session, r: ReportRequest, channel: str, mailer: Mailer, webhook: Webhook, run_id: str, seconds: float
) -> str:
    """One channel's notice for one request, within `seconds`: the outcome recorded, or why it waits."""
    try:
        if channel == "email":
            address = store.notice_address(r.notify_email)
            if address is None:
                raise Refused("the address is not an e-mail address")
            message = email_message(r, s.get(Course, r.course_id), s.get(Batch, r.batch_id), address)
            mailer.send(message, address, seconds)
        else:
            webhook.send(r, seconds)
    except (Refused, store.BadRequest) as e:
        reason = e.message if isinstance(e, store.BadRequest) else e
        log.error("request %s: %s notice refused, not tried again: %s", r.request_id, channel, reason)
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
