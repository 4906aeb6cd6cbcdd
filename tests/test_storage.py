"""Both report stores against the real thing: a folder, and an S3-compatible server."""

import base64
import hashlib
import http.client
import os
import threading
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from coursedash.storage import ChecksumMismatch, LocalStore, report_store


@pytest.fixture
def zip_file(tmp_path):
    path = tmp_path / "r.zip"
    path.write_bytes(b"PK\x05\x06" + bytes(18))
    return path


def test_local_store_round_trip(tmp_path, zip_file):
    store = LocalStore(str(tmp_path / "reports"))
    store.put(zip_file, "c1/b1/progress/r1.zip")
    assert store.exists("c1/b1/progress/r1.zip")
    with store.open("c1/b1/progress/r1.zip") as f:
        assert f.read() == zip_file.read_bytes()
    assert [p.name for p in (tmp_path / "reports" / "c1/b1/progress").iterdir()] == ["r1.zip"]  # no temp left
    assert store.signed_url("c1/b1/progress/r1.zip", "x.zip") is None
    store.delete("c1/b1/progress/r1.zip")
    assert not store.exists("c1/b1/progress/r1.zip")


def test_s3_store_round_trip_and_signed_url(s3_reports, zip_file):
    client, bucket, prefix = s3_reports
    store = report_store()
    store.put(zip_file, "c1/b1/progress/r1.zip")
    assert store.exists("c1/b1/progress/r1.zip") and not store.exists("nope.zip")
    head = client.head_object(Bucket=bucket, Key=f"{prefix}/c1/b1/progress/r1.zip")
    assert head["ContentType"] == "application/zip"
    assert store.open("c1/b1/progress/r1.zip").read() == zip_file.read_bytes()
    url = store.signed_url("c1/b1/progress/r1.zip", "b1_progress_20261128.zip", seconds=60)
    with urllib.request.urlopen(url) as response:
        assert response.read() == zip_file.read_bytes()
        assert "b1_progress_20261128.zip" in response.headers["Content-Disposition"]
    store.delete("c1/b1/progress/r1.zip")
    assert not store.exists("c1/b1/progress/r1.zip")


@contextmanager
def corrupting_proxy(upstream: str):
    """An HTTP proxy in front of the S3 server that flips the last byte of every object it serves (GET)."""
    target = urlparse(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
            connection.request(self.command, self.path, body=body, headers=dict(self.headers.items()))
            response = connection.getresponse()
            data = response.read()
            if self.command == "GET" and response.status == 200 and data:
                data = data[:-1] + bytes([data[-1] ^ 1])
            self.send_response(response.status)
            for name, value in response.getheaders():
                if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            connection.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def test_s3_store_keeps_a_sha256_per_object_and_a_corrupted_read_fails(s3_reports, tmp_path, monkeypatch):
    client, bucket, prefix = s3_reports
    report = tmp_path / "report.zip"
    report.write_bytes(bytes(range(256)) * 300)  # 75 KiB: more than one read of the API's chunks
    report_store().put(report, "c1/b1/progress/r1.zip")
    # The server stores the whole file's SHA-256 and gives it back ...
    head = client.head_object(Bucket=bucket, Key=f"{prefix}/c1/b1/progress/r1.zip", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(report.read_bytes()).digest()).decode()
    with report_store().open("c1/b1/progress/r1.zip") as f:
        assert f.read() == report.read_bytes()

    # ... and bytes that do not match it, read as the API and the CLI read (in chunks), fail the read.
    with corrupting_proxy(os.environ["COURSEDASH_S3_ENDPOINT_URL"]) as proxy:
        monkeypatch.setenv("COURSEDASH_S3_ENDPOINT_URL", proxy)
        with (
            report_store().open("c1/b1/progress/r1.zip") as f,
            pytest.raises(ChecksumMismatch, match="report c1/b1/progress/r1.zip is corrupt"),
        ):
            while f.read(64 * 1024):
                pass
