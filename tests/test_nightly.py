"""Publishing: each request is packaged on its own, several at a time; one that breaks fails alone."""

import datetime as dt

import pytest

from coursedash import db, nightly, store
from coursedash.db import ReportRequest
from coursedash.manifest import write_summary
from coursedash.packaging import read_zip
from coursedash.storage import report_store
from tests import handlake
from tests.test_staging_cleanup import stage

DAY = dt.date(2026, 11, 28)
HEADER = ["User UUID", "Question Response"]


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_a_request_whose_packaging_breaks_fails_alone(app_env, caplog):
    handlake.store_catalogue()
    with db.session() as s:
        requests = [
            store.submit(s, user, "c1", "b1", "response", password)
            for user, password in [
                (handlake.CREATOR, "Passw0rd-one"),
                (handlake.MENTOR, None),
                (handlake.BATCH_CREATOR, "Passw0rd-two"),
            ]
        ]
    run_id = "scheduled__2026-11-28"
    nightly.claim_requests(run_id, DAY)
    rows = {
        r.request_id: [[f"L{i}", f'{{"chosen": "{i}, or \\"{i + 1}\\""}}'] for i in range(n)]
        for r, n in zip(requests, (3, 2500, 1), strict=True)
    }
    for request in requests:
        stage(run_id, request, rows[request.request_id])
    broken = requests[1].request_id  # its summary promises more rows than were staged
    write_summary(
        nightly.output_dir(run_id, "response"),
        {
            "requests": {
                r.request_id: {
                    "header": HEADER,
                    "rows": len(rows[r.request_id]) + (r.request_id == broken),
                    "left_out": {},
                }
                for r in requests
            }
        },
    )

    assert nightly.publish_reports(run_id, DAY)["SUCCESS"] == 2
    with db.session() as s:
        found = {r.request_id: s.get(ReportRequest, r.request_id) for r in requests}
    # Plain words for the requester; the detail in the task log, with the request id.
    assert found[broken].status == "FAILED" and found[broken].error == (
        "The report could not be packaged for publishing. It will be retried in the next nightly run (attempt 2 of 3)."
    )
    assert f"request {broken} could not be published" in caplog.text and "staged 2501 rows but read 2500" in caplog.text
    for request, password in ((requests[0], "Passw0rd-one"), (requests[2], "Passw0rd-two")):
        done = found[request.request_id]
        assert done.status == "SUCCESS" and done.row_count == len(rows[request.request_id])
        with report_store().open(done.object_key) as f:
            (app_env / "r.zip").write_bytes(f.read())
        text = read_zip(app_env / "r.zip", password)["b1_response_20261128.csv"].decode()
        expected = "".join(f'{a},"{b.replace(chr(34), chr(34) * 2)}"\r\n' for a, b in rows[request.request_id])
        assert text == "\ufeffUser UUID,Question Response\r\n" + expected
