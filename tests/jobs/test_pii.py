"""No learner's name, email or phone reaches a progress or response report of the generated lake."""

import pyarrow.parquet as pq
import pytest

from coursedash.lakegen import generate_lake
from coursedash.manifest import Manifest
from jobs import night

# One night builds every type, as the DAG does; the module's tests share it (one worker runs them all).
pytestmark = pytest.mark.xdist_group("pii")


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("lake")
    summary = generate_lake(root, learners=60, seed=11)
    return root, summary


@pytest.fixture(scope="module")
def pii(lake):
    users = pq.read_table(lake[0] / "users", columns=["first_name", "last_name", "email", "phone"]).to_pylist()
    names = {u[c].strip() for u in users for c in ("first_name", "last_name") if u[c] and u[c].strip()}
    contacts = {u[c] for u in users for c in ("email", "phone") if u[c]}
    return names, contacts


@pytest.fixture(scope="module")
def cells(spark, lake, tmp_path_factory) -> dict[str, list[str]]:
    """Every non-empty cell of each report type's rows, for every batch of the lake."""
    root, summary = lake
    out = tmp_path_factory.mktemp("reports")
    night.build(
        spark,
        [
            (
                Manifest(
                    report_type,
                    "2026-11-28",
                    str(root),
                    [
                        {"request_id": f"{report_type}-{i}", "course_id": b["course_id"], "batch_id": b["batch_id"]}
                        for i, b in enumerate(summary["batches"])
                    ],
                ),
                str(out / report_type),
            )
            for report_type in night.REPORTS
        ],
    )
    found = {}
    for report_type in night.REPORTS:
        files = (out / report_type / "rows").rglob("*.parquet")
        rows = [row for f in files for row in pq.read_table(f).column("cells").to_pylist()]
        found[report_type] = [cell for row in rows for cell in row if cell]
    return found


@pytest.mark.parametrize("report_type", ["progress", "response"])
def test_no_pii_value_in_the_reports(cells, pii, report_type):
    names, contacts = pii
    assert len(cells[report_type]) > 1000
    leaked = [c for c in cells[report_type] if c.lstrip("'") in names or any(v in c for v in contacts)]
    assert leaked == []


def test_the_scan_finds_pii_where_it_belongs(cells, pii):
    names, contacts = pii
    found = set(cells["userinfo"])
    assert any(c.lstrip("'") in contacts for c in found)
    assert any(part in names for c in found for part in c.lstrip("'").split(" "))
