"""
### Course reports, nightly

Builds every on-demand course report that course creators and mentors requested on
the dashboard (docs/lifecycle.md, docs/reports.md):

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

Nothing waits for ever: `build_reports` may take COURSEDASH_BUILD_TIMEOUT_MINUTES
(default 240), `publish_reports` COURSEDASH_PUBLISH_TIMEOUT_MINUTES (120), the other
tasks COURSEDASH_TASK_TIMEOUT_MINUTES (30) each, `notify_requesters` its own deadline
COURSEDASH_NOTIFY_TIMEOUT_SECONDS (600) plus five minutes, and a whole run
COURSEDASH_DAGRUN_TIMEOUT_HOURS (20), so that a stuck night never holds up the next
one. A task told to stop (SIGTERM) stops: the Python tasks raise inside their work
(coursedash.stop), the build stops its Spark application whole.
"""

import os
from datetime import timedelta

import pendulum
from airflow.sdk import TriggerRule, dag, task

from coursedash.stop import stops_on_sigterm
from coursedash_airflow.operators import BuildReportsOperator

# Read from the environment only, when the file is parsed (it is parsed every few seconds).
_env = os.environ.get


def _minutes(name: str, default: float) -> timedelta:
    return timedelta(minutes=float(_env(name) or default))


TASK_TIMEOUT = _minutes("COURSEDASH_TASK_TIMEOUT_MINUTES", 30)
# The notify task stops sending at its own deadline; Airflow's comes after it, as a backstop.
NOTIFY_TIMEOUT = timedelta(seconds=float(_env("COURSEDASH_NOTIFY_TIMEOUT_SECONDS") or 600), minutes=5)


def _logical_time(context):
    # Manual runs may have no logical date; the run's own time stands in then.
    return context.get("logical_date") or context["dag_run"].run_after


@dag(
    dag_id="course_reports_nightly",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    # Under a day: a night that cannot finish is stopped before the next one is due.
    dagrun_timeout=timedelta(hours=float(_env("COURSEDASH_DAGRUN_TIMEOUT_HOURS") or 20)),
    default_args={
        "owner": "data-engineering",
        "retries": int(_env("COURSEDASH_TASK_RETRIES") or 2),
        "retry_delay": timedelta(seconds=float(_env("COURSEDASH_RETRY_DELAY_SECONDS") or 30)),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "execution_timeout": TASK_TIMEOUT,
    },
    tags=["coursedash", "reports", "spark"],
    doc_md=__doc__,
)
def course_reports_nightly():
    @task
    def claim_requests(**context) -> dict:
        from coursedash.nightly import claim_requests

        with stops_on_sigterm():
            return claim_requests(context["run_id"], _logical_time(context).date())

    # Publishing runs even when the build failed: the requests of a type it could not
    # build are then marked FAILED, to be retried, and the other types still publish.
    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=_minutes("COURSEDASH_PUBLISH_TIMEOUT_MINUTES", 120))
    def publish_reports(**context) -> dict:
        from coursedash.nightly import publish_reports

        with stops_on_sigterm():
            return publish_reports(context["run_id"], _logical_time(context).date())

    # Also after a failed publish: notices due from earlier runs still go.
    @task(trigger_rule=TriggerRule.ALL_DONE, execution_timeout=NOTIFY_TIMEOUT)
    def notify_requesters(**context) -> dict:
        from coursedash.notify import notify_requesters

        with stops_on_sigterm():
            return notify_requesters(context["run_id"])

    # Also after a failed build: the figures come first, and are stored when they were made.
    @task(trigger_rule=TriggerRule.ALL_DONE)
    def sync_dashboard(**context) -> dict:
        from coursedash.nightly import figures_dir
        from coursedash.sync import store_night_figures

        with stops_on_sigterm():
            return store_night_figures(figures_dir(context["run_id"]))

    @task
    def expire_reports(**context) -> int:
        from coursedash.nightly import expire_reports

        with stops_on_sigterm():
            return expire_reports(_logical_time(context))

    expire_reports()
    build = claim_requests() >> BuildReportsOperator(
        task_id="build_reports", execution_timeout=_minutes("COURSEDASH_BUILD_TIMEOUT_MINUTES", 240)
    )
    build >> publish_reports() >> notify_requesters()
    build >> sync_dashboard()


course_reports_nightly()
