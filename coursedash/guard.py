"""The API's outer guard: what is refused before the app sees a request, and what a crash looks like.

Pure ASGI, outside every route and dependency:
- an address (path or query) with a control character is 400: ids go to the database
  as they are, and PostgreSQL cannot even store a NUL;
- a request head over COURSEDASH_MAX_HEADER_BYTES is 431: the server stops reading a
  head that grows past it, but one that arrives whole in one read gets here;
- a body over COURSEDASH_MAX_BODY_BYTES is 413, by its Content-Length before a byte
  is read, or once the bytes streamed so far pass the limit; a body not sent within
  COURSEDASH_CLIENT_TIMEOUT_SECONDS is 408 (coursedash.server times the head);
- a request not answered within COURSEDASH_REQUEST_TIMEOUT_SECONDS is 503, and one
  whose client went away is cancelled: a burst of abandoned requests, still queued
  for a worker thread, is dropped instead of served to nobody;
- an unexpected error is logged with a correlation id and answered as docs/api.md's
  error JSON naming it, and the connection stays open for the client's next request;
- every answer gets the security headers (here rather than in a BaseHTTPMiddleware,
  which costs a task and two streams per request).
"""

from __future__ import annotations

import logging
import math
import uuid
from urllib.parse import unquote_plus

import anyio
from starlette.datastructures import MutableHeaders
from starlette.responses import JSONResponse

from coursedash import sunbird
from coursedash.config import settings
from coursedash.control_chars import has_control

log = logging.getLogger("coursedash.api")

SECURITY_HEADERS = {
    # The page loads nothing from anywhere else and runs no inline script.
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Download links carry a ticket in their query string: never hand it on.
    "Referrer-Policy": "no-referrer",
}


class _TooLarge(Exception):
    pass


class _ClientGone(Exception):
    pass


def error(scope, status: int, code: str, message: str, headers: dict | None = None, **extra) -> JSONResponse:
    """The API's error JSON; under the Sunbird facade's paths, its envelope instead."""
    if sunbird.is_facade_path(scope["path"]):
        return sunbird.refusal(scope["path"], status, message, headers)
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status, headers=headers)


async def _read_body(receive, limit: int) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        size += len(message.get("body", b""))
        if size > limit:
            raise _TooLarge
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def head_size(scope) -> int:
    """The bytes of a request's head as sent: request line and headers."""
    line = len(scope["method"]) + len(scope.get("raw_path") or scope["path"]) + len(scope.get("query_string", b"")) + 12
    return line + sum(len(name) + len(value) + 4 for name, value in scope["headers"]) + 2


def _refusal(scope, limit: int, head_limit: int) -> JSONResponse | None:
    if head_size(scope) > head_limit:
        return error(
            scope,
            431,
            "header_too_large",
            f"the request head is over the limit of {head_limit} bytes",
            {"Connection": "close"},
        )
    query = unquote_plus(scope.get("query_string", b"").decode("latin-1"))
    if has_control(scope["path"]) or has_control(query):
        return error(scope, 400, "bad_request", "the address contains a control character")
    length = dict(scope["headers"]).get(b"content-length")
    if length is not None:
        if not length.isdigit():
            return error(scope, 400, "bad_request", "Content-Length is not a number")
        if int(length) > limit:
            return _too_large(scope, limit)
    return None


def _too_large(scope, limit: int) -> JSONResponse:
    # The rest of the body is never read, so the connection cannot carry another request.
    return error(
        scope, 413, "too_large", f"the request body is over the limit of {limit} bytes", {"Connection": "close"}
    )


def _with_security_headers(scope, send):
    # API answers are never cached: a Sunbird answer carries download links of its own authority.
    api = scope["path"].startswith("/api/") or sunbird.is_facade_path(scope["path"])

    async def send_(message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                headers.setdefault(name, value)
            if api:
                headers.setdefault("Cache-Control", "no-store")
        await send(message)

    return send_


class Guard:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(scope, send)
        cfg = settings()
        refusal = _refusal(scope, cfg.max_body_bytes, cfg.max_header_bytes)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            with anyio.fail_after(cfg.client_timeout_seconds):
                body = await _read_body(receive, cfg.max_body_bytes)
        except _TooLarge:
            await _too_large(scope, cfg.max_body_bytes)(scope, receive, send)
            return
        except TimeoutError:  # a client trickling its body holds a connection for nothing
            await error(scope, 408, "timeout", "the request body was not sent in time", {"Connection": "close"})(
                scope, receive, send
            )
            return
        except _ClientGone:
            return

        correlation_id = uuid.uuid4().hex[:16]
        started = complete = False
        gone = anyio.Event()
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send_(message) -> None:
            nonlocal started, complete
            if message["type"] == "http.response.start":
                started = True
                deadline.deadline = math.inf  # the timeout is for the answer to begin, not for a long download
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                complete = True
            await send(message)

        crashed = None
        async with anyio.create_task_group() as watchers:

            async def watch() -> None:
                await receive()  # the body was read: what comes next is the disconnect
                gone.set()
                if not complete:
                    watchers.cancel_scope.cancel()

            watchers.start_soon(watch)
            with anyio.CancelScope(deadline=anyio.current_time() + cfg.request_timeout_seconds) as deadline:
                try:
                    await self.app(scope, replay, send_)
                except Exception as e:  # answered below; never dropping the connection
                    crashed = e
            watchers.cancel_scope.cancel()

        if crashed is not None:
            log.error("unexpected error, correlation id %s", correlation_id, exc_info=crashed)
        if gone.is_set() and not complete:
            return  # nobody to answer
        if crashed is not None:
            if not started:
                await error(
                    scope,
                    500,
                    "internal_error",
                    f"something went wrong on the server; try again later (reference {correlation_id})",
                    {"X-Correlation-ID": correlation_id},
                    correlation_id=correlation_id,
                )(scope, replay, send)
        elif deadline.cancelled_caught and not started:
            log.warning("%s %s not answered in %ss", scope["method"], scope["path"], cfg.request_timeout_seconds)
            await error(
                scope,
                503,
                "timeout",
                "the server is too busy to answer now; try again in a minute",
                {"Retry-After": "60"},
            )(scope, replay, send)
