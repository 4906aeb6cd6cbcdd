"""Report-ready notices: the notify step against a real SMTP server and a real HTTP receiver."""

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from urllib.parse import quote

import pytest
from sqlalchemy import text

from coursedash import db, notify, reports, store
from coursedash.db import Batch, Course, ReportRequest, utcnow
from tests import handlake
from tests.conftest import ROOT, _free_port
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR, MENTOR2
from tests.receivers import SMTP_PASSWORD, SMTP_USER, http_receiver, smtp_server, trickling_server

PASSWORD = "Zip-pass-2026"
HOOK_SECRET = "webhook-secret-0123456789"
PUBLIC_URL = "https://dashboard.example.org"
DAY = dt.date(2026, 11, 28)
MAIL = {
    CREATOR: "creator@example.org",
    BATCH_CREATOR: "batch.creator@example.org",
    MENTOR: "mentor@example.org",
    MENTOR2: "mentor2@example.org",
}


@pytest.fixture
def catalog(app_env, monkeypatch):
    monkeypatch.setenv("COURSEDASH_PUBLIC_URL", PUBLIC_URL + "/")
    monkeypatch.setenv("COURSEDASH_MAIL_FROM", "Course Dashboard <reports@example.org>")
    monkeypatch.setattr(notify, "WEBHOOK_BACKOFF", 0.05)
    now = utcnow()
    with db.session() as s:
        s.add_all(
            [
                Course(
                    course_id="c1", name="Maths, Part 1", created_by=CREATOR, user_consent_required=True, synced_at=now
                ),
                # A name from the lake may hold anything: it must not become a mail header.
                Batch(
                    batch_id="b1",
                    course_id="c1",
                    name="Batch One\r\nBcc: thief@example.net",
                    created_by=BATCH_CREATOR,
                    mentors=[MENTOR],
                    synced_at=now,
                ),
                Batch(
                    batch_id="b2",
                    course_id="c1",
                    name="Batch Two",
                    created_by=CREATOR,
                    mentors=[MENTOR2],
                    synced_at=now,
                ),
            ]
        )
        s.commit()
    return app_env


@pytest.fixture
def mail(catalog, monkeypatch, tmp_path):
    """A real SMTP server requiring STARTTLS and a login; the notifier trusts its certificate."""
    port = _free_port()
    with smtp_server(port, tls_folder=tmp_path) as mailbox:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp-cert.pem"))
        monkeypatch.setenv(
            "COURSEDASH_SMTP_URL", f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
        )
        yield mailbox


def submit(user, batch="b1", report_type="progress", password=None, email="mine"):
    with db.session() as s:
        return store.submit(
            s, user, "c1", batch, report_type, password, MAIL[user] if email == "mine" else email
        ).request_id


def build(run_id: str, outcomes: dict[str, tuple]) -> None:
    """The nightly run in short: claim everything, then record each request's outcome."""
    with db.session() as s:
        claimed = {r.request_id for r in store.claim(s, run_id)}
        for rid, (status, detail) in outcomes.items():
            assert rid in claimed
            if status == "SUCCESS":
                store.complete(s, rid, run_id, rows=detail, size=100, key=f"c1/b1/{rid}.zip", report_date=DAY)
            else:
                store.fail(s, rid, run_id, detail, transient=status == "RETRY")


def request(rid) -> ReportRequest:
    with db.session() as s:
        return s.get(ReportRequest, rid)


def subject(message) -> str:
    return " ".join(message["Subject"].split())  # unfolded: a long subject continues on a new line


def test_each_requester_is_e_mailed_once_when_final_and_never_a_secret(mail, caplog):
    caplog.set_level(logging.INFO)
    ready = submit(CREATOR, password=PASSWORD)
    failed = submit(BATCH_CREATOR, report_type="userinfo", password=PASSWORD)
    retrying = submit(CREATOR, batch="b2", password=PASSWORD)
    silent = submit(MENTOR, report_type="response", email=None)  # the token had no email claim
    cancelled = submit(MENTOR)
    with db.session() as s:
        store.cancel(s, MENTOR, cancelled)
    assert request(ready).notify_email == MAIL[CREATOR] and request(ready).email_notice == "pending"
    assert request(cancelled).notify_email is None and request(cancelled).email_notice is None
    build(
        "run-1",
        {
            ready: ("SUCCESS", 3),
            failed: ("FAILED", "batch b1 is no longer in the learner data"),
            retrying: ("RETRY", "the learner data for this batch failed quality checks; it will be retried"),
            silent: ("SUCCESS", 5),
        },
    )

    counts = notify.notify_requesters("run-1")
    assert counts["email"] == {"sent": 2, "failed": 0, "pending": 0}
    by_to = {tuple(m["to"]): m for m in mail.messages}
    assert sorted(by_to) == [(MAIL[BATCH_CREATOR],), (MAIL[CREATOR],)]
    for m in mail.messages:
        assert m["tls"] and m["authenticated"]  # STARTTLS first, then the login
        assert m["from"] == "reports@example.org"
    ok = by_to[(MAIL[CREATOR],)]["message"]
    assert subject(ok) == "Course Progress Exhaust for Batch One Bcc: thief@example.net: ready to download"
    assert ok["To"] == MAIL[CREATOR] and ok["Bcc"] is None
    assert ok["Message-ID"] == f"<notice-{ready}@coursedash>"
    body = ok.get_content()
    for fact in (
        "Course:    Maths, Part 1 (c1)",
        "Batch:     Batch One Bcc: thief@example.net (b1)",
        "Report:    Course Progress Exhaust",
        "Status:    Success",
        "Rows:      3",
        f"{PUBLIC_URL}/#course=c1&batch=b1",
        "downloaded for 30 days",
    ):
        assert fact in body
    bad = by_to[(MAIL[BATCH_CREATOR],)]["message"]
    assert subject(bad) == "User Profile Exhaust for Batch One Bcc: thief@example.net: could not be built"
    assert "Why: Batch b1 is no longer in the learner data" in bad.get_content()
    assert "Status:    Failure" in bad.get_content()
    # Never the file, a link to it, a password or anything of a learner.
    everything = b"\n".join(m["raw"] for m in mail.messages).decode()
    for secret in (PASSWORD, SMTP_PASSWORD, ".zip", "X-Amz", "ticket=", "/download", *handlake.PII_VALUES):
        assert secret not in everything

    # Recorded per channel; the address is erased once used.
    for rid in (ready, failed):
        r = request(rid)
        assert (r.email_notice, r.notify_email, r.notice_claimed_by) == ("sent", None, None)
        assert abs(r.email_notice_at - utcnow()) < dt.timedelta(minutes=1)
        assert reports.as_json(r)["notify"] == {"email": "sent", "webhook": None}
    assert request(retrying).email_notice == "pending" and request(retrying).notify_email == MAIL[CREATOR]
    assert request(silent).email_notice is None
    log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("coursedash"))
    assert f"request {ready}: email notice sent" in log
    assert not any(address in log for address in MAIL.values())  # the SMTP server's own log aside

    # A rerun sends nothing again; the retry's notice goes once it is final.
    assert notify.notify_requesters("run-1")["email"]["sent"] == 0
    assert notify.notify_requesters("run-2")["email"]["sent"] == 0
    assert len(mail.messages) == 2
    build("run-3", {retrying: ("SUCCESS", 0)})
    assert notify.notify_requesters("run-3")["email"]["sent"] == 1
    assert [m["to"] for m in mail.messages[2:]] == [[MAIL[CREATOR]]]
    assert "Batch Two (b2)" in mail.messages[2]["message"].get_content()
    dump = str(db.engine().connect().execute(text("SELECT * FROM report_requests")).all())
    assert not any(address in dump for address in MAIL.values())


def test_an_unsent_e_mail_waits_for_the_next_run(catalog, monkeypatch, tmp_path, caplog):
    port = _free_port()
    monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}")
    rid = submit(CREATOR)
    other = submit(MENTOR)
    build("run-1", {rid: ("SUCCESS", 3), other: ("SUCCESS", 3)})

    # The mail server is down: the night goes on, the notices wait.
    assert notify.notify_requesters("run-1")["email"] == {"sent": 0, "failed": 0, "pending": 2}
    assert "the mail server could not be used (ConnectionRefusedError" in caplog.text
    # A server offering no TLS never gets the SMTP password.
    with smtp_server(port) as plain:
        assert notify.notify_requesters("run-2")["email"]["pending"] == 2
        assert plain.messages == [] and plain.recipients_tried == []
    assert "the SMTP password is not sent in clear" in caplog.text
    assert request(rid).email_notice == "pending" and request(rid).notify_email == MAIL[CREATOR]

    with smtp_server(port, tls_folder=tmp_path) as mailbox:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp-cert.pem"))
        assert notify.notify_requesters("run-3")["email"]["sent"] == 2
        assert sorted(m["to"][0] for m in mailbox.messages) == [MAIL[CREATOR], MAIL[MENTOR]]
    assert request(rid).email_notice == "sent"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # the port is TLS-only
def test_smtps_speaks_tls_from_the_start(catalog, monkeypatch, tmp_path):
    port = _free_port()
    with smtp_server(port, tls_folder=tmp_path, implicit_tls=True) as mailbox:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp-cert.pem"))
        monkeypatch.setenv(
            "COURSEDASH_SMTP_URL", f"smtps://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
        )
        rid = submit(CREATOR)
        build("run-1", {rid: ("SUCCESS", 2)})
        assert notify.notify_requesters("run-1")["email"]["sent"] == 1
    [m] = mailbox.messages
    assert m["to"] == [MAIL[CREATOR]] and m["authenticated"]


def test_without_smtp_no_address_is_kept(catalog):
    rid = submit(CREATOR)
    assert (request(rid).notify_email, request(rid).email_notice) == (None, None)


def test_a_refused_address_is_given_up_and_erased(catalog, monkeypatch, tmp_path):
    port = _free_port()
    with smtp_server(port, tls_folder=tmp_path, refuse=(MAIL[MENTOR],)) as mailbox:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "smtp-cert.pem"))
        monkeypatch.setenv(
            "COURSEDASH_SMTP_URL", f"smtp://{SMTP_USER}:{quote(SMTP_PASSWORD, safe='')}@127.0.0.1:{port}"
        )
        refused, fine = submit(MENTOR), submit(CREATOR)
        build("run-1", {refused: ("SUCCESS", 1), fine: ("SUCCESS", 1)})
        assert notify.notify_requesters("run-1")["email"] == {"sent": 1, "failed": 1, "pending": 0}
        assert notify.notify_requesters("run-2")["email"] == {"sent": 0, "failed": 0, "pending": 0}
        assert mailbox.recipients_tried.count(MAIL[MENTOR]) == 1
        assert [m["to"] for m in mailbox.messages] == [[MAIL[CREATOR]]]
    r = request(refused)
    assert (r.email_notice, r.notify_email) == ("failed", None)


def test_a_notice_never_sent_is_given_up_when_the_report_expires(mail):
    rid = submit(CREATOR)
    build("run-1", {rid: ("SUCCESS", 1)})
    with db.session() as s:
        store.expire(s, utcnow() + dt.timedelta(seconds=1))
    assert notify.notify_requesters("run-2")["email"] == {"sent": 0, "failed": 1, "pending": 0}
    assert mail.messages == []
    assert (request(rid).email_notice, request(rid).notify_email) == ("failed", None)


def test_notices_another_run_is_sending_are_left_to_it(mail):
    rid = submit(CREATOR)
    build("run-1", {rid: ("SUCCESS", 1)})
    with db.session() as s:
        s.execute(
            text("UPDATE report_requests SET notice_claimed_by='run-other', notice_claimed_at=:t"), {"t": utcnow()}
        )
        s.commit()
    assert notify.notify_requesters("run-2")["email"]["sent"] == 0
    assert mail.messages == []
    # Hours later that run is presumed crashed: the notice goes.
    with db.session() as s:
        s.execute(text("UPDATE report_requests SET notice_claimed_at=:t"), {"t": utcnow() - dt.timedelta(days=1)})
        s.commit()
    assert notify.notify_requesters("run-3")["email"]["sent"] == 1
    assert request(rid).notice_claimed_by is None


# --- the webhook --------------------------------------------------------------------


@pytest.fixture
def hook(catalog, monkeypatch):
    def receiver(script=()):
        context = http_receiver(HOOK_SECRET, script)
        r = context.__enter__()
        monkeypatch.setenv("COURSEDASH_WEBHOOK_URL", r.url)
        monkeypatch.setenv("COURSEDASH_WEBHOOK_SECRET", HOOK_SECRET)
        opened.append(context)
        return r

    opened = []
    yield receiver
    for context in opened:
        context.__exit__(None, None, None)


def test_the_webhook_is_signed_and_a_500_then_200_delivers_it_once(hook, monkeypatch):
    monkeypatch.setattr(notify, "WEBHOOK_TIMEOUT", 0.3)
    receiver = hook([500, "slow", 200])
    ready, gone = submit(CREATOR, password=PASSWORD), submit(MENTOR)
    build("run-1", {ready: ("SUCCESS", 3), gone: ("FAILED", "batch b1 is no longer in the learner data")})

    assert notify.notify_requesters("run-1")["webhook"] == {"sent": 2, "failed": 0, "pending": 0}
    # 500, then a timeout, then 200: three tries of the same signed bytes and key.
    first = [a for a in receiver.attempts if a["key"] == f"coursedash-{ready}"]
    assert len(first) == 3 and all(a["signed"] for a in receiver.attempts)
    assert len({a["body"] for a in first}) == 1
    assert len(receiver.accepted) == 2
    completed = request(ready).completed_at.isoformat().replace("+00:00", "Z")
    assert receiver.accepted[f"coursedash-{ready}"] == {
        "request_id": ready,
        "course_id": "c1",
        "batch_id": "b1",
        "report_type": "progress",
        "status": "SUCCESS",
        "completed_at": completed,
        "row_count": 3,
    }
    assert receiver.accepted[f"coursedash-{gone}"]["status"] == "FAILED"
    assert PASSWORD.encode() not in b"".join(a["body"] for a in receiver.attempts)
    assert (request(ready).webhook_notice, reports.as_json(request(ready))["notify"]) == (
        "sent",
        {"email": None, "webhook": "sent"},
    )

    # Reruns send nothing more.
    tried = len(receiver.attempts)
    notify.notify_requesters("run-1")
    notify.notify_requesters("run-2")
    assert len(receiver.attempts) == tried


def test_a_4xx_is_never_retried_and_a_bad_signature_is_refused(hook, monkeypatch):
    receiver = hook([404])
    rid = submit(CREATOR)
    build("run-1", {rid: ("SUCCESS", 1)})
    assert notify.notify_requesters("run-1")["webhook"] == {"sent": 0, "failed": 1, "pending": 0}
    assert notify.notify_requesters("run-2")["webhook"] == {"sent": 0, "failed": 0, "pending": 0}
    assert len(receiver.attempts) == 1 and request(rid).webhook_notice == "failed"

    # The receiver's own check: a body signed with another secret is refused (401).
    other = submit(MENTOR)
    build("run-3", {other: ("SUCCESS", 1)})
    monkeypatch.setenv("COURSEDASH_WEBHOOK_SECRET", "not-the-receivers-secret")
    assert notify.notify_requesters("run-3")["webhook"]["failed"] == 1
    assert receiver.attempts[-1]["signed"] is False and receiver.accepted == {}


def test_a_webhook_down_all_night_is_tried_again_next_run(hook):
    receiver = hook([503] * notify.WEBHOOK_TRIES)
    first, second = submit(CREATOR), submit(MENTOR)
    build("run-1", {first: ("SUCCESS", 1), second: ("SUCCESS", 2)})
    assert notify.notify_requesters("run-1")["webhook"] == {"sent": 0, "failed": 0, "pending": 2}
    # Down for one request means down for the run: no second round of tries.
    assert len(receiver.attempts) == notify.WEBHOOK_TRIES
    assert notify.notify_requesters("run-2")["webhook"] == {"sent": 2, "failed": 0, "pending": 0}
    assert sorted(receiver.accepted) == sorted([f"coursedash-{first}", f"coursedash-{second}"])


def test_no_webhook_is_sent_unsigned(hook, monkeypatch):
    receiver = hook()
    rid = submit(CREATOR)
    build("run-1", {rid: ("SUCCESS", 1)})
    monkeypatch.delenv("COURSEDASH_WEBHOOK_SECRET")
    assert notify.notify_requesters("run-1")["webhook"]["pending"] == 1
    assert receiver.attempts == []


def test_nothing_is_sent_while_a_retry_is_due_or_for_a_cancelled_request(hook, mail):
    receiver = hook()
    retrying, cancelled = submit(CREATOR), submit(MENTOR)
    build(
        "run-1",
        {
            retrying: ("RETRY", "the report could not be built tonight; it will be retried"),
            cancelled: ("RETRY", "the report could not be built tonight; it will be retried"),
        },
    )
    with db.session() as s:
        store.cancel(s, MENTOR, cancelled)
    counts = notify.notify_requesters("run-1")
    assert counts == {c: {"sent": 0, "failed": 0, "pending": 0} for c in ("email", "webhook")}
    assert receiver.attempts == [] and mail.messages == []
    assert reports.as_json(request(retrying))["notify"] == {"email": "pending", "webhook": "pending"}
    assert reports.as_json(request(cancelled))["notify"] == {"email": None, "webhook": None}
    assert MAIL[CREATOR] not in json.dumps(reports.as_json(request(retrying)))  # never the address


def test_429_and_408_are_tried_again_after_the_wait_the_receiver_asks_for(hook):
    receiver = hook([(429, 1), (408, None), 200])
    rid = submit(CREATOR)
    build("run-1", {rid: ("SUCCESS", 1)})
    started = time.monotonic()
    assert notify.notify_requesters("run-1")["webhook"] == {"sent": 1, "failed": 0, "pending": 0}
    # Retry-After: 1 was honoured (the backoff alone is 0.05 s + 0.1 s).
    assert 1.0 <= time.monotonic() - started < 10
    assert len(receiver.attempts) == 3 and list(receiver.accepted) == [f"coursedash-{rid}"]

    # A wait past the notice's deadline is not waited for: the next run tries again.
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("COURSEDASH_NOTICE_TIMEOUT_SECONDS", "2")
    try:
        receiver.script = [(429, 3600)]
        later = submit(MENTOR)
        build("run-2", {later: ("SUCCESS", 1)})
        started = time.monotonic()
        assert notify.notify_requesters("run-2")["webhook"] == {"sent": 0, "failed": 0, "pending": 1}
        assert time.monotonic() - started < 5
        assert notify.notify_requesters("run-3")["webhook"] == {"sent": 1, "failed": 0, "pending": 0}
    finally:
        monkeypatch.undo()


# --- deadlines, not timeouts: a slow server never holds up a night ----------------------------


def notify_within(run_id: str, seconds: float) -> tuple[dict, float]:
    """notify_requesters, in a thread that must be done within `seconds`; its counts and its time."""
    done = {}

    def run():
        done["counts"] = notify.notify_requesters(run_id)

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)  # daemon: a stalled one must not hold up pytest
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the notices of {run_id} were still being sent after {seconds} s"
    return done["counts"], time.monotonic() - started


SLOW_GREETING = b"220-mail.example.org is thinking it over\r\n"  # a multi-line greeting that never ends
SLOW_ANSWER = b"HTTP/1.1 200 OK\r\n" + b"X-Thinking: yes\r\n" * 10_000


def test_a_mail_server_or_webhook_trickling_bytes_costs_the_run_one_deadline_each(catalog, monkeypatch):
    monkeypatch.setenv("COURSEDASH_NOTICE_TIMEOUT_SECONDS", "1")
    with trickling_server(SLOW_GREETING) as mail, trickling_server(SLOW_ANSWER) as webhook:
        monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{mail.port}")
        monkeypatch.setenv("COURSEDASH_WEBHOOK_URL", f"http://127.0.0.1:{webhook.port}/hooks")
        monkeypatch.setenv("COURSEDASH_WEBHOOK_SECRET", HOOK_SECRET)
        first, second = submit(CREATOR), submit(MENTOR)
        build("run-1", {first: ("SUCCESS", 1), second: ("SUCCESS", 2)})
        counts, seconds = notify_within("run-1", 20)
        # Each server had one deadline and was skipped for the rest of the run; both hung up on.
        assert counts == {c: {"sent": 0, "failed": 0, "pending": 2} for c in ("email", "webhook")}
        assert seconds < 6 and (mail.opened, webhook.opened) == (1, 1)
        for server in (mail, webhook):
            deadline = time.monotonic() + 5
            while server.closed_by_client < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert server.closed_by_client == 1
    for rid in (first, second):
        assert (request(rid).email_notice, request(rid).webhook_notice, request(rid).notice_claimed_by) == (
            "pending",
            "pending",
            None,
        )


def test_the_notices_of_a_run_stop_at_its_deadline_and_the_rest_wait_for_the_next(hook, monkeypatch):
    receiver = hook(["slow", "slow", "slow"])  # each answer takes a second
    monkeypatch.setenv("COURSEDASH_NOTIFY_TIMEOUT_SECONDS", "1.5")
    rids = [submit(CREATOR), submit(MENTOR), submit(BATCH_CREATOR)]
    build("run-1", {rid: ("SUCCESS", 1) for rid in rids})
    counts, seconds = notify_within("run-1", 20)
    assert counts["webhook"] == {"sent": 1, "failed": 0, "pending": 1} and seconds < 4
    monkeypatch.setenv("COURSEDASH_NOTIFY_TIMEOUT_SECONDS", "60")
    assert notify.notify_requesters("run-2")["webhook"] == {"sent": 2, "failed": 0, "pending": 0}
    assert sorted(receiver.accepted) == sorted(f"coursedash-{rid}" for rid in rids)


# The notify task as Airflow 3 runs it: its SIGTERM handler only calls the operator's
# on_kill (nothing, for a Python task) and returns; the DAG's task callable must stop.
NOTIFY_TASK = """
import signal, sys
signal.signal(signal.SIGTERM, lambda *_: None)
import course_reports_nightly
task = course_reports_nightly.course_reports_nightly().get_task("notify_requesters")
task.python_callable(run_id=sys.argv[1])
"""
# Killed outright (the supervisor's SIGKILL, the machine gone): the DAG file plays no part.
NOTIFY = "import sys; from coursedash.notify import notify_requesters; notify_requesters(sys.argv[1])"


def start_notify(script: str, run_id: str) -> subprocess.Popen:
    path = os.pathsep.join(str(p) for p in (ROOT, ROOT / "dags", ROOT / "plugins"))
    return subprocess.Popen(
        [sys.executable, "-c", script, run_id],
        env={**os.environ, "PYTHONPATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_notify_task_told_to_stop_stops_and_one_killed_leaves_nothing_claimed_for_long(catalog, monkeypatch):
    monkeypatch.setenv("COURSEDASH_NOTICE_TIMEOUT_SECONDS", "600")  # only a signal ends the child's send
    with trickling_server(SLOW_GREETING) as slow:
        monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{slow.port}")
        rid = submit(CREATOR)
        build("run-1", {rid: ("SUCCESS", 1)})
        for how in (signal.SIGTERM, signal.SIGKILL):
            task = start_notify(NOTIFY_TASK if how == signal.SIGTERM else NOTIFY, f"run-{how.name}")
            try:
                # The count is bound now (a default argument), not read from the loop's variable when called.
                calls = 1 if how == signal.SIGTERM else 2
                wait_for(lambda calls=calls: slow.opened == calls, 60, "the task never called")
                assert request(rid).notice_claimed_by == f"run-{how.name}"
                task.send_signal(how)
                assert task.wait(10) != 0  # stopped, not finished
            finally:
                task.kill()
                task.wait()
            claimed_by = request(rid).notice_claimed_by
            # Told to stop, it let go of its claim; killed, it could not.
            assert claimed_by == (None if how == signal.SIGTERM else "run-SIGKILL"), task.stderr.read()
    assert request(rid).email_notice == "pending"

    # The next run takes the killed run's notice, not hours later: once a few notice deadlines have passed.
    port = _free_port()
    monkeypatch.setenv("COURSEDASH_NOTICE_TIMEOUT_SECONDS", "0.5")
    with smtp_server(port) as mailbox:
        monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{port}")
        wait_for(lambda: utcnow() - request(rid).notice_claimed_at > dt.timedelta(seconds=1.5), 10, "no time")
        assert notify.notify_requesters("run-2")["email"]["sent"] == 1
    assert [m["to"] for m in mailbox.messages] == [[MAIL[CREATOR]]]
    assert (request(rid).email_notice, request(rid).notice_claimed_by) == ("sent", None)


# --- one address never blocks the others -------------------------------------------------------


def test_an_address_the_server_cannot_take_fails_alone_and_idn_domains_are_sent_as_idna(catalog, monkeypatch):
    port, utf8_port = _free_port(), _free_port()
    monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{port}")
    local = submit(CREATOR, email="jörg@bücher.example")  # first in the queue: its notice heads it
    idn = submit(MENTOR, email="mentor@bücher.example")
    plain = submit(BATCH_CREATOR)
    build("run-1", {rid: ("SUCCESS", 1) for rid in (local, idn, plain)})
    with smtp_server(port) as mailbox:  # no SMTPUTF8, as many servers
        assert notify.notify_requesters("run-1")["email"] == {"sent": 2, "failed": 1, "pending": 0}
    assert sorted(m["to"][0] for m in mailbox.messages) == ["batch.creator@example.org", "mentor@xn--bcher-kva.example"]
    assert {m["message"]["To"] for m in mailbox.messages} == {
        "batch.creator@example.org",
        "mentor@xn--bcher-kva.example",
    }
    assert (request(local).email_notice, request(local).notify_email) == ("failed", None)

    # A server offering SMTPUTF8 gets such an address as it is.
    other = submit(CREATOR, batch="b2", email="jörg@bücher.example")
    build("run-2", {other: ("SUCCESS", 1)})
    monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{utf8_port}")
    with smtp_server(utf8_port, smtputf8=True) as mailbox:
        assert notify.notify_requesters("run-2")["email"] == {"sent": 1, "failed": 0, "pending": 0}
    [m] = mailbox.messages
    assert m["to"] == ["jörg@xn--bcher-kva.example"] and m["message"]["To"] == "jörg@xn--bcher-kva.example"

    # An address no server could ever reach is refused when the report is requested, saying why.
    for hidden in ("ana@exa\u200bmple.org", "ana\u200d@example.org"):
        with pytest.raises(store.BadRequest, match="can never be reached: it contains an invisible or space character"):
            submit(MENTOR2, batch="b2", email=hidden)
