"""`coursedash sync` keeps going over a dirty lake: what it cannot store is skipped, counted and said."""

import datetime as dt

from sqlalchemy import select

from coursedash import db
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
        f"skipped, {reason}: {n}" for reason, n in expected_skipped.items())
    with db.session() as s:
        courses = {c.course_id: c.name for c in s.scalars(select(Course))}
        batches = {b.batch_id: b for b in s.scalars(select(Batch))}
    assert courses == {"c1": "Maths, Part 1", "c2": "Science (renamed)"}
    assert {"b1", "b2", "b9"} <= set(batches) and ("b" * 250 in batches) is not postgres
    assert batches["b1"].name == "Batch One, renamed" and batches["b1"].enrolment_count == 3
    assert abs(batches["b1"].figures_as_of - db.utcnow()) < dt.timedelta(minutes=5)
