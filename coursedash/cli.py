"""`coursedash`: the command line; docs/cli.md describes every command.

A mistake the user can fix is one line on stderr and exit status 2; anything else is
one line and exit status 1. The full detail (tracebacks, Spark's output) goes to
var/log/coursedash.log, and to the terminal too with --verbose.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import os
import re
import sys
from pathlib import Path

from coursedash import REPORT_TYPES
from coursedash.errors import UserError
from coursedash.store import RequestError
from coursedash.texttable import text_table

log = logging.getLogger("coursedash.cli")

DESCRIPTION = """\
Course Dashboard: a sample lake, the dashboard's figures, report requests, the web page.
Settings come from COURSEDASH_* environment variables (see the README's Configuration);
every command is described in docs/cli.md, and `coursedash COMMAND --help` lists its options."""
EPILOG = "The HTTP API is described by the served OpenAPI document: http://HOST:PORT/api/v1/openapi.json"


# --- argument types: refused by argparse with a one-line message ---------------------


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more")
    return value


def _port(text: str) -> int:
    value = _non_negative_int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (1 to 65535)")
    return value


MAX_TOKEN_HOURS = 24 * 366  # a development token; a year at most
MAX_WORKERS = 64
MAX_LEARNERS = 100_000_000
LAKE_BYTES_PER_LEARNER = 1000  # measured about 600 (a 372 MB lake for 620,000 learners), with room to spare


def _positive_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of hours") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} hours: a token must last more than 0 hours")
    if not value <= MAX_TOKEN_HOURS:  # also inf and nan
        raise argparse.ArgumentTypeError(f"{text} hours: a development token lasts at most {MAX_TOKEN_HOURS} hours")
    return value


def _bounded_int(low: int, high: int, what: str):
    """An argparse type: a whole number from `low` to `high`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} {what}: give {low} to {high:,}")
        return value

    return parse


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2026-11-28") from None


def _not_blank(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a user id cannot be empty")
    return text


# --- helpers ----------------------------------------------------------------------


def _password(args) -> str | None:
    # Never from argv: command lines are visible to every user of the machine.
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if args.ask_password:
        if not sys.stdin.isatty():
            raise UserError("--ask-password needs a terminal to prompt on; pipe the password in with --password-stdin")
        return getpass.getpass("Report password: ")
    return None


def _session():
    """A session on an up-to-date database that has been synced at least once."""
    from sqlalchemy import select

    from coursedash import db
    from coursedash.db import Course

    db.migrate()  # cheap when up to date; a fresh database gets its tables
    s = db.session()
    if s.scalar(select(Course.course_id).limit(1)) is None:
        s.close()
        raise UserError("the dashboard database has no courses yet: run `coursedash sync` first")
    return s


class _AsUser:
    """A synced session for the acting user, who is told when they have no role at all."""

    def __init__(self, user: str):
        self.user = user

    def __enter__(self):
        self.s = _session()
        return self.s

    def __exit__(self, kind, error, _tb):
        from coursedash import reports, store

        try:
            # A 404 for a user with no role anywhere is a wrong --user, not a missing
            # batch; it says nothing about other users' courses.
            if isinstance(error, store.NotFound) and not reports.visible_courses(self.s, self.user):
                raise UserError(
                    f"user {self.user!r} has no role on any course (course creator, batch creator or mentor); "
                    "check --user or COURSEDASH_USER"
                ) from None
        finally:
            self.s.close()
        return False


# --- commands ---------------------------------------------------------------------


def cmd_generate_lake(args) -> None:
    from coursedash.config import settings
    from coursedash.lakegen import generate_lake

    out = args.out or settings().lake_uri
    if not 1 <= args.courses <= args.batches <= 9000:
        raise UserError("--batches must be at least --courses (every course needs a batch) and at most 9000")
    _check_room(Path(out), args.learners * LAKE_BYTES_PER_LEARNER)
    summary = generate_lake(out, learners=args.learners, seed=args.seed, courses=args.courses, batches=args.batches)
    print(f"lake written to {out}: " + ", ".join(f"{k} {v}" for k, v in summary["rows"].items()))


def _check_room(folder: Path, needed: int) -> None:
    """Refuse before writing what would fill the disk (the old lake's tables are replaced: they count as room)."""
    import shutil

    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return  # not a folder: writing fails and names the path
    room = shutil.disk_usage(existing).free
    if folder.is_dir():
        room += sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    if needed > room:
        raise UserError(
            f"a lake of that many learners needs about {needed / 1e9:,.1f} GB and {existing} has "
            f"{room / 1e9:,.1f} GB free; choose fewer --learners or another --out"
        )


def cmd_sync(args) -> None:
    from coursedash.sync import sync

    counts = sync()
    print(f"synced {counts['courses']} courses and {counts['batches']} batches")
    kept = counts["batches"] - counts["figures_computed"]
    if kept > 0:
        print(f"figures computed for {counts['figures_computed']}; kept for {kept}, whose lake rows are unchanged")
    for reason, n in counts["skipped"].items():
        print(f"skipped, {reason}: {n}")


def cmd_migrate(args) -> None:
    from coursedash import db

    db.migrate()
    print("database is up to date")


def cmd_submit(args) -> None:
    from coursedash import store

    password = _password(args)  # before any work: a refused prompt changes nothing
    with _AsUser(args.user) as s:
        print(store.submit(s, args.user, args.course, args.batch, args.type, password, args.email).request_id)


def cmd_list(args) -> None:
    from coursedash import reports

    with _AsUser(args.user) as s:
        rows = [reports.as_json(r) for r in reports.downloadable(s, args.user, args.course, args.batch)]
    if not rows:
        print("no report requested for this batch yet")
        return
    print(
        text_table(rows, ["request_id", "report_type", "status", "requested_by", "submitted_at", "row_count", "error"])
    )


def cmd_show(args) -> None:
    import json

    from coursedash import reports

    with _AsUser(args.user) as s:
        print(json.dumps(reports.as_json(reports.visible_request(s, args.user, args.request_id)), indent=2))


def cmd_figures(args) -> None:
    from coursedash import reports

    with _AsUser(args.user) as s:
        _course, batches = reports.visible_batches(s, args.user, args.course_id)
        shown = [(b, reports.batch_figures(b)) for b in batches]
    rows, weeks = [], []
    for b, f in shown:
        bands = f["progress_bands"] or {}
        score = f["average_total_score"]
        rows.append(
            {
                "batch_id": b.batch_id,
                "name": b.name,
                "status": reports.batch_status(b),
                "enrolled": f["enrolment_count"],
                "completed": f["completed_count"],
                "progress 0": bands.get("not_started"),
                "1-49": bands.get("started"),
                "50-99": bands.get("past_half"),
                "100": bands.get("completed"),
                "certificates": f["certificates_issued"],
                "avg total score": None if score is None else f"{score:.2f}",
                "figures as of": f["figures_as_of"],
            }
        )
        weeks += [
            {"batch_id": b.batch_id, "week starting": w["week_start"], "enrolled": w["count"]}
            for w in f["weekly_enrolments"] or []
        ]
    if not rows:
        print("this course has no batch yet")
        return
    print(text_table(rows, list(rows[0])))
    if any(r["figures as of"] is None for r in rows):
        print("\nfigures not computed yet for some batches: run `coursedash sync`")
    if weeks:
        print("\nenrolments per week (weeks start on Monday, UTC):")
        print(text_table(weeks, list(weeks[0])))


def _download_target(out: str | None, name: str) -> Path:
    """--out as a folder or a file; by default var/downloads/<report name>."""
    from coursedash.config import var_dir

    if out is None:
        folder = var_dir() / "downloads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name
    target = Path(out)
    if target.is_dir():
        return target / name
    if not target.parent.is_dir():
        raise UserError(f"folder {str(target.parent)!r} does not exist; create it first or choose another --out")
    return target


def cmd_cancel(args) -> None:
    from coursedash import store

    with _AsUser(args.user) as s:
        store.cancel(s, args.user, args.request_id)
    print(f"request {args.request_id} cancelled")


def cmd_download(args) -> None:
    import shutil

    from coursedash import reports
    from coursedash.storage import ChecksumMismatch

    with _AsUser(args.user) as s:
        # Checked before the download is opened, so a refused one leaves no audit row.
        target = _download_target(args.out, reports.download_name(reports.ready_request(s, args.user, args.request_id)))
        request, _name, _url, stream = reports.open_download(s, args.user, args.request_id, client_address="cli")
    # Written beside the target, then renamed: a download that breaks (a corrupt object, a
    # full disk) leaves no partial zip that looks like a report.
    partial = target.with_name(f".{target.name}.part")
    try:
        with stream, open(partial, "wb") as f:
            shutil.copyfileobj(stream, f)
        os.replace(partial, target)
    except ChecksumMismatch as e:
        raise UserError(f"{e}; nothing was saved: ask the platform's administrators") from None
    finally:
        partial.unlink(missing_ok=True)
    print(target)


def cmd_token(args) -> None:
    from coursedash.auth import mint_token

    print(mint_token(args.user_id, hours=args.hours, email=args.email))


def _check_port_free(host: str, port: int) -> None:
    """uvicorn would start, fail to bind and print five lines; say it in one, up front."""
    import errno
    import socket

    try:
        with socket.create_server((host, port)):
            pass
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise UserError(f"{host}:{port} is in use; is another server running? Choose another --port") from None
        # create_server appends the address to the reason: drop it, the message names it.
        reason = (e.strerror or str(e)).split(" (while attempting")[0]
        raise UserError(f"cannot listen on {host}:{port}: {reason}") from None


def cmd_serve(args) -> None:
    from coursedash import db
    from coursedash.server import serve

    _check_port_free(args.host, args.port)
    db.migrate()
    serve(args.host, args.port, args.workers)


def _parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Arguments, refusing unknown ones by name only: a mistyped option's value may be a password."""
    args, unknown = p.parse_known_args(argv)
    if unknown:
        names = sorted({a.split("=", 1)[0] for a in unknown if a.startswith("-")})
        p.error(f"unrecognized options: {' '.join(names) or '(none)'}; their values are not shown")
    return args


def cmd_demo(args) -> None:
    from coursedash.config import settings
    from coursedash.demo import run

    _check_room(Path(settings().lake_uri), args.learners * LAKE_BYTES_PER_LEARNER)
    run(args.learners, args.date)


# --- the parser -------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        # No abbreviations: `--password X` must never be read as `--password-stdin`.
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message: str):
        # One line naming the fix, rather than the usage block; --help has the rest. A
        # value given to a flag (`--password-stdin=PW`) may be a password: never shown.
        message = re.sub(r"ignored explicit argument .*", "takes no value (the value given is not shown)", message)
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def parser() -> argparse.ArgumentParser:
    # --verbose works before or after the command; SUPPRESS keeps a subcommand from
    # resetting what was given before it.
    verbose = _Parser(add_help=False)
    verbose.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="print the full log (Spark's output, tracebacks) on the terminal too",
    )

    p = _Parser(
        prog="coursedash", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=False,
        help="print the full log (Spark's output, tracebacks) on the terminal too",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help: str, **kw):
        return sub.add_parser(name, help=help, description=help[0].upper() + help[1:] + ".", parents=[verbose], **kw)

    g = command("generate-lake", "write a deterministic synthetic lake (replaces its tables)")
    g.add_argument(
        "--learners",
        metavar="N",
        type=_bounded_int(0, MAX_LEARNERS, "learners"),
        default=200,
        help=f"number of learners, at most {MAX_LEARNERS:,} (default: 200)",
    )
    g.add_argument(
        "--seed", metavar="N", type=int, default=7, help="random seed; the same seed gives the same lake (default: 7)"
    )
    g.add_argument("--out", metavar="DIR", help="folder to write (default: COURSEDASH_LAKE_URI, else var/lake)")
    g.add_argument(
        "--courses",
        metavar="N",
        type=_non_negative_int,
        default=4,
        help="number of courses, copies of the four sample ones beyond them (default: 4)",
    )
    g.add_argument(
        "--batches",
        metavar="M",
        type=_non_negative_int,
        default=12,
        help="number of batches, spread over the courses; the enrolments spread over them (default: 12)",
    )
    g.set_defaults(func=cmd_generate_lake)

    command(
        "sync", "refresh the dashboard's courses, batches and enrolment figures from the lake (runs Spark)"
    ).set_defaults(func=cmd_sync)
    command("migrate", "create or upgrade the application database").set_defaults(func=cmd_migrate)

    t = command("token", "print a development token to sign in to the dashboard with")
    t.add_argument("user_id", type=_not_blank, help="the user the token signs in, e.g. user_creator_01")
    t.add_argument(
        "--hours", metavar="H", type=_positive_hours, default=12, help="how long the token is valid (default: 12)"
    )
    t.add_argument(
        "--email", metavar="ADDRESS", help="the token's email claim: where report-ready notices go (default: none)"
    )
    t.set_defaults(func=cmd_token)

    s = command("serve", "serve the web dashboard and the HTTP API (runs until Ctrl-C)")
    s.add_argument(
        "--host",
        metavar="ADDRESS",
        default="127.0.0.1",
        help="address to listen on; 0.0.0.0 for every interface (default: 127.0.0.1)",
    )
    s.add_argument("--port", metavar="PORT", type=_port, default=8000, help="TCP port (default: 8000)")
    s.add_argument(
        "--workers",
        metavar="N",
        type=_bounded_int(1, MAX_WORKERS, "workers"),
        default=1,
        help=f"server processes, 1 to {MAX_WORKERS}; each opens its own database connections, "
        "see the README (default: 1)",
    )
    s.set_defaults(func=cmd_serve)

    r = command("request", "submit, list, show and download report requests")
    actions = r.add_subparsers(dest="action", required=True, metavar="ACTION")
    env_user = os.environ.get("COURSEDASH_USER") or None
    user = _Parser(add_help=False)
    user.add_argument(
        "--user",
        metavar="USER_ID",
        type=_not_blank,
        default=env_user,
        required=env_user is None,
        help=f"the acting user id (default: COURSEDASH_USER, now {env_user!r})"
        if env_user
        else "the acting user id; required unless COURSEDASH_USER is set",
    )

    def action(name: str, help: str):
        return actions.add_parser(
            name, help=help, description=help[0].upper() + help[1:] + ".", parents=[user, verbose]
        )

    submit = action("submit", "request a report for a batch; prints the new request id")
    submit.add_argument("--course", metavar="COURSE_ID", required=True, help="course id, e.g. do_course_0001")
    submit.add_argument("--batch", metavar="BATCH_ID", required=True, help="batch id, e.g. batch_0001")
    submit.add_argument(
        "--type",
        required=True,
        choices=REPORT_TYPES,
        help="progress: Course Progress; userinfo: User Profile (password required); response: Question Set",
    )
    submit.add_argument(
        "--email",
        metavar="ADDRESS",
        help="e-mail this address when the report is final; needs COURSEDASH_SMTP_URL (default: none)",
    )
    how = submit.add_mutually_exclusive_group()
    how.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the zip password from the first line of standard input (default: no password)",
    )
    how.add_argument("--ask-password", action="store_true", help="prompt for the zip password on the terminal")
    submit.set_defaults(func=cmd_submit)

    ls = action("list", "ten requests of a batch that you may download: ready or on their way first, newest first")
    ls.add_argument("--course", metavar="COURSE_ID", required=True, help="course id, e.g. do_course_0001")
    ls.add_argument("--batch", metavar="BATCH_ID", required=True, help="batch id, e.g. batch_0001")
    ls.set_defaults(func=cmd_list)

    show = action("show", "one request as JSON: status, attempts, error, data notes")
    show.add_argument("request_id", help="as printed by `request submit`")
    show.set_defaults(func=cmd_show)

    cancel = action("cancel", "take back your request before tonight's run builds it")
    cancel.add_argument("request_id", help="as printed by `request submit`")
    cancel.set_defaults(func=cmd_cancel)

    dl = action("download", "save a ready report's zip; prints where")
    dl.add_argument("request_id", help="as printed by `request submit`")
    dl.add_argument(
        "--out",
        metavar="PATH",
        help="file, or existing folder, to write to (default: var/downloads/<batch>_<type>_<yyyymmdd>.zip)",
    )
    dl.set_defaults(func=cmd_download)

    f = sub.add_parser(
        "figures",
        parents=[user, verbose],
        help="how each batch of a course is doing: the dashboard's figures as a table",
        description="How each batch of a course is doing, as of the last sync or night: learners by "
        "progress band, certificates, the average Total Score and enrolments per week "
        "(docs/reports.md). Only the batches the user may see.",
    )
    f.add_argument("course_id", help="course id, e.g. do_course_0001")
    f.set_defaults(func=cmd_figures)

    d = command("demo", "the whole night on sample data: lake, sync, four requests, one nightly run, a table")
    d.add_argument(
        "--learners",
        metavar="N",
        type=_bounded_int(0, MAX_LEARNERS, "learners"),
        default=200,
        help="learners in the sample lake (default: 200)",
    )
    d.add_argument(
        "--date", metavar="YYYY-MM-DD", type=_iso_date, help="the run's logical date, YYYY-MM-DD (default: today)"
    )
    d.set_defaults(func=cmd_demo)
    return p


# --- running ----------------------------------------------------------------------

QUIET = ("alembic", "py4j", "httpx", "botocore", "boto3", "urllib3")


def _log_file() -> Path | None:
    from coursedash.config import log_path

    path = log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        return None  # an unwritable var/ still lets the command run
    return path


def setup_logging(verbose: bool) -> Path | None:
    """INFO and up into var/log/coursedash.log; on the terminal only warnings, unless verbose."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.INFO if verbose else logging.WARNING)
    console.setFormatter(
        logging.Formatter("%(levelname)s %(name)s: %(message)s" if verbose else "coursedash: %(message)s")
    )
    root.addHandler(console)
    path = _log_file()
    if path is not None:
        file = logging.FileHandler(path, encoding="utf-8")
        file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(file)
    for name in QUIET:
        # Their INFO lines (alembic's "Context impl SQLiteImpl." on every command) are
        # noise even in the file; --verbose shows them.
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)
    return path


def _explain(e: BaseException) -> tuple[str, int]:
    """The one line a user sees for an error, and the exit status."""
    from sqlalchemy.exc import OperationalError

    from coursedash.spark import SparkJobFailed

    if isinstance(e, RequestError):
        return e.message, 2
    if isinstance(e, UserError):
        return str(e), 2
    if isinstance(e, OperationalError):
        from sqlalchemy.engine import make_url

        from coursedash.config import settings

        url = make_url(settings().database_url).render_as_string(hide_password=True)
        return f"cannot use the database {url} (COURSEDASH_DATABASE_URL): {str(e.orig).strip().splitlines()[0]}", 1
    if isinstance(e, SparkJobFailed):
        return str(e), 1
    if isinstance(e, OSError) and e.filename:  # a path the user gave or configured
        return f"{e.strerror or e}: {e.filename}", 2
    return f"unexpected error: {type(e).__name__}: {e}", 1


def main(argv: list[str] | None = None) -> None:
    args = _parse(parser(), argv)
    path = setup_logging(args.verbose)
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - every error becomes one line; the log keeps the rest
        message, status = _explain(e)
        # The traceback goes to the log file, and to the terminal with --verbose.
        log.info("%s failed: %s", args.command, message, exc_info=status == 1)
        print(f"coursedash: {message}", file=sys.stderr)
        if status == 1 and not args.verbose:
            where = f" in {path}" if path else ""
            print(f"coursedash: the full detail is{where}; or run again with --verbose", file=sys.stderr)
        sys.exit(status)


if __name__ == "__main__":
    main()
