"""requests, courses, batches, downloads

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

import coursedash.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("batch_id", sa.String(length=200), nullable=False),
        sa.Column("course_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("mentors", sa.JSON(), nullable=False),
        sa.Column("enrolment_count", sa.Integer(), nullable=True),
        sa.Column("completed_count", sa.Integer(), nullable=True),
        sa.Column("figures_as_of", coursedash.db.UTC(timezone=True), nullable=True),
        sa.Column("synced_at", coursedash.db.UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("batch_id"),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_batches_course_id"), ["course_id"], unique=False)

    op.create_table(
        "courses",
        sa.Column("course_id", sa.String(length=200), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=200), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("user_consent_required", sa.Boolean(), nullable=False),
        sa.Column("synced_at", coursedash.db.UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("course_id"),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_created_by"), ["created_by"], unique=False)

    op.create_table(
        "downloads",
        sa.Column("download_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=200), nullable=False),
        sa.Column("client_address", sa.String(length=100), nullable=True),
        sa.Column("downloaded_at", coursedash.db.UTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("download_id"),
    )
    with op.batch_alter_table("downloads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_downloads_request_id"), ["request_id"], unique=False)

    op.create_table(
        "report_requests",
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("course_id", sa.String(length=200), nullable=False),
        sa.Column("batch_id", sa.String(length=200), nullable=False),
        sa.Column("report_type", sa.String(length=20), nullable=False),
        sa.Column("requested_by", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("password_token", sa.Text(), nullable=True),
        sa.Column("submitted_at", coursedash.db.UTC(timezone=True), nullable=False),
        sa.Column("claimed_at", coursedash.db.UTC(timezone=True), nullable=True),
        sa.Column("claimed_by_run", sa.String(length=250), nullable=True),
        sa.Column("completed_at", coursedash.db.UTC(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("error_transient", sa.Boolean(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=True),
        sa.Column("file_size", sa.Integer(), nullable=True),
        sa.Column("object_key", sa.Text(), nullable=True),
        sa.Column("report_date", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("request_id"),
    )
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_report_requests_batch_id"), ["batch_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_report_requests_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_report_requests_open",
            ["requested_by", "batch_id", "report_type"],
            unique=True,
            sqlite_where=sa.text("status IN ('SUBMITTED', 'PROCESSING')"),
            postgresql_where=sa.text("status IN ('SUBMITTED', 'PROCESSING')"),
        )


def downgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_report_requests_open",
            sqlite_where=sa.text("status IN ('SUBMITTED', 'PROCESSING')"),
            postgresql_where=sa.text("status IN ('SUBMITTED', 'PROCESSING')"),
        )
        batch_op.drop_index(batch_op.f("ix_report_requests_status"))
        batch_op.drop_index(batch_op.f("ix_report_requests_batch_id"))

    op.drop_table("report_requests")
    with op.batch_alter_table("downloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_downloads_request_id"))

    op.drop_table("downloads")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_created_by"))

    op.drop_table("courses")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_batches_course_id"))

    op.drop_table("batches")
