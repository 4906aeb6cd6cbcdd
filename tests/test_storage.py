"""Both report stores against the real thing: a folder, and an S3-compatible server."""

import urllib.request

import pytest

from coursedash.storage import LocalStore, report_store


@pytest.fixture
def zip_file(tmp_path):
    path = tmp_path / "r.zip"
    path.write_bytes(b"PK\x05\x06" + bytes(18))
    return path


def test_local_store_round_trip(tmp_path, zip_file):
    store = LocalStore(str(tmp_path / "reports"))
    store.put(zip_file, "c1/b1/progress/r1.zip")
    assert store.exists("c1/b1/progress/r1.zip")
    with store.open("c1/b1/progress/r1.zip") as f:
        assert f.read() == zip_file.read_bytes()
    assert [p.name for p in (tmp_path / "reports" / "c1/b1/progress").iterdir()] == ["r1.zip"]  # no temp left
    assert store.signed_url("c1/b1/progress/r1.zip", "x.zip") is None
    store.delete("c1/b1/progress/r1.zip")
    assert not store.exists("c1/b1/progress/r1.zip")


def test_s3_store_round_trip_and_signed_url(s3_reports, zip_file):
    client, bucket, prefix = s3_reports
    store = report_store()
    store.put(zip_file, "c1/b1/progress/r1.zip")
    assert store.exists("c1/b1/progress/r1.zip") and not store.exists("nope.zip")
    head = client.head_object(Bucket=bucket, Key=f"{prefix}/c1/b1/progress/r1.zip")
    assert head["ContentType"] == "application/zip"
    assert store.open("c1/b1/progress/r1.zip").read() == zip_file.read_bytes()
    url = store.signed_url("c1/b1/progress/r1.zip", "b1_progress_20261128.zip", seconds=60)
    with urllib.request.urlopen(url) as response:
        assert response.read() == zip_file.read_bytes()
        assert "b1_progress_20261128.zip" in response.headers["Content-Disposition"]
    store.delete("c1/b1/progress/r1.zip")
    assert not store.exists("c1/b1/progress/r1.zip")
