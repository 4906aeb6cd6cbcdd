"""The benchmark's smoke test: `benchmarks/night.py --smallest`, end to end.

A real `airflow dags test` of the nightly DAG (Spark included) and a real DuckDB
reference on a 300-learner lake with one request of each type. It checks what the
results file says against the run's own traces (Airflow's log, the published zips),
never how fast anything was. The same-size comparison's pairing of lakes and
requests is checked on its own, without running its two nights.
"""

import csv
import importlib.util
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coursedash.packaging import read_zip
from tests.conftest import ROOT

# One run of the benchmark for the module's tests: they all go to one worker (make test's --dist loadgroup),
# and the run is session-scoped, since that worker may run other modules' tests between them.
pytestmark = pytest.mark.xdist_group("benchmark")


@pytest.fixture(scope="session")
def smallest(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("benchmark")
    work, results = tmp / "work", tmp / "results"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "night.py"),
            "--smallest",
            "--next-night",
            "--work",
            str(work),
            "--results",
            str(results),
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (path,) = results.glob("*.json")
    result = json.loads(path.read_text(encoding="utf-8"))
    run, next_run = result["runs"]
    return {
        "result": result,
        "run": run,
        "next_run": next_run,
        "run_dir": Path(run["night"]["run_dir"]),
        "reference_dir": Path(run["reference"]["out"]),
        "results": results,
        "printed": done.stdout,
    }


def test_every_task_of_the_run_has_its_seconds(smallest):
    tasks = smallest["run"]["night"]["dag_run"]["tasks"]
    log = (smallest["run_dir"] / "airflow-dags-test.log").read_text(encoding="utf-8")
    started = set(re.findall(r"\[DAG TEST\] starting task_id=(\w+)", log))
    assert started and {t["task_id"] for t in tasks} == started
    assert all(t["state"] == "success" and t["seconds"] >= 0 for t in tasks)
    assert smallest["run"]["night"]["dag_run"]["state"] == "success"
    assert sum(t["seconds"] for t in tasks) <= smallest["run"]["night"]["wall_seconds"]


def test_spark_stages_come_from_each_application_s_event_log(smallest):
    apps = smallest["run"]["night"]["spark_apps"]
    assert apps, "no Spark application was found in the event log"
    # One event log per spark-submit of the night (a job may name its application itself).
    submitted = re.findall(
        r"spark-submit --master ", (smallest["run_dir"] / "airflow-dags-test.log").read_text(encoding="utf-8")
    )
    assert len(apps) == len(submitted)
    for app in apps:
        assert app["stages"] > 0 and app["stage_seconds"] > 0 and app["wall_seconds"] > 0, app["app"]
        assert app["lake_bytes_scanned"] > 0, app["app"]
    # The night names its parts (coursedash.spark.described): its SQL time is grouped by them.
    parts = {p["description"]: p for p in apps[0]["sql_by_description"]}
    for part in (
        "dashboard figures",
        "the night's enrolments, shared by the reports",
        "lake suite of enrolments",
        "progress reports: built, then their output suite",
        "response reports: staged and counted",
    ):
        assert parts[part]["executions"] > 0 and parts[part]["seconds"] > 0, part
    assert sum(p["executions"] for p in parts.values()) == apps[0]["sql_executions"]
    # Each task's CPU is counted once, under the part its job served.
    cpu = {p["description"]: p for p in apps[0]["cpu_by_description"]}
    assert cpu["dashboard figures"]["cpu_seconds"] > 0 and cpu["lake suite of enrolments"]["run_seconds"] > 0
    assert 0 < apps[0]["executor_cpu_seconds"] == pytest.approx(sum(p["cpu_seconds"] for p in cpu.values()), abs=0.1)
    # In seconds: a task's CPU within its run time, the tasks' run time within the application's slots.
    assert apps[0]["executor_cpu_seconds"] <= apps[0]["executor_run_seconds"] * 1.05 + 1
    assert apps[0]["executor_run_seconds"] <= apps[0]["wall_seconds"] * (os.cpu_count() or 1)


def test_the_spark_jvm_s_cpu_is_split_by_what_its_threads_do(smallest):
    """Read from /proc: its JIT compilers' and collector's CPU beside the tasks' the event log counts."""
    night = smallest["run"]["night"]
    jvm, app = night["jvm_cpu"], night["spark_apps"][0]
    assert jvm["JIT compilers"] > 0 and jvm["garbage collector"] > 0
    rest = jvm["seconds"] - jvm["JIT compilers"] - jvm["garbage collector"]
    # A local master runs the tasks in the driver's JVM: their CPU is in the rest.
    assert 0 < app["executor_cpu_seconds"] <= rest + 1
    assert "jvm_cpu" not in smallest["run"]["reference"]  # DuckDB's process is no JVM
    assert f"the Spark JVM's CPU {jvm['seconds']:.1f} s: its JIT compilers" in smallest["printed"]


def test_the_reference_ratio_and_peak_memory_are_measured(smallest):
    run = smallest["run"]
    assert run["reference"]["returncode"] == 0 and run["reference"]["wall_seconds"] > 0
    assert run["ratio_to_reference"]["seconds"] > 0
    assert run["night"]["peak_rss_total_mb"] > 0 and run["reference"]["peak_rss_total_mb"] > 0
    kinds = run["night"]["peak_rss_by_kind_mb"]
    assert kinds["airflow"] > 0 and kinds["spark_jvm"] > 0 and kinds["spark_python_driver"] > 0
    assert run["rows_per_second"]["night"] > 0
    assert run["requests_by_type"] == {"progress": 1, "userinfo": 1, "response": 1}


def test_the_duckdb_csvs_are_the_nights_csvs_cell_for_cell(smallest):
    run, run_dir = smallest["run"], smallest["run_dir"]
    reference_dir = smallest["reference_dir"]
    published = [r for r in run["night"]["requests"] if r["status"] == "SUCCESS"]
    assert len(published) == 3
    for request in published:
        (night,) = read_zip(run_dir / "var" / "reports" / request["object_key"], "Bench-pass-2026").values()
        reference = (reference_dir / f"{request['batch_id']}_{request['report_type']}.csv").read_bytes()
        night_rows = list(csv.reader(io.StringIO(night.decode("utf-8-sig"), newline="")))
        reference_rows = list(csv.reader(io.StringIO(reference.decode("utf-8-sig"), newline="")))
        assert len(night_rows) - 1 == request["row_count"] > 0
        assert reference_rows == night_rows, request["report_type"]
        assert reference == night
    assert run["comparison"]["byte_equal"] == 3 and run["comparison"]["mismatches"] == []


def test_the_night_after_keeps_the_dashboard_figures_and_publishes_the_same_csvs(smallest):
    run, next_run, run_dir = smallest["run"], smallest["next_run"], smallest["run_dir"]
    assert next_run["code"] == "this tree, the next night" and next_run["night"]["date"] == "2026-11-29"
    assert next_run["night"]["dag_run"]["state"] == "success"
    assert next_run["night"]["dag_run"]["run_id"] != run["night"]["dag_run"]["run_id"]
    # Its own requests, the same again, compared with the same reference.
    assert not {r["request_id"] for r in run["night"]["requests"]} & {
        r["request_id"] for r in next_run["night"]["requests"]
    }
    assert next_run["comparison"]["byte_equal"] == next_run["comparison"]["requests"] == 3
    # The lake did not change: the first night computed every batch's figures, the next none (docs/reports.md).
    batches = smallest["result"]["lakes"][0]["batches"]
    first = (run_dir / "airflow-dags-test.log").read_text(encoding="utf-8")
    after = (run_dir / "airflow-dags-test-2026-11-29.log").read_text(encoding="utf-8")
    assert f"figures computed for {batches} batches" in first
    assert "figures computed for 0 batches" in after
    assert f"figures to compute: 0 of {batches} batches" in after


def test_the_table_is_printed_and_the_plots_are_drawn(smallest):
    assert f"| this tree | {smallest['run']['enrolments']:,} | 3 |" in smallest["printed"]
    plots = smallest["result"]["plots"]
    assert len(plots) == 3
    for name in plots:
        assert (smallest["results"] / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert smallest["result"]["machine"]["cores"] > 0


def night_module():
    spec = importlib.util.spec_from_file_location("benchmark_night", ROOT / "benchmarks" / "night.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_same_size_pairs_every_type_on_every_batch_with_the_same_learners_on_one_batch(tmp_path):
    night = night_module()
    args = night.parse_args(["--learners", "300", "--same-size", "100", "--work", str(tmp_path)])
    assert night.cases(args) == [(300, 1, 1, 3), (300, 1, 34, 102)]
    lakes = {batches: night.lake_for(tmp_path, 300, 1, batches) for _, _, batches, _ in night.cases(args)}
    one = night.choose_requests(lakes[1], 3)
    many = night.choose_requests(lakes[34], 102)
    assert sorted((r["batch_id"], r["report_type"]) for r in one) == [
        ("batch_0001", t) for t in sorted(night.REPORT_TYPES)
    ]
    assert len({(r["batch_id"], r["report_type"]) for r in many}) == 102
    assert {r["batch_id"] for r in many} == {b["batch_id"] for b in lakes[34]["batches"]}
    assert lakes[1]["rows"]["enrolments"] == lakes[34]["rows"]["enrolments"]


def test_same_size_ratio_divides_the_many_request_night_by_the_one_batch_night():
    night = night_module()

    def run(batches, requests, seconds, reference_seconds):
        return {
            "code": "this tree",
            "learners": 300,
            "enrolments": 310,
            "lake_batches": batches,
            "requests": requests,
            "report_rows": 900,
            "night": {"wall_seconds": seconds},
            "reference": {"wall_seconds": reference_seconds},
        }

    (pair,) = night.same_size_ratios([run(1, 3, 40.0, 2.0), run(34, 102, 50.0, 8.0)])
    assert pair["ratio"] == 1.25 and pair["reference_ratio"] == 4.0
    assert pair["requests"] == [3, 102] and pair["seconds"] == [40.0, 50.0]
    assert "| **1.25** | 4.00 |" in night.same_size_table([pair])


def test_make_benchmark_runs_the_goal_nights_and_holds_them_to_their_bounds():
    night = night_module()
    assert night.cases(night.parse_args([])) == night.WORKLOADS
    assert night.cases(night.parse_args(["--five-million"]))[-1] == night.FIVE_MILLION
    assert not night.parse_args(["--sizes", "100k"]).workloads

    def run(learners, batches, requests, seconds, ratio=None, build=None):
        return {
            "code": "this tree",
            "learners": learners,
            "lake_batches": batches,
            "requests": requests,
            "night": {"wall_seconds": seconds, "dag_run": {"tasks": [{"task_id": "build_reports", "seconds": build}]}},
            "ratio_to_reference": {"seconds": ratio},
        }

    found = night.goals(
        [
            run(200, 12, 1, 40.0, build=28.0),
            run(62_000, 40, 12, 50.0),
            run(620_000, 400, 12, 60.0),
            run(620_000, 12, 12, 150.0, ratio=3.5),
        ]
    )
    assert [(g["value"], g["bound"], g["met"]) for g in found] == [
        (50.0, 45, False),
        (28.0, 30, True),
        (3.5, 3, False),
        (1.2, 1.3, True),
    ]
    assert "| this tree | 12 requests on the 100k lake: the night, Airflow included | 50.00 s | 45 s | not met |" in (
        night.goals_table(found)
    )


def test_figures_parts_times_each_part_of_the_figures_on_the_smoke_lake(smallest, spark):
    spec = importlib.util.spec_from_file_location("figures_parts", ROOT / "benchmarks" / "figures_parts.py")
    figures_parts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(figures_parts)
    (lake,) = (smallest["run_dir"].parents[2] / "lakes").glob("*/lake")
    parts = figures_parts.parts(spark, str(lake))
    assert list(parts)[-1] == "the figures of every batch" and len(parts) == 8
    for df in parts.values():  # each part is a query over the lake, and runs
        figures_parts.seconds(df)
    batches = parts["the figures of every batch"].collect()
    assert batches and {"progress_not_started", "weekly_enrolments"} <= set(batches[0].asDict())
