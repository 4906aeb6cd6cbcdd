"""The report file's bytes: CSV exactly as Python's csv module writes it, in a zip that opens with its password."""

import csv
import io
import random

import pyarrow as pa
import pytest

from coursedash import packaging

TRICKY = [
    "plain",
    "a,b",
    'say "hi"',
    '"',
    "line\nbreak",
    "cr\rx",
    "\r\n",
    "",
    None,
    " lead ",
    "tab\tx",
    "'=1",
    "ünï",
    "семья",
    "தமிழ்",
    '{"chosen": [0, 1]}',
    "12.50",
    ",",
    '""',
]


def python_csv(header, rows) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return packaging.BOM + out.getvalue().encode()


@pytest.mark.parametrize("columns", [1, 2, 19])
def test_the_bytes_are_python_csv_s(tmp_path, columns):
    pick = random.Random(columns)
    header = [pick.choice(["User UUID", 'Test "A" - Score', "a,b"]) for _ in range(columns)]
    rows = [[pick.choice(TRICKY) for _ in range(columns)] for _ in range(2_500)]
    path = tmp_path / "r.csv"
    assert packaging.write_csv(path, header, rows) == len(rows)
    assert path.read_bytes() == python_csv(header, rows)
    # The same rows as Arrow batches, as publishing reads them from the staged Parquet.
    batches = [pa.array(rows[i : i + 1000], pa.list_(pa.string())) for i in range(0, len(rows), 1000)]
    assert packaging.write_csv_batches(path, header, [b.slice(0) for b in batches]) == len(rows)
    assert path.read_bytes() == python_csv(header, rows)


def test_a_report_without_rows_is_its_header(tmp_path):
    path = tmp_path / "r.csv"
    assert packaging.write_csv_batches(path, ["User UUID", "State"], []) == 0
    assert path.read_bytes() == "\ufeffUser UUID,State\r\n".encode()


def test_a_slice_of_a_batch_writes_only_its_rows(tmp_path):
    batch = pa.array([["a"], ["b,c"], ["d"]], pa.list_(pa.string())).slice(1, 2)
    path = tmp_path / "r.csv"
    packaging.write_csv_batches(path, ["x"], [batch])
    assert path.read_bytes() == '\ufeffx\r\n"b,c"\r\nd\r\n'.encode()
