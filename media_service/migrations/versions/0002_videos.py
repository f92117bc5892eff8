"""videos: processed videos, moderation policies, buyer upload tokens, batches

Revision ID: 0002_videos
Revises: 0001
Create Date: 2026-11-25 18:56:18.766131
"""

from alembic import op
import sqlalchemy as sa


revision = '0002_videos'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('batches',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('profile', sa.String(length=32), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batches_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_batches_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('upload_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('lookup', sa.String(length=32), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('order_id', sa.String(length=200), nullable=True),
    sa.Column('sku', sa.String(length=200), nullable=True),
    sa.Column('max_bytes', sa.Integer(), nullable=False),
    sa.Column('process_profile', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('upload_id', sa.String(length=40), nullable=True),
    sa.Column('asset_id', sa.String(length=40), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('used_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('lookup')
    )
    with op.batch_alter_table('upload_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_upload_tokens_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_upload_tokens_merchant_id'), ['merchant_id'], unique=False)

    op.create_table('video_policies',
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('buyer_show_auto_approve', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('merchant_id')
    )
    op.create_table('batch_items',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('batch_id', sa.String(length=40), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('input_name', sa.String(length=300), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('asset_id', sa.String(length=40), nullable=True),
    sa.Column('video_id', sa.String(length=40), nullable=True),
    sa.Column('skipped', sa.Boolean(), nullable=False),
    sa.Column('error', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['batch_id'], ['batches.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('batch_id', 'position', name='uq_batch_items_position')
    )
    with op.batch_alter_table('batch_items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_batch_items_batch_id'), ['batch_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_batch_items_video_id'), ['video_id'], unique=False)

    op.create_table('videos',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('merchant_id', sa.String(length=40), nullable=False),
    sa.Column('asset_id', sa.String(length=40), nullable=False),
    sa.Column('profile', sa.String(length=32), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('options_key', sa.String(length=200), nullable=False),
    sa.Column('job_id', sa.String(length=40), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('output_prefix', sa.String(length=300), nullable=True),
    sa.Column('outputs', sa.JSON(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('loudness', sa.JSON(), nullable=True),
    sa.Column('analysis', sa.JSON(), nullable=False),
    sa.Column('signature', sa.JSON(), nullable=False),
    sa.Column('duration', sa.Float(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('moderation_status', sa.String(length=16), nullable=False),
    sa.Column('moderation_reason', sa.Text(), nullable=True),
    sa.Column('moderated_by', sa.String(length=40), nullable=True),
    sa.Column('moderated_at', sa.DateTime(), nullable=True),
    sa.Column('order_id', sa.String(length=200), nullable=True),
    sa.Column('sku', sa.String(length=200), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('ready_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['asset_id'], ['assets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('merchant_id', 'asset_id', 'profile', 'options_key', name='uq_videos_asset_profile_options')
    )
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_videos_asset_id'), ['asset_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_merchant_id'), ['merchant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_moderation_status'), ['moderation_status'], unique=False)
        batch_op.create_index(batch_op.f('ix_videos_state'), ['state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('videos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_videos_state'))
        batch_op.drop_index(batch_op.f('ix_videos_moderation_status'))
        batch_op.drop_index(batch_op.f('ix_videos_merchant_id'))
        batch_op.drop_index(batch_op.f('ix_videos_job_id'))
        batch_op.drop_index(batch_op.f('ix_videos_created_at'))
        batch_op.drop_index(batch_op.f('ix_videos_asset_id'))

    op.drop_table('videos')
    with op.batch_alter_table('batch_items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batch_items_video_id'))
        batch_op.drop_index(batch_op.f('ix_batch_items_batch_id'))

    op.drop_table('batch_items')
    op.drop_table('video_policies')
    with op.batch_alter_table('upload_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_upload_tokens_merchant_id'))
        batch_op.drop_index(batch_op.f('ix_upload_tokens_asset_id'))

    op.drop_table('upload_tokens')
    with op.batch_alter_table('batches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_batches_merchant_id'))
        batch_op.drop_index(batch_op.f('ix_batches_created_at'))

    op.drop_table('batches')
