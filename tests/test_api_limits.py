"""The API under load and hostile input, through the real server (`coursedash serve`) on loopback."""

import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from urllib.parse import quote

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from coursedash import db
from coursedash.api import app
from coursedash.auth import mint_token
from coursedash.db import ReportRequest
from tests.conftest import ROOT, SLOW, _free_port
from tests.handlake import CREATOR, MENTOR
from tests.test_api import SECRET, as_, load_catalogue

CONTROLS = ["\x00", "\x01", "\x1b", "\x7f", "\x85"]


@contextmanager
def real_server(log_path, *args, **env):
    """`coursedash serve` in its own process on a free loopback port; yields its base URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # Links the server makes (e-mails, Sunbird's download URLs) point at itself.
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "COURSEDASH_PUBLIC_URL": url, **env}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "coursedash.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SLOW
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            try:
                if httpx.get(url + "/", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(20)


@pytest.fixture
def catalogue(app_env, monkeypatch):
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", SECRET)
    load_catalogue()
    return app_env


def error_of(response, status, code):
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    return response.json()["error"]["message"]


# --- load ----------------------------------------------------------------------------


async def _burst(url: str, paths: list[str], clients: int, per_client: int, give_up_after: float | None):
    """`clients` connections at once, each asking `per_client` paths in turn; (status, seconds) per answer."""
    results = []
    # Like a browser, an idle connection is not reused once the server may be closing it
    # (uvicorn's keep-alive is 5 s).
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients, keepalive_expiry=1)
    async with httpx.AsyncClient(
        base_url=url, headers=as_(CREATOR), timeout=give_up_after or SLOW, limits=limits
    ) as client:

        async def one(i: int):
            for j in range(per_client):
                started = time.monotonic()
                try:
                    response = await client.get(paths[(i + j) % len(paths)])
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    if give_up_after is not None:
                        return  # this client went away (its connection torn down mid-way)
                    if j == 0:
                        raise
                    # A kept-alive connection the server closed as idle while this busy client
                    # had not yet sent on it: a browser sends such a GET again, once.
                    response = await client.get(paths[(i + j) % len(paths)])
                except (httpx.TimeoutException, httpx.TransportError):
                    if give_up_after is None:
                        raise
                    return
                results.append((response.status_code, time.monotonic() - started))

        await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(clients))), timeout=240)
    return results


def test_200_concurrent_readers_get_answers_and_no_5xx(catalogue, tmp_path):
    with db.session() as s:
        for i in range(10):
            s.add(
                ReportRequest(
                    request_id=f"r{i}",
                    course_id="c1",
                    batch_id="b1",
                    report_type="progress",
                    requested_by=CREATOR,
                    status="SUCCESS",
                    submitted_at=db.utcnow(),
                    attempts=1,
                )
            )
        s.commit()
    paths = [
        "/api/v1/courses",
        "/api/v1/courses?q=maths",
        "/api/v1/courses/c1/batches",
        "/api/v1/courses/c1/batches/b1/reports",
        "/api/v1/reports/r3",
        "/api/v1/reports/r7",
    ]
    with real_server(tmp_path / "server.log") as url:
        # First a burst of clients that give up almost at once: what they asked must not
        # still be worked on when the next ones come.
        asyncio.run(_burst(url, paths, clients=200, per_client=1, give_up_after=0.05))
        results = asyncio.run(_burst(url, paths, clients=200, per_client=2, give_up_after=None))
        started = time.monotonic()
        assert httpx.get(url + "/api/v1/courses", headers=as_(CREATOR), timeout=30).status_code == 200
        after = time.monotonic() - started
    statuses = sorted({status for status, _ in results})
    latencies = sorted(seconds for _, seconds in results)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"{len(results)} answers, p50 {latencies[len(latencies) // 2]:.2f}s, p99 {p99:.2f}s, after {after:.2f}s")
    assert len(results) == 400 and statuses == [200]
    # Before the fix a third of them were 500s or timed out. Generous for a 2-core machine
    # shared with the suite's Spark nights: the slowest one measured reached a p99 of 17 s.
    assert p99 < 40 and after < 10


@pytest.mark.parametrize("app_env", ["postgresql"], indirect=True)
def test_several_workers_serve_one_port(catalogue, tmp_path):
    log_path = tmp_path / "server.log"

    def workers_started() -> int:
        return len(set(re.findall(r"Started server process \[(\d+)\]", log_path.read_text())))

    with real_server(log_path, "--workers", "2") as url:
        deadline = time.monotonic() + SLOW  # the first worker answers while a busy machine starts the second
        while workers_started() < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        results = asyncio.run(_burst(url, ["/api/v1/courses"], clients=20, per_client=2, give_up_after=None))
    assert sorted({status for status, _ in results}) == [200] and len(results) == 40
    assert workers_started() == 2


# --- a request waiting too long, and one whose client left ------------------------------


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_a_request_not_answered_in_time_is_503_and_one_whose_client_left_is_dropped(catalogue, tmp_path):
    log_path = tmp_path / "server.log"
    body = {"course_id": "c1", "batch_id": "b1", "report_type": "progress"}
    answers = {}

    def ask(name, method, path, timeout=30, **kw):
        answers[name] = httpx.request(method, url + path, headers=as_(MENTOR), timeout=timeout, **kw)

    with real_server(log_path, COURSEDASH_API_THREADS="1", COURSEDASH_REQUEST_TIMEOUT_SECONDS="2") as url:
        # Another writer holds the database: a submit waits for it on the server's one thread.
        lock = sqlite3.connect(str(catalogue / "coursedash.db"), isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        writer = threading.Thread(target=ask, args=("writer", "POST", "/api/v1/reports"), kwargs={"json": body})
        writer.start()
        time.sleep(1)  # the submit has the thread
        ask("queued", "GET", "/api/v1/courses?q=timed-out")  # waits for the thread, then gives up
        with pytest.raises(httpx.TimeoutException):  # a client that leaves while queued
            ask("gone", "GET", "/api/v1/courses?q=went-away", timeout=0.5)
        later = threading.Thread(target=ask, args=("later", "GET", "/api/v1/courses?q=came-later"))
        later.start()
        time.sleep(0.5)
        lock.execute("ROLLBACK")
        writer.join(30)
        later.join(30)
        # The submit was done when its answer was given up on: asking again names it.
        again = httpx.post(url + "/api/v1/reports", json=body, headers=as_(MENTOR), timeout=30)
    assert "too busy" in error_of(answers["queued"], 503, "timeout")
    # The submit's thread cannot be interrupted: it finishes, answered 201 or, when that
    # came after its deadline, 503. Either way it was stored once, and asking again names it.
    assert answers["writer"].status_code in (201, 503)
    assert answers["later"].status_code == 200
    with db.session() as s:
        [stored] = s.scalars(select(ReportRequest)).all()
    assert error_of(again, 409, "open_request_exists") and again.json()["request_id"] == stored.request_id
    log = log_path.read_text()
    assert "q=came-later" in log and "q=timed-out" in log and "q=went-away" not in log


# --- hostile input -----------------------------------------------------------------------


def test_control_characters_in_ids_queries_and_tokens_are_400_before_the_database(catalogue):
    client = TestClient(app)
    good = {"course_id": "c1", "batch_id": "b1", "report_type": "progress"}
    for c in CONTROLS:
        e = quote(c)  # as a client must send it
        for path in (
            f"/api/v1/courses/c1{e}/batches",
            f"/api/v1/courses/c1/batches/b{e}1/reports",
            f"/api/v1/reports/r{e}1",
            f"/api/v1/reports/r{e}1/download",
            f"/api/v1/courses?q=ma{e}ths",
        ):
            assert "control character" in error_of(client.get(path, headers=as_(CREATOR)), 400, "bad_request"), path
        for field in ("course_id", "batch_id", "password"):
            response = client.post("/api/v1/reports", json={**good, field: f"Abc{c}12345"}, headers=as_(CREATOR))
            assert "control characters" in error_of(response, 400, "bad_request")
        token = jwt.encode({"sub": f"{CREATOR}{c}", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
        response = client.get("/api/v1/courses", headers={"Authorization": f"Bearer {token}"})
        assert "control character" in error_of(response, 400, "bad_request")
    with db.session() as s:
        assert s.scalars(select(ReportRequest)).all() == []
    assert client.get("/api/v1/courses", headers=as_(CREATOR)).status_code == 200


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_bodies_over_the_limit_are_413_before_being_read_and_big_headers_are_refused(catalogue, tmp_path):
    with real_server(tmp_path / "server.log", COURSEDASH_MAX_BODY_BYTES="4096") as url:
        port = int(url.rsplit(":", 1)[1])
        head = (
            f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {mint_token(CREATOR)}\r\n"
            "Content-Type: application/json\r\n"
        )

        def answer(sock, reply=b"") -> bytes:
            sock.settimeout(20)
            while chunk := sock.recv(65536):  # the server closes after a 413
                reply += chunk
            return reply

        # Announced: refused at once, while not one byte of the 500 MB was sent.
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall((head + f"Content-Length: {500 * 1024 * 1024}\r\n\r\n").encode())
            reply = answer(sock)
        assert reply.startswith(b"HTTP/1.1 413") and b'"too_large"' in reply

        # Streamed without a length: refused once the bytes pass the limit, long before the end.
        sent = 0
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall((head + "Transfer-Encoding: chunked\r\n\r\n").encode())
            sock.settimeout(0.2)
            reply = b""
            while sent < 50 * 1024 * 1024 and not reply:
                try:
                    sock.sendall(b"400\r\n" + b"x" * 1024 + b"\r\n")
                    sent += 1024
                    reply = sock.recv(65536)
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    break
            reply = answer(sock, reply)
        assert reply.startswith(b"HTTP/1.1 413") and b'"too_large"' in reply and sent < 1024 * 1024

        # Under the limit, the same request is fine.
        with httpx.Client(base_url=url, headers=as_(CREATOR)) as client:
            body = {"course_id": "c1", "batch_id": "b1", "report_type": "progress"}
            assert client.post("/api/v1/reports", json=body).status_code == 201
            # A header of a megabyte is refused by the server itself; a normal one is not.
            assert client.get("/api/v1/courses", headers={"X-Big": "y" * (1024 * 1024)}).status_code == 400
            assert client.get("/api/v1/courses", headers={"X-Fine": "y" * 4000}).status_code == 200


def test_a_500_is_the_error_json_with_a_logged_correlation_id_and_the_connection_lives_on(catalogue, tmp_path):
    log_path = tmp_path / "server.log"
    with real_server(log_path) as url, httpx.Client(base_url=url, headers=as_(CREATOR)) as client:
        assert client.get("/api/v1/courses/c1/batches").status_code == 200
        with db.engine().connect() as c:  # the database loses a table under the running server
            c.execute(text("DROP TABLE batches"))
            c.commit()
        crashed = client.get("/api/v1/courses/c1/batches")
        message = error_of(crashed, 500, "internal_error")
        correlation_id = crashed.json()["error"]["correlation_id"]
        assert correlation_id in message and crashed.headers["x-correlation-id"] == correlation_id
        assert crashed.headers["cache-control"] == "no-store"
        # The same connection serves the next request.
        page = client.get("/")
        assert page.status_code == 200
        assert crashed.extensions["network_stream"] is page.extensions["network_stream"]
    log = log_path.read_text()
    assert f"unexpected error, correlation id {correlation_id}" in log and "Traceback" in log


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)  # no database involved: the server's own limits
def test_a_big_head_in_one_write_is_refused_and_a_slow_client_is_cut_off(catalogue, tmp_path):
    log_path = tmp_path / "server.log"
    with real_server(log_path, COURSEDASH_CLIENT_TIMEOUT_SECONDS="1.5") as url:
        port = int(url.rsplit(":", 1)[1])
        token = mint_token(CREATOR)

        def reply_to(*pieces: bytes, every: float = 0.0, wait: float = 10) -> tuple[bytes, float]:
            """Send the pieces (`every` seconds apart), then read until the server closes; (reply, seconds)."""
            started = time.monotonic()
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.settimeout(wait)
                try:
                    for piece in pieces:
                        sock.sendall(piece)
                        time.sleep(every)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # cut off while still sending
                reply = b""
                try:
                    while chunk := sock.recv(65536):
                        reply += chunk
                except (TimeoutError, ConnectionResetError):
                    pass
            return reply, time.monotonic() - started

        # 64 to 100 KB of head in one write: over the 32 KB limit, however it arrives.
        for size in (64 * 1024, 100 * 1024):
            head = (
                f"GET /api/v1/courses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                f"X-Big: {'y' * size}\r\n\r\n"
            ).encode()
            reply, _ = reply_to(head)
            assert reply.split(b" ", 2)[1] in (b"400", b"431"), reply[:200]

        # A head sent a byte at a time, a body that never finishes, a connection that says nothing
        # (at once): each is answered 408 and closed once the client's time is up.
        start = f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n".encode()
        trickled_head = [start] + [bytes([b]) for b in b"X-Slow: yes\r\nX-Slower: still coming\r\n"]
        body_head = start + b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        slow = {"head": trickled_head, "body": [body_head] + [b"{"] * 40, "nothing": []}
        with ThreadPoolExecutor(len(slow)) as pool:
            replies = dict(
                zip(slow, pool.map(lambda pieces: reply_to(*pieces, every=0.25), slow.values()), strict=True)
            )
        for name, (reply, seconds) in replies.items():
            assert reply.startswith(b"HTTP/1.1 408") and b'"timeout"' in reply, (name, reply[:200])
            assert seconds < 8, name
        assert httpx.get(url + "/api/v1/courses", headers=as_(CREATOR), timeout=10).status_code == 200
    with db.session() as s:
        assert s.scalars(select(ReportRequest)).all() == []
