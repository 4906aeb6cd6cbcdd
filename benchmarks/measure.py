"""What the benchmark reads off a run: memory of a process tree, Airflow task times, Spark stage times.

Nothing here knows the DAG's task ids or the jobs' names: the task layout and the
Spark applications may change, and the figures must follow them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil

SAMPLE_SECONDS = 0.2
THREAD_SAMPLES = 5  # the JVM's threads every 5th sample: reading a few hundred of them costs about 5 ms
MIN_AGE_SECONDS = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # the unit of /proc's CPU times

# A JVM's own threads by what they do, from the start of their names: where a Spark
# application's CPU goes besides its tasks, which the event log counts.
JVM_THREADS = {
    "JIT compilers": ("C1 CompilerThre", "C2 CompilerThre", "Sweeper thread"),
    "garbage collector": ("GC Thread", "G1 ", "VM Thread"),
}


def process_kind(process: psutil.Process) -> str:
    """Which part of a night (or of the reference) a process is, from its command line."""
    try:
        cmdline = process.cmdline()
        name = process.name()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    line = " ".join(cmdline)
    if name == "java" or "org.apache.spark" in line:
        return "spark_jvm"
    if "pyspark.daemon" in line or "pyspark.worker" in line:
        return "spark_python_worker"
    if any(part.endswith(".py") and "/jobs/" in part for part in cmdline):
        return "spark_python_driver"  # spark-submit's child: the job's own Python
    if "reference.py" in line:
        return "duckdb_reference"
    if "airflow" in line:
        return "airflow"  # `airflow dags test` and the task processes it runs
    return f"other ({name})"


class TreeSampler:
    """Samples the RSS of a process and all its descendants every SAMPLE_SECONDS, in a thread.

    `peak_by_kind` is the largest RSS of any one process of each kind (its own high
    water mark, so a peak between two samples counts); `peak_total`
    the largest sum over the whole tree at one instant, and `at_peak` what made it up
    (processes and MB by kind). RSS counts pages shared between processes (forked
    Python workers) once per process, so the sum overstates what the machine held.

    `jvm_cpu` is the CPU of the tree's JVMs, with what their JIT compilers and garbage
    collector took of it (JVM_THREADS): each thread's CPU as last sampled, every
    THREAD_SAMPLES samples.
    """

    def __init__(self, pid: int):
        self.root = psutil.Process(pid)
        self.peak_by_kind: dict[str, int] = defaultdict(int)
        self.peak_total = 0
        self.at_peak: dict[str, list] = {}
        self.samples = 0
        self.jvm_seconds: dict[int, float] = {}
        self.jvm_threads: dict[tuple[int, int], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            # Often at first, so that a run of a fraction of a second is seen more than once.
            self._stop.wait(SAMPLE_SECONDS if time.monotonic() - started > 1 else SAMPLE_SECONDS / 10)

    def sample(self) -> None:
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total, now = 0, defaultdict(list)
        for process in tree:
            try:
                # A process younger than a second may be a fork on its way to exec (the
                # JVM spawning the job's Python): it shows its parent's RSS, counted twice.
                if process is not self.root and time.time() - process.create_time() < MIN_AGE_SECONDS:
                    continue
                rss = process.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
            kind = process_kind(process)
            if kind == "spark_jvm":
                self._sample_jvm(process)
            self.peak_by_kind[kind] = max(self.peak_by_kind[kind], high_water_rss(process, rss))
            total += rss
            now[kind].append(rss)
        if total > self.peak_total:
            self.peak_total, self.at_peak = total, dict(now)
        self.samples += 1

    def _sample_jvm(self, process: psutil.Process) -> None:
        try:
            times = process.cpu_times()
        except psutil.Error:
            return
        self.jvm_seconds[process.pid] = times.user + times.system  # exited threads' included
        if self.samples % THREAD_SAMPLES:
            return
        try:
            tids = os.listdir(f"/proc/{process.pid}/task")
        except OSError:
            return
        for tid in tids:
            try:
                with open(f"/proc/{process.pid}/task/{tid}/stat", encoding="ascii", errors="replace") as f:
                    stat = f.read()
            except OSError:  # the thread ended
                continue
            name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
            self.jvm_threads[process.pid, int(tid)] = (name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)

    def jvm_cpu(self) -> dict:
        """The JVMs' CPU seconds, and those of their threads of each JVM_THREADS kind."""
        kinds = dict.fromkeys(JVM_THREADS, 0.0)
        for name, seconds in self.jvm_threads.values():
            kind = next((k for k, starts in JVM_THREADS.items() if name.startswith(starts)), None)
            if kind is not None:
                kinds[kind] += seconds
        return {"seconds": round(sum(self.jvm_seconds.values()), 1), **{k: round(v, 1) for k, v in kinds.items()}}

    def result(self) -> dict:
        return {
            # At least the largest process's own peak, which may fall between two samples.
            "peak_rss_total_mb": _mb(max(self.peak_total, *self.peak_by_kind.values(), 0)),
            "peak_rss_by_kind_mb": {k: _mb(v) for k, v in sorted(self.peak_by_kind.items()) if k != "gone"},
            "at_peak": {
                k: {"processes": len(v), "mb": _mb(sum(v)), "each_mb": [_mb(x) for x in sorted(v, reverse=True)]}
                for k, v in sorted(self.at_peak.items())
                if k != "gone"
            },
            "rss_samples": self.samples,
            **({"jvm_cpu": self.jvm_cpu()} if self.jvm_seconds else {}),
        }


def _mb(n: int) -> float:
    return round(n / 2**20, 1)


def run_sampled(command: list[str], env: dict, log_path: Path, cwd: Path | None = None) -> dict:
    """Run a command to its end, output into log_path, sampling its process tree; return figures."""
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
        with TreeSampler(process.pid) as sampler:
            returncode = process.wait()
    return {"returncode": returncode, "wall_seconds": round(time.perf_counter() - started, 2), **sampler.result()}


def high_water_rss(process: psutil.Process, rss: int) -> int:
    """The process's own peak RSS since it started (VmHWM), which a sample between two peaks misses.

    Not the kernel's ru_maxrss: that counts the parent's memory for a child started
    by vfork, as Python and the JVM start theirs.
    """
    try:
        with open(f"/proc/{process.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return max(rss, int(line.split()[1]) * 1024)
    except (OSError, ValueError):
        pass
    return rss


# --- Airflow ------------------------------------------------------------------------------


def _utc(value) -> dt.datetime | None:
    if value is None:
        return None
    t = dt.datetime.fromisoformat(str(value))
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def airflow_run(airflow_db: Path, dag_id: str) -> dict:
    """The DAG's latest run in Airflow's metadata database: its state, seconds and each task's.

    Read generically from task_instance (task_id, state, start and end): whatever tasks
    the DAG has, they are all reported, in the order they started.
    """
    con = sqlite3.connect(f"file:{airflow_db}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        run = con.execute(
            "SELECT run_id, state, start_date, end_date FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1",
            (dag_id,),
        ).fetchone()
        if run is None:
            return {"state": "no run", "tasks": []}
        tasks = con.execute(
            "SELECT task_id, map_index, state, start_date, end_date, try_number FROM task_instance "
            "WHERE dag_id = ? AND run_id = ?",
            (dag_id, run["run_id"]),
        ).fetchall()
    finally:
        con.close()
    rows = []
    for t in tasks:
        start, end = _utc(t["start_date"]), _utc(t["end_date"])
        rows.append(
            {
                "task_id": t["task_id"] if t["map_index"] in (None, -1) else f"{t['task_id']}[{t['map_index']}]",
                "state": t["state"],
                "try_number": t["try_number"],
                "start": start.isoformat() if start else None,
                "seconds": round((end - start).total_seconds(), 2) if start and end else None,
            }
        )
    rows.sort(key=lambda r: (r["start"] is None, r["start"] or "", r["task_id"]))
    # `dags test` dates its run at the logical date: the tasks' own times give the span.
    starts = [_utc(t["start_date"]) for t in tasks if t["start_date"]]
    ends = [_utc(t["end_date"]) for t in tasks if t["end_date"]]
    return {
        "run_id": run["run_id"],
        "state": run["state"],
        "tasks_span_seconds": round((max(ends) - min(starts)).total_seconds(), 2) if starts and ends else None,
        "tasks": rows,
    }


# --- Spark ----------------------------------------------------------------------------------


def _scan_metric_ids(plan: dict, found: set[int]) -> None:
    if plan.get("nodeName", "").startswith("Scan parquet"):
        found.update(m["accumulatorId"] for m in plan.get("metrics", []) if m["name"] == "size of files read")
    for child in plan.get("children", []):
        _scan_metric_ids(child, found)


def spark_applications(event_dir: Path, top: int = 8) -> list[dict]:
    """Each Spark application of the run, from its event log: wall, stages, SQL executions, lake bytes read.

    Stage seconds are Submission to Completion Time; stages run in parallel, so their
    sum can exceed the application's wall time. `top_stages` are the longest, by name.
    Lake bytes are the Parquet scans' "size of files read" metric (each read of a table
    counted, none of the cached re-reads). `cpu_by_description` sums each task's executor
    CPU and run seconds by the part of the night its job served: what a part costs the
    machine, where its SQL seconds also count the time it waited for a core.
    """
    # Spark 4 rolls each application's log into a folder eventlog_v2_<app>/events_<n>_<app>.
    logs: dict[Path, list[Path]] = defaultdict(list)
    for path in sorted(event_dir.rglob("*")):
        if path.is_file() and not path.name.startswith((".", "appstatus")):
            logs[path.parent if path.parent.name.startswith("eventlog_v2_") else path].append(path)
    apps = []
    for parts in logs.values():
        app = {"name": None, "start": None, "end": None, "stages": [], "executions": {}, "scan_ids": set(), "bytes": 0}
        part_of_stage: dict[int, str] = {}
        cpu: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])  # part -> [CPU seconds, run seconds]
        for line in _lines(sorted(parts, key=_part_number)):
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            kind = event.get("Event", "")
            if kind == "SparkListenerApplicationStart":
                app["name"], app["start"] = event["App Name"], event["Timestamp"]
            elif kind == "SparkListenerApplicationEnd":
                app["end"] = event["Timestamp"]
            elif kind == "SparkListenerJobStart":
                part = _short((event.get("Properties") or {}).get("spark.job.description", ""))
                for stage in event.get("Stage IDs", []):  # a stage a later job reuses keeps its first job's part
                    part_of_stage.setdefault(stage, part or "(unnamed)")
            elif kind == "SparkListenerTaskEnd":
                metrics = event.get("Task Metrics") or {}
                spent = cpu[part_of_stage.get(event.get("Stage ID"), "(unnamed)")]
                spent[0] += metrics.get("Executor CPU Time", 0) / 1e9
                spent[1] += metrics.get("Executor Run Time", 0) / 1e3
            elif kind == "SparkListenerStageCompleted":
                info = event["Stage Info"]
                if info.get("Submission Time") and info.get("Completion Time"):
                    app["stages"].append(
                        {
                            "stage_id": info["Stage ID"],
                            "name": _short(info["Stage Name"]),
                            "tasks": info["Number of Tasks"],
                            "seconds": (info["Completion Time"] - info["Submission Time"]) / 1000,
                        }
                    )
            elif kind.endswith("SparkListenerSQLExecutionStart"):
                app["executions"][event["executionId"]] = {"start": event["time"], "what": event.get("description", "")}
                _scan_metric_ids(event.get("sparkPlanInfo", {}), app["scan_ids"])
            elif kind.endswith("SparkListenerSQLAdaptiveExecutionUpdate"):
                _scan_metric_ids(event.get("sparkPlanInfo", {}), app["scan_ids"])
            elif kind.endswith("SparkListenerSQLExecutionEnd"):
                if event["executionId"] in app["executions"]:
                    app["executions"][event["executionId"]]["end"] = event["time"]
            elif kind.endswith("SparkListenerDriverAccumUpdates"):
                app["bytes"] += sum(v for acc, v in event["accumUpdates"] if acc in app["scan_ids"])
        if app["name"] is None:
            continue  # not an application's log
        executions = sorted((e for e in app["executions"].values() if "end" in e), key=lambda e: e["start"] - e["end"])
        stages = sorted(app["stages"], key=lambda s: -s["seconds"])
        apps.append(
            {
                "app": app["name"],
                "wall_seconds": round((app["end"] - app["start"]) / 1000, 2) if app["start"] and app["end"] else None,
                "stages": len(stages),
                "stage_seconds": round(sum(s["seconds"] for s in stages), 2),
                "sql_executions": len(executions),
                "sql_execution_seconds": round(sum(e["end"] - e["start"] for e in executions) / 1000, 2),
                # JVM start, session and suite set-up, Python between the actions.
                "seconds_outside_sql": round(
                    (app["end"] - app["start"] - sum(e["end"] - e["start"] for e in executions)) / 1000, 2
                )
                if app["start"] and app["end"]
                else None,
                "lake_bytes_scanned": app["bytes"],
                "top_stages": [{**s, "seconds": round(s["seconds"], 2)} for s in stages[:top]],
                "top_sql_executions": [
                    {"what": _short(e["what"]), "seconds": round((e["end"] - e["start"]) / 1000, 2)}
                    for e in executions[:top]
                ],
                "sql_by_description": by_description(executions),
                "executor_cpu_seconds": round(sum(c for c, _ in cpu.values()), 2),
                "executor_run_seconds": round(sum(r for _, r in cpu.values()), 2),
                "cpu_by_description": sorted(
                    (
                        {"description": k, "cpu_seconds": round(c, 2), "run_seconds": round(r, 2)}
                        for k, (c, r) in cpu.items()
                    ),
                    key=lambda part: -part["cpu_seconds"],
                ),
            }
        )
    apps.sort(key=lambda a: a["app"])
    return apps


def _lines(paths: list[Path]):
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f


def _part_number(path: Path) -> int:
    """events_<n>_<app>: the parts of a rolled log in order."""
    pieces = path.name.split("_")
    return int(pieces[1]) if len(pieces) > 2 and pieces[1].isdigit() else 0


def _short(name: str) -> str:
    """A stage or execution name without its folders: `collect at frames.py:167`."""
    return re.sub(r"/\S*/", "", name.splitlines()[0] if name else "")[:100]


def by_description(executions: list[dict]) -> list[dict]:
    """SQL executions grouped by their description, longest total first.

    The description is the part of the night the job names (`lake suite of users`,
    `progress reports: staged and counted`: coursedash.spark.described), or, for code
    that names none, the call that started the query (`collect at frames.py:167`).
    """
    parts: dict[str, list[float]] = defaultdict(list)
    for e in executions:
        parts[_short(e["what"])].append((e["end"] - e["start"]) / 1000)
    return sorted(
        ({"description": k, "executions": len(v), "seconds": round(sum(v), 2)} for k, v in parts.items()),
        key=lambda part: -part["seconds"],
    )
