"""`coursedash serve`: uvicorn with the limits the API relies on.

h11 rather than httptools, for its cap on a request's head: a 50 MB header is refused
(400) after COURSEDASH_MAX_HEADER_BYTES instead of being held in memory (a head that
arrives whole in one read escapes that cap; coursedash.guard refuses it, 431). And a
client that is slow to send its head, or sends nothing, is cut off after
COURSEDASH_CLIENT_TIMEOUT_SECONDS (408): uvicorn times out only an idle kept-alive
connection, so a client sending a byte now and then would hold one for ever.
"""

from __future__ import annotations

import copy
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from coursedash.config import settings

_TOO_SLOW = json.dumps({"error": {"code": "timeout", "message": "the request was not sent in time"}}).encode()


class TimedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with a deadline for each request's head from its first byte (or the connection)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._head_seconds = settings().client_timeout_seconds
        self._head_timer = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm()  # a head begun and not finished (the timer runs from its first byte)
        else:
            self._disarm()  # the head is in: the body's deadline is the guard's

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.logger.warning("a client took over %gs to send its request head; closed", self._head_seconds)
            self.transport.write(
                b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                + f"content-length: {len(_TOO_SLOW)}\r\n\r\n".encode()
                + _TOO_SLOW
            )
            self.transport.close()


def log_config() -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    # The app's own lines (errors with their correlation id) beside uvicorn's.
    config["loggers"]["coursedash"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


def serve(host: str, port: int, workers: int = 1) -> None:
    import uvicorn

    uvicorn.run(
        "coursedash.api:app",
        host=host,
        port=port,
        workers=workers,
        http=TimedH11Protocol,
        h11_max_incomplete_event_size=settings().max_header_bytes,
        log_config=log_config(),
        log_level="info",
    )
