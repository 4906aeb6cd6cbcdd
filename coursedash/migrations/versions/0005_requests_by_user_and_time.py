"""report_requests by requester and time: each user's submits and cancels of the last hour are counted on every one

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_report_requests_requested_by_submitted_at", "report_requests", ["requested_by", "submitted_at"])


def downgrade() -> None:
    op.drop_index("ix_report_requests_requested_by_submitted_at", table_name="report_requests")
