"""A report file: CSV as docs/reports.md writes it, in a zip, AES-256 when it has a password."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyzipper

BOM = "\ufeff".encode()  # spreadsheet programs read UTF-8 only when told so
ROWS_PER_BATCH = 10_000  # Python rows converted at a time by write_csv
NEEDS_QUOTES = '[,"\r\n]'  # what Python's csv module quotes with QUOTE_MINIMAL


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> int:
    """RFC 4180 (CRLF, quotes doubled, quoted only when needed), UTF-8 with BOM; None is empty.

    Rows as Python sequences; see `write_csv_batches` for rows already in Arrow.
    """

    def batches():
        chunk = []
        for row in rows:
            chunk.append(list(row))
            if len(chunk) == ROWS_PER_BATCH:
                yield pa.array(chunk, pa.list_(pa.string()))
                chunk = []
        if chunk:
            yield pa.array(chunk, pa.list_(pa.string()))

    return write_csv_batches(path, header, batches())


def write_csv_batches(path: Path, header: Sequence[str], batches: Iterable[pa.ListArray]) -> int:
    """`write_csv` for rows as Arrow list<string> arrays, one list of cells per row: encoded by Arrow, not row by row.

    The bytes are those of Python's csv module (QUOTE_MINIMAL, CRLF), which the tests
    check: a cell with a comma, a quote, CR or LF is quoted, its quotes doubled.
    """
    count = 0
    with open(path, "wb") as f:
        f.write(BOM)
        f.write(csv_lines([pa.array([name], pa.string()) for name in header]))
        for batch in batches:
            if len(batch):
                f.write(csv_lines([pc.list_element(batch, i) for i in range(len(header))]))
                count += len(batch)
    return count


def csv_lines(columns: list[pa.Array]) -> bytes:
    """The CSV lines of rows given as one string array per column, each line ending in CRLF."""
    cells = []
    for column in columns:
        column = pc.fill_null(column, "")
        needs_quotes = pc.match_substring_regex(column, NEEDS_QUOTES)
        if pc.any(needs_quotes).as_py():
            quoted = pc.binary_join_element_wise('"', pc.replace_substring(column, '"', '""'), '"', "")
            column = pc.if_else(needs_quotes, quoted, column)
        cells.append(column)
    if len(cells) == 1:  # a lone empty cell would make an empty line: csv writes it as ""
        cells[0] = pc.if_else(pc.equal(cells[0], ""), '""', cells[0])
    lines = pc.binary_join_element_wise(*cells, ",")
    lines = pc.binary_join_element_wise(lines, "", "\r\n")
    return _string_bytes(lines)


def _string_bytes(strings: pa.Array) -> bytes:
    """The bytes of every string of an array, one after the other (no nulls)."""
    import numpy as np

    _, offsets, data = strings.buffers()
    bounds = np.frombuffer(offsets, dtype=np.int32)[strings.offset : strings.offset + len(strings) + 1]
    return memoryview(data)[bounds[0] : bounds[-1]].tobytes()


def zip_file(source: Path, target: Path, arcname: str, password: str | None) -> int:
    """Zip one file (WinZip AE-2 AES-256 with a password, plain without); return the zip's size."""
    if password:
        with pyzipper.AESZipFile(target, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as zf:
            zf.setpassword(password.encode())
            zf.setencryption(pyzipper.WZ_AES, nbits=256)
            zf.write(source, arcname)
    else:
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.write(source, arcname)
    return target.stat().st_size


def read_zip(path: Path, password: str | None = None) -> dict[str, bytes]:
    """Every member of a report zip, decrypted: for the CLI and tests."""
    with pyzipper.AESZipFile(path) as zf:
        if password:
            zf.setpassword(password.encode())
        return {name: zf.read(name) for name in zf.namelist()}
