"""No learner's name, email or phone reaches a progress or response report of the generated lake."""

import pyarrow.parquet as pq
import pytest

from coursedash.lakegen import generate_lake
from coursedash.manifest import Manifest
from jobs import night



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


def cells_of(spark, lake, tmp_path, report_type) -> list[str]:
    root, summary = lake
    requests = [
        {"request_id": f"r{i}", "course_id": b["course_id"], "batch_id": b["batch_id"]}
        for i, b in enumerate(summary["batches"])
    ]
    out = tmp_path / report_type
    night.build(spark, [(Manifest(report_type, "2026-11-28", str(root), requests), str(out))])
    rows = [row for f in (out / "rows").rglob("*.parquet") for row in pq.read_table(f).column("cells").to_pylist()]
    return [cell for row in rows for cell in row if cell]


@pytest.mark.parametrize("report_type", ["progress", "response"])
def test_no_pii_value_in_the_reports(spark, lake, pii, tmp_path, report_type):
    names, contacts = pii
    cells = cells_of(spark, lake, tmp_path, report_type)
    assert len(cells) > 1000
    leaked = [c for c in cells if c.lstrip("'") in names or any(v in c for v in contacts)]
    assert leaked == []


def test_the_scan_finds_pii_where_it_belongs(spark, lake, pii, tmp_path):
    names, contacts = pii
    cells = set(cells_of(spark, lake, tmp_path, "userinfo"))
    assert any(c.lstrip("'") in contacts for c in cells)
    assert any(part in names for c in cells for part in c.lstrip("'").split(" "))
