"""Course Dashboard: request store, access rules, packaging, storage, API and CLI."""

from typing import Literal, get_args

# Kept here, free of heavy imports, so the DAG file can read it at parse time.
ReportType = Literal["progress", "userinfo", "response"]
REPORT_TYPES: tuple[str, ...] = get_args(ReportType)
