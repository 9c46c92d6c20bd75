"""reference images kept, several templates per sample (one per model), encounter score threshold

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:45:00
"""

from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

# Names the unnamed unique constraint of 0001 so that batch mode can drop it on SQLite;
# PostgreSQL gave it its own default name.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}


def _old_unique_name() -> str:
    return "templates_sample_id_key" if op.get_bind().dialect.name == "postgresql" else "uq_templates_sample_id"


def upgrade() -> None:
    with op.batch_alter_table('samples') as batch_op:
        batch_op.add_column(sa.Column('image', sa.LargeBinary(), nullable=True))
    with op.batch_alter_table('templates', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(_old_unique_name(), type_='unique')
        batch_op.create_unique_constraint('uq_templates_sample_model', ['sample_id', 'model_key'])
    with op.batch_alter_table('encounters') as batch_op:
        batch_op.alter_column('threshold', new_column_name='score_threshold', existing_type=sa.Float(), nullable=True)
    # Fused searches stored the target FMR in the old column: it was never a score.
    op.execute("UPDATE encounters SET score_threshold = NULL WHERE score_threshold = target_fmr")


def downgrade() -> None:
    op.execute("UPDATE encounters SET score_threshold = target_fmr WHERE score_threshold IS NULL")
    with op.batch_alter_table('encounters') as batch_op:
        batch_op.alter_column('score_threshold', new_column_name='threshold', existing_type=sa.Float(), nullable=False)
    with op.batch_alter_table('templates', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint('uq_templates_sample_model', type_='unique')
        batch_op.create_unique_constraint(_old_unique_name(), ['sample_id'])
    with op.batch_alter_table('samples') as batch_op:
        batch_op.drop_column('image')
