"""embedding: per-merchant allowed origins and widget interaction events

Revision ID: 0005_embeds
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_embeds"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "embed_settings",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("allowed_origins", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("merchant_id"),
    )
    op.create_table(
        "embed_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("embed_events") as batch_op:
        batch_op.create_index("ix_embed_events_merchant_id", ["merchant_id"])
        batch_op.create_index("ix_embed_events_target_id", ["target_id"])
        batch_op.create_index("ix_embed_events_created_at", ["created_at"])


def downgrade() -> None:
    op.drop_table("embed_events")
    op.drop_table("embed_settings")
