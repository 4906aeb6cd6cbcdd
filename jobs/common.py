"""What every report type shares: cell formats, checks, staging and summary.

A report type's `finish` (its `ReportJob`) gets the night's input frames, read and
cached once by jobs.night, and stages every request's rows as one sorted Parquet file
of ready-to-write CSV cells under `<out>/rows/request_id=<id>/`; jobs.night writes
`<out>/_SUMMARY.json` last. The summary gives each request its header, row count and
the rows left out or passed through by reason (`left_out`, codes of schemas.notes),
or its error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from coursedash.manifest import Manifest
from coursedash.spark import described
from jobs import quality
from schemas.reports import FORMULA_START_RE


@dataclass(frozen=True)
class ReportJob:
    """A report type as the night builds it.

    `tables`: the input frames it reads (names of jobs.frames.FRAMES).
    `finish(frames, out, manifest, errors)`: stage the rows of the manifest's requests
    from `frames` (those tables and `requests`) and return the summary; `errors` holds
    the requests already known to fail.
    """

    tables: tuple[str, ...]
    finish: Callable[[dict[str, DataFrame], str, Manifest, dict], dict]


# --- cell formats (docs/reports.md, "The file") ---------------------------------------


def text(col: Column | str) -> Column:
    """A text cell from the lake, guarded against spreadsheet formula injection."""
    c = F.col(col) if isinstance(col, str) else col
    return F.when(c.rlike(FORMULA_START_RE), F.concat(F.lit("'"), c)).otherwise(c)


def date_cell(col: Column | str) -> Column:
    return F.date_format(col, "dd/MM/yyyy")


def datetime_cell(col: Column | str) -> Column:
    return F.date_format(col, "dd/MM/yyyy HH:mm:ss")


# Spark writes a double as Java's Double.toString does: 12.5, 3.0, 1.0E-13. Before Java 19
# that is sometimes a digit or more longer than the shortest decimal that reads back as the
# same double (2e23 as 1.9999999999999998E23): a string of 16 or more significant digits is
# written from the double rounded to 15, 16 or 17 digits instead, the first that reads back.
# Any shorter decimal that reads back is the 15-digit one with zeros at its end (a double
# holds 15 digits exactly), so the three are enough for every double but the subnormal ones.
_MAYBE_LONG = 16
_FRAME = 400  # zeros either side of a double's digits: more than its largest or smallest exponent


def _plain(scientific: Column, negative: Column) -> Column:
    """`d.dddE±n` (or `d.ddde±n`) as a plain decimal: the point moved, no exponent, no needless zero.

    The digits are framed in zeros, cut where the point goes, and the zeros not needed are
    trimmed: each input is read twice at most, so that Spark can still compile the whole.
    """
    digits = F.regexp_replace(scientific, r"[-.]|[eE].*", "")
    point = F.lit(_FRAME + 1) + F.regexp_extract(scientific, r"[eE]([-+]?[0-9]+)$", 1).cast("int")
    framed = F.concat(F.repeat(F.lit("0"), _FRAME), digits, F.repeat(F.lit("0"), _FRAME))
    cut = F.concat(F.substring(framed, F.lit(1), point), F.lit("."), F.substring(framed, point + 1, 2 * _FRAME))
    unsigned = F.regexp_replace(F.regexp_replace(cut, r"\.?0+$", ""), "^0+([0-9])", "$1")
    return F.concat(F.when(negative, F.lit("-")).otherwise(F.lit("")), unsigned)


def _shortest(x: Column) -> Column:
    """The fewest significant digits that read back as the same double, written plainly."""
    candidates = [F.format_string(f"%.{digits - 1}e", x) for digits in (15, 16, 17)]
    return _plain(F.coalesce(*[F.when(c.cast("double") == x, c) for c in candidates]), x < 0)


def plain_number(col: Column | str) -> Column:
    """A double from the lake as the shortest plain decimal that reads back as the same double.

    No exponent, whatever the size: 12.5, 3, 0.0000000000001, 12.3456789012345, 1 and 27
    zeros (docs/reports.md). Zero is 0, negative zero too; NaN and the infinities are empty.
    """
    x = (F.col(col) if isinstance(col, str) else col).cast("double")
    java = x.cast(StringType())
    significant = F.length(F.regexp_replace(F.regexp_replace(java, r"[eE].*|[^0-9]", ""), "^0+|0+$", ""))
    return (
        F.when(F.isnan(x) | (F.abs(x) == float("inf")), F.lit(None).cast(StringType()))
        .when(x == 0, F.lit("0"))
        .when((F.length(java) > _MAYBE_LONG) & (significant >= _MAYBE_LONG), _shortest(x))
        .when(java.contains("E"), _plain(java, x < 0))
        .otherwise(F.regexp_replace(java, r"\.0$", ""))
    )


def percent(score: Column, max_score: Column) -> Column:
    """100 * score / max with two decimals, half up; null when max is 0 or either is null."""
    exact = F.try_divide(
        F.try_multiply(score.try_cast("decimal(38,10)"), F.lit(100)), max_score.try_cast("decimal(38,10)")
    )
    return F.round(exact, 2).cast(StringType())


# --- staging ---------------------------------------------------------------------------


def stage(rows: DataFrame, out: str, sort_by: list[str], counters: dict[str, Column] | None = None) -> dict:
    """Write each request's cells, sorted, as one Parquet file; return counts per request.

    `rows` has request_id, the sort columns and `cells` (array<string> in header order).
    Repartitioning by request puts each request in one task, so each gets one file
    whose rows stay in sort order. `counters` name boolean columns to count per request
    (dirty rows kept, by note code). The rows are written, then counted: they come
    cached from `load_report`, so the lake is not read again.
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


# --- checking and loading -------------------------------------------------------------


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
    """A report type's load: check the reports, stage those that pass, return the summary.

    Rows with a `dropped` column are staged with `stage_reported`, which also counts
    the rows left out. The rows are computed once, cached for their checks, their
    write and their counts, and freed before the next report type.
    """
    rows = rows.persist()
    try:
        # The suite's first query computes the cached rows: building them is counted here.
        with described(rows.sparkSession, f"{report_type} reports: built, then their output suite"):
            errors = {**errors, **quality.check_report(report_type, rows, manifest, header_of, pending=errors)}
        passing = rows.filter(~F.col("request_id").isin(list(errors))) if errors else rows
        staging = stage_reported if "dropped" in rows.columns else stage
        with described(rows.sparkSession, f"{report_type} reports: staged and counted"):
            counts = staging(passing, out, sort_by, counters)
    finally:
        rows.unpersist()
    return summarize(report_type, manifest, counts, errors, header_of)
