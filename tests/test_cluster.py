"""The same job on a Spark standalone cluster, chosen by configuration alone."""

import json
import os
import urllib.request

import pyarrow.parquet as pq
import pytest

from coursedash.manifest import Manifest, read_summary
from coursedash.spark import class_archive, submit
from coursedash.stack import Stack, Topology
from tests import handlake
from tests.conftest import _free_port
from tests.lakefixtures import write_lake


@pytest.fixture(scope="module")
def spark_cluster(tmp_path_factory):
    """A master and one worker, on loopback, started as `make stack` starts them (coursedash/stack.py)."""
    topology = Topology(
        home=str(tmp_path_factory.mktemp("spark-cluster")),
        spark_master_port=_free_port(),
        spark_ui_port=_free_port(),
        spark_worker_ui_port=_free_port(),
    )
    stack = Stack(topology)
    try:
        stack.start_services(["spark-master", "spark-worker"])
        yield topology
    finally:
        stack.down()


def test_the_night_on_a_standalone_cluster(spark_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSEDASH_SPARK_MASTER", spark_cluster.spark_master_url)
    # A test-sized cluster: the executor gets the suite's JVM options, and few shuffle partitions.
    # Spark's code generation and adaptive execution are back on: this night runs the queries as production does.
    monkeypatch.setenv(
        "COURSEDASH_SPARK_CONF",
        os.environ.get("COURSEDASH_SPARK_CONF", "")
        + (
            " spark.executor.memory=1g spark.sql.shuffle.partitions=4"
            " spark.executor.extraJavaOptions='-XX:TieredStopAtLevel=1 -XX:+UseSerialGC'"
            " spark.sql.codegen.wholeStage=true spark.sql.codegen.factoryMode=FALLBACK spark.sql.adaptive.enabled=true"
        ),
    )
    lake = write_lake(tmp_path / "lake", handlake.TABLES)
    manifest = tmp_path / "progress.manifest.json"
    Manifest("progress", "2026-11-28", str(lake), [{"request_id": "r1", "course_id": "c1", "batch_id": "b1"}]).save(
        manifest
    )
    out, figures = tmp_path / "out", tmp_path / "figures"
    submit(
        "jobs/night.py",
        ["--lake", str(lake), "--figures", str(figures), "--manifest", str(manifest), "--out", str(out)],
    )

    summary = read_summary(out)
    assert summary["requests"]["r1"]["rows"] == 3
    [staged] = (out / "rows" / "request_id=r1").glob("*.parquet")
    cells = pq.read_table(staged).column("cells").to_pylist()
    assert [row[4] for row in cells] == ["L1", "L2", "L3"]
    assert [row[18] for row in cells] == ["100", "33", "67"]
    counts = pq.read_table(figures / "batches").select(["batch_id", "enrolment_count", "completed_count"]).to_pylist()
    assert {"batch_id": "b1", "enrolment_count": 3, "completed_count": 1} in counts
    # It ran on the cluster, not in a local Spark.
    with urllib.request.urlopen(spark_cluster.spark_status_url, timeout=5) as r:
        assert [app["name"] for app in json.load(r)["completedapps"]] == ["course_reports"]
    # Its executor was started mapping the class archive, and the JVM took it (a refused one says so).
    [executor_log] = (spark_cluster.root / "spark-work").glob("app-*/*/stderr")
    started = executor_log.read_text()
    assert f"-XX:SharedArchiveFile={class_archive()}" in started.splitlines()[0].replace('"', "")
    assert "Unable to use shared archive" not in started
