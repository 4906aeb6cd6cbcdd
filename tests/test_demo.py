"""`coursedash demo` stays short: a line per step, then a table that says how to open each zip.

The whole demo (Spark and an Airflow run) takes minutes, too long for the suite; its
parts are tested here on real rows and real zips, and it is run by hand before a release.
"""

import io
from functools import partial

import pytest

from coursedash import demo
from coursedash.texttable import text_table
from tests.handlake import CREATOR, MENTOR
from tests.published import add_request

# Lines as `airflow dags test` writes them (Airflow 3), among many others: verbatim, however long.
AIRFLOW_OUTPUT = """\
2026-11-29T00:27:34.758291Z [info     ] Task instance state updated    [airflow.api_fastapi] new_state=success
2026-11-29T00:27:34.771815Z [info     ] [DAG TEST] starting task_id=build_reports map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-29T00:27:34.772469Z [info     ] [DAG TEST] running task <TaskInstance: course_reports_nightly.build_reports manual__2026 [TaskInstanceState.SCHEDULED]>
2026-11-29T00:27:35.078693Z [info     ] 26/11/29 00:27:39 WARN NativeCodeLoader: Unable to load native-hadoop library [airflow.task.hooks]
2026-11-29T00:28:07.155384Z [info     ] [DAG TEST] end task task_id=build_reports map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
2026-11-29T00:28:07.155638Z [info     ] [DAG TEST] starting task_id=publish_reports map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1501
2026-11-29T00:28:07.155384Z [info     ] [DAG TEST] end task task_id=publish_reports map_index=-1 [airflow.sdk.definitions.dag] loc=dag.py:1563
"""  # noqa: E501 - log lines copied as Airflow writes them


def test_each_airflow_task_is_one_progress_line_with_its_time():
    printed = io.StringIO()
    ticks = iter([0.0, 14.2, 14.2, 75.0])
    on_line = demo.task_progress({"progress": 2}, out=partial(print, file=printed), clock=lambda: next(ticks))
    for line in AIRFLOW_OUTPUT.splitlines(keepends=True):
        on_line(line)
    assert printed.getvalue() == (
        "  building 2 reports (2 progress) and the dashboard's figures in one Spark application… 14 s\n"
        "  zipping and publishing the reports… 1 min 01 s\n"
    )


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_the_table_says_which_zip_is_encrypted_and_with_which_password(app_env):
    locked = add_request(app_env, CREATOR, "userinfo", password=demo.DEMO_PASSWORD)
    plain = add_request(app_env, MENTOR, "response")
    failed = add_request(app_env, MENTOR, "progress", status="FAILED", error="the batch is gone from the lake")
    rows = demo.results([locked, plain, failed])
    assert [(r["type"], r["requested by"], r["status"], r["zip"]) for r in rows] == [
        ("userinfo", CREATOR, "SUCCESS", "AES-256, password Demo-pass-2026"),
        ("response", MENTOR, "SUCCESS", "plain, no password"),
        ("progress", MENTOR, "FAILED", ""),
    ]
    assert rows[0]["file"].endswith(f"/userinfo/{locked}.zip")
    assert rows[2]["file"] == "the batch is gone from the lake"
    table = text_table(rows, ["type", "requested by", "status", "rows", "zip", "file"]).splitlines()
    assert len(table) == 4 and table[0].split() == ["type", "requested", "by", "status", "rows", "zip", "file"]
    assert [r["e-mail"] for r in rows] == ["", "", ""]  # no notice asked for


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_with_smtp_the_table_says_whose_notice_was_sent(app_env):
    sent = add_request(app_env, CREATOR, "progress", notify_email=None, email_notice="sent")
    assert [r["e-mail"] for r in demo.results([sent])] == ["sent"]
