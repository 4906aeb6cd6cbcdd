"""Cell formats shared by the reports: a number from the lake keeps its value (docs/reports.md)."""

import random
import struct
from decimal import Decimal

import duckdb

from benchmarks.reference import MACROS
from jobs.common import plain_number

EDGES = [
    # The cases: tiny, many digits, beyond decimal(38,12).
    (1e-13, "0.0000000000001"),
    (12.3456789012345, "12.3456789012345"),
    (1e27, "1" + "0" * 27),
    (12.5, "12.5"),
    (3.0, "3"),
    (100.0, "100"),
    (-12.5, "-12.5"),
    (0.0004, "0.0004"),
    (12960000.5, "12960000.5"),
    (0.0, "0"),
    (-0.0, "0"),
    # Where Java's plain and scientific forms meet (1e-3 and 1e7), and 15 to 17 significant digits.
    (0.001, "0.001"),
    (0.000999, "0.000999"),
    (9999999.0, "9999999"),
    (10000000.0, "10000000"),
    (0.30000000000000004, "0.30000000000000004"),
    (123456789012345.6, "123456789012345.6"),
    (1.2345678901234567, "1.2345678901234567"),
    (9007199254740993.0, "9007199254740992"),
    # Doubles Java before 19 writes with more digits than they need.
    (2e23, "2" + "0" * 23),
    (1e23, "1" + "0" * 23),
    (2.82879384806159e17, "282879384806159000"),
    # The largest and the smallest normal double, and a tiny negative.
    (1.7976931348623157e308, "17976931348623157" + "0" * 292),
    (2.2250738585072014e-308, "0." + "0" * 307 + "22250738585072014"),
    (-1e-300, "-0." + "0" * 299 + "1"),
    (float("nan"), None),
    (float("inf"), None),
    (float("-inf"), None),
    (None, None),
]


def shortest(value: float) -> str:
    """Python's repr is the shortest decimal that reads back as the double; written plainly."""
    text = format(Decimal(repr(value)), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def random_doubles(n: int) -> list[float]:
    """Doubles from random bit patterns: every exponent and up to 17 significant digits (not subnormal)."""
    rng = random.Random(7)
    found = []
    while len(found) < n:
        value = struct.unpack("d", struct.pack("Q", rng.getrandbits(64)))[0]
        if value == value and abs(value) != float("inf") and abs(value) >= 2.2250738585072014e-308:
            found.append(value)
    return found


def test_a_double_is_its_shortest_plain_decimal(spark):
    values = [v for v, _ in EDGES] + random_doubles(3000)
    frame = spark.createDataFrame([(v,) for v in values], "x double")
    written = [r.cell for r in frame.select(plain_number("x").alias("cell")).collect()]
    assert list(zip([v for v, _ in EDGES], written[: len(EDGES)], strict=True)) == EDGES
    for value, cell in zip(values[len(EDGES) :], written[len(EDGES) :], strict=True):
        assert "e" not in cell.lower() and float(cell) == value, (value, cell)
        # As short as the shortest; where two are as short, either may be written.
        assert len(cell.lstrip("-")) == len(shortest(value).lstrip("-")), (value, cell)
        assert cell == shortest(value) or len(cell.replace("-", "").replace(".", "").strip("0")) >= 16


def test_the_benchmarks_duckdb_reference_writes_the_same_cells():
    con = duckdb.connect()
    con.execute(MACROS)
    values = [v for v, _ in EDGES if v is not None]
    written = [con.execute("SELECT plain_number(?::DOUBLE)", [v]).fetchone()[0] for v in values]
    assert written == [cell for v, cell in EDGES if v is not None]
    for value in random_doubles(500):
        assert con.execute("SELECT plain_number(?::DOUBLE)", [value]).fetchone()[0] == shortest(value)
