"""Configuration, from environment variables only (the README's "Configuration" lists them).

The defaults give the embedded one-machine setup: local Spark, SQLite and local folders
under ./var. Each value is read when asked for, so tests and tasks can change the
environment between calls.
"""

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def var_dir() -> Path:
    return Path(os.environ.get("COURSEDASH_VAR_DIR", "./var")).resolve()


def log_path() -> Path:
    """The full log of commands, Spark jobs and the demo's Airflow run."""
    return var_dir() / "log" / "coursedash.log"


def _local_secret(name: str) -> str:
    """A random secret kept in var/ so that the embedded setup needs no configuration."""
    path = var_dir() / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole beside it, then linked into place: two processes starting at
        # once agree on one secret, and nobody reads half a file.
        tmp = path.with_name(f".{name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()


@dataclass(frozen=True)
class Settings:
    database_url: str
    lake_uri: str
    reports_uri: str
    work_uri: str
    s3_endpoint_url: str | None
    spark_master: str
    stale_after_minutes: int
    max_attempts: int
    retention_days: int
    # The API's worker threads; each holds at most one database connection at a time.
    api_threads: int
    max_body_bytes: int
    max_header_bytes: int
    request_timeout_seconds: float
    # How long a client has to send its request head (and then its body): a slow one is cut off.
    client_timeout_seconds: float
    # Submits and cancels per user per hour, counted in the database (every server process shares them).
    submits_per_hour: int
    cancels_per_hour: int
    # Report-ready notices: none are sent unless a channel is configured.
    smtp_url: str | None
    mail_from: str
    public_url: str
    webhook_url: str | None
    # How long a download link in a Sunbird exhaust API answer works (docs/sunbird.md).
    sunbird_link_seconds: int
    # Deadlines, not timeouts: one e-mail or one webhook delivery (all its tries), and a
    # notify run as a whole, however slowly a server answers.
    notice_timeout_seconds: float
    notify_timeout_seconds: float

    @property
    def webhook_secret(self) -> str | None:
        return os.environ.get("COURSEDASH_WEBHOOK_SECRET") or None

    @property
    def secret_key(self) -> str:
        return os.environ.get("COURSEDASH_SECRET_KEY") or _local_secret("secret_key")

    @property
    def jwt_secret(self) -> str:
        return os.environ.get("COURSEDASH_JWT_SECRET") or _local_secret("jwt_secret")


def settings() -> Settings:
    env = os.environ.get
    var = var_dir()
    return Settings(
        database_url=env("COURSEDASH_DATABASE_URL") or f"sqlite:///{var / 'coursedash.db'}",
        lake_uri=env("COURSEDASH_LAKE_URI") or str(var / "lake"),
        reports_uri=env("COURSEDASH_REPORTS_URI") or str(var / "reports"),
        # Staged report rows between the Spark jobs and packaging: on a cluster, a
        # folder every Spark worker and the Airflow worker share.
        work_uri=env("COURSEDASH_WORK_URI") or str(var / "work"),
        s3_endpoint_url=env("COURSEDASH_S3_ENDPOINT_URL") or None,
        spark_master=env("COURSEDASH_SPARK_MASTER") or "local[*]",
        stale_after_minutes=int(env("COURSEDASH_STALE_AFTER_MINUTES") or 360),
        max_attempts=int(env("COURSEDASH_MAX_ATTEMPTS") or 3),
        retention_days=int(env("COURSEDASH_RETENTION_DAYS") or 30),
        api_threads=int(env("COURSEDASH_API_THREADS") or 40),
        max_body_bytes=int(env("COURSEDASH_MAX_BODY_BYTES") or 1024 * 1024),
        max_header_bytes=int(env("COURSEDASH_MAX_HEADER_BYTES") or 32 * 1024),
        request_timeout_seconds=float(env("COURSEDASH_REQUEST_TIMEOUT_SECONDS") or 30),
        client_timeout_seconds=float(env("COURSEDASH_CLIENT_TIMEOUT_SECONDS") or 20),
        submits_per_hour=int(env("COURSEDASH_SUBMITS_PER_HOUR") or 120),
        cancels_per_hour=int(env("COURSEDASH_CANCELS_PER_HOUR") or 60),
        smtp_url=env("COURSEDASH_SMTP_URL") or None,
        mail_from=env("COURSEDASH_MAIL_FROM") or "Course Dashboard <coursedash@localhost>",
        public_url=(env("COURSEDASH_PUBLIC_URL") or "http://127.0.0.1:8000").rstrip("/"),
        webhook_url=env("COURSEDASH_WEBHOOK_URL") or None,
        sunbird_link_seconds=int(env("COURSEDASH_SUNBIRD_LINK_SECONDS") or 1800),
        notice_timeout_seconds=float(env("COURSEDASH_NOTICE_TIMEOUT_SECONDS") or 60),
        notify_timeout_seconds=float(env("COURSEDASH_NOTIFY_TIMEOUT_SECONDS") or 600),
    )
