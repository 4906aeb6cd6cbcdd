"""A SUCCESS report whose file is gone from the store: 410, and the request becomes EXPIRED."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from coursedash import db, nightly
from coursedash.db import Download, ReportRequest
from coursedash.reports import FILE_GONE
from coursedash.storage import report_store
from tests.conftest import ROOT
from tests.handlake import CREATOR, MENTOR
from tests.test_api import PASSWORD, api_client, as_, ask, error_of, publish


@pytest.fixture
def api(app_env, monkeypatch):
    return api_client(monkeypatch)


def _published(api) -> tuple[str, str]:
    rid = ask(api, CREATOR, password=PASSWORD).json()["request_id"]
    publish([rid])
    with db.session() as s:
        key = s.get(ReportRequest, rid).object_key
    assert key == nightly.object_key(s.get(ReportRequest, rid)) and report_store().exists(key)
    return rid, key


def _status(rid: str) -> str:
    with db.session() as s:
        return s.get(ReportRequest, rid).status


def _downloads() -> list:
    with db.session() as s:
        return list(s.scalars(select(Download)))


def test_a_report_whose_file_left_the_folder_is_410_and_expired(api):
    rid, key = _published(api)
    assert api.get(f"/api/v1/reports/{rid}/download", headers=as_(MENTOR)).status_code == 200
    report_store().delete(key)
    assert error_of(api.get(f"/api/v1/reports/{rid}/download", headers=as_(CREATOR)), 410, "expired") == FILE_GONE
    assert _status(rid) == "EXPIRED"
    assert api.get(f"/api/v1/reports/{rid}", headers=as_(CREATOR)).json()["status"] == "EXPIRED"
    assert "expired" in error_of(api.get(f"/api/v1/reports/{rid}/download", headers=as_(CREATOR)), 410, "expired")
    assert len(_downloads()) == 1  # only the download that got the file
    assert ask(api, CREATOR, password=PASSWORD).status_code == 201  # and it can be requested again


@pytest.mark.parametrize("app_env", ["postgresql"], indirect=True)
def test_a_report_whose_object_left_s3_is_410_and_expired(api, s3_reports):
    client, bucket, prefix = s3_reports
    rid, key = _published(api)
    assert api.get(f"/api/v1/reports/{rid}/download", headers=as_(CREATOR), follow_redirects=False).status_code == 307
    client.delete_object(Bucket=bucket, Key=f"{prefix}/{key}")
    response = api.get(f"/api/v1/reports/{rid}/download", headers=as_(CREATOR), follow_redirects=False)
    assert error_of(response, 410, "expired") == FILE_GONE
    assert _status(rid) == "EXPIRED" and len(_downloads()) == 1


@pytest.mark.parametrize("app_env", ["sqlite"], indirect=True)
def test_the_cli_says_the_file_is_gone_and_expires_the_request(api, tmp_path):
    rid, key = _published(api)
    report_store().delete(key)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "coursedash.cli",
            "request",
            "download",
            rid,
            "--user",
            CREATOR,
            "--out",
            str(tmp_path / "r.zip"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 2 and FILE_GONE in done.stderr and "Traceback" not in done.stderr
    assert _status(rid) == "EXPIRED" and not (tmp_path / "r.zip").exists()
