"""``convention_holdings`` and ``guichet_is_attached`` in plpgsql: their plans are kept for
the session instead of being made again by every statement that calls them.

A ``SECURITY DEFINER`` sql function is never inlined, and PostgreSQL plans its statement anew
in every query that calls it. Two of them sit on every person read:

* the access rule asks ``guichet_holding`` once per care-team membership it reads (a person
  read, every person of a list page), and ``guichet_holding`` asks ``convention_holdings``
  whether a convention in force delegates the competence there: its seven-table statement
  was planned at every call, 2.3 ms of the 2.8 ms the access rule took for one person, against
  0.05–0.1 ms once planned;
* ``guichet_is_attached`` is the attachment probe of the people repository and of the
  row-level policies of the person and its care team: 0.25 ms per primary-key read, 0.03 ms
  once planned (a scan calling it per row costs the same either way).

A plpgsql body keeps its plan for the session, as ``guichet_holding`` and ``guichet_access``
already do (migration 0016). The statements are the same, word for word: the rules are
unchanged, and the functions keep their owner, grants and comments (``CREATE OR REPLACE``).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

_DEFINER = "STABLE SECURITY DEFINER SET search_path = public, pg_temp"

# domain.md §4, as migration 0002 wrote it: in force on p_on; the grantor holds the
# competence by law on the commune, and the grantee's kind may receive it
_HOLDINGS = (
    """
CREATE OR REPLACE FUNCTION convention_holdings(
  p_grantee uuid, p_competence text, p_commune text, p_on date)
RETURNS TABLE (grantee_id uuid, competence text, commune text, convention_id uuid)
""",
    """
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
                WHERE oc.organisation_id = c.grantor_id AND oc.commune_code = cm.code)""",
)

# as migration 0009 wrote it: an active membership of the acting organisation
_ATTACHED = (
    """
CREATE OR REPLACE FUNCTION guichet_is_attached(p_beneficiary uuid) RETURNS boolean
""",
    """
  SELECT EXISTS (
    SELECT 1 FROM care_team_membership
    WHERE organisation_id = guichet_org() AND beneficiary_id = p_beneficiary
      AND ended_at IS NULL
  )""",
)

#: (header, the sql function's statement, the same statement as a plpgsql body)
_FUNCTIONS = (
    (*_HOLDINGS, f"BEGIN\n  RETURN QUERY{_HOLDINGS[1]};\nEND"),
    (*_ATTACHED, f"BEGIN\n  RETURN ({_ATTACHED[1]}\n  );\nEND"),
)


def upgrade() -> None:
    for header, _statement, body in _FUNCTIONS:
        op.execute(f"{header}LANGUAGE plpgsql {_DEFINER} AS $$\n{body}\n$$")


def downgrade() -> None:
    for header, statement, _body in _FUNCTIONS:
        op.execute(f"{header}LANGUAGE sql {_DEFINER} AS $${statement}\n$$")
