"""Retries and deadlines of the nightly DAG: configurable, read when the file is parsed."""

from datetime import timedelta

from tests.test_nightly_dag import load_dag


def test_retries_default_to_two_short_exponential_waits(airflow_db, monkeypatch):
    monkeypatch.delenv("COURSEDASH_TASK_RETRIES", raising=False)
    monkeypatch.delenv("COURSEDASH_RETRY_DELAY_SECONDS", raising=False)
    for task in load_dag().tasks:
        assert (task.retries, task.retry_delay, task.retry_exponential_backoff, task.max_retry_delay) == (
            2,
            timedelta(seconds=30),
            2.0,
            timedelta(minutes=10),
        ), task.task_id


def test_retries_come_from_the_environment_at_parse_time(airflow_db, monkeypatch):
    monkeypatch.setenv("COURSEDASH_TASK_RETRIES", "4")
    monkeypatch.setenv("COURSEDASH_RETRY_DELAY_SECONDS", "1.5")
    tasks = load_dag().tasks
    assert {(t.retries, t.retry_delay) for t in tasks} == {(4, timedelta(seconds=1.5))}


def deadlines() -> dict:
    """Each task's execution_timeout, and the run's dagrun_timeout, as the DAG file gives them now."""
    dag = load_dag()
    return {"run": dag.dagrun_timeout, **{t.task_id: t.execution_timeout for t in dag.tasks}}


def expected(task: timedelta, build: timedelta, publish: timedelta, notify: timedelta, run: timedelta) -> dict:
    return {
        "claim_requests": task,
        "sync_dashboard": task,
        "expire_reports": task,
        "build_reports": build,
        "publish_reports": publish,
        "notify_requesters": notify,
        "run": run,
    }


def test_every_task_and_the_run_have_a_deadline_from_the_environment(airflow_db, monkeypatch):
    for name in (
        "TASK_TIMEOUT_MINUTES",
        "BUILD_TIMEOUT_MINUTES",
        "PUBLISH_TIMEOUT_MINUTES",
        "NOTIFY_TIMEOUT_SECONDS",
        "DAGRUN_TIMEOUT_HOURS",
    ):
        monkeypatch.delenv(f"COURSEDASH_{name}", raising=False)
    # The notices' own deadline (10 minutes) comes first; the run's is under a day.
    minutes = lambda n: timedelta(minutes=n)  # noqa: E731
    assert deadlines() == expected(minutes(30), minutes(240), minutes(120), minutes(15), minutes(20 * 60))
    for name, value in {
        "TASK_TIMEOUT_MINUTES": "5",
        "BUILD_TIMEOUT_MINUTES": "90",
        "PUBLISH_TIMEOUT_MINUTES": "45",
        "NOTIFY_TIMEOUT_SECONDS": "120",
        "DAGRUN_TIMEOUT_HOURS": "6",
    }.items():
        monkeypatch.setenv(f"COURSEDASH_{name}", value)
    assert deadlines() == expected(minutes(5), minutes(90), minutes(45), minutes(7), minutes(6 * 60))
