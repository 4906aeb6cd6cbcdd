"""The dashboard page in a real browser, against `coursedash serve` and a real nightly run.

Chromium is the system one (/usr/bin/chromium); Playwright never downloads a browser.
Missing chromium fails this test, unless COURSEDASH_SKIP_BROWSER=1. axe-core (pinned in
package.json, installed by `npm ci`) checks each state of the page for accessibility.
"""

import datetime as dt
import os
import re
import subprocess
import sys
import time

import httpx
import pytest

from coursedash.auth import mint_token
from coursedash.packaging import read_zip
from tests import figures, handlake
from tests.conftest import ROOT, SLOW, _free_port
from tests.lakefixtures import write_lake
from tests.published import add_request

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SECRET = "browser-test-jwt-secret-0123456789abcdef"
PASSWORD = 'Tr1cky,pass"word'
RUN_DAY = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
SCREENSHOT = ROOT / "test-artifacts" / "dashboard.png"
PHONE_SCREENSHOT = ROOT / "test-artifacts" / "dashboard-390px.png"
INDIC_NAME = "डिजिटल साक्षरता · கணிதம் · গণিত"  # Devanagari, Tamil, Bengali
CREATOR_EMAIL = "creator@example.org"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Where the page finds axe: the test alone serves it there (a route), so that the page's own CSP admits it.
AXE_PATH = "/test-only/axe.min.js"
BANDS = {
    "not_started": ("Not started", "0 %"),
    "started": ("Started", "1–49 %"),
    "past_half": ("Past half", "50–99 %"),
    "completed": ("Completed", "100 %"),
}


@pytest.fixture
def browser():
    if os.environ.get("COURSEDASH_SKIP_BROWSER") == "1":
        pytest.skip("COURSEDASH_SKIP_BROWSER=1")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium, or set COURSEDASH_SKIP_BROWSER=1")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run `npm ci` in {ROOT} (package.json pins axe-core)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server(app_env, monkeypatch):
    """The hand lake and its catalogue (no figures: a test syncs them if it shows them), served by
    `coursedash serve` in its own process."""
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    write_lake(app_env / "lake", handlake.TABLES)
    handlake.store_catalogue()
    port = _free_port()
    log_path = app_env / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "coursedash", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
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


def new_context(browser, server, **options):
    """A browser context whose pages can load axe-core from AXE_PATH."""
    context = browser.new_context(**options)
    context.route(server + AXE_PATH, lambda route: route.fulfill(path=str(AXE), content_type="text/javascript"))
    return context


def assert_accessible(page, server, state: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(url=server + AXE_PATH)
    result = page.evaluate("() => axe.run(document, { resultTypes: ['violations'] })")
    found = [
        f"{v['id']} ({v['impact']}): {v['help']}, at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert found == [], f"axe-core finds, {state}: " + "; ".join(found)


def api_batches(server, user, course="c1") -> dict[str, dict]:
    """The batch list as the API gives it to `user`, by batch id."""
    response = httpx.get(
        f"{server}/api/v1/courses/{course}/batches",
        headers={"Authorization": f"Bearer {mint_token(user)}"},
        timeout=SLOW,
    )
    assert response.status_code == 200, response.text
    return {b["batch_id"]: b for b in response.json()}


def page_time(iso: str) -> str:
    """An API time as the page writes it."""
    return f"{dt.datetime.fromisoformat(iso):%d/%m/%Y %H:%M} UTC"


def expect_figures(page, batch: dict) -> None:
    """The batch's bar in its row and, chosen, its panel show the API's numbers."""
    from playwright.sync_api import expect

    bands, total = batch["progress_bands"], batch["enrolment_count"]
    sentence = ", ".join(f"{bands[key]} {name.lower()} ({rng})" for key, (name, rng) in BANDS.items())
    bar = page.locator("#batch-table tbody tr", has_text=batch["name"]).get_by_role("img")
    expect(bar).to_have_accessible_name(f"Progress of {total} learners: {sentence}")
    segments = bar.locator("rect.band")
    expect(segments).to_have_count(sum(1 for n in bands.values() if n))
    drawn = {
        r.get_attribute("data-band"): (int(r.get_attribute("data-count")), float(r.get_attribute("width")[:-1]))
        for r in segments.all()
    }
    assert drawn == {key: (n, pytest.approx(100 * n / total, abs=0.01)) for key, n in bands.items() if n}

    expect(page.locator("#figures-time")).to_contain_text(f"As of {page_time(batch['figures_as_of'])}")
    expect(page.locator("#bands-chart rect.band")).to_have_count(len(drawn))
    rows = page.locator("#bands-table tbody tr")
    for i, (key, (name, rng)) in enumerate(BANDS.items()):
        expect(rows.nth(i).locator("th, td")).to_have_text(
            [name, rng, str(bands[key]), f"{int(100 * bands[key] / total + 0.5)} %"]
        )
    score = batch["average_total_score"]
    for stat, value in [
        ("enrolled", total),
        ("completed", batch["completed_count"]),
        ("certificates", batch["certificates_issued"]),
        ("score", "None yet" if score is None else f"{score:.2f}"),
    ]:
        expect(page.locator(f"#stat-{stat}")).to_have_text(str(value))
    weeks = batch["weekly_enrolments"]
    expect(page.locator("#weekly-table tbody tr")).to_have_text(
        [re.compile(rf"^{dt.date.fromisoformat(w['week_start']):%d/%m/%Y}\s*{w['count']}$") for w in weeks]
    )
    points = page.locator("#weekly-chart circle")
    expect(points).to_have_count(len(weeks))
    assert [(p.get_attribute("data-week"), int(p.get_attribute("data-count"))) for p in points.all()] == [
        (w["week_start"], w["count"]) for w in weeks
    ]


def run_nightly_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag("course_reports_nightly").test(logical_date=RUN_DAY)


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_request_and_download_a_report_in_the_browser(browser, app_env, airflow_db, mailbox, server, tmp_path):
    from playwright.sync_api import expect

    from coursedash.sync import sync

    sync()  # the batches' figures, from the lake

    context = new_context(browser, server, accept_downloads=True, viewport={"width": 1200, "height": 900})
    page = context.new_page()
    outside, problems = [], []
    page.on("request", lambda r: None if r.url.startswith(server) else outside.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))

    # Sign in with a development token; a bad one is told so without "any more".
    page.goto(server + "/")
    page.get_by_label("Development token").fill("not a token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#sign-in-message")).to_have_text(
        "This token was not accepted (the bearer token is malformed). "
        "Paste the whole output of coursedash token YOUR_USER_ID."
    )
    assert_accessible(page, server, "signing in, a token refused")
    page.get_by_label("Development token").fill(mint_token(handlake.CREATOR, email=CREATOR_EMAIL))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_contain_text("Signed in as u_creator")

    # The caller's courses are listed straight away, and the page says what they are.
    expect(page.locator("#course-list li")).to_have_text([re.compile("Maths, Part 1"), re.compile("Science")])
    expect(page.locator("#courses-message")).to_contain_text("Your courses (2): those you created")
    assert_accessible(page, server, "the caller's courses")

    # Find the course by part of its name, by keyboard.
    page.get_by_label("Course id or name").fill("maths")
    page.keyboard.press("Enter")
    course = page.get_by_role("button", name=re.compile("Maths, Part 1"))
    expect(course).to_have_count(1)
    course.focus()
    page.keyboard.press("Enter")

    # Its batches, with the synced figures: a bar of the progress bands in each row.
    b1 = page.locator("#batch-table tbody tr", has_text="Batch One")
    expect(b1.locator("th, td")).to_have_text(
        ["Batch One", "01/01/2026", "No end date", "Live", "3", "1", re.compile("^Progress of 3 learners"), "Choose"]
    )
    b2 = page.locator("#batch-table tbody tr", has_text="Batch Two")
    expect(b2.locator("td").nth(2)).to_have_text("Expired")  # ended 01/03/2026
    expect(b2.locator("td").nth(5)).to_have_text("No learners yet")
    expect(page.locator("#figures-as-of")).to_contain_text("Enrolment figures as of")
    expect(page.locator("#bands-legend li")).to_have_text(
        ["Not started (0 %)", "Started (1–49 %)", "Past half (50–99 %)", "Completed (100 %)"]
    )
    page.get_by_role("button", name="Choose batch Batch One").click()
    expect(page.locator("#batch-title")).to_contain_text("Batch One")
    # The bar and the panel show the API's numbers.
    synced = api_batches(server, handlake.CREATOR)["b1"]
    assert synced["progress_bands"] == {"not_started": 0, "started": 1, "past_half": 1, "completed": 1}
    expect_figures(page, synced)
    # By keyboard, from the batch's title: the weekly table opens, and focus is seen where it is.
    expect(page.locator("#batch-title")).to_be_focused()
    page.keyboard.press("Tab")
    summary = page.get_by_text("Enrolments per week as a table")
    expect(summary).to_be_focused()
    assert (
        summary.evaluate("e => getComputedStyle(e).outlineStyle + ' ' + getComputedStyle(e).outlineWidth")
        == "solid 3px"
    )
    expect(page.locator("#weekly-table")).to_be_hidden()
    page.keyboard.press("Enter")
    expect(page.locator("#weekly-table")).to_be_visible()
    assert_accessible(page, server, "a batch chosen, its figures and its weekly table shown")

    # Only the types this user may request, and their password rules.
    report = page.get_by_label("Report")
    expect(report.locator("option")).to_have_text(
        ["Course Progress Exhaust", "User Profile Exhaust", "Question Set Report"]
    )
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
    expect(row.locator("td").nth(0)).to_contain_text("by you")
    expect(row.locator("td").nth(1)).to_have_text("Submitted")
    expect(row.locator("td").nth(4)).to_have_text("password: yours")
    expect(row.locator("td").nth(5)).to_contain_text("We will e-mail you when it is ready.")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Request report").click()
    expect(page.locator("#request-message")).to_contain_text("already requested and being processed")

    # The nightly run builds it; a reload comes back to the same batch, now ready.
    assert run_nightly_dag().state == "success"
    [notice] = mailbox.messages
    assert notice["to"] == [CREATOR_EMAIL] and "Course Progress Exhaust" in notice["message"]["Subject"]
    assert "#course=c1&batch=b1" in notice["message"].get_content() and PASSWORD not in notice["raw"].decode()
    page.reload()
    expect(page.locator("#who")).to_contain_text("u_creator")
    expect(row.locator("td").nth(1)).to_have_text("Success")
    expect(row.locator("td").nth(3)).to_have_text("3")
    expect(row.locator("td").nth(2)).to_contain_text("UTC")
    expect(row.locator("td").nth(4)).to_have_text("password: yours")  # kept after the password is erased
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

    # The night computed the figures again; the page shows them, and they are what the report holds.
    tonight = api_batches(server, handlake.CREATOR)["b1"]
    assert tonight["figures_as_of"] > synced["figures_as_of"]
    holds = figures.from_report(figures.report_rows(csv))
    assert {k: v for k, v in tonight.items() if k in holds} == holds
    expect_figures(page, tonight)

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
    assert_accessible(page, server, "after the night, with its downloads")
    # At 200 % zoom the same window is half as many CSS pixels wide: nothing scrolls sideways.
    page.set_viewport_size({"width": 600, "height": 450})
    expect(page.locator("#bands-table")).to_be_visible()
    assert page_overflow(page) == 0
    assert_accessible(page, server, "at 200 % zoom")
    page.screenshot(path=str(SCREENSHOT.with_name("dashboard-200pct.png")), full_page=True)
    assert outside == [], f"the page loaded from outside: {outside}"
    # Chromium logs every 4xx answer; the refusals above were meant. Anything else is a fault.
    expected = re.compile(r"Failed to load resource: the server responded with a status of (400|401|409) ")
    assert [p for p in problems if not expected.match(p)] == [], f"the page logged errors: {problems}"
    context.close()

    # A mentor of b1 on a phone: the same figures, for the one batch they mentor.
    context = new_context(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.goto(server + "/#course=c1&batch=b1")
    page.get_by_label("Development token").fill(mint_token(handlake.MENTOR))
    page.get_by_role("button", name="Sign in").click()
    mentors = api_batches(server, handlake.MENTOR)
    assert list(mentors) == ["b1"] and mentors["b1"]["progress_bands"] == tonight["progress_bands"]
    expect(page.locator("#batch-table tbody tr")).to_have_count(1)
    expect_figures(page, mentors["b1"])
    assert page_overflow(page) == 0
    assert_accessible(page, server, "a mentor's batch and figures at 390 px")
    page.screenshot(path=str(PHONE_SCREENSHOT.with_name("dashboard-figures-390px.png")), full_page=True)
    assert [p for p in problems if not expected.match(p)] == [], f"the page logged errors: {problems}"
    context.close()


def page_overflow(page) -> int:
    """How far the page itself scrolls sideways, in CSS pixels (0: it does not)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_a_mentor_on_a_phone_sees_whose_password_and_why_a_request_failed(browser, app_env, server):
    from playwright.sync_api import expect

    add_request(app_env, handlake.CREATOR, "progress", password=PASSWORD)
    add_request(
        app_env,
        handlake.MENTOR,
        "response",
        data_notes=[
            {"reason": "2 enrolments without a learner were left out", "rows": 2},
            {"reason": "1 assessment attempt scored above its maximum; shown as computed", "rows": 1},
        ],
    )
    from coursedash.store import failure_message

    # The errors as the nightly run stores them: why, and whether it is tried again.
    add_request(
        app_env,
        handlake.MENTOR,
        "progress",
        status="FAILED",
        error_transient=True,
        error=failure_message("the lake's enrolments table could not be read", 1, transient=True),
    )
    add_request(
        app_env,
        handlake.MENTOR,
        "response",
        status="FAILED",
        attempts=3,
        error_transient=False,
        error=failure_message("the batch is gone from the lake", 3, transient=False),
    )
    add_request(app_env, handlake.BATCH_CREATOR, "userinfo", password=PASSWORD)  # a type mentors may not see
    # A course named in the generated lake's scripts: the screenshot shows whether the fonts cover them.
    from coursedash import db
    from coursedash.db import Batch, Course, utcnow

    with db.session() as s:
        s.add_all(
            [
                Course(course_id="c_indic", name=INDIC_NAME, created_by="u_someone", synced_at=utcnow()),
                Batch(
                    batch_id="b_indic",
                    course_id="c_indic",
                    name="बैच 1",
                    created_by="u_someone",
                    mentors=[handlake.MENTOR],
                    synced_at=utcnow(),
                ),
            ]
        )
        s.commit()

    context = new_context(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))

    # A link to a course the mentor has no role on, opened before signing in.
    page.goto(server + "/#course=c2&batch=b9")
    page.get_by_label("Development token").fill(mint_token(handlake.MENTOR))
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#courses-message")).to_contain_text(
        "Course “c2” is not one you can see: it does not exist, or you have no role on it. Your courses (2)"
    )
    expect(page.locator("#course-list li")).to_have_text([re.compile("Maths, Part 1"), re.compile(INDIC_NAME)])
    expect(page.locator("#batches")).to_be_hidden()
    assert page_overflow(page) == 0
    assert_accessible(page, server, "a link to a course the mentor may not see")
    page.screenshot(path=str(PHONE_SCREENSHOT.with_name("dashboard-390px-no-access.png")), full_page=True)

    # A batch of a visible course that is not theirs.
    page.goto(server + "/#course=c1&batch=b2")
    page.reload()
    expect(page.locator("#batches-message")).to_contain_text("Batch “b2” is not one you can see in this course")
    expect(page.locator("#batch")).to_be_hidden()

    page.goto(server + "/#course=c1&batch=b1")
    page.reload()
    rows = page.locator("#download-table tbody tr")
    expect(rows).to_have_count(4)
    # Ready or on its way first, newest first: the failure waiting for its retry, the mentor's
    # own zip, the creator's; then the failure that ended.
    retried, own, creators, failed_for_good = (rows.nth(i) for i in range(4))
    expect(creators.locator("td").nth(0)).to_contain_text("by u_creator")
    expect(creators.locator("td").nth(4)).to_have_text("password: set by u_creator")
    expect(creators.locator("td svg.lock")).to_have_count(1)
    expect(own.locator("td").nth(0)).to_contain_text("by you")
    expect(own.locator("td").nth(4)).to_have_text("no password")
    # Beside the download, what the report left out, in plain words.
    expect(own.locator(".notes li")).to_have_text(
        [
            "2 enrolments without a learner were left out.",
            "1 assessment attempt scored above its maximum; shown as computed.",
        ]
    )
    expect(retried.locator("td .pill")).to_have_text("Failure")
    expect(retried.locator("td").nth(1).locator(".detail")).to_have_text(
        "The lake's enrolments table could not be read. It will be retried in the next nightly run (attempt 2 of 3)."
    )
    expect(failed_for_good.locator("td").nth(1).locator(".detail")).to_have_text(
        "The batch is gone from the lake. It will not be retried."
    )

    # Synced without figures (before they existed): said so, not drawn as zeros.
    expect(page.locator("#batch-table tbody tr").locator("td").nth(5)).to_have_text("Not computed yet")
    expect(page.locator("#figures-time")).to_contain_text("These figures have not been computed yet")
    expect(page.locator("#figures-body")).to_be_hidden()

    # Readable at 390 px: the tables scroll inside their box, the page does not.
    assert page_overflow(page) == 0
    assert_accessible(page, server, "a mentor's downloads at 390 px, failures and notes among them")
    page.get_by_role("button", name="Refresh").scroll_into_view_if_needed()
    PHONE_SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(PHONE_SCREENSHOT), full_page=True)
    assert problems == []
    context.close()
