"""``convention_holdings`` in plpgsql: its plan is kept for the session instead of being made
again at every call.

The access rule asks ``guichet_holding`` once per care-team membership it reads (a person
read, every person of a list page), and ``guichet_holding`` asks ``convention_holdings``
whether a convention in force delegates the competence there. As a ``SECURITY DEFINER`` sql
function, ``convention_holdings`` is never inlined and its seven-table statement was parsed
and planned at every call: 2.3 ms of the 2.8 ms the access rule took for one person, against
0.05–0.1 ms for the same statement once planned. A plpgsql body keeps its plan for the
session, as ``guichet_holding`` and ``guichet_access`` already do (migration 0016).

The statement is the same, word for word: who holds what by delegation is unchanged, and the
function keeps its owner, its grants and its comment (``CREATE OR REPLACE``).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

# domain.md §4, as migration 0002 wrote it: in force on p_on; the grantor holds the
# competence by law on the commune, and the grantee's kind may receive it
_STATEMENT = """
  SELECT c.grantee_id, comp.code::text, cm.code::text, c.id
  FROM convention c
  CROSS JOIN LATERAL unnest(c.competences) AS comp(code)
  CROSS JOIN LATERAL unnest(c.communes) AS cm(code)
  JOIN competence k ON k.code = comp.code
  JOIN organisation g ON g.id = c.grantor_id
  JOIN organisation e ON e.id = c.grantee_id
  WHERE c.status = 'active'
    AND c.valid_from <= p_on AND (c.valid_until IS NULL OR c.valid_until >= p_on)
    AND (p_grantee IS NULL OR c.grantee_id = p_grantee)
    AND (p_competence IS NULL OR comp.code = p_competence)
    AND (p_commune IS NULL OR cm.code = p_commune)
    AND g.kind = ANY (k.legal_holder_kinds)
    AND e.kind = ANY (k.delegable_to)
    AND EXISTS (SELECT 1 FROM organisation_commune oc
                WHERE oc.organisation_id = c.grantor_id AND oc.commune_code = cm.code)"""

_HEADER = """
CREATE OR REPLACE FUNCTION convention_holdings(
  p_grantee uuid, p_competence text, p_commune text, p_on date)
RETURNS TABLE (grantee_id uuid, competence text, commune text, convention_id uuid)
"""
_DEFINER = "STABLE SECURITY DEFINER SET search_path = public, pg_temp"


def upgrade() -> None:
    op.execute(
        f"{_HEADER}LANGUAGE plpgsql {_DEFINER} AS $$\nBEGIN\n  RETURN QUERY{_STATEMENT};\nEND\n$$"
    )


def downgrade() -> None:
    op.execute(f"{_HEADER}LANGUAGE sql {_DEFINER} AS $${_STATEMENT}\n$$")
