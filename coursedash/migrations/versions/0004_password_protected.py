"""report_requests.password_protected: whether the zip has a password, kept after the password is erased

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_protected", sa.Boolean(), nullable=True))
    # What can still be told: a userinfo zip always has one, a stored password means one,
    # an open request without one will have none. A finished request whose password was
    # erased stays unknown (NULL).
    op.execute(
        "UPDATE report_requests SET password_protected = CASE "
        "WHEN report_type = 'userinfo' OR password_token IS NOT NULL THEN TRUE "
        "WHEN status IN ('SUBMITTED', 'PROCESSING') THEN FALSE END"
    )


def downgrade() -> None:
    with op.batch_alter_table("report_requests", schema=None) as batch_op:
        batch_op.drop_column("password_protected")
