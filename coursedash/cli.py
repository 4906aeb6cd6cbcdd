"""`coursedash`: the command line of CONTRACT §5."""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys

from coursedash.store import RequestError


def _password(args) -> str | None:
    # Never from argv: command lines are visible to every user of the machine.
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if args.ask_password:
        return getpass.getpass("Report password: ")
    return None


def _table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c) if r.get(c) is not None else "")) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    for r in rows:
        lines.append("  ".join(str(r.get(c) if r.get(c) is not None else "").ljust(widths[c]) for c in columns))
    return "\n".join(lines)


def cmd_generate_lake(args) -> None:
    from coursedash.config import settings
    from coursedash.lakegen import generate_lake

    out = args.out or settings().lake_uri
    summary = generate_lake(out, learners=args.learners, seed=args.seed)
    print(f"lake written to {out}: " + ", ".join(f"{k} {v}" for k, v in summary["rows"].items()))


def cmd_sync(args) -> None:
    from coursedash.sync import sync

    counts = sync()
    print(f"synced {counts['courses']} courses and {counts['batches']} batches")


def cmd_migrate(args) -> None:
    from coursedash import db

    db.migrate()
    print("database is up to date")


def cmd_submit(args) -> None:
    from coursedash import db, store

    db.migrate()
    with db.session() as s:
        r = store.submit(s, args.user, args.course, args.batch, args.type, _password(args), args.email)
        print(r.request_id)


def cmd_list(args) -> None:
    from coursedash import db, reports

    with db.session() as s:
        rows = [reports.as_json(r) for r in reports.downloadable(s, args.user, args.course, args.batch)]
    print(_table(rows, ["request_id", "report_type", "status", "submitted_at", "row_count", "file_size", "error"]))


def cmd_show(args) -> None:
    import json

    from coursedash import db, reports

    with db.session() as s:
        print(json.dumps(reports.as_json(reports.visible_request(s, args.user, args.request_id)), indent=2))


def cmd_cancel(args) -> None:
    from coursedash import db, store

    with db.session() as s:
        store.cancel(s, args.user, args.request_id)
    print(f"request {args.request_id} cancelled")


def cmd_download(args) -> None:
    import shutil

    from coursedash import db, reports

    with db.session() as s:
        _request, name, _url, stream = reports.open_download(s, args.user, args.request_id, client_address="cli")
    target = args.out or name
    with stream, open(target, "wb") as f:
        shutil.copyfileobj(stream, f)
    print(target)


def cmd_token(args) -> None:
    from coursedash.auth import mint_token

    print(mint_token(args.user_id, hours=args.hours, email=args.email))


def cmd_serve(args) -> None:
    import uvicorn

    from coursedash import db

    db.migrate()
    uvicorn.run("coursedash.api:app", host=args.host, port=args.port, log_level="info")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="coursedash", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate-lake", help="write a deterministic synthetic lake")
    g.add_argument("--learners", type=int, default=200)
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--out", help="folder (default: COURSEDASH_LAKE_URI)")
    g.set_defaults(func=cmd_generate_lake)

    sub.add_parser("sync", help="refresh courses, batches and figures from the lake").set_defaults(func=cmd_sync)
    sub.add_parser("migrate", help="create or upgrade the application database").set_defaults(func=cmd_migrate)

    t = sub.add_parser("token", help="mint a development token")
    t.add_argument("user_id")
    t.add_argument("--hours", type=float, default=12)
    t.add_argument("--email", help="the token's email claim: where report-ready notices go")
    t.set_defaults(func=cmd_token)

    s = sub.add_parser("serve", help="the HTTP API and the web dashboard")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.set_defaults(func=cmd_serve)

    r = sub.add_parser("request", help="report requests").add_subparsers(dest="action", required=True)
    user = argparse.ArgumentParser(add_help=False)
    user.add_argument("--user", default=os.environ.get("COURSEDASH_USER"), required="COURSEDASH_USER" not in os.environ,
                      help="acting user id (default: COURSEDASH_USER)")

    submit = r.add_parser("submit", parents=[user], help="request a report")
    submit.add_argument("--course", required=True)
    submit.add_argument("--batch", required=True)
    submit.add_argument("--type", required=True, choices=["progress", "userinfo", "response"])
    submit.add_argument("--email", help="e-mail me when it is ready (needs COURSEDASH_SMTP_URL)")
    how = submit.add_mutually_exclusive_group()
    how.add_argument("--password-stdin", action="store_true", help="read the zip password from standard input")
    how.add_argument("--ask-password", action="store_true", help="prompt for the zip password")
    submit.set_defaults(func=cmd_submit)

    ls = r.add_parser("list", parents=[user], help="the last ten requests of a batch you may download")
    ls.add_argument("--course", required=True)
    ls.add_argument("--batch", required=True)
    ls.set_defaults(func=cmd_list)

    show = r.add_parser("show", parents=[user], help="one request")
    show.add_argument("request_id")
    show.set_defaults(func=cmd_show)

    cancel = r.add_parser("cancel", parents=[user], help="take back your request before tonight's run builds it")
    cancel.add_argument("request_id")
    cancel.set_defaults(func=cmd_cancel)

    dl = r.add_parser("download", parents=[user], help="save a ready report's zip")
    dl.add_argument("request_id")
    dl.add_argument("--out", help="file to write (default: the report's name)")
    dl.set_defaults(func=cmd_download)

    d = sub.add_parser("demo", help="sample lake, sync, requests, one nightly run, a table of results")
    d.add_argument("--learners", type=int, default=200)
    d.add_argument("--date", help="the run's logical date (default: today)")
    d.set_defaults(func=lambda a: __import__("coursedash.demo", fromlist=["run"]).run(a.learners, a.date))
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except RequestError as e:
        print(f"coursedash: {e.message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
