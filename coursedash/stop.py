"""A nightly task told to stop stops: SIGTERM ends the work, cleaning up on the way.

Airflow 3 answers SIGTERM (a run stopped or timed out, a task marked failed) by calling
the operator's `on_kill` and returning: for a Python task that is nothing, so a task
blocked on a slow server or a long loop would carry on until Airflow kills it outright,
and a kill runs no `finally`. Inside `stops_on_sigterm()` the signal raises `Stopped`
in the task's main thread instead (after Airflow's own handler has run): blocking calls
are interrupted, claims are released and temporary files removed by the usual `finally`
and `with` blocks, and the task fails promptly.
"""

from __future__ import annotations

import logging
import signal
import threading
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Stopped(BaseException):
    """The task was told to stop. A BaseException, so that no `except Exception` swallows it."""


@contextmanager
def stops_on_sigterm():
    """Within this block, SIGTERM raises `Stopped` (in the main thread; elsewhere it changes nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        if callable(previous):
            previous(signum, frame)  # Airflow's: the operator's on_kill
        log.warning("told to stop (SIGTERM): stopping")
        raise Stopped("the task was told to stop (SIGTERM)")

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
