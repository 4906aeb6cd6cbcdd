"""The synthetic lake generator: the lake's schemas, determinism, chunking, content and dirt.

Read back with pyarrow only (no Spark), from the Parquet files the generator wrote.
"""

import datetime as dt
import json
import re
from collections import Counter

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from coursedash.lakegen import generate_lake
from schemas.lake import TABLES, arrow_schema

TODAY = dt.date(2025, 6, 15)
MIDNIGHT = dt.datetime(2025, 6, 15, tzinfo=dt.UTC)
SCRIPTS = {
    "Latin": r"[A-Za-z]",
    "Devanagari": r"[\u0900-\u097F]",
    "Bengali": r"[\u0980-\u09FF]",
    "Tamil": r"[\u0B80-\u0BFF]",
    "Telugu": r"[\u0C00-\u0C7F]",
}


def read(root, table):
    return pq.read_table(root / table)


def rows(root, table) -> list[dict]:
    return read(root, table).to_pylist()


def extra_copies(records: list[dict]) -> int:
    """How many rows are exact copies of an earlier row."""
    counts = Counter(repr(sorted(r.items())) for r in records)
    return sum(n - 1 for n in counts.values())


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    summary = generate_lake(root, learners=20, seed=7, today=TODAY)
    return root, summary


def test_every_table_has_the_documented_schema_and_the_summary_counts_its_rows(lake):
    root, summary = lake
    for table in TABLES:
        data = read(root, table)
        assert data.schema.equals(arrow_schema(table), check_metadata=False), table
        assert summary["rows"][table] == data.num_rows, table
        assert data.num_rows > 0, table


def test_same_arguments_give_identical_tables_and_another_seed_does_not(tmp_path):
    first = generate_lake(tmp_path / "a", learners=20, seed=7, today=TODAY)
    second = generate_lake(tmp_path / "b", learners=20, seed=7, today=TODAY)
    generate_lake(tmp_path / "c", learners=20, seed=8, today=TODAY)
    for table in TABLES:
        assert read(tmp_path / "a", table).equals(read(tmp_path / "b", table)), table
    assert first == {**second, "out_dir": first["out_dir"]}
    assert not read(tmp_path / "a", "users").equals(read(tmp_path / "c", "users"))
    # The catalogue does not depend on the seed: demos rely on its ids.
    assert read(tmp_path / "a", "batches").equals(read(tmp_path / "c", "batches"))


def test_chunks_write_one_file_each_and_the_same_data_as_one_chunk(tmp_path):
    generate_lake(tmp_path / "chunked", learners=25, chunk_size=10, today=TODAY)
    generate_lake(tmp_path / "whole", learners=25, chunk_size=25, today=TODAY)
    for table in ("users", "enrolments", "assessment_attempts", "question_responses", "user_consents"):
        files = sorted(p.name for p in (tmp_path / "chunked" / table).iterdir())
        assert files == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"], table
    for table in TABLES:
        assert read(tmp_path / "chunked", table).equals(read(tmp_path / "whole", table)), table


def test_a_rerun_replaces_the_files_of_the_earlier_run(tmp_path):
    generate_lake(tmp_path, learners=25, chunk_size=10, today=TODAY)
    summary = generate_lake(tmp_path, learners=5, chunk_size=10, today=TODAY)
    assert [p.name for p in (tmp_path / "users").iterdir()] == ["part-00000.parquet"]
    assert read(tmp_path, "users").num_rows == summary["rows"]["users"]


def test_rows_grow_with_learners(tmp_path):
    small = generate_lake(tmp_path / "s", learners=20, today=TODAY)["rows"]
    large = generate_lake(tmp_path / "l", learners=200, today=TODAY)["rows"]
    for table in ("users", "enrolments", "assessment_attempts", "question_responses", "user_consents"):
        assert large[table] > 5 * small[table], table


def test_catalogue_has_the_cases_the_reports_must_handle(lake):
    root, summary = lake
    courses = rows(root, "courses")
    assert {c["user_consent_required"] for c in courses} == {True, False}
    assert {c["status"] for c in courses} >= {"Live", "Retired"}

    contents = rows(root, "course_contents")
    for course in courses:
        mine = [c for c in contents if c["course_id"] == course["course_id"]]
        assert sorted(c["position"] for c in mine) == list(range(1, len(mine) + 1))
        assert any(c["is_assessment"] for c in mine)
    assert any(c["is_optional"] for c in contents)
    names = Counter((c["course_id"], c["name"]) for c in contents if c["is_assessment"])
    assert max(names.values()) == 2  # two assessments of one course share a name

    batches = rows(root, "batches")
    today = TODAY
    statuses = {
        "upcoming"
        if b["start_date"] > today
        else "live"
        if b["end_date"] is None or b["end_date"] >= today
        else "expired"
        for b in batches
    }
    assert statuses == {"live", "expired", "upcoming"}
    assert any(b["end_date"] is None for b in batches)
    creators = {c["course_id"]: c["created_by"] for c in courses}
    assert any(b["created_by"] == creators[b["course_id"]] for b in batches)
    assert any(b["created_by"] != creators[b["course_id"]] for b in batches)
    assert any(b["mentors"] for b in batches)

    # The summary describes the batches as written.
    described = {b["batch_id"]: b for b in summary["batches"]}
    assert set(described) == {b["batch_id"] for b in batches}
    for b in batches:
        d = described[b["batch_id"]]
        assert (d["course_id"], d["created_by"], d["mentors"]) == (b["course_id"], b["created_by"], b["mentors"])
        assert d["course_created_by"] == creators[b["course_id"]]


def test_names_come_in_several_scripts(lake):
    root, _ = lake
    names = [r[c] or "" for r in rows(root, "users") for c in ("first_name", "last_name")]
    found = {script for script, pattern in SCRIPTS.items() if any(re.search(pattern, n) for n in names)}
    assert len(found) >= 3, found
    assert "Latin" in found


def test_profiles_have_text_a_csv_writer_must_quote_or_defuse(lake):
    root, _ = lake
    text = [v for r in rows(root, "users") for k, v in r.items() if isinstance(v, str)]
    assert any(v.startswith("=") for v in text)
    assert any(v.startswith("@") for v in text)
    assert any(v.startswith("-") for v in text)
    assert any("\n" in v for v in text)
    assert any('"' in v and "," in v for v in text)
    phones = [r["phone"] for r in rows(root, "users") if r["phone"]]
    assert any(re.fullmatch(r"\+91[6-9]\d{9}", p) for p in phones)


def test_users_dirt_duplicates_and_missing_learners(lake):
    root, summary = lake
    users = rows(root, "users")
    assert extra_copies(users) == summary["dirt"]["users_duplicated"] >= 1
    known = {u["user_id"] for u in users}
    enrolled = {e["user_id"] for e in rows(root, "enrolments")}
    assert len(enrolled - known) == summary["dirt"]["users_missing"] >= 1


def test_enrolments_dirt(lake):
    root, summary = lake
    enrolments = rows(root, "enrolments")
    dirt = summary["dirt"]
    batches = {b["batch_id"] for b in rows(root, "batches")}
    assert extra_copies(enrolments) == dirt["enrolments_duplicated"] >= 1
    assert sum(e["batch_id"] not in batches for e in enrolments) == dirt["enrolments_unknown_batch"] >= 1
    assert sum(e["course_id"] is None for e in enrolments) == dirt["enrolments_null_course_id"] >= 1
    assert sum(e["enrolled_on"] is None for e in enrolments) == dirt["enrolments_null_enrolled_on"] >= 1


def test_enrolments_progress_and_certificates(lake):
    root, _ = lake
    contents = {}
    for c in rows(root, "course_contents"):
        contents.setdefault(c["course_id"], set()).add(c["content_id"])
    enrolments = rows(root, "enrolments")
    per_learner = Counter(e["user_id"] for e in {repr(sorted(e.items())): e for e in enrolments}.values())
    assert set(per_learner.values()) <= {1, 2, 3}
    for e in enrolments:
        if e["course_id"] is not None:
            assert {k for k, _ in e["content_status"]} <= contents[e["course_id"]]
        assert {v for _, v in e["content_status"]} <= {0, 1, 2}
        if e["completed_on"] and e["enrolled_on"]:
            assert e["completed_on"] >= e["enrolled_on"]
    assert any(e["active"] for e in enrolments)
    assert any(e["completed_on"] is not None and e["issued_certificates"] for e in enrolments)
    assert any(e["completed_on"] is None for e in enrolments)


def test_attempts_scores_and_dirt(lake):
    root, summary = lake
    attempts = rows(root, "assessment_attempts")
    dirt = summary["dirt"]
    assert extra_copies(attempts) == dirt["attempts_duplicated"] >= 1
    distinct = {repr(sorted(a.items())): a for a in attempts}.values()
    assert len({a["attempt_id"] for a in distinct}) == len(distinct)
    assert all(a["total_score"] <= a["total_max_score"] for a in attempts)
    assert sum(a["total_max_score"] == 0 for a in distinct) >= dirt["attempts_zero_max_score"] >= 1


def test_question_responses_and_their_dirt(lake):
    root, summary = lake
    responses = rows(root, "question_responses")
    dirt = summary["dirt"]
    assert extra_copies(responses) == dirt["responses_duplicated"] >= 1
    times = {}
    for r in responses:
        times.setdefault((r["attempt_id"], r["question_id"]), set()).add(r["assessed_on"])
    assert sum(len(t) > 1 for t in times.values()) == dirt["responses_reassessed"] >= 1

    attempts = {a["attempt_id"] for a in rows(root, "assessment_attempts")}
    orphans = {r["attempt_id"] for r in responses} - attempts
    assert len(orphans) == dirt["attempts_missing"] >= 1

    questions = Counter(a for a, _ in times)
    assert set(questions.values()) <= {3, 4, 5, 6}
    assert {r["question_type"] for r in responses} >= {"mcq", "mmcq", "ftb"}
    for r in responses:
        assert 0 <= r["score"] <= r["max_score"]
        json.loads(r["options"]), json.loads(r["response"])
    assert any("\n" in (r["question_description"] or "") for r in responses)


def test_consents_change_and_the_latest_row_wins(lake):
    root, summary = lake
    consents = rows(root, "user_consents")
    required = {c["course_id"] for c in rows(root, "courses") if c["user_consent_required"]}
    assert {c["course_id"] for c in consents} <= required
    history = {}
    for c in consents:
        history.setdefault((c["user_id"], c["course_id"]), []).append((c["last_updated_on"], c["status"]))
    changes = [sorted(h) for h in history.values() if len(h) > 1]
    assert any([s for _, s in h] == ["ACTIVE", "REVOKED"] for h in changes)
    assert any([s for _, s in h] == ["REVOKED", "ACTIVE"] for h in changes)
    latest = Counter(max(h)[1] for h in history.values())
    assert latest["ACTIVE"] > latest["REVOKED"] >= 1
    assert summary["consents"]["active_then_revoked"] >= 1 and summary["consents"]["revoked_then_active"] >= 1


def test_every_event_happened_before_today(lake):
    root, _ = lake
    for table in TABLES:
        data = read(root, table)
        for field in data.schema:
            if str(field.type).startswith("timestamp"):
                latest = pc.max(data[field.name]).as_py()
                assert latest is None or latest < MIDNIGHT, (table, field.name)


def test_courses_and_batches_scale_and_the_enrolments_spread_over_them(tmp_path):
    summary = generate_lake(tmp_path, learners=2000, seed=7, today=TODAY, courses=40, batches=400)
    courses, batches = rows(tmp_path, "courses"), rows(tmp_path, "batches")
    course_ids = {c["course_id"] for c in courses}
    assert len(courses) == len(course_ids) == 40
    assert len(batches) == len({b["batch_id"] for b in batches}) == 400
    # Every batch belongs to a course of the lake, and every course has batches.
    assert {b["course_id"] for b in batches} == course_ids
    assert max(Counter(b["course_id"] for b in batches).values()) == 10
    contents = rows(tmp_path, "course_contents")
    assert {c["course_id"] for c in contents} == course_ids
    assert len({c["content_id"] for c in contents}) == len(contents)

    enrolments = read(tmp_path, "enrolments")
    known = [b for b in enrolments.column("batch_id").to_pylist() if b not in summary["unknown_batch_ids"]]
    per_batch = Counter(known)
    # Spread: most batches have learners, none holds a large share of them.
    assert len(per_batch) > 350
    assert max(per_batch.values()) < 0.02 * len(known)
    batch_course = {b["batch_id"]: b["course_id"] for b in batches}
    enrolled_courses = {batch_course[b] for b in per_batch}
    assert enrolled_courses == course_ids
    # An enrolment's course is its batch's course.
    pairs = zip(enrolments.column("batch_id").to_pylist(), enrolments.column("course_id").to_pylist(), strict=True)
    assert all(course in (None, batch_course[batch]) for batch, course in pairs if batch in batch_course)
    assert [b["batch_id"] for b in summary["batches"]] == [b["batch_id"] for b in batches]


def test_the_default_catalogue_is_the_fixed_one(tmp_path):
    summary = generate_lake(tmp_path, learners=20, seed=7, today=TODAY)
    assert [c["course_id"] for c in summary["courses"]] == [f"do_course_{i:04d}" for i in range(1, 5)]
    assert [b["batch_id"] for b in summary["batches"]] == [f"batch_{i:04d}" for i in range(1, 13)]
    assert read(tmp_path, "batches").num_rows == 12


def test_one_course_takes_every_learner_once_however_many_batches_it_has(tmp_path):
    # The benchmark's same-size comparison: one batch, or 30 batches holding the same learners.
    learners = {}
    for batches in (1, 30):
        generate_lake(tmp_path / str(batches), learners=300, seed=7, today=TODAY, courses=1, batches=batches)
        enrolments = read(tmp_path / str(batches), "enrolments").to_pylist()
        assert {e["course_id"] for e in enrolments} <= {"do_course_0001", None}
        learners[batches] = Counter(e["user_id"] for e in enrolments)
        assert len({e["batch_id"] for e in enrolments} - {"batch_9001", "batch_9002"}) == batches
    assert learners[1] == learners[30]
    assert len(learners[1]) > 250


@pytest.mark.parametrize("courses, batches", [(0, 12), (5, 4), (4, 9001)])
def test_impossible_catalogues_are_refused_before_anything_is_written(tmp_path, courses, batches):
    with pytest.raises(ValueError):
        generate_lake(tmp_path / "lake", learners=20, courses=courses, batches=batches)
    assert not (tmp_path / "lake").exists()
