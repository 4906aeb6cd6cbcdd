import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from coursedash.spark import SMALL_LAKE_CONF

ROOT = Path(__file__).resolve().parents[1]
# Seconds a real server's answer may take: the suite's Spark nights share two cores with it.
SLOW = 60
SESSION_DIR = Path(tempfile.mkdtemp(prefix="coursedash-tests-"))

# Airflow reads its configuration once, at first import: a throwaway home, set first.
os.environ.update(
    {
        "AIRFLOW_HOME": str(SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "COURSEDASH_VAR_DIR": str(SESSION_DIR / "var"),
    }
)
# The suite starts dozens of short-lived JVMs on rows by the dozen: the settings of a night
# on a small lake (coursedash.spark.SMALL_LAKE_CONF: queries interpreted and not re-planned,
# one partition a stage, C1 only and one GC thread) for every session, the in-process ones
# too, with no web UI and a small heap. (The cluster test turns code generation and adaptive
# execution back on and uses four shuffle partitions, as a night on real data has; the
# determinism test reruns a night on three.)
os.environ.setdefault(
    "COURSEDASH_SPARK_CONF",
    shlex.join(
        f"{key}={value}"
        for key, value in {"spark.ui.enabled": "false", "spark.driver.memory": "1g", **SMALL_LAKE_CONF}.items()
    ),
)
# The Spark master and worker the cluster and stack tests start (coursedash.stack) idle between
# a few tasks: the quick compiler and one GC thread, as the suite's other JVMs.
os.environ.setdefault("SPARK_DAEMON_JAVA_OPTS", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
POSTGRES_ADMIN_URL = os.environ.get(
    "COURSEDASH_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)

# The longest modules are handed to the workers first (make test runs them in parallel):
# started last, they would leave the other workers idle behind them.
LONGEST_FIRST = (
    "tests/test_stack.py",
    "tests/test_nightly_dag.py",
    "tests/test_browser.py",
    "tests/jobs/test_dirty_lake.py",
    "tests/test_benchmark.py",
    "tests/test_sunbird.py",
    "tests/test_cluster.py",
    "tests/test_determinism.py",
    "tests/jobs/test_single_pass.py",
    "tests/test_api_limits.py",
    "tests/jobs/test_response_report.py",
    "tests/jobs/test_pii.py",
    "tests/test_sync.py",
    "tests/test_cli.py",
    "tests/test_lake_rewritten.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


def pytest_unconfigure(config):
    # Each pytest process (the controller, every worker) made its own folder on import.
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def spark():
    from coursedash.spark import get_session

    session = get_session("coursedash-tests", master="local[2]")
    yield session
    session.stop()
    # py4j logs its last "closing" line at interpreter exit, after pytest closed the streams.
    import logging

    logging.getLogger("py4j").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def airflow_db():
    """Airflow's metadata database, migrated once for the session."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True)


@contextmanager
def postgres_database():
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    from sqlalchemy import create_engine, text

    name = f"coursedash_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from coursedash import db

        db._engine(url).dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def app_env(request, tmp_path, monkeypatch):
    """The project configured into tmp_path, on SQLite or on the running PostgreSQL."""
    var = tmp_path / "var"
    monkeypatch.setenv("COURSEDASH_VAR_DIR", str(var))
    monkeypatch.setenv("COURSEDASH_LAKE_URI", str(var / "lake"))
    monkeypatch.setenv("COURSEDASH_REPORTS_URI", str(var / "reports"))
    monkeypatch.setenv("COURSEDASH_WORK_URI", str(var / "work"))
    monkeypatch.setenv("COURSEDASH_SECRET_KEY", "test-secret-key")
    from coursedash import db

    if request.param == "sqlite":
        monkeypatch.setenv("COURSEDASH_DATABASE_URL", f"sqlite:///{var / 'coursedash.db'}")
        db.migrate()
        yield var
    else:
        with postgres_database() as url:
            monkeypatch.setenv("COURSEDASH_DATABASE_URL", url)
            db.migrate()
            yield var


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mailbox(app_env, monkeypatch):
    """A real SMTP server on loopback that the night's e-mails go to (set up before a served page)."""
    from tests.receivers import smtp_server

    port = _free_port()
    with smtp_server(port) as box:
        monkeypatch.setenv("COURSEDASH_SMTP_URL", f"smtp://127.0.0.1:{port}")
        yield box


@pytest.fixture(scope="session")
def s3_server():
    """A real S3-compatible server (moto's), in its own process on loopback."""
    import time
    import urllib.request

    port = _free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("the S3 test server did not start")
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def s3_reports(s3_server, monkeypatch):
    """Reports go to a fresh bucket on the S3 server; returns (boto3 client, bucket, prefix)."""
    import boto3

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=s3_server)
    client.create_bucket(Bucket=bucket)
    monkeypatch.setenv("COURSEDASH_S3_ENDPOINT_URL", s3_server)
    monkeypatch.setenv("COURSEDASH_REPORTS_URI", f"s3://{bucket}/course-reports")
    return client, bucket, "course-reports"
