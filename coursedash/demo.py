"""The main job on the embedded defaults: sample lake, sync, a few requests, one nightly run.

Quiet on the terminal: a line per step with its time, then a table. Spark's and
Airflow's own logs go to var/log/coursedash.log.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import subprocess
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path

from sqlalchemy import select

from coursedash import db, store
from coursedash.airflow_env import airflow_env
from coursedash.config import log_path, settings
from coursedash.db import Batch, Course, ReportRequest
from coursedash.storage import report_store
from coursedash.texttable import text_table

log = logging.getLogger(__name__)
DEMO_PASSWORD = "Demo-pass-2026"  # printed below on purpose: it is sample data
# `airflow dags test` marks each task's start and end with these.
_TASK_EVENT = re.compile(r"\[DAG TEST\] (starting|end task) task_id=(\w+)")


def _seconds(elapsed: float) -> str:
    elapsed = round(elapsed)
    return f"{elapsed} s" if elapsed < 60 else f"{elapsed // 60} min {elapsed % 60:02d} s"


@contextmanager
def _step(what: str, out=print):
    """`what… 14 s` on one line: the words first, the time when the step is done."""
    out(f"  {what}… ", end="", flush=True)
    started = time.monotonic()
    try:
        yield
    except BaseException:
        out("failed")  # ends the line before the error is told
        raise
    out(_seconds(time.monotonic() - started))


def _task_words(counts: dict[str, int]) -> dict[str, str]:
    n = sum(counts.values())
    kinds = ", ".join(f"{counts[kind]} {kind}" for kind in ("progress", "userinfo", "response") if counts.get(kind))
    return {
        "claim_requests": "claiming the night's requests",
        "sync_dashboard": "storing the dashboard's figures",
        "build_reports": f"building {n} report{'s' if n != 1 else ''} ({kinds}) and the dashboard's figures "
        "in one Spark application",
        "publish_reports": "zipping and publishing the reports",
        "notify_requesters": "telling requesters their reports are ready",
        "expire_reports": "expiring reports past their retention",
    }


def _airflow(args: list[str], logfile, on_line=None) -> int:
    """Run an Airflow command with its output into `logfile`; each line also to `on_line`."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    env = airflow_env()
    # The DAG imports this package: the same copy as this process, installed or not.
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    with subprocess.Popen(
        [airflow, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        assert process.stdout is not None  # stdout=PIPE
        for line in process.stdout:
            logfile.write(line)
            if on_line:
                on_line(line)
    return process.returncode


def task_progress(counts: dict[str, int], out=print, clock=time.monotonic):
    """A reader of `airflow dags test` output lines that prints `what… 14 s` per task."""
    words, started = _task_words(counts), {}

    def on_line(line: str) -> None:
        event = _TASK_EVENT.search(line)
        if not event:
            return
        kind, task = event.groups()
        if kind == "starting":
            started[task] = clock()
            out(f"  {words.get(task, task)}… ", end="", flush=True)
        elif task in started:
            out(_seconds(clock() - started.pop(task)))

    return on_line


def _nightly_run(run_date: dt.date, counts: dict[str, int], logfile, out=print) -> int:
    """`airflow dags test`, with one progress line per task."""
    args = ["dags", "test", "course_reports_nightly", run_date.isoformat()]
    return _airflow(args, logfile, task_progress(counts, out))


def _submit(s, user, course, batch, report_type, password=None, email=None) -> str | None:
    try:
        return store.submit(s, user, course, batch, report_type, password, email).request_id
    except store.OpenRequestExists as e:
        log.warning("%s", e.message)
        return e.extra.get("request_id")


def zip_is_encrypted(key: str) -> bool | None:
    """Whether a published zip is encrypted, read from the zip itself: bit 0 of its first header's flags."""
    try:
        with closing(report_store().open(key)) as f:
            head = f.read(8)
    except Exception:  # noqa: BLE001 - a missing or unreachable file only leaves it unknown
        return None
    if len(head) < 8 or head[:4] != b"PK\x03\x04":
        return None
    return bool(int.from_bytes(head[6:8], "little") & 1)


def _zip_column(r: ReportRequest) -> str:
    if r.status != "SUCCESS":
        return ""
    encrypted = zip_is_encrypted(r.object_key) if r.object_key else None
    if encrypted is None:
        return "?"
    return f"AES-256, password {DEMO_PASSWORD}" if encrypted else "plain, no password"


def _where(path: Path) -> str:
    """A path relative to here when it is below here: shorter to read and to paste."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def results(ids: list[str]) -> list[dict]:
    """One row per demo request: what it is, how it ended, its zip and password."""
    with db.session() as s:
        requests = s.scalars(select(ReportRequest).where(ReportRequest.request_id.in_(ids))).all()
    rows = []
    for r in sorted(requests, key=lambda r: ids.index(r.request_id)):
        where = Path(settings().reports_uri) / r.object_key if r.object_key else None
        rows.append(
            {
                "type": r.report_type,
                "requested by": r.requested_by,
                "status": r.status,
                "rows": r.row_count,
                "zip": _zip_column(r),
                "e-mail": r.email_notice or "",
                "file": _where(where) if where else (r.error or ""),
            }
        )
    return rows


def run(learners: int = 200, date: dt.date | str | None = None, out=print) -> None:
    from coursedash.lakegen import generate_lake
    from coursedash.sync import sync

    started = time.monotonic()
    run_date = dt.date.fromisoformat(date) if isinstance(date, str) else (date or dt.date.today())
    logs = log_path()
    logs.parent.mkdir(parents=True, exist_ok=True)
    out(f"Demo: {learners} learners, a nightly run for {run_date:%d/%m/%Y}. Full log: {_where(logs)}")
    with _step(f"generating a sample lake of {learners} learners", out):
        generate_lake(settings().lake_uri, learners=learners, today=run_date)
    with _step("refreshing the dashboard from the lake (Spark)", out):
        sync()
    with _step("submitting 4 report requests", out), db.session() as s:
        consent_course = s.scalars(
            select(Course).where(Course.user_consent_required.is_(True)).order_by(Course.course_id).limit(1)
        ).one()
        batch = s.scalars(
            select(Batch).where(Batch.course_id == consent_course.course_id).order_by(Batch.batch_id).limit(1)
        ).one()
        creator, mentor = consent_course.created_by, (batch.mentors or [None])[0]
        asked = [
            (creator, "progress", DEMO_PASSWORD),
            (creator, "userinfo", DEMO_PASSWORD),
            (mentor, "progress", None),
            (mentor, "response", None),
        ]
        # With COURSEDASH_SMTP_URL set (an SMTP sink, say), each requester is e-mailed when done.
        mail = settings().smtp_url is not None
        ids = [
            _submit(s, user, batch.course_id, batch.batch_id, kind, pw, f"{user}@example.org" if mail else None)
            for user, kind, pw in asked
        ]
    counts = {kind: sum(1 for _u, k, _p in asked if k == kind) for _u, kind, _p in asked}
    with open(logs, "a", encoding="utf-8") as logfile:
        with _step("preparing Airflow's database", out):
            if _airflow(["db", "migrate"], logfile) != 0:
                raise RuntimeError(f"airflow db migrate failed; see {logs}")
        failed = _nightly_run(run_date, counts, logfile, out)
    out()
    columns = ["type", "requested by", "status", "rows", "zip", *(["e-mail"] if mail else []), "file"]
    out(text_table(results([i for i in ids if i]), columns))
    out()
    if failed:
        out(f"The nightly run failed; see {_where(logs)}.")
    out(f"Done in {_seconds(time.monotonic() - started)}. Open an encrypted zip with: 7z x -p{DEMO_PASSWORD} FILE")
    if failed:
        sys.exit(1)
