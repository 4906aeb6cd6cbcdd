import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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
POSTGRES_ADMIN_URL = os.environ.get("COURSEDASH_TEST_POSTGRES", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def spark():
    from coursedash.spark import get_session

    session = get_session(
        "coursedash-tests",
        master="local[2]",
        conf={"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "4", "spark.ui.enabled": "false"},
    )
    yield session
    session.stop()


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
