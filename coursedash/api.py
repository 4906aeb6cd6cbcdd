"""The HTTP API of docs/api.md and the web dashboard, one FastAPI app (`coursedash serve`).

A thin caller: who may see, request and download what is decided in coursedash.access,
store and reports, the same code the CLI uses. Every refusal is the error JSON of
docs/api.md; FastAPI's own 422 for a bad body becomes 400, because 422 means "not requestable".
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio.to_thread
from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.datastructures import DefaultPlaceholder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from coursedash import ReportType, access, auth, db, passwords, reports, store, sunbird
from coursedash.config import settings
from coursedash.control_chars import has_control
from coursedash.guard import Guard

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web")
CHUNK = 64 * 1024


class RedactTickets(logging.Filter):
    """Keeps download tickets out of the access log (uvicorn logs the query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) and "ticket=" in a for a in record.args):
            record.args = tuple(
                re.sub(r"ticket=[^&\s]*", "ticket=[redacted]", a) if isinstance(a, str) else a for a in record.args
            )
        return True


logging.getLogger("uvicorn.access").addFilter(RedactTickets())


def _no_control(value: str) -> str:
    if has_control(value):
        raise ValueError("must not contain control characters")
    return value


Clean = Annotated[str, AfterValidator(_no_control)]


class ReportIn(BaseModel):
    """The body of POST /api/v1/reports."""

    model_config = ConfigDict(extra="forbid", strict=True)

    course_id: Clean = Field(min_length=1, max_length=200)
    batch_id: Clean = Field(min_length=1, max_length=200)
    report_type: ReportType
    password: Clean | None = Field(default=None, max_length=1024)


# The batch list's answer, for the OpenAPI document only: the endpoint returns plain dicts (see _Route).
class ReportTypeOut(BaseModel):
    report_type: ReportType
    name: str
    password_required: bool


class ProgressBands(BaseModel):
    """Learners by their Course Progress report's Progress; the four add up to enrolment_count."""

    not_started: int = Field(description="Progress 0")
    started: int = Field(description="Progress 1 to 49")
    past_half: int = Field(description="Progress 50 to 99")
    completed: int = Field(description="Progress 100")


class WeeklyEnrolment(BaseModel):
    week_start: dt.date = Field(description="the Monday (UTC) the week starts on")
    count: int = Field(description="learners of enrolment_count who enrolled that week; 0 for a week without any")


class BatchOut(BaseModel):
    """A batch the caller has a role on, with its figures as of `figures_as_of` (counts only, never a learner)."""

    batch_id: str
    course_id: str
    name: str | None
    start_date: dt.date | None
    end_date: dt.date | None = Field(description="null: open-ended")
    status: Literal["upcoming", "live", "expired"]
    enrolment_count: int | None = Field(description="active learners, one each: the rows of the progress report")
    completed_count: int | None = Field(description="of them, those with a completion date")
    progress_bands: ProgressBands | None
    certificates_issued: int | None = Field(description="learners with a certificate (Certificate Status 'Issued')")
    weekly_enrolments: list[WeeklyEnrolment] | None = Field(
        description="every week from the first enrolment's to the last one's, oldest first; "
        "a learner without an enrolment date is in no week"
    )
    average_total_score: float | None = Field(
        description="mean of the progress report's non-empty Total Score cells, two decimals; null when none"
    )
    figures_as_of: dt.datetime | None = Field(
        description="when the figures were computed (ISO 8601, UTC); every figure is null until they first are"
    )
    report_types: list[ReportTypeOut] = Field(description="the report types the caller may request for it now")


@asynccontextmanager
async def _lifespan(_app: FastAPI):
    db.migrate()  # cheap when the database is up to date
    # Sync endpoints run on these threads; the database pool has one connection for each.
    anyio.to_thread.current_default_thread_limiter().total_tokens = settings().api_threads
    yield


app = FastAPI(
    title="Course Dashboard",
    version="1",
    lifespan=_lifespan,
    # The interactive docs load scripts from a CDN; the schema alone is served.
    docs_url=None,
    redoc_url=None,
    openapi_url="/api/v1/openapi.json",
)


class _Route(APIRoute):
    """A route whose answer is serialised on the event loop, not on a second worker thread.

    FastAPI validates a sync endpoint's return value on a worker thread while the
    request's session still holds its connection: under load, requests holding
    connections queue for threads behind requests holding threads that wait for
    connections, and the pool runs dry. The answers are plain dicts: nothing to validate.
    """

    def __init__(self, path: str, endpoint, **kwargs):
        if isinstance(kwargs.get("response_model"), DefaultPlaceholder):
            kwargs["response_model"] = None
        super().__init__(path, endpoint, **kwargs)


app.router.route_class = _Route


# --- errors -------------------------------------------------------------------------


def _error(status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    body: dict = {"error": {"code": code, "message": message, **extra}}
    if "request_id" in extra:
        body["request_id"] = extra["request_id"]  # a 409 names the open request at the top too
    return JSONResponse(body, status_code=status, headers=headers)


@app.exception_handler(store.RequestError)
async def _refused(_request: Request, e: store.RequestError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
    if isinstance(e, store.TooManyRequests):
        headers = {"Retry-After": str(e.retry_after)}
    return _error(e.status, e.code, e.message, headers, **e.extra)


def _describe(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic errors as one sentence; never the input values (a password could be one)."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)]
        where = ".".join(loc)
        parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        if loc[:1] == ["password"]:
            parts[-1] += f" (the password must be {passwords.POLICY})"
    return "; ".join(parts) or "the request is not valid"


@app.exception_handler(RequestValidationError)
async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
    if sunbird.is_facade_path(request.url.path):
        return sunbird.refusal(request.url.path, 400, _describe(list(e.errors())))
    return _error(400, "bad_request", _describe(list(e.errors())))


@app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
    codes = {404: "not_found", 405: "method_not_allowed"}
    message = "no such page or endpoint" if e.status_code == 404 else str(e.detail)
    if sunbird.is_facade_path(request.url.path):
        return sunbird.refusal(request.url.path, e.status_code, message, getattr(e, "headers", None))
    return _error(e.status_code, codes.get(e.status_code, "http_error"), message, getattr(e, "headers", None))


app.add_middleware(Guard)  # it also sets the security headers of every answer


# --- dependencies -------------------------------------------------------------------


# Dependencies are async so that they never wait for a worker thread: a session closed
# on a worker thread could hold its connection while queued behind requests waiting for one.
async def current_user(authorization: str | None = Header(default=None)) -> str:
    return auth.user_from_header(authorization)


async def current_claims(authorization: str | None = Header(default=None)) -> dict:
    """All the token's claims: a submit keeps its `email` for the report-ready notice."""
    return auth.claims_from_header(authorization)


async def session():
    s = db.session()
    try:
        yield s
    finally:
        s.close()


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def _client(request: Request) -> str | None:
    return request.client.host if request.client else None


# --- JSON shapes --------------------------------------------------------------------


def _date(value) -> str | None:
    return value.isoformat() if value is not None else None


def course_json(c) -> dict:
    return {"course_id": c.course_id, "name": c.name}


def batch_json(user_id: str, course, b, today) -> dict:
    return {
        "batch_id": b.batch_id,
        "course_id": b.course_id,
        "name": b.name,
        "start_date": _date(b.start_date),
        "end_date": _date(b.end_date),
        "status": reports.batch_status(b, today),
        **reports.batch_figures(b),
        # What the page offers: the types this caller may request for this batch now.
        "report_types": [
            {"report_type": t, "name": reports.REPORT_NAMES[t], "password_required": access.PASSWORD_REQUIRED[t]}
            for t in reports.requestable_types(user_id, course, b)
        ],
    }


# --- the API ------------------------------------------------------------------------


@app.get("/api/v1/courses")
def list_courses(
    user: str = Depends(current_user),
    q: str = Query("", max_length=200, description="part of a course id or name, any case"),
    s: Session = Depends(session),
) -> list[dict]:
    return [course_json(c) for c in reports.visible_courses(s, user, q)]


@app.get(
    "/api/v1/courses/{course_id}/batches",
    responses={200: {"model": list[BatchOut], "description": "the caller's batches of the course, with their figures"}},
)
def list_batches(course_id: str, user: str = Depends(current_user), s: Session = Depends(session)) -> list[dict]:
    course, batches = reports.visible_batches(s, user, course_id)
    today = db.utcnow().date()
    return [batch_json(user, course, b, today) for b in batches]


@app.get("/api/v1/courses/{course_id}/batches/{batch_id}/reports")
def list_reports(
    course_id: str, batch_id: str, user: str = Depends(current_user), s: Session = Depends(session)
) -> list[dict]:
    return [reports.as_json(r) for r in reports.downloadable(s, user, course_id, batch_id)]


@app.post(
    "/api/v1/reports",
    status_code=201,
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": ReportIn.model_json_schema()}}}
    },
)
def create_report(
    claims: dict = Depends(current_claims), raw: bytes = Depends(_raw_body), s: Session = Depends(session)
) -> JSONResponse:
    # Parsed here, after authentication, so that a caller without a token learns nothing.
    try:
        body = ReportIn.model_validate_json(raw or b"null")
    except ValidationError as e:
        raise store.BadRequest(_describe(e.errors(include_input=False))) from None
    request = store.submit(
        s, claims["sub"], body.course_id, body.batch_id, body.report_type, body.password, auth.notice_email(claims)
    )
    return JSONResponse(
        reports.as_json(request), status_code=201, headers={"Location": f"/api/v1/reports/{request.request_id}"}
    )


@app.get("/api/v1/reports/{request_id}")
def show_report(request_id: str, user: str = Depends(current_user), s: Session = Depends(session)) -> dict:
    return reports.as_json(reports.visible_request(s, user, request_id))


@app.delete("/api/v1/reports/{request_id}", status_code=204)
def cancel_report(request_id: str, user: str = Depends(current_user), s: Session = Depends(session)) -> Response:
    store.cancel(s, user, request_id)
    return Response(status_code=204)


@app.post("/api/v1/reports/{request_id}/download-link")
def download_link(request_id: str, user: str = Depends(current_user), s: Session = Depends(session)) -> dict:
    """A one-minute link to this report's download, for a browser to follow without headers."""
    reports.ready_request(s, user, request_id)
    ticket, expires = auth.mint_download_ticket(user, request_id)
    return {
        "url": f"/api/v1/reports/{quote(request_id, safe='')}/download?ticket={ticket}",
        "expires_at": reports._iso(expires),
    }


def _content_disposition(name: str) -> str:
    plain = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(name, safe='')}"


@app.get("/api/v1/reports/{request_id}/download")
def download(
    request_id: str,
    request: Request,
    ticket: str | None = Query(None, max_length=4096, description="from POST .../download-link, instead of a header"),
    authorization: str | None = Header(default=None),
    s: Session = Depends(session),
):
    user = auth.verify_download_ticket(ticket, request_id) if ticket else auth.user_from_header(authorization)
    # Access is checked now, not when the link was made; the download is audited once
    # the file is found.
    _report, name, url, stream = reports.open_download(s, user, request_id, _client(request), signed=True)
    if url:
        return RedirectResponse(url, status_code=307)

    def chunks():
        with stream:
            while data := stream.read(CHUNK):
                yield data

    return StreamingResponse(
        chunks(), media_type="application/zip", headers={"Content-Disposition": _content_disposition(name)}
    )


# Sunbird's exhaust request API over the same requests, at the three prefixes its clients use.
for _prefix in sunbird.PREFIXES:
    app.include_router(sunbird.router, prefix=_prefix)


# --- the page -----------------------------------------------------------------------


@app.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html; charset=utf-8")


app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")
