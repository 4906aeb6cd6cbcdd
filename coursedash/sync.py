"""Refresh the dashboard's courses, batches and figures from the lake.

The figures are computed by the night's Spark application (jobs/night.py --figures):
`coursedash sync` runs it for the figures alone; the nightly DAG's build_reports
computes them beside the reports, and its sync_dashboard stores them. Either way the
application is first told the fingerprints of the figures stored here (`write_known`),
and computes only the batches whose lake rows changed since.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from coursedash import db
from coursedash.config import settings
from coursedash.db import Batch, Course, utcnow
from coursedash.errors import UserError
from coursedash.manifest import FIGURES_KNOWN_FILE, FIGURES_LAKE_FILE, SKIPPED_FILE

log = logging.getLogger(__name__)

# What jobs/dashboard_figures.py reads (its TABLES, by lake table name).
FIGURE_TABLES = ("courses", "batches", "course_contents", "enrolments", "assessment_attempts")


class LakeChanged(UserError):
    """The lake changed while the figures were computed from it: they could mix old and new data."""


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


def sync(work_dir: str | None = None) -> dict:
    """Compute the dashboard's figures from the lake (a Spark application) and store them.

    Returns the courses and batches stored and the rows skipped, by reason: a row
    sync cannot store is counted and left out, and never rolls back the others.
    """
    from coursedash.spark import submit

    check_lake(settings().lake_uri)
    db.migrate()
    base = Path(work_dir or settings().work_uri)
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="figures-", dir=base) as out:
        write_known(Path(out))
        lake = settings().lake_uri
        submit("jobs/night.py", ["--lake", lake, "--figures", out], log=log, name="dashboard_figures", lake_uri=lake)
        try:
            return load_figures(Path(out))
        except LakeChanged as e:
            raise LakeChanged(f"{e}; run `coursedash sync` again once the lake is rewritten") from None


def store_night_figures(folder: Path) -> dict:
    """Store the figures the night's build computed in `folder` (the DAG's sync_dashboard).

    Figures from a lake that changed while they were computed are not stored: the
    dashboard keeps its earlier ones, with their time, until the next night.
    """
    if not (folder / SKIPPED_FILE).exists():
        raise RuntimeError(
            "no dashboard figures were computed tonight: build_reports failed before it could (its log says why)"
        )
    db.migrate()
    try:
        return load_figures(folder)
    except LakeChanged as e:
        log.warning("%s; the dashboard keeps its earlier figures until the next night", e)
        return {"courses": 0, "batches": 0, "figures_computed": 0, "skipped": {}, "not_stored": str(e)}


def write_known(folder: Path) -> None:
    """Tell the figures job which figures are stored, by the fingerprint of the lake rows they came from.

    The job (jobs/dashboard_figures.py) computes a batch's figures only when its rows'
    fingerprint is not this one: new, changed, or never recorded.
    """
    with db.session() as s:
        query = select(Batch.batch_id, Batch.figures_fingerprint).where(Batch.figures_fingerprint.is_not(None))
        known = {batch_id: fingerprint for batch_id, fingerprint in s.execute(query)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / FIGURES_KNOWN_FILE).write_text(json.dumps(known), encoding="utf-8")


REFUSED = "rows the database refused"


def load_figures(out: Path) -> dict:
    """Store the figures in `out`; LakeChanged if a table changed while they were computed (docs/lake.md)."""
    import pyarrow.parquet as pq

    _check_unchanged(out)
    skipped = json.loads((out / SKIPPED_FILE).read_text(encoding="utf-8"))
    now = utcnow()
    stored = {"courses": 0, "batches": 0}
    batches = pq.read_table(out / "batches").to_pylist()
    computed = sum(1 for b in batches if b["figures_computed"])
    with db.session() as s:
        rows = [Course(**c, synced_at=now) for c in pq.read_table(out / "courses").to_pylist()] + [
            _batch(s, b, now) for b in batches
        ]
        for row in rows:
            try:
                with s.begin_nested():  # a savepoint: one refused row never rolls back the rest
                    s.merge(row)
            except DBAPIError as e:
                log.warning("%s %s not stored: %s", type(row).__name__, _id_of(row), str(e.orig).splitlines()[0])
                skipped[REFUSED] = skipped.get(REFUSED, 0) + 1
            else:
                stored[type(row).__tablename__] += 1
        s.commit()
    log.info(
        "synced %d courses and %d batches; figures computed for %d batches, the others' lake rows unchanged",
        stored["courses"],
        stored["batches"],
        computed,
    )
    if skipped:
        log.warning("rows skipped by sync: %s", "; ".join(f"{reason}: {n}" for reason, n in skipped.items()))
    return {**stored, "figures_computed": computed, "skipped": skipped}


# A batch's figures (docs/reports.md, "The dashboard's figures"): the columns jobs/dashboard_figures.py computes.
FIGURES = (
    "enrolment_count",
    "completed_count",
    "progress_not_started",
    "progress_started",
    "progress_past_half",
    "progress_completed",
    "certificates_issued",
    "weekly_enrolments",
    "average_total_score",
)


def _batch(s, row: dict, now) -> Batch:
    """The Batch to store for a row of the figures job.

    A batch whose figures were not computed (its lake rows are those of the stored
    figures) keeps them: only its other columns are given, and merging leaves the rest.
    Should the stored fingerprint no longer be the one the job compared with (a sync
    stored others meanwhile), its figures are kept as they are, with their time, and its
    fingerprint is cleared, for the next night to compute them.
    """
    computed = row.pop("figures_computed")
    values = {**row, "mentors": list(row["mentors"] or []), "synced_at": now}
    if computed:
        return Batch(**values, figures_as_of=now)
    values = {k: v for k, v in values.items() if k not in FIGURES}
    stored = s.get(Batch, row["batch_id"])
    if stored is not None and stored.figures_fingerprint == row["figures_fingerprint"]:
        return Batch(**values, figures_as_of=now)  # still the figures of the lake as it is now
    log.warning("batch %r: its stored figures changed while the lake was read; computed next time", row["batch_id"])
    return Batch(**{**values, "figures_fingerprint": None})


def _check_unchanged(out: Path) -> None:
    """Raise LakeChanged when a lake table changed while the figures in `out` were computed from it.

    The figures job compared the lake's files before and after (jobs/dashboard_figures.py);
    without that record (a lake not on a file system) there is nothing to check.
    """
    listed = out / FIGURES_LAKE_FILE
    if not listed.exists():
        return
    changes = json.loads(listed.read_text(encoding="utf-8"))["changed"]
    if changes:
        tables = "; ".join(f"{table}: {what}" for table, what in sorted(changes.items()))
        raise LakeChanged(
            f"the learner data changed while the dashboard figures were computed ({tables}), "
            "so they could mix old and new data: they were not stored"
        )


def _id_of(row) -> str:
    return repr(row.batch_id if isinstance(row, Batch) else row.course_id)[:80]
