"""Attachment checked per row by an indexed probe instead of materialising every person an
organisation follows in each statement (48,561 ids for a city CCAS: ~135 ms per statement).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_PROBE = """
CREATE FUNCTION guichet_is_attached(p_beneficiary uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM care_team_membership
    WHERE organisation_id = guichet_org() AND beneficiary_id = p_beneficiary
      AND ended_at IS NULL
  )
$$
"""

# (table, policy, command, USING or WITH CHECK clause template)
_POLICIES = [
    ("beneficiary", "runtime_read", "SELECT", "USING ({a})", "id"),
    ("beneficiary", "runtime_update", "UPDATE", "USING ({a})", "id"),
    ("care_team_membership", "runtime_read", "SELECT", "USING ({a})", "beneficiary_id"),
    ("household_member", "runtime", "ALL", "USING ({a}) WITH CHECK ({a})", "beneficiary_id"),
    ("budget_line", "runtime", "ALL", "USING ({a}) WITH CHECK ({a})", "beneficiary_id"),
    ("access_request", "runtime_decide", "UPDATE", "USING ({a})", "beneficiary_id"),
]


def upgrade() -> None:
    role = app_role()
    op.execute(_PROBE)
    op.execute("REVOKE ALL ON FUNCTION guichet_is_attached(uuid) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION guichet_is_attached(uuid) TO {role}")
    for table, name, command, clause, column in _POLICIES:
        op.execute(f"DROP POLICY {name} ON {table}")
        attached = f"guichet_is_attached({column})"
        op.execute(
            f"CREATE POLICY {name} ON {table} FOR {command} TO {role} {clause.format(a=attached)}"
        )
    for table, name, command, clause in (
        (
            "audit_entry",
            "runtime_read",
            "SELECT",
            "USING (organisation_id = guichet_org() OR guichet_is_attached(beneficiary_id))",
        ),
        (
            "access_request",
            "runtime_read",
            "SELECT",
            "USING (organisation_id = guichet_org() OR guichet_is_attached(beneficiary_id))",
        ),
        (
            "note",
            "runtime_read",
            "SELECT",
            "USING (guichet_is_attached(beneficiary_id) "
            "AND (visibility = 'team' OR organisation_id = guichet_org()) "
            "AND (visibility <> 'private' OR author_user_id = guichet_principal()))",
        ),
        (
            "note",
            "runtime_write",
            "INSERT",
            "WITH CHECK (organisation_id = guichet_org() AND guichet_is_attached(beneficiary_id))",
        ),
        (
            "care_team_membership",
            "runtime_join",
            "INSERT",
            "WITH CHECK (organisation_id = guichet_org() "
            "OR (source = 'access_request' AND guichet_is_attached(beneficiary_id)))",
        ),
    ):
        op.execute(f"DROP POLICY {name} ON {table}")
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO {role} {clause}")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
