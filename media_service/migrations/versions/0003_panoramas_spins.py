"""panoramas and spins

Revision ID: 0003_panoramas_spins
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_panoramas_spins"
down_revision = "0001"
branch_labels = None
depends_on = None


def _common_columns() -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("asset_ids", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
    ]


def _constraints() -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"]),
        sa.PrimaryKeyConstraint("id"),
    ]


def upgrade() -> None:
    op.create_table("panoramas", *_common_columns(), *_constraints())
    op.create_table("spins", *_common_columns(),
                    sa.Column("source", sa.String(length=16), nullable=False),
                    sa.Column("video_asset_id", sa.String(length=40), nullable=True),
                    sa.Column("frames", sa.Integer(), nullable=True),
                    *_constraints())
    for table in ("panoramas", "spins"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_merchant_id"), ["merchant_id"], unique=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_job_id"), ["job_id"], unique=False)
            batch_op.create_index(batch_op.f(f"ix_{table}_created_at"), ["created_at"], unique=False)


def downgrade() -> None:
    for table in ("spins", "panoramas"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_created_at"))
            batch_op.drop_index(batch_op.f(f"ix_{table}_job_id"))
            batch_op.drop_index(batch_op.f(f"ix_{table}_merchant_id"))
        op.drop_table(table)
