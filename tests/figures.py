"""A batch's dashboard figures as its Course Progress report gives them, counted in Python from the report's cells.

The tests hold the night's figures (jobs/dashboard_figures.py) equal to these: the
same learners and formulas as the report, by construction checked from the outside.
"""

import csv
import datetime as dt
import io
from decimal import ROUND_HALF_UP, Decimal

from coursedash import reports
from coursedash.db import Batch


def report_rows(csv_text: str) -> list[dict]:
    """A published progress CSV's rows, as dicts by header."""
    return list(csv.DictReader(io.StringIO(csv_text.removeprefix("\ufeff"), newline="")))


def from_report(rows: list[dict]) -> dict:
    """The figures of a progress report's rows (dicts by header; an empty cell is '' or None), as the API shows them."""
    progress = [int(r["Progress"]) for r in rows]
    scores = [Decimal(r["Total Score"]) for r in rows if r["Total Score"]]
    mondays = sorted(
        dt.datetime.strptime(r["Enrolment Date"], "%d/%m/%Y").date()
        - dt.timedelta(days=dt.datetime.strptime(r["Enrolment Date"], "%d/%m/%Y").weekday())
        for r in rows
        if r["Enrolment Date"]
    )
    weeks = []
    if mondays:
        week = mondays[0]
        while week <= mondays[-1]:
            weeks.append({"week_start": week.isoformat(), "count": mondays.count(week)})
            week += dt.timedelta(days=7)
    average = None
    if scores:
        average = float((sum(scores) / len(scores)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    return {
        "enrolment_count": len(rows),
        "completed_count": sum(1 for r in rows if r["Completion Date"]),
        "progress_bands": {
            "not_started": progress.count(0),
            "started": sum(1 for p in progress if 1 <= p <= 49),
            "past_half": sum(1 for p in progress if 50 <= p <= 99),
            "completed": progress.count(100),
        },
        "certificates_issued": sum(1 for r in rows if r["Certificate Status"] == "Issued"),
        "weekly_enrolments": weeks,
        "average_total_score": average,
    }


def as_shown(batch_row: dict) -> dict:
    """A batch row of the figures (jobs/dashboard_figures.py) as the API and the CLI show it, without its time."""
    columns = {c.name for c in Batch.__table__.columns}
    shown = reports.batch_figures(Batch(**{k: v for k, v in batch_row.items() if k in columns}))
    del shown["figures_as_of"]
    return shown
