"""``guichet_holding`` asks ``convention_holdings`` once per call.

The access rule asks ``guichet_holding`` once per care-team membership it reads (every person
read). Its delegation step joined ``convention_holdings(…)`` to ``convention`` and kept the
first convention by id; the planner put ``convention`` on the outer side of a nested loop and
called the definer function once per convention row: with the demo's four conventions, four
calls where one answers (under EXPLAIN ANALYZE, 0.32 of the 0.54 ms of the rule's statement
for one person; uninstrumented, in loops of 300 calls, ``guichet_access`` went from
0.82–0.85 ms to 0.62–0.87 ms on a busy machine: small here, and it grows with the number of
conventions). Asking for the first granting convention's id in a scalar subquery calls the
function once. The answer is the same row: ``convention_holdings`` names conventions of
``convention`` by id, and the lowest such id is the one ``ORDER BY c.id LIMIT 1`` kept. The
law step, the grants, the owner and the comment are unchanged (``CREATE OR REPLACE``).

Revision ID: 0027
Revises: 0025
"""

from __future__ import annotations

from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None

# as migration 0016 wrote them (tests/store/test_access_rule.py asks the function against
# the catalogue)
_LAW_CATEGORIES = (
    "ARRAY['identity','contact','household','resources','situation','notes','referrals',"
    "'orientations','dossiers','aids']::text[]"
)
_NIR_COMPETENCES = "ARRAY['rsa','apa','pch','ash','fsl','faj']::text[]"

# as migration 0016 wrote it, but for the statement of the delegation step
_HOLDING = f"""
CREATE OR REPLACE FUNCTION guichet_holding(p_org uuid, p_competence text, p_commune text)
RETURNS TABLE (source text, convention_id uuid, categories text[])
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_today date := (now() AT TIME ZONE 'Europe/Paris')::date;
BEGIN
  IF p_org IS DISTINCT FROM guichet_org() OR p_commune IS NULL THEN
    RETURN;
  END IF;
  -- by delegation (domain.md §4), as convention_holdings says it (the rule's one statement
  -- of delegation): the convention in force that grants it there, with its categories
  RETURN QUERY
    SELECT 'convention'::text, c.id, c.data_categories::text[]
    FROM convention c
    WHERE c.id = (SELECT h.convention_id
                  FROM convention_holdings(p_org, p_competence, p_commune, v_today) h
                  ORDER BY h.convention_id
                  LIMIT 1);
  IF FOUND THEN
    RETURN;
  END IF;
  -- by law: its kind is a legal holder and the commune is in its territory
  RETURN QUERY
    SELECT 'law'::text, NULL::uuid,
           {_LAW_CATEGORIES} || CASE WHEN p_competence = ANY ({_NIR_COMPETENCES})
                                     THEN ARRAY['nir']::text[] ELSE '{{}}'::text[] END
    FROM organisation o
    JOIN competence k ON k.code = p_competence
    WHERE o.id = p_org AND o.kind = ANY (k.legal_holder_kinds)
      AND EXISTS (SELECT 1 FROM organisation_commune oc
                  WHERE oc.organisation_id = o.id AND oc.commune_code = p_commune);
END
$$
"""

_DELEGATION_BEFORE = """
    SELECT 'convention'::text, c.id, c.data_categories::text[]
    FROM convention_holdings(p_org, p_competence, p_commune, v_today) h
    JOIN convention c ON c.id = h.convention_id
    ORDER BY c.id
    LIMIT 1;"""

_DELEGATION_AFTER = """
    SELECT 'convention'::text, c.id, c.data_categories::text[]
    FROM convention c
    WHERE c.id = (SELECT h.convention_id
                  FROM convention_holdings(p_org, p_competence, p_commune, v_today) h
                  ORDER BY h.convention_id
                  LIMIT 1);"""


def upgrade() -> None:
    op.execute(_HOLDING)


def downgrade() -> None:
    assert _DELEGATION_AFTER in _HOLDING
    op.execute(_HOLDING.replace(_DELEGATION_AFTER, _DELEGATION_BEFORE))
