"""Initial latency store: fingerprints, block measurements, latency tables, network measurements.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _stats_columns() -> list[sa.Column]:
    return [
        sa.Column("median_ms", sa.Float(), nullable=False),
        sa.Column("iqr_ms", sa.Float(), nullable=False),
        sa.Column("p90_ms", sa.Float(), nullable=False),
        sa.Column("mean_ms", sa.Float(), nullable=False),
        sa.Column("min_ms", sa.Float(), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("warmup", sa.Integer(), nullable=False),
        sa.Column("method", sa.JSON(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "fingerprints",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("hardware", sa.JSON(), nullable=False),
        sa.Column("software", sa.JSON(), nullable=False),
        sa.Column("backend", sa.String(32), nullable=False),
        sa.Column("threads", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "block_measurements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("fingerprint_id", sa.String(64), sa.ForeignKey("fingerprints.id"), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("block", sa.JSON(), nullable=False),
        *_stats_columns(),
        sa.UniqueConstraint("fingerprint_id", "key", name="uq_block_fingerprint_key"),
    )
    op.create_index("ix_block_measurements_fingerprint_id", "block_measurements", ["fingerprint_id"])
    op.create_table(
        "lut_tables",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("fingerprint_id", sa.String(64), sa.ForeignKey("fingerprints.id"), nullable=False),
        sa.Column("space", sa.String(64), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("meta", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("fingerprint_id", "space", "resolution", name="uq_lut_fingerprint_space_res"),
    )
    op.create_index("ix_lut_tables_fingerprint_id", "lut_tables", ["fingerprint_id"])
    op.create_table(
        "network_measurements",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("fingerprint_id", sa.String(64), sa.ForeignKey("fingerprints.id"), nullable=False),
        sa.Column("arch", sa.Text(), nullable=False),
        sa.Column("resolution", sa.Integer(), nullable=False),
        sa.Column("predicted_ms", sa.Float(), nullable=True),
        *_stats_columns(),
    )
    op.create_index("ix_network_measurements_fingerprint_id", "network_measurements", ["fingerprint_id"])


def downgrade() -> None:
    op.drop_index("ix_network_measurements_fingerprint_id", "network_measurements")
    op.drop_table("network_measurements")
    op.drop_index("ix_lut_tables_fingerprint_id", "lut_tables")
    op.drop_table("lut_tables")
    op.drop_index("ix_block_measurements_fingerprint_id", "block_measurements")
    op.drop_table("block_measurements")
    op.drop_table("fingerprints")
