"""Runs a Spark application with spark-submit, its output in the task log."""

from __future__ import annotations

from airflow.sdk import BaseHook


class SparkSubmitHook(BaseHook):
    """spark-submit against COURSEDASH_SPARK_MASTER (local[*] by default).

    The driver runs in this worker (client mode), so Java, the master and the project's
    Python come from this machine's configuration; nothing is hard-coded per cluster.
    """

    def __init__(self, master: str | None = None):
        super().__init__()
        self.master = master

    def submit(self, application: str, args: list[str]) -> None:
        from coursedash.spark import submit

        submit(application, args, self.master, log=self.log)
