"""Put the night's requests into a fresh application database, through the product's own store.

    python benchmarks/submit_requests.py SPEC.json     (PYTHONPATH = the checkout under test)

Run in a subprocess with the checkout being measured first on PYTHONPATH, so that an
older commit's database schema and `store.submit` are the ones used. SPEC holds the
generated lake's courses and batches (from its summary) and the requests to submit
({course_id, batch_id, report_type, user, password}); the request ids go to stdout as
JSON. The courses and batches are stored as `coursedash sync` would store them, without
its Spark job: the night's own `sync_dashboard` task runs that job anyway, and is timed.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path


def _known_columns(model, values: dict) -> dict:
    """Only the columns this checkout's model has: older commits have fewer."""
    columns = set(model.__table__.columns.keys())
    return {k: v for k, v in values.items() if k in columns}


def main(spec_path: str) -> None:
    from coursedash import db, store
    from coursedash.db import Batch, Course

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    db.migrate()
    now = dt.datetime.now(dt.UTC)
    with db.session() as s:
        for c in spec["courses"]:
            s.merge(Course(**_known_columns(Course, {**c, "channel": None, "synced_at": now})))
        for b in spec["batches"]:
            values = {
                **b,
                "start_date": dt.date.fromisoformat(b["start_date"]) if b["start_date"] else None,
                "end_date": dt.date.fromisoformat(b["end_date"]) if b["end_date"] else None,
                "synced_at": now,
            }
            s.merge(Batch(**_known_columns(Batch, values)))
        s.commit()
        ids = [
            store.submit(s, r["user"], r["course_id"], r["batch_id"], r["report_type"], r["password"]).request_id
            for r in spec["requests"]
        ]
    print(json.dumps(ids))


if __name__ == "__main__":
    main(sys.argv[1])
