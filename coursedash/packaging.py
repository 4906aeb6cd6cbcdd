"""A report file: CSV as CONTRACT §4 writes it, in a zip, AES-256 when it has a password."""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import pyzipper

BOM = "\ufeff"  # spreadsheet programs read UTF-8 only when told so


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str | None]]) -> int:
    """RFC 4180 (CRLF, quotes doubled, quoted only when needed), UTF-8 with BOM; None is empty."""
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(BOM)
        writer = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count


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
