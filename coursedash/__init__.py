"""Course Dashboard: request store, access rules, packaging, storage, API and CLI."""

# Kept here, free of heavy imports, so the DAG file can read it at parse time.
REPORT_TYPES = ("progress", "userinfo", "response")
