"""The `coursedash` command: clear refusals with a non-zero exit, no traceback, no password echoed."""

import argparse
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from coursedash import cli, db, packaging
from coursedash.db import Batch, Course, Download, utcnow
from tests.conftest import ROOT
from tests.handlake import BATCH_CREATOR, CREATOR, MENTOR, STRANGER
from tests.published import add_request

OTHER_CREATOR = "u_other_creator"  # has a role, but not on c1


def run(*args, stdin="", env=None):
    """This checkout's command line in its own process, as a user runs it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "coursedash", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )


def assert_plain_refusal(done, status, message):
    """Exit status, the message, and nothing a user has to dig through."""
    assert done.returncode == status, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr and "\tat " not in done.stderr
    assert len(done.stderr.strip().splitlines()) <= 2, done.stderr


@pytest.fixture
def catalog(app_env):
    now = utcnow()
    with db.session() as s:
        s.add_all(
            [
                Course(course_id="c1", name="Maths", created_by=CREATOR, user_consent_required=True, synced_at=now),
                Batch(batch_id="b1", course_id="c1", created_by=BATCH_CREATOR, mentors=[MENTOR], synced_at=now),
                Course(course_id="c3", name="Art", created_by=OTHER_CREATOR, synced_at=now),
            ]
        )
        s.commit()
    return app_env


SUBMIT = ["request", "submit", "--course", "c1", "--batch", "b1"]


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_submit_list_show(catalog):
    done = run(*SUBMIT, "--user", CREATOR, "--type", "userinfo", "--password-stdin", stdin="Secret123\n")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no alembic or other INFO lines on a successful command
    request_id = done.stdout.strip()
    listing = run("request", "list", "--user", CREATOR, "--course", "c1", "--batch", "b1")
    assert request_id in listing.stdout and "SUBMITTED" in listing.stdout and CREATOR in listing.stdout
    shown = json.loads(run("request", "show", request_id, "--user", CREATOR).stdout)
    assert shown["status"] == "SUBMITTED" and shown["report_type"] == "userinfo"
    assert shown["password_protected"] is True
    for output in (done.stdout + done.stderr, listing.stdout, json.dumps(shown)):
        assert "Secret123" not in output
    # Not ready yet: refused with a reason.
    early = run("request", "download", request_id, "--user", CREATOR)
    assert_plain_refusal(early, 2, "not ready")
    # Asking again while it is open names the open request.
    again = run(*SUBMIT, "--user", CREATOR, "--type", "userinfo", "--password-stdin", stdin="Secret123\n")
    assert_plain_refusal(again, 2, request_id)


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "user, args, stdin, message",
    [
        (OTHER_CREATOR, ["--type", "progress"], "", "no batch 'b1' in course 'c1'"),
        (STRANGER, ["--type", "progress"], "", "user 'u_stranger' has no role on any course"),
        (MENTOR, ["--type", "userinfo", "--password-stdin"], "Secret123\n", "may not request a userinfo"),
        (CREATOR, ["--type", "userinfo"], "", "password is mandatory"),
        (CREATOR, ["--type", "progress", "--password-stdin"], "short1\n", "8 to 64 printable ASCII"),
        (CREATOR, ["--type", "progress", "--ask-password"], "Secret123\n", "--ask-password needs a terminal"),
    ],
)
def test_refusals_exit_non_zero_with_a_message(catalog, user, args, stdin, message):
    assert_plain_refusal(run(*SUBMIT, "--user", user, *args, stdin=stdin), 2, message)


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_figures_follow_the_batch_lists_access_rules_and_say_when_not_computed(catalog, capsys):
    cli.main(["figures", "c1", "--user", MENTOR])  # in process: the real figures are in tests/test_sync.py
    printed = capsys.readouterr().out.splitlines()
    assert printed[1].split()[:2] == ["b1", "live"] and len(printed) == 4  # the batch has no name, no figures yet
    assert printed[3] == "figures not computed yet for some batches: run `coursedash sync`"
    assert_plain_refusal(run("figures", "c1", "--user", OTHER_CREATOR), 2, "no course 'c1'")
    assert_plain_refusal(run("figures", "c1", "--user", STRANGER), 2, "user 'u_stranger' has no role on any course")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_an_empty_database_says_to_sync_first(app_env):
    listing = run("request", "list", "--user", CREATOR, "--course", "c1", "--batch", "b1")
    assert_plain_refusal(listing, 2, "run `coursedash sync` first")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_sync_without_a_lake_says_where_it_looked_before_starting_spark(app_env):
    missing = app_env / "no-lake-here"
    done = run("sync", env={"COURSEDASH_LAKE_URI": str(missing)})
    assert_plain_refusal(done, 2, f"there is no lake at {missing}: run `coursedash generate-lake`")
    (missing / "courses").mkdir(parents=True)
    done = run("sync", env={"COURSEDASH_LAKE_URI": str(missing)})
    assert_plain_refusal(done, 2, "has no batches, course_contents, enrolments, assessment_attempts table")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_an_unreadable_lake_is_one_line_and_the_log_keeps_spark_output(app_env):
    from tests import handlake
    from tests.lakefixtures import write_lake

    write_lake(app_env / "lake", handlake.TABLES)
    for part in (app_env / "lake" / "courses").iterdir():
        part.write_bytes(b"not parquet")
    done = run("sync")
    assert_plain_refusal(done, 1, "dashboard_figures failed: LakeSchemaError: lake table 'courses' cannot be read")
    log = app_env / "log" / "coursedash.log"
    assert f"the full detail is in {log}" in done.stderr
    assert "spark-submit" in log.read_text()  # Spark's own output went to the file


@pytest.mark.parametrize(
    "args, message",
    [
        (["generate-lake", "--learners", "-5"], "argument --learners: -5 learners: give 0 to 100,000,000"),
        (
            ["generate-lake", "--learners", "99999999999999999999"],
            "argument --learners: 99999999999999999999 learners: give 0 to 100,000,000",
        ),
        (["serve", "--workers", "-1"], "argument --workers: -1 workers: give 1 to 64"),
        (["token", "u1", "--hours", "inf"], "inf hours: a development token lasts at most 8784 hours"),
        (["demo", "--learners", "ten"], "argument --learners: 'ten' is not a whole number"),
        (["demo", "--date", "28/11/2026"], "argument --date: '28/11/2026' is not a date; write it as YYYY-MM-DD"),
        (["serve", "--port", "70000"], "argument --port: 70000 is not a TCP port"),
        (["token", "u1", "--hours", "0"], "a token must last more than 0 hours"),
        (["request", "list", "--course", "c1", "--batch", "b1"], "required: --user"),
    ],
)
def test_bad_arguments_are_one_line(args, message):
    done = run(*args, env={"COURSEDASH_USER": ""})  # empty counts as unset
    assert_plain_refusal(done, 2, message)
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_lake_that_cannot_be_written_names_the_path(tmp_path):
    (tmp_path / "a-file").write_text("")
    done = run("generate-lake", "--learners", "1", "--out", str(tmp_path / "a-file" / "lake"))
    assert_plain_refusal(done, 2, f"Not a directory: {tmp_path / 'a-file' / 'lake'}")


def test_serve_on_a_port_in_use_is_one_line():
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run("serve", "--port", str(port))
    assert_plain_refusal(done, 2, f"127.0.0.1:{port} is in use; is another server running? Choose another --port")
    unknown = run("serve", "--host", "no-such-host.invalid")
    assert_plain_refusal(unknown, 2, "cannot listen on no-such-host.invalid:8000: ")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_an_unreachable_database_is_one_line_and_verbose_shows_the_traceback(app_env):
    env = {"COURSEDASH_DATABASE_URL": "postgresql+psycopg2://nobody:hunter2@127.0.0.1:1/none"}
    done = run("request", "list", "--user", CREATOR, "--course", "c1", "--batch", "b1", env=env)
    assert_plain_refusal(done, 1, "cannot use the database postgresql+psycopg2://nobody:***@127.0.0.1:1/none")
    assert "hunter2" not in done.stderr
    verbose = run("--verbose", "request", "list", "--user", CREATOR, "--course", "c1", "--batch", "b1", env=env)
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    after = run("request", "list", "--verbose", "--user", CREATOR, "--course", "c1", "--batch", "b1", env=env)
    assert "Traceback" in after.stderr  # --verbose after the command works too


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_download_goes_to_var_downloads_and_refuses_a_missing_folder(catalog):
    request_id = add_request(catalog, CREATOR, "progress", password="Secret123")
    refused = run("request", "download", request_id, "--user", MENTOR, "--out", str(catalog / "nowhere" / "r.zip"))
    assert_plain_refusal(refused, 2, f"folder '{catalog / 'nowhere'}' does not exist")
    with db.session() as s:
        assert s.scalars(select(Download)).all() == []  # a refused download is not recorded as one

    done = run("request", "download", request_id, "--user", MENTOR)
    assert done.returncode == 0, done.stderr
    saved = catalog / "downloads" / "b1_progress_20261128.zip"
    assert done.stdout.strip() == str(saved)
    assert packaging.read_zip(saved, "Secret123") == {"b1_x.csv": "\ufeffUser UUID\r\nL1\r\n".encode()}

    into_folder = run("request", "download", request_id, "--user", MENTOR, "--out", str(catalog))
    assert into_folder.stdout.strip() == str(catalog / "b1_progress_20261128.zip")


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_a_corrupt_report_is_refused_in_one_line_and_nothing_is_saved(catalog, s3_reports):
    from tests.test_storage import corrupting_proxy

    request_id = add_request(catalog, CREATOR, "progress", password="Secret123")
    out = catalog / "out"
    out.mkdir()
    with corrupting_proxy(os.environ["COURSEDASH_S3_ENDPOINT_URL"]) as proxy:
        done = run(
            "request",
            "download",
            request_id,
            "--user",
            MENTOR,
            "--out",
            str(out),
            env={"COURSEDASH_S3_ENDPOINT_URL": proxy},
        )
    assert_plain_refusal(done, 2, "is corrupt: its bytes do not match the SHA-256 checksum stored with it")
    assert "nothing was saved" in done.stderr
    assert list(out.iterdir()) == []  # no partial zip, no leftover part file
    assert run("request", "download", request_id, "--user", MENTOR, "--out", str(out)).returncode == 0
    assert [f.name for f in out.iterdir()] == ["b1_progress_20261128.zip"]


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_show_gives_what_the_report_left_out_in_words(catalog):
    from tests.published import add_request

    notes = [{"reason": "1 enrolment without a learner was left out", "rows": 1}]
    request_id = add_request(catalog, CREATOR, "progress", data_notes=notes)
    shown = json.loads(run("request", "show", request_id, "--user", CREATOR).stdout)
    assert (shown["status"], shown["data_notes"]) == ("SUCCESS", notes)


def all_parsers(parser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                yield from all_parsers(child)


def subparser(parser, *names):
    for name in names:
        parser = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
    return parser


def test_help_explains_every_option_with_its_default_and_points_nowhere_private(monkeypatch):
    monkeypatch.delenv("COURSEDASH_USER", raising=False)
    for parser in all_parsers(cli.parser()):
        text = parser.format_help()
        assert "§" not in text and "shared" not in text, parser.prog  # no section of a document users lack
        for action in parser._actions:
            if not action.option_strings or action.help == "show this help message and exit":
                continue
            assert action.help, f"{parser.prog} {action.option_strings} has no help"
            flag = action.const is True  # a switch: off unless given
            assert flag or action.required or "default" in action.help or action.choices, (
                f"{parser.prog} {action.option_strings[-1]} does not say its default"
            )


def test_user_is_optional_when_coursedash_user_is_set(monkeypatch):
    monkeypatch.setenv("COURSEDASH_USER", "user_creator_01")
    listing = subparser(cli.parser(), "request", "list")
    assert "[--user USER_ID]" in listing.format_usage()
    assert "default: COURSEDASH_USER, now 'user_creator_01'" in " ".join(listing.format_help().split())
    monkeypatch.delenv("COURSEDASH_USER")
    assert " --user USER_ID " in subparser(cli.parser(), "request", "list").format_usage()


@pytest.fixture
def root_logging():
    """setup_logging replaces the root logger's handlers: give pytest its own back."""
    import logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level, {n: logging.getLogger(n).level for n in cli.QUIET})
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_the_terminal_gets_warnings_only_and_the_log_file_everything(root_logging, capsys, tmp_path, monkeypatch):
    import logging

    monkeypatch.setenv("COURSEDASH_VAR_DIR", str(tmp_path))
    path = cli.setup_logging(verbose=False)
    logging.getLogger("alembic.runtime.migration").info("Context impl SQLiteImpl.")
    logging.getLogger("coursedash.sync").info("26/11/29 WARN NativeCodeLoader: Unable to load native-hadoop library")
    logging.getLogger("coursedash.demo").warning("a progress report is already requested")
    assert capsys.readouterr().err == "coursedash: a progress report is already requested\n"
    assert path == tmp_path / "log" / "coursedash.log"
    assert "NativeCodeLoader" in path.read_text() and "already requested" in path.read_text()
    assert "SQLiteImpl" not in path.read_text()


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "password_args", [["--password", "Leak3dPass"], ["--password=Leak3dPass"], ["--pass", "Leak3dPass"]]
)
def test_a_password_given_as_an_option_is_refused_without_echoing_it(catalog, password_args):
    refused = run(*SUBMIT, "--user", CREATOR, "--type", "progress", *password_args)
    assert_plain_refusal(refused, 2, "unrecognized options: --pass")
    assert "Leak3dPass" not in refused.stdout + refused.stderr
    listing = run("request", "list", "--user", CREATOR, "--course", "c1", "--batch", "b1")
    assert "SUBMITTED" not in listing.stdout  # nothing was submitted


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
@pytest.mark.parametrize("flag", ["--password-stdin", "--ask-password"])
def test_a_value_given_to_a_password_flag_is_refused_without_echoing_it(catalog, flag):
    refused = run(*SUBMIT, "--user", CREATOR, "--type", "progress", f"{flag}=Leak3dPass", stdin="Secret123\n")
    assert_plain_refusal(refused, 2, f"argument {flag}: takes no value (the value given is not shown)")
    assert "Leak3dPass" not in refused.stdout + refused.stderr


def test_a_lake_the_disk_has_no_room_for_is_refused_before_a_byte_is_written(tmp_path):
    import shutil

    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(cli.UserError, match=r"needs about [\d,.]+ GB and .* has [\d,.]+ GB free; choose fewer"):
        cli._check_room(tmp_path / "lake", free + 10**9)
    assert list(tmp_path.iterdir()) == []
    cli._check_room(tmp_path / "lake", 10**6)  # a lake that fits


def test_no_parser_takes_abbreviations():
    from coursedash.cli import parser

    def parsers(p):
        yield p
        for action in p._actions:
            for sub in getattr(action, "choices", None) or {}:
                if isinstance(action.choices, dict):
                    yield from parsers(action.choices[sub])

    found = list(parsers(parser()))
    assert len(found) >= 12 and all(p.allow_abbrev is False for p in found)


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_show_says_who_will_be_told_and_cancel_takes_a_request_back(catalog, monkeypatch):
    monkeypatch.setenv("COURSEDASH_SMTP_URL", "smtp://127.0.0.1:2525")
    done = run(*SUBMIT, "--user", CREATOR, "--type", "progress", "--email", "creator@example.org")
    assert done.returncode == 0, done.stderr
    request_id = done.stdout.strip()
    shown = run("request", "show", request_id, "--user", CREATOR).stdout
    assert json.loads(shown)["notify"] == {"email": "pending", "webhook": None}
    assert json.loads(shown)["cancellable"] is True and "creator@example.org" not in shown

    refused = run("request", "cancel", request_id, "--user", MENTOR)
    assert refused.returncode == 2 and "only the person who requested" in refused.stderr
    cancelled = run("request", "cancel", request_id, "--user", CREATOR)
    assert cancelled.returncode == 0 and f"request {request_id} cancelled" in cancelled.stdout
    assert json.loads(run("request", "show", request_id, "--user", CREATOR).stdout)["status"] == "CANCELLED"
    again = run("request", "cancel", request_id, "--user", CREATOR)
    assert again.returncode == 2 and "cannot be cancelled" in again.stderr
