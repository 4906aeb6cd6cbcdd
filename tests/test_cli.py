"""The `coursedash` command: clear refusals with a non-zero exit, and no password echoed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from coursedash import db
from coursedash.db import Batch, Course, utcnow
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR, STRANGER

COURSEDASH = str(Path(sys.executable).with_name("coursedash"))


def run(*args, stdin=""):
    return subprocess.run([COURSEDASH, *args], input=stdin, capture_output=True, text=True, timeout=120)


@pytest.fixture
def catalog(app_env):
    now = utcnow()
    with db.session() as s:
        s.add_all([
            Course(course_id="c1", name="Maths", created_by=CREATOR, user_consent_required=True, synced_at=now),
            Batch(batch_id="b1", course_id="c1", created_by=BATCH_CREATOR, mentors=[MENTOR], synced_at=now),
        ])
        s.commit()


SUBMIT = ["request", "submit", "--course", "c1", "--batch", "b1"]


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_submit_list_show(catalog):
    done = run(*SUBMIT, "--user", CREATOR, "--type", "userinfo", "--password-stdin", stdin="Secret123\n")
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    listing = run("request", "list", "--user", CREATOR, "--course", "c1", "--batch", "b1")
    assert request_id in listing.stdout and "SUBMITTED" in listing.stdout
    shown = json.loads(run("request", "show", request_id, "--user", CREATOR).stdout)
    assert shown["status"] == "SUBMITTED" and shown["report_type"] == "userinfo"
    for output in (done.stdout + done.stderr, listing.stdout, json.dumps(shown)):
        assert "Secret123" not in output
    # Not ready yet: refused with a reason.
    early = run("request", "download", request_id, "--user", CREATOR)
    assert early.returncode == 2 and "not ready" in early.stderr
    # Asking again while it is open names the open request.
    again = run(*SUBMIT, "--user", CREATOR, "--type", "userinfo", "--password-stdin", stdin="Secret123\n")
    assert again.returncode == 2 and request_id in again.stderr


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "user, args, stdin, message",
    [
        (STRANGER, ["--type", "progress"], "", "no batch 'b1'"),
        (MENTOR, ["--type", "userinfo", "--password-stdin"], "Secret123\n", "may not request a userinfo"),
        (CREATOR, ["--type", "userinfo"], "", "password is mandatory"),
        (CREATOR, ["--type", "progress", "--password-stdin"], "short1\n", "8 to 64 printable ASCII"),
    ],
)
def test_refusals_exit_non_zero_with_a_message(catalog, user, args, stdin, message):
    refused = run(*SUBMIT, "--user", user, *args, stdin=stdin)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_show_says_who_will_be_told_and_cancel_takes_a_request_back(catalog, monkeypatch):
    monkeypatch.setenv("COURSEDASH_SMTP_URL", "smtp://127.0.0.1:2525")
    done = run(*SUBMIT, "--user", CREATOR, "--type", "progress", "--email", "creator@example.org")
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    shown = run("request", "show", request_id, "--user", CREATOR).stdout
    assert json.loads(shown)["notify"] == {"email": "pending", "webhook": None}
    assert json.loads(shown)["cancellable"] is True and "creator@example.org" not in shown

    refused = run("request", "cancel", request_id, "--user", MENTOR)
    assert refused.returncode == 2 and "only the person who requested" in refused.stderr
    cancelled = run("request", "cancel", request_id, "--user", CREATOR)
    assert cancelled.returncode == 0 and f"request {request_id} cancelled" in cancelled.stdout
    assert json.loads(run("request", "show", request_id, "--user", CREATOR).stdout)["status"] == "CANCELLED"
    again = run("request", "cancel", request_id, "--user", CREATOR)
    assert again.returncode == 2 and "cannot be cancelled" in again.stderr
