"""The dashboard's figures: courses, and batches with how their learners are doing.

Computed by the night's Spark application (jobs/night.py --figures DIR), beside the
reports, and by `coursedash sync` alone; coursedash.sync stores them. Per batch:
enrolment and completion counts, learners by progress band, certificates issued,
enrolments per week and the average Total Score, from the learners and formulas of the
batch's Course Progress report (jobs.progress_report.learner_progress), so that the
dashboard and the report always agree (docs/reports.md, "The dashboard's figures").
Aggregates only: no learner's id leaves this module.

Each batch's figures carry a fingerprint of every lake row they are computed from. A
batch whose fingerprint is the one the dashboard already holds (FIGURES_KNOWN_FILE, written
by coursedash.sync) keeps its figures: only the batches whose rows changed are computed,
so that a night follows what changed in the lake, not the lake's size.
"""

from __future__ import annotations

import json
import logging
from functools import reduce
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from coursedash import lakefiles
from coursedash.manifest import FIGURES_KNOWN_FILE, FIGURES_LAKE_FILE, SKIPPED_FILE
from coursedash.spark import described
from jobs.frames import FRAMES, learners, one_batch_each, one_course_each, read_table
from jobs.progress_report import learner_progress

log = logging.getLogger("coursedash.jobs.figures")

TABLES = ("courses", "batches", "contents", "enrolments", "attempts")  # input frames, names of jobs.frames.FRAMES

# Part of every fingerprint: change it when what the figures compute changes (here, in
# jobs.progress_report.learner_progress or in the duplicate rules of jobs/frames.py), so
# that every batch is computed again by the code that changed.
FIGURES_VERSION = "1"

COUNTS = (
    "enrolment_count",
    "completed_count",
    "progress_not_started",
    "progress_started",
    "progress_past_half",
    "progress_completed",
    "certificates_issued",
)


def _counted(name: str) -> Column:
    """Whether a learner row (of jobs.progress_report.learner_progress) counts in COUNTS' `name`.

    The bands are the progress report's Progress: 0, 1-49, 50-99 and 100.
    """
    progress = F.col("progress")
    return {
        "enrolment_count": F.lit(True),
        "completed_count": F.col("completed_on").isNotNull(),
        "progress_not_started": progress == 0,
        "progress_started": progress.between(1, 49),
        "progress_past_half": progress.between(50, 99),
        "progress_completed": progress == 100,
        "certificates_issued": F.col("certificate_issued"),
    }[name]


def extract(spark: SparkSession, lake_uri: str) -> dict[str, DataFrame]:
    """Each table the figures read, whole: every batch of the lake has its figures."""
    return {name: read_table(spark, lake_uri, FRAMES[name][0]) for name in TABLES}


def _count(df: DataFrame) -> DataFrame:
    return df.select(F.count(F.lit(1)).alias("n"))


def _conflicts(df: DataFrame, key: str) -> DataFrame:
    """Rows of an id beyond the one kept that disagree with it: distinct rows per id, less one."""
    per_id = df.filter(F.col(key).isNotNull()).distinct().groupBy(key).count()
    return per_id.select(F.coalesce(F.sum(F.col("count") - 1), F.lit(0)).alias("n"))


def skipped(courses: DataFrame, batches: DataFrame, kept_courses: DataFrame) -> dict[str, DataFrame]:
    """The rows sync cannot store, one single-row count per reason (docs/lake.md, "Dirty rows")."""
    known = kept_courses.select("course_id")
    batch_rows = one_batch_each(batches)
    return {
        "courses without an id": _count(courses.filter(F.col("course_id").isNull())),
        "courses repeated with different values (the latest was kept)": _conflicts(courses, "course_id"),
        "batches without an id": _count(batches.filter(F.col("batch_id").isNull())),
        "batches repeated with different values (the latest was kept)": _conflicts(batches, "batch_id"),
        "batches without a course": _count(batch_rows.filter(F.col("course_id").isNull())),
        "batches of a course not in the lake": _count(
            batch_rows.filter(F.col("course_id").isNotNull()).join(known, "course_id", "left_anti")
        ),
    }


def batch_figures(learners_: DataFrame) -> DataFrame:
    """Per batch of the learners (jobs.progress_report.learner_progress): the COUNTS, `weekly_enrolments` and
    `average_total_score`.

    Weeks start on Monday, UTC (the session's time zone). Every week from the first
    enrolment's to the last one's is listed, a week without enrolments with 0, so that the
    curve never hides a quiet week; a learner without an enrolment date is in no week.
    The average is the mean of the batch's non-empty Total Score cells, two decimals
    (half up), null when there are none. Grouped by week first, then by batch: each
    learner row is read once.
    """
    week = F.date_trunc("week", "enrolled_on").cast("date")
    score = F.col("total_score_cell").cast("decimal(38,2)")  # the cell as the report writes it
    per_week = learners_.groupBy("batch_id", week.alias("week_start")).agg(
        *[F.count(F.when(_counted(name), True)).alias(name) for name in COUNTS],
        F.try_sum(score).alias("score_sum"),
        F.count(score).alias("scored"),
    )
    counted = F.collect_list(
        F.when(F.col("week_start").isNotNull(), F.struct("week_start", F.col("enrolment_count").alias("count")))
    )
    per_batch = per_week.groupBy("batch_id").agg(
        *[F.sum(name).alias(name) for name in COUNTS],
        F.try_sum("score_sum").alias("score_sum"),
        F.sum("scored").alias("scored"),
        counted.alias("weeks"),
    )
    first, last = F.array_min("weeks")["week_start"], F.array_max("weeks")["week_start"]
    by_week = F.map_from_entries("weeks")
    every_week = F.transform(
        F.sequence(first, last, F.expr("INTERVAL 7 DAYS")),
        lambda w: F.struct(
            F.date_format(w, "yyyy-MM-dd").alias("week_start"),
            F.coalesce(F.try_element_at(by_week, w), F.lit(0)).alias("count"),
        ),
    )
    return per_batch.select(
        "batch_id",
        *COUNTS,
        every_week.alias("weekly_enrolments"),
        F.round(F.try_divide("score_sum", "scored"), 2).cast("double").alias("average_total_score"),
    )


def transform(
    courses: DataFrame,
    batches: DataFrame,
    contents: DataFrame,
    enrolments: DataFrame,
    attempts: DataFrame,
    changed: list[str] | None = None,
) -> tuple[DataFrame, DataFrame]:
    """One row per course, and one per batch of a known course with its figures (batch_figures).

    `changed`: the only batches whose figures are computed (None: every batch). The
    others' figure columns are null, and `figures_computed` says which are which.
    """
    courses = one_course_each(courses).select(
        "course_id",
        "name",
        "channel",
        "created_by",
        "status",
        F.coalesce("user_consent_required", F.lit(False)).alias("user_consent_required"),
    )
    known = known_batches(courses, batches)
    todo = known
    if changed is not None:  # the others' figures are the dashboard's already; the rest of the lake is not read
        todo = known.filter(F.col("batch_id").isin(changed))
        enrolments = enrolments.filter(F.col("batch_id").isin(changed))
        attempts = attempts.filter(F.col("batch_id").isin(changed))
    # Every such batch's progress report, as if each were requested tonight: the same learners and formulas.
    of_batches = learners(todo.select("batch_id", "course_id"), batches, enrolments)
    figures = batch_figures(learner_progress(of_batches, batches, contents, attempts))
    computed = F.lit(True) if changed is None else F.col("batch_id").isin(changed)
    no_weeks = F.array().cast("array<struct<week_start:string,count:bigint>>")
    batches = known.join(figures, "batch_id", "left").select(
        "batch_id",
        "course_id",
        "name",
        "start_date",
        "end_date",
        "created_by",
        "mentors",
        *[F.when(computed, F.coalesce(name, F.lit(0))).alias(name) for name in COUNTS],
        F.when(computed, F.coalesce("weekly_enrolments", no_weeks)).alias("weekly_enrolments"),
        "average_total_score",
        computed.alias("figures_computed"),
    )
    return courses, batches


def known_batches(courses: DataFrame, batches: DataFrame) -> DataFrame:
    """The batches that have figures: one row per batch id (the latest), of a course in the lake."""
    return one_batch_each(batches).join(
        courses.filter(F.col("course_id").isNotNull()).select("course_id"), "course_id", "left_semi"
    )


DIGEST = ("rows", "hash_sum", "hash_xor")


def _row_hash(df: DataFrame) -> Column:
    """A 64-bit hash of a whole row. Each value is followed by whether it is null: a null
    adds nothing to xxhash64, so without it a null and its neighbour's value could trade places unseen."""
    parts = []
    for field in df.schema.fields:
        column = F.col(f"`{field.name}`")
        if field.dataType.typeName() == "map":
            column = F.map_entries(column)  # Spark hashes no map; its entries in the file's order
        parts += [column, column.isNull()]
    return F.xxhash64(*parts)


def _digest(df: DataFrame, key: str) -> DataFrame:
    """Per value of `key`: its rows' count, and two sums of their hashes that ignore the rows' order.

    The 31-bit sum cannot overflow below 2^32 rows; the xor keeps the other 33 bits.
    """
    row_hash = _row_hash(df)
    return df.groupBy(key).agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(row_hash.bitwiseAND(F.lit(0x7FFFFFFF))).alias("hash_sum"),
        F.bit_xor(row_hash).alias("hash_xor"),
    )


def fingerprints(
    courses: DataFrame, batches: DataFrame, contents: DataFrame, enrolments: DataFrame, attempts: DataFrame
) -> DataFrame:
    """batch_id and figures_fingerprint of every batch that has figures (known_batches).

    A digest of every lake row its figures are computed from: every row of its id in
    `batches` (not only the one kept), its course's contents, its enrolments and its
    attempts, with FIGURES_VERSION. Equal fingerprints, equal figures. One narrow pass
    over each table: a hash and a grouped sum per row, no sort.
    """
    parts = [F.lit(FIGURES_VERSION)]
    rows = known_batches(courses, batches).select("batch_id", "course_id")
    sources = [("batch_id", batches), ("course_id", contents), ("batch_id", enrolments), ("batch_id", attempts)]
    for i, (key, table) in enumerate(sources):
        digest = _digest(table, key).select(key, *[F.col(c).alias(f"{c}_{i}") for c in DIGEST])
        rows = rows.join(digest, key, "left")
        parts += [F.coalesce(F.col(f"{c}_{i}").cast("string"), F.lit("-")) for c in DIGEST]
    return rows.select("batch_id", F.sha2(F.concat_ws(":", *parts), 256).alias("figures_fingerprint"))


def load(
    courses: DataFrame,
    batches: DataFrame,
    skipped_rows: dict[str, DataFrame],
    out: str,
    lake_uri: str,
    listing: lakefiles.Listing | None,
) -> None:
    """The figures; then, if the lake was listed before they read it (`listing`), the tables changed since
    (FIGURES_LAKE_FILE); then the skipped rows, last, for coursedash.sync to know the folder is whole."""
    courses.coalesce(1).write.mode("overwrite").parquet(f"{out}/courses")
    batches.coalesce(1).write.mode("overwrite").parquet(f"{out}/batches")
    # One query for every count: each is a single row.
    (row,) = reduce(
        DataFrame.crossJoin, [df.select(F.col("n").alias(f"n{i}")) for i, df in enumerate(skipped_rows.values())]
    ).collect()
    counts = dict(zip(skipped_rows, row, strict=True))
    if listing is not None:
        changed = lakefiles.changed(listing, lakefiles.snapshot(lake_uri, listing))
        (Path(out) / FIGURES_LAKE_FILE).write_text(json.dumps({"changed": changed}), encoding="utf-8")
    (Path(out) / SKIPPED_FILE).write_text(json.dumps({k: v for k, v in counts.items() if v}), encoding="utf-8")


def build(spark: SparkSession, lake_uri: str, out: str) -> None:
    """Read the tables of TABLES whole and write the figures of every batch whose rows changed to `out`.

    The batches whose fingerprint is in `out`'s FIGURES_KNOWN_FILE keep the dashboard's
    figures (their figure columns are null here); without that file, every batch is computed.
    """
    for name in (FIGURES_LAKE_FILE, SKIPPED_FILE):  # an earlier try's: the folder is whole again only at the end
        (Path(out) / name).unlink(missing_ok=True)
    # Before the first read, to be compared with the lake once the figures are written (docs/lake.md).
    listing = lakefiles.snapshot(lake_uri, [FRAMES[name][0] for name in TABLES])
    frames = extract(spark, lake_uri)
    # The two small tables serve every query here (the figures, the rows sync skips): kept
    # after one read. One job fills both caches first; unfilled, each query that reads a
    # table in several places would read it again in each.
    small = {name: frames[name].persist() for name in ("courses", "batches")}
    prints = fingerprints(**frames).persist()  # one row per batch: read twice, computed once
    try:
        both = small["courses"].select(F.lit(1).alias("row")).unionAll(small["batches"].select(F.lit(1).alias("row")))
        log.info("lake tables courses and batches: %d row(s)", both.count())
        with described(spark, "dashboard figures: the lake rows' fingerprints"):
            current: dict[str, str] = {row["batch_id"]: row["figures_fingerprint"] for row in prints.collect()}
        known = _known(Path(out))
        changed = sorted(batch for batch, fingerprint in current.items() if known.get(batch) != fingerprint)
        log.info(
            "figures to compute: %d of %d batches (new, or their lake rows changed); the dashboard keeps the others'",
            len(changed),
            len(current),
        )
        courses, batches = transform(**frames, changed=None if len(changed) == len(current) else changed)
        batches = batches.join(prints, "batch_id", "left")
        load(courses, batches, skipped(frames["courses"], frames["batches"], courses), out, lake_uri, listing)
    finally:
        for df in (*small.values(), prints):
            df.unpersist()
    log.info("dashboard figures written to %s", out)


def _known(out: Path) -> dict[str, str]:
    """The fingerprints of the figures the dashboard holds, by batch id: none when the caller gave none."""
    path = out / FIGURES_KNOWN_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
