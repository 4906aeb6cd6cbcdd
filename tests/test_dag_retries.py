"""Retries and deadlines of the nightly DAG: configurable, read when the file is parsed."""

from datetime import timedelta

from tests.test_nightly_dag import load_dag


def test_retries_default_to_two_short_exponential_waits(airflow_db, monkeypatch):
    monkeypatch.delenv("COURSEDASH_TASK_RETRIES", raising=False)
    monkeypatch.delenv("COURSEDASH_RETRY_DELAY_SECONDS", raising=False)
    for task in load_dag().tasks:
        assert (task.retries, task.retry_delay, task.retry_exponential_backoff, task.max_retry_delay) == (
            2, timedelta(seconds=30), 2.0, timedelta(minutes=10)
        ), task.task_id


def test_retries_come_from_the_environment_at_parse_time(airflow_db, monkeypatch):
    monkeypatch.setenv("COURSEDASH_TASK_RETRIES", "4")
    monkeypatch.setenv("COURSEDASH_RETRY_DELAY_SECONDS", "1.5")
    tasks = load_dag().tasks
    assert {(t.retries, t.retry_delay) for t in tasks} == {(4, timedelta(seconds=1.5))}


def test_every_task_and_the_run_have_a_deadline_from_the_environment(airflow_db, monkeypatch):
    for name in ("TASK_TIMEOUT_MINUTES", "BUILD_TIMEOUT_MINUTES", "PUBLISH_TIMEOUT_MINUTES", "NOTIFY_TIMEOUT_SECONDS",
                 "DAGRUN_TIMEOUT_HOURS"):
        monkeypatch.delenv(f"COURSEDASH_{name}", raising=False)
    dag = load_dag()
    timeouts = {t.task_id: t.execution_timeout for t in dag.tasks}
    assert timeouts == {
        "claim_requests": timedelta(minutes=30), "sync_dashboard": timedelta(minutes=30),
        "expire_reports": timedelta(minutes=30), "build_reports": timedelta(hours=4),
        "publish_reports": timedelta(hours=2), "notify_requesters": timedelta(minutes=15),
    }
    assert dag.dagrun_timeout == timedelta(hours=20)  # stopped before the next night is due

    monkeypatch.setenv("COURSEDASH_TASK_TIMEOUT_MINUTES", "5")
    monkeypatch.setenv("COURSEDASH_BUILD_TIMEOUT_MINUTES", "90")
    monkeypatch.setenv("COURSEDASH_PUBLISH_TIMEOUT_MINUTES", "45")
    monkeypatch.setenv("COURSEDASH_NOTIFY_TIMEOUT_SECONDS", "120")
    monkeypatch.setenv("COURSEDASH_DAGRUN_TIMEOUT_HOURS", "6")
    dag = load_dag()
    timeouts = {t.task_id: t.execution_timeout for t in dag.tasks}
    assert timeouts == {
        "claim_requests": timedelta(minutes=5), "sync_dashboard": timedelta(minutes=5),
        "expire_reports": timedelta(minutes=5), "build_reports": timedelta(minutes=90),
        "publish_reports": timedelta(minutes=45), "notify_requesters": timedelta(minutes=7),
    }
    assert dag.dagrun_timeout == timedelta(hours=6)
