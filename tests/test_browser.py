"""The dashboard page in a real browser, against `coursedash serve` and a real nightly run.

Chromium is the system one (/usr/bin/chromium); Playwright never downloads a browser.
Missing chromium fails this test, unless COURSEDASH_SKIP_BROWSER=1.
"""

import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from coursedash.auth import mint_token
from coursedash.packaging import read_zip
from tests import handlake
from tests.conftest import ROOT
from tests.lakefixtures import write_lake
from tests.receivers import smtp_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SECRET = "browser-test-jwt-secret-0123456789abcdef"
PASSWORD = 'Tr1cky,pass"word'
RUN_DAY = dt.datetime(2026, 11, 28, tzinfo=dt.timezone.utc)
SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
CREATOR_EMAIL = "creator@example.org"


@pytest.fixture
def browser():
    if os.environ.get("COURSEDASH_SKIP_BROWSER") == "1":
        pytest.skip("COURSEDASH_SKIP_BROWSER=1")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium, or set COURSEDASH_SKIP_BROWSER=1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(app_env, monkeypatch):
    """The synced hand lake, served by `coursedash serve` in its own process."""
    from coursedash.sync import sync

    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    write_lake(app_env / "lake", handlake.TABLES)
    sync()
    port = free_port()
    log_path = app_env / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("coursedash")), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=dict(os.environ), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "coursedash serve exited:\n" + log_path.read_text()
            try:
                if httpx.get(base + "/", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "coursedash serve did not answer:\n" + log_path.read_text()
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def mail_sink(app_env, monkeypatch):
    """A real SMTP server the served page and the nightly run send notices to (before `server`)."""
    port = free_port()
    with smtp_server(port) as mailbox:
        monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{port}")
        yield mailbox


def run_nightly_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag("course_reports_nightly").test(logical_date=RUN_DAY)


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_request_and_download_a_report_in_the_browser(browser, app_env, airflow_db, mail_sink, server, tmp_path):
    from playwright.sync_api import expect

    context = browser.new_context(accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    outside, problems = [], []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Sign in with a development token.
    page.goto(server + "/")
    page.get_by_label("Development token").fill("not a token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-message")).to_contain_text("not valid")
    page.get_by_label("Development token").fill(mint_token(handlake.CREATOR, email=CREATOR_EMAIL))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text("Signed in as u_creator")

    # Find the course by part of its name, by keyboard.
    page.get_by_label("Course id or name").fill("maths")
    page.keyboard.press("Enter")
    course = page.get_by_role("button", name=re.compile("Maths, Part 1"))
    expect(course).to_have_count(1)
    course.focus()
    page.keyboard.press("Enter")

    # Its batches, with the synced figures.
    b1 = page.locator("#batch-table tbody tr", has_text="Batch One")
    expect(b1.locator("th, td")).to_have_text(["Batch One", "01/01/2026", "No end date", "Live", "3", "1", "Choose"])
    b2 = page.locator("#batch-table tbody tr", has_text="Batch Two")
    expect(b2.locator("td").nth(2)).to_have_text("Expired")  # ended 01/03/2026
    expect(page.locator("#figures-as-of")).to_contain_text("Enrolment figures as of")
    page.get_by_role("button", name="Choose batch Batch One").click()
    expect(page.locator("#batch-title")).to_contain_text("Batch One")

    # Only the types this user may request, and their password rules.
    report = page.get_by_label("Report")
    expect(report.locator("option")).to_have_text(["Course Progress Exhaust", "User Profile Exhaust", "Question Set Report"])
    expect(page.locator("#password-rules")).to_contain_text("at least one letter and one digit")
    report.select_option(label="User Profile Exhaust")
    expect(page.locator("label[for=password]")).to_contain_text("(required)")
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#request-message")).to_contain_text("A password is required")

    report.select_option(label="Course Progress Exhaust")
    expect(page.locator("label[for=password]")).to_contain_text("(optional)")
    page.get_by_label("Password").fill("weak")
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#request-message")).to_contain_text("password refused")
    expect(page.locator("#request-message")).to_contain_text("8 to 64 printable ASCII characters")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#request-message")).to_contain_text("Course Progress Exhaust requested")
    expect(page.locator("#request-message")).to_contain_text("We will e-mail you when it is ready.")
    expect(page.get_by_label("Password")).to_have_value("")
    row = page.locator("#download-table tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("th, td").nth(0)).to_have_text("Course Progress Exhaust")
    expect(row.locator("td").nth(1)).to_have_text("Submitted")
    expect(row.locator("td").nth(4)).to_contain_text("We will e-mail you when it is ready.")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#request-message")).to_contain_text("already requested and being processed")

    # The nightly run builds it; a reload comes back to the same batch, now ready.
    assert run_nightly_dag().state == "success"
    [notice] = mail_sink.messages
    assert notice["to"] == [CREATOR_EMAIL] and "Course Progress Exhaust" in notice["message"]["Subject"]
    assert "#course=c1&batch=b1" in notice["message"].get_content() and PASSWORD not in notice["raw"].decode()
    page.reload()
    expect(page.locator("#who")).to_contain_text("u_creator")
    expect(row.locator("td").nth(1)).to_have_text("Success")
    expect(row.locator("td").nth(3)).to_have_text("3")
    expect(row.locator("td").nth(2)).to_contain_text("UTC")
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#downloads-message")).to_contain_text("Updated")

    with page.expect_download() as download_info:
        row.get_by_role("button", name=re.compile("^Download")).click()
    download = download_info.value
    assert download.suggested_filename == "b1_progress_20261128.zip"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    csv = read_zip(saved, PASSWORD)["b1_progress_20261128.csv"].decode("utf-8")
    lines = csv.split("\r\n")
    assert lines[0] == "\ufeff" + handlake.PROGRESS_HEADER.rstrip("\r\n")
    assert lines[1].startswith('c1,"Maths, Part 1",b1,Batch One,L1,Tamil Nadu,Chennai,')
    assert csv == handlake.B1_PROGRESS_CSV

    # The download went by a one-minute ticket, which the server's access log does not keep.
    access_log = (app_env / "serve.log").read_text()
    assert "/download?ticket=[redacted]" in access_log
    assert not re.search(r"ticket=(?!\[redacted\])", access_log)

    # A request made by mistake is taken back with its Cancel button; only its requester sees one.
    report.select_option(label="Question Set Report")
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#request-message")).to_contain_text("Question Set Report requested")
    mistake = page.locator("#download-table tbody tr", has_text="Question Set Report")
    mistake.get_by_role("button", name=re.compile("^Cancel Question Set Report")).click()
    expect(page.locator("#downloads-message")).to_contain_text("Question Set Report request cancelled")
    expect(mistake.locator("td").nth(1)).to_have_text("Cancelled")
    expect(page.get_by_role("button", name=re.compile("^Cancel"))).to_have_count(0)
    expect(page.locator("#request-message")).to_have_text("")

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert outside == [], f"the page loaded from outside: {outside}"
    # Chromium logs every 4xx answer; the refusals above were meant. Anything else is a fault.
    expected = re.compile(r"Failed to load resource: the server responded with a status of (400|401|409) ")
    assert [p for p in problems if not expected.match(p)] == [], f"the page logged errors: {problems}"
    context.close()
