"""per-row variance components, main and extra peaks, Log P checks

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_ROW_COLUMNS = (
    ("main_peak_row", sa.Integer()),
    ("offset_from_main", sa.Float()),
    ("volume_fraction", sa.Float()),
    ("judged_series", sa.Integer()),
    ("var_residual", sa.Float()),
    ("var_parameter", sa.Float()),
    ("var_head", sa.Float()),
    ("var_prefix", sa.Float()),
    ("var_species", sa.Float()),
    ("var_extrapolation", sa.Float()),
    ("var_isomer", sa.Float()),
    ("var_series", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("result_rows", schema=None) as batch_op:
        for name, kind in NEW_ROW_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=True))
    with op.batch_alter_table("job_results", schema=None) as batch_op:
        batch_op.add_column(sa.Column("logp_checks", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_results", schema=None) as batch_op:
        batch_op.drop_column("logp_checks")
    with op.batch_alter_table("result_rows", schema=None) as batch_op:
        for name, _ in reversed(NEW_ROW_COLUMNS):
            batch_op.drop_column(name)
