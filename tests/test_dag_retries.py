"""Retries of the nightly DAG: configurable, short at first, exponential, capped."""

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
