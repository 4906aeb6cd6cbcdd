"""One pass a night: the lake is scanned as many times for one request as for many, of every type.

Each table is scanned by its quality suite (the columns it checks) and once more for
the reports: for the frame every report derives from it alike, persisted once a night
(jobs.frames.SHARED), or else by each report type that reads it. Users are pruned to
the night's learners and persisted, so they are scanned once.
"""

import re
from collections import Counter

import pytest

from coursedash.manifest import Manifest
from jobs import night
from tests import handlake
from tests.lakefixtures import write_lake

# The module's tests share built frames (module fixtures): one worker runs them all (make test's --dist loadgroup).
pytestmark = pytest.mark.xdist_group("single_pass")

TABLES_READ = {
    "progress": {"courses", "batches", "course_contents", "enrolments", "assessment_attempts", "users"},
    "userinfo": {"courses", "batches", "enrolments", "users", "user_consents"},
    "response": {"courses", "batches", "course_contents", "enrolments", "assessment_attempts", "question_responses"},
}


def table_scans(spark, after_execution: int) -> Counter:
    """How many times each lake table's files were scanned by SQL executions after the given id.

    Read from Spark's own SQL status store: a Parquet scan node whose "number of files
    read" has a value in that execution really read files (a cached table shows the
    node, with no value).
    """
    store = spark._jsparkSession.sharedState().statusStore()
    executions = store.executionsList()
    scans = Counter()
    for i in range(executions.size()):
        execution_id = executions.apply(i).executionId()
        if execution_id <= after_execution:
            continue
        values = store.executionMetrics(execution_id)
        nodes = store.planGraph(execution_id).allNodes()
        for j in range(nodes.size()):
            node = nodes.apply(j)
            if not node.name().startswith("Scan parquet"):
                continue
            table = re.search(r"/(\w+)\]", node.desc()).group(1)
            metrics = node.metrics()
            for k in range(metrics.size()):
                metric = metrics.apply(k)
                value = values.get(metric.accumulatorId())
                if metric.name() == "number of files read" and value.isDefined() and int(value.get()) > 0:
                    scans[table] += 1
    return scans


def last_execution(spark) -> int:
    executions = spark._jsparkSession.sharedState().statusStore().executionsList()
    return max((executions.apply(i).executionId() for i in range(executions.size())), default=-1)


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    return write_lake(tmp_path_factory.mktemp("lake"), handlake.TABLES)


def build_and_scan(spark, lake, out, requests_of: dict[str, list[dict]]) -> tuple[Counter, dict]:
    """Build one night in-process, each report type for its requests; return the table scans and the summaries."""
    manifests = [(Manifest(t, "2026-11-28", str(lake), requests), str(out / t)) for t, requests in requests_of.items()]
    before = last_execution(spark)
    summaries = night.build(spark, manifests)
    return table_scans(spark, before), summaries


ONE = [{"request_id": "r0", "course_id": "c1", "batch_id": "b1"}]
MANY = ONE + [
    {"request_id": f"r{i}", "course_id": "c1", "batch_id": batch}
    for i, batch in enumerate(["b1", "b2", "b1", "b2", "b1", "b2", "b1"], start=1)
]


def expected_scans(report_types) -> Counter:
    """Per table: once by its suite, then once per report type, or once in all if persisted."""
    shared = {"courses", "batches", "course_contents", "enrolments"}
    readers = Counter(table for t in report_types for table in TABLES_READ[t])
    return Counter({table: 1 if table == "users" else 2 if table in shared else 1 + n for table, n in readers.items()})


@pytest.fixture(scope="module")
def every_type(spark, lake, tmp_path_factory) -> tuple[Counter, dict]:
    """Every report type built in one night for MANY requests each, as the DAG does: (scans, summaries)."""
    return build_and_scan(
        spark,
        lake,
        tmp_path_factory.mktemp("every_type"),
        {t: [{**r, "request_id": f"{t}-{r['request_id']}"} for r in MANY] for t in night.REPORTS},
    )


def test_each_table_is_scanned_once_by_its_suite_and_once_for_the_reports(every_type):
    """As often for MANY requests of every type as for the tables they read: tables two report types
    read alike (batches, enrolments, users, ...) are read once for all of them."""
    scans, summaries = every_type
    assert scans == expected_scans(night.REPORTS)
    for t in night.REPORTS:  # the same rows for a batch however many requests ask for it
        requests = summaries[t]["requests"]
        assert requests[f"{t}-r7"]["rows"] == requests[f"{t}-r0"]["rows"] > 0  # r0 and r7: batch b1


def test_the_count_sees_more_scans_without_the_shared_frames(spark, lake, tmp_path, monkeypatch, every_type):
    """Without the persisted frames each use of the learners and the users would scan the lake again."""
    monkeypatch.setattr(type(spark.range(1)), "persist", lambda self, *a, **k: self)
    scans, summaries = build_and_scan(spark, lake, tmp_path, {"progress": ONE})
    expected = expected_scans(["progress"])
    assert scans["enrolments"] > expected["enrolments"] and scans["users"] > expected["users"]
    # The same report for r0 alone and without the persisted frames as among every type's MANY with them.
    assert summaries["progress"]["requests"]["r0"] == every_type[1]["progress"]["requests"]["progress-r0"]
