"""How an organisation holds competences on communes, asked for a whole batch in one call.

Migration 0030 made the access rule ask ``guichet_holding`` once per (competence, commune) of
the memberships it reads. A batch of people living on many communes still makes as many
calls: a dossier sync of 1,000 new people of the Somme asked ~700 pairs, 0.2 ms each (two
nested definer functions, each call setting their ``search_path``), 212 ms of an unchanged
batch's 271 ms of statements.

* ``guichet_holdings(org, competences[], communes[])`` answers for every pair at once: the
  law step is one join; the delegation step still asks ``convention_holdings`` (the rule's one
  statement of delegation) pair by pair, but only when the organisation is the grantee of a
  convention at all (an organisation no convention names as grantee holds nothing by
  delegation: that check reads ``convention`` rows, never a convention's terms, which stay
  ``convention_holdings``'s). It answers about the acting organisation only, as
  ``guichet_holding`` did, and only the owner may call it: the access rule and
  ``guichet_holding`` call it, both definer functions.
* ``guichet_holding(org, competence, commune)`` is now that answer for one pair: the holding
  rule has one home.
* ``guichet_access`` gives it the pairs of the memberships it reads, in one call.

Same answers (``tests/store/test_access_rule.py`` asks people together and alone, and the
holding of each competence by law and by convention).

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

_PLANS = importlib.import_module("api.db.migrations.versions.0030_access_rule_plans")
_LOOKUP_ONCE = importlib.import_module("api.db.migrations.versions.0027_holding_lookup_once")

_DEFINER = "STABLE SECURITY DEFINER SET search_path = public, pg_temp"
_GENERIC = "SET plan_cache_mode = force_generic_plan"
_RULE = importlib.import_module("api.db.migrations.versions.0016_access_rule")
_LAW_CATEGORIES = _RULE._LAW_CATEGORIES
_NIR_COMPETENCES = _RULE._NIR_COMPETENCES

_HOLDINGS = f"""
CREATE FUNCTION guichet_holdings(p_org uuid, p_competences text[], p_communes text[])
RETURNS TABLE (competence text, commune text, source text, convention_id uuid,
               categories text[])
LANGUAGE plpgsql {_DEFINER} {_GENERIC} AS $$
#variable_conflict use_column
DECLARE
  v_today date := (now() AT TIME ZONE 'Europe/Paris')::date;
  v_grantee boolean;
BEGIN
  IF p_org IS DISTINCT FROM guichet_org() THEN
    RETURN;
  END IF;
  -- only a convention's grantee can hold by delegation: asking convention_holdings for each
  -- pair is skipped for an organisation no convention names as grantee
  v_grantee := EXISTS (SELECT 1 FROM convention c WHERE c.grantee_id = p_org);
  RETURN QUERY
  WITH pairs AS (
    SELECT DISTINCT x.competence, x.commune
    FROM unnest(p_competences, p_communes) AS x(competence, commune)
    WHERE x.competence IS NOT NULL AND x.commune IS NOT NULL
  ), delegated AS MATERIALIZED (
    -- by delegation (domain.md §4), as convention_holdings says it: the convention in force
    -- that grants it there, with its categories
    SELECT p.competence, p.commune, c.id, c.data_categories::text[] AS categories
    FROM pairs p
    CROSS JOIN LATERAL (SELECT h.convention_id
                        FROM convention_holdings(p_org, p.competence, p.commune, v_today) h
                        ORDER BY h.convention_id
                        LIMIT 1) d
    JOIN convention c ON c.id = d.convention_id
    WHERE v_grantee
  )
  SELECT d.competence, d.commune, 'convention'::text, d.id, d.categories
  FROM delegated d
  UNION ALL
  -- by law: its kind is a legal holder and the commune is in its territory
  SELECT p.competence, p.commune, 'law'::text, NULL::uuid,
         {_LAW_CATEGORIES} || CASE WHEN p.competence = ANY ({_NIR_COMPETENCES})
                                   THEN ARRAY['nir']::text[] ELSE '{{}}'::text[] END
  FROM pairs p
  JOIN competence k ON k.code = p.competence
  JOIN organisation o ON o.id = p_org AND o.kind = ANY (k.legal_holder_kinds)
  WHERE EXISTS (SELECT 1 FROM organisation_commune oc
                WHERE oc.organisation_id = o.id AND oc.commune_code = p.commune)
    AND NOT EXISTS (SELECT 1 FROM delegated d
                    WHERE d.competence = p.competence AND d.commune = p.commune);
END
$$
"""

_REASON = (
    "how the acting organisation holds competences on communes now, for a batch of pairs; "
    "called by the access rule and guichet_holding only (conventions are readable by their "
    "parties only)"
)

_HOLDING = f"""
CREATE OR REPLACE FUNCTION guichet_holding(p_org uuid, p_competence text, p_commune text)
RETURNS TABLE (source text, convention_id uuid, categories text[])
LANGUAGE plpgsql {_DEFINER} {_GENERIC} ROWS 1 AS $$
BEGIN
  RETURN QUERY
    SELECT h.source, h.convention_id, h.categories
    FROM guichet_holdings(p_org, ARRAY[p_competence], ARRAY[p_commune]) h;
END
$$
"""

_HELD_PER_PAIR = """
    SELECT p.competence, p.commune, h.source, h.convention_id, h.categories
    FROM (SELECT DISTINCT m.competence, m.commune FROM m) p
    CROSS JOIN LATERAL guichet_holding(guichet_org(), p.competence, p.commune) h"""

_HELD_AT_ONCE = """
    SELECT h.competence, h.commune, h.source, h.convention_id, h.categories
    FROM (SELECT array_agg(m.competence) AS competences, array_agg(m.commune) AS communes
          FROM m) p
    CROSS JOIN LATERAL guichet_holdings(guichet_org(), p.competences, p.communes) h"""


def upgrade() -> None:
    assert _HELD_PER_PAIR in _PLANS._ACCESS
    op.execute(_HOLDINGS)
    op.execute("REVOKE ALL ON FUNCTION guichet_holdings(uuid, text[], text[]) FROM PUBLIC")
    quoted = _REASON.replace("'", "''")
    op.execute(f"COMMENT ON FUNCTION guichet_holdings(uuid, text[], text[]) IS '{quoted}'")
    op.execute(_HOLDING)
    op.execute(_PLANS._ACCESS.replace(_HELD_PER_PAIR, _HELD_AT_ONCE))


def downgrade() -> None:
    op.execute(_PLANS._ACCESS)
    op.execute(_LOOKUP_ONCE._HOLDING)
    op.execute(
        "ALTER FUNCTION guichet_holding(uuid, text, text) ROWS 1 "
        "SET plan_cache_mode = force_generic_plan"
    )
    op.execute("DROP FUNCTION guichet_holdings(uuid, text[], text[])")
