"""The measuring stick: the real night against a DuckDB reference, on generated lakes.

    make benchmark                                   # the nights of WORKLOADS, and the goals they are held to
    .venv/bin/python benchmarks/night.py --five-million   # the same, and 12 requests on a 5M-enrolment lake
    .venv/bin/python benchmarks/night.py --sizes 100k --requests 1 12
    .venv/bin/python benchmarks/night.py --learners 20000 --requests 1 12 --label small
    .venv/bin/python benchmarks/night.py --code 50e0961 --code HEAD --sizes 1M --requests 12
    .venv/bin/python benchmarks/night.py --sizes 100k --same-size 100   # 102 requests vs 3 of the same rows
    .venv/bin/python benchmarks/night.py --smallest  # the smoke test's size: 300 learners, 3 requests
    .venv/bin/python benchmarks/night.py --print benchmarks/results/X.json   # its tables again

For each lake size it generates the lake once (cached under --work), and for each
request count it:
  - submits the requests through the product's own store (`store.submit`), mixed over
    the three report types, each on a different batch where the lake has enough;
  - runs the real night, `airflow dags test course_reports_nightly DATE`, in a
    subprocess with its own AIRFLOW_HOME, SQLite databases and COURSEDASH_VAR_DIR,
    sampling the RSS of its process tree every 0.2 s;
  - reads each task's seconds from Airflow's task instances, each Spark application's
    stages from its event log, and the requests' outcome from the application database;
  - runs the DuckDB reference (benchmarks/reference.py) on the same lake and requests,
    sampled the same way, and compares its CSVs with the night's published zips.
It prints a table and writes benchmarks/results/<timestamp>-<label>.json and PNG plots.

`--code REF` runs the night of another commit (a detached `git worktree` of it, run
with this venv and PYTHONPATH, DAGs and plugins pointing at it), so an old code path
can be measured beside the new one on the same lakes and requests. Seconds depend on
the machine: compare runs of one results file, and read the ratios.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import os
import platform
import re
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from measure import airflow_run, run_sampled, spark_applications  # noqa: E402

from coursedash.airflow_env import airflow_env  # noqa: E402
from coursedash.lakegen import generate_lake  # noqa: E402

DAG_ID = "course_reports_nightly"
REPORT_TYPES = ("progress", "userinfo", "response")
PASSWORD = "Bench-pass-2026"  # sample data: every zip is AES, as a careful requester asks
RUN_DATE = "2026-11-28"  # fixed, so a lake generated on any day has the same rows
NEXT_DATE = "2026-11-29"  # --next-night: the night after, on the same lake
NEXT_NIGHT = ", the next night"  # added to the code's label of a next night's run
# Enrolments per learner of the generator (1,007,079 for 620,000 learners).
SIZES = {"100k": 62_000, "1M": 620_000}
SMALLEST = {"learners": [300], "requests": [3], "courses": 4, "batches": 12}
# `make benchmark` without options: (learners, courses, batches, requests) of each night.
# Twelve requests, types in turn, each on a batch of about 2,500 learners on the 40-course
# lakes; on the 4-course lake on its 12 batches, the whole lake in the reports; and the
# one small request `make demo` makes. docs/performance.md holds them to GOALS.
WORKLOADS = [
    (200, 4, 12, 1),
    (62_000, 40, 40, 12),
    (620_000, 40, 400, 12),
    (620_000, 4, 12, 12),
]
FIVE_MILLION = (3_100_000, 40, 2_000, 12)  # the growth curve's third point: slow, run once by hand
PYTHON = sys.executable
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


# --- the code under test ----------------------------------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def checkout(ref: str | None, work: Path) -> dict:
    """This working tree (ref None), or a detached worktree of `ref` under work/code/."""
    if ref is None:
        commit = git("rev-parse", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
        return {"label": "this tree", "ref": None, "commit": commit + ("+changes" if dirty else ""), "root": ROOT}
    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}")
    root = work / "code" / commit[:12]
    if not (root / ".git").exists():
        root.parent.mkdir(parents=True, exist_ok=True)
        git("worktree", "add", "--detach", str(root), commit)
    missing = [p for p in ("dags", "plugins", "coursedash/db.py", "coursedash/store.py") if not (root / p).exists()]
    if missing:
        raise SystemExit(f"--code {ref}: {commit[:12]} has no {', '.join(missing)}; its night cannot run here")
    return {"label": ref, "ref": ref, "commit": commit, "root": root}


def reads_spark_conf(root: Path) -> bool:
    """Whether that code passes COURSEDASH_SPARK_CONF to spark-submit (the event log needs it)."""
    spark = root / "coursedash" / "spark.py"
    return spark.exists() and "COURSEDASH_SPARK_CONF" in spark.read_text(encoding="utf-8")


# --- lakes and requests -------------------------------------------------------------------------


def lake_for(work: Path, learners: int, courses: int, batches: int) -> dict:
    """The generated lake for these options, made once and reused: summary.json is written last."""
    folder = work / "lakes" / f"learners{learners}-courses{courses}-batches{batches}-{RUN_DATE}"
    done = folder / "summary.json"
    if done.exists():
        summary = json.loads(done.read_text(encoding="utf-8"))
        print(f"lake: {folder} (cached)", flush=True)
    else:
        print(f"lake: generating {learners} learners, {courses} courses, {batches} batches…", flush=True)
        started = time.perf_counter()
        summary = generate_lake(
            folder / "lake", learners=learners, today=dt.date.fromisoformat(RUN_DATE), courses=courses, batches=batches
        )
        summary["generate_seconds"] = round(time.perf_counter() - started, 1)
        done.write_text(json.dumps(summary), encoding="utf-8")
    summary["lake"] = str(folder / "lake")
    summary["parquet_bytes"] = sum(f.stat().st_size for f in (folder / "lake").rglob("*.parquet"))
    return summary


def choose_requests(lake: dict, count: int) -> list[dict]:
    """`count` requests cycling progress, userinfo, response, each on a different batch while any is left.

    Batches are taken round-robin over the courses. A userinfo report exists only for
    a course that asks for consent; the other types take the other courses' batches
    first, to leave those for it. Each is requested by its course's creator.
    """
    courses = {c["course_id"]: c for c in lake["courses"]}
    rank: dict[str, int] = {}
    order = []
    for b in lake["batches"]:
        rank[b["course_id"]] = rank.get(b["course_id"], -1) + 1
        order.append((rank[b["course_id"]], list(courses).index(b["course_id"]), b))
    batches = [b for *_, b in sorted(order, key=lambda t: t[:2])]
    consent = [b for b in batches if courses[b["course_id"]]["user_consent_required"]]
    candidates = {
        "userinfo": consent,
        "progress": [b for b in batches if b not in consent] + consent,
        "response": [b for b in batches if b not in consent] + consent,
    }
    used_batches: set[str] = set()
    taken: set[tuple[str, str]] = set()
    requests = []
    for i in range(count):
        kind = REPORT_TYPES[i % len(REPORT_TYPES)]
        free = [b for b in candidates[kind] if (b["batch_id"], kind) not in taken]
        if not free:
            raise SystemExit(f"{count} requests: the lake has too few batches; generate more with --batches")
        batch = next((b for b in free if b["batch_id"] not in used_batches), free[0])
        used_batches.add(batch["batch_id"])
        taken.add((batch["batch_id"], kind))
        requests.append(
            {
                "course_id": batch["course_id"],
                "batch_id": batch["batch_id"],
                "report_type": kind,
                "user": courses[batch["course_id"]]["created_by"],
                "password": PASSWORD,
            }
        )
    return requests


def request_key(r: dict) -> str:
    """What names a request across nights and the reference: one request per batch and type."""
    return f"{r['batch_id']}_{r['report_type']}"


# --- the night ----------------------------------------------------------------------------------


def night_env(code: dict, run_dir: Path, lake_path: str, events: Path | None) -> dict:
    """Airflow's environment (coursedash.airflow_env) pointed at this run's folders and that code."""
    env = airflow_env()
    for key in [k for k in env if k.startswith("COURSEDASH_")]:
        del env[key]  # nothing from the caller's setup: no mail, no webhook, no other database
    root = code["root"]
    env.update(
        {
            "AIRFLOW_HOME": str(run_dir / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{run_dir / 'airflow' / 'airflow.db'}",
            "PYTHONPATH": str(root),  # the DAG and the jobs import that code's package, not this one
            "COURSEDASH_VAR_DIR": str(run_dir / "var"),
            "COURSEDASH_LAKE_URI": lake_path,
            "COURSEDASH_SECRET_KEY": secrets.token_hex(32),
            "COURSEDASH_TASK_RETRIES": "0",  # a failure shows as one, not as a slower night
        }
    )
    if os.environ.get("COURSEDASH_SPARK_MASTER"):
        env["COURSEDASH_SPARK_MASTER"] = os.environ["COURSEDASH_SPARK_MASTER"]
    if events is not None:
        conf = f"spark.eventLog.enabled=true spark.eventLog.dir={events.as_uri()} spark.eventLog.compress=false"
        env["COURSEDASH_SPARK_CONF"] = " ".join(filter(None, [conf, os.environ.get("COURSEDASH_SPARK_CONF")]))
    return env


def log_tail(path: Path, lines: int = 15) -> list[str]:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return [line[:300] for line in text[-lines:]]


def published_requests(run_dir: Path) -> list[dict]:
    """Each request's outcome, read from the run's application database."""
    con = sqlite3.connect(f"file:{run_dir / 'var' / 'coursedash.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        rows = con.execute(
            "SELECT request_id, course_id, batch_id, report_type, status, row_count, object_key, "
            "error FROM report_requests"
        ).fetchall()
    finally:
        con.close()
    return [dict(r) for r in rows]


def run_night(code: dict, lake: dict, requests: list[dict], run_dir: Path, date: str = RUN_DATE) -> dict:
    """One night of `code` on the requests, in `run_dir`.

    At RUN_DATE, the first night: a fresh run folder, Airflow and application databases.
    At a later date, the next night in the same folder: the same requests submitted
    again, and the dashboard's figures of the night before in the database.
    """
    first = date == RUN_DATE
    if first:
        shutil.rmtree(run_dir, ignore_errors=True)
    events = run_dir / ("spark-events" if first else f"spark-events-{date}")
    for folder in (run_dir / "airflow", run_dir / "var", events):
        folder.mkdir(parents=True, exist_ok=True)
    event_log = reads_spark_conf(code["root"])
    env = night_env(code, run_dir, lake["lake"], events if event_log else None)

    if first:
        migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True)
        if migrate.returncode != 0:
            return {"error": "airflow db migrate failed", "log": migrate.stdout[-2000:] + migrate.stderr[-2000:]}
    spec = run_dir / "requests.json"
    spec.write_text(json.dumps({"courses": lake["courses"], "batches": lake["batches"], "requests": requests}))
    submitted = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "submit_requests.py"), str(spec)],
        env=env,
        cwd=run_dir,
        capture_output=True,
        text=True,
    )
    if submitted.returncode != 0:
        return {
            "error": "the requests could not be submitted with this code's store",
            "log": submitted.stderr.splitlines()[-15:],
        }
    tonight = set(json.loads(submitted.stdout))

    print(f"  night: airflow dags test {DAG_ID} {date} ({len(requests)} requests)…", flush=True)
    log = run_dir / ("airflow-dags-test.log" if first else f"airflow-dags-test-{date}.log")
    load_before = os.getloadavg()[0]  # another heavy process on the machine makes every second longer
    process = run_sampled([AIRFLOW, "dags", "test", DAG_ID, date], env, log, cwd=run_dir)
    result = {
        "run_dir": str(run_dir),
        "date": date,
        "load_average_before": round(load_before, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
        "wall_seconds": process["wall_seconds"],
        "returncode": process["returncode"],
        **{k: v for k, v in process.items() if "rss" in k or k in ("at_peak", "jvm_cpu")},
    }
    result["dag_run"] = airflow_run(run_dir / "airflow" / "airflow.db", DAG_ID)
    result["spark_apps"] = spark_applications(events)
    if not event_log:
        result["spark_note"] = "this code does not read COURSEDASH_SPARK_CONF: no Spark event log, no stage times"
    result["requests"] = [r for r in published_requests(run_dir) if r["request_id"] in tonight]
    if process["returncode"] != 0 or result["dag_run"].get("state") != "success":
        result["error"] = f"the night ended {result['dag_run'].get('state')} (exit {process['returncode']})"
        result["log_tail"] = log_tail(log)
    print(f"  night: {result['wall_seconds']:.0f} s, {result['dag_run'].get('state')}", flush=True)
    return result


# --- the reference and the comparison -----------------------------------------------------------


def run_reference(lake: dict, requests: list[dict], out: Path) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    spec = out.parent / f"{out.name}-requests.json"
    spec.write_text(json.dumps([{**r, "request_id": request_key(r)} for r in requests]))
    print(f"  reference: DuckDB {len(requests)} requests…", flush=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = run_sampled(
        [
            PYTHON,
            str(ROOT / "benchmarks" / "reference.py"),
            "--lake",
            lake["lake"],
            "--requests",
            str(spec),
            "--out",
            str(out),
        ],
        env,
        out.parent / f"{out.name}.log",
    )
    if process["returncode"] != 0:
        return {"error": "the reference failed", "log_tail": log_tail(out.parent / f"{out.name}.log"), **process}
    summary = json.loads((out / "_SUMMARY.json").read_text(encoding="utf-8"))
    rows = sum(r.get("rows", 0) for r in summary["requests"].values())
    print(f"  reference: {process['wall_seconds']:.1f} s", flush=True)
    return {**process, "out": str(out), "rows": rows, "by_type": summary["types"]}


def night_csv(run_dir: Path, request: dict) -> bytes:
    """The CSV inside a published zip, opened with the request's password."""
    from coursedash.packaging import read_zip

    (content,) = read_zip(run_dir / "var" / "reports" / request["object_key"], PASSWORD).values()
    return content


def first_difference(night: bytes, reference: bytes, show_values: bool) -> dict:
    """Row counts of both, and the first cell that differs (values left out for userinfo: PII)."""
    a = list(csv.reader(io.StringIO(night.decode("utf-8-sig"), newline="")))
    b = list(csv.reader(io.StringIO(reference.decode("utf-8-sig"), newline="")))
    found = {"night_rows": len(a) - 1, "reference_rows": len(b) - 1}
    # Either file may have more rows, and a row more cells: both zips stop at the shorter on purpose.
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            j = next((j for j, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y)))
            found["first_difference"] = {"row": i, "column": a[0][j] if j < len(a[0]) else j}
            if show_values:
                found["first_difference"].update(
                    night=x[j] if j < len(x) else None, reference=y[j] if j < len(y) else None
                )
            break
    return found


def compare(run_dir: Path, night: dict, reference_dir: Path) -> dict:
    """The night's published CSVs against the reference's, request by request."""
    result = {"requests": 0, "byte_equal": 0, "same_row_count": 0, "mismatches": [], "not_published": []}
    for request in night.get("requests", []):
        key = request_key(request)
        result["requests"] += 1
        theirs = reference_dir / f"{key}.csv"
        if request["status"] != "SUCCESS":
            result["not_published"].append({"request": key, "status": request["status"], "error": request["error"]})
            continue
        if not theirs.exists():
            result["mismatches"].append({"request": key, "problem": "the reference wrote no file"})
            continue
        mine, reference = night_csv(run_dir, request), theirs.read_bytes()
        if mine == reference:
            result["byte_equal"] += 1
            result["same_row_count"] += 1
            continue
        found = first_difference(mine, reference, show_values=request["report_type"] != "userinfo")
        result["same_row_count"] += found["night_rows"] == found["reference_rows"]
        result["mismatches"].append({"request": key, **found})
    return result


# --- one grid of runs ---------------------------------------------------------------------------


def summarize_run(code: dict, lake: dict, requests: list[dict], night: dict, reference: dict, comparison: dict) -> dict:
    published = [r for r in night.get("requests", []) if r["status"] == "SUCCESS"]
    rows = sum(r["row_count"] or 0 for r in published)
    seconds = night.get("wall_seconds")
    ref_seconds = reference.get("wall_seconds")
    return {
        "code": code["label"],
        "commit": code["commit"],
        "learners": lake["learners"],
        "enrolments": lake["rows"]["enrolments"],
        "lake_batches": len(lake["batches"]),
        "requests": len(requests),
        "requests_by_type": {t: sum(r["report_type"] == t for r in requests) for t in REPORT_TYPES},
        "batches_requested": len({r["batch_id"] for r in requests}),
        "report_rows": rows,
        "night": night,
        "reference": reference,
        "comparison": comparison,
        "rows_per_second": {
            "night": round(rows / seconds) if seconds else None,
            "reference": round(reference.get("rows", 0) / ref_seconds) if ref_seconds else None,
        },
        "ratio_to_reference": {
            "seconds": round(seconds / ref_seconds, 2) if seconds and ref_seconds else None,
            "peak_rss": round(night["peak_rss_total_mb"] / reference["peak_rss_total_mb"], 2)
            if night.get("peak_rss_total_mb") and reference.get("peak_rss_total_mb")
            else None,
        },
    }


def machine() -> dict:
    import duckdb
    import psutil
    import pyspark

    return {
        "cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "spark": pyspark.__version__,
        "duckdb": duckdb.__version__,
        "benchmark_commit": git("rev-parse", "HEAD"),
    }


def cases(args) -> list[tuple[int, int, int, int]]:
    """(learners, courses, batches, requests) of each run, in order.

    The grid: every lake size with every request count, on --courses and --batches.
    --same-size N: per lake size, 3 requests (one per type) on a one-course, one-batch
    lake, then about N requests (every type on each of N/3 batches) on a lake of the
    same learners in one course split into N/3 batches; a learner takes the course once,
    so both nights report the same enrolments.
    """
    if args.same_size:
        batches = -(-args.same_size // len(REPORT_TYPES))
        return [
            case
            for learners in args.learners
            for case in ((learners, 1, 1, len(REPORT_TYPES)), (learners, 1, batches, batches * len(REPORT_TYPES)))
        ]
    if args.workloads:
        return [*WORKLOADS, *([FIVE_MILLION] if args.five_million else [])]
    return [(learners, args.courses, args.batches, count) for learners in args.learners for count in args.requests]


def _run_of(runs: list[dict], code: str, learners: int, batches: int, requests: int) -> dict | None:
    return next(
        (
            r
            for r in runs
            if (r["code"], r["learners"], r.get("lake_batches"), r["requests"]) == (code, learners, batches, requests)
            and r["night"].get("wall_seconds")
        ),
        None,
    )


def _task_seconds(run: dict, task_id: str) -> float | None:
    tasks = run["night"].get("dag_run", {}).get("tasks", [])
    return next((t["seconds"] for t in tasks if t["task_id"] == task_id), None)


def goals(runs: list[dict]) -> list[dict]:
    """Each goal of docs/performance.md that this run's nights measure: its figure, its bound, met or not."""
    found = []
    for code in dict.fromkeys(r["code"] for r in runs):
        small, large = _run_of(runs, code, 62_000, 40, 12), _run_of(runs, code, 620_000, 400, 12)
        whole, tiny = _run_of(runs, code, 620_000, 12, 12), _run_of(runs, code, 200, 12, 1)
        learners, _, batches, requests = FIVE_MILLION
        five = _run_of(runs, code, learners, batches, requests)
        checks = [
            (
                small,
                "12 requests on the 100k lake: the night, Airflow included",
                "s",
                small and small["night"]["wall_seconds"],
                45,
            ),
            (
                tiny,
                "1 request on the 200-learner lake: build_reports",
                "s",
                tiny and _task_seconds(tiny, "build_reports"),
                30,
            ),
            (
                whole,
                "12 large requests on the 1M lake: night / DuckDB",
                "x",
                whole and whole["ratio_to_reference"]["seconds"],
                3,
            ),
            (
                large,
                "the same 12 requests, 1M lake / 100k lake",
                "x",
                large and small and large["night"]["wall_seconds"] / small["night"]["wall_seconds"],
                1.3,
            ),
            (
                five,
                "the same 12 requests, 5M lake / 1M lake (no bound)",
                "x",
                five and large and five["night"]["wall_seconds"] / large["night"]["wall_seconds"],
                None,
            ),
        ]
        for run, what, unit, value, bound in checks:
            if run and value is not None:
                met = None if bound is None else value <= bound
                found.append(
                    {"code": code, "goal": what, "unit": unit, "value": round(value, 2), "bound": bound, "met": met}
                )
    return found


def goals_table(found: list[dict]) -> str:
    out = ["| code | goal | measured | at most | |", "|---|---|---|---|---|"]
    for g in found:
        unit = " s" if g["unit"] == "s" else "×"
        bound = "—" if g["bound"] is None else f"{g['bound']}{unit}"
        verdict = "" if g["met"] is None else ("met" if g["met"] else "not met")
        out.append(f"| {g['code']} | {g['goal']} | {_fmt(g['value'], 2)}{unit} | {bound} | {verdict} |")
    return "\n".join(out)


def benchmark(args) -> dict:
    work = args.work.resolve()
    codes = [checkout(ref, work) for ref in (args.code or [None])]
    started = dt.datetime.now(dt.UTC)
    result = {
        "label": args.label,
        "started": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "options": {
            "learners": args.learners,
            "requests": args.requests,
            "courses": args.courses,
            "batches": args.batches,
            "same_size": args.same_size,
            "next_night": args.next_night,
            "codes": [c["label"] for c in codes],
            "run_date": RUN_DATE,
        },
        "lakes": [],
        "runs": [],
    }
    lakes = {}  # each lake made or read once, for all its request counts
    for learners, courses, batches, count in cases(args):
        if (learners, courses, batches) not in lakes:
            lake = lakes[learners, courses, batches] = lake_for(work, learners, courses, batches)
            result["lakes"].append(
                {k: lake[k] for k in ("learners", "rows", "parquet_bytes", "lake")}
                | {"courses": len(lake["courses"]), "batches": len(lake["batches"])}
            )
        lake = lakes[learners, courses, batches]
        requests = choose_requests(lake, count)
        size = f"learners{learners}-courses{courses}-batches{batches}-requests{count}"
        # One reference per lake and request set; each code's night is compared with it.
        reference_dir = work / "runs" / "duckdb" / size
        reference = None
        for code in codes:
            print(
                f"{code['label']}: {lake['rows']['enrolments']} enrolments in {batches} batches, {count} requests",
                flush=True,
            )
            run_dir = work / "runs" / f"{re.sub(r'[^A-Za-z0-9_.-]+', '-', code['label'])}-{code['commit'][:12]}" / size
            # With --next-night, the same requests the night after, the lake unchanged: what a steady platform pays.
            for date in (RUN_DATE, NEXT_DATE) if args.next_night else (RUN_DATE,):
                night = run_night(code, lake, requests, run_dir, date=date)
                if reference is None:
                    reference = run_reference(lake, requests, reference_dir)
                comparison = compare(run_dir, night, reference_dir) if "rows" in reference else {}
                label = code["label"] + ("" if date == RUN_DATE else NEXT_NIGHT)
                run = summarize_run({**code, "label": label}, lake, requests, night, reference, comparison)
                result["runs"].append(run)
                print(line_for(run), flush=True)
                if "error" in night:
                    break
    if args.same_size:
        result["same_size"] = same_size_ratios(result["runs"])
    if args.workloads:
        result["goals"] = goals(result["runs"])
    return result


def same_size_ratios(runs: list[dict]) -> list[dict]:
    """Per code and lake size: the many-request night's seconds over the one-batch night's."""
    pairs = []
    for one in (r for r in runs if r["lake_batches"] == 1):
        many = next(
            (
                r
                for r in runs
                if r["code"] == one["code"] and r["learners"] == one["learners"] and r["lake_batches"] > 1
            ),
            None,
        )
        if many is None or not one["night"].get("wall_seconds") or not many["night"].get("wall_seconds"):
            continue
        pairs.append(
            {
                "code": one["code"],
                "enrolments": one["enrolments"],
                "requests": [one["requests"], many["requests"]],
                "report_rows": [one["report_rows"], many["report_rows"]],
                "seconds": [one["night"]["wall_seconds"], many["night"]["wall_seconds"]],
                "ratio": round(many["night"]["wall_seconds"] / one["night"]["wall_seconds"], 2),
                "reference_ratio": round(many["reference"]["wall_seconds"] / one["reference"]["wall_seconds"], 2)
                if many["reference"].get("wall_seconds") and one["reference"].get("wall_seconds")
                else None,
            }
        )
    return pairs


# --- output -----------------------------------------------------------------------------------


def _fmt(value, digits=0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


HEADER = (
    "| code | enrolments | requests | report rows | night s | DuckDB s | night/DuckDB | night rows/s "
    "| peak RSS night MB | peak RSS DuckDB MB | CSVs equal to DuckDB |"
)


def line_for(run: dict) -> str:
    night, ref, cmp = run["night"], run["reference"], run["comparison"]
    equal = f"{cmp.get('byte_equal', 0)}/{cmp.get('requests', 0)}" if cmp else "-"
    if cmp.get("mismatches"):
        equal += f" ({len(cmp['mismatches'])} differ)"
    status = "" if "error" not in night else f" — {night['error']}"
    return (
        f"| {run['code']} | {run['enrolments']:,} | {run['requests']} | {run['report_rows']:,} "
        f"| {_fmt(night.get('wall_seconds'), 1)} | {_fmt(ref.get('wall_seconds'), 1)} "
        f"| {_fmt(run['ratio_to_reference']['seconds'], 2)} | {_fmt(run['rows_per_second']['night'])} "
        f"| {_fmt(night.get('peak_rss_total_mb'))} | {_fmt(ref.get('peak_rss_total_mb'))} | {equal}{status} |"
    )


def task_table(result: dict) -> str:
    """Seconds per task (rows) for each run (columns), as in docs/performance.md."""
    runs = result["runs"]
    task_ids = []
    for run in runs:
        for t in run["night"].get("dag_run", {}).get("tasks", []):
            if t["task_id"] not in task_ids:
                task_ids.append(t["task_id"])
    head = "| task | " + " | ".join(f"{r['code']}, {r['enrolments']:,} enr., {r['requests']} req." for r in runs) + " |"
    out = [head, "|---|" + "---|" * len(runs)]
    for task_id in task_ids:
        cells = []
        for r in runs:
            t = next((t for t in r["night"]["dag_run"]["tasks"] if t["task_id"] == task_id), None)
            cells.append("-" if t is None else t["state"] if t["state"] != "success" else _fmt(t["seconds"], 1))
        out.append(f"| {task_id} | " + " | ".join(cells) + " |")
    out.append(
        "| **night (`dags test` wall)** | "
        + " | ".join(f"**{_fmt(r['night'].get('wall_seconds'), 1)}**" for r in runs)
        + " |"
    )
    out.append("| DuckDB reference | " + " | ".join(_fmt(r["reference"].get("wall_seconds"), 1) for r in runs) + " |")
    return "\n".join(out)


def same_size_table(pairs: list[dict]) -> str:
    out = [
        "| code | enrolments | requests | report rows | night s | night ratio | DuckDB ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in pairs:
        out.append(
            f"| {p['code']} | {p['enrolments']:,} | {p['requests'][0]} on one batch → {p['requests'][1]} "
            f"| {p['report_rows'][0]:,} → {p['report_rows'][1]:,} | {_fmt(p['seconds'][0], 1)} → "
            f"{_fmt(p['seconds'][1], 1)} | **{_fmt(p['ratio'], 2)}** | {_fmt(p['reference_ratio'], 2)} |"
        )
    return "\n".join(out)


def report(result: dict) -> str:
    out = [HEADER, "|" + "---|" * HEADER.count(" | ") + "---|"]
    out += [line_for(run) for run in result["runs"]]
    out += ["", task_table(result)]
    if result.get("goals"):
        out += ["", "The goals (docs/performance.md):", "", goals_table(result["goals"])]
    if result.get("same_size"):
        out += [
            "",
            "Many requests against one request of the same total size (goal: at most 1.2):",
            "",
            same_size_table(result["same_size"]),
        ]
    for run in result["runs"]:
        night = run["night"]
        batches = f" in {run['lake_batches']} batches" if "lake_batches" in run else ""
        out.append(
            f"\n{run['code']}, {run['enrolments']:,} enrolments{batches}, {run['requests']} requests "
            f"(load average {night.get('load_average_before', '-')} before, "
            f"{night.get('load_average_after', '-')} after; {os.cpu_count()} cores):"
        )
        tasks = night.get("dag_run", {}).get("tasks", [])
        out.append("  tasks: " + ", ".join(f"{t['task_id']} {_fmt(t['seconds'], 1)} s ({t['state']})" for t in tasks))
        for app in night.get("spark_apps", []):
            out.append(
                f"  spark {app['app']}: {_fmt(app['wall_seconds'], 1)} s; {app['stages']} stages "
                f"({app['stage_seconds']:.1f} s); {app['sql_executions']} SQL executions "
                f"({app['sql_execution_seconds']:.1f} s); outside SQL {_fmt(app['seconds_outside_sql'], 1)} s; "
                f"lake read {app['lake_bytes_scanned'] / 2**20:,.1f} MB"
            )
            # Results written before the jobs named their parts group by call site.
            grouped = app.get("sql_by_description") or [
                {**s, "description": s["call_site"]} for s in app.get("sql_by_call_site", [])
            ]
            parts = "; ".join(f"{p['description']} x{p['executions']} {p['seconds']:.1f} s" for p in grouped[:8])
            out.append(f"    SQL time by part of the night: {parts}")
            if app.get("cpu_by_description"):  # results of this benchmark since it read task metrics
                cpu = "; ".join(f"{p['description']} {p['cpu_seconds']:.1f} s" for p in app["cpu_by_description"][:8])
                out.append(
                    f"    executors' CPU {app['executor_cpu_seconds']:.1f} s of {app['executor_run_seconds']:.1f} s "
                    f"of task time; by part: {cpu}"
                )
        if night.get("jvm_cpu"):  # results of this benchmark since it read the JVM's threads
            jvm = night["jvm_cpu"]
            others = jvm["seconds"] - jvm["JIT compilers"] - jvm["garbage collector"]
            out.append(
                f"  the Spark JVM's CPU {jvm['seconds']:.1f} s: its JIT compilers {jvm['JIT compilers']:.1f} s, "
                f"its garbage collector {jvm['garbage collector']:.1f} s, the rest (tasks, driver) {others:.1f} s"
            )
        if night.get("spark_note"):
            out.append(f"  {night['spark_note']}")
        out.append(
            "  peak RSS MB of one process, by kind: "
            + ", ".join(f"{k} {v:,.0f}" for k, v in night.get("peak_rss_by_kind_mb", {}).items())
        )
        out.append(
            f"  at the peak of the whole tree ({_fmt(night.get('peak_rss_total_mb'))} MB): "
            + ", ".join(f"{k} {v['processes']}x {v['mb']:,.0f}" for k, v in night.get("at_peak", {}).items())
        )
        for m in run["comparison"].get("mismatches", []):
            out.append(f"  MISMATCH {m}")
        for m in run["comparison"].get("not_published", []):
            out.append(f"  NOT PUBLISHED {m}")
        if night.get("error"):
            out.append(f"  NIGHT FAILED: {night['error']}")
            out += [f"    {line}" for line in night.get("log_tail", [])]
    return "\n".join(out)


def plots(result: dict, stem: Path) -> list[str]:
    """Time against lake size, time against request count, and the night's tasks beside DuckDB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in result["runs"] if r["night"].get("wall_seconds")]
    written = []

    def save(fig, name):
        path = stem.with_name(f"{stem.name}-{name}.png")
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))

    def series(x_key, group_key):
        groups = {}
        for r in runs:
            groups.setdefault((r["code"], r[group_key]), []).append(r)
        return {k: sorted(v, key=lambda r: r[x_key]) for k, v in groups.items()}

    for x_key, group_key, name, xlabel in (
        ("enrolments", "requests", "time-vs-size", "enrolments in the lake"),
        ("requests", "enrolments", "time-vs-requests", "requests in the night"),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        references_drawn = set()
        colours = iter(plt.rcParams["axes.prop_cycle"].by_key()["color"] * 4)
        for (code, group), rs in series(x_key, group_key).items():
            xs = [r[x_key] for r in rs]
            colour = next(colours)
            label = f"{group:,} {'requests' if group_key == 'requests' else 'enrolments'}"
            ax.plot(
                xs, [r["night"]["wall_seconds"] for r in rs], marker="o", color=colour, label=f"night ({code}), {label}"
            )
            if group not in references_drawn:  # one reference per lake and request set, whatever the code
                references_drawn.add(group)
                ax.plot(
                    xs,
                    [r["reference"].get("wall_seconds") for r in rs],
                    marker="s",
                    linestyle="--",
                    color=colour,
                    label=f"DuckDB, {label}",
                )
        ax.set_xlabel(xlabel)
        ax.set_ylabel("seconds (log scale)")
        ax.set_yscale("log")  # the night and the reference differ by orders of magnitude
        values = sorted({r[x_key] for r in runs})
        if len(values) > 1:
            ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:,}" for v in values])
        ax.minorticks_off()
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        save(fig, name)

    # The night's tasks stacked, the reference beside each.
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(runs) + 2), 4.5))
    task_ids = []
    for r in runs:
        for t in r["night"].get("dag_run", {}).get("tasks", []):
            if t["task_id"] not in task_ids:
                task_ids.append(t["task_id"])
    labels = [f"{r['code']}\n{r['enrolments'] / 1000:,.0f}k enr.\n{r['requests']} req." for r in runs]
    xs = range(len(runs))
    bottom = [0.0] * len(runs)
    for task_id in task_ids:
        heights = [
            next((t["seconds"] or 0 for t in r["night"]["dag_run"]["tasks"] if t["task_id"] == task_id), 0)
            for r in runs
        ]
        ax.bar([x - 0.2 for x in xs], heights, 0.4, bottom=bottom, label=task_id)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    reference_seconds = [r["reference"].get("wall_seconds") or 0 for r in runs]
    ax.bar([x + 0.2 for x in xs], reference_seconds, 0.4, color="black", label="DuckDB reference")
    for x, r, seconds in zip(xs, runs, reference_seconds, strict=True):
        ratio = r["ratio_to_reference"]["seconds"]
        ax.annotate(
            f"{seconds:.1f} s" + (f"\nnight ×{ratio:,.0f}" if ratio else ""),
            (x + 0.2, seconds),
            ha="center",
            va="bottom",
            fontsize=7,
        )
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("seconds")
    ax.set_title("the night's tasks (left) and the DuckDB reference (right)")
    ax.legend(fontsize=7)
    save(fig, "night-vs-duckdb")
    return written


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--sizes",
        nargs="+",
        choices=sorted(SIZES),
        default=None,
        help="lake sizes in enrolments: 100k (62,000 learners) and/or 1M (620,000); default both",
    )
    parser.add_argument(
        "--learners",
        nargs="+",
        type=int,
        metavar="N",
        help="lake sizes in learners instead (about 1.62 enrolments each)",
    )
    parser.add_argument(
        "--requests",
        nargs="+",
        type=int,
        default=[1, 12, 100],
        metavar="N",
        help="request counts, mixed over the three types (default: 1 12 100)",
    )
    parser.add_argument("--courses", type=int, default=40, help="courses in a generated lake (default: 40)")
    parser.add_argument(
        "--batches",
        type=int,
        default=400,
        help="batches in a generated lake, so that 100 requests touch 100 batches (default: 400)",
    )
    parser.add_argument(
        "--code",
        action="append",
        metavar="REF",
        help="run the night of this commit (repeatable; default: this working tree)",
    )
    parser.add_argument(
        "--same-size",
        type=int,
        metavar="N",
        help="instead of the grid: per lake size, about N requests on N/3 batches of one course "
        "against 3 requests on one batch holding the same learners",
    )
    parser.add_argument(
        "--five-million",
        action="store_true",
        help="with the default nights, 12 requests on a lake of 5M enrolments too (3.1M learners; slow)",
    )
    parser.add_argument(
        "--next-night",
        action="store_true",
        help="after each night, the same requests again the night after, on the same lake: "
        "the dashboard's figures of the night before are kept where the lake's rows did not change",
    )
    parser.add_argument(
        "--smallest",
        action="store_true",
        help="the smoke test's run: 300 learners, 4 courses, 12 batches, 3 requests (one per type)",
    )
    parser.add_argument("--label", default=None, help="names the results file (default: the sizes)")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / "var" / "benchmark",
        help="lakes (cached), runs and code checkouts (default: var/benchmark)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=ROOT / "benchmarks" / "results",
        help="where the JSON and PNG files go (default: benchmarks/results)",
    )
    parser.add_argument(
        "--print",
        type=Path,
        metavar="RESULTS.json",
        help="only print the tables of an earlier results file (e.g. for docs/performance.md)",
    )
    given = {a.split("=")[0] for a in (argv if argv is not None else sys.argv[1:])}
    args = parser.parse_args(argv)
    # Without a choice of lakes and requests: the default nights (WORKLOADS).
    args.workloads = not ({"--sizes", "--learners", "--requests", "--same-size", "--smallest"} & given)
    if args.five_million and not args.workloads:
        parser.error("--five-million goes with the default nights only")
    if args.smallest:
        args.learners, args.requests = SMALLEST["learners"], SMALLEST["requests"]
        args.courses, args.batches = SMALLEST["courses"], SMALLEST["batches"]
    if not args.learners:
        args.learners = [SIZES[s] for s in (args.sizes or ["100k", "1M"])]
    if args.code:
        args.code = [None if ref == "." else ref for ref in args.code]
    if args.same_size is not None and args.same_size < len(REPORT_TYPES) + 1:
        parser.error(f"--same-size needs at least {len(REPORT_TYPES) + 1} requests")
    args.label = args.label or (
        "smallest"
        if args.smallest
        else "goals" + ("-5M" if args.five_million else "")
        if args.workloads
        else "-".join(f"{n}" for n in args.learners)
        + "-learners"
        + (f"-same-size-{args.same_size}" if args.same_size else "")
    )
    return args


def main(argv: list[str] | None = None) -> Path:
    args = parse_args(argv)
    if args.print:
        print(report(json.loads(args.print.read_text(encoding="utf-8"))))
        return args.print
    result = benchmark(args)
    args.results.mkdir(parents=True, exist_ok=True)
    stem = args.results / f"{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}-{args.label}"
    result["plots"] = [Path(p).name for p in plots(result, stem)]
    path = stem.with_suffix(".json")
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    print()
    print(report(result))
    print(f"\nwritten: {path}" + "".join(f"\n         {stem.parent / p}" for p in result["plots"]))
    return path


if __name__ == "__main__":
    main()
