"""The nightly run's steps around the Spark jobs: claim the requests, then publish.

The DAG calls these; they take and return only ids, dates and paths, never data or
passwords. Passwords go from the database to the zip inside `publish_reports` alone.
"""

from __future__ import annotations

import datetime as dt
import errno
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from coursedash import REPORT_TYPES, db, lakefiles, packaging, store
from coursedash.config import settings
from coursedash.db import ReportRequest
from coursedash.manifest import Manifest, read_summary
from coursedash.storage import LocalStore, report_store
from schemas.notes import data_notes

log = logging.getLogger(__name__)

NOT_BUILT = "the report could not be built tonight (the build task failed; its log says why)"


def safe_name(text: str) -> str:
    """One path segment from an id the lake or Airflow chose: no separators, no `..`."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
    return "_" if name in ("", ".", "..") else name


def run_dir(run_id: str) -> Path:
    return Path(settings().work_uri) / safe_name(run_id)


def manifest_path(run_id: str, report_type: str) -> Path:
    return run_dir(run_id) / f"{report_type}.manifest.json"


def output_dir(run_id: str, report_type: str) -> Path:
    return run_dir(run_id) / report_type


def packaging_dir(run_id: str) -> Path:
    """Where publishing writes each CSV and zip (learners' data in clear) while packaging them.

    Inside the run's folder, so that whatever a killed publish left is deleted by its
    retry or by the next run's claim_requests, like the staged rows.
    """
    return run_dir(run_id) / "packaging"


def figures_dir(run_id: str) -> Path:
    """Where the night's build writes the dashboard's figures, for sync_dashboard to store."""
    return run_dir(run_id) / "figures"


def object_key(request: ReportRequest) -> str:
    # No date in the key: a request rebuilt by a later run overwrites its one object.
    course, batch = safe_name(request.course_id), safe_name(request.batch_id)
    return f"{course}/{batch}/{request.report_type}/{request.request_id}.zip"


def report_file_name(request: ReportRequest, report_date: dt.date, suffix: str) -> str:
    """`<batch_id>_<report_type>_<yyyymmdd>.csv` (docs/reports.md, "The file"), and the zip's download name."""
    return f"{safe_name(request.batch_id)}_{request.report_type}_{report_date:%Y%m%d}.{suffix}"


def claim_requests(run_id: str, report_date: dt.date) -> dict:
    """Claim the night's requests and write one manifest per report type that has any."""
    db.migrate()
    with db.session() as s:
        claimed = store.claim(s, run_id)
    discard_earlier_runs(run_id)
    shutil.rmtree(run_dir(run_id), ignore_errors=True)  # a rerun starts clean
    manifests = {}
    for report_type in REPORT_TYPES:
        mine = [r for r in claimed if r.report_type == report_type]
        if not mine:
            continue
        path = manifest_path(run_id, report_type)
        Manifest(
            report_type=report_type,
            report_date=report_date.isoformat(),
            lake_uri=settings().lake_uri,
            requests=[{"request_id": r.request_id, "course_id": r.course_id, "batch_id": r.batch_id} for r in mine],
        ).save(path)
        manifests[report_type] = str(path)
    counts = {t: sum(r.report_type == t for r in claimed) for t in REPORT_TYPES}
    log.info("claimed %d request(s) for run %s: %s", len(claimed), run_id, counts)
    return {"run_id": run_id, "request_ids": [r.request_id for r in claimed], "manifests": manifests}


def staged_rows_dir(run_id: str, request: ReportRequest) -> Path:
    return output_dir(run_id, request.report_type) / "rows" / f"request_id={request.request_id}"


def discard_staged_rows(run_id: str, request: ReportRequest) -> None:
    """A request's staged rows (learners' data in clear) go once this run is done with it.

    Done means published, or failed and recorded: a retry rebuilds from the lake.
    """
    shutil.rmtree(staged_rows_dir(run_id, request), ignore_errors=True)


def discard_earlier_runs(run_id: str) -> list[str]:
    """Delete the work folders of every other run, with whatever rows a run that died left.

    Only one nightly run is active at a time (max_active_runs=1), so any other run's
    folder is finished or dead. A run folder is known by its manifests or its figures;
    other folders under COURSEDASH_WORK_URI (a `coursedash sync` running beside the
    claim) are left alone.
    """
    base, mine = Path(settings().work_uri), run_dir(run_id)
    earlier = [
        f
        for f in (base.iterdir() if base.is_dir() else [])
        if f != mine and (any(f.glob("*.manifest.json")) or (f / "figures").is_dir())
    ]
    for folder in earlier:
        shutil.rmtree(folder, ignore_errors=True)
        log.info("deleted the work folder of earlier run %s", folder.name)
    return sorted(f.name for f in earlier)


@dataclass(frozen=True)
class Package:
    """What packaging one request takes, as plain values: the workers never touch the database."""

    request_id: str
    staged: Path  # the request's staged rows
    workdir: Path  # where its CSV and zip are written (packaging_dir)
    csv_name: str
    header: list[str]
    rows: int
    password: str | None
    key: str


def _staged_batches(package: Package):
    """The staged cells of one request, in order, a batch of rows at a time (Arrow list<string> arrays)."""
    import pyarrow.parquet as pq

    files = sorted(package.staged.glob("*.parquet")) if package.staged.exists() else []
    if len(files) > 1:
        raise RuntimeError(f"expected one staged file for request {package.request_id}, found {len(files)}")
    for path in files:
        for batch in pq.ParquetFile(path).iter_batches(columns=["cells"], batch_size=10_000):
            yield batch.column("cells")


def package_one(package: Package, reports) -> tuple[int, int]:
    """CSV, zip, upload: return rows and the zip's bytes. The CSV and zip are deleted however it ends."""
    with tempfile.TemporaryDirectory(prefix=f"{package.request_id}-", dir=package.workdir) as tmp:
        csv_path = Path(tmp) / package.csv_name
        rows = packaging.write_csv_batches(csv_path, package.header, _staged_batches(package))
        if rows != package.rows:
            raise RuntimeError(f"staged {package.rows} rows but read {rows}")
        zip_path = Path(tmp) / "report.zip"
        size = packaging.zip_file(csv_path, zip_path, package.csv_name, package.password)
        reports.put(zip_path, package.key)
    return rows, size


def lake_changes(summaries: dict[str, dict | None]) -> dict[str, dict[str, str]]:
    """Per report type, the lake tables it read that changed since its build listed them (coursedash.lakefiles)."""
    moved, now = {}, {}
    for report_type, summary in summaries.items():
        read = (summary or {}).get("lake")
        if not read:
            continue
        key = (read["uri"], tuple(sorted(read["files"])))
        if key not in now:
            now[key] = lakefiles.snapshot(read["uri"], read["files"])
        if changes := lakefiles.changed(read["files"], now[key]):
            log.warning(
                "lake tables changed while the %s reports were built: %s",
                report_type,
                "; ".join(f"{t}: {what}" for t, what in changes.items()),
            )
            moved[report_type] = changes
    return moved


def lake_changed_message(changes: dict[str, str]) -> str:
    names = sorted(changes)
    tables = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return (
        f"the learner data changed while tonight's reports were being built (lake table{'s' * (len(names) > 1)} "
        f"{tables} rewritten), so this report could have mixed old and new data"
    )


def publish_problem(e: Exception) -> str:
    """What a requester is told when publishing their report failed: the kind of problem, no path or exception."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return "the report could not be published: there was no room left where reports are stored"
    if isinstance(e, OSError) and e.filename is not None:
        return "the report could not be published: it could not be written where reports are stored"
    if type(e).__module__.split(".")[0] in ("botocore", "boto3", "s3transfer"):
        return "the report could not be published: the report store could not be reached or refused it"
    return "the report could not be packaged for publishing"


def publish_reports(run_id: str, report_date: dt.date) -> dict:
    """Package and publish every request this run owns, each on its own.

    Packaging is CPU (Arrow's CSV encoding and deflate, both outside Python's lock) and
    uploading is I/O, so one request per core is packaged at a time, each streamed from
    its staged rows; the database records each outcome, in order, from this thread.
    """
    reports = report_store()
    outcome = {"SUCCESS": 0, "FAILED": 0}
    workdir = packaging_dir(run_id)
    shutil.rmtree(workdir, ignore_errors=True)  # what a killed try of this task left
    if isinstance(reports, LocalStore) and (partial := reports.discard_partial_uploads()):
        log.warning("deleted %d partial file(s) of uploads that were killed mid-way", partial)
    with db.session() as s:
        requests = s.scalars(
            select(ReportRequest)
            .where(ReportRequest.status == "PROCESSING", ReportRequest.claimed_by_run == run_id)
            .order_by(ReportRequest.submitted_at)
        ).all()
        summaries = {t: read_summary(output_dir(run_id, t)) for t in {r.report_type for r in requests}}
        moved = lake_changes(summaries)
        built = []
        for request in requests:
            info = (summaries[request.report_type] or {}).get("requests", {}).get(request.request_id)
            if info is None:
                log.error("request %s: no %s report was built", request.request_id, request.report_type)
                store.fail(s, request.request_id, run_id, NOT_BUILT, transient=True)
            elif request.report_type in moved and not info.get("error"):
                log.error(
                    "request %s: the lake changed while it was built (%s); it is built again next night",
                    request.request_id,
                    moved[request.report_type],
                )
                store.fail(
                    s, request.request_id, run_id, lake_changed_message(moved[request.report_type]), transient=True
                )
            elif info.get("error"):
                log.error("request %s failed: %s", request.request_id, info["error"])
                store.fail(s, request.request_id, run_id, info["error"], transient=info.get("transient", False))
            else:
                built.append(
                    (
                        request,
                        info,
                        Package(
                            request.request_id,
                            staged_rows_dir(run_id, request),
                            workdir,
                            report_file_name(request, report_date, "csv"),
                            info["header"],
                            info["rows"],
                            store.password_of(request),
                            object_key(request),
                        ),
                    )
                )
        workdir.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, min(len(built), os.cpu_count() or 1))) as pool:
            packed = [pool.submit(package_one, package, reports) for _, _, package in built]
            try:
                for (request, info, package), future in zip(built, packed, strict=True):
                    try:
                        rows, size = future.result()
                    except Exception as e:  # one request failing never fails another
                        # The detail (paths, the exception) for the engineers; plain words for people.
                        log.error("request %s could not be published", request.request_id, exc_info=e)
                        store.fail(s, request.request_id, run_id, publish_problem(e), transient=True)
                    else:
                        notes = data_notes(info["left_out"])
                        if store.complete(
                            s,
                            request.request_id,
                            run_id,
                            rows=rows,
                            size=size,
                            key=package.key,
                            report_date=report_date,
                            notes=notes,
                        ):
                            log.info(
                                "request %s published: %d rows, %d bytes at %s",
                                request.request_id,
                                rows,
                                size,
                                package.key,
                            )
                    discard_staged_rows(run_id, request)
            except BaseException:  # told to stop: start no other request; those being packaged end
                pool.shutdown(wait=False, cancel_futures=True)
                raise
        for request in requests:
            discard_staged_rows(run_id, request)  # of those that failed before packaging
            s.refresh(request)
            outcome[request.status] = outcome.get(request.status, 0) + 1
    shutil.rmtree(workdir, ignore_errors=True)
    dirt = left_out(summaries)
    log.info("run %s published: %s; rows the reports left out or passed through, by reason: %s", run_id, outcome, dirt)
    return {**outcome, "left_out": dirt}


def left_out(summaries: dict[str, dict | None]) -> dict[str, dict[str, int]]:
    """Per report type, the dirty rows its requests counted (dropped, or passed through), by reason."""
    totals: dict[str, dict[str, int]] = {}
    for report_type, summary in summaries.items():
        for info in (summary or {}).get("requests", {}).values():
            for code, n in info.get("left_out", {}).items():
                mine = totals.setdefault(report_type, {})
                mine[code] = mine.get(code, 0) + n
    return totals


def expire_reports(as_of: dt.datetime) -> int:
    """Reports past their retention become EXPIRED, then their files are deleted."""
    # Completion times are real times: a run for a future date (a test, a backfill)
    # must not expire what was built today.
    cut_off = min(as_of, db.utcnow()) - dt.timedelta(days=settings().retention_days)
    reports = report_store()
    with db.session() as s:
        expired = store.expire(s, cut_off)
    for request in expired:
        if request.object_key:
            reports.delete(request.object_key)
        log.info("request %s expired (completed %s)", request.request_id, request.completed_at)
    log.info("%d report(s) expired as of %s", len(expired), cut_off)
    return len(expired)
