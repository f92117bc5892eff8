"""embedding: widget events are counted per item, day and type instead of stored one row each

A public embed token can send events as fast as the rate limits allow; one row per event made the table
grow with the attacker's patience. Existing events are folded into the counts, then their table goes.

Revision ID: 0008_embed_event_counts
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_embed_event_counts"
down_revision = "0001"
branch_labels = None
depends_on = "0005_embeds"


def upgrade() -> None:
    op.create_table(
        "embed_event_counts",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("target_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("merchant_id", "target_id", "day", "type"),
    )
    day = "date(created_at)" if op.get_bind().dialect.name == "sqlite" else "CAST(created_at AS DATE)"
    op.execute(
        "INSERT INTO embed_event_counts (merchant_id, target_id, day, type, target_kind, count) "
        f"SELECT merchant_id, target_id, {day}, type, MIN(target_kind), COUNT(*) "
        f"FROM embed_events GROUP BY merchant_id, target_id, {day}, type")
    op.drop_table("embed_events")


def downgrade() -> None:
    """The events table comes back empty: counts cannot be unfolded into the events they summed."""
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
    op.drop_table("embed_event_counts")
