"""The production topology on one machine, as processes: `make stack`, `make stack-down` and tests/test_stack.py.

Airflow's API server, scheduler, DAG processor, triggerer and Celery workers (broker: Redis;
metadata: a PostgreSQL database of their own), a Spark standalone master and worker, an
S3-compatible server (moto's) for the reports, an SMTP sink for the notices and `coursedash
serve`. PostgreSQL and Redis are the machine's own and are not started here. docs/deploy.md
describes the topology; docker-compose.yaml runs the same shape in containers, with the
settings defined here (tests/test_stack.py holds the two together).

Each service runs in a process group of its own, its output in `<home>/logs/<service>.log`
and its pid in `<home>/run/<service>.pid`: `down` stops exactly those groups and the
processes they started, nothing else.
`up` is idempotent: what still runs is left alone, what is missing is started.

    python -m coursedash.stack up [--airflow-port 8080] [--dashboard-port 8000] [--home var/stack]
    python -m coursedash.stack down | status | env
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

from coursedash.config import PROJECT_ROOT

BIN = Path(sys.executable).parent  # the virtualenv's commands: airflow, spark-class, moto_server, coursedash
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
DAG_ID = "course_reports_nightly"
HEALTHY = ("metadatabase", "scheduler", "triggerer", "dag_processor")

# What every Airflow service is configured with, here and in docker-compose.yaml alike; only
# addresses, paths and secrets differ between the two (airflow_env).
AIRFLOW_SETTINGS = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    # Airflow 3's default auth manager: users from the setting below, each with a generated
    # password kept in the API server's home (docs/deploy.md says how to log in).
    "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    # Two task slots a worker: the night's tasks run one or two at a time, and a Spark
    # driver lives in the worker running build_reports.
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
    "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
    # A task is acknowledged once done: a worker that dies mid-task leaves it to the
    # scheduler, which fails the attempt when its heartbeats stop and retries it elsewhere.
    "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
    "AIRFLOW__API__WORKERS": "1",
}


class StackError(RuntimeError):
    """The stack could not be started or stopped; the message says which service and why."""


@dataclass(frozen=True)
class Topology:
    """Where each service listens and where the stack keeps its state; the defaults are `make stack`'s."""

    home: str = "var/stack"
    airflow_port: int = 8080
    dashboard_port: int = 8000
    spark_master_port: int = 7077
    spark_ui_port: int = 8081
    spark_worker_ui_port: int = 8082
    s3_port: int = 9000
    mail_port: int = 8025
    app_database_url: str = f"{POSTGRES}/coursedash_stack"
    airflow_database_url: str = f"{POSTGRES}/coursedash_stack_airflow"
    # A Redis database and queue of the stack's own: the tests use others (tests/test_stack.py).
    redis_url: str = "redis://127.0.0.1:6379/1"
    queue: str = "coursedash"
    celery_workers: int = 2
    bucket: str = "course-reports"
    # One Spark worker, small: beside it on the machine run Airflow and the dashboard.
    spark_worker_cores: int = 2
    spark_worker_memory: str = "2g"

    @property
    def root(self) -> Path:
        return Path(self.home).resolve()

    @property
    def airflow_url(self) -> str:
        return f"http://127.0.0.1:{self.airflow_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def spark_master_url(self) -> str:
        return f"spark://127.0.0.1:{self.spark_master_port}"

    @property
    def spark_status_url(self) -> str:
        return f"http://127.0.0.1:{self.spark_ui_port}/json/"

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def logs(self) -> Path:
        return self.root / "logs"


@dataclass
class Service:
    name: str
    command: list[str]
    ports: dict[int, str]  # each port it listens on, and what for
    where: str  # what `up` prints beside its log
    ready: Callable[[], bool] | None = None  # polled after the start; None: running is enough
    ready_line: str | None = None  # or: ready once its log says this
    needs: tuple[str, ...] = ()  # services that must answer before this one starts
    after_start: Callable[[], None] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _secrets(root: Path) -> dict[str, str]:
    """The stack's secrets, made once and kept in `<home>/secrets.json` (readable by the owner only)."""
    path = root / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    from cryptography.fernet import Fernet

    values = {
        "coursedash_secret_key": secrets.token_urlsafe(32),
        "coursedash_jwt_secret": secrets.token_urlsafe(32),
        "airflow_jwt_secret": secrets.token_urlsafe(32),
        "airflow_fernet_key": Fernet.generate_key().decode(),
    }
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(values, f)
    return values


def coursedash_env(t: Topology) -> dict[str, str]:
    """The application's settings (README's configuration table) for every process of the stack."""
    keys = _secrets(t.root)
    return {
        "COURSEDASH_DATABASE_URL": t.app_database_url,
        "COURSEDASH_VAR_DIR": str(t.root / "var"),
        "COURSEDASH_LAKE_URI": str(t.lake),
        # Staged rows between the Spark executors and the Airflow worker that publishes:
        # on one machine a folder; on a cluster a volume both see (docs/deploy.md).
        "COURSEDASH_WORK_URI": str(t.root / "work"),
        "COURSEDASH_REPORTS_URI": f"s3://{t.bucket}/reports",
        "COURSEDASH_S3_ENDPOINT_URL": t.s3_url,
        "COURSEDASH_SPARK_MASTER": t.spark_master_url,
        "COURSEDASH_PUBLIC_URL": t.dashboard_url,
        "COURSEDASH_SMTP_URL": f"smtp://127.0.0.1:{t.mail_port}",
        "COURSEDASH_SECRET_KEY": keys["coursedash_secret_key"],
        "COURSEDASH_JWT_SECRET": keys["coursedash_jwt_secret"],
        # moto takes any credentials; a real S3 or MinIO gets its own.
        "AWS_ACCESS_KEY_ID": "coursedash",
        "AWS_SECRET_ACCESS_KEY": "coursedash-s3",
        "AWS_DEFAULT_REGION": "us-east-1",
        # Spark's driver and executors talk over loopback only.
        "SPARK_LOCAL_IP": "127.0.0.1",
    }


def airflow_env(t: Topology) -> dict[str, str]:
    """AIRFLOW_SETTINGS with this topology's addresses, folders and secrets."""
    keys = _secrets(t.root)
    return {
        **AIRFLOW_SETTINGS,
        "AIRFLOW_HOME": str(t.root / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": t.airflow_database_url,
        "AIRFLOW__CELERY__BROKER_URL": t.redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + t.airflow_database_url.replace("+psycopg2", ""),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": t.queue,
        "AIRFLOW__API__BASE_URL": t.airflow_url,
        # Airflow 3's workers report through the API server's Task Execution API, not the database.
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{t.airflow_url}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["airflow_jwt_secret"],
        "AIRFLOW__CORE__FERNET_KEY": keys["airflow_fernet_key"],
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(t.logs / "airflow"),
    }


def spark_daemon_env() -> dict[str, str]:
    """The Spark master's and worker's environment: in the foreground, mapping the class archive."""
    from coursedash.spark import java_options

    return {"SPARK_NO_DAEMONIZE": "1", "SPARK_DAEMON_JAVA_OPTS": java_options(os.environ.get("SPARK_DAEMON_JAVA_OPTS"))}


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status < 400
    except (OSError, ValueError):
        return False


def _json(url: str, timeout: float = 5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.load(r)


def _listening(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False

    return check


def _says(log: Path, offset: int, line: str | None) -> bool:
    """Whether the log, from `offset` on, has `line` (None: nothing to wait for)."""
    if line is None:
        return True
    with open(log, errors="replace") as f:
        f.seek(offset)
        return line in f.read()


def tail(path: Path, lines: int = 25) -> str:
    if not path.exists():
        return "(no log)"
    with open(path, errors="replace") as f:
        return "".join(deque(f, maxlen=lines)).rstrip()


class Stack:
    """Start, watch and stop the services of one topology; `env` is what every service runs with."""

    def __init__(self, topology: Topology, extra_env: dict[str, str] | None = None):
        self.t = topology
        self.run_dir = topology.root / "run"
        self.extra_env = extra_env or {}
        self._children: dict[str, subprocess.Popen] = {}  # started by this process: reaped by it

    @cached_property
    def env(self) -> dict[str, str]:
        """What every service runs with (made when first needed: `down` needs no secrets)."""
        from coursedash.spark import spark_env

        # Java, PySpark's Python and the project on PYTHONPATH, as every Spark process here needs.
        base = spark_env(self.t.spark_master_url)
        return {**base, **coursedash_env(self.t), **airflow_env(self.t), **self.extra_env}

    # --- the services ---------------------------------------------------------------------

    def services(self) -> list[Service]:
        """In start order: storage, Spark, Airflow, the dashboard."""
        t = self.t
        spark_class = str(BIN / "spark-class")
        airflow = str(BIN / "airflow")
        workers = [
            Service(
                f"airflow-worker-{n}",
                [
                    airflow,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"worker-{n}@%h",
                    "--queues",
                    t.queue,
                    "--skip-serve-logs",
                ],
                {},
                f"Celery worker on queue {t.queue}",
                ready_line=" ready.",
            )
            for n in range(1, t.celery_workers + 1)
        ]
        return [
            Service(
                "mail",
                [str(BIN / "python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{t.mail_port}"],
                {t.mail_port: "SMTP sink"},
                f"smtp://127.0.0.1:{t.mail_port} (prints each notice to its log)",
                _listening(t.mail_port),
            ),
            Service(
                "s3",
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(t.s3_port)],
                {t.s3_port: "S3 API"},
                f"{t.s3_url} (bucket {t.bucket})",
                lambda: _http_ok(t.s3_url),
                after_start=self._create_bucket,
            ),
            Service(
                "spark-master",
                [
                    spark_class,
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(t.spark_master_port),
                    "--webui-port",
                    str(t.spark_ui_port),
                ],
                {t.spark_master_port: "Spark master", t.spark_ui_port: "Spark master UI"},
                f"{t.spark_master_url} (UI http://127.0.0.1:{t.spark_ui_port})",
                lambda: _http_ok(t.spark_status_url),
                env=spark_daemon_env(),
            ),
            Service(
                "spark-worker",
                [
                    spark_class,
                    "org.apache.spark.deploy.worker.Worker",
                    t.spark_master_url,
                    "--host",
                    "127.0.0.1",
                    "--cores",
                    str(t.spark_worker_cores),
                    "--memory",
                    t.spark_worker_memory,
                    "--webui-port",
                    str(t.spark_worker_ui_port),
                    "--work-dir",
                    str(t.root / "spark-work"),
                ],
                {t.spark_worker_ui_port: "Spark worker UI"},
                f"{t.spark_worker_cores} cores, {t.spark_worker_memory} (UI http://127.0.0.1:{t.spark_worker_ui_port})",
                self._spark_worker_alive,
                env=spark_daemon_env(),
                needs=("spark-master",),
            ),
            Service(
                "airflow-apiserver",
                [airflow, "api-server", "--host", "127.0.0.1", "--port", str(t.airflow_port)],
                {t.airflow_port: "Airflow API server and UI"},
                f"{t.airflow_url} (UI and /api/v2)",
                lambda: _http_ok(f"{t.airflow_url}/api/v2/version"),
            ),
            Service("airflow-scheduler", [airflow, "scheduler", "--skip-serve-logs"], {}, "Airflow scheduler"),
            Service("airflow-dag-processor", [airflow, "dag-processor"], {}, f"parses {PROJECT_ROOT / 'dags'}"),
            Service("airflow-triggerer", [airflow, "triggerer", "--skip-serve-logs"], {}, "Airflow triggerer"),
            *workers,
            Service(
                "dashboard",
                [str(BIN / "coursedash"), "serve", "--host", "127.0.0.1", "--port", str(t.dashboard_port)],
                {t.dashboard_port: "dashboard"},
                f"{t.dashboard_url} (coursedash serve)",
                lambda: _http_ok(f"{t.dashboard_url}/api/v1/openapi.json"),
            ),
        ]

    def _create_bucket(self) -> None:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.t.s3_url,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
        )
        if self.t.bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
            client.create_bucket(Bucket=self.t.bucket)

    def _spark_worker_alive(self) -> bool:
        try:
            return _json(self.t.spark_status_url).get("aliveworkers", 0) >= 1
        except (OSError, ValueError):
            return False

    # --- processes --------------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def pid(self, name: str) -> int | None:
        """The pid of the service's process group leader, if the process its pid file names still runs."""
        import psutil

        path = self._pid_file(name)
        if not path.exists():
            return None
        recorded = json.loads(path.read_text())
        try:
            # The same pid and start time: not another process that was given a recycled pid.
            alive = abs(psutil.Process(recorded["pid"]).create_time() - recorded["started"]) < 0.5
        except psutil.NoSuchProcess:
            alive = False
        if alive and name in self._children and self._children[name].poll() is not None:
            alive = False  # exited; a zombie until reaped here
        return recorded["pid"] if alive else None

    def running(self) -> dict[str, int]:
        return {s.name: pid for s in self.services() if (pid := self.pid(s.name))}

    def start(self, service: Service, timeout: float = 180) -> None:
        """Start one service in a process group of its own and wait until it is ready."""
        self.wait_ready(service, self.launch(service), timeout)

    def launch(self, service: Service) -> int:
        """Start the service's process, its output appended to its log; returns where in the log this start begins."""
        import psutil

        for port, what in service.ports.items():
            _check_free(port, what)
        log_path = self.t.logs / f"{service.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            offset = log.tell()
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {shlex.join(service.command)}\n")
            log.flush()
            process = subprocess.Popen(
                service.command,
                cwd=PROJECT_ROOT,
                env={**self.env, **service.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children[service.name] = process
        self._pid_file(service.name).write_text(
            json.dumps(
                {"pid": process.pid, "started": psutil.Process(process.pid).create_time(), "command": service.command}
            )
        )
        return offset

    def wait_ready(self, service: Service, offset: int, timeout: float = 180) -> None:
        """Until the service answers (or its log says it is ready); an error with its log's end if it exits first."""
        log_path = self.t.logs / f"{service.name}.log"
        process = self._children[service.name]
        deadline = time.monotonic() + timeout
        while not (service.ready() if service.ready else _says(log_path, offset, service.ready_line)):
            if process.poll() is not None:
                raise StackError(
                    f"{service.name} exited with code {process.returncode} while starting; "
                    f"the end of {log_path}:\n{tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise StackError(
                    f"{service.name} was not ready after {timeout:.0f} s; the end of {log_path}:\n{tail(log_path)}"
                )
            time.sleep(0.5)
        if service.after_start:
            service.after_start()

    def stop(self, name: str, grace: float = 30) -> bool:
        """SIGTERM to the service's processes, SIGKILL to what is left after `grace`; False if it was not running."""
        return bool(self.stop_all([name], grace))

    def stop_all(self, names: list[str], grace: float = 30) -> list[str]:
        """Stop these services side by side (a Celery worker's warm shutdown waits for its task); returns which ran."""
        import psutil

        running = {name: pid for name in names if (pid := self.pid(name)) is not None}
        # A service's descendants may have left its group (an Airflow task runs in a group of
        # its own, spark-submit in a session of its own): they are stopped too, by pid.
        trees = {name: self._descendants(pid) for name, pid in running.items()}
        for pid in running.values():  # to the group, which may outlive its leader
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name, pid in running.items():
            if not self._wait_gone(name, pid, max(0.0, deadline - time.monotonic())):
                with contextlib.suppress(ProcessLookupError):  # its leader may be gone, the rest of its group not
                    os.killpg(pid, signal.SIGKILL)
                self._wait_gone(name, pid, 10)
            for process in trees[name]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    process.kill()  # psutil checks it is still the same process, not a recycled pid
        for name in names:
            self._pid_file(name).unlink(missing_ok=True)
            self._children.pop(name, None)
        return list(running)

    def kill(self, name: str) -> None:
        """SIGKILL to a service and every process it started, at once: what a lost machine or an OOM kill does."""
        import psutil

        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        for process in [psutil.Process(pid), *self._descendants(pid)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        self._wait_gone(name, pid, 10)

    @staticmethod
    def _descendants(pid: int) -> list:
        import psutil

        try:
            return psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def _wait_gone(self, name: str, group: int, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if name in self._children:
                self._children[name].poll()  # reap the leader, or it stays in the group as a zombie
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        return False

    # --- the whole stack --------------------------------------------------------------------

    def up(self, skip: tuple[str, ...] = (), health_timeout: float = 240) -> list[str]:
        """Start every service not running (but those in `skip`), then wait for Airflow's health; returns those started.

        On a failure the services this call started are stopped again, and the error names
        the service and shows the end of its log.
        """
        self.t.root.mkdir(parents=True, exist_ok=True)
        (self.t.root / "topology.json").write_text(json.dumps(asdict(self.t), indent=1))
        _check_postgres(self.t)
        _check_redis(self.t.redis_url)
        began = time.monotonic()
        self.prepare_databases()
        print(f"databases ready ({time.monotonic() - began:.1f} s)", flush=True)
        names = [s.name for s in self.services() if s.name not in skip]
        started = self.start_services(names)
        try:
            began = time.monotonic()
            self.wait_healthy(health_timeout)
            print(f"Airflow healthy ({time.monotonic() - began:.1f} s)", flush=True)
        except BaseException:
            self.stop_all(started, grace=10)
            raise
        return started

    def start_services(self, names: list[str]) -> list[str]:
        """Start those of `names` not running, side by side, then wait for each; on a failure, stop them again."""
        began = time.monotonic()
        launched: dict[str, tuple[Service, int]] = {}
        ready: set[str] = set()

        def wait(name: str) -> None:
            service, offset = launched[name]
            self.wait_ready(service, offset)
            ready.add(name)
            print(f"{name} ready ({time.monotonic() - began:.1f} s)", flush=True)

        wanted = [s for s in self.services() if s.name in names and not self.pid(s.name)]
        for service in wanted:  # every port first: a taken one stops the start before anything runs
            for port, what in service.ports.items():
                _check_free(port, what)
        try:
            for service in wanted:
                for need in service.needs:  # e.g. a Spark worker registers with a master that answers
                    if need in launched and need not in ready:
                        wait(need)
                launched[service.name] = (service, self.launch(service))
            for name in launched:
                if name not in ready:
                    wait(name)
        except BaseException:
            self.stop_all(list(launched), grace=10)
            raise
        return list(launched)

    def service(self, name: str) -> Service:
        return next(s for s in self.services() if s.name == name)

    def prepare_databases(self) -> None:
        """Both databases exist and are migrated: the application's and Airflow's (each a log of its own)."""
        for url in (self.t.app_database_url, self.t.airflow_database_url):
            _create_database(url)
        steps = {
            "migrate-app": [str(BIN / "coursedash"), "migrate"],
            "migrate-airflow": [str(BIN / "airflow"), "db", "migrate"],
        }
        self.t.logs.mkdir(parents=True, exist_ok=True)
        running = {}
        for name, command in steps.items():  # side by side: each is mostly waiting on the database
            with open(self.t.logs / f"{name}.log", "a") as log:
                running[name] = subprocess.Popen(
                    command,
                    cwd=PROJECT_ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        for name, process in running.items():
            if process.wait() != 0:
                path = self.t.logs / f"{name}.log"
                raise StackError(f"{name} failed (exit code {process.returncode}); the end of {path}:\n{tail(path)}")

    def health(self) -> dict:
        return _json(f"{self.t.airflow_url}/api/v2/monitor/health")

    def wait_healthy(self, timeout: float) -> dict:
        """Until Airflow's health API calls the metadata database, scheduler, DAG processor and triggerer healthy."""
        deadline = time.monotonic() + timeout
        while True:
            for service in self.services():
                log = self.t.logs / f"{service.name}.log"
                if service.name in self._children and self.pid(service.name) is None:
                    raise StackError(f"{service.name} stopped; the end of {log}:\n{tail(log)}")
            try:
                health = self.health()
                unhealthy = [k for k in HEALTHY if (health.get(k) or {}).get("status") != "healthy"]
            except (OSError, ValueError) as e:
                health, unhealthy = {}, [f"the API server ({e})"]
            if not unhealthy:
                return health
            if time.monotonic() > deadline:
                raise StackError(
                    f"Airflow is not healthy after {timeout:.0f} s: {', '.join(unhealthy)}; "
                    f"see the logs in {self.t.logs}"
                )
            time.sleep(1)

    def down(self) -> list[str]:
        """Stop every service this stack's pid files name; returns those stopped."""
        names = [s.name for s in self.services()]
        recorded = sorted(p.stem for p in self.run_dir.glob("*.pid")) if self.run_dir.exists() else []
        order = [n for n in reversed(names) if n in recorded] + [n for n in recorded if n not in names]
        return self.stop_all(order)

    def airflow_password(self) -> str | None:
        """The generated password of Airflow's `admin` user (SimpleAuthManager), once the API server made it."""
        path = Path(self.env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
        try:
            return json.loads(path.read_text()).get("admin")
        except (OSError, ValueError):
            return None

    def describe(self) -> str:
        running = self.running()
        lines = [f"{'service':24} {'pid':>7}  {'where':60} log"]
        for s in self.services():
            pid = running.get(s.name)
            lines.append(f"{s.name:24} {pid or '-':>7}  {s.where:60} {self.t.logs / (s.name + '.log')}")
        password = self.airflow_password()
        lines += [
            "",
            f"Airflow UI: {self.t.airflow_url}  user admin, password {password or '(not generated yet)'}",
            f"Task logs: {self.t.logs / 'airflow'}",
            'Use the stack\'s settings in a shell: eval "$(make -s stack-env)"; stop it: make stack-down',
        ]
        return "\n".join(lines)


def _check_free(port: int, what: str) -> None:
    try:
        with socket.create_server(("127.0.0.1", port)):
            pass
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise StackError(
                f"port {port} ({what}) is in use by {_owner(port)}; stop it, or choose other ports "
                "(make stack AIRFLOW_PORT=... DASHBOARD_PORT=...; docs/deploy.md)"
            ) from None
        raise StackError(f"cannot listen on 127.0.0.1:{port} ({what}): {e.strerror}") from None


def _owner(port: int) -> str:
    import psutil

    try:
        for c in psutil.net_connections("tcp"):
            if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN and c.pid:
                p = psutil.Process(c.pid)
                return f"{p.name()} (pid {c.pid})"
    except (psutil.Error, OSError):
        pass
    return "another program"


def _check_postgres(t: Topology) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = t.airflow_database_url.rsplit("/", 1)[0] + "/postgres"
    try:
        engine = create_engine(admin)
        with engine.connect() as c:
            c.execute(text("SELECT 1"))
        engine.dispose()
    except OperationalError as e:
        raise StackError(f"PostgreSQL is not reachable at {admin}: {str(e.orig).strip().splitlines()[0]}") from None


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as e:
        raise StackError(f"Redis (the Celery broker) is not reachable at {url}: {e}") from None


def _create_database(url: str) -> None:
    from sqlalchemy import create_engine, text

    base, name = url.rsplit("/", 1)
    engine = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            if not c.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
                c.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()


def _topology(args) -> Topology:
    """A running stack's topology (recorded in its home), else the defaults with the ports given."""
    saved = Path(args.home) / "topology.json"
    recorded = Topology(**{**json.loads(saved.read_text()), "home": args.home}) if saved.exists() else None
    given = {k: v for k in ("airflow_port", "dashboard_port") if (v := getattr(args, k)) is not None}
    if recorded and (args.command != "up" or Stack(recorded).running()):
        if args.command == "up" and any(getattr(recorded, k) != v for k, v in given.items()):
            raise StackError(
                f"the stack in {args.home} runs on other ports ({recorded.airflow_port}, "
                f"{recorded.dashboard_port}); make stack-down first"
            )
        return recorded
    return Topology(home=args.home, **given)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m coursedash.stack", description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["up", "down", "status", "env"])
    p.add_argument(
        "--home",
        default="var/stack",
        help="where the stack keeps its logs, pid files, Airflow home and lake (default: var/stack)",
    )
    p.add_argument("--airflow-port", type=int, help="Airflow's API server and UI (default: 8080)")
    p.add_argument("--dashboard-port", type=int, help="coursedash serve (default: 8000)")
    args = p.parse_args(argv)
    try:
        stack = Stack(_topology(args))
        if args.command == "up":
            started = stack.up()
            print(f"started: {', '.join(started) or 'nothing (all were running)'}; Airflow is healthy\n")
            print(stack.describe())
        elif args.command == "down":
            stopped = stack.down()
            print(f"stopped: {', '.join(stopped) or 'nothing (none was running)'}")
        elif args.command == "status":
            print(stack.describe())
        else:  # env: the settings a shell needs to use the stack (coursedash and airflow commands)
            for key, value in {**coursedash_env(stack.t), **airflow_env(stack.t)}.items():
                print(f"export {key}={shlex.quote(value)}")
    except StackError as e:
        print(f"stack: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
