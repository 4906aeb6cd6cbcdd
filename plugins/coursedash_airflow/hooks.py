"""Runs a Spark application with spark-submit, its output in the task log."""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

if TYPE_CHECKING:
    from coursedash.spark import SparkSubmit


class SparkSubmitHook(BaseHook):
    """spark-submit against COURSEDASH_SPARK_MASTER (local[*] by default).

    The driver runs in this worker (client mode), so Java, the master and the project's
    Python come from this machine's configuration; nothing is hard-coded per cluster.
    """

    def __init__(self, master: str | None = None):
        super().__init__()
        self.master = master
        self._running: SparkSubmit | None = None

    def submit(self, application: str, args: list[str], lake_uri: str | None = None) -> None:
        """Run the application; `lake_uri`, the lake it reads, sizes its Spark settings (coursedash.spark)."""
        from coursedash.spark import SparkSubmit

        self._running = SparkSubmit(application, args, self.master, log=self.log, lake_uri=lake_uri)
        self._running.run()

    def kill(self) -> None:
        """Stop the running application whole: spark-submit's JVM and its Python driver."""
        if self._running is not None:
            self._running.kill()
