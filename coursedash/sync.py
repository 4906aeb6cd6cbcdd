"""Refresh the dashboard's courses, batches and figures from the lake (a Spark job)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from coursedash import db
from coursedash.config import settings
from coursedash.db import Batch, Course, utcnow
from coursedash.errors import UserError

log = logging.getLogger(__name__)

FIGURE_TABLES = ("courses", "batches", "enrolments")  # what jobs/dashboard_figures.py reads


def check_lake(uri: str) -> None:
    """Refuse a missing local lake before a JVM starts for nothing.

    Remote lakes (s3a://, hdfs://) are left to Spark, which alone can read them.
    """
    if "://" in uri and not uri.startswith("file://"):
        return
    root = Path(uri.removeprefix("file://"))
    if not root.is_dir():
        raise UserError(
            f"there is no lake at {root}: run `coursedash generate-lake` for a sample one, "
            "or set COURSEDASH_LAKE_URI to your lake's folder"
        )
    missing = [t for t in FIGURE_TABLES if not (root / t).exists()]
    if missing:
        raise UserError(f"the lake at {root} has no {', '.join(missing)} table: one folder per table is expected")


def sync(work_dir: str | None = None) -> dict[str, int]:
    """Run jobs/dashboard_figures.py over the lake and upsert what it computed."""
    from coursedash.spark import submit

    check_lake(settings().lake_uri)
    db.migrate()
    base = Path(work_dir or settings().work_uri)
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="figures-", dir=base) as out:
        submit("jobs/dashboard_figures.py", ["--lake", settings().lake_uri, "--out", out], log=log)
        return load_figures(Path(out))


def load_figures(out: Path) -> dict[str, int]:
    import pyarrow.parquet as pq

    courses = pq.read_table(out / "courses").to_pylist()
    batches = pq.read_table(out / "batches").to_pylist()
    now = utcnow()
    with db.session() as s:
        for c in courses:
            s.merge(Course(**c, synced_at=now))
        for b in batches:
            s.merge(Batch(**{**b, "mentors": list(b["mentors"] or [])}, figures_as_of=now, synced_at=now))
        s.commit()
    log.info("synced %d courses and %d batches", len(courses), len(batches))
    return {"courses": len(courses), "batches": len(batches)}
