"""Convention events name the API client and the agent it acted for.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("convention_event", sa.Column("actor_client_id", sa.Uuid(), nullable=True))
    op.add_column("convention_event", sa.Column("acting_agent", sa.String(200), nullable=True))
    op.create_foreign_key(
        op.f("fk_convention_event_actor_client_id_api_client"),
        "convention_event",
        "api_client",
        ["actor_client_id"],
        ["id"],
    )


def downgrade() -> None:
    op.drop_column("convention_event", "acting_agent")
    op.drop_column("convention_event", "actor_client_id")
