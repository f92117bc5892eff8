"""console: merchant users and their browser sessions; hotspots placed on panoramas; indexes the pages use

Revision ID: 0007_console_users
Revises: 0003_panoramas_spins (the hotspots column goes on its table), 0005_embeds (an index on its events);
both branch from 0001, so this revision joins them (``depends_on`` across sibling branches trips Alembic)
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_console_users"
down_revision = ("0003_panoramas_spins", "0005_embeds")
branch_labels = ("console",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("invite_hash", sa.String(length=64), nullable=True),
        sa.Column("invite_expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("invite_hash"),
    )
    with op.batch_alter_table("console_users") as batch_op:
        batch_op.create_index("ix_console_users_merchant_id", ["merchant_id"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("notices", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["console_users.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("console_sessions") as batch_op:
        batch_op.create_index("ix_console_sessions_user_id", ["user_id"])
        batch_op.create_index("ix_console_sessions_merchant_id", ["merchant_id"])
        batch_op.create_index("ix_console_sessions_expires_at", ["expires_at"])
    with op.batch_alter_table("panoramas") as batch_op:
        batch_op.add_column(sa.Column("hotspots", sa.JSON(), nullable=False, server_default="[]"))
    # What the console's pages filter and group by (bench/console_pages.py): a library by type, newest first;
    # jobs by state and day (widget events are counts per item and day: migration 0008).
    op.create_index("ix_assets_merchant_created", "assets", ["merchant_id", "created_at", "id"])
    op.create_index("ix_assets_merchant_kind_created", "assets", ["merchant_id", "kind", "created_at", "id"])
    op.create_index("ix_jobs_merchant_state_finished", "jobs", ["merchant_id", "state", "finished_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_merchant_state_finished", "jobs")
    op.drop_index("ix_assets_merchant_kind_created", "assets")
    op.drop_index("ix_assets_merchant_created", "assets")
    with op.batch_alter_table("panoramas") as batch_op:
        batch_op.drop_column("hotspots")
    op.drop_table("console_sessions")
    op.drop_table("console_users")
