"""Real receivers for report-ready notices, on loopback: an SMTP server and an HTTP endpoint."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from contextlib import contextmanager
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SMTP_USER, SMTP_PASSWORD = "notifier", "smtp-Pass:w0rd@x"


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (cert, key); trusted by a client through SSL_CERT_FILE."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class Mailbox:
    """What an aiosmtpd server received: one entry per accepted message."""

    def __init__(self, refuse: tuple[str, ...] = ()):
        self.messages: list[dict] = []
        self.recipients_tried: list[str] = []
        self.refuse = refuse

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.recipients_tried.append(address)
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            {
                "to": list(envelope.rcpt_tos),
                "from": envelope.mail_from,
                "raw": envelope.content,
                "message": message_from_bytes(envelope.content, policy=policy.default),
                "tls": session.ssl is not None,
                "authenticated": bool(session.authenticated),
            }
        )
        return "250 OK"


def _authenticator(server, session, envelope, mechanism, auth_data):
    from aiosmtpd.smtp import AuthResult

    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok)


@contextmanager
def smtp_server(
    port: int,
    tls_folder: Path | None = None,
    refuse: tuple[str, ...] = (),
    implicit_tls: bool = False,
    smtputf8: bool = False,
):
    """An aiosmtpd server; with `tls_folder`, STARTTLS (or TLS from the start) and a login are required.

    Without `smtputf8` it does not offer SMTPUTF8, as many servers do not.
    """
    from aiosmtpd.controller import Controller

    mailbox = Mailbox(refuse)
    kwargs = {"enable_SMTPUTF8": smtputf8}
    if tls_folder is not None:
        cert, key = self_signed_cert(tls_folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs = dict(authenticator=_authenticator, auth_required=True)
        if implicit_tls:  # the port speaks only TLS, which aiosmtpd's own AUTH check does not see
            kwargs.update(ssl_context=context, auth_require_tls=False)
        else:
            kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


class Receiver:
    """A webhook endpoint: answers each POST with the next scripted status (then 200)."""

    def __init__(self, secret: str, script: list):
        self.secret = secret
        self.script = list(script)
        self.attempts: list[dict] = []  # every POST that arrived
        self.retry_after = None  # the Retry-After of the answer being sent
        self.accepted: dict[str, dict] = {}  # by idempotency key: what a real receiver would act on

    def handle(self, headers, body: bytes) -> int:
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        signed = hmac.compare_digest(headers.get("X-Coursedash-Signature", ""), expected)
        key = headers.get("Idempotency-Key")
        self.attempts.append({"key": key, "body": body, "signed": signed})
        answer = self.script.pop(0) if self.script else 200
        if answer == "slow":
            time.sleep(1.0)
            answer = 200
        if isinstance(answer, tuple):  # (status, Retry-After)
            answer, self.retry_after = answer
        else:
            self.retry_after = None
        if not signed:
            return 401
        if answer == 200:
            self.accepted.setdefault(key, json.loads(body))
        return answer


@contextmanager
def http_receiver(secret: str, script: list = ()):
    receiver = Receiver(secret, list(script))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = receiver.handle(self.headers, body)
            try:
                self.send_response(status)
                if receiver.retry_after is not None:
                    self.send_header("Retry-After", str(receiver.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()
            except OSError:  # the client gave up waiting (a timeout test)
                pass

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/coursedash"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


class Trickler:
    """What a trickling server saw: connections opened, and those the client closed."""

    def __init__(self, port: int):
        self.port = port
        self.opened = 0
        self.closed_by_client = 0


@contextmanager
def trickling_server(answer: bytes, every: float = 0.2):
    """A stalled server on loopback: it answers every connection `answer` (repeated), one byte every `every` seconds.

    Each byte comes well within any socket timeout, so only a deadline on the whole
    exchange ends it: a mail server's greeting `220-...` that never finishes, or a
    webhook's endless headers.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    trickler = Trickler(listener.getsockname()[1])
    stop = threading.Event()
    threads = []

    def serve(conn):
        with conn:
            while not stop.is_set():
                for byte in answer:
                    if stop.wait(every):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:  # the client hung up
                        trickler.closed_by_client += 1
                        return

    def accept():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            trickler.opened += 1
            thread = threading.Thread(target=serve, args=(conn,), daemon=True)
            thread.start()
            threads.append(thread)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield trickler
    finally:
        stop.set()
        acceptor.join(5)
        for thread in threads:
            thread.join(5)
        listener.close()
