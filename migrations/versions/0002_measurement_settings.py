"""Measurement settings in every figure's lookup key: a ``settings_hash`` column, back-filled from ``method``.

Block figures, network figures and tables get ``settings_hash`` (see :mod:`latency_server.store.measurement_settings`);
the unique keys of block figures and tables include it, so one database holds the figures of several
measurement methods side by side and a server finds only its own. Existing rows keep their figures: each block
and network row's hash is computed from the method it recorded, and a table takes the hash most of its
fingerprint's block figures have. Offline (``--sql``) rendering cannot read rows, so it leaves existing rows
with an empty hash (kept, but served to no server); upgrade online (``latency-server db upgrade``) to keep them.

Revision ID: 0002_measurement_settings
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections import Counter, defaultdict

import sqlalchemy as sa
from alembic import context, op

from latency_server.store.measurement_settings import settings_hash

revision = "0002_measurement_settings"
down_revision = "0001"
branch_labels = None
depends_on = None

_HASHED = ("block_measurements", "network_measurements", "lut_tables")
_UNIQUE = {
    "block_measurements": ("uq_block_fingerprint_key", ["fingerprint_id", "key"],
                           "uq_block_fingerprint_settings_key", ["fingerprint_id", "settings_hash", "key"]),
    "lut_tables": ("uq_lut_fingerprint_space_res", ["fingerprint_id", "space", "resolution"],
                   "uq_lut_fingerprint_settings_space_res", ["fingerprint_id", "settings_hash", "space", "resolution"]),
}


def _backfill(bind: sa.Connection) -> None:
    """Each figure's hash from its recorded method; each table's from most of its fingerprint's block figures."""
    per_fingerprint: dict[str, Counter[str]] = defaultdict(Counter)
    for name in ("block_measurements", "network_measurements"):
        table = sa.table(name, sa.column("id", sa.Integer), sa.column("fingerprint_id", sa.String),
                         sa.column("method", sa.JSON), sa.column("settings_hash", sa.String))
        ids_by_hash: dict[str, list[int]] = defaultdict(list)
        for row_id, fp_id, method in bind.execute(sa.select(table.c.id, table.c.fingerprint_id, table.c.method)):
            digest = settings_hash(method or {})
            ids_by_hash[digest].append(row_id)
            if name == "block_measurements":
                per_fingerprint[fp_id][digest] += 1
        for digest, ids in ids_by_hash.items():
            for start in range(0, len(ids), 500):
                bind.execute(table.update().where(table.c.id.in_(ids[start:start + 500])).values(settings_hash=digest))
    tables = sa.table("lut_tables", sa.column("fingerprint_id", sa.String), sa.column("settings_hash", sa.String))
    for fp_id, counts in per_fingerprint.items():
        bind.execute(tables.update().where(tables.c.fingerprint_id == fp_id)
                     .values(settings_hash=counts.most_common(1)[0][0]))


def upgrade() -> None:
    for name in _HASHED:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("settings_hash", sa.String(32), nullable=False, server_default=""))
    if not context.is_offline_mode():
        _backfill(op.get_bind())
    for name, (old, _, new, columns) in _UNIQUE.items():
        with op.batch_alter_table(name) as batch:
            batch.drop_constraint(old, type_="unique")
            batch.create_unique_constraint(new, columns)


def downgrade() -> None:
    """Back to one figure per (fingerprint, key): of figures taken with several methods, the oldest row stays."""
    for name, (old, old_columns, new, _) in _UNIQUE.items():
        group = ", ".join(old_columns)
        op.execute(f"DELETE FROM {name} WHERE id NOT IN (SELECT keep FROM (SELECT MIN(id) AS keep FROM {name} "
                   f"GROUP BY {group}) AS oldest)")
        with op.batch_alter_table(name) as batch:
            batch.drop_constraint(new, type_="unique")
            batch.create_unique_constraint(old, old_columns)
    for name in _HASHED:
        with op.batch_alter_table(name) as batch:
            batch.drop_column("settings_hash")
