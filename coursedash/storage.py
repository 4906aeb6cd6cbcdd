"""Where published reports live: a local folder, or s3://bucket/prefix on any S3-compatible server."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from coursedash.config import settings

PARTIAL_PREFIX = ".upload-"  # a file being copied into the reports folder, renamed into place once whole


class Missing(Exception):
    """The store has no object under that key (deleted by hand, lost, or a lifecycle rule)."""


class LocalStore:
    def __init__(self, root: str):
        self.root = Path(root)

    def put(self, source: Path, key: str) -> None:
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        # Copy beside the target, then rename: readers never see half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=PARTIAL_PREFIX)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, target)
        except BaseException:  # a full disk, a stopped task: no partial file stays to fill the folder
            Path(tmp).unlink(missing_ok=True)
            raise

    def discard_partial_uploads(self) -> int:
        """Delete the partial files of uploads that were killed mid-way; return how many.

        Only one nightly run publishes at a time (max_active_runs=1), so any partial file
        is a dead upload's.
        """
        found = list(self.root.rglob(f"{PARTIAL_PREFIX}*")) if self.root.is_dir() else []
        for path in found:
            path.unlink(missing_ok=True)
        return len(found)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def open(self, key: str):
        try:
            return open(self.root / key, "rb")
        except FileNotFoundError:
            raise Missing(key) from None

    def delete(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def signed_url(self, key: str, filename: str, seconds: int = 300) -> str | None:
        return None  # a local folder is streamed by the API itself


class S3Store:
    SINGLE_PUT_LIMIT = 5 * 2**30

    def __init__(self, uri: str, endpoint_url: str | None):
        parsed = urlparse(uri)
        self.bucket, self.prefix = parsed.netloc, parsed.path.strip("/")
        import boto3

        self.client = boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, source: Path, key: str) -> None:
        from boto3.s3.transfer import TransferConfig

        # One PUT (S3 takes up to 5 GiB so): the object appears whole or not at all, and its
        # SHA-256, sent with it and stored beside it, is the whole file's (a multipart
        # upload would store a checksum of the parts' checksums, which no reader can check).
        self.client.upload_file(
            str(source),
            self.bucket,
            self._key(key),
            ExtraArgs={"ContentType": "application/zip", "ChecksumAlgorithm": "SHA256"},
            Config=TransferConfig(multipart_threshold=self.SINGLE_PUT_LIMIT),
        )

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def open(self, key: str):
        from botocore.exceptions import ClientError

        try:
            # With ChecksumMode, botocore checks the bytes read against the stored SHA-256 and
            # fails the last read on a mismatch.
            response = self.client.get_object(Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED")
        except ClientError as e:
            if e.response["Error"]["Code"] in ("404", "NoSuchKey", "NotFound"):
                raise Missing(key) from None
            raise
        if not response.get("ChecksumSHA256"):
            import logging

            logging.getLogger(__name__).warning(
                "report %s has no SHA-256 checksum in the store (uploaded before checksums); not checked", key
            )
        return _Checked(response["Body"], key)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def signed_url(self, key: str, filename: str, seconds: int = 300) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
            },
            ExpiresIn=seconds,
        )


class ChecksumMismatch(OSError):
    """An object read back from S3 is not the one stored: its bytes do not match its SHA-256 checksum."""


class _Checked:
    """An S3 object's body, read as a file; a checksum failure names the report instead of botocore's bare error."""

    def __init__(self, body, key: str):
        self.body, self.key = body, key

    def read(self, size: int = -1) -> bytes:
        from botocore.exceptions import FlexibleChecksumError

        try:
            return self.body.read(None if size is None or size < 0 else size)
        except FlexibleChecksumError as e:
            raise ChecksumMismatch(
                f"report {self.key} is corrupt: its bytes do not match the SHA-256 checksum stored with it ({e})"
            ) from None

    def close(self) -> None:
        self.body.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def report_store():
    s = settings()
    if s.reports_uri.startswith("s3://"):
        return S3Store(s.reports_uri, s.s3_endpoint_url)
    return LocalStore(s.reports_uri)
