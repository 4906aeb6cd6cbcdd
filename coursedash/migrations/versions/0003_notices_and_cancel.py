"""report_requests: report-ready notices per channel, and the CANCELLED status

Revision ID: 0003
Revises: 0002

CANCELLED needs no schema change: the one-open-request index covers only SUBMITTED and
PROCESSING, so a cancelled request frees its slot at once.
"""

import sqlalchemy as sa
from alembic import op

import coursedash.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = [
    ("notify_email", sa.Text()),
    ("email_notice", sa.String(length=10)),
    ("email_notice_at", coursedash.db.UTC(timezone=True)),
    ("webhook_notice", sa.String(length=10)),
    ("webhook_notice_at", coursedash.db.UTC(timezone=True)),
    ("notice_claimed_by", sa.String(length=250)),
    ("notice_claimed_at", coursedash.db.UTC(timezone=True)),
]


def upgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        for name, _type in reversed(COLUMNS):
            batch_op.drop_column(name)
