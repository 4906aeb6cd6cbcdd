"""The night as production runs it: the topology `make stack` starts (coursedash/stack.py), faults and all.

Airflow's API server, scheduler, DAG processor, triggerer and two Celery workers on Redis,
a PostgreSQL metadata database of their own, a Spark standalone cluster, moto's S3 server
and the dashboard, all started for real; the nights are triggered through Airflow's REST
API and run by the scheduler and the workers. docs/deploy.md describes the topology.
"""

import base64
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from urllib.parse import quote

import pytest
import yaml
from sqlalchemy import select

from coursedash import db, store
from coursedash.db import Batch, ReportRequest
from coursedash.stack import AIRFLOW_SETTINGS, DAG_ID, Service, Stack, StackError, Topology, airflow_env, coursedash_env
from coursedash.storage import report_store
from tests import handlake
from tests.conftest import ROOT, _free_port, postgres_database
from tests.lakefixtures import write_lake
from tests.receivers import http_receiver, smtp_server

PASSWORD = "Stack-pass,word1"
CREATOR_EMAIL = "creator@example.org"
HOOK_SECRET = "stack-webhook-secret"
NIGHT_1, NIGHT_2 = "2026-11-28", "2026-11-29"
# The test's own Redis database, beside the stack's (1); its queue is unique to each run too.
TEST_REDIS_DB = 2

# What the test changes from `make stack`'s settings, to keep its nights short:
TEST_SETTINGS = {
    # Nights only when triggered, never from the schedule.
    "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    # A task whose worker died is failed (then retried) 30 s after its last heartbeat, not 300 s.
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
    "COURSEDASH_RETRY_DELAY_SECONDS": "1",
    # One slot a worker: the two workers' four pool processes would only cost memory here.
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
    # The suite's JVM settings (tests/conftest.py) for the executors too, and a small executor.
    "COURSEDASH_SPARK_CONF": os.environ.get("COURSEDASH_SPARK_CONF", "")
    + (" spark.executor.memory=512m spark.executor.extraJavaOptions='-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'"),
}


class AirflowAPI:
    """Airflow's public REST API (/api/v2), with a token from its auth manager's token endpoint."""

    def __init__(self, url: str, password: str):
        self.url = url
        self.token = self.call("POST", "/auth/token", {"username": "admin", "password": password})["access_token"]

    def call(self, method: str, path: str, body: dict | None = None):
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {self.token}"} if hasattr(self, "token") else {}),
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)

    def trigger(self, logical_date: str) -> str:
        return self.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": f"{logical_date}T00:00:00Z"})[
            "dag_run_id"
        ]

    def run(self, run_id: str) -> dict:
        return self.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}")

    def task(self, run_id: str, task_id: str) -> dict:
        return self.call("GET", f"/api/v2/dags/{DAG_ID}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}")


def wait_for(what: str, check, stack: Stack, timeout: float = 300, every: float = 1.0):
    """Poll `check` until it returns something true; on time-out, fail with the end of the services' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            print(f"{time.monotonic() - stack.began:6.1f} s  {what}", flush=True)  # shown when the test fails
            return value
        time.sleep(every)
    from coursedash.stack import tail

    logs = "\n".join(f"--- {p.name}\n{tail(p, 15)}" for p in sorted(stack.t.logs.glob("airflow-*.log")))
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")


def spark_driver_worker(stack: Stack) -> str | None:
    """The Celery worker whose task is running spark-submit (the night's Spark driver), if any."""
    import psutil

    for name in ("airflow-worker-1", "airflow-worker-2"):
        pid = stack.pid(name)
        if pid is None:
            continue
        for child in psutil.Process(pid).children(recursive=True):
            try:
                if "org.apache.spark.deploy.SparkSubmit" in " ".join(child.cmdline()):
                    return name
            except psutil.Error:
                pass
    return None


def spark_apps(stack: Stack) -> dict:
    with urllib.request.urlopen(stack.t.spark_status_url, timeout=5) as r:
        return json.load(r)


def submit_through_dashboard(stack: Stack, user: str, email: str, body: dict) -> str:
    from coursedash.auth import mint_token

    request = urllib.request.Request(
        f"{stack.t.dashboard_url}/api/v1/reports",
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {mint_token(user, email=email)}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["request_id"]


def dashboard_get(stack: Stack, user: str, path: str):
    from coursedash.auth import mint_token

    request = urllib.request.Request(
        stack.t.dashboard_url + path, headers={"Authorization": f"Bearer {mint_token(user)}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


@pytest.fixture
def stack(tmp_path, monkeypatch):
    """The stack on free ports, with databases, a Redis database and a queue of its own; stopped afterwards."""
    mail_port = _free_port()
    with (
        postgres_database() as app_db,
        postgres_database() as airflow_db,
        smtp_server(mail_port) as mailbox,
        http_receiver(HOOK_SECRET) as webhook,
    ):
        topology = Topology(
            home=str(tmp_path / "stack"),
            airflow_port=_free_port(),
            dashboard_port=_free_port(),
            spark_master_port=_free_port(),
            spark_ui_port=_free_port(),
            spark_worker_ui_port=_free_port(),
            s3_port=_free_port(),
            app_database_url=app_db,
            airflow_database_url=airflow_db,
            redis_url=f"redis://127.0.0.1:6379/{TEST_REDIS_DB}",
            queue=f"coursedash-test-{uuid.uuid4().hex[:8]}",
            spark_worker_cores=2,
            spark_worker_memory="1g",
        )
        notices = {
            "COURSEDASH_SMTP_URL": f"smtp://127.0.0.1:{mail_port}",
            "COURSEDASH_WEBHOOK_URL": webhook.url,
            "COURSEDASH_WEBHOOK_SECRET": HOOK_SECRET,
        }
        running = Stack(topology, {**TEST_SETTINGS, **notices})
        # This process reads and writes the same database, lake and bucket as the services.
        for key, value in running.env.items():
            if key.startswith(("COURSEDASH_", "AWS_")):
                monkeypatch.setenv(key, value)
        running.mailbox, running.webhook, running.began = mailbox, webhook, time.monotonic()
        try:
            yield running
        finally:
            running.down()
            forget_queue(topology.redis_url, topology.queue)


def forget_queue(redis_url: str, queue: str) -> None:
    """Leave nothing of the test's queue in Redis: its bindings, and the task the killed worker never acknowledged."""
    import redis

    broker = redis.Redis.from_url(redis_url)
    broker.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, message in broker.hgetall("unacked").items():
        if json.loads(message)[-1] == queue:  # [message, exchange, routing key]
            broker.hdel("unacked", tag)
            broker.zrem("unacked_index", tag)


def test_the_night_as_production_runs_it_with_a_worker_killed_and_the_scheduler_restarted(stack, tmp_path):
    """Two nights through the scheduler and Celery workers; a worker dies mid-build, the scheduler restarts."""
    import boto3

    write_lake(stack.t.lake, handlake.TABLES)
    stack.up(skip=("mail",))  # the test's own SMTP server takes the notices
    handlake.store_catalogue()
    by_creator = submit_through_dashboard(
        stack,
        handlake.CREATOR,
        CREATOR_EMAIL,
        {"course_id": "c1", "batch_id": "b1", "report_type": "progress", "password": PASSWORD},
    )
    with db.session() as s:
        profiles = store.submit(s, handlake.CREATOR, "c1", "b1", "userinfo", PASSWORD).request_id
        responses = store.submit(s, handlake.MENTOR, "c1", "b1", "response").request_id
        empty = store.submit(s, handlake.MENTOR2, "c1", "b2", "progress").request_id
    s3 = boto3.client("s3", endpoint_url=stack.t.s3_url)
    # Every write of an object is kept as a version: "published twice" would show.
    s3.put_bucket_versioning(Bucket=stack.t.bucket, VersioningConfiguration={"Status": "Enabled"})

    airflow = AirflowAPI(stack.t.airflow_url, stack.airflow_password())
    wait_for("the DAG to be parsed", lambda: _dag_known(airflow), stack, timeout=120)
    first = airflow.trigger(NIGHT_1)
    second = airflow.trigger(NIGHT_2)  # while the first is active: max_active_runs=1 holds it

    # Fault 1: the Celery worker running build_reports is killed (SIGKILL, with every process it
    # started: what a lost machine does) while the Spark application runs.
    wait_for("the first night's Spark application", lambda: spark_apps(stack)["activeapps"], stack, timeout=240)
    killed = wait_for("the worker running the Spark driver", lambda: spark_driver_worker(stack), stack, timeout=60)
    [app] = spark_apps(stack)["activeapps"]
    assert airflow.task(first, "claim_requests")["state"] == "success"
    assert airflow.run(second)["state"] == "queued"
    with db.session() as s:  # submitted after the first night's claim: the second night's
        late = store.submit(s, handlake.MENTOR, "c1", "b1", "progress").request_id
    stack.kill(killed)
    # The Spark application dies with its driver, and the attempt is retried on the other worker.
    wait_for(
        "the killed attempt's Spark application to end",
        lambda: app["id"] in {a["id"] for a in spark_apps(stack)["completedapps"]},
        stack,
        timeout=60,
    )
    retried = wait_for("build_reports to be retried", lambda: _running_try(airflow, first, 2), stack, timeout=180)
    survivor = wait_for("the retry's Spark driver", lambda: spark_driver_worker(stack), stack, timeout=120)
    assert survivor != killed and retried["hostname"]

    # Fault 2: the scheduler is restarted while the retry runs.
    stack.stop("airflow-scheduler")
    assert airflow.task(first, "build_reports")["state"] == "running"  # the worker carries on alone
    stack.start(stack.service("airflow-scheduler"))
    assert airflow.run(second)["state"] == "queued"

    runs = {
        r: wait_for(f"run {r} to finish", lambda r=r: _finished(airflow, r), stack, timeout=420)
        for r in (first, second)
    }
    assert {r: run["state"] for r, run in runs.items()} == {first: "success", second: "success"}
    assert runs[second]["start_date"] >= runs[first]["end_date"]  # held until the first ended
    build = airflow.task(first, "build_reports")
    assert (build["state"], build["try_number"]) == ("success", 2)
    assert airflow.task(second, "build_reports")["try_number"] == 1

    # Nothing lost: every request SUCCESS, built once, by the night that claimed it.
    with db.session() as s:
        found = {r.request_id: r for r in s.scalars(select(ReportRequest)).all()}
    assert {rid: (r.status, r.attempts) for rid, r in found.items()} == {
        rid: ("SUCCESS", 1) for rid in (by_creator, profiles, responses, empty, late)
    }
    assert found[late].claimed_by_run == second and found[by_creator].claimed_by_run == first

    # Each zip opens (with 7-Zip, and its password where it has one), cell for cell the reports.
    expected = {
        by_creator: (PASSWORD, "b1_progress_20261128.csv", handlake.B1_PROGRESS_CSV),
        profiles: (PASSWORD, "b1_userinfo_20261128.csv", handlake.B1_USERINFO_CSV),
        responses: (None, "b1_response_20261128.csv", handlake.B1_RESPONSE_CSV),
        empty: (None, "b2_progress_20261128.csv", handlake.B2_PROGRESS_CSV),
        late: (None, "b1_progress_20261129.csv", handlake.B1_PROGRESS_CSV),
    }
    for rid, (password, name, content) in expected.items():
        zipped = tmp_path / f"{rid}.zip"
        with report_store().open(found[rid].object_key) as f:  # checked against its stored SHA-256
            zipped.write_bytes(f.read())
        assert found[rid].file_size == zipped.stat().st_size
        out = tmp_path / "unzipped" / rid
        subprocess.run(
            ["7z", "x", *([f"-p{password}"] if password else []), f"-o{out}", str(zipped)],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        assert (out / name).read_bytes().decode("utf-8") == content

    # Nothing published twice: one version of each object, each with the SHA-256 of its bytes.
    prefix = "reports/"
    versions = s3.list_object_versions(Bucket=stack.t.bucket, Prefix=prefix).get("Versions", [])
    assert sorted(v["Key"] for v in versions) == sorted(prefix + found[rid].object_key for rid in expected)
    for rid in expected:
        head = s3.head_object(Bucket=stack.t.bucket, Key=prefix + found[rid].object_key, ChecksumMode="ENABLED")
        digest = hashlib.sha256((tmp_path / f"{rid}.zip").read_bytes()).digest()
        assert head["ChecksumSHA256"] == base64.b64encode(digest).decode()

    # The figures the first night computed are on the dashboard; the second found b1's lake rows
    # unchanged, kept them and stored the time it did (docs/reports.md, "The dashboard's figures").
    b1 = next(b for b in dashboard_get(stack, handlake.CREATOR, "/api/v1/courses/c1/batches") if b["batch_id"] == "b1")
    assert (b1["enrolment_count"], b1["completed_count"]) == (3, 1)
    with db.session() as s:
        stored = s.get(Batch, "b1")
    assert stored is not None and stored.figures_fingerprint
    assert stored.figures_as_of >= dt.datetime.fromisoformat(runs[second]["start_date"])

    # One notice each, by each channel configured: the creator's e-mail, and every request's webhook event.
    assert [m["message"]["Message-ID"] for m in stack.mailbox.messages] == [f"<notice-{by_creator}@coursedash>"]
    assert stack.mailbox.messages[0]["to"] == [CREATOR_EMAIL]
    assert sorted(stack.webhook.accepted) == sorted(f"coursedash-{rid}" for rid in expected)
    assert len(stack.webhook.attempts) == len(expected) and all(a["signed"] for a in stack.webhook.attempts)


def _dag_known(airflow: AirflowAPI) -> bool:
    try:
        return airflow.call("GET", f"/api/v2/dags/{DAG_ID}")["dag_id"] == DAG_ID
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def _running_try(airflow: AirflowAPI, run_id: str, try_number: int) -> dict | None:
    task = airflow.task(run_id, "build_reports")
    return task if (task["state"], task["try_number"]) == ("running", try_number) else None


def _finished(airflow: AirflowAPI, run_id: str) -> dict | None:
    run = airflow.run(run_id)
    return run if run["state"] in ("success", "failed") else None


def test_a_taken_port_or_a_service_that_dies_is_named_with_its_log(tmp_path):
    """`make stack`'s errors: which port is taken and by what; which service died, and the end of its log."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        stack = Stack(Topology(home=str(tmp_path), s3_port=port))
        # This process holds it, under whatever name it runs (pytest-xdist renames its workers).
        with pytest.raises(StackError, match=rf"port {port} \(S3 API\) is in use by .+ \(pid {os.getpid()}\)"):
            stack.start(stack.service("s3"))
    broken = Service(
        "broken",
        ["python3", "-c", "print('cannot read my settings'); raise SystemExit(3)"],
        {},
        "",
        ready=lambda: False,
    )
    with pytest.raises(StackError, match=r"(?s)broken exited with code 3 while starting.*cannot read my settings"):
        stack.start(broken)
    assert stack.down() == []  # nothing of it left running, and nothing else stopped


def test_a_service_whose_leader_exits_first_has_the_rest_of_its_group_killed(tmp_path):
    """The leader exits on SIGTERM, a process of its group ignores it: stopping kills that one at the grace's end."""
    ignores_term = (
        "import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('left', os.getpid(), flush=True); time.sleep(99)"
    )
    leader = f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', {ignores_term!r}]); time.sleep(99)"
    stack = Stack(Topology(home=str(tmp_path)))
    stack.start(Service("stubborn", ["python3", "-c", leader], {}, "", ready_line="left "))
    left = int((stack.t.logs / "stubborn.log").read_text().split("left ")[1].split()[0])
    assert stack.stop_all(["stubborn"], grace=1) == ["stubborn"]
    with pytest.raises(ProcessLookupError):
        os.kill(left, 0)


def test_docker_compose_runs_the_same_topology(tmp_path, monkeypatch):
    """docker-compose.yaml: the same services, and every Airflow service with the stack's settings."""
    assert shutil.which("docker-compose"), "docker-compose (Debian package) validates the file offline"
    for name in ("COURSEDASH_SECRET_KEY", "COURSEDASH_JWT_SECRET", "AIRFLOW_JWT_SECRET", "AIRFLOW_FERNET_KEY"):
        monkeypatch.setenv(name, "s")
    resolved = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yaml"), "config"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    services = yaml.safe_load(resolved)["services"]
    # Every application setting it gives is one the README documents.
    used = set(re.findall(r"\b(COURSEDASH_[A-Z0-9_]+):", (ROOT / "docker-compose.yaml").read_text()))
    documented = set(re.findall(r"`(COURSEDASH_[A-Z0-9_]+)`", (ROOT / "README.md").read_text()))
    assert used and used <= documented
    airflow = {
        "airflow-init",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "airflow-worker",
    }
    assert airflow | {"redis", "airflow-db", "postgres", "spark-master", "spark-worker", "minio", "dashboard"} <= set(
        services
    )
    local = Topology(home=str(tmp_path))
    for name in airflow:
        env = services[name]["environment"]
        assert {k: env.get(k) for k in AIRFLOW_SETTINGS} == AIRFLOW_SETTINGS, name
        # The same settings, each with the containers' addresses, folders and secrets.
        assert set(airflow_env(local)) | set(coursedash_env(local)) - {"SPARK_LOCAL_IP"} <= set(env), name
        assert services[name].get("healthcheck") or name == "airflow-init", name
    # Airflow's metadata database is not the application's.
    env = services["airflow-scheduler"]["environment"]
    assert _database(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]) != _database(env["COURSEDASH_DATABASE_URL"])
    assert services["dashboard"]["command"][:2] == ["coursedash", "serve"]
    # The Spark workers and the Airflow workers share the lake and the staged rows (docs/deploy.md).
    shared = {
        v.split(":")[0] if isinstance(v, str) else v["source"] for v in services["spark-worker"].get("volumes", [])
    }
    worker_volumes = {
        v.split(":")[0] if isinstance(v, str) else v["source"] for v in services["airflow-worker"].get("volumes", [])
    }
    assert shared & worker_volumes


def _database(url: str) -> tuple[str, str]:
    host, name = re.search(r"@([^/]+)/(\w+)", url).groups()
    return host, name
