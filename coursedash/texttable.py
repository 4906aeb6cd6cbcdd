"""Plain-text tables for a terminal: the command line's lists and the demo's results table.

A module of its own so that the CLI and the demo both use it without importing each other.
"""

from __future__ import annotations


def text_table(rows: list[dict], columns: list[str]) -> str:
    """`columns` of `rows`, left-aligned, two spaces apart, under a header line; None is an empty cell."""
    widths = {c: max([len(c)] + [len(str(r.get(c) if r.get(c) is not None else "")) for r in rows]) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    for r in rows:
        lines.append("  ".join(str(r.get(c) if r.get(c) is not None else "").ljust(widths[c]) for c in columns))
    return "\n".join(line.rstrip() for line in lines)
