"""logo prize campaigns: campaigns, viewer sessions, claims, collected fragments, entries

Revision ID: 0006_campaigns
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_campaigns"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("video_id", sa.String(length=40), nullable=False),
        sa.Column("logo_asset_id", sa.String(length=40), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=True),
        sa.Column("rendered", sa.Boolean(), nullable=False),
        sa.Column("fragment_count", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("rule", sa.JSON(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("ends_at", sa.DateTime(), nullable=True),
        sa.Column("prizes", sa.JSON(), nullable=False),
        sa.Column("max_entries", sa.Integer(), nullable=True),
        sa.Column("rules_text", sa.Text(), nullable=False),
        sa.Column("odds_text", sa.Text(), nullable=False),
        sa.Column("alternative_entry", sa.Text(), nullable=False),
        sa.Column("plan", sa.JSON(), nullable=False),
        sa.Column("outputs", sa.JSON(), nullable=False),
        sa.Column("secret_seed", sa.String(length=64), nullable=True),
        sa.Column("seed_commitment", sa.String(length=64), nullable=True),
        sa.Column("merkle_root", sa.String(length=64), nullable=True),
        sa.Column("entry_count", sa.Integer(), nullable=True),
        sa.Column("winners", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("drawn_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaigns") as batch_op:
        for column in ("merchant_id", "video_id", "logo_asset_id", "state", "job_id", "created_at"):
            batch_op.create_index(f"ix_campaigns_{column}", [column])
    op.create_table(
        "campaign_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("shopper_key", sa.String(length=64), nullable=False),
        sa.Column("started", sa.Float(), nullable=False),
        sa.Column("media_start", sa.Float(), nullable=False),
        sa.Column("last_t", sa.Float(), nullable=False),
        sa.Column("last_claim", sa.Float(), nullable=True),
        sa.Column("revealed", sa.JSON(), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("campaign_sessions") as batch_op:
        batch_op.create_index("ix_campaign_sessions_campaign_id", ["campaign_id"])
        batch_op.create_index("ix_campaign_sessions_shopper_key", ["shopper_key"])
    op.create_table(
        "campaign_claims",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("session_id", sa.String(length=40), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("fragment", sa.Integer(), nullable=True),
        sa.Column("t", sa.Float(), nullable=False),
        sa.Column("x", sa.Float(), nullable=False),
        sa.Column("y", sa.Float(), nullable=False),
        sa.Column("accepted", sa.Boolean(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "nonce", name="uq_campaign_claims_nonce"),
    )
    with op.batch_alter_table("campaign_claims") as batch_op:
        batch_op.create_index("ix_campaign_claims_campaign_id", ["campaign_id"])
        batch_op.create_index("ix_campaign_claims_session_id", ["session_id"])
    op.create_table(
        "campaign_collects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("shopper_key", sa.String(length=64), nullable=False),
        sa.Column("fragment", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "shopper_key", "fragment", name="uq_campaign_collects"),
    )
    with op.batch_alter_table("campaign_collects") as batch_op:
        batch_op.create_index("ix_campaign_collects_campaign_id", ["campaign_id"])
    op.create_table(
        "campaign_entries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("campaign_id", sa.String(length=40), nullable=False),
        sa.Column("shopper_key", sa.String(length=64), nullable=False),
        sa.Column("route", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("campaign_id", "shopper_key", name="uq_campaign_entries_shopper"),
    )
    with op.batch_alter_table("campaign_entries") as batch_op:
        batch_op.create_index("ix_campaign_entries_campaign_id", ["campaign_id"])


def downgrade() -> None:
    for table in ("campaign_entries", "campaign_collects", "campaign_claims", "campaign_sessions", "campaigns"):
        op.drop_table(table)
