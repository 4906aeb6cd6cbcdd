"""Sunbird's on-demand exhaust request API, answered from our own requests (docs/sunbird.md).

A Sunbird portal's course dashboard submits, lists and downloads reports through
`/dataset/v1/request/{submit,read,list}` (and the same under `/api/dataset/v1/request`
and `/request`). This facade answers those calls exactly as Sunbird's service does, on
the same store, access rules, lifecycle and nightly run as /api/v1: a job is one of our
report requests, seen through Sunbird's names.

- Every answer, errors included, is Sunbird's envelope (`id`, `ver`, `ts`, `params`,
  `responseCode`, `result`); nothing here answers in /api/v1's error JSON.
- Who is calling comes from a verified token only: the portal's `x-authenticated-user-token`
  (Keycloak's `sub` is `f:<realm key>:<user id>`), else a script's `Authorization: Bearer`.
- A course is the caller's only in the channel it belongs to (`X-Channel-Id`). Whatever
  the caller may not see or request is answered with one and the same refusal, so that
  the facade cannot be used to probe which courses and batches exist.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from functools import partial
from typing import Any, overload
from urllib.parse import quote

import anyio.to_thread
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from coursedash import access, auth, db, store
from coursedash.config import settings
from coursedash.db import Batch, Course, ReportRequest

log = logging.getLogger(__name__)

PREFIXES = ("/dataset/v1/request", "/api/dataset/v1/request", "/request")
API_IDS = {
    "submit": "ekstep.analytics.dataset.request.submit",
    "read": "ekstep.analytics.dataset.request.info",
    "list": "ekstep.analytics.dataset.request.list",
}
DATASETS = {"progress-exhaust": "progress", "userinfo-exhaust": "userinfo", "response-exhaust": "response"}
DATASET_OF = {report_type: dataset for dataset, report_type in DATASETS.items()}
# Sunbird's job statuses are these four; ours that it lacks show as FAILED, with a statusMessage.
JOB_STATUS = {
    "SUBMITTED": "SUBMITTED",
    "PROCESSING": "PROCESSING",
    "SUCCESS": "SUCCESS",
    "FAILED": "FAILED",
    "EXPIRED": "FAILED",
    "CANCELLED": "FAILED",
}
EXPIRED_MESSAGE = "The report is no longer available (reports are kept {days} days). Request it again."
CANCELLED_MESSAGE = "The request was cancelled by its requester before it was built."
# Sunbird's response codes, and the HTTP status each answers with.
HTTP_STATUS = {"OK": 200, "CLIENT_ERROR": 400, "FORBIDDEN": 403, "RESOURCE_NOT_FOUND": 404, "SERVER_ERROR": 500}
NOT_AUTHORIZED = "You are not authorized."
NO_CHANNEL = "X-Channel-ID is missing in request header"
NO_JOB = "no job available with the given request_id and tag"
LIST_LIMIT, MAX_LIST_LIMIT = 100, 1000


class Refused(Exception):
    """An answer in Sunbird's error envelope: its response code, message and extra headers."""

    def __init__(self, response_code: str, message: str, status: int | None = None, headers: dict | None = None):
        super().__init__(message)
        self.response_code = response_code
        self.message = message
        self.status = status or HTTP_STATUS[response_code]
        self.headers = headers


def is_facade_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PREFIXES)


def api_id_for(path: str) -> str:
    """The envelope `id` of an answer to this path (submit's for anything unknown, as upstream does)."""
    for call in ("read", "list"):
        if any(path.startswith(f"{prefix}/{call}/") for prefix in PREFIXES):
            return API_IDS[call]
    return API_IDS["submit"]


@overload
def _ms(value: dt.datetime) -> int: ...


@overload
def _ms(value: dt.datetime | None) -> int | None: ...


def _ms(value: dt.datetime | None) -> int | None:
    return int(value.timestamp() * 1000) if value is not None else None


def envelope(api_id: str, result=None, error: Refused | None = None, message: str | None = None) -> dict:
    response_code = error.response_code if error else "OK"
    failed = error is not None or message is not None
    return {
        "id": api_id,
        "ver": "1.0",
        "ts": db.utcnow().isoformat(timespec="milliseconds"),
        "params": {
            "resmsgid": str(uuid.uuid4()),
            "msgid": None,
            "status": "failed" if failed else "successful",
            "err": response_code if failed else None,
            "errmsg": error.message if error else message,
            "client_key": None,
        },
        "responseCode": response_code,
        "result": result,
    }


def error_response(api_id: str, error: Refused) -> JSONResponse:
    return JSONResponse(envelope(api_id, error=error), status_code=error.status, headers=error.headers)


def refusal(path: str, status: int, message: str, headers: dict | None = None) -> JSONResponse:
    """An error the server's outer guard gives before a route runs (too large, timeout, crash) as an envelope."""
    code = {400: "CLIENT_ERROR", 403: "FORBIDDEN", 404: "RESOURCE_NOT_FOUND"}.get(
        status, "SERVER_ERROR" if status >= 500 else "CLIENT_ERROR"
    )
    return error_response(api_id_for(path), Refused(code, message, status, headers))


def _from_store(e: store.RequestError) -> Refused:
    """One of the store's refusals, in Sunbird's response codes (a 429 keeps its status and Retry-After)."""
    if e.status in (401, 403, 404):
        return Refused("FORBIDDEN", e.message if e.status == 401 else NOT_AUTHORIZED)
    if e.status >= 500:
        return Refused("SERVER_ERROR", e.message, e.status)
    if isinstance(e, store.TooManyRequests):
        return Refused("CLIENT_ERROR", e.message, 429, {"Retry-After": str(e.retry_after)})
    return Refused("CLIENT_ERROR", e.message)


# --- who is calling ------------------------------------------------------------------


def user_id_of(claims: dict) -> str:
    """The user id a token names: Keycloak's `sub` is `f:<realm key>:<user id>`, ours the id itself."""
    sub = claims["sub"]
    return sub.rsplit(":", 1)[-1] if sub.startswith("f:") else sub


def caller(channel: str | None, user_token: str | None, authorization: str | None, asserted_user: str | None):
    """(user id, token claims, channel) of a call, from verified tokens only; Refused otherwise."""
    if not channel or not channel.strip():
        raise Refused("FORBIDDEN", NO_CHANNEL)
    try:
        if user_token and user_token.strip():
            # The portal's own API key is then in Authorization: the gateway's to check, not ours.
            claims = auth.token_claims(user_token.strip(), "the user token (x-authenticated-user-token)")
        else:
            claims = auth.claims_from_header(authorization)
    except store.RequestError as e:
        raise _from_store(e) from None
    user = user_id_of(claims)
    if not user:
        raise Refused("FORBIDDEN", "the user token names no user")
    if asserted_user is not None and asserted_user != user:
        raise Refused("FORBIDDEN", "X-Authenticated-Userid is not the user of the token")
    return user, claims, channel.strip()


def _visible(s: Session, user: str, channel: str, course_id: str, batch_id: str) -> tuple[Course, Batch]:
    """The course and batch if the caller has a role on them in this channel; one refusal for all else."""
    course, batch = s.get(Course, course_id), s.get(Batch, batch_id)
    if (
        course is None
        or batch is None
        or batch.course_id != course_id
        or course.channel != channel
        or not access.can_see_batch(user, course, batch)
    ):
        raise Refused("FORBIDDEN", NOT_AUTHORIZED)
    return course, batch


def _batch_of_tag(s: Session, user: str, channel: str, tag: str) -> tuple[Course, Batch]:
    """The course and batch a `<courseId>_<batchId>` tag names (both ids may hold `_`)."""
    splits = {tag[i + 1 :]: tag[:i] for i, c in enumerate(tag) if c == "_" and 0 < i < len(tag) - 1}
    for batch in s.scalars(select(Batch).where(Batch.batch_id.in_(list(splits))).order_by(Batch.batch_id)):
        if splits[batch.batch_id] == batch.course_id:
            try:
                return _visible(s, user, channel, batch.course_id, batch.batch_id)
            except Refused:
                continue
    raise Refused("FORBIDDEN", NOT_AUTHORIZED)


# --- the job object ------------------------------------------------------------------


def _status_message(r: ReportRequest) -> str:
    if r.status == "FAILED":
        return r.error or ""
    if r.status == "EXPIRED":
        return EXPIRED_MESSAGE.format(days=settings().retention_days)
    if r.status == "CANCELLED":
        return CANCELLED_MESSAGE
    return ""


def job(r: ReportRequest, course: Course, user: str) -> dict:
    """A request as Sunbird's job object, with a download link of its own authority when it is ready."""
    urls, expires = [], None
    if r.status == "SUCCESS" and r.object_key:
        ticket, expires = auth.mint_download_ticket(user, r.request_id, settings().sunbird_link_seconds)
        urls = [f"{settings().public_url}/api/v1/reports/{quote(r.request_id, safe='')}/download?ticket={ticket}"]
    completed = r.completed_at if r.status not in ("SUBMITTED", "PROCESSING") else None
    # From the nightly run's claim to the outcome recorded: what the requester waited on the night.
    execution_ms = None
    if completed is not None and r.claimed_at is not None and r.status != "CANCELLED":
        execution_ms = _ms(completed) - _ms(r.claimed_at)
    return {
        "requestId": r.request_id,
        "tag": f"{r.course_id}_{r.batch_id}:{course.channel}",
        "dataset": DATASET_OF[r.report_type],
        "requestedBy": r.requested_by,
        "requestedChannel": course.channel,
        "status": JOB_STATUS[r.status],
        "lastUpdated": _ms(completed or r.submitted_at),
        "datasetConfig": {"batchId": r.batch_id},
        "attempts": r.attempts,
        "jobStats": {
            "dtJobSubmitted": _ms(r.submitted_at),
            "dtJobCompleted": _ms(completed),
            "executionTime": execution_ms,
        },
        "downloadUrls": urls,
        "expiresAt": _ms(expires),
        "statusMessage": _status_message(r),
    }


# --- the three calls -----------------------------------------------------------------


def _text(body: dict, name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise Refused("CLIENT_ERROR", f"{name} must be a string")
    return value


def _submit_request(s: Session, user: str, claims: dict, channel: str, raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Refused("CLIENT_ERROR", "the request body is not JSON") from None
    request = body.get("request") if isinstance(body, dict) else None
    request = request if isinstance(request, dict) else {}
    for name in ("tag", "dataset", "datasetConfig"):  # Sunbird's checks, in its order and words
        if request.get(name) in (None, "", {}):
            raise Refused("CLIENT_ERROR", f"{name} is empty")
    tag, dataset = _text(request, "tag"), _text(request, "dataset")
    assert tag and dataset  # refused above when empty
    config = request["datasetConfig"]
    if dataset not in DATASETS:
        raise Refused(
            "CLIENT_ERROR", f"dataset {dataset[:100]!r} is not supported: this service builds {', '.join(DATASETS)}"
        )
    if not isinstance(config, dict):
        raise Refused("CLIENT_ERROR", "datasetConfig must be an object holding batchId")
    batch_id = config.get("batchId")
    if not isinstance(batch_id, str) or not batch_id:
        given = ", ".join(f"datasetConfig.{k}" for k in sorted(config)[:5] if k != "batchId") or "this datasetConfig"
        raise Refused("CLIENT_ERROR", f"{given} is not supported: give datasetConfig.batchId, one batch per request")
    output_format = _text(request, "output_format")
    if output_format not in (None, "") and output_format.lower() != "csv":
        raise Refused("CLIENT_ERROR", f"output_format {output_format[:20]!r} is not supported: reports are csv")
    requested_by = _text(request, "requestedBy")
    if requested_by not in (None, "") and requested_by != user:
        raise Refused("FORBIDDEN", "requestedBy is not the user of the token")
    key = _text(request, "encryptionKey")
    if not tag.endswith("_" + batch_id) or len(tag) <= len(batch_id) + 1:
        raise Refused("CLIENT_ERROR", "tag must be <courseId>_<batchId>, with the batch of datasetConfig.batchId")
    course_id = tag[: -len(batch_id) - 1]
    try:
        course, batch = _visible(s, user, channel, course_id, batch_id)
    except Refused:
        elsewhere = s.get(Batch, batch_id)
        if elsewhere is not None and elsewhere.course_id != course_id:
            _visible(s, user, channel, elsewhere.course_id, batch_id)  # refused unless the caller may see it
            raise Refused("CLIENT_ERROR", f"batch {batch_id!r} is not a batch of course {course_id!r}") from None
        raise
    report_type = DATASETS[dataset]
    if not access.may_request(user, course, batch, report_type):
        raise Refused("FORBIDDEN", NOT_AUTHORIZED)
    # Sunbird answers a repeat while the same request is open with that job, unchanged.
    submitted = store.open_request(s, user, batch_id, report_type)
    if submitted is None:
        try:
            submitted = store.submit(s, user, course_id, batch_id, report_type, key, auth.notice_email(claims))
        except store.OpenRequestExists as e:  # a simultaneous repeat won
            submitted = s.get(ReportRequest, e.extra["request_id"]) if e.extra.get("request_id") else None
            if submitted is None:
                raise _from_store(e) from None
        except store.BadPassword as e:  # this service's policy, stricter than the portal's form
            raise Refused("CLIENT_ERROR", f"encryptionKey: {e.message}") from None
    return job(submitted, course, user)


def _read_request(s: Session, user: str, channel: str, tag: str, request_id: str | None) -> dict | None:
    if not request_id:
        raise Refused("CLIENT_ERROR", "requestId is empty")
    course, batch = _batch_of_tag(s, user, channel, tag)
    r = s.get(ReportRequest, request_id)
    if r is None or r.batch_id != batch.batch_id or r.report_type not in access.report_types_for(user, course, batch):
        return None
    return job(r, course, user)


def _list_requests(s: Session, user: str, channel: str, tag: str, limit: str | None) -> dict:
    try:
        n = LIST_LIMIT if limit in (None, "") else int(limit)
    except ValueError:
        n = 0
    if not 1 <= n <= MAX_LIST_LIMIT:
        raise Refused("CLIENT_ERROR", f"limit must be a whole number from 1 to {MAX_LIST_LIMIT}")
    course, batch = _batch_of_tag(s, user, channel, tag)
    requests = s.scalars(
        select(ReportRequest)
        .where(
            ReportRequest.batch_id == batch.batch_id,
            ReportRequest.report_type.in_(access.report_types_for(user, course, batch)),
        )
        .order_by(ReportRequest.submitted_at.desc(), ReportRequest.request_id.desc())
        .limit(n)
    ).all()
    jobs = [job(r, course, user) for r in requests]
    return {"count": len(jobs), "jobs": jobs}


def _answer(call: str, headers: dict, work) -> JSONResponse:
    """Run one call on a worker thread's own session; every outcome in the envelope."""
    try:
        user, claims, channel = caller(**headers)
        with db.session() as s:
            result = work(s, user, claims, channel)
    except Refused as e:
        log.info("sunbird %s refused (%s): %s", call, e.response_code, e.message)
        return error_response(API_IDS[call], e)
    except store.RequestError as e:
        return error_response(API_IDS[call], _from_store(e))
    if call == "read" and result is None:
        # Sunbird answers an unknown job with 200 and a failed status, no result.
        return JSONResponse(envelope(API_IDS[call], message=NO_JOB))
    return JSONResponse(envelope(API_IDS[call], result))


async def _run(call: str, headers: dict, work) -> JSONResponse:
    return await anyio.to_thread.run_sync(partial(_answer, call, headers, work))


# --- routes: documented, every value checked here so that every answer is the envelope ----


class SubmitRequest(BaseModel):
    tag: str = Field(description="`<courseId>_<batchId>`")
    dataset: str = Field(description="progress-exhaust, userinfo-exhaust or response-exhaust")
    datasetConfig: dict = Field(description='`{"batchId": "<batchId>"}`')
    requestedBy: str | None = Field(None, description="the caller's user id, if given")
    encryptionKey: str | None = Field(None, description="the zip's password; mandatory for userinfo-exhaust")
    output_format: str | None = Field(None, description="csv")


class SubmitBody(BaseModel):
    request: SubmitRequest


class Params(BaseModel):
    resmsgid: str
    msgid: str | None
    status: str = Field(description="successful or failed")
    err: str | None
    errmsg: str | None
    client_key: str | None


class Envelope(BaseModel):
    id: str
    ver: str
    ts: str
    params: Params
    responseCode: str = Field(description="OK, CLIENT_ERROR, FORBIDDEN, RESOURCE_NOT_FOUND or SERVER_ERROR")
    result: dict | None = Field(description="the job object (submit, read) or {count, jobs} (list)")


router = APIRouter(tags=["Sunbird exhaust request API (docs/sunbird.md)"])
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": Envelope},
    400: {"model": Envelope},
    403: {"model": Envelope},
}


async def call_headers(
    x_channel_id: str | None = Header(None, description="the caller's root organisation (required)"),
    x_authenticated_user_token: str | None = Header(
        None, description="the user's identity-provider token (the portal's server sends it)"
    ),
    authorization: str | None = Header(None, description="Bearer <token>: a script's own, when no user token is sent"),
    x_authenticated_userid: str | None = Header(None, description="the user id; must be the token's user when sent"),
) -> dict:
    """The headers that say who is calling, as `caller` takes them."""
    return {
        "channel": x_channel_id,
        "user_token": x_authenticated_user_token,
        "authorization": authorization,
        "asserted_user": x_authenticated_userid,
    }


@router.post(
    "/submit",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": SubmitBody.model_json_schema()}}}
    },
    responses=RESPONSES,
)
async def submit(request: Request, headers: dict = Depends(call_headers)) -> JSONResponse:
    """Request a report for a batch (a repeat while one is open answers that job)."""
    raw = await request.body()
    return await _run(
        "submit", headers, lambda s, user, claims, channel: _submit_request(s, user, claims, channel, raw)
    )


@router.get("/read/{tag}", responses=RESPONSES)
async def read(
    tag: str,
    requestId: str | None = Query(None),  # noqa: N803 - Sunbird's parameter name
    headers: dict = Depends(call_headers),
) -> JSONResponse:
    """One job of the batch, with a fresh download link when it is ready."""
    return await _run("read", headers, lambda s, user, claims, channel: _read_request(s, user, channel, tag, requestId))


@router.get("/list/{tag}", responses=RESPONSES)
async def list_jobs(
    tag: str,
    limit: str | None = Query(None, description=f"at most this many jobs, newest first (default {LIST_LIMIT})"),
    headers: dict = Depends(call_headers),
) -> JSONResponse:
    """The batch's jobs of the report types the caller may download, newest first."""
    return await _run("list", headers, lambda s, user, claims, channel: _list_requests(s, user, channel, tag, limit))


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False)
async def unsupported(request: Request, rest: str) -> JSONResponse:
    """Sunbird's other request calls (search, the other datasets' endpoints) are not served here."""
    message = (
        f"{request.method} {request.url.path} is not supported by this service: it answers "
        "POST .../submit, GET .../read/{tag}?requestId= and GET .../list/{tag}"
    )
    return error_response(api_id_for(request.url.path), Refused("RESOURCE_NOT_FOUND", message))
