"""Sunbird's exhaust request API (docs/sunbird.md): the portal's own calls, every error, and a real night.

The portal's server sends the user's Keycloak token (RS256, `sub` = `f:<realm key>:<user id>`),
the user id, the channel and its own API key; scripts send their own bearer token. Every
answer is Sunbird's envelope, and none carries a password or a learner's data.
"""

import datetime as dt
import re
import subprocess
import time
import uuid

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from coursedash import db, nightly
from coursedash.api import app
from coursedash.auth import mint_token
from coursedash.db import Course, Download, ReportRequest, utcnow
from coursedash.manifest import Manifest
from coursedash.packaging import read_zip
from coursedash.sync import store_night_figures
from jobs import dashboard_figures
from jobs import night as night_job
from tests import handlake
from tests.conftest import SLOW
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR, STRANGER
from tests.lakefixtures import write_lake
from tests.test_api import SECRET, load_catalogue
from tests.test_api_limits import real_server

CHANNEL = "org1"  # the hand lake's courses c1 and c2
KEY = "Portal-key-42"  # an encryptionKey under our policy
RESPONSE_KEY = "Another-key-7"
SHORT_KEY = "abc123"  # enough for the portal's own form, not for our policy
SENT_KEYS = [KEY, RESPONSE_KEY, SHORT_KEY]
DAY = dt.date(2026, 11, 28)
PREFIXES = ["/dataset/v1/request", "/api/dataset/v1/request", "/request"]
API_IDS = {"submit": "submit", "read": "info", "list": "list"}  # the envelope's id, by call
ENVELOPE_KEYS = {"id", "ver", "ts", "params", "responseCode", "result"}
JOB_KEYS = {
    "requestId",
    "tag",
    "dataset",
    "requestedBy",
    "requestedChannel",
    "status",
    "lastUpdated",
    "datasetConfig",
    "attempts",
    "jobStats",
    "downloadUrls",
    "expiresAt",
    "statusMessage",
}
# The portal's own API key: a token of the gateway's, which this service neither holds nor checks.
PORTAL_API_KEY = jwt.encode({"iss": "portal-api-key"}, "the-gateways-own-secret-0123456789", algorithm="HS256")


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


PRIVATE_KEY, PUBLIC_KEY = _rsa_pair()
OTHER_PRIVATE_KEY, _ = _rsa_pair()


def keycloak_token(user: str, private_key: str = PRIVATE_KEY, minutes: int = 30, **claims) -> str:
    """An access token shaped like Keycloak's for `user` of the Sunbird realm."""
    now = int(time.time())
    body = {
        "sub": f"f:5a8a3f2b-3409-42e0-9001-f913bc0fde31:{user}",
        "iss": "https://sso.example.org/auth/realms/sunbird",
        "aud": "account",
        "typ": "Bearer",
        "iat": now,
        "exp": now + 60 * minutes,
        **claims,
    }
    return jwt.encode(body, private_key, algorithm="RS256", headers={"kid": "sunbird-realm-key"})


def portal_headers(user: str, channel: str | None = CHANNEL, token: str | None = None) -> dict:
    """What the portal's server sends with a signed-in user's call."""
    headers = {
        "x-authenticated-user-token": token or keycloak_token(user),
        "X-Authenticated-Userid": user,
        "Authorization": f"Bearer {PORTAL_API_KEY}",
        "Content-Type": "application/json",
    }
    if channel is not None:
        headers["X-Channel-Id"] = channel
    return headers


def body(tag="c1_b1", dataset="progress-exhaust", config=None, **more) -> dict:
    """The portal's submit body for a batch."""
    request = {
        "tag": tag,
        "requestedBy": more.pop("requestedBy", CREATOR),
        "dataset": dataset,
        "datasetConfig": config if config is not None else {"batchId": "b1"},
        "output_format": "csv",
        **more,
    }
    return {"request": {k: v for k, v in request.items() if v is not None}}


def nothing_secret(response: httpx.Response) -> None:
    """No answer ever carries an encryption key or a learner's personal data."""
    response.read()
    seen = response.content.decode("utf-8", "replace") + str(response.headers)
    for secret in SENT_KEYS + handlake.PII_VALUES:
        assert secret not in seen, f"{secret!r} came back from {response.request.url}"


def envelope(response: httpx.Response, api_id: str, status: int, code: str = "OK", failed: bool | None = None):
    """The envelope's checks; returns (result, errmsg)."""
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == ENVELOPE_KEYS
    assert answer["id"] == f"ekstep.analytics.dataset.request.{API_IDS[api_id]}" and answer["ver"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", answer["ts"])
    params = answer["params"]
    assert set(params) == {"resmsgid", "msgid", "status", "err", "errmsg", "client_key"}
    uuid.UUID(params["resmsgid"])
    assert answer["responseCode"] == code
    failed = code != "OK" if failed is None else failed
    assert params["status"] == ("failed" if failed else "successful")
    assert params["err"] == (code if failed else None)
    if failed:
        assert answer["result"] is None and params["errmsg"]
    return answer["result"], params["errmsg"]


def refused(response, api_id: str, status: int, code: str) -> str:
    return envelope(response, api_id, status, code)[1]


@pytest.fixture
def sunbird(app_env, monkeypatch):
    """The API on the dashboard's catalogue (c1 and c2 in channel org1), trusting the realm's key."""
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    monkeypatch.setenv("COURSEDASH_JWT_PUBLIC_KEY", PUBLIC_KEY)
    load_catalogue()
    with db.session() as s:  # a course of the same creator in another channel
        s.add(
            Course(
                course_id="c_other",
                name="Elsewhere",
                channel="org2",
                created_by=CREATOR,
                user_consent_required=True,
                synced_at=utcnow(),
            )
        )
        s.execute(text("UPDATE batches SET course_id = 'c_other' WHERE batch_id = 's_open'"))
        s.commit()
    client = TestClient(app)
    client.event_hooks["response"] = [nothing_secret]
    return client


def submit(client, user=CREATOR, prefix="/dataset/v1/request", headers=None, **kw):
    return client.post(f"{prefix}/submit", json=body(**kw), headers=headers or portal_headers(user))


# --- submit, list and read as the portal calls them ------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_portals_submit_answers_the_job_and_a_repeat_while_open_answers_it_again(sunbird, prefix):
    before = int(time.time() * 1000)
    job, _ = envelope(submit(sunbird, prefix=prefix), "submit", 200)
    assert set(job) == JOB_KEYS
    assert job == {
        "requestId": job["requestId"],
        "tag": "c1_b1:org1",
        "dataset": "progress-exhaust",
        "requestedBy": CREATOR,
        "requestedChannel": "org1",
        "status": "SUBMITTED",
        "lastUpdated": job["jobStats"]["dtJobSubmitted"],
        "datasetConfig": {"batchId": "b1"},
        "attempts": 0,
        "jobStats": {
            "dtJobSubmitted": job["jobStats"]["dtJobSubmitted"],
            "dtJobCompleted": None,
            "executionTime": None,
        },
        "downloadUrls": [],
        "expiresAt": None,
        "statusMessage": "",
    }
    assert before <= job["jobStats"]["dtJobSubmitted"] <= int(time.time() * 1000)
    again, _ = envelope(submit(sunbird, prefix=prefix), "submit", 200)
    assert again == job
    with db.session() as s:  # one request in our store, the same one /api/v1 shows
        (request,) = s.scalars(select(ReportRequest)).all()
    assert (request.request_id, request.requested_by, request.report_type) == (job["requestId"], CREATOR, "progress")
    shown = sunbird.get(
        f"/api/v1/reports/{job['requestId']}", headers={"Authorization": f"Bearer {mint_token(CREATOR)}"}
    )
    assert shown.json()["status"] == "SUBMITTED"


def test_list_and_read_show_the_batchs_jobs_the_caller_may_download_newest_first(sunbird):
    progress, _ = envelope(submit(sunbird), "submit", 200)
    userinfo, _ = envelope(submit(sunbird, dataset="userinfo-exhaust", encryptionKey=KEY), "submit", 200)
    by_mentor, _ = envelope(submit(sunbird, MENTOR, dataset="response-exhaust", requestedBy=MENTOR), "submit", 200)

    listed, _ = envelope(
        sunbird.get("/api/dataset/v1/request/list/c1_b1", headers=portal_headers(CREATOR)), "list", 200
    )
    assert listed["count"] == 3
    assert [j["requestId"] for j in listed["jobs"]] == [
        by_mentor["requestId"],
        userinfo["requestId"],
        progress["requestId"],
    ]
    assert [j["status"] for j in listed["jobs"]] == ["SUBMITTED"] * 3
    limited, _ = envelope(sunbird.get("/request/list/c1_b1?limit=1", headers=portal_headers(CREATOR)), "list", 200)
    assert [j["requestId"] for j in limited["jobs"]] == [by_mentor["requestId"]] and limited["count"] == 1
    # A mentor never sees the User Profile report's job.
    mentors, _ = envelope(sunbird.get("/request/list/c1_b1", headers=portal_headers(MENTOR)), "list", 200)
    assert [j["dataset"] for j in mentors["jobs"]] == ["response-exhaust", "progress-exhaust"]

    read, _ = envelope(
        sunbird.get(
            f"/dataset/v1/request/read/c1_b1?requestId={userinfo['requestId']}", headers=portal_headers(BATCH_CREATOR)
        ),
        "read",
        200,
    )
    assert read == userinfo
    hidden = sunbird.get(f"/request/read/c1_b1?requestId={userinfo['requestId']}", headers=portal_headers(MENTOR))
    assert envelope(hidden, "read", 200, failed=True) == (None, "no job available with the given request_id and tag")


def test_a_script_sends_its_own_bearer_token_and_a_repeat_after_a_failure_starts_again(sunbird):
    script = {"Authorization": f"Bearer {mint_token(CREATOR)}", "X-Channel-Id": CHANNEL}
    job, _ = envelope(sunbird.post("/api/dataset/v1/request/submit", json=body(), headers=script), "submit", 200)
    with db.session() as s:
        s.execute(
            text(
                "UPDATE report_requests SET status = 'FAILED', error = 'The lake was gone. It will not be "
                "retried.', completed_at = :t, claimed_at = :c"
            ),
            {"t": utcnow(), "c": utcnow() - dt.timedelta(seconds=42)},
        )
        s.commit()
    failed, _ = envelope(sunbird.get(f"/request/read/c1_b1?requestId={job['requestId']}", headers=script), "read", 200)
    assert (failed["status"], failed["statusMessage"]) == ("FAILED", "The lake was gone. It will not be retried.")
    assert 41_000 <= failed["jobStats"]["executionTime"] <= 43_000
    assert failed["lastUpdated"] == failed["jobStats"]["dtJobCompleted"] > failed["jobStats"]["dtJobSubmitted"]
    again, _ = envelope(sunbird.post("/request/submit", json=body(), headers=script), "submit", 200)
    assert again["status"] == "SUBMITTED" and again["requestId"] != job["requestId"]


def test_cancelled_and_expired_requests_show_as_failed_with_a_message_that_says_why(sunbird):
    cancelled, _ = envelope(submit(sunbird), "submit", 200)
    token = {"Authorization": f"Bearer {mint_token(CREATOR)}"}
    assert sunbird.delete(f"/api/v1/reports/{cancelled['requestId']}", headers=token).status_code == 204
    expired, _ = envelope(submit(sunbird, dataset="response-exhaust"), "submit", 200)
    with db.session() as s:
        s.execute(
            text(
                "UPDATE report_requests SET status = 'EXPIRED', completed_at = :t, object_key = 'gone.zip' "
                "WHERE request_id = :id"
            ),
            {"t": utcnow(), "id": expired["requestId"]},
        )
        s.commit()
    jobs = envelope(sunbird.get("/request/list/c1_b1", headers=portal_headers(CREATOR)), "list", 200)[0]["jobs"]
    shown = {j["requestId"]: j for j in jobs}
    assert shown[cancelled["requestId"]]["status"] == "FAILED"
    assert (
        shown[cancelled["requestId"]]["statusMessage"]
        == "The request was cancelled by its requester before it was built."
    )
    assert shown[expired["requestId"]]["status"] == "FAILED"
    assert shown[expired["requestId"]]["statusMessage"] == (
        "The report is no longer available (reports are kept 30 days). Request it again."
    )
    assert all(j["downloadUrls"] == [] and j["expiresAt"] is None for j in jobs)


def test_submits_share_the_users_hourly_limit_and_a_repeat_is_never_refused_for_it(sunbird, monkeypatch):
    monkeypatch.setenv("COURSEDASH_SUBMITS_PER_HOUR", "1")
    job, _ = envelope(submit(sunbird), "submit", 200)
    assert envelope(submit(sunbird), "submit", 200)[0] == job  # the repeat answers the open job
    refused_ = submit(sunbird, dataset="response-exhaust")
    message = refused(refused_, "submit", 429, "CLIENT_ERROR")
    assert message.startswith("too many report requests: at most 1 an hour; try again in")
    assert 3500 <= int(refused_.headers["Retry-After"]) <= 3601


# --- every refusal, in the envelope ---------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_without_a_channel_every_call_is_refused_as_sunbird_does(sunbird, prefix):
    headers = portal_headers(CREATOR, channel=None)
    message = "X-Channel-ID is missing in request header"
    assert (
        refused(sunbird.post(f"{prefix}/submit", json=body(), headers=headers), "submit", 403, "FORBIDDEN") == message
    )
    assert (
        refused(sunbird.get(f"{prefix}/read/c1_b1?requestId=x", headers=headers), "read", 403, "FORBIDDEN") == message
    )
    assert refused(sunbird.get(f"{prefix}/list/c1_b1", headers=headers), "list", 403, "FORBIDDEN") == message
    blank = {**headers, "x-channel-id": "  "}
    assert refused(sunbird.get(f"{prefix}/list/c1_b1", headers=blank), "list", 403, "FORBIDDEN") == message


def test_the_callers_identity_comes_from_a_verified_token_only(sunbird):
    def answer(headers):
        return refused(sunbird.get("/request/list/c1_b1", headers=headers), "list", 403, "FORBIDDEN")

    channel = {"X-Channel-Id": CHANNEL}
    # The user id alone, or the portal's API key alone, is nobody.
    assert "sign in" in answer({**channel, "X-Authenticated-Userid": CREATOR})
    assert answer({**channel, "Authorization": f"Bearer {PORTAL_API_KEY}", "X-Authenticated-Userid": CREATOR}) == (
        "the bearer token is not valid"
    )
    forged = keycloak_token(CREATOR, private_key=OTHER_PRIVATE_KEY)
    assert answer(portal_headers(CREATOR, token=forged)) == "the user token (x-authenticated-user-token) is not valid"
    expired = keycloak_token(CREATOR, minutes=-5)
    assert answer(portal_headers(CREATOR, token=expired)) == (
        "the user token (x-authenticated-user-token) has expired; sign in again"
    )
    # A token for another user than the one the portal names.
    assert answer(portal_headers(CREATOR, token=keycloak_token(MENTOR))) == (
        "X-Authenticated-Userid is not the user of the token"
    )
    # The user id is what follows the last ':' of Keycloak's sub, not the sub.
    assert answer({**portal_headers(CREATOR), "X-Authenticated-Userid": f"f:5a8a3f2b:{CREATOR}"}) == (
        "X-Authenticated-Userid is not the user of the token"
    )
    # requestedBy may only name the caller.
    assert refused(submit(sunbird, requestedBy=BATCH_CREATOR), "submit", 403, "FORBIDDEN") == (
        "requestedBy is not the user of the token"
    )


def test_bodies_are_checked_in_sunbirds_order_and_words(sunbird):
    def answer(payload, status=400, code="CLIENT_ERROR"):
        return refused(
            sunbird.post("/dataset/v1/request/submit", json=payload, headers=portal_headers(CREATOR)),
            "submit",
            status,
            code,
        )

    assert answer({}) == "tag is empty"
    assert answer({"request": {}}) == "tag is empty"
    assert answer({"request": {"dataset": "progress-exhaust", "datasetConfig": {"batchId": "b1"}}}) == "tag is empty"
    assert answer({"request": {"tag": "c1_b1", "datasetConfig": {"batchId": "b1"}}}) == "dataset is empty"
    assert answer({"request": {"tag": "c1_b1", "dataset": "progress-exhaust"}}) == "datasetConfig is empty"
    assert answer({"request": {"tag": "c1_b1", "dataset": "progress-exhaust", "datasetConfig": {}}}) == (
        "datasetConfig is empty"
    )
    assert answer(body(dataset="druid-dataset")) == (
        "dataset 'druid-dataset' is not supported: this service builds progress-exhaust, userinfo-exhaust, "
        "response-exhaust"
    )
    assert answer(body(config={"batchFilter": ["b1", "b2"]})) == (
        "datasetConfig.batchFilter is not supported: give datasetConfig.batchId, one batch per request"
    )
    assert answer(body(config={"searchFilter": {"request": {}}, "type": "x"})) == (
        "datasetConfig.searchFilter, datasetConfig.type is not supported: give datasetConfig.batchId, "
        "one batch per request"
    )
    assert answer(body(output_format="json")) == "output_format 'json' is not supported: reports are csv"
    assert answer(body(tag="c1_b2")) == "tag must be <courseId>_<batchId>, with the batch of datasetConfig.batchId"
    assert answer(body(tag="_b1")) == "tag must be <courseId>_<batchId>, with the batch of datasetConfig.batchId"
    # A batch the caller sees, named under another of their courses.
    assert answer(body(tag="c2_b1")) == "batch 'b1' is not a batch of course 'c2'"
    assert answer(body(tag="c-none_b1")) == "batch 'b1' is not a batch of course 'c-none'"
    response = sunbird.post("/request/submit", content=b"{not json", headers=portal_headers(CREATOR))
    assert refused(response, "submit", 400, "CLIENT_ERROR") == "the request body is not JSON"


def test_the_password_is_our_policy_and_userinfo_needs_one(sunbird):
    message = refused(submit(sunbird, dataset="userinfo-exhaust"), "submit", 400, "CLIENT_ERROR")
    assert message.startswith("encryptionKey: a password is mandatory for a userinfo report: 8 to 64 printable ASCII")
    message = refused(
        submit(sunbird, dataset="userinfo-exhaust", encryptionKey=SHORT_KEY), "submit", 400, "CLIENT_ERROR"
    )
    assert message == (
        "encryptionKey: password refused (it has 6 characters): use 8 to 64 printable ASCII characters, "
        "no space at either end, at least one letter and one digit"
    )
    assert refused(
        submit(sunbird, tag="c2_b9", config={"batchId": "b9"}, dataset="userinfo-exhaust", encryptionKey=KEY),
        "submit",
        400,
        "CLIENT_ERROR",
    ) == ("course 'c2' does not ask learners for consent, so it has no User Profile report")
    with db.session() as s:
        assert s.scalars(select(ReportRequest)).all() == []


def test_what_the_caller_may_not_see_or_request_is_one_refusal_for_all(sunbird):
    not_authorized = "You are not authorized."
    anyone = dict(requestedBy=None)  # requestedBy is optional
    cases = [
        ("a stranger", STRANGER, CHANNEL, body(**anyone)),
        ("a course in another channel", CREATOR, "org2", body()),
        (
            "the caller's course of another channel",
            CREATOR,
            CHANNEL,
            body(tag="c_other_s_open", config={"batchId": "s_open"}),
        ),
        ("an unknown course", CREATOR, CHANNEL, body(tag="c-none_b-none", config={"batchId": "b-none"})),
        ("an unknown batch", CREATOR, CHANNEL, body(tag="c1_b-none", config={"batchId": "b-none"})),
        ("a batch the mentor has no role on", MENTOR, CHANNEL, body(tag="c1_b2", config={"batchId": "b2"}, **anyone)),
        ("userinfo for a mentor", MENTOR, CHANNEL, body(dataset="userinfo-exhaust", encryptionKey=KEY, **anyone)),
        ("a batch of another course, for a stranger", STRANGER, CHANNEL, body(tag="c2_b1", **anyone)),
    ]
    for name, user, channel, payload in cases:
        response = sunbird.post("/request/submit", json=payload, headers=portal_headers(user, channel))
        assert refused(response, "submit", 403, "FORBIDDEN") == not_authorized, name
    for user, channel, tag in [
        (STRANGER, CHANNEL, "c1_b1"),
        (CREATOR, "org2", "c1_b1"),
        (CREATOR, CHANNEL, "c9_b9"),
        (CREATOR, CHANNEL, "c1"),
        (MENTOR, CHANNEL, "c1_b2"),
    ]:
        for call, path in [("list", f"/request/list/{tag}"), ("read", f"/request/read/{tag}?requestId=x")]:
            response = sunbird.get(path, headers=portal_headers(user, channel))
            assert refused(response, call, 403, "FORBIDDEN") == not_authorized, (user, channel, tag)
    with db.session() as s:
        assert s.scalars(select(ReportRequest)).all() == []


def test_unknown_jobs_limits_and_calls_are_answered_in_the_envelope(sunbird):
    job, _ = envelope(submit(sunbird), "submit", 200)
    for path in ["/request/read/c1_b1?requestId=nope", f"/request/read/c1_b2?requestId={job['requestId']}"]:
        answer = sunbird.get(path, headers=portal_headers(CREATOR))
        assert envelope(answer, "read", 200, failed=True) == (
            None,
            "no job available with the given request_id and tag",
        )
    assert (
        refused(sunbird.get("/request/read/c1_b1", headers=portal_headers(CREATOR)), "read", 400, "CLIENT_ERROR")
        == "requestId is empty"
    )
    for limit in ["0", "-1", "ten", "1001"]:
        assert (
            refused(
                sunbird.get(f"/request/list/c1_b1?limit={limit}", headers=portal_headers(CREATOR)),
                "list",
                400,
                "CLIENT_ERROR",
            )
            == "limit must be a whole number from 1 to 1000"
        )
    for method, path in [
        ("POST", "/request/search"),
        ("GET", "/dataset/v1/request/submit"),
        ("POST", "/api/dataset/v1/request/list/c1_b1"),
        ("GET", "/request/read/"),
    ]:
        answer = sunbird.request(method, path, headers=portal_headers(CREATOR))
        message = refused(answer, api_id_of(path), 404, "RESOURCE_NOT_FOUND")
        assert message.startswith(f"{method} {path} is not supported by this service: it answers POST .../submit")
    # The server's own guard answers in the envelope too: a control character in the address.
    answer = sunbird.get("/request/list/c1_b1%01", headers=portal_headers(CREATOR))
    assert refused(answer, "list", 400, "CLIENT_ERROR") == "the address contains a control character"
    # ...and /api/v1 keeps its own error JSON.
    assert sunbird.get("/api/v1/nothing").json()["error"]["code"] == "not_found"


def api_id_of(path: str) -> str:
    return "list" if "/list/" in path else "read" if "/read/" in path else "submit"


def test_the_openapi_document_lists_the_facades_calls(sunbird):
    paths = sunbird.get("/api/v1/openapi.json").json()["paths"]
    for prefix in PREFIXES:
        assert set(paths[f"{prefix}/submit"]) == {"post"}
        assert set(paths[f"{prefix}/read/{{tag}}"]) == {"get"}
        assert set(paths[f"{prefix}/list/{{tag}}"]) == {"get"}
    assert "requestBody" in paths["/request/submit"]["post"]


# --- the whole flow, through a real night ---------------------------------------------


def seven_zip(path, password: str, to) -> dict[str, bytes]:
    """Open a zip as a person would, with 7-Zip (`unzip` cannot open AES); the files it held."""
    to.mkdir()
    subprocess.run(["7z", "x", f"-p{password}", f"-o{to}", str(path)], check=True, capture_output=True)
    return {f.name: f.read_bytes() for f in to.iterdir()}


LINK_SECONDS = 10


@pytest.mark.parametrize("app_env,storage", [("sqlite", "folder"), ("postgresql", "s3")], indirect=["app_env"])
def test_the_portals_course_dashboard_flow_through_a_night(app_env, storage, spark, request, monkeypatch, tmp_path):
    if storage == "s3":
        request.getfixturevalue("s3_reports")
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    monkeypatch.setenv("COURSEDASH_JWT_PUBLIC_KEY", PUBLIC_KEY)
    # Long enough to download the three zips on a busy machine, short enough to wait for its end below.
    monkeypatch.setenv("COURSEDASH_SUNBIRD_LINK_SECONDS", str(LINK_SECONDS))
    lake = str(write_lake(app_env / "lake", handlake.TABLES))
    # The dashboard's catalogue as the night's figures store it: courses with their channel.
    dashboard_figures.build(spark, lake, str(app_env / "figures"))
    store_night_figures(app_env / "figures")

    with real_server(tmp_path / "server.log") as base:
        client = httpx.Client(base_url=base, event_hooks={"response": [nothing_secret]}, timeout=SLOW)
        # The portal submits each of the three reports for batch b1, as its course creator.
        keys = {"progress-exhaust": None, "userinfo-exhaust": KEY, "response-exhaust": RESPONSE_KEY}
        submitted = {}
        for dataset, key in keys.items():
            payload = body(dataset=dataset, encryptionKey=key)
            submitted[dataset] = envelope(
                client.post("/api/dataset/v1/request/submit", json=payload, headers=portal_headers(CREATOR)),
                "submit",
                200,
            )[0]
        listed = envelope(
            client.get("/api/dataset/v1/request/list/c1_b1", headers=portal_headers(CREATOR)), "list", 200
        )[0]
        assert {j["dataset"]: j["status"] for j in listed["jobs"]} == dict.fromkeys(keys, "SUBMITTED")

        # The night: claim, build with Spark, publish.
        claimed = nightly.claim_requests("scheduled__2026-11-28", DAY)
        night_job.build(
            spark,
            [
                (Manifest.load(path), str(nightly.output_dir("scheduled__2026-11-28", t)))
                for t, path in claimed["manifests"].items()
            ],
        )
        assert nightly.publish_reports("scheduled__2026-11-28", DAY)["SUCCESS"] == 3

        listed = envelope(
            client.get("/api/dataset/v1/request/list/c1_b1", headers=portal_headers(CREATOR)), "list", 200
        )[0]
        jobs = {j["dataset"]: j for j in listed["jobs"]}
        expected = {
            "progress-exhaust": ("progress", handlake.B1_PROGRESS_CSV),
            "userinfo-exhaust": ("userinfo", handlake.B1_USERINFO_CSV),
            "response-exhaust": ("response", handlake.B1_RESPONSE_CSV),
        }
        for dataset, job in jobs.items():
            report_type, csv = expected[dataset]
            assert job["status"] == "SUCCESS" and job["requestId"] == submitted[dataset]["requestId"]
            stats = job["jobStats"]
            assert stats["dtJobSubmitted"] <= stats["dtJobCompleted"] == job["lastUpdated"]
            assert 0 <= stats["executionTime"] < 600_000
            assert job["expiresAt"] - LINK_SECONDS * 1000 <= int(time.time() * 1000) < job["expiresAt"] + 1000
            (url,) = job["downloadUrls"]
            assert url.startswith(f"{base}/api/v1/reports/{job['requestId']}/download?ticket=")
            # A plain browser: the link alone, no header of ours.
            downloaded = httpx.get(url, follow_redirects=True, timeout=SLOW)
            assert downloaded.status_code == 200, downloaded.text
            zip_path = tmp_path / f"{report_type}.zip"
            zip_path.write_bytes(downloaded.content)
            password = keys[dataset]
            files = seven_zip(zip_path, password, tmp_path / report_type) if password else read_zip(zip_path)
            assert files == {f"b1_{report_type}_20261128.csv": csv.encode()}
        with db.session() as s:
            audited = s.scalars(select(Download).where(Download.user_id == CREATOR)).all()
        assert sorted(d.request_id for d in audited) == sorted(j["requestId"] for j in jobs.values())

        # Once expiresAt has passed the link no longer opens; read gives a fresh one that does.
        progress = jobs["progress-exhaust"]
        time.sleep(max(0.0, (progress["expiresAt"] - time.time() * 1000) / 1000) + 1)
        assert httpx.get(progress["downloadUrls"][0], timeout=SLOW).status_code == 401
        read = envelope(
            client.get(
                f"/dataset/v1/request/read/c1_b1?requestId={progress['requestId']}", headers=portal_headers(CREATOR)
            ),
            "read",
            200,
        )[0]
        assert read["expiresAt"] > progress["expiresAt"] and read["downloadUrls"] != progress["downloadUrls"]
        assert httpx.get(read["downloadUrls"][0], follow_redirects=True, timeout=SLOW).status_code == 200
