"""batches: the night's figures of each batch (progress bands, certificates, weekly enrolments, average Total Score)

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COUNTS = ("progress_not_started", "progress_started", "progress_past_half", "progress_completed", "certificates_issued")


def upgrade() -> None:
    # NULL until the next sync or night computes them: the API shows them as not computed yet.
    with op.batch_alter_table("batches", schema=None) as batch_op:
        for name in COUNTS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("weekly_enrolments", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("average_total_score", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        for name in ("average_total_score", "weekly_enrolments", *reversed(COUNTS)):
            batch_op.drop_column(name)
