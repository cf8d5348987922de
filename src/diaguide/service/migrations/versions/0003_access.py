"""access model and sessions (issue 18): recommendation owners, user token versions, login failures, store mode

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("created_by", sa.String(200), nullable=True))
        batch.add_column(sa.Column("ehr_user", sa.String(200), nullable=True))
        batch.create_index("ix_recommendations_created_by", ["created_by"])
        batch.create_index("ix_recommendations_ehr_user", ["ehr_user"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("token_version", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("ehr_user", sa.String(200), nullable=True))
    with op.batch_alter_table("audit_records") as batch:
        batch.add_column(sa.Column("reason", sa.String(200), nullable=True))
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "store_meta",
        sa.Column("key", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("store_meta")
    op.drop_table("login_failures")
    with op.batch_alter_table("audit_records") as batch:
        batch.drop_column("reason")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("ehr_user")
        batch.drop_column("token_version")
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_index("ix_recommendations_ehr_user")
        batch.drop_index("ix_recommendations_created_by")
        batch.drop_column("ehr_user")
        batch.drop_column("created_by")
