"""Data-quality suites for the lake tables and the reports (docs/lake.md, docs/reports.md), in code.

Great Expectations 1.x validates Spark DataFrames here, in memory: an ephemeral context
(no files, no GX Cloud; 1.24 has no usage-statistics code left to switch off), one Spark
data source with `persist=False` (the caller persists; GX's default would `persist()`
every frame it sees and never unpersist it), one asset per suite and a whole-dataframe
batch definition fed through `batch_parameters={"dataframe": df}`.

The suites hold only what those pages guarantee. The lake is dirty by design, so
every lake expectation is row-level: a failing lake outcome counts rows the reports drop
or pass through (each expectation names its note in `meta["note"]`, see schemas.notes),
it never says the data cannot be used. The report suite is what blocks a report.

Validation costs three Spark queries over the frame, whatever the suite and the dirt,
and the frame is persisted for them (narrowed, for a lake table, to the columns the
checks and their examples read):
1. GX validates the whole suite with result_format BOOLEAN_ONLY. GX bundles every
   column-map expectation of a frame into one aggregate query (two queries in all: row
   count, then the unexpected counts). So a key's uniqueness and a score's maximum are
   checked as column-map expectations on derived columns (`_unique`, `_at_most`) and
   join that query, where GX's compound-unique and column-pair expectations would cost
   two more passes each.
2. One grouped query of ours counts the rows and, for each expectation GX found
   failing, its unexpected rows per value of `by` (the request), with the smallest such
   row as the example for the log (`_unexpected` states each expectation's condition as
   GX counts it). GX's own SUMMARY or COMPLETE formats would cost more queries per
   failing expectation, and COMPLETE collects every unexpected row to the driver.
Table-level expectations (the report's column list) cost no Spark job at all.

Importing this module is cheap: Great Expectations (several seconds to import) is only
imported on the first validation.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from schemas.lake import PII_COLUMNS, TABLES
from schemas.reports import COLUMNS, FORMULA_START_RE, PROGRESS_COLUMNS, USERINFO_COLUMNS

log = logging.getLogger("coursedash.quality")

MAX_EXAMPLES = 5  # example rows in the log, per failing expectation

# --- the lake (docs/lake.md) --------------------------------------------------------

# Columns every row must have; also the columns that identify a row in examples.
LAKE_KEYS: dict[str, tuple[str, ...]] = {
    "courses": ("course_id",),
    "batches": ("batch_id", "course_id"),
    "course_contents": ("course_id", "content_id"),
    "enrolments": ("user_id", "batch_id"),
    "assessment_attempts": ("user_id", "batch_id", "content_id", "attempt_id"),
    "question_responses": ("user_id", "batch_id", "content_id", "attempt_id", "question_id"),
    "users": ("user_id",),
    "user_consents": ("user_id", "course_id"),
}

LAKE_NOTE_PREFIX = {
    "courses": "courses",
    "batches": "batches",
    "course_contents": "contents",
    "enrolments": "enrolments",
    "assessment_attempts": "attempts",
    "question_responses": "responses",
    "users": "users",
    "user_consents": "consents",
}
# The note code of a null key (schemas.notes).
LAKE_KEY_NOTES = {
    ("course_contents", "content_id"): "contents.no_id",
    ("enrolments", "user_id"): "enrolments.no_learner",
    ("assessment_attempts", "user_id"): "attempts.no_learner",
    ("assessment_attempts", "content_id"): "attempts.no_content",
    ("assessment_attempts", "attempt_id"): "attempts.no_id",
    ("question_responses", "user_id"): "responses.no_learner",
    ("question_responses", "content_id"): "responses.no_content",
    ("question_responses", "attempt_id"): "responses.no_attempt",
    ("question_responses", "question_id"): "responses.no_question",
}
# What identifies one row; a repeat is resolved by the table's duplicate rule (README).
# Consents keep their history, so they have none.
LAKE_UNIQUE: dict[str, tuple[str, ...]] = {
    "courses": ("course_id",),
    "batches": ("batch_id",),
    "course_contents": ("course_id", "content_id"),
    "enrolments": ("batch_id", "user_id"),
    "assessment_attempts": ("batch_id", "user_id", "content_id", "attempt_id"),
    "question_responses": ("batch_id", "user_id", "content_id", "attempt_id", "question_id"),
    "users": ("user_id",),
}
CONTENT_STATUS_KNOWN = "content_status_known"  # derived: every content_status value is 0, 1 or 2
REPEATS = "_repeats"  # derived: the row's key, all of it present, is on another row too (see _unique)

# Enumerated columns: (column, allowed values). Nulls are not checked here.
LAKE_VALUE_SETS: dict[str, tuple[tuple[str, list], ...]] = {
    "courses": (("status", ["Live", "Retired", "Draft"]),),
    "users": (("status", [0, 1, 2]),),
    "user_consents": (("status", ["ACTIVE", "REVOKED"]),),
}

# --- the reports (docs/reports.md) --------------------------------------------------

REPORT_KEYS = ("Collection Id", "Batch Id", "User UUID")
# One row per learner (and in the response report per attempt and question) of a request.
REPORT_ROW_KEYS = {
    "progress": ("User UUID",),
    "userinfo": ("User UUID",),
    "response": ("User UUID", "QuestionSet Id", "Attempt Id", "Question Id"),
}
REQUEST = "request_id"  # the optional first column of a validated report frame
# Names that must never be a column of a progress or response report: the lake's PII
# columns and the userinfo report's PII headers.
PII_HEADERS = (*PII_COLUMNS, "User Name", "Email ID", "Mobile Number")
# Report columns whose values are PII: failures on them show the row's User UUID only.
PII_REPORT_COLUMNS = frozenset({"User Name", "Email ID", "Mobile Number"})

PROGRESS_RE = r"^(100|[1-9]?[0-9])$"  # an integer 0-100, no sign, no leading zero
# Two decimals; not bounded: 18 of 15 is 120.00, a negative maximum gives a negative
# share (the lake suites note such rows; the report shows them as computed).
PERCENT_RE = r"^-?(0|[1-9][0-9]*)\.[0-9]{2}$"
PLAIN_NUMBER_RE = r"^-?[0-9]+(\.[0-9]+)?$"  # a plain decimal: no exponent, no grouping
DATE_RE = r"^[0-9]{2}/[0-9]{2}/[0-9]{4}$"  # dd/mm/yyyy
DATETIME_RE = r"^[0-9]{2}/[0-9]{2}/[0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}$"  # dd/mm/yyyy HH:MM:SS

REPORT_FORMATS = {
    "progress": (
        ("Enrolment Date", DATE_RE, "dd/mm/yyyy"),
        ("Completion Date", DATE_RE, "dd/mm/yyyy"),
    ),
    "userinfo": (("Consent Provided Date", DATE_RE, "dd/mm/yyyy"),),
    "response": (
        ("Attempted On", DATETIME_RE, "dd/mm/yyyy HH:MM:SS"),
        ("Question Duration", PLAIN_NUMBER_RE, "a plain decimal"),
        ("Question Score", PLAIN_NUMBER_RE, "a plain decimal"),
        ("Question Max Score", PLAIN_NUMBER_RE, "a plain decimal"),
    ),
}

# Text cells taken from the lake's string columns: guarded against formula injection.
REPORT_TEXT = {
    "progress": PROGRESS_COLUMNS[:15],  # Collection Id .. Declared Board
    "userinfo": USERINFO_COLUMNS[:17],  # Collection Id .. Mobile Number
    # Every column but its time and its numbers (REPORT_FORMATS).
    "response": tuple(c for c in COLUMNS["response"] if c not in {name for name, _, _ in REPORT_FORMATS["response"]}),
}


@dataclass
class Failure:
    expectation: str  # e.g. "expect_column_values_to_not_be_null"
    column: str | None
    description: str  # e.g. "user_id must not be null"
    unexpected_count: int | None
    examples: list = field(default_factory=list)  # up to 5 unexpected values or rows
    note: str | None = None  # the schemas.notes code of a row-level failure
    # Unexpected rows per value of the `by` column validated with; None: not by row.
    by_scope: dict[str, int] | None = None

    def describe(self) -> str:
        where = f" [{self.column}]" if self.column else ""
        count = "" if self.unexpected_count is None else f": {self.unexpected_count} unexpected"
        lines = [f"- {self.description} ({self.expectation}{where}){count}"]
        lines += [f"    e.g. {example!r}" for example in self.examples]
        return "\n".join(lines)


@dataclass
class Outcome:
    name: str  # suite name, e.g. "lake.enrolments" or "report.progress"
    success: bool
    failures: list[Failure] = field(default_factory=list)
    rows: int | None = None  # rows validated

    def describe(self) -> str:
        """Text for the DAG log: every failing expectation, its count and examples."""
        if self.success:
            return f"{self.name}: all expectations met"
        head = f"{self.name}: {len(self.failures)} expectation(s) failed"
        return "\n".join([head, *(f.describe() for f in self.failures)])


# --- suites ---------------------------------------------------------------------------


def lake_expectations(table: str, by: str | None = None) -> list:
    """The lake table's expectations (GX Expectation objects).

    Every one is row-level: a row that breaks it is dropped or passed through by the
    report's formulas, and counted under its `meta["note"]` (a code of schemas.notes).
    `by`: the frame holds a copy of the rows per value of this column (per request),
    so a row repeats another only within the same value.
    """
    if table not in TABLES:
        raise KeyError(f"no lake table {table!r}")
    gxe = _gx().expectations

    def noted(expectation, note):
        expectation.meta = {"note": note}
        return expectation

    def not_null(column, note):
        return noted(gxe.ExpectColumnValuesToNotBeNull(column=column, description=f"{column} must not be null"), note)

    def unique(columns, note):
        return noted(_unique(f"({', '.join(c for c in columns if c != by)}) must be unique"), note)

    def at_least(column, minimum, note, strict=False):
        return noted(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=minimum,
                strict_min=strict,
                description=f"{column} must be {'above' if strict else 'at least'} {minimum}",
            ),
            note,
        )

    prefix = LAKE_NOTE_PREFIX[table]
    # A null key the night's frames are pruned or joined by keeps its row out of every
    # report (note None: only the run's log tells of it).
    exps = [not_null(c, LAKE_KEY_NOTES.get((table, c))) for c in LAKE_KEYS[table]]
    for column, values in LAKE_VALUE_SETS.get(table, ()):
        exps.append(
            noted(
                gxe.ExpectColumnValuesToBeInSet(
                    column=column,
                    value_set=values,
                    description=f"{column} must be one of {', '.join(map(str, values))} (or null)",
                ),
                f"{prefix}.unknown_{column}",
            )
        )
    if table in LAKE_UNIQUE:
        exps.append(unique(LAKE_UNIQUE[table], f"{prefix}.duplicate"))
    if table == "course_contents":
        exps.append(not_null("position", "contents.no_position"))
    if table == "enrolments":
        exps.append(not_null("active", "enrolments.no_active_flag"))
        # GX 1.24 has no expectation on map values: validate_lake derives this column.
        exps.append(
            noted(
                gxe.ExpectColumnValuesToBeInSet(
                    column=CONTENT_STATUS_KNOWN,
                    value_set=[True],
                    description="content_status values must be 0, 1 or 2",
                ),
                "enrolments.unknown_content_status",
            )
        )
    if table == "assessment_attempts":
        exps += [
            noted(_at_most(*AT_MOST[table]), "attempts.above_max"),
            at_least("total_score", 0, "attempts.negative_score"),
            at_least("total_max_score", 0, "attempts.negative_max"),
            noted(
                gxe.ExpectColumnValuesToNotBeInSet(
                    column="total_max_score",
                    value_set=[0],
                    description="total_max_score must not be 0",
                ),
                "attempts.zero_max",
            ),
        ]
    if table == "question_responses":
        exps += [
            noted(_at_most(*AT_MOST[table]), "responses.above_max"),
            at_least("max_score", 0, "responses.negative_max"),
        ]
    return exps


def _unique(description: str):
    """Rows unique by their key: checked on the column `_mark_repeats` derives.

    As a column-map expectation it joins the frame's one query of row checks; GX's
    compound-unique expectation would cost two more passes over the frame.
    """
    return _gx().expectations.ExpectColumnValuesToBeInSet(column=REPEATS, value_set=[False], description=description)


def _mark_repeats(df, key: list[str]):
    """`df` with REPEATS: whether another row has the same key; null where part of the key is
    missing (no repeat: the not-null expectations count such a row)."""
    from functools import reduce

    from pyspark.sql import functions as F
    from pyspark.sql.window import Window

    complete = reduce(lambda a, b: a & b, [F.col(_quote(c)).isNotNull() for c in key])
    repeated = F.count(F.lit(1)).over(Window.partitionBy(*[F.col(_quote(c)) for c in key])) > 1
    return df.withColumn(REPEATS, F.when(complete, repeated))


# Derived by validate_lake: a <= b where both are present, null (not checked) otherwise.
AT_MOST = {
    "assessment_attempts": ("total_score", "total_max_score"),
    "question_responses": ("score", "max_score"),
}
WITHIN_MAX = "_within_max"
# Columns validation adds to a frame: never shown as part of an example row.
DERIVED = (REPEATS, WITHIN_MAX, CONTENT_STATUS_KNOWN)


def _at_most(a: str, b: str):
    """a <= b where both are present: checked on the column validate_lake derives (WITHIN_MAX).

    Like `_unique`, so that it joins the frame's one query of row checks; GX's
    column-pair expectation would cost two more passes.
    """
    return _gx().expectations.ExpectColumnValuesToBeInSet(
        column=WITHIN_MAX, value_set=[True], description=f"{a} must not exceed {b}"
    )


def report_expectations(
    report_type: str,
    header: list[str],
    gx_name=lambda column: column,
    by_request: bool = False,
    derived: tuple[str, ...] = (),
) -> list:
    """The report's expectations (GX Expectation objects); every one blocks the report.

    `gx_name` gives the name GX knows a column by (see `_gx_names`); descriptions keep
    the report's own names. `by_request`: the frame holds several requests' rows, told
    apart by a first column `request_id`. `derived`: columns validation added after the
    report's own (REPEATS).
    """
    if report_type not in COLUMNS:
        raise KeyError(f"no report type {report_type!r}")
    gxe = _gx().expectations
    columns = list(header) if report_type == "progress" else list(COLUMNS[report_type])

    def not_empty(c):
        return gxe.ExpectColumnValuesToNotBeNull(column=gx_name(c), description=f"{c} must not be empty")

    def matches(c, regex, what):
        return gxe.ExpectColumnValuesToMatchRegex(column=gx_name(c), regex=regex, description=f"{c} must be {what}")

    request = [REQUEST] if by_request else []
    exps = [
        gxe.ExpectTableColumnsToMatchOrderedList(
            column_list=request + [gx_name(c) for c in columns] + list(derived),
            description=f"the columns must be exactly the {report_type} report's, in order",
        )
    ]
    exps += [not_empty(c) for c in REPORT_KEYS]
    keys = REPORT_ROW_KEYS[report_type]
    exps.append(_unique(f"one row per {' x '.join(keys)}"))
    if report_type == "progress":
        exps += [
            not_empty("Progress"),
            matches("Progress", PROGRESS_RE, "an integer from 0 to 100"),
            gxe.ExpectColumnValuesToBeInSet(
                column=gx_name("Certificate Status"),
                value_set=["Issued"],
                description="Certificate Status must be Issued or empty",
            ),
        ]
        exps += [
            matches(c, PERCENT_RE, "empty or 0.00 to 100.00 with two decimals")
            for c in ["Total Score", *columns[len(PROGRESS_COLUMNS) :]]
        ]
    if report_type == "userinfo":
        exps += [
            not_empty("Consent Provided"),
            gxe.ExpectColumnValuesToBeInSet(
                column=gx_name("Consent Provided"), value_set=["Yes"], description="Consent Provided must be Yes"
            ),
        ]
    # response: "Question Score <= Question Max Score" is not checked on the report's
    # strings (a string comparison is wrong, and a cast column would change the column
    # list checked above); the lake suite checks score <= max_score on the source doubles
    # and the report copies them as plain decimals, which is checked here.
    exps += [matches(c, regex, f"empty or {what}") for c, regex, what in REPORT_FORMATS[report_type]]
    exps += [
        gxe.ExpectColumnValuesToNotMatchRegex(
            column=gx_name(c),
            regex=FORMULA_START_RE,
            description=f"{c} must not start with = + - @ tab or CR (spreadsheet formula injection)",
        )
        for c in REPORT_TEXT[report_type]
    ]
    return exps


def header_problems(report_type: str, header: list[str]) -> list[Failure]:
    """What GX cannot see from the frame alone: the header itself is docs/reports.md's."""
    header = list(header)
    problems = []
    pii = [c for c in header if c in PII_HEADERS]
    if report_type in ("progress", "response") and pii:
        problems.append(
            Failure(
                "no_pii_columns", None, f"a {report_type} report must have no PII column", len(pii), pii[:MAX_EXAMPLES]
            )
        )
    if report_type == "progress":
        fixed = header[: len(PROGRESS_COLUMNS)]
        if fixed != list(PROGRESS_COLUMNS):
            problems.append(
                Failure(
                    "header_starts_with_progress_columns",
                    None,
                    "the progress header must start with the fixed columns of docs/reports.md",
                    None,
                    _mismatches(list(PROGRESS_COLUMNS), fixed),
                )
            )
        extra = [c for c in header[len(PROGRESS_COLUMNS) :] if not c.endswith(" - Score")]
        if extra:
            problems.append(
                Failure(
                    "assessment_headers_end_with_score",
                    None,
                    "every column after the fixed ones must be an '<assessment name> - Score' column",
                    len(extra),
                    extra[:MAX_EXAMPLES],
                )
            )
    elif header != list(COLUMNS[report_type]):
        problems.append(
            Failure(
                "header_matches_documented_columns",
                None,
                f"the {report_type} header must be the columns of docs/reports.md",
                None,
                _mismatches(list(COLUMNS[report_type]), header),
            )
        )
    return problems


def _mismatches(expected: list[str], found: list[str]) -> list[dict]:
    n = max(len(expected), len(found))
    pairs = [
        {
            "position": i,
            "expected": expected[i] if i < len(expected) else None,
            "found": found[i] if i < len(found) else None,
        }
        for i in range(n)
        if (expected[i] if i < len(expected) else None) != (found[i] if i < len(found) else None)
    ]
    return pairs[:MAX_EXAMPLES]


# --- validation -------------------------------------------------------------------------


def validate_lake(table: str, df, by: str | None = None) -> Outcome:
    """Validate a Spark DataFrame of a lake table (already pruned to the night's batches).

    With `by` (a column of `df`, e.g. request_id), each failure counts its rows per value.
    """
    from pyspark.sql import functions as F

    index_columns = [c for c in LAKE_KEYS[table] if c in df.columns]
    if table == "enrolments" and "content_status" in df.columns:
        known = F.forall(F.map_values("content_status"), lambda v: v.isin(0, 1, 2))
        df = df.withColumn(CONTENT_STATUS_KNOWN, known)
    real = {}
    if table in AT_MOST:
        a, b = AT_MOST[table]
        index_columns += [a, b]  # an example row shows the two values
        df = df.withColumn(WITHIN_MAX, F.when(F.col(a).isNotNull() & F.col(b).isNotNull(), F.col(a) <= F.col(b)))
        real[WITHIN_MAX] = f"{a}, {b}"
    if table in LAKE_UNIQUE:
        key = [*([by] if by else []), *LAKE_UNIQUE[table]]
        df = _mark_repeats(df, key)
        real[REPEATS] = ", ".join(key)
    expectations = lake_expectations(table, by)
    # Only what the checks and their examples read is kept for the passes.
    wanted = [by, *index_columns, *(getattr(e, "column", None) for e in expectations)]
    df = df.select(*[_quote(c) for c in dict.fromkeys(wanted) if c is not None and c in df.columns])
    return _validate(f"lake.{table}", expectations, df, index_columns, real, by=by)


def validate_report(report_type: str, header: list[str], df) -> Outcome:
    """Validate a report as it will be written: one string column per header name.

    An empty string and a null are the same empty CSV cell, so both count as empty.
    A first column `request_id` holds several requests' reports: each failure then
    counts its rows per request (`Failure.by_scope`).
    """
    from pyspark.sql import functions as F

    problems = header_problems(report_type, header)
    pii = [c for c in df.columns if c in PII_HEADERS]
    already = any(p.expectation == "no_pii_columns" for p in problems)
    if report_type in ("progress", "response") and pii and not already:
        problems.append(
            Failure(
                "no_pii_columns", None, f"a {report_type} report must have no PII column", len(pii), pii[:MAX_EXAMPLES]
            )
        )
    names = _gx_names([*header, *COLUMNS[report_type], *df.columns])
    # Expectations on a column the frame lacks would only raise; the column list
    # expectation already reports the missing column.
    by = REQUEST if df.columns[:1] == [REQUEST] else None
    cells = df.select(*[F.nullif(F.col(_quote(c)), F.lit("")).alias(names[c]) for c in df.columns])
    present = {names[c] for c in df.columns}
    real = {gx_name: column for column, gx_name in names.items()}
    key = [*([by] if by else []), *(names[c] for c in REPORT_ROW_KEYS[report_type])]
    derived: tuple[str, ...] = ()
    if set(key) <= present:  # else the column list expectation tells what is missing
        cells = _mark_repeats(cells, key)
        present.add(REPEATS)
        real[REPEATS] = ", ".join(real.get(c, c) for c in key)
        derived = (REPEATS,)
    expectations = [
        e
        for e in report_expectations(report_type, header, names.__getitem__, by is not None, derived)
        if getattr(e, "column", None) in (None, *present)
    ]
    index_columns = ["User UUID"] if "User UUID" in present else []
    outcome = _validate(f"report.{report_type}", expectations, cells, index_columns, real, by=by)
    outcome.failures = problems + outcome.failures
    outcome.success = outcome.success and not problems
    return outcome


def _gx_names(columns: list[str]) -> dict[str, str]:
    """A name GX can use for each column (assessment names come from course authors).

    GX on Spark reads a dot in a column name as struct access and cannot handle a
    backtick at all, so those characters become "_" (numbered if that collides).
    """
    names: dict[str, str] = {}
    used = {c for c in columns if not _UNSAFE.search(c)}
    for c in columns:
        if c in names:
            continue
        if not _UNSAFE.search(c):
            names[c] = c
            continue
        base = safe = _UNSAFE.sub("_", c)
        n = 1
        while safe in used:
            n += 1
            safe = f"{base} #{n}"
        used.add(safe)
        names[c] = safe
    return names


_UNSAFE = re.compile(r"[.`]")


def _quote(column: str) -> str:
    return "`" + column.replace("`", "``") + "`"


def _validate(
    name: str, expectations: list, df, index_columns: list[str], real: dict | None = None, by: str | None = None
) -> Outcome:
    """GX decides which expectations fail (BOOLEAN_ONLY); one more query counts the rows and theirs.

    The frame is persisted for the three queries: GX's row count and its aggregate of
    every row check, then one grouped query that counts the rows and, for each failing
    row check, its unexpected rows per value of `by` (all rows together without it),
    keeping the smallest unexpected row of each as its example.
    """
    gx = _gx()
    for i, exp in enumerate(expectations):
        exp.meta = {**(exp.meta or {}), "check": i}  # to find it again in the results
    df = df.persist()
    try:
        batch = _batch_definition(name).get_batch(batch_parameters={"dataframe": df})
        first = batch.validate(gx.ExpectationSuite(name=name, expectations=expectations), result_format="BOOLEAN_ONLY")
        results = sorted((r for r in first.results if not r.success), key=lambda r: r.expectation_config.meta["check"])
        checkable = {
            r.expectation_config.meta["check"]: expectations[r.expectation_config.meta["check"]]
            for r in results
            if _exception_message(r.exception_info) is None
        }
        rows, found = _unexpected_rows(df, checkable, index_columns, by)
    finally:
        df.unpersist()
    failures = [
        _failure(r, found.get(r.expectation_config.meta["check"]), df.columns, index_columns, real or {}, by)
        for r in results
    ]
    return Outcome(name, first.success, failures, rows)


def _unexpected(expectation):
    """The rows GX finds unexpected for one of our row checks, as a Spark condition.

    As GX counts them: a null is unexpected to the not-null check only. None for a
    table-level expectation (the column list), which has no rows to count.
    """
    from pyspark.sql import functions as F

    column = getattr(expectation, "column", None)
    if column is None:
        return None
    c = F.col(_quote(column))
    kind = expectation.expectation_type
    if kind == "expect_column_values_to_not_be_null":
        return c.isNull()
    if kind == "expect_column_values_to_be_in_set":
        found = ~c.isin(list(expectation.value_set))
    elif kind == "expect_column_values_to_not_be_in_set":
        found = c.isin(list(expectation.value_set))
    elif kind == "expect_column_values_to_be_between" and expectation.max_value is None:
        found = c <= expectation.min_value if expectation.strict_min else c < expectation.min_value
    elif kind == "expect_column_values_to_match_regex":
        found = ~c.rlike(expectation.regex)
    elif kind == "expect_column_values_to_not_match_regex":
        found = c.rlike(expectation.regex)
    else:
        raise ValueError(f"no row condition for {kind}")
    return c.isNotNull() & found


def _unexpected_rows(
    df, checks: dict[int, Any], index_columns: list[str], by: str | None
) -> tuple[int, dict[int, dict]]:
    """The frame's rows, and per failing row check {scope: (rows, example)}, in one query.

    The scope is a value of `by`, or None without it. The example is the smallest
    unexpected row (its index columns and the checked column, derived columns left
    out): the same one however the frame is partitioned.
    """
    from pyspark.sql import functions as F

    conditions = {i: _unexpected(e) for i, e in checks.items()}
    conditions = {i: c for i, c in conditions.items() if c is not None}
    aggregates = [F.count(F.lit(1)).alias("rows")]
    for i, condition in conditions.items():
        shown = list(dict.fromkeys([*index_columns, checks[i].column]))
        shown = [c for c in shown if c not in (by, *DERIVED) and c in df.columns]
        example = F.struct(*[F.col(_quote(c)).alias(c) for c in shown]) if shown else F.lit(None)
        aggregates += [
            F.count_if(condition).alias(f"rows_{i}"),
            F.min(F.when(condition, example)).alias(f"example_{i}"),
        ]
    grouped = df.groupBy(F.col(_quote(by))) if by else df.groupBy()
    rows = 0
    found: dict[int, dict] = {i: {} for i in conditions}
    for row in grouped.agg(*aggregates).collect():
        rows += row["rows"]
        scope = row[0] if by else None
        for i in conditions:
            if row[f"rows_{i}"]:
                example = row[f"example_{i}"]
                found[i][scope] = (row[f"rows_{i}"], example.asDict() if example is not None else None)
    return rows, found


def _failure(
    result, found: dict | None, columns: list[str], index_columns: list[str], real: dict[str, str], by: str | None
) -> Failure:
    """A failed GX result as a Failure, with the report's own column names (`real`).

    `found`: the check's unexpected rows per scope, from `_unexpected_rows`; `columns`:
    the validated frame's.
    """
    config = result.expectation_config
    kwargs = config.kwargs
    note = (config.meta or {}).get("note")

    def named(column):
        return real.get(column, column)

    column = named(kwargs["column"]) if "column" in kwargs else None
    description = config.description or config.type
    error = _exception_message(result.exception_info)
    if error is not None:
        return Failure(config.type, column, f"{description} (could not be checked: {error})", None, [], note)
    if config.type == "expect_table_columns_to_match_ordered_list":
        observed = [named(c) for c in columns if c not in DERIVED]
        expected = [named(c) for c in kwargs["column_list"] if c not in DERIVED]
        examples = _mismatches(expected, observed)
        return Failure(config.type, None, description, len(examples) or None, examples, note)
    if not found:
        log.warning("%s failed, but no row breaks it: its row condition disagrees with Great Expectations", description)
        return Failure(config.type, column, description, None, [], note)
    scopes = sorted(found, key=lambda s: (s is None, s))
    examples = []
    for s in scopes:  # the scopes may hold copies of one row: each example once
        example = {named(k): v for k, v in (found[s][1] or {}).items()}
        if example and example not in examples:
            examples.append(example)
    examples = examples[:MAX_EXAMPLES]
    if column in PII_REPORT_COLUMNS:
        # The log is no place for a learner's name, email or phone: name the row only.
        examples = [{k: v for k, v in row.items() if k in index_columns} for row in examples]
        examples = [row for row in examples if row]
    by_scope = {s: n for s, (n, _) in found.items()} if by else None
    return Failure(config.type, column, description, sum(n for n, _ in found.values()), examples, note, by_scope)


def _exception_message(info) -> str | None:
    """The first line of the error GX caught, if any (flat, or keyed by metric in 1.x)."""
    if not info:
        return None
    found = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    for entry in found:
        if entry.get("raised_exception"):
            return (str(entry.get("exception_message") or "error").splitlines() or ["error"])[0]
    return None


# --- the Great Expectations context ------------------------------------------------------

_lock = threading.Lock()
_state: dict[str, Any] = {}


def _gx():
    """great_expectations, imported on first use (it takes seconds) with its chatter off."""
    if "gx" not in _state:
        with _lock:
            if "gx" not in _state:
                # Set before the import: GX logs dozens of INFO lines while importing.
                logging.getLogger("great_expectations").setLevel(logging.WARNING)
                # GX tries to import pyspark's Spark Connect session, and pyspark 4 calls
                # sys.exit(0) there when the main module looks like a doctest run
                # (`python -c`, a script on stdin): the process would end, "successfully",
                # mid-validation. Looking interactive for the import makes it a plain
                # ImportError, which GX handles (classic Spark only).
                main = sys.modules.get("__main__")
                doctest_like = (
                    main is not None
                    and getattr(main, "__spec__", None) is None
                    and not hasattr(main, "__file__")
                    and not hasattr(sys, "ps1")
                )
                if doctest_like:
                    sys.ps1 = ""
                try:
                    import great_expectations as gx
                    import great_expectations.expectations  # noqa: F401  (gx.expectations)
                finally:
                    if doctest_like:
                        del sys.ps1

                _state["gx"] = gx
    return _state["gx"]


def import_in_background() -> None:
    """Start importing Great Expectations in a thread: it overlaps the Spark work before the first suite."""
    threading.Thread(target=_gx, name="import-great-expectations", daemon=True).start()


def _batch_definition(asset_name: str):
    """A whole-dataframe batch definition of the asset `asset_name`, made once per process."""
    gx = _gx()
    with _lock:
        if "source" not in _state:
            from great_expectations.data_context.types.base import (
                DataContextConfig,
                InMemoryStoreBackendDefaults,
                ProgressBarsConfig,
            )

            config = DataContextConfig(
                store_backend_defaults=InMemoryStoreBackendDefaults(),
                progress_bars=ProgressBarsConfig(globally=False),  # tqdm bars in the task log
                analytics_enabled=False,
            )
            context = gx.get_context(mode="ephemeral", project_config=config)
            # persist=False: the caller persists; GX would persist() every frame and keep it.
            _state["source"] = context.data_sources.add_spark(name="coursedash", persist=False)
            _state["definitions"] = {}
        definitions = _state["definitions"]
        if asset_name not in definitions:
            asset = _state["source"].add_dataframe_asset(name=asset_name)
            definitions[asset_name] = asset.add_batch_definition_whole_dataframe("whole")
        return definitions[asset_name]
