"""What every report job shares: its main, cell formats, checks, staging and summary.

A report job reads the night's manifest (request ids and batches, never passwords),
reads each lake table it needs once, pruned to the requested batches (jobs.frames),
and stages every request's rows as one sorted Parquet file of ready-to-write CSV cells
under `<out>/rows/request_id=<id>/`, with `<out>/_SUMMARY.json` written last. The
summary gives each request its header, row count and the rows left out or passed
through by reason (`left_out`, codes of schemas.notes), or its error.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from coursedash.manifest import Manifest, clear_summary, write_summary
from jobs.frames import LakeSchemaError, lake_file_error, missing_batches
from schemas.reports import FORMULA_START_RE

log = logging.getLogger("coursedash.jobs")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--manifest", required=True, help="the night's manifest for this report type")
    parser.add_argument("--out", required=True, help="folder to stage the rows and summary in")
    return parser.parse_args(argv)


# --- cell formats (CONTRACT §4) --------------------------------------------------------

def text(col: Column | str) -> Column:
    """A text cell from the lake, guarded against spreadsheet formula injection."""
    c = F.col(col) if isinstance(col, str) else col
    return F.when(c.rlike(FORMULA_START_RE), F.concat(F.lit("'"), c)).otherwise(c)


def date_cell(col: Column | str) -> Column:
    return F.date_format(col, "dd/MM/yyyy")


def datetime_cell(col: Column | str) -> Column:
    return F.date_format(col, "dd/MM/yyyy HH:mm:ss")


def plain_number(col: Column | str) -> Column:
    """A number from the lake as a plain decimal, never with an exponent: 12.5, 3, 0.0000001."""
    as_decimal = F.col(col).try_cast("decimal(38,12)") if isinstance(col, str) else col.try_cast("decimal(38,12)")
    return F.regexp_replace(as_decimal.cast(StringType()), r"\.?0+$", "")


def percent(score: Column, max_score: Column) -> Column:
    """100 * score / max with two decimals, half up; null when max is 0 or either is null."""
    exact = F.try_divide(F.try_multiply(score.try_cast("decimal(38,10)"), F.lit(100)), max_score.try_cast("decimal(38,10)"))
    return F.round(exact, 2).cast(StringType())


# --- staging ---------------------------------------------------------------------------

def stage(rows: DataFrame, out: str, sort_by: list[str], counters: dict[str, Column] | None = None) -> dict:
    """Write each request's cells, sorted, as one Parquet file; return counts per request.

    `rows` has request_id, the sort columns and `cells` (array<string> in header order).
    Repartitioning by request puts each request in one task, so each gets one file
    whose rows stay in sort order. `counters` name boolean columns to count per request
    (dirty rows kept, by note code). The rows are written, then counted: they come
    cached from `checked`, so the lake is not read again.
    """
    counters = counters or {}
    (
        rows.repartition("request_id")
        .sortWithinPartitions("request_id", *sort_by)
        .select("request_id", "cells")
        .write.mode("overwrite")
        .partitionBy("request_id")
        .parquet(f"{out.rstrip('/')}/rows")
    )
    aggregates = [F.count(F.lit(1)).alias("rows")] + [
        F.count(F.when(flag, True)).alias(name) for name, flag in counters.items()
    ]
    return {
        r["request_id"]: {k: v for k, v in r.asDict().items() if k != "request_id"}
        for r in rows.groupBy("request_id").agg(*aggregates).collect()
    }


def stage_reported(rows: DataFrame, out: str, sort_by: list[str], counters: dict[str, Column] | None = None) -> dict:
    """`stage` the rows of the report, and count the rows left out of it, by reason, in the same pass.

    `rows` also has a string column `dropped`: null on a row of the report, else the
    note code the row is counted under (e.g. `consents.not_given`). Only report rows
    are written; `counters` count among them. Like `stage`, it wants the rows cached.
    """
    counts = stage(rows.filter(F.col("dropped").isNull()), out, sort_by, counters)
    for r in rows.filter(F.col("dropped").isNotNull()).groupBy("request_id", "dropped").count().collect():
        counts.setdefault(r["request_id"], {})[r["dropped"]] = r["count"]
    return counts


# --- the shared main ------------------------------------------------------------------

def summarize(
    report_type: str, manifest: Manifest, counts: dict, errors: dict, header_of: Callable[[dict], list[str]]
) -> dict:
    """Each request's header, rows and what was left out (non-zero counts by code), or its error."""
    requests = {}
    for r in manifest.requests:
        mine = counts.get(r["request_id"], {})
        requests[r["request_id"]] = errors.get(r["request_id"]) or {
            "header": header_of(r),
            "rows": mine.get("rows", 0),
            "left_out": {code: n for code, n in sorted(mine.items()) if code != "rows" and n},
        }
    return {"report_type": report_type, "requests": requests}


def checked(
    report_type: str, rows: DataFrame, manifest: Manifest, errors: dict, header_of: Callable[[dict], list[str]]
) -> tuple[DataFrame, dict]:
    """The rows of the requests whose reports pass their checks, and all errors so far."""
    from jobs import quality

    rows = rows.persist()  # validated, staged, counted: computed once (freed by `build`)
    errors = {**errors, **quality.check_report(report_type, rows, manifest, header_of, pending=errors)}
    return (rows.filter(~F.col("request_id").isin(list(errors))) if errors else rows), errors


def build(
    spark: SparkSession,
    manifest: Manifest,
    out: str,
    extract: Callable[[SparkSession, Manifest], dict[str, DataFrame]],
    finish: Callable[[dict[str, DataFrame], str, Manifest, dict], dict],
) -> dict:
    """Extract, check the inputs, let `finish` stage the rows, then write the summary.

    `finish(frames, out, manifest, errors)` gets the requests already known to fail
    (batch gone) and returns the summary; the lake suites' findings join each
    request's `left_out`. A lake that cannot be read fails every request, saying why.
    """
    from jobs import quality

    try:
        # Cached: the quality checks and the report both read them, the lake only once.
        frames = {name: df if name == "requests" else df.persist() for name, df in extract(spark, manifest).items()}
        errors = missing_batches(frames["batches"], manifest)
        findings = quality.lake_findings(frames)
        summary = finish(frames, out, manifest, errors)
    except Exception as e:
        problem = str(e) if isinstance(e, LakeSchemaError) else lake_file_error(e, manifest.lake_uri)
        if problem is None:
            raise
        log.error("the lake cannot be used for the %s reports: %s", manifest.report_type, problem)
        error = {"error": f"the learner data could not be read: {problem}", "transient": True}
        summary = {"report_type": manifest.report_type, "requests": {r["request_id"]: error for r in manifest.requests}}
    else:
        for request_id, info in summary["requests"].items():
            if "left_out" in info:
                merged = {**info["left_out"], **findings.get(request_id, {})}
                info["left_out"] = dict(sorted(merged.items()))
    finally:
        spark.catalog.clearCache()  # the frames and the report rows
    write_summary(out, summary)
    return summary


def load_report(
    report_type: str,
    rows: DataFrame,
    out: str,
    manifest: Manifest,
    errors: dict,
    header_of: Callable[[dict], list[str]],
    sort_by: list[str],
    counters: dict[str, Column] | None = None,
) -> dict:
    """A job's load: check the reports, stage those that pass, return the summary.

    Rows with a `dropped` column are staged with `stage_reported`, which also counts
    the rows left out.
    """
    rows, errors = checked(report_type, rows, manifest, errors, header_of)
    staging = stage_reported if "dropped" in rows.columns else stage
    counts = staging(rows, out, sort_by, counters)
    return summarize(report_type, manifest, counts, errors, header_of)


def run(
    report_type: str,
    argv: list[str] | None,
    extract: Callable[[SparkSession, Manifest], dict[str, DataFrame]],
    finish: Callable[[dict[str, DataFrame], str, Manifest, dict], dict],
) -> None:
    """A report job's main: arguments, manifest, session, `build`, a log line per request."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    manifest = Manifest.load(args.manifest)
    clear_summary(args.out)
    log.info("building %d %s report(s) for %d batch(es)", len(manifest.requests), report_type, len(manifest.batch_ids))
    from coursedash.spark import get_session

    spark = get_session(f"{report_type}_report")
    summary = build(spark, manifest, args.out, extract, finish)
    for request_id, info in summary["requests"].items():
        if "error" in info:
            log.error("request %s: %s", request_id, info["error"])
        else:
            left_out = ", ".join(f"{code} {n}" for code, n in info["left_out"].items()) or "nothing"
            log.info("request %s: %d rows; left out or passed through: %s", request_id, info["rows"], left_out)
    spark.stop()
