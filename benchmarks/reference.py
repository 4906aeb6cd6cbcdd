"""The yardstick: the night's reports computed by DuckDB in one pass per report type.

    python benchmarks/reference.py --lake DIR --requests REQUESTS.json --out DIR

What a data engineer could write in an afternoon instead of the nightly Spark run:
for each report type, one query over the lake for all of its requests (the formulas
of docs/reports.md, the duplicate and consent rules of docs/lake.md), then each
request's rows written as the same CSV the night publishes: UTF-8 with BOM, CRLF,
RFC 4180 minimal quoting, same header, same row order, same cell formats. Written to
`<out>/<request_id>.csv`, plus `<out>/_SUMMARY.json` with rows and seconds per type.

It keeps the reports' rules, not the night's bookkeeping: no quality suites, no
left-out counts, no zips, no database. A request whose batch is gone from the lake
(or moved to another course) gets no file, as the night fails it.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas.reports import (  # noqa: E402
    PROGRESS_COLUMNS,
    RESPONSE_COLUMNS,
    USERINFO_COLUMNS,
    assessment_headers,
)

UNPLACED = 2**31 - 1  # a content without a position sorts after every placed one (jobs.frames)
BOM = "\ufeff"

# Each lake table's columns in the order of docs/lake.md: the duplicate rules' last tie-break is
# every column in turn, in this order (jobs.frames.dedupe), a map by its sorted entries.
LAKE_COLUMNS = {
    "courses": "course_id name channel created_by status user_consent_required created_on",
    "batches": "batch_id course_id name start_date end_date created_by mentors created_on",
    "course_contents": "course_id content_id name content_type is_assessment is_optional position",
    "enrolments": "user_id course_id batch_id enrolled_on active completed_on content_status issued_certificates",
    "assessment_attempts": "user_id course_id batch_id content_id attempt_id last_attempted_on total_score "
    "total_max_score",
    "question_responses": "user_id course_id batch_id content_id attempt_id question_id question_type question_title "
    "question_description duration_seconds score max_score options response assessed_on",
    "users": "user_id first_name last_name email phone state district block cluster school_id school_name "
    "org_name user_type user_sub_type board status",
    "user_consents": "user_id course_id status last_updated_on",
}
MAP_COLUMNS = {"content_status"}


def every_column(columns: str) -> str:
    """The complete order's tail: each column ascending, nulls last; a map by its sorted entries."""
    return ", ".join(
        f"list_sort(map_entries({c})) ASC NULLS LAST" if c in MAP_COLUMNS else f"{c} ASC NULLS LAST"
        for c in columns.split()
    )


def dedupe(source: str, keys: str, order: str, columns: str) -> str:
    """SQL for one row per key: the first by `order`, then by every column (jobs.frames.dedupe)."""
    tail = every_column(columns)
    return (
        f"SELECT * EXCLUDE (_rn) FROM (SELECT *, row_number() OVER (PARTITION BY {keys} "
        f"ORDER BY {order + ', ' if order else ''}{tail}) AS _rn FROM {source}) WHERE _rn = 1"
    )


# Cell formats (docs/reports.md, "The file"; jobs/common.py), as DuckDB macros.
MACROS = r"""
CREATE MACRO text_cell(x) AS
    CASE WHEN left(x, 1) IN ('=', '+', '-', '@', chr(9), chr(13)) THEN '''' || x ELSE x END;
CREATE MACRO date_cell(t) AS strftime(t, '%d/%m/%Y');
CREATE MACRO datetime_cell(t) AS strftime(t, '%d/%m/%Y %H:%M:%S');
-- A double as its shortest decimal, written plainly: 12.5, 3, 0.0004, 1e27 as 1 and 27
-- zeros; 0 for zero, empty for NaN and the infinities. DuckDB's own cast is the shortest
-- (12.5, 3.0, 1e-13, 1e+27); the digits are framed in zeros and cut where the point goes.
CREATE MACRO plain_scientific(s, negative) AS
    CASE WHEN negative THEN '-' ELSE '' END || regexp_replace(regexp_replace(
        substring(repeat('0', 400) || regexp_replace(s, '[-.]|e.*', '', 'g') || repeat('0', 400), 1,
                  401 + CAST(regexp_extract(s, 'e([-+]?[0-9]+)$', 1) AS INTEGER))
        || '.' ||
        substring(repeat('0', 400) || regexp_replace(s, '[-.]|e.*', '', 'g') || repeat('0', 400),
                  402 + CAST(regexp_extract(s, 'e([-+]?[0-9]+)$', 1) AS INTEGER), 800),
        '\.?0+$', ''), '^0+([0-9])', '\1');
CREATE MACRO plain_number(x) AS
    CASE WHEN isnan(x) OR isinf(x) THEN NULL
         WHEN x = 0 THEN '0'
         WHEN contains(CAST(x AS VARCHAR), 'e') THEN plain_scientific(CAST(x AS VARCHAR), x < 0)
         ELSE regexp_replace(CAST(x AS VARCHAR), '\.0$', '') END;
-- A value in units of 1e-10, as Spark's decimal(38,10) holds it.
CREATE MACRO tenth_nanos(x) AS
    CAST(replace(CAST(TRY_CAST(CAST(x AS VARCHAR) AS DECIMAL(38, 10)) AS VARCHAR), '.', '') AS HUGEINT);
-- 100 * score / max rounded half up to 6 decimals (Spark's decimal division), then to 2.
CREATE MACRO micro_percent(n, d) AS
    CASE WHEN d <> 0 THEN sign(n) * sign(d) * ((abs(n) * 200000000 + abs(d)) // (2 * abs(d))) END;
CREATE MACRO centi(q) AS sign(q) * ((abs(q) + 5000) // 10000);
CREATE MACRO two_decimals(c) AS
    CASE WHEN c < 0 THEN '-' ELSE '' END || CAST(abs(c) // 100 AS VARCHAR) || '.'
    || lpad(CAST(abs(c) % 100 AS VARCHAR), 2, '0');
CREATE MACRO percent_cell(score, max_score) AS
    two_decimals(centi(micro_percent(tenth_nanos(score), tenth_nanos(max_score))));
"""


class Reference:
    def __init__(self, lake: Path, requests: list[dict]):
        self.lake = lake
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")  # the lake's and the reports' times are UTC
        self.con.execute(MACROS)
        self.con.execute(
            "CREATE TABLE requests (request_id VARCHAR, course_id VARCHAR, batch_id VARCHAR, report_type VARCHAR)"
        )
        self.con.executemany(
            "INSERT INTO requests VALUES (?, ?, ?, ?)",
            [(r["request_id"], r["course_id"], r["batch_id"], r["report_type"]) for r in requests],
        )
        self._views()

    def table(self, name: str) -> str:
        path = (self.lake / name / "**" / "*.parquet").as_posix().replace("'", "''")
        return f"read_parquet('{path}')"

    def _views(self) -> None:
        """The night's frames: each table pruned to the requested batches or courses, duplicates resolved."""
        c = LAKE_COLUMNS
        views = {
            "wanted_batches": "SELECT DISTINCT batch_id FROM requests",
            "wanted_courses": "SELECT DISTINCT course_id FROM requests",
            "course_one": dedupe(
                f"(SELECT * FROM {self.table('courses')} WHERE course_id IS NOT NULL)",
                "course_id",
                "created_on DESC NULLS LAST",
                c["courses"],
            ),
            "batch_one": dedupe(
                f"(SELECT * FROM {self.table('batches')} WHERE batch_id IS NOT NULL)",
                "batch_id",
                "created_on DESC NULLS LAST",
                c["batches"],
            ),
            "content_one": dedupe(
                f"(SELECT * FROM {self.table('course_contents')} WHERE content_id IS NOT NULL "
                "AND course_id IN (SELECT course_id FROM wanted_courses))",
                "course_id, content_id",
                "",
                c["course_contents"],
            ),
            "active_enrolment": dedupe(
                f"(SELECT * FROM {self.table('enrolments')} WHERE active AND user_id IS NOT NULL "
                "AND batch_id IN (SELECT batch_id FROM wanted_batches))",
                "batch_id, user_id",
                "enrolled_on DESC NULLS LAST, completed_on DESC NULLS LAST",
                c["enrolments"],
            ),
            # Active enrolments of the requested batches, one row per learner and request;
            # a request whose batch is gone or in another course has none.
            "learner": """
                SELECT r.request_id, r.report_type, r.course_id, r.batch_id,
                       e.user_id, e.enrolled_on, e.completed_on, e.content_status, e.issued_certificates
                FROM requests r
                JOIN batch_one b ON b.batch_id = r.batch_id AND b.course_id = r.course_id
                JOIN active_enrolment e ON e.batch_id = r.batch_id""",
            "profile": dedupe(
                f"(SELECT * FROM {self.table('users')} WHERE user_id IN (SELECT user_id FROM active_enrolment))",
                "user_id",
                "",
                c["users"],
            ),
        }
        for name, sql in views.items():
            self.con.execute(f"CREATE TEMP VIEW {name} AS {sql}")

    # --- the three reports: request_id, sort keys, cells (a list in header order) ----------

    def progress_rows(self) -> str:
        # The attempts joined to their batch's course and its assessments, in Spark's column order.
        of_course = f"""(SELECT b.course_id, a.content_id, a.batch_id, a.user_id, a.attempt_id,
                               a.last_attempted_on, a.total_score, a.total_max_score
                        FROM {self.table("assessment_attempts")} a
                        JOIN batch_one b ON b.batch_id = a.batch_id
                        JOIN content_one s ON s.course_id = b.course_id AND s.content_id = a.content_id
                                              AND s.is_assessment
                        WHERE a.batch_id IN (SELECT batch_id FROM wanted_batches))"""
        best = dedupe(
            of_course,
            "batch_id, user_id, content_id",
            "total_score DESC NULLS LAST, last_attempted_on DESC NULLS LAST",
            "course_id content_id batch_id user_id attempt_id last_attempted_on total_score total_max_score",
        )
        return f"""
            WITH per_course AS (
                SELECT course_id,
                       coalesce(list(content_id) FILTER (WHERE NOT coalesce(is_optional, false)), [])
                           AS required_ids,
                       coalesce(list(content_id ORDER BY coalesce(position, {UNPLACED}), content_id)
                                FILTER (WHERE is_assessment), []) AS assessment_ids
                FROM content_one GROUP BY course_id),
            scores AS (
                SELECT batch_id, user_id,
                       map_from_entries(list(struct_pack(k := content_id,
                                                         v := percent_cell(total_score, total_max_score))))
                           AS score_by_content,
                       percent_cell(sum(total_score), sum(total_max_score)) AS total_score_cell
                FROM ({best}) GROUP BY batch_id, user_id)
            SELECT l.request_id, l.user_id,
                   list_concat([
                       text_cell(l.course_id), text_cell(co.name), text_cell(l.batch_id), text_cell(b.name),
                       text_cell(l.user_id), text_cell(u.state), text_cell(u.district), text_cell(u.org_name),
                       text_cell(u.school_id), text_cell(u.school_name), text_cell(u.block), text_cell(u.cluster),
                       text_cell(u.user_type), text_cell(u.user_sub_type), text_cell(u.board),
                       date_cell(l.enrolled_on), date_cell(l.completed_on),
                       CASE WHEN len(l.issued_certificates) > 0 THEN 'Issued' END,
                       CAST(CASE
                           WHEN l.completed_on IS NOT NULL THEN 100
                           WHEN len(coalesce(pc.required_ids, [])) = 0 THEN 0
                           ELSE (len(list_filter(pc.required_ids, lambda x: l.content_status[x] = 2)) * 200
                                 + len(pc.required_ids)) // (2 * len(pc.required_ids))
                       END AS VARCHAR),
                       s.total_score_cell],
                       list_transform(coalesce(pc.assessment_ids, []), lambda a: s.score_by_content[a])) AS cells
            FROM learner l
            LEFT JOIN course_one co ON co.course_id = l.course_id
            LEFT JOIN batch_one b ON b.batch_id = l.batch_id
            LEFT JOIN per_course pc ON pc.course_id = l.course_id
            LEFT JOIN scores s ON s.batch_id = l.batch_id AND s.user_id = l.user_id
            LEFT JOIN profile u ON u.user_id = l.user_id
            WHERE l.report_type = 'progress'"""

    def userinfo_rows(self) -> str:
        # The latest consent wins; on a tie in time anything but ACTIVE does (no PII when in doubt).
        latest = dedupe(
            f"(SELECT * FROM {self.table('user_consents')} WHERE course_id IN (SELECT course_id FROM wanted_courses))",
            "user_id, course_id",
            "last_updated_on DESC NULLS LAST, (status = 'ACTIVE') ASC NULLS FIRST",
            LAKE_COLUMNS["user_consents"],
        )
        name = "nullif(concat_ws(' ', nullif(trim(u.first_name), ''), nullif(trim(u.last_name), '')), '')"
        return f"""
            SELECT l.request_id, l.user_id,
                   [text_cell(l.course_id), text_cell(co.name), text_cell(l.batch_id), text_cell(b.name),
                    text_cell(l.user_id), text_cell({name}), text_cell(u.user_type), text_cell(u.user_sub_type),
                    text_cell(u.state), text_cell(u.district), text_cell(u.block), text_cell(u.cluster),
                    text_cell(u.school_id), text_cell(u.school_name), text_cell(u.org_name), text_cell(u.email),
                    text_cell(u.phone), 'Yes', date_cell(k.last_updated_on)] AS cells
            FROM learner l
            LEFT JOIN course_one co ON co.course_id = l.course_id
            LEFT JOIN batch_one b ON b.batch_id = l.batch_id
            LEFT JOIN ({latest}) k ON k.user_id = l.user_id AND k.course_id = l.course_id
            LEFT JOIN profile u ON u.user_id = l.user_id
            WHERE l.report_type = 'userinfo' AND k.status = 'ACTIVE'"""

    def response_rows(self) -> str:
        c = LAKE_COLUMNS
        wanted = "batch_id IN (SELECT batch_id FROM wanted_batches)"
        latest = dedupe(
            f"(SELECT * FROM {self.table('question_responses')} WHERE user_id IS NOT NULL AND {wanted})",
            "user_id, batch_id, content_id, attempt_id, question_id",
            "assessed_on DESC NULLS LAST",
            c["question_responses"],
        )
        attempted = dedupe(
            f"(SELECT * FROM {self.table('assessment_attempts')} WHERE {wanted})",
            "user_id, batch_id, content_id, attempt_id",
            "last_attempted_on DESC NULLS LAST",
            c["assessment_attempts"],
        )
        return f"""
            SELECT r.request_id, q.user_id, coalesce(t.position, {UNPLACED}) AS position,
                   q.attempt_id, q.question_id, q.content_id,
                   [text_cell(r.course_id), text_cell(co.name), text_cell(r.batch_id), text_cell(b.name),
                    text_cell(q.user_id), text_cell(q.content_id), text_cell(t.name), text_cell(q.attempt_id),
                    datetime_cell(a.last_attempted_on), text_cell(q.question_id), text_cell(q.question_type),
                    text_cell(q.question_title), text_cell(q.question_description),
                    plain_number(q.duration_seconds), plain_number(q.score), plain_number(q.max_score),
                    text_cell(q.options), text_cell(q.response)] AS cells
            FROM requests r
            JOIN ({latest}) q ON q.batch_id = r.batch_id
            -- only learners with an active enrolment in the batch (and a batch still in its course)
            SEMI JOIN learner l ON l.request_id = r.request_id AND l.user_id = q.user_id
            LEFT JOIN course_one co ON co.course_id = r.course_id
            LEFT JOIN batch_one b ON b.batch_id = r.batch_id
            LEFT JOIN content_one t ON t.course_id = r.course_id AND t.content_id = q.content_id
            LEFT JOIN ({attempted}) a ON a.user_id = q.user_id AND a.batch_id = q.batch_id
                                     AND a.content_id = q.content_id AND a.attempt_id = q.attempt_id
            WHERE r.report_type = 'response'"""

    SORT_BY = {
        "progress": "user_id",
        "userinfo": "user_id",
        "response": "user_id, position, attempt_id, question_id, content_id",
    }

    def headers(self) -> dict[str, list[str]]:
        """Each request's header; a progress report's depends on its course's assessments."""
        fixed = {"userinfo": list(USERINFO_COLUMNS), "response": list(RESPONSE_COLUMNS)}
        assessments = self.con.execute(f"""
            SELECT course_id, content_id, coalesce(name, content_id) FROM content_one WHERE is_assessment
            ORDER BY course_id, coalesce(position, {UNPLACED}), content_id""").fetchall()
        result = {}
        for request_id, course_id, report_type in self.con.execute(
            "SELECT request_id, course_id, report_type FROM requests"
        ).fetchall():
            if report_type == "progress":
                mine = [(cid, name) for course, cid, name in assessments if course == course_id]
                result[request_id] = list(PROGRESS_COLUMNS) + assessment_headers(mine)
            else:
                result[request_id] = fixed[report_type]
        return result

    def run(self, out: Path) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        headers = self.headers()
        valid = {
            r
            for (r,) in self.con.execute(
                "SELECT DISTINCT request_id FROM requests r JOIN batch_one b "
                "ON b.batch_id = r.batch_id AND b.course_id = r.course_id"
            ).fetchall()
        }
        summary = {"types": {}, "requests": {}}
        for report_type in ("progress", "userinfo", "response"):
            ids = [
                r
                for (r,) in self.con.execute(
                    "SELECT request_id FROM requests WHERE report_type = ? ORDER BY request_id", [report_type]
                ).fetchall()
            ]
            if not ids:
                continue
            started = time.perf_counter()
            sql = getattr(self, f"{report_type}_rows")()
            # One pass over the lake for all requests of the type; each request's file from it.
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE rows AS {sql}")
            rows = 0
            for request_id in ids:
                if request_id not in valid:
                    summary["requests"][request_id] = {"error": "batch not in the lake, or in another course"}
                    continue
                n = self.write_csv(
                    out / f"{request_id}.csv", request_id, headers[request_id], self.SORT_BY[report_type]
                )
                summary["requests"][request_id] = {"report_type": report_type, "rows": n}
                rows += n
            summary["types"][report_type] = {
                "requests": len(ids),
                "rows": rows,
                "seconds": round(time.perf_counter() - started, 2),
            }
        return summary

    def write_csv(self, path: Path, request_id: str, header: list[str], sort_by: str) -> int:
        """BOM and header from Python's csv module, the rows from DuckDB's writer, which quotes alike.

        DuckDB writes an empty string quoted (to tell it from null) and quotes a
        leading `#` unless COMMENT is empty; null empty strings make the rest agree.
        """
        head = io.StringIO()
        csv.writer(head, lineterminator="\r\n").writerow(header)
        cells = ", ".join(f"nullif(cells[{i + 1}], '') AS c{i}" for i in range(len(header)))
        body = path.with_suffix(".rows")
        literal = request_id.replace("'", "''")
        self.con.execute(
            f"COPY (SELECT {cells} FROM rows WHERE request_id = '{literal}' "
            f"ORDER BY {', '.join(k + ' ASC NULLS FIRST' for k in sort_by.split(', '))}) "
            f"TO '{body.as_posix()}' (FORMAT csv, HEADER false, NEW_LINE '\\r\\n', COMMENT '')"
        )
        with open(path, "wb") as f:
            f.write((BOM + head.getvalue()).encode("utf-8"))
            with open(body, "rb") as rows:
                shutil.copyfileobj(rows, f, 1 << 20)
        body.unlink()
        (count,) = self.con.execute(f"SELECT count(*) FROM rows WHERE request_id = '{literal}'").fetchone()
        return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", required=True, type=Path)
    parser.add_argument(
        "--requests", required=True, type=Path, help="JSON list of {request_id, course_id, batch_id, report_type}"
    )
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    requests = json.loads(args.requests.read_text(encoding="utf-8"))
    summary = Reference(args.lake, requests).run(args.out)
    summary["seconds"] = round(time.perf_counter() - started, 2)
    (args.out / "_SUMMARY.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps(summary["types"]))


if __name__ == "__main__":
    main()
