"""The acting organisation's last audit hash, read by an index probe.

Under the row-level policy (own entries OR entries about attached persons) the planner could
not walk ``ix_audit_entry_organisation_id_id`` backwards and sorted the organisation's whole
trail on every write. This reads the head of the caller's own chain only.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_HEAD = """
CREATE FUNCTION audit_chain_head() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT hash FROM audit_entry WHERE organisation_id = guichet_org() ORDER BY id DESC LIMIT 1
$$
"""


def upgrade() -> None:
    op.execute(_HEAD)
    op.execute("REVOKE ALL ON FUNCTION audit_chain_head() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION audit_chain_head() TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION audit_chain_head()")
