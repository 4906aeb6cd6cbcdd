"""One night reads one lake: what the night's build read, and whether it is still there unchanged.

Spark reads a table when a query needs it, so one night reads its tables at different
times; an upstream job rewriting tables meanwhile would give a report built from old
enrolments and new responses, wrong and marked ready. The build lists each table's files
(path, size, modification time) before it reads anything; publishing lists them again
before it publishes. Any difference (a file added, removed or rewritten) means a table
may have changed under the build: its requests fail as transient, and the next night
builds them again from one lake. docs/lake.md tells data engineers how to rewrite a
table without that (write new files, then swap).

Only a lake on a file system (a path, or a file: URI) is listed here; for another
scheme `snapshot` gives None and the check is skipped, saying so in the log.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

Listing = dict[str, list[list]]  # table -> [[path in the table's folder, bytes, mtime in ns], ...]


def _local_root(lake_uri: str) -> Path | None:
    if lake_uri.startswith("file:"):
        return Path(urlparse(lake_uri).path)
    return None if "://" in lake_uri else Path(lake_uri)


def _ignored(name: str) -> bool:
    # What Spark does not read as data: _SUCCESS, _temporary/, .crc files, hidden files.
    return name.startswith((".", "_"))


def snapshot(lake_uri: str, tables) -> Listing | None:
    """Each table's data files, sorted; a missing table lists none. None when the lake is not on a file system."""
    root = _local_root(lake_uri)
    if root is None:
        return None
    listing: Listing = {}
    for table in sorted(set(tables)):
        folder = root / table
        files = []
        for here, folders, names in os.walk(folder):
            folders[:] = sorted(f for f in folders if not _ignored(f))
            for name in sorted(n for n in names if not _ignored(n)):
                path = Path(here) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # gone while listed: listed as gone
                    continue
                files.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
        listing[table] = files
    return listing


def changed(before: Listing, after: Listing | None) -> dict[str, str]:
    """The tables of `before` whose files differ in `after`, each with what differs (for the log)."""
    found = {}
    for table, files in before.items():
        now = (after or {}).get(table, [])
        if now == files:
            continue
        was, is_ = {f[0]: f[1:] for f in files}, {f[0]: f[1:] for f in now}
        parts = [
            f"{len(is_.keys() - was.keys())} file(s) added",
            f"{len(was.keys() - is_.keys())} removed",
            f"{sum(was[k] != is_[k] for k in was.keys() & is_.keys())} rewritten",
        ]
        found[table] = ", ".join(parts)
    return found


def total_bytes(lake_uri: str) -> int | None:
    """The bytes of every table's data files; None when the lake is not on a file system."""
    root = _local_root(lake_uri)
    if root is None:
        return None
    tables = [f.name for f in root.iterdir() if f.is_dir() and not _ignored(f.name)] if root.is_dir() else []
    listing = snapshot(lake_uri, tables) or {}
    return sum(size for files in listing.values() for _, size, _ in files)
