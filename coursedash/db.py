"""The application database: synced courses and batches, report requests, downloads.

SQLite by default, PostgreSQL (or any SQLAlchemy URL) by COURSEDASH_DATABASE_URL. The
schema is owned by the Alembic migrations in coursedash/migrations; `migrate()` brings
a database up to date and is cheap when it already is.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from pathlib import Path
from typing import cast

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import CursorResult, Engine, Result
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

from coursedash.config import settings


def rowcount(result: Result) -> int:
    """The rows an UPDATE matched: the compare-and-set checks of the store and the notices.

    Session.execute types every answer as a Result; an UPDATE's is a CursorResult, which counts them.
    """
    return cast(CursorResult, result).rowcount


def utcnow() -> dt.datetime:
    """Timezone-aware UTC now; bookkeeping times are real event times, not logical dates."""
    return dt.datetime.now(dt.UTC)


class UTC(TypeDecorator):
    """Stores UTC and always returns aware datetimes (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        # PostgreSQL answers in the session's TimeZone (e.g. +05:30): give UTC whatever it is.
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    pass


class Course(Base):
    __tablename__ = "courses"

    course_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str | None] = mapped_column(String(200), index=True)
    status: Mapped[str | None] = mapped_column(String(40))
    user_consent_required: Mapped[bool] = mapped_column(Boolean, default=False)
    synced_at: Mapped[dt.datetime] = mapped_column(UTC)


class Batch(Base):
    __tablename__ = "batches"

    batch_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str | None] = mapped_column(Text)
    start_date: Mapped[dt.date | None] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    created_by: Mapped[str | None] = mapped_column(String(200))
    mentors: Mapped[list] = mapped_column(JSON, default=list)
    enrolment_count: Mapped[int | None] = mapped_column(Integer)
    completed_count: Mapped[int | None] = mapped_column(Integer)
    # Learners by the progress report's Progress: 0, 1-49, 50-99, 100 (docs/reports.md, "The dashboard's figures").
    progress_not_started: Mapped[int | None] = mapped_column(Integer)
    progress_started: Mapped[int | None] = mapped_column(Integer)
    progress_past_half: Mapped[int | None] = mapped_column(Integer)
    progress_completed: Mapped[int | None] = mapped_column(Integer)
    certificates_issued: Mapped[int | None] = mapped_column(Integer)
    # [{"week_start": "YYYY-MM-DD", "count": n}], Monday-based UTC weeks; counts only, never who.
    weekly_enrolments: Mapped[list | None] = mapped_column(JSON)
    average_total_score: Mapped[float | None] = mapped_column(Float)
    # A digest of every lake row the figures were computed from (jobs/dashboard_figures.py): while it
    # matches the lake's, a night keeps the figures instead of computing them again (docs/reports.md).
    figures_fingerprint: Mapped[str | None] = mapped_column(String(64))
    figures_as_of: Mapped[dt.datetime | None] = mapped_column(UTC)
    synced_at: Mapped[dt.datetime] = mapped_column(UTC)


class ReportRequest(Base):
    __tablename__ = "report_requests"

    request_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    course_id: Mapped[str] = mapped_column(String(200))
    batch_id: Mapped[str] = mapped_column(String(200), index=True)
    report_type: Mapped[str] = mapped_column(String(20))
    requested_by: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), index=True)
    # Fernet token of the zip password; NULL when none was given or once final.
    password_token: Mapped[str | None] = mapped_column(Text)
    # Whether the zip has a password: told to whoever downloads it, after the token is erased.
    password_protected: Mapped[bool | None] = mapped_column(Boolean)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTC)
    claimed_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    claimed_by_run: Mapped[str | None] = mapped_column(String(250))
    completed_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    error_transient: Mapped[bool] = mapped_column(Boolean, default=False)
    row_count: Mapped[int | None] = mapped_column(Integer)
    file_size: Mapped[int | None] = mapped_column(Integer)
    object_key: Mapped[str | None] = mapped_column(Text)
    report_date: Mapped[dt.date | None] = mapped_column(Date)
    # [{"reason": text, "rows": n}]: rows of the batch the report left out or passed
    # through (docs/lake.md, "Dirty rows"); counts and reasons only, never a learner's identity.
    data_notes: Mapped[list | None] = mapped_column(JSON)
    # Report-ready notices, per channel: NULL (none), pending, sent or failed (given up).
    # The address is personal data: kept only until its notice is settled or cancelled.
    notify_email: Mapped[str | None] = mapped_column(Text)
    email_notice: Mapped[str | None] = mapped_column(String(10))
    email_notice_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    webhook_notice: Mapped[str | None] = mapped_column(String(10))
    webhook_notice_at: Mapped[dt.datetime | None] = mapped_column(UTC)
    # Which notify run is sending this request's notices: two runs never send the same.
    notice_claimed_by: Mapped[str | None] = mapped_column(String(250))
    notice_claimed_at: Mapped[dt.datetime | None] = mapped_column(UTC)

    __table_args__ = (
        # One open request per requester x batch x type, enforced by the database so
        # that two simultaneous submits cannot both win.
        Index(
            "uq_report_requests_open",
            "requested_by",
            "batch_id",
            "report_type",
            unique=True,
            sqlite_where=text("status IN ('SUBMITTED', 'PROCESSING')"),
            postgresql_where=text("status IN ('SUBMITTED', 'PROCESSING')"),
        ),
        # A user's submits and cancels of the last hour, counted on each (coursedash.store).
        Index("ix_report_requests_requested_by_submitted_at", "requested_by", "submitted_at"),
    )


class Download(Base):
    __tablename__ = "downloads"

    download_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), index=True)
    user_id: Mapped[str] = mapped_column(String(200))
    client_address: Mapped[str | None] = mapped_column(String(100))
    downloaded_at: Mapped[dt.datetime] = mapped_column(UTC)


def _pool_options() -> dict:
    # One connection per API worker thread (a request opens and closes its session in
    # its thread), so no thread ever waits for a connection another one holds; the
    # overflow is for work outside the threads (migrations at start-up).
    return {"pool_size": settings().api_threads, "max_overflow": 10, "pool_timeout": 30}


@cache
def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30}, **_pool_options())

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the nightly run
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **_pool_options())


def engine() -> Engine:
    return _engine(settings().database_url)


def session() -> Session:
    return sessionmaker(engine(), expire_on_commit=False)()


def migrate(url: str | None = None) -> None:
    """Apply the Alembic migrations up to head."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    cfg.attributes["engine"] = _engine(url or settings().database_url)
    command.upgrade(cfg, "head")
