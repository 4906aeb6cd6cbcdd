"""Builds one report type's reports for every request the night claimed."""

from __future__ import annotations

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException


class BuildReportsOperator(BaseOperator):
    """spark-submit jobs/<report_type>_report.py with the manifest `claim_task_id` wrote."""

    ui_color = "#f4a261"

    def __init__(self, *, report_type: str, claim_task_id: str = "claim_requests", **kwargs):
        super().__init__(**kwargs)
        self.report_type = report_type
        self.claim_task_id = claim_task_id

    def execute(self, context):
        from coursedash.nightly import output_dir
        from coursedash_airflow.hooks import SparkSubmitHook

        claimed = context["ti"].xcom_pull(task_ids=self.claim_task_id)
        manifest = (claimed or {}).get("manifests", {}).get(self.report_type)
        if not manifest:
            raise AirflowSkipException(f"no {self.report_type} requests tonight")
        out = output_dir(claimed["run_id"], self.report_type)
        SparkSubmitHook().submit(
            f"jobs/{self.report_type}_report.py", ["--manifest", manifest, "--out", str(out)]
        )
