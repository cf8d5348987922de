"""recommendations.plan_source: whose plan was checked (the guideline engine's or a submitted one)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.add_column(sa.Column("plan_source", sa.String(20), nullable=False, server_default="guideline"))


def downgrade() -> None:
    with op.batch_alter_table("recommendations") as batch:
        batch.drop_column("plan_source")
