"""The nightly DAG end to end: real Airflow, Spark, database and report files."""

import csv
import datetime as dt
import io
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select, text

from coursedash import db, nightly, store
from coursedash.db import Batch, ReportRequest, utcnow
from coursedash.manifest import read_summary
from coursedash.packaging import read_zip
from tests import handlake
from tests.conftest import ROOT, SESSION_DIR
from tests.lakefixtures import write_lake
from tests.receivers import http_receiver

DAG_ID = "course_reports_nightly"
RUN_DAY = dt.datetime(2026, 11, 28, tzinfo=dt.UTC)
PASSWORD = 'Tr1cky,pass"word'
CREATOR_EMAIL = "creator@example.org"
HOOK_SECRET = "nightly-webhook-secret"


def load_dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag(DAG_ID)


def test_dag_integrity_and_shape(airflow_db):
    dag = load_dag()
    assert dag.catchup is False
    assert {"coursedash", "reports"} <= set(dag.tags)
    assert dag.doc_md
    assert all(t.retries >= 1 for t in dag.tasks)
    edges = {(t.task_id, d) for t in dag.tasks for d in sorted(t.downstream_task_ids)}
    assert edges == {
        ("claim_requests", "build_reports"),
        ("build_reports", "publish_reports"),
        ("publish_reports", "notify_requesters"),
        ("build_reports", "sync_dashboard"),
    }
    assert {t.task_id for t in dag.tasks} == {
        "claim_requests",
        "build_reports",
        "publish_reports",
        "notify_requesters",
        "sync_dashboard",
        "expire_reports",
    }
    assert dag.get_task("publish_reports").trigger_rule == "all_done"
    assert dag.get_task("notify_requesters").trigger_rule == "all_done"
    assert dag.get_task("sync_dashboard").trigger_rule == "all_done"


def run_dag(day=RUN_DAY):
    return load_dag().test(logical_date=day)


def prepare(var: Path):
    write_lake(var / "lake", handlake.TABLES)
    handlake.store_catalogue()  # the night's sync_dashboard stores the figures


def statuses(s):
    return {r.request_id: r for r in s.scalars(select(ReportRequest)).all()}


def published(s3) -> dict[str, object]:
    """Every object published to the S3 server and a stamp that changes when it is written again."""
    client, bucket, prefix = s3
    listing = client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"].removeprefix(prefix + "/"): (o["LastModified"], o["ETag"]) for o in listing}


def fetch(key: str, to: Path) -> Path:
    """A published zip, copied from wherever the reports live."""
    from coursedash.storage import report_store

    with report_store().open(key) as source:
        to.write_bytes(source.read())
    return to


@pytest.fixture
def receiver(app_env, monkeypatch):
    """A real webhook endpoint on loopback that checks each event's signature."""
    with http_receiver(HOOK_SECRET) as endpoint:
        monkeypatch.setenv("COURSEDASH_WEBHOOK_URL", endpoint.url)
        monkeypatch.setenv("COURSEDASH_WEBHOOK_SECRET", HOOK_SECRET)
        yield endpoint


# On the production-like set-up, PostgreSQL and S3. The DAG on SQLite and a reports
# folder, the embedded default, runs end to end in the dirty-lake test below and in the
# browser test: each night costs a spark-submit, and the suite has a time budget.
@pytest.mark.parametrize("app_env", ["postgresql"], indirect=True)
def test_nightly_run_end_to_end(app_env, airflow_db, capfd, s3_reports, mailbox, receiver):
    var = app_env
    prepare(var)
    with db.session() as s:
        # A batch deleted from the lake after the dashboard synced it: that request fails alone.
        s.add(
            Batch(
                batch_id="b_gone",
                course_id="c1",
                name="Gone",
                created_by=handlake.CREATOR,
                mentors=[],
                synced_at=utcnow(),
            )
        )
        s.commit()
        by_creator = store.submit(s, handlake.CREATOR, "c1", "b1", "progress", PASSWORD, CREATOR_EMAIL).request_id
        by_mentor = store.submit(s, handlake.MENTOR, "c1", "b1", "progress").request_id
        empty = store.submit(s, handlake.MENTOR2, "c1", "b2", "progress").request_id
        gone = store.submit(s, handlake.CREATOR, "c1", "b_gone", "progress", PASSWORD, CREATOR_EMAIL).request_id
        profiles = store.submit(s, handlake.CREATOR, "c1", "b1", "userinfo", PASSWORD).request_id
        responses = store.submit(s, handlake.MENTOR, "c1", "b1", "response").request_id
        # Left PROCESSING by a run that crashed hours ago: taken again.
        crashed = store.submit(s, handlake.BATCH_CREATOR, "c1", "b1", "progress").request_id
        s.execute(
            text(
                "UPDATE report_requests SET status='PROCESSING', claimed_by_run='crashed', attempts=1, "
                "claimed_at=:t WHERE request_id=:id"
            ),
            {"t": utcnow() - dt.timedelta(days=1), "id": crashed},
        )
        s.commit()

    dag_run = run_dag()
    assert dag_run.state == "success"
    # The run's summary counts what the reports left out or passed through, per b1 request:
    # L2's two enrolment rows, L3 missing from users; L2's revoked consent; L2's answer
    # given twice, L4's inactive one.
    summaries = {t: read_summary(nightly.output_dir(dag_run.run_id, t)) for t in ("progress", "userinfo", "response")}
    assert nightly.left_out(summaries) == {
        "progress": {"enrolments.duplicate": 6, "users.missing": 3},
        "userinfo": {"consents.not_given": 1, "enrolments.duplicate": 2, "users.missing": 1},
        "response": {"enrolments.duplicate": 2, "responses.duplicate": 2, "responses.not_enrolled": 1},
    }

    with db.session() as s:
        found = statuses(s)
        for rid in (by_creator, by_mentor, empty, crashed, profiles, responses):
            assert found[rid].status == "SUCCESS", found[rid].error
            assert found[rid].password_token is None
        assert found[gone].status == "FAILED"
        assert found[gone].error == (
            "Batch b_gone is no longer in the learner data, so no report can be built. It will not be retried."
        )
        assert found[gone].password_token is None  # final: erased
        assert found[crashed].attempts == 2
        assert found[by_creator].row_count == 3 and found[empty].row_count == 0
        # Each request says what its own batch left out, in words; b2 has nothing to say.
        assert found[by_creator].data_notes == [
            {
                "reason": "2 enrolment rows repeat a learner of this batch; the latest enrolment of each was used",
                "rows": 2,
            },
            {"reason": "1 learner is missing from the user profile table; their profile cells are empty", "rows": 1},
        ]
        assert found[empty].data_notes == []

    csv_name = "b1_progress_20261128.csv"
    # Password-protected zips open with the password, with pyzipper and with 7-Zip ...
    for rid, name, expected in [
        (by_creator, csv_name, handlake.B1_PROGRESS_CSV),
        (profiles, "b1_userinfo_20261128.csv", handlake.B1_USERINFO_CSV),
    ]:
        zip_path = fetch(found[rid].object_key, var / f"{rid}.zip")
        assert found[rid].file_size == zip_path.stat().st_size
        assert read_zip(zip_path, PASSWORD)[name].decode("utf-8") == expected
        out = var / "unzipped" / rid
        subprocess.run(["7z", "x", f"-p{PASSWORD}", f"-o{out}", str(zip_path)], check=True, capture_output=True)
        assert (out / name).read_bytes().decode("utf-8") == expected
        # ... and not without it.
        with pytest.raises(RuntimeError):
            read_zip(zip_path, "wrong-password1")
    response_files = read_zip(fetch(found[responses].object_key, var / "r.zip"))
    assert response_files == {"b1_response_20261128.csv": handlake.B1_RESPONSE_CSV.encode()}
    progress_text = read_zip(fetch(found[by_mentor].object_key, var / "m.zip"))[csv_name].decode()
    for pii in handlake.PII_VALUES:
        assert pii not in progress_text and pii not in response_files["b1_response_20261128.csv"].decode()
    # The mentor's, without password, is a plain zip with the same content.
    assert read_zip(fetch(found[by_mentor].object_key, var / "m.zip"))[csv_name].decode() == handlake.B1_PROGRESS_CSV
    assert read_zip(fetch(found[empty].object_key, var / "e.zip")) == {
        "b2_progress_20261128.csv": handlake.B2_PROGRESS_CSV.encode()
    }

    # Each requester with an address is e-mailed once; every final request goes to the webhook once.
    mails = {m["message"]["Message-ID"]: m for m in mailbox.messages}
    assert sorted(mails) == sorted(f"<notice-{rid}@coursedash>" for rid in (by_creator, gone))
    assert all(m["to"] == [CREATOR_EMAIL] for m in mails.values())
    ready, failed = mails[f"<notice-{by_creator}@coursedash>"], mails[f"<notice-{gone}@coursedash>"]
    assert "ready to download" in ready["message"]["Subject"] and "Rows:      3" in ready["message"].get_content()
    assert f"Why: {found[gone].error}" in failed["message"].get_content()
    final = (by_creator, by_mentor, empty, crashed, profiles, responses, gone)
    assert sorted(receiver.accepted) == sorted(f"coursedash-{rid}" for rid in final)
    assert all(a["signed"] for a in receiver.attempts) and len(receiver.attempts) == len(final)
    assert receiver.accepted[f"coursedash-{empty}"]["row_count"] == 0
    with db.session() as s:
        assert {(r.email_notice, r.webhook_notice, r.notify_email) for r in statuses(s).values()} == {
            ("sent", "sent", None),
            (None, "sent", None),
        }

    # A second run of the same date has nothing to do and publishes nothing again.
    before = published(s3_reports)
    assert sorted(before) == sorted(
        found[r].object_key for r in (by_creator, by_mentor, empty, crashed, profiles, responses)
    )
    assert run_dag().state == "success"
    assert published(s3_reports) == before
    with db.session() as s:
        assert {k: v.status for k, v in statuses(s).items()} == {k: v.status for k, v in found.items()}
    assert len(mailbox.messages) == 2 and len(receiver.attempts) == len(final)  # no notice twice

    # The password was never in clear in the database, the logs, or Airflow's storage.
    logs = capfd.readouterr()
    notices = b"".join(m["raw"] for m in mailbox.messages) + b"".join(a["body"] for a in receiver.attempts)
    for secret in (PASSWORD, ".zip", "X-Amz", *handlake.PII_VALUES):
        assert secret not in notices.decode()
    everything = logs.out + logs.err + _airflow_storage_dump() + _database_dump()
    assert by_creator in everything  # the dumps are real
    assert PASSWORD not in everything


def _database_dump() -> str:
    with db.engine().connect() as c:
        return "\n".join(str(tuple(row)) for row in c.execute(text("SELECT * FROM report_requests")))


def _airflow_storage_dump() -> str:
    """XComs, rendered task arguments and task logs of every run."""
    from airflow.configuration import conf
    from sqlalchemy import create_engine

    engine = create_engine(conf.get("database", "sql_alchemy_conn"))
    with engine.connect() as c:
        rows = [
            str(tuple(r))
            for table in ("xcom", "rendered_task_instance_fields")
            for r in c.execute(text(f"SELECT * FROM {table}"))
        ]
    logs = [p.read_text(errors="replace") for p in (SESSION_DIR / "airflow" / "logs").rglob("*") if p.is_file()]
    return "\n".join(rows + logs)


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_dirty_rows_are_noted_and_a_broken_table_fails_only_its_readers_until_fixed(app_env, airflow_db, capfd):
    """An attempt scoring above its maximum is shown and noted; a mistyped column fails its report alone."""
    import pyarrow as pa

    from coursedash import reports
    from tests.jobs.test_dirty_lake import retype

    var = app_env
    prepare(var)
    bad = dict(handlake.TABLES["assessment_attempts"][0], attempt_id="at_bad", total_score=9.0, total_max_score=4.0)
    write_lake(var / "lake", {**handlake.TABLES, "assessment_attempts": [*handlake.TABLES["assessment_attempts"], bad]})
    retype(var / "lake", "question_responses", "score", pa.string())
    with db.session() as s:
        noted = store.submit(s, handlake.CREATOR, "c1", "b1", "progress", PASSWORD).request_id
        fine = store.submit(s, handlake.MENTOR2, "c1", "b2", "progress").request_id
        profiles = store.submit(s, handlake.CREATOR, "c1", "b1", "userinfo", PASSWORD).request_id
        held = store.submit(s, handlake.MENTOR, "c1", "b1", "response").request_id

    assert run_dag().state == "success"
    with db.session() as s:
        found = statuses(s)
    for rid in (noted, fine, profiles):
        assert found[rid].status == "SUCCESS", found[rid].error
    assert {"reason": "1 assessment attempt scored above its maximum; shown as computed", "rows": 1} in (
        found[noted].data_notes
    )
    assert found[fine].data_notes == []  # b1's attempt is not b2's
    text_ = read_zip(fetch(found[noted].object_key, var / "noted.zip"), PASSWORD)["b1_progress_20261128.csv"].decode()
    l1 = list(csv.reader(io.StringIO(text_.removeprefix("\ufeff"))))[1]
    assert l1[4] == "L1" and l1[-4:] == ["100", "225.00", "", "225.00"]  # 9 of 4, shown as computed

    shown = reports.as_json(found[held])
    assert (shown["status"], shown["attempts"], shown["max_attempts"], shown["will_retry"]) == ("FAILED", 1, 3, True)
    assert shown["error"] == (
        "The learner data could not be read: lake table 'question_responses' does not match its documented schema: "
        "column 'score' is string, expected double. It will be retried in the next nightly run (attempt 2 of 3)."
    )
    assert found[held].password_token is None and found[held].object_key is None  # it had no password
    log = capfd.readouterr().out
    assert "lake.assessment_attempts" in log and "at_bad" in log  # the engineers see the row

    # The data engineers fix the lake; the next night retries the request.
    write_lake(var / "lake", handlake.TABLES)
    assert run_dag(RUN_DAY + dt.timedelta(days=1)).state == "success"
    with db.session() as s:
        retried = s.get(ReportRequest, held)
    assert retried.status == "SUCCESS" and retried.attempts == 2
    assert (
        read_zip(fetch(retried.object_key, var / "retried.zip"))["b1_response_20261129.csv"].decode()
        == handlake.B1_RESPONSE_CSV
    )
