"""What each convention in force grants a grantee, as sets rather than one row per
competence × commune: a scope built from 50 conventions over a whole département stays small.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Same rules as convention_holdings (domain.md §4): in force on p_on; competences the grantor's
# kind holds by law and the grantee's kind may receive; communes of the grantor's territory.
_GRANTS = """
CREATE FUNCTION convention_grants(p_grantee uuid, p_on date)
RETURNS TABLE (convention_id uuid, competences text[], communes text[])
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT c.id,
         ARRAY(SELECT comp.code::text FROM unnest(c.competences) AS comp(code)
               JOIN competence k ON k.code = comp.code
               WHERE g.kind = ANY (k.legal_holder_kinds) AND e.kind = ANY (k.delegable_to)),
         ARRAY(SELECT x.code::text FROM unnest(c.communes) AS x(code)
               JOIN organisation_commune oc
                 ON oc.organisation_id = c.grantor_id AND oc.commune_code = x.code)
  FROM convention c
  JOIN organisation g ON g.id = c.grantor_id
  JOIN organisation e ON e.id = c.grantee_id
  WHERE c.grantee_id = p_grantee AND c.status = 'active'
    AND c.valid_from <= p_on AND (c.valid_until IS NULL OR c.valid_until >= p_on)
$$
"""


def upgrade() -> None:
    op.execute(_GRANTS)
    op.execute("REVOKE ALL ON FUNCTION convention_grants(uuid, date) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION convention_grants(uuid, date) TO {app_role()}")


def downgrade() -> None:
    op.execute("DROP FUNCTION convention_grants(uuid, date)")
