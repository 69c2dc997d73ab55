"""Reference measurements marked as such: a ``role`` column on network figures.

The drift reference's history (each verdict's draws of the device's speed) is read from the rows with role
``reference``, which only the server's own reference rounds write; a client asking for a verdict on the reference
network itself stores a ``network`` row, which never enters that history. Existing rows: the server's reference
rounds recorded ``"role": "reference"`` in their ``method`` and are marked so; every other row is a ``network``
row. Offline (``--sql``) rendering cannot read rows, so it marks none (the history then starts afresh); upgrade
online (``latency-server db upgrade``) to keep it.

Revision ID: 0003_measurement_role
Revises: 0002_measurement_settings
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context, op

revision = "0003_measurement_role"
down_revision = "0002_measurement_settings"
branch_labels = None
depends_on = None


def _mark_reference_rounds(bind: sa.Connection) -> None:
    table = sa.table("network_measurements", sa.column("id", sa.Integer), sa.column("method", sa.JSON),
                     sa.column("role", sa.String))
    ids = [row_id for row_id, method in bind.execute(sa.select(table.c.id, table.c.method))
           if isinstance(method, dict) and method.get("role") == "reference"]
    for start in range(0, len(ids), 500):
        bind.execute(table.update().where(table.c.id.in_(ids[start:start + 500])).values(role="reference"))


def upgrade() -> None:
    with op.batch_alter_table("network_measurements") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="network"))
    if not context.is_offline_mode():
        _mark_reference_rounds(op.get_bind())
    op.create_index("ix_network_measurements_role", "network_measurements", ["role"])


def downgrade() -> None:
    op.drop_index("ix_network_measurements_role", table_name="network_measurements")
    with op.batch_alter_table("network_measurements") as batch:
        batch.drop_column("role")
