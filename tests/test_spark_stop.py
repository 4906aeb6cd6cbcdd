"""A stopped task stops its Spark application whole: no spark-submit JVM or Python driver survives."""

import contextlib
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from coursedash import db, nightly, store
from coursedash.db import Batch, Course, utcnow
from coursedash.manifest import FIGURES_KNOWN_FILE
from coursedash_airflow.operators import BuildReportsOperator
from tests import handlake
from tests.conftest import ROOT
from tests.lakefixtures import write_lake


def running_application(root: psutil.Process, script: str, before: set[int] = frozenset()) -> list[psutil.Process]:
    """spark-submit's JVM and the Python driver of `script` under `root`, once both run.

    `before`: pids already under `root` that are not the application (the test
    process's own SparkSession JVM, when an earlier test started one).
    """
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        family = [p for p in root.children(recursive=True) if p.pid not in before]
        jvms = [p for p in family if _cmdline(p).count("org.apache.spark.deploy.SparkSubmit") and _is_java(p)]
        drivers = [p for p in family if script in _cmdline(p) and "python" in _name(p)]
        if jvms and drivers:
            return [*jvms, *drivers, *(c for j in jvms for c in j.children(recursive=True))]
        time.sleep(0.2)
    raise AssertionError(f"{script} did not start")


def _cmdline(p) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:
        return ""


def _name(p) -> str:
    try:
        return p.name()
    except psutil.Error:
        return ""


def _is_java(p) -> bool:
    return _name(p) == "java" and "org.apache.spark.launcher.Main" not in _cmdline(p)


def assert_all_gone(processes: list[psutil.Process], seconds: float = 30) -> None:
    def alive(p):
        try:
            return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + seconds
    while any(alive(p) for p in processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [(p.pid, _cmdline(p)[:120]) for p in processes if alive(p)] == []


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_on_kill_stops_a_build_whole(app_env):
    write_lake(app_env / "lake", handlake.TABLES)
    now = utcnow()
    with db.session() as s:
        s.add_all(
            [
                Course(course_id="c1", created_by=handlake.CREATOR, synced_at=now),
                Batch(batch_id="b1", course_id="c1", created_by=handlake.CREATOR, mentors=[], synced_at=now),
            ]
        )
        s.commit()
        store.submit(s, handlake.CREATOR, "c1", "b1", "progress")
    claimed = nightly.claim_requests("run-killed", dt.date(2026, 11, 28))
    operator = BuildReportsOperator(task_id="build_reports")
    failures = []
    before = {p.pid for p in psutil.Process().children(recursive=True)}

    def build():
        try:
            operator.build(claimed)
        except Exception as e:
            failures.append(e)

    thread = threading.Thread(target=build)
    thread.start()
    application = running_application(psutil.Process(), "jobs/night.py", before)
    operator.on_kill()  # what Airflow calls when it stops the task
    thread.join(60)
    assert not thread.is_alive() and "night failed: exit code" in str(failures[0])
    assert_all_gone(application)
    assert nightly.read_summary(nightly.output_dir("run-killed", "progress")) is None  # it did not finish


# The task process as Airflow runs it: its SIGTERM handler raises in the task (here the
# dashboard sync, which has no on_kill); SIGKILL gives it no chance to do anything.
TASK = """
import signal, sys
def stop(*_):
    raise SystemExit("terminated")
signal.signal(signal.SIGTERM, stop)
from coursedash.sync import sync
sync()
"""


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_a_task_process_stopped_or_killed_takes_its_spark_application_along(app_env, how):
    write_lake(app_env / "lake", handlake.TABLES)
    task = subprocess.Popen(
        [sys.executable, "-c", TASK],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    application = []
    try:
        application = running_application(psutil.Process(task.pid), "jobs/night.py")
        task.send_signal(how)
        assert task.wait(60) != 0
        assert_all_gone(application)
    finally:  # a failing test leaves no orphans either
        for p in [task, *application]:
            with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
                p.kill()


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_a_night_without_requests_still_computes_the_dashboard_figures(app_env, monkeypatch):
    from coursedash_airflow.hooks import SparkSubmitHook

    submitted = []
    monkeypatch.setattr(
        SparkSubmitHook,
        "submit",
        lambda self, application, args, lake_uri=None: submitted.append((application, args, lake_uri)),
    )
    BuildReportsOperator(task_id="build_reports").build({"run_id": "r1", "request_ids": [], "manifests": {}})
    [(application, args, lake_uri)] = submitted
    assert application == "jobs/night.py" and "--manifest" not in args
    assert lake_uri == args[args.index("--lake") + 1]  # its size chooses the Spark settings
    assert args[args.index("--figures") + 1] == str(nightly.figures_dir("r1"))
    # Told which figures the dashboard holds (none yet), to compute only the batches whose rows changed.
    assert json.loads((nightly.figures_dir("r1") / FIGURES_KNOWN_FILE).read_text()) == {}
