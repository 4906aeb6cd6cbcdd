"""The night's one Spark application: every report of the night, and the dashboard's figures.

    spark-submit jobs/night.py --lake LAKE [--figures DIR] [--manifest M --out DIR ...]

One manifest per report type (coursedash.nightly.claim_requests writes them), each with
the folder its rows and summary are staged in. The tables any report reads are pruned
to the batches of the requests that read them, and what every report derives from
them alike is persisted once (jobs.frames.read_frames); each table is validated once
for every request that reads it (jobs.quality.lake_findings); then each report type
stages its rows and its `_SUMMARY.json`. The lake is scanned as many times whatever
the number of requests. With `--figures`, the dashboard's figures are computed beside
the reports, in a second thread (jobs.dashboard_figures), for the DAG's sync_dashboard
to store: one JVM a night.

A table that cannot be read fails the requests of the report types that read it, and
no other. A report type that breaks for another reason (a bug) writes no summary: the
others are still built, then the application exits non-zero naming the broken types,
so that the Airflow task fails and says which. Figures that cannot be computed do not
stop the reports either, and fail the application at the end the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures import Future, ThreadPoolExecutor

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from coursedash import lakefiles
from coursedash.manifest import Manifest, clear_summary, write_summary
from coursedash.spark import described
from jobs import dashboard_figures, progress_report, quality, response_report, userinfo_report
from jobs.common import ReportJob
from jobs.frames import FRAMES, LakeSchemaError, lake_file_error, missing_batches, read_frames

log = logging.getLogger("coursedash.jobs")

REPORTS: dict[str, ReportJob] = {
    "progress": progress_report.JOB,
    "userinfo": userinfo_report.JOB,
    "response": response_report.JOB,
}


class ReportsNotBuilt(RuntimeError):
    """One or more report types broke while building; the others were built."""


class FiguresNotComputed(RuntimeError):
    """The dashboard's figures could not be computed; the reports were built all the same."""


def build(spark: SparkSession, night: list[tuple[Manifest, str]]) -> dict[str, dict]:
    """Build each manifest's reports into its folder; return each report type's summary.

    Raises ReportsNotBuilt after building what it could, if a report type broke.
    """
    for _, out in night:
        clear_summary(out)
    requests = [{**r, "report_type": m.report_type} for m, _ in night for r in m.requests]
    jobs = {m.report_type: REPORTS[m.report_type] for m, _ in night}
    lake_uri = night[0][0].lake_uri
    # Before the first read: publishing compares it with the lake then (coursedash.lakefiles).
    tables_of = {t: sorted({FRAMES[name][0] for name in job.tables}) for t, job in jobs.items()}
    listing = lakefiles.snapshot(lake_uri, {table for tables in tables_of.values() for table in tables})
    if listing is None:
        log.warning("the lake %s is not on a file system: whether it changes during the night is not checked", lake_uri)
    summaries, broken = {}, {}
    shared: list = []
    try:
        readers = {
            name: {t for t, job in jobs.items() if name in job.tables} for job in jobs.values() for name in job.tables
        }
        frames, unreadable, shared = read_frames(spark, lake_uri, requests, readers)
        buildable = {t for t, job in jobs.items() if all(name in frames for name in job.tables)}
        errors: dict[str, dict] = {}
        findings: dict[str, dict[str, int]] = {}
        if buildable:
            errors = missing_batches(frames["batches"], requests)
            readers = {name: types & buildable for name, types in readers.items() if name in frames}
            findings, corrupt = quality.lake_findings(frames, readers, lake_uri)
            unreadable.update(corrupt)
        for manifest, out in night:
            report_type = manifest.report_type
            job = jobs[report_type]
            # Every report reads enrolments, so a frame skipped for want of them is unreadable too.
            problem = next((unreadable[name] for name in job.tables if name in unreadable), None)
            if problem is None:
                log.info("building %d %s report(s)", len(manifest.requests), report_type)
                mine = {name: frames[name] for name in job.tables}
                mine["requests"] = frames["requests"].filter(F.col("report_type") == report_type).drop("report_type")
                try:
                    with described(spark, f"{report_type} reports"):
                        summary = job.finish(mine, out, manifest, errors)
                except Exception as e:
                    problem = lake_file_error(e, lake_uri)
                    if problem is None:
                        log.exception("the %s reports could not be built", report_type)
                        broken[report_type] = e
                        continue
                else:
                    _add_findings(summary, findings)
            if problem is not None:
                summary = _all_failed(manifest, problem)
            if listing is not None:
                summary["lake"] = {"uri": lake_uri, "files": {t: listing[t] for t in tables_of[report_type]}}
            write_summary(out, summary)
            summaries[report_type] = summary
            _log_requests(summary)
    finally:
        for df in shared:  # only what the reports persisted: the dashboard's figures may still be running
            df.unpersist()
    if broken:
        reasons = "; ".join(f"{t}: {type(e).__name__}: {e}" for t, e in broken.items())
        raise ReportsNotBuilt(f"the {', '.join(broken)} reports could not be built ({reasons})"[:2000])
    return summaries


def _add_findings(summary: dict, findings: dict[str, dict[str, int]]) -> None:
    """The lake suites' counts join each built request's `left_out`."""
    for request_id, info in summary["requests"].items():
        if "left_out" in info:
            merged = {**info["left_out"], **findings.get(request_id, {})}
            info["left_out"] = dict(sorted(merged.items()))


def _all_failed(manifest: Manifest, problem: LakeSchemaError) -> dict:
    """Every request of the manifest failed by the lake: plain words for them, the detail in the log with their ids."""
    log.error(
        "the lake cannot be used for the %s reports (request(s) %s): %s",
        manifest.report_type,
        ", ".join(r["request_id"] for r in manifest.requests),
        problem.detail,
    )
    error = {"error": f"the learner data could not be read: {problem}", "transient": True}
    return {"report_type": manifest.report_type, "requests": {r["request_id"]: error for r in manifest.requests}}


def _log_requests(summary: dict) -> None:
    for request_id, info in summary["requests"].items():
        if "error" in info:
            log.error("%s request %s: %s", summary["report_type"], request_id, info["error"])
        else:
            left_out = ", ".join(f"{code} {n}" for code, n in info["left_out"].items()) or "nothing"
            log.info(
                "%s request %s: %d rows; left out or passed through: %s",
                summary["report_type"],
                request_id,
                info["rows"],
                left_out,
            )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """`night`: the (manifest, out folder) pairs; `lake`; `figures`: the folder for the figures, or None."""
    parser = argparse.ArgumentParser(
        description="Build every report of the night, and the dashboard's figures, in one Spark application."
    )
    parser.add_argument("--lake", required=True, help="the lake's URI (COURSEDASH_LAKE_URI)")
    parser.add_argument("--figures", help="compute the dashboard's figures into this folder")
    parser.add_argument("--manifest", action="append", default=[], help="a report type's manifest (repeatable)")
    parser.add_argument("--out", action="append", default=[], help="the folder for the manifest's rows and summary")
    args = parser.parse_args(argv)
    if len(args.manifest) != len(args.out):
        parser.error("give one --out per --manifest")
    if not args.manifest and not args.figures:
        parser.error("nothing to do: give --figures, or --manifest and --out")
    args.night = [(Manifest.load(m), out) for m, out in zip(args.manifest, args.out, strict=True)]
    types = [m.report_type for m, _ in args.night]
    if len(set(types)) != len(types) or not set(types) <= set(REPORTS):
        parser.error(f"expected at most one manifest each of {', '.join(REPORTS)}, got {', '.join(types)}")
    if any(m.lake_uri != args.lake for m, _ in args.night):
        parser.error("a manifest names another lake than --lake")
    return args


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    for manifest, _ in args.night:
        log.info(
            "%s: %d request(s) for %d batch(es)", manifest.report_type, len(manifest.requests), len(manifest.batch_ids)
        )
    from coursedash.spark import get_session
    from schemas.expectations import import_in_background

    if args.night:
        import_in_background()  # seconds of Python, while the session starts and the lake is read
    spark = get_session("course_reports" if args.night else "dashboard_figures")
    try:
        # The figures and the reports read the lake apart: on a small lake each of their
        # queries keeps one core busy, so they run side by side, in two threads.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="figures") as pool:
            figures = pool.submit(_figures, spark, args.lake, args.figures) if args.figures else None
            reports_error = None
            if args.night:
                try:
                    build(spark, args.night)
                except ReportsNotBuilt as e:
                    reports_error = str(e)
            figures_error = _figures_error(figures, alone=not args.night)
        if reports_error:
            raise ReportsNotBuilt("; ".join(filter(None, [reports_error, figures_error])))
        if figures_error:
            raise FiguresNotComputed(figures_error)
    finally:
        spark.stop()


def _figures(spark: SparkSession, lake_uri: str, out: str) -> None:
    with described(spark, "dashboard figures"):
        dashboard_figures.build(spark, lake_uri, out)


def _figures_error(figures: Future | None, alone: bool) -> str | None:
    """Why the figures could not be computed, or None; alone (no reports), the error itself is raised."""
    error = figures.exception() if figures is not None else None
    if error is None:
        return None
    if alone:
        raise error  # nothing else to do: the application fails with the error itself
    log.error("the dashboard figures could not be computed; the reports were built all the same", exc_info=error)
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"the dashboard figures could not be computed ({type(error).__name__}: {first_line})"[:1000]


if __name__ == "__main__":
    main(sys.argv[1:])
