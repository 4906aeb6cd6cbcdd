"""`coursedash sync` keeps going over a dirty lake: what it cannot store is skipped, counted and said."""

import datetime as dt

from sqlalchemy import select

from coursedash import db, reports
from coursedash.db import Batch, Course
from tests import handlake
from tests.lakefixtures import d, ts, write_lake


def dirty_tables() -> dict:
    courses = handlake.TABLES["courses"]
    batches = handlake.TABLES["batches"]
    b1 = batches[0]
    return {
        **handlake.TABLES,
        "courses": [
            *courses,
            dict(courses[0], course_id=None, name="No id"),
            dict(courses[1], name="Science (renamed)", created_on=ts("2026-02-01 00:00:00")),  # a newer c2 row
        ],
        "batches": [
            *batches,
            dict(b1, batch_id="b_no_course", course_id=None),
            dict(b1, batch_id="b_lost", course_id="c_not_in_lake"),
            dict(b1, batch_id=None),
            dict(b1, name="Batch One, renamed", created_on=ts("2026-02-01 00:00:00")),  # a newer b1 row
            dict(b1, name="Batch One, renamed", created_on=ts("2026-02-01 00:00:00")),  # ... and its exact copy
            dict(b1, batch_id="b" * 250, start_date=d("2026-02-01")),  # too long for the database
        ],
    }


def test_sync_stores_what_it_can_and_counts_the_rest(app_env, capsys):
    from coursedash.cli import main

    write_lake(app_env / "lake", dirty_tables())
    main(["sync"])  # returns: exit status 0
    printed = capsys.readouterr().out.splitlines()

    postgres = db.engine().dialect.name == "postgresql"
    expected_skipped = {
        "courses without an id": 1,
        "courses repeated with different values (the latest was kept)": 1,
        "batches without an id": 1,
        "batches repeated with different values (the latest was kept)": 1,  # the exact copy is no conflict
        "batches without a course": 1,
        "batches of a course not in the lake": 1,
        # SQLite does not enforce the id's length; PostgreSQL refuses that row alone.
        **({"rows the database refused": 1} if postgres else {}),
    }
    # b1, b2, b9 and the long id
    assert f"synced 2 courses and {3 if postgres else 4} batches" in printed
    assert sorted(line for line in printed if line.startswith("skipped, ")) == sorted(
        f"skipped, {reason}: {n}" for reason, n in expected_skipped.items()
    )
    with db.session() as s:
        courses = {c.course_id: c.name for c in s.scalars(select(Course))}
        batches = {b.batch_id: b for b in s.scalars(select(Batch))}
    assert courses == {"c1": "Maths, Part 1", "c2": "Science (renamed)"}
    assert {"b1", "b2", "b9"} <= set(batches) and ("b" * 250 in batches) is not postgres
    assert batches["b1"].name == "Batch One, renamed" and batches["b1"].enrolment_count == 3
    assert abs(batches["b1"].figures_as_of - db.utcnow()) < dt.timedelta(minutes=5)
    # How each batch is doing, stored as the API shows it (test_dashboard_figures.py holds them to the report).
    shown = reports.batch_figures(batches["b1"])
    assert shown == {
        "enrolment_count": 3,
        "completed_count": 1,
        "progress_bands": {"not_started": 0, "started": 1, "past_half": 1, "completed": 1},
        "certificates_issued": 1,
        "weekly_enrolments": [{"week_start": "2026-01-05", "count": 3}],
        "average_total_score": 79.17,
        "figures_as_of": shown["figures_as_of"],
    }
    assert reports.batch_figures(batches["b2"])["weekly_enrolments"] == []

    # The same figures for a data engineer, as a table; a mentor sees only the batches they mentor (b1, and on
    # SQLite the copy of it with a long id), not b2.
    main(["figures", "c1", "--user", handlake.MENTOR])
    table, _, weeks = capsys.readouterr().out.partition("\n\n")
    header, *rows = table.splitlines()
    assert sorted(row.split()[0] for row in rows) == sorted(["b1"] + ([] if postgres else ["b" * 250]))
    b1 = next(row for row in rows if row.startswith("b1 "))
    assert header.split() == [
        "batch_id",
        "name",
        "status",
        "enrolled",
        "completed",
        "progress",
        "0",
        "1-49",
        "50-99",
        "100",
        "certificates",
        "avg",
        "total",
        "score",
        "figures",
        "as",
        "of",
    ]
    assert b1.split()[:4] == ["b1", "Batch", "One,", "renamed"]
    assert b1.split()[5:14] == ["3", "1", "0", "1", "1", "1", "1", "79.17", shown["figures_as_of"]]
    assert [line.split() for line in weeks.splitlines()[1:] if not line.startswith("bbb")] == [
        ["batch_id", "week", "starting", "enrolled"],
        ["b1", "2026-01-05", "3"],
    ]


def test_a_batch_whose_lake_rows_are_unchanged_keeps_its_stored_figures(app_env):
    """What the figures job computed is stored; a batch it did not compute keeps the figures stored for it."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    from coursedash import sync
    from coursedash.manifest import FIGURES_KNOWN_FILE, SKIPPED_FILE

    earlier = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    figures = dict(enrolment_count=3, completed_count=1, weekly_enrolments=[{"week_start": "2026-01-05", "count": 3}])
    with db.session() as s:
        for batch_id, fingerprint in (("kept", "f-kept"), ("raced", "f-stored-meanwhile"), ("new", None)):
            s.add(
                Batch(
                    batch_id=batch_id,
                    course_id="c1",
                    name="Old name",
                    mentors=[],
                    **figures,
                    average_total_score=79.17,
                    figures_fingerprint=fingerprint,
                    figures_as_of=earlier,
                    synced_at=earlier,
                )
            )
        s.commit()
    out = app_env / "figures"
    sync.write_known(out)
    assert json.loads((out / FIGURES_KNOWN_FILE).read_text()) == {"kept": "f-kept", "raced": "f-stored-meanwhile"}

    # What the job writes (jobs/dashboard_figures.py): `raced` was compared with a fingerprint stored before.
    pq.write_table(
        pa.Table.from_pylist(
            [
                dict(
                    course_id="c1",
                    name="Maths",
                    channel=None,
                    created_by="u",
                    status="Live",
                    user_consent_required=False,
                )
            ]
        ),
        out / "courses",
    )
    row = dict(course_id="c1", name="New name", start_date=None, end_date=None, created_by="u", mentors=["m"])
    none = dict.fromkeys(sync.FIGURES)
    pq.write_table(
        pa.Table.from_pylist(
            [
                dict(row, batch_id="kept", **none, figures_computed=False, figures_fingerprint="f-kept"),
                dict(row, batch_id="raced", **none, figures_computed=False, figures_fingerprint="f-compared"),
                dict(
                    row,
                    batch_id="new",
                    **{**none, **figures, "enrolment_count": 7},
                    figures_computed=True,
                    figures_fingerprint="f-new",
                ),
            ]
        ),
        out / "batches",
    )
    (out / SKIPPED_FILE).write_text("{}")
    assert sync.load_figures(out)["figures_computed"] == 1

    with db.session() as s:
        batches = {b.batch_id: b for b in s.scalars(select(Batch))}
    for batch in batches.values():
        assert (batch.name, batch.mentors, batch.completed_count) == ("New name", ["m"], 1)
    now = db.utcnow()
    kept, raced, new = batches["kept"], batches["raced"], batches["new"]
    assert (kept.enrolment_count, kept.average_total_score, kept.figures_fingerprint) == (3, 79.17, "f-kept")
    assert now - kept.figures_as_of < dt.timedelta(minutes=5)  # still the figures of the lake as it is
    # Stored by someone else meanwhile: kept with their time, and computed again by the next night.
    assert (raced.enrolment_count, raced.figures_as_of, raced.figures_fingerprint) == (3, earlier, None)
    assert (new.enrolment_count, new.average_total_score, new.figures_fingerprint) == (7, None, "f-new")
    assert now - new.figures_as_of < dt.timedelta(minutes=5)


def test_sync_says_how_many_batches_kept_their_figures(monkeypatch, capsys):
    from coursedash import cli, sync

    counts = {"courses": 2, "batches": 5, "figures_computed": 2, "skipped": {}}
    monkeypatch.setattr(sync, "sync", lambda: counts)
    cli.main(["sync"])
    assert capsys.readouterr().out.splitlines() == [
        "synced 2 courses and 5 batches",
        "figures computed for 2; kept for 3, whose lake rows are unchanged",
    ]
