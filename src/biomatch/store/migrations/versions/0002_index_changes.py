"""index change feed

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('index_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('gallery_id', sa.Integer(), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('template_id', sa.Integer(), nullable=False),
    sa.Column('subject_id', sa.Integer(), nullable=False),
    sa.Column('model_key', sa.String(length=96), nullable=False),
    sa.Column('op', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['gallery_id'], ['galleries.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('index_changes', schema=None) as batch_op:
        batch_op.create_index('ix_index_changes_gallery_revision', ['gallery_id', 'revision'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('index_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_index_changes_gallery_revision')
    op.drop_table('index_changes')
