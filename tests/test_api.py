"""The HTTP API of docs/api.md, on SQLite and PostgreSQL: every rule and status code."""

import datetime as dt
import tempfile
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from coursedash import db, nightly, packaging, passwords, reports, store
from coursedash.api import WEB_DIR, RedactTickets, app
from coursedash.auth import mint_download_ticket, mint_token
from coursedash.db import Batch, Course, Download, ReportRequest, utcnow
from coursedash.storage import report_store
from tests import handlake
from tests.conftest import _free_port
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR, MENTOR2, STRANGER

SECRET = "api-test-jwt-secret-0123456789abcdef"
PASSWORD = 'Sekr3t,pass"word'
OTHER_PASSWORD = "An0ther-pass"
# Every password any test here sends, good or bad: no response may ever contain one.
SENT_PASSWORDS = [PASSWORD, OTHER_PASSWORD, "short1", "nodigitshere", " Spaced0ut", "Ünïcode99x", "x1" * 40]
CLIENT_ADDRESS = "203.0.113.9"
REPORT_DAY = dt.date(2026, 11, 28)
TODAY = dt.datetime.now(dt.UTC).date()
ODD_USER = 'we"ird%_user'  # an id that JSON escapes and LIKE would misread


def _no_password(response: httpx.Response) -> None:
    response.read()
    seen = response.content + str(response.headers).encode()
    for secret in SENT_PASSWORDS:
        assert secret.encode() not in seen, f"a password came back from {response.request.url}"


def load_catalogue() -> None:
    """The hand lake's courses and batches as `coursedash sync` leaves them, plus a few more."""
    now = utcnow()
    figures = {"b1": (3, 1), "b2": (0, 0), "b9": (0, 0)}
    # b1's figures as the night computes them from the hand lake (tests/jobs/test_dashboard_figures.py).
    b1_figures = dict(
        progress_not_started=0,
        progress_started=1,
        progress_past_half=1,
        progress_completed=1,
        certificates_issued=1,
        weekly_enrolments=[{"week_start": "2026-01-05", "count": 3}],
        average_total_score=79.17,
    )
    with db.session() as s:
        for c in handlake.TABLES["courses"]:
            s.add(
                Course(
                    **{k: c.get(k) for k in ("course_id", "name", "channel", "created_by", "status")},
                    user_consent_required=c["user_consent_required"],
                    synced_at=now,
                )
            )
        for b in handlake.TABLES["batches"]:
            enrolled, completed = figures[b["batch_id"]]
            s.add(
                Batch(
                    **{k: b.get(k) for k in ("batch_id", "course_id", "name", "start_date", "end_date", "created_by")},
                    mentors=b["mentors"],
                    enrolment_count=enrolled,
                    completed_count=completed,
                    figures_as_of=now,
                    synced_at=now,
                    **(b1_figures if b["batch_id"] == "b1" else {}),
                )
            )
        # c3: someone else's course; u_batchcreator made its batches, one per status.
        s.add(
            Course(course_id="c3", name="Statistics", created_by="u_other", user_consent_required=True, synced_at=now)
        )
        day = dt.timedelta(days=1)
        for batch_id, start, end in [
            ("s_upcoming", TODAY + day, TODAY + 30 * day),
            ("s_starts_today", TODAY, TODAY + day),
            ("s_ends_today", TODAY - 30 * day, TODAY),
            ("s_open", TODAY - 30 * day, None),
            ("s_no_dates", None, None),
            ("s_expired", TODAY - 30 * day, TODAY - day),
        ]:
            s.add(
                Batch(
                    batch_id=batch_id,
                    course_id="c3",
                    name=batch_id,
                    start_date=start,
                    end_date=end,
                    created_by=BATCH_CREATOR,
                    mentors=[],
                    synced_at=now,
                )
            )
        # c4: mentored by u_mentor2 only (u_mentor's id is a prefix of it) and by an odd id.
        s.add(Course(course_id="c4", name="History", created_by="u_other", user_consent_required=False, synced_at=now))
        s.add(
            Batch(
                batch_id="b4",
                course_id="c4",
                name="History batch",
                created_by="u_other",
                mentors=[MENTOR2, ODD_USER],
                synced_at=now,
            )
        )
        s.commit()


def api_client(monkeypatch) -> TestClient:
    """A client of the app on the catalogue above, every answer checked for a password; other modules' `api`."""
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    load_catalogue()
    client = TestClient(app, client=(CLIENT_ADDRESS, 40000))
    client.event_hooks["response"] = [_no_password]
    return client


@pytest.fixture
def api(app_env, monkeypatch):
    return api_client(monkeypatch)


def as_(user: str) -> dict:
    return {"Authorization": f"Bearer {mint_token(user)}"}


def ask(client, user, course="c1", batch="b1", report_type="progress", password=None):
    body = {"course_id": course, "batch_id": batch, "report_type": report_type}
    if password is not None:
        body["password"] = password
    return client.post("/api/v1/reports", json=body, headers=as_(user))


def error_of(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) <= {"error", "request_id"} and {"code", "message"} <= set(body["error"])
    assert body["error"]["code"] == code
    return body["error"]["message"]


def publish(request_ids: list[str], run_id: str = "run-1", rows=(("c1", "b1", "L1"),)) -> None:
    """What the nightly run does for these requests: claim, zip with their password, publish, SUCCESS."""
    reports_store = report_store()
    with db.session() as s:
        claimed = {r.request_id: r for r in store.claim(s, run_id)}
        for rid in request_ids:
            r = claimed[rid]
            with tempfile.TemporaryDirectory() as tmp:
                csv_path = Path(tmp) / nightly.report_file_name(r, REPORT_DAY, "csv")
                count = packaging.write_csv(csv_path, ["Collection Id", "Batch Id", "User UUID"], rows)
                size = packaging.zip_file(csv_path, Path(tmp) / "r.zip", csv_path.name, store.password_of(r))
                reports_store.put(Path(tmp) / "r.zip", nightly.object_key(r))
            assert store.complete(
                s, rid, run_id, rows=count, size=size, key=nightly.object_key(r), report_date=REPORT_DAY
            )


def set_status(request_id: str, status: str) -> None:
    with db.session() as s:
        s.execute(
            text("UPDATE report_requests SET status = :s WHERE request_id = :id"), {"s": status, "id": request_id}
        )
        s.commit()


def downloads_of(request_id: str) -> list[Download]:
    with db.session() as s:
        return list(s.scalars(select(Download).where(Download.request_id == request_id).order_by(Download.download_id)))


# --- authentication ---------------------------------------------------------------

ENDPOINTS = [
    ("GET", "/api/v1/courses?q=maths"),
    ("GET", "/api/v1/courses/c1/batches"),
    ("GET", "/api/v1/courses/c1/batches/b1/reports"),
    ("POST", "/api/v1/reports"),
    ("GET", "/api/v1/reports/some-id"),
    ("DELETE", "/api/v1/reports/some-id"),
    ("GET", "/api/v1/reports/some-id/download"),
    ("POST", "/api/v1/reports/some-id/download-link"),
]


def _bad_tokens():
    later = int((dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp())
    unsigned = jwt.encode({"sub": CREATOR, "exp": later}, None, algorithm="none")
    return {
        "missing": None,
        "not bearer": f"Basic {mint_token(CREATOR)}",
        "empty bearer": "Bearer ",
        "malformed": "Bearer not.a.jwt",
        "garbage": "Bearer abc",
        "expired": f"Bearer {mint_token(CREATOR, hours=-1)}",
        "alg none": f"Bearer {unsigned}",
        "wrong signature": "Bearer "
        + jwt.encode({"sub": CREATOR, "exp": later}, "another-secret-0123456789abcdefgh", "HS256"),
        "download ticket": f"Bearer {mint_download_ticket(CREATOR, 'some-id')[0]}",
    }


@pytest.mark.parametrize("method,path", ENDPOINTS)
def test_every_endpoint_refuses_a_missing_or_bad_token_with_401(api, method, path):
    for name, header in _bad_tokens().items():
        headers = {"Authorization": header} if header is not None else {}
        # A bad body too: authentication is decided first, and tells nothing about the body.
        response = api.request(method, path, headers=headers, content=b"{not json")
        error_of(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer", name


# --- courses and batches ----------------------------------------------------------


def course_ids(api, user, q=None):
    response = api.get("/api/v1/courses", params={} if q is None else {"q": q}, headers=as_(user))
    assert response.status_code == 200, response.text
    return [c["course_id"] for c in response.json()]


def test_courses_are_those_the_caller_has_a_role_on_matched_by_id_or_name(api):
    response = api.get("/api/v1/courses", headers=as_(CREATOR))
    assert response.json() == [{"course_id": "c1", "name": "Maths, Part 1"}, {"course_id": "c2", "name": "Science"}]
    assert course_ids(api, CREATOR, "") == ["c1", "c2"]
    assert course_ids(api, CREATOR, "MATHS") == ["c1"]
    assert course_ids(api, CREATOR, "part 1") == ["c1"]
    assert course_ids(api, CREATOR, "C2") == ["c2"]
    assert course_ids(api, CREATOR, "  science ") == ["c2"]
    assert course_ids(api, CREATOR, "nothing like it") == []
    assert course_ids(api, BATCH_CREATOR) == ["c1", "c3"]  # batch creator only: still sees the course
    assert course_ids(api, MENTOR) == ["c1"]
    assert course_ids(api, MENTOR2) == ["c4", "c1"]  # History, Maths
    assert course_ids(api, ODD_USER) == ["c4"]
    assert course_ids(api, STRANGER) == []
    assert course_ids(api, "u_ment") == []  # part of a mentor's id is not a mentor
    assert course_ids(api, "u_other") == ["c4", "c3"]
    error_of(api.get("/api/v1/courses", params={"q": "x" * 201}, headers=as_(CREATOR)), 400, "bad_request")


def test_batches_are_the_callers_own_with_figures_status_and_what_they_may_request(api):
    response = api.get("/api/v1/courses/c1/batches", headers=as_(CREATOR))
    assert response.status_code == 200
    b1, b2 = response.json()
    as_of = b1.pop("figures_as_of")
    assert as_of.endswith("Z") and abs(dt.datetime.fromisoformat(as_of) - utcnow()) < dt.timedelta(minutes=1)
    assert b1 == {
        "batch_id": "b1",
        "course_id": "c1",
        "name": "Batch One",
        "start_date": "2026-01-01",
        "end_date": None,
        "status": "live",
        "enrolment_count": 3,
        "completed_count": 1,
        "progress_bands": {"not_started": 0, "started": 1, "past_half": 1, "completed": 1},
        "certificates_issued": 1,
        "weekly_enrolments": [{"week_start": "2026-01-05", "count": 3}],
        "average_total_score": 79.17,
        "report_types": [
            {"report_type": "progress", "name": "Course Progress Exhaust", "password_required": False},
            {"report_type": "userinfo", "name": "User Profile Exhaust", "password_required": True},
            {"report_type": "response", "name": "Question Set Report", "password_required": False},
        ],
    }
    assert (b2["batch_id"], b2["end_date"], b2["enrolment_count"]) == ("b2", "2026-03-01", 0)
    # Synced before the figures existed (or never computed): each is null, not a made-up zero.
    assert [b2[k] for k in ("progress_bands", "certificates_issued", "weekly_enrolments", "average_total_score")] == [
        None,
        None,
        None,
        None,
    ]
    # Counts only: no learner of the lake in the answer.
    assert not any(learner in response.text for learner in ("L1", "L2", "L3", "L4"))
    assert b2["status"] == ("expired" if dt.date(2026, 3, 1) < TODAY else "live")

    def mine(user, course="c1"):
        response = api.get(f"/api/v1/courses/{course}/batches", headers=as_(user))
        assert response.status_code == 200, response.text
        return {b["batch_id"]: [t["report_type"] for t in b["report_types"]] for b in response.json()}

    assert mine(MENTOR) == {"b1": ["progress", "response"]}  # a mentor is never offered userinfo
    assert mine(MENTOR2) == {"b2": ["progress", "response"]}
    assert mine(BATCH_CREATOR) == {"b1": ["progress", "userinfo", "response"]}
    assert mine(CREATOR, "c2") == {"b9": ["progress", "response"]}  # no consent, no userinfo


def test_batch_status_follows_the_dates_in_utc(api):
    response = api.get("/api/v1/courses/c3/batches", headers=as_(BATCH_CREATOR))
    assert {b["batch_id"]: b["status"] for b in response.json()} == {
        "s_upcoming": "upcoming",
        "s_starts_today": "live",
        "s_ends_today": "live",
        "s_open": "live",
        "s_no_dates": "live",
        "s_expired": "expired",
    }
    b = Batch(start_date=dt.date(2026, 1, 10), end_date=dt.date(2026, 1, 20))
    assert [reports.batch_status(b, dt.date(2026, 1, d)) for d in (9, 10, 20, 21)] == [
        "upcoming",
        "live",
        "live",
        "expired",
    ]


def test_no_role_gets_the_same_404_as_nothing_there(api):
    def probe(path, user=STRANGER, method="GET", **kw):
        response = api.request(method, path, headers=as_(user), **kw)
        return response.status_code, response.json()

    real = probe("/api/v1/courses/c1/batches")
    missing = probe("/api/v1/courses/c-none/batches")
    assert real[0] == missing[0] == 404
    assert real[1]["error"]["message"].replace("c1", "X") == missing[1]["error"]["message"].replace("c-none", "X")
    assert probe("/api/v1/courses/c2/batches", user=MENTOR)[0] == 404  # a role on c1 opens nothing of c2

    real = probe("/api/v1/courses/c1/batches/b1/reports")
    missing = probe("/api/v1/courses/c1/batches/b-none/reports")
    assert real[0] == missing[0] == 404
    assert real[1]["error"]["message"].replace("b1", "X") == missing[1]["error"]["message"].replace("b-none", "X")
    assert probe("/api/v1/courses/c1/batches/b2/reports", user=MENTOR)[0] == 404  # another batch of the same course
    assert probe("/api/v1/courses/c2/batches/b1/reports", user=CREATOR)[0] == 404  # batch of another course

    body = {"course_id": "c1", "batch_id": "b1", "report_type": "progress"}
    real = probe("/api/v1/reports", method="POST", json=body)
    missing = probe("/api/v1/reports", method="POST", json={**body, "batch_id": "b-none"})
    assert real[0] == missing[0] == 404
    assert real[1]["error"]["message"].replace("b1", "X") == missing[1]["error"]["message"].replace("b-none", "X")
    # Even a request the stranger could not make anyway (userinfo without a password) is a 404, not a 400 or 403.
    assert probe("/api/v1/reports", method="POST", json={**body, "report_type": "userinfo"})[0] == 404

    rid = ask(api, CREATOR, password=PASSWORD).json()["request_id"]
    for suffix, method in (("", "GET"), ("/download", "GET"), ("/download-link", "POST")):
        real = probe(f"/api/v1/reports/{rid}{suffix}", method=method)
        missing = probe(f"/api/v1/reports/r-none{suffix}", method=method)
        assert real[0] == missing[0] == 404
        assert real[1]["error"]["message"].replace(rid, "X") == missing[1]["error"]["message"].replace("r-none", "X")
    assert downloads_of(rid) == []


# --- requesting -------------------------------------------------------------------


def test_request_is_created_and_a_repeat_while_open_is_409_naming_it(api):
    response = ask(api, CREATOR, password=PASSWORD)
    assert response.status_code == 201, response.text
    created = response.json()
    rid = created["request_id"]
    assert response.headers["location"] == f"/api/v1/reports/{rid}"
    assert {
        k: created[k]
        for k in (
            "course_id",
            "batch_id",
            "report_type",
            "status",
            "status_label",
            "requested_by",
            "completed_at",
            "row_count",
            "file_size",
            "attempts",
            "error",
        )
    } == {
        "course_id": "c1",
        "batch_id": "b1",
        "report_type": "progress",
        "status": "SUBMITTED",
        "status_label": "Submitted",
        "requested_by": CREATOR,
        "completed_at": None,
        "row_count": None,
        "file_size": None,
        "attempts": 0,
        "error": None,
    }
    submitted = dt.datetime.fromisoformat(created["submitted_at"])
    assert created["submitted_at"].endswith("Z") and abs(submitted - utcnow()) < dt.timedelta(minutes=1)
    # Whether it has a password is told; the password itself never is.
    assert created["password_protected"] is True
    assert PASSWORD not in str(created)
    assert [k for k in created if "password" in k] == ["password_protected"]
    assert api.get(f"/api/v1/reports/{rid}", headers=as_(CREATOR)).json() == created

    again = ask(api, CREATOR, password=OTHER_PASSWORD)
    message = error_of(again, 409, "open_request_exists")
    assert again.json()["error"]["request_id"] == again.json()["request_id"] == rid
    assert "already requested and being processed" in message

    # One open request per requester x batch x type: others are free.
    assert ask(api, CREATOR, report_type="response").status_code == 201
    assert ask(api, CREATOR, batch="b2").status_code == 201
    assert ask(api, BATCH_CREATOR).status_code == 201
    assert ask(api, MENTOR).status_code == 201  # password optional for progress
    assert ask(api, MENTOR, password="").status_code == 409  # an empty password is none

    # Once it ends, the same report can be requested again.
    set_status(rid, "PROCESSING")
    assert error_of(ask(api, CREATOR), 409, "open_request_exists")
    set_status(rid, "FAILED")
    assert ask(api, CREATOR, password=PASSWORD).status_code == 201

    # The password is stored encrypted, never in clear.
    with db.engine().connect() as c:
        dump = str(c.execute(text("SELECT * FROM report_requests")).all())
    assert rid in dump and PASSWORD not in dump


def test_bad_bodies_are_400_with_the_error_json(api):
    def bad(body=None, content=None, **headers) -> str:
        response = api.post("/api/v1/reports", json=body, content=content, headers={**as_(CREATOR), **headers})
        return error_of(response, 400, "bad_request")

    good = {"course_id": "c1", "batch_id": "b1", "report_type": "progress"}
    assert "report_type" in bad({**good, "report_type": "grades"})
    assert "batch_id" in bad({k: v for k, v in good.items() if k != "batch_id"})
    assert "course_id" in bad({k: v for k, v in good.items() if k != "course_id"})
    assert "course_id" in bad({**good, "course_id": 1})
    assert "password" in bad({**good, "password": 12345678})
    assert "report_type" in bad({**good, "report_type": None})
    assert "unexpected" in bad({**good, "unexpected": 1})
    assert "password" in bad({**good, "password": "x1" * 600})
    assert bad({**good, "course_id": ""})
    assert bad(content=b"{not json", **{"Content-Type": "application/json"})
    assert bad(content=b"")
    assert bad(["progress"])
    assert bad("progress")
    with db.session() as s:
        assert s.scalars(select(ReportRequest)).all() == []


@pytest.mark.parametrize("password", ["short1", "nodigitshere", " Spaced0ut", "Ünïcode99x", "x1" * 40])
def test_a_password_against_the_policy_is_400_naming_the_policy(api, password):
    for user, report_type in ((CREATOR, "progress"), (CREATOR, "userinfo"), (MENTOR, "response")):
        message = error_of(ask(api, user, report_type=report_type, password=password), 400, "bad_request")
        assert passwords.POLICY in message


def test_userinfo_needs_a_password_the_creators_role_and_a_consent_course(api):
    for password in (None, ""):
        message = error_of(ask(api, CREATOR, report_type="userinfo", password=password), 400, "bad_request")
        assert "mandatory" in message and passwords.POLICY in message
    # A mentor never requests a userinfo report, with or without a password.
    for user, batch in ((MENTOR, "b1"), (MENTOR2, "b2")):
        assert "userinfo" in error_of(
            ask(api, user, batch=batch, report_type="userinfo", password=PASSWORD), 403, "forbidden"
        )
    # A course that does not ask for consent has no User Profile report.
    error_of(
        ask(api, CREATOR, course="c2", batch="b9", report_type="userinfo", password=PASSWORD), 422, "not_requestable"
    )
    assert ask(api, CREATOR, report_type="userinfo", password=PASSWORD).status_code == 201
    assert ask(api, BATCH_CREATOR, report_type="userinfo", password=PASSWORD).status_code == 201


# --- reading requests back --------------------------------------------------------


def test_the_list_is_ten_the_caller_may_download_ready_or_coming_first_newest_first(api):
    start = utcnow() - dt.timedelta(days=30)
    with db.session() as s:
        for i in range(12):
            for report_type in ("progress", "userinfo"):
                s.add(
                    ReportRequest(
                        request_id=f"r-{report_type}-{i:02d}",
                        course_id="c1",
                        batch_id="b1",
                        report_type=report_type,
                        requested_by=CREATOR,
                        status="SUCCESS" if i % 2 else "FAILED",
                        submitted_at=start + dt.timedelta(hours=i, minutes=30 if report_type == "userinfo" else 0),
                        attempts=1,
                        error_transient=False,
                    )
                )
        s.add(
            ReportRequest(
                request_id="r-b2",
                course_id="c1",
                batch_id="b2",
                report_type="progress",
                requested_by=CREATOR,
                status="SUBMITTED",
                submitted_at=utcnow(),
                attempts=0,
            )
        )
        s.commit()

    def listed(user, batch="b1"):
        response = api.get(f"/api/v1/courses/c1/batches/{batch}/reports", headers=as_(user))
        assert response.status_code == 200, response.text
        return [r["request_id"] for r in response.json()]

    creator = listed(CREATOR)
    # The ready ones (odd) first, newest first; the failures that ended after them.
    assert creator == [f"r-{t}-{i:02d}" for i in range(11, 2, -2) for t in ("userinfo", "progress")]
    # A mentor sees the creator's progress reports of the batch, never userinfo.
    assert listed(MENTOR) == [f"r-progress-{i:02d}" for i in (11, 9, 7, 5, 3, 1, 10, 8, 6, 4)]
    assert listed(BATCH_CREATOR) == creator
    assert listed(CREATOR, "b2") == ["r-b2"]
    first = api.get("/api/v1/courses/c1/batches/b1/reports", headers=as_(CREATOR)).json()[0]
    assert (first["status"], first["status_label"], first["report_name"]) == (
        "SUCCESS",
        "Success",
        "User Profile Exhaust",
    )


def test_cancelled_and_replaced_requests_never_push_a_ready_report_off_the_list(api, monkeypatch):
    monkeypatch.setenv("COURSEDASH_SUBMITS_PER_HOUR", "100")
    ready = [
        ask(api, CREATOR, password=PASSWORD).json()["request_id"],
        ask(api, CREATOR, report_type="userinfo", password=PASSWORD).json()["request_id"],
        ask(api, CREATOR, report_type="response").json()["request_id"],
        ask(api, BATCH_CREATOR, report_type="progress").json()["request_id"],
    ]
    publish(ready)
    retrying = ask(api, MENTOR2, batch="b2").json()["request_id"]  # another batch: not in b1's list
    # A mentor's failure waiting for its retry, then replaced by a new request: it ended.
    replaced = ask(api, MENTOR, report_type="response").json()["request_id"]
    with db.session() as s:
        claimed = {r.request_id for r in store.claim(s, "run-2")}
        assert {replaced, retrying} <= claimed
        store.fail(s, replaced, "run-2", "the learner data could not be read", transient=True)
    assert "will be retried" in api.get(f"/api/v1/reports/{replaced}", headers=as_(MENTOR)).json()["error"]
    newer = ask(api, MENTOR, report_type="response").json()["request_id"]
    shown = api.get(f"/api/v1/reports/{replaced}", headers=as_(MENTOR)).json()
    assert shown["will_retry"] is False and shown["error"] == (
        f"The learner data could not be read. It will not be retried: request {newer} replaced it."
    )
    assert cancel(api, MENTOR, newer).status_code == 204
    # Ten submit-and-cancel pairs in a row, as fast as they come.
    for _ in range(10):
        assert cancel(api, MENTOR, ask(api, MENTOR).json()["request_id"]).status_code == 204
    for user in (CREATOR, BATCH_CREATOR):
        listed = api.get("/api/v1/courses/c1/batches/b1/reports", headers=as_(user)).json()
        assert [r["request_id"] for r in listed[:4]] == ready[::-1]
        assert [r["status"] for r in listed] == ["SUCCESS"] * 4 + ["CANCELLED"] * 6
    mentor = api.get("/api/v1/courses/c1/batches/b1/reports", headers=as_(MENTOR)).json()
    assert [r["request_id"] for r in mentor[:3]] == [ready[3], ready[2], ready[0]]  # never the userinfo


def test_submits_and_cancels_per_user_are_limited_with_429_and_retry_after(api, monkeypatch, app_env):
    from tests.test_cli import run

    monkeypatch.setenv("COURSEDASH_SUBMITS_PER_HOUR", "3")
    monkeypatch.setenv("COURSEDASH_CANCELS_PER_HOUR", "2")
    mine = [ask(api, MENTOR, report_type=t).json()["request_id"] for t in ("progress", "response")]
    assert cancel(api, MENTOR, mine[0]).status_code == 204 and cancel(api, MENTOR, mine[1]).status_code == 204
    third = ask(api, MENTOR).json()["request_id"]
    refused = cancel(api, MENTOR, third)
    assert "too many cancelled requests: at most 2 an hour" in error_of(refused, 429, "too_many_requests")
    assert 3590 <= int(refused.headers["Retry-After"]) <= 3601
    assert refused.json()["error"]["retry_after_seconds"] == int(refused.headers["Retry-After"])
    refused = ask(api, MENTOR, report_type="response")
    assert "too many report requests: at most 3 an hour; try again in 60 minutes" in error_of(
        refused, 429, "too_many_requests"
    )
    assert 3590 <= int(refused.headers["Retry-After"]) <= 3601
    assert ask(api, CREATOR).status_code == 201  # another user has their own
    # Counted in the database: another process (the command line) sees the same count.
    done = run("request", "submit", "--user", MENTOR, "--course", "c1", "--batch", "b1", "--type", "response")
    assert done.returncode == 2 and "too many report requests" in done.stderr
    # An hour after the first, one more is allowed.
    with db.session() as s:
        s.execute(
            text("UPDATE report_requests SET submitted_at = :t WHERE request_id = :id"),
            {"t": utcnow() - dt.timedelta(minutes=61), "id": mine[0]},
        )
        s.commit()
    assert ask(api, MENTOR, report_type="response").status_code == 201


def test_one_request_shows_to_whoever_may_download_it(api):
    progress = ask(api, CREATOR, password=PASSWORD).json()["request_id"]
    userinfo = ask(api, CREATOR, report_type="userinfo", password=PASSWORD).json()["request_id"]
    assert api.get(f"/api/v1/reports/{progress}", headers=as_(MENTOR)).json()["request_id"] == progress
    assert api.get(f"/api/v1/reports/{userinfo}", headers=as_(BATCH_CREATOR)).status_code == 200
    error_of(api.get(f"/api/v1/reports/{userinfo}", headers=as_(MENTOR)), 403, "forbidden")
    error_of(api.get(f"/api/v1/reports/{progress}", headers=as_(MENTOR2)), 404, "not_found")  # mentor of b2 only
    shown = api.get(f"/api/v1/reports/{progress}", headers=as_(CREATOR)).json()
    assert set(shown) >= {
        "request_id",
        "report_type",
        "status",
        "submitted_at",
        "completed_at",
        "row_count",
        "file_size",
        "attempts",
        "error",
    }


# --- cancelling -------------------------------------------------------------------


def cancel(client, user, request_id):
    return client.delete(f"/api/v1/reports/{request_id}", headers=as_(user))


def test_only_the_requester_cancels_and_only_before_it_is_built(api, monkeypatch):
    monkeypatch.setenv("COURSEDASH_SMTP_URL", "smtp://127.0.0.1:2525")  # so that the address is kept
    response = api.post(
        "/api/v1/reports",
        json={"course_id": "c1", "batch_id": "b1", "report_type": "progress", "password": PASSWORD},
        headers={"Authorization": f"Bearer {mint_token(CREATOR, email='creator@example.org')}"},
    )
    rid = response.json()["request_id"]
    assert response.json()["cancellable"] is True and response.json()["notify"] == {"email": "pending", "webhook": None}
    with db.session() as s:
        assert s.get(ReportRequest, rid).notify_email == "creator@example.org"
    assert "creator@example.org" not in response.text
    later = int((utcnow() + dt.timedelta(hours=1)).timestamp())
    unverified = jwt.encode(
        {"sub": MENTOR, "exp": later, "email": "mentor@example.org", "email_verified": False}, SECRET, "HS256"
    )
    response = api.post(
        "/api/v1/reports",
        json={"course_id": "c1", "batch_id": "b1", "report_type": "response"},
        headers={"Authorization": f"Bearer {unverified}"},
    )
    assert response.status_code == 201 and response.json()["notify"]["email"] is None
    # Some identity providers send the flag as a string: "false" is not verified either.
    unverified = jwt.encode(
        {"sub": MENTOR, "exp": later, "email": "mentor@example.org", "email_verified": "false"}, SECRET, "HS256"
    )
    response = api.post(
        "/api/v1/reports",
        json={"course_id": "c1", "batch_id": "b1", "report_type": "progress"},
        headers={"Authorization": f"Bearer {unverified}"},
    )
    assert response.status_code == 201 and response.json()["notify"]["email"] is None

    # Someone who may see it is told they may not; someone who may not is told nothing.
    assert "only the person who requested" in error_of(cancel(api, MENTOR, rid), 403, "forbidden")
    assert "only the person who requested" in error_of(cancel(api, BATCH_CREATOR, rid), 403, "forbidden")
    real, missing = cancel(api, STRANGER, rid), cancel(api, STRANGER, "r-none")
    error_of(real, 404, "not_found")
    assert real.json()["error"]["message"].replace(rid, "X") == missing.json()["error"]["message"].replace(
        "r-none", "X"
    )
    error_of(cancel(api, MENTOR2, rid), 404, "not_found")  # mentor of another batch
    error_of(cancel(api, CREATOR, "r-none"), 404, "not_found")

    done = cancel(api, CREATOR, rid)
    assert done.status_code == 204 and done.content == b""
    shown = api.get(f"/api/v1/reports/{rid}", headers=as_(CREATOR)).json()
    assert (shown["status"], shown["status_label"], shown["cancellable"]) == ("CANCELLED", "Cancelled", False)
    assert shown["notify"] == {"email": None, "webhook": None}
    assert abs(dt.datetime.fromisoformat(shown["completed_at"]) - utcnow()) < dt.timedelta(minutes=1)
    with db.session() as s:
        gone = s.get(ReportRequest, rid)
        assert (gone.password_token, gone.notify_email) == (None, None)  # both erased
    assert "cancelled" in error_of(cancel(api, CREATOR, rid), 409, "not_cancellable")
    # The slot is free at once.
    assert ask(api, CREATOR, password=PASSWORD).status_code == 201


@pytest.mark.parametrize(
    "status, transient, attempts, expected",
    [
        ("SUBMITTED", False, 0, 204),
        ("FAILED", True, 1, 204),  # its retry is due
        ("PROCESSING", False, 1, 409),
        ("SUCCESS", False, 1, 409),
        ("FAILED", False, 1, 409),  # final
        ("FAILED", True, 3, 409),  # out of attempts: final
        ("EXPIRED", False, 1, 409),
    ],
)
def test_cancel_answers_by_status(api, status, transient, attempts, expected):
    rid = ask(api, MENTOR, report_type="response").json()["request_id"]
    with db.session() as s:
        s.execute(
            text("UPDATE report_requests SET status=:s, error_transient=:t, attempts=:a WHERE request_id=:id"),
            {"s": status, "t": transient, "a": attempts, "id": rid},
        )
        s.commit()
    response = cancel(api, MENTOR, rid)
    if expected == 204:
        assert response.status_code == 204, response.text
    else:
        message = error_of(response, 409, "not_cancellable")
        assert ("being built" if status == "PROCESSING" else "already ended") in message
    with db.session() as s:
        assert s.get(ReportRequest, rid).status == ("CANCELLED" if expected == 204 else status)
    assert api.get(f"/api/v1/reports/{rid}", headers=as_(MENTOR)).json()["cancellable"] is False


def test_a_mentor_cannot_cancel_a_userinfo_request_they_may_not_see(api):
    rid = ask(api, CREATOR, report_type="userinfo", password=PASSWORD).json()["request_id"]
    error_of(cancel(api, MENTOR, rid), 403, "forbidden")
    with db.session() as s:
        assert s.get(ReportRequest, rid).status == "SUBMITTED"


# --- downloading ------------------------------------------------------------------


def test_download_checks_status_and_access_at_download_time_and_audits(api):
    progress = ask(api, CREATOR, password=PASSWORD).json()["request_id"]
    plain = ask(api, MENTOR, report_type="response").json()["request_id"]
    userinfo = ask(api, CREATOR, report_type="userinfo", password=OTHER_PASSWORD).json()["request_id"]
    path = f"/api/v1/reports/{progress}/download"

    assert "Submitted" in error_of(api.get(path, headers=as_(CREATOR)), 409, "not_ready")
    error_of(api.post(f"/api/v1/reports/{progress}/download-link", headers=as_(CREATOR)), 409, "not_ready")
    set_status(progress, "PROCESSING")
    assert "Pending" in error_of(api.get(path, headers=as_(CREATOR)), 409, "not_ready")
    set_status(progress, "SUBMITTED")
    assert downloads_of(progress) == []

    publish([progress, plain, userinfo])
    response = api.get(path, headers=as_(CREATOR))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert 'filename="b1_progress_20261128.zip"' in response.headers["content-disposition"]
    zip_path = Path(tempfile.mkdtemp()) / "got.zip"
    zip_path.write_bytes(response.content)
    csv = packaging.read_zip(zip_path, PASSWORD)["b1_progress_20261128.csv"].decode("utf-8")
    assert csv == "\ufeffCollection Id,Batch Id,User UUID\r\nc1,b1,L1\r\n"
    with pytest.raises(RuntimeError):
        packaging.read_zip(zip_path, "wrong-password1")
    [audit] = downloads_of(progress)
    assert (audit.user_id, audit.client_address, audit.request_id) == (CREATOR, CLIENT_ADDRESS, progress)
    assert abs(audit.downloaded_at - utcnow()) < dt.timedelta(minutes=1)
    with db.session() as s:
        assert s.get(ReportRequest, progress).row_count == 1

    # The mentor may download the creator's progress report; never a userinfo one.
    assert api.get(path, headers=as_(MENTOR)).status_code == 200
    assert [d.user_id for d in downloads_of(progress)] == [CREATOR, MENTOR]
    error_of(api.get(f"/api/v1/reports/{userinfo}/download", headers=as_(MENTOR)), 403, "forbidden")
    error_of(api.get(path, headers=as_(STRANGER)), 404, "not_found")
    error_of(api.get(path, headers=as_(MENTOR2)), 404, "not_found")
    assert [d.user_id for d in downloads_of(progress)] == [CREATOR, MENTOR]
    assert downloads_of(userinfo) == []
    plain_zip = api.get(f"/api/v1/reports/{plain}/download", headers=as_(MENTOR))
    assert (
        plain_zip.status_code == 200
        and 'filename="b1_response_20261128.zip"' in plain_zip.headers["content-disposition"]
    )

    # Access is checked when downloading: a mentor removed from the batch since gets a 404.
    with db.session() as s:
        s.get(Batch, "b1").mentors = []
        s.commit()
    error_of(api.get(path, headers=as_(MENTOR)), 404, "not_found")

    set_status(progress, "EXPIRED")
    assert "expired" in error_of(api.get(path, headers=as_(CREATOR)), 410, "expired")
    set_status(progress, "FAILED")
    assert "Failure" in error_of(api.get(path, headers=as_(CREATOR)), 409, "not_ready")
    assert len(downloads_of(progress)) == 2


def test_download_link_is_short_lived_bound_to_its_request_and_still_checks_access(api):
    progress = ask(api, MENTOR, password=PASSWORD).json()["request_id"]
    other = ask(api, MENTOR, report_type="response").json()["request_id"]
    publish([progress, other])

    response = api.post(f"/api/v1/reports/{progress}/download-link", headers=as_(MENTOR))
    assert response.status_code == 200, response.text
    link = response.json()
    assert link["url"].startswith(f"/api/v1/reports/{progress}/download?ticket=")
    assert dt.timedelta(0) < dt.datetime.fromisoformat(link["expires_at"]) - utcnow() <= dt.timedelta(minutes=1)
    assert downloads_of(progress) == []  # making a link is not downloading

    got = api.get(link["url"])  # no Authorization header: the ticket is enough
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert [(d.user_id, d.client_address) for d in downloads_of(progress)] == [(MENTOR, CLIENT_ADDRESS)]

    ticket = link["url"].split("ticket=")[1]
    error_of(api.get(f"/api/v1/reports/{other}/download?ticket={ticket}"), 401, "unauthorized")
    error_of(api.get(f"/api/v1/reports/{progress}/download?ticket={mint_token(MENTOR)}"), 401, "unauthorized")
    stale, _ = mint_download_ticket(MENTOR, progress, seconds=-1)
    assert "expired" in error_of(api.get(f"/api/v1/reports/{progress}/download?ticket={stale}"), 401, "unauthorized")
    with db.session() as s:
        s.get(Batch, "b1").mentors = []
        s.commit()
    error_of(api.get(link["url"]), 404, "not_found")  # lost the role after the link was made
    assert len(downloads_of(progress)) == 1


def test_download_from_s3_redirects_to_a_signed_url(api, monkeypatch):
    from moto import mock_aws

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "COURSEDASH_REPORTS_URI": "s3://reports-test/pub",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("COURSEDASH_S3_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        boto3.client("s3").create_bucket(Bucket="reports-test")
        rid = ask(api, CREATOR, password=PASSWORD).json()["request_id"]
        publish([rid])
        response = api.get(f"/api/v1/reports/{rid}/download", headers=as_(CREATOR), follow_redirects=False)
        assert response.status_code == 307, response.text
        url = httpx.URL(response.headers["location"])
        assert url.path.endswith(f"/pub/c1/b1/progress/{rid}.zip")
        assert "X-Amz-Signature" in str(url) or "Signature" in str(url)
        assert "b1_progress_20261128.zip" in str(url)
        assert [d.user_id for d in downloads_of(rid)] == [CREATOR]


# --- concurrency, through a real server ---------------------------------------------


def test_simultaneous_identical_requests_make_one_and_name_it_to_the_rest(api):
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        n = 8
        barrier = threading.Barrier(n)
        results: list[httpx.Response] = []
        headers = as_(CREATOR)

        def submit():
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
                barrier.wait()
                body = {"course_id": "c1", "batch_id": "b1", "report_type": "userinfo", "password": PASSWORD}
                results.append(client.post("/api/v1/reports", json=body, headers=headers))

        threads = [threading.Thread(target=submit) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.should_exit = True
        thread.join(timeout=20)

    for r in results:
        _no_password(r)
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * (n - 1), [r.text for r in results]
    winner = next(r.json()["request_id"] for r in results if r.status_code == 201)
    for r in results:
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "open_request_exists"
            assert r.json()["request_id"] == r.json()["error"]["request_id"] == winner
    with db.session() as s:
        assert [r.request_id for r in s.scalars(select(ReportRequest))] == [winner]


# --- the page -----------------------------------------------------------------------


def test_the_page_and_its_files_are_served_and_load_nothing_from_outside(api):
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        response = api.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"], asset
    for path in WEB_DIR.iterdir():
        # The SVG namespace is a name, not an address: nothing is loaded from it.
        content = path.read_text().replace('"http://www.w3.org/2000/svg"', "SVG_NS")
        for outside in ("http://", "https://", "//cdn", "@import"):
            assert outside not in content, f"{path.name} refers to {outside}"
    schema = api.get("/api/v1/openapi.json").json()
    batch = schema["components"]["schemas"]["BatchOut"]["properties"]
    assert {
        "progress_bands",
        "certificates_issued",
        "weekly_enrolments",
        "average_total_score",
        "figures_as_of",
    } <= set(batch)
    listing = schema["paths"]["/api/v1/courses/{course_id}/batches"]["get"]["responses"]["200"]
    assert listing["content"]["application/json"]["schema"]["items"] == {"$ref": "#/components/schemas/BatchOut"}
    error_of(api.get("/no/such/page"), 404, "not_found")


def test_download_tickets_are_kept_out_of_the_access_log():
    import logging

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/v1/reports/r1/download?ticket=eyJ.abc.def&x=1", "1.1", 200),
        None,
    )
    assert RedactTickets().filter(record)
    assert (
        record.getMessage() == '127.0.0.1:5000 - "GET /api/v1/reports/r1/download?ticket=[redacted]&x=1 HTTP/1.1" 200'
    )
