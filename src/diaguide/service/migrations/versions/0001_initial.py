"""initial store

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_records",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=False),
        sa.Column("hook", sa.String(length=64), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=True),
        sa.Column("record_hash", sa.String(length=64), nullable=True),
        sa.Column("recommendation_id", sa.String(length=36), nullable=True),
        sa.Column("principal", sa.String(length=200), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("adapter_version", sa.String(length=200), nullable=True),
        sa.Column("rule_version", sa.String(length=64), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.Column("engine_ms", sa.Float(), nullable=True),
        sa.Column("cards_info", sa.Integer(), nullable=False),
        sa.Column("cards_warning", sa.Integer(), nullable=False),
        sa.Column("cards_critical", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_audit_records_created_at"), "audit_records", ["created_at"], unique=False)
    op.create_index(op.f("ix_audit_records_route"), "audit_records", ["route"], unique=False)

    op.create_table(
        "cards",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("recommendation_id", sa.String(length=36), nullable=True),
        sa.Column("indicator", sa.String(length=10), nullable=False),
        sa.Column("rule_id", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("uuid"),
    )
    op.create_index(op.f("ix_cards_recommendation_id"), "cards", ["recommendation_id"], unique=False)

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=True),
        sa.Column("card_uuid", sa.String(length=64), nullable=True),
        sa.Column("recommendation_id", sa.String(length=36), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("override_reason", sa.String(length=200), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("accepted_suggestions", sa.JSON(), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_feedback_card_uuid"), "feedback", ["card_uuid"], unique=False)
    op.create_index(op.f("ix_feedback_recommendation_id"), "feedback", ["recommendation_id"], unique=False)

    op.create_table(
        "narratives",
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("record_hash"),
    )
    op.create_table(
        "recommendations",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("visit", sa.JSON(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("complexity", sa.JSON(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_recommendations_record_hash"), "recommendations", ["record_hash"], unique=False)

    op.create_table(
        "used_tokens",
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti"),
    )
    op.create_index(op.f("ix_used_tokens_expires_at"), "used_tokens", ["expires_at"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("username"),
    )


def downgrade() -> None:
    op.drop_table("users")
    op.drop_index(op.f("ix_used_tokens_expires_at"), table_name="used_tokens")

    op.drop_table("used_tokens")
    op.drop_index(op.f("ix_recommendations_record_hash"), table_name="recommendations")

    op.drop_table("recommendations")
    op.drop_table("narratives")
    op.drop_index(op.f("ix_feedback_recommendation_id"), table_name="feedback")
    op.drop_index(op.f("ix_feedback_card_uuid"), table_name="feedback")

    op.drop_table("feedback")
    op.drop_index(op.f("ix_cards_recommendation_id"), table_name="cards")

    op.drop_table("cards")
    op.drop_index(op.f("ix_audit_records_route"), table_name="audit_records")
    op.drop_index(op.f("ix_audit_records_created_at"), table_name="audit_records")

    op.drop_table("audit_records")
