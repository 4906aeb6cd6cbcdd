"""The same lake gives the same bytes, and the API's times are UTC whatever the database's zone."""

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from coursedash import db, nightly, store
from coursedash.db import ReportRequest, utcnow
from coursedash.manifest import Manifest
from coursedash.packaging import read_zip
from coursedash.storage import report_store
from jobs import night as night_job
from tests import dirtylake, handlake
from tests.conftest import POSTGRES_ADMIN_URL
from tests.lakefixtures import write_lake

PASSWORD = "Same-bytes-1"
DAY = dt.date(2026, 11, 28)


def night(spark, run_id: str, unzip_to: Path) -> dict[str, bytes]:
    """Claim, build in this Spark session, publish: every report's unzipped CSV."""
    with db.session() as s:
        ids = [store.submit(s, handlake.CREATOR, "c1", "b1", t, PASSWORD).request_id for t in night_job.REPORTS]
    claimed = nightly.claim_requests(run_id, DAY)
    night_job.build(
        spark,
        [
            (Manifest.load(path), str(nightly.output_dir(run_id, report_type)))
            for report_type, path in claimed["manifests"].items()
        ],
    )
    assert nightly.publish_reports(run_id, DAY)["SUCCESS"] == 3
    with db.session() as s:
        requests = [s.get(ReportRequest, rid) for rid in ids]
    files = {}
    unzip_to.mkdir(parents=True)
    for r in requests:
        path = unzip_to / f"{r.report_type}.zip"
        with report_store().open(r.object_key) as f:
            path.write_bytes(f.read())
        files.update(read_zip(path, PASSWORD))
    return files


# The bytes come from Spark and packaging alone; the DAG tests publish on both databases.
@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_the_same_lake_written_otherwise_gives_byte_identical_csvs(app_env, spark, monkeypatch):
    handlake.store_catalogue()
    tables = dirtylake.tables()
    monkeypatch.setenv("COURSEDASH_LAKE_URI", str(write_lake(app_env / "lake_one_file", tables)))
    first = night(spark, "run-a", app_env / "a")
    monkeypatch.setenv("COURSEDASH_LAKE_URI", str(write_lake(app_env / "lake_split", tables, split=True)))
    partitions = spark.conf.get("spark.sql.shuffle.partitions")
    spark.conf.set("spark.sql.shuffle.partitions", "3")  # and other partitions in every shuffle
    try:
        second = night(spark, "run-b", app_env / "b")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", partitions)
    assert sorted(first) == [f"b1_{t}_20261128.csv" for t in ("progress", "response", "userinfo")]
    assert first == second
    assert all(len(content.splitlines()) > 1 for content in first.values())  # real rows, not just headers


@pytest.fixture
def kolkata_postgres(tmp_path, monkeypatch):
    """A PostgreSQL database whose sessions answer in Asia/Kolkata time (+05:30)."""
    from tests.conftest import postgres_database

    monkeypatch.setenv("COURSEDASH_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", "times-test-secret-0123456789abcdef")
    with postgres_database() as url:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f"ALTER DATABASE \"{url.rsplit('/', 1)[1]}\" SET TimeZone TO 'Asia/Kolkata'"))
        admin.dispose()
        monkeypatch.setenv("COURSEDASH_DATABASE_URL", url)
        db.migrate()
        yield url


def test_api_times_are_utc_whatever_the_database_time_zone(kolkata_postgres):
    from coursedash.api import app
    from coursedash.auth import mint_token

    with db.engine().connect() as c:
        assert c.execute(text("SHOW TimeZone")).scalar() == "Asia/Kolkata"
    handlake.store_catalogue()
    with db.session() as s:
        rid = store.submit(s, handlake.CREATOR, "c1", "b1", "progress").request_id
        stored = s.get(ReportRequest, rid).submitted_at
    assert stored.utcoffset() == dt.timedelta(0)
    shown = TestClient(app).get(
        f"/api/v1/reports/{rid}", headers={"Authorization": f"Bearer {mint_token(handlake.CREATOR)}"}
    )
    submitted_at = shown.json()["submitted_at"]
    assert submitted_at.endswith("Z") and "+05:30" not in submitted_at
    assert dt.datetime.fromisoformat(submitted_at) == stored
    assert abs(dt.datetime.fromisoformat(submitted_at) - utcnow()) < dt.timedelta(minutes=5)
