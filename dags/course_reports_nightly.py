"""
### Course reports, nightly

Builds every on-demand course report that course creators and mentors requested on
the dashboard (CONTRACT §2, §4):

1. `claim_requests` takes every SUBMITTED request, every transient failure with
   attempts left, and every request a crashed run left PROCESSING; it writes one
   manifest per report type (ids and batches only: no data, no passwords).
2. `build_reports` runs the night's one Spark application: the dashboard's figures,
   then every report type, each lake table validated once for every request that reads
   it. A report type that breaks fails the task, whose log and error name it; the other
   types are still built and published.
3. `publish_reports` writes each request's CSV, zips it (AES-256 with the request's
   password, read from the database here and nowhere else), publishes it under
   COURSEDASH_REPORTS_URI and records SUCCESS or FAILED per request.
4. `notify_requesters` tells each requester whose request is now final (SUCCESS, or a
   FAILED that will not be retried), by e-mail and/or signed webhook as configured;
   each notice is recorded once sent. An unsent one waits for the next run: notices
   never fail the night.

After the build, `sync_dashboard` stores the figures it computed: the dashboard's
courses, batches and their enrolment and completion counts. Beside them,
`expire_reports` retires reports older than COURSEDASH_RETENTION_DAYS (default 30) and
deletes their files.

A rerun for the same date rebuilds only what is not yet final and overwrites the
same objects: nothing is published twice.

A failed task is retried COURSEDASH_TASK_RETRIES times (default 2), first after
COURSEDASH_RETRY_DELAY_SECONDS (default 30), each wait twice the last, at most ten
minutes: short enough for `airflow dags test`, long enough to ride out a blip.
"""

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.sdk import TriggerRule

from coursedash_airflow.operators import BuildReportsOperator


def _logical_time(context):
    # Manual runs may have no logical date; the run's own time stands in then.
    return context.get("logical_date") or context["dag_run"].run_after


@dag(
    dag_id="course_reports_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "owner": "data-engineering",
        # Read from the environment only: the file is parsed every few seconds.
        "retries": int(os.environ.get("COURSEDASH_TASK_RETRIES", "2")),
        "retry_delay": timedelta(seconds=float(os.environ.get("COURSEDASH_RETRY_DELAY_SECONDS", "30"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
    },
    tags=["coursedash", "reports", "spark"],
    doc_md=__doc__,
)
def course_reports_nightly():
    @task
    def claim_requests(**context) -> dict:
        from coursedash.nightly import claim_requests

        return claim_requests(context["run_id"], _logical_time(context).date())

    # Publishing runs even when the build failed: the requests of a type it could not
    # build are then marked FAILED, to be retried, and the other types still publish.
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def publish_reports(**context) -> dict:
        from coursedash.nightly import publish_reports

        return publish_reports(context["run_id"], _logical_time(context).date())

    # Also after a failed publish: notices due from earlier runs still go.
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def notify_requesters(**context) -> dict:
        from coursedash.notify import notify_requesters

        return notify_requesters(context["run_id"])

    # Also after a failed build: the figures come first, and are stored when they were made.
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def sync_dashboard(**context) -> dict:
        from coursedash.nightly import figures_dir
        from coursedash.sync import store_night_figures

        return store_night_figures(figures_dir(context["run_id"]))

    @task
    def expire_reports(**context) -> int:
        from coursedash.nightly import expire_reports

        return expire_reports(_logical_time(context))

    expire_reports()
    build = claim_requests() >> BuildReportsOperator(task_id="build_reports")
    build >> publish_reports() >> notify_requesters()
    build >> sync_dashboard()


course_reports_nightly()
