"""How a competence is held: conventions are asked only what they can answer.

Every row a policy checks through the access rule (a dossier, a note, an aid request, each
dossier a sync reads and updates) asks ``guichet_holdings`` about its (competence, commune).
Measured as 1,000 policy probes (``guichet_may_see``) of each organisation's own memberships,
on ``bench/dataset.py``'s 20,000 people: 121 µs a probe for the CCAS d'Amiens, 120 µs for the
CIAS, 94 µs for the département; without the holdings step, 46 µs. Two costs, neither in the
rule itself:

* **A grantee asked the conventions about every competence.** An organisation that is the
  grantee of any convention asked ``convention_holdings`` about every pair, ~25 µs each,
  though a convention delegates only the competences its terms name: the CCAS d'Amiens,
  grantee for the RSA and insertion, asked it about its own aide facultative. It is now asked
  only about a competence one of the organisation's conventions names; for any other
  competence its answer is known to be none. The same statement also lost its union of two
  branches and the anti-join between them: a pair held by a convention in force takes it,
  else it is held by law where the law says so, as before.
* **A convention naming many communes was unrolled at every call.** ``convention_holdings``
  made a row of each (competence, commune) of every convention of the grantee, then kept the
  one asked about: 1,542 rows per call for a convention naming the 771 communes of the Somme,
  150 µs a call. Asked about a pair, it now looks the pair up in the convention's arrays;
  asked about everything (the public "who is competent" answer), it unrolls them as before.

After: 85–89 µs a probe for each of the three; ``convention_holdings`` for the Somme-wide
convention, 42 µs a call. A pair a convention does delegate costs ~3 µs more (the competences
named are read). The person read's statement (the record and the rule, as the runtime role,
1,000 reads a round, 4 rounds interleaved): 373 → 314 µs for the CCAS, 354 → 327 µs for the
CIAS, 311 → 306 µs for the département. Same answers: ``tests/store/test_holdings_rule.py``
compares both functions with the test oracle on random conventions; the access-rule tests and
the authorisation matrices are unchanged.

Revision ID: 0035
Revises: 0034
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

_PLANS_KEPT = importlib.import_module("api.db.migrations.versions.0024_holdings_plan_cache")
_PER_BATCH = importlib.import_module("api.db.migrations.versions.0031_holdings_per_batch")

_DEFINER = (
    "STABLE SECURITY DEFINER SET search_path = public, pg_temp "
    "SET plan_cache_mode = force_generic_plan"
)

_HEADER, _STATEMENT = _PLANS_KEPT._HOLDINGS
_EVERY_COMBINATION = """
  CROSS JOIN LATERAL unnest(c.competences) AS comp(code)
  CROSS JOIN LATERAL unnest(c.communes) AS cm(code)"""
_THE_PAIR_ASKED = """
  -- a pair asked about is looked up in the convention's arrays, not found among all their
  -- combinations (a convention may name every commune of a département)
  CROSS JOIN LATERAL unnest(CASE WHEN p_competence IS NULL THEN c.competences
                                 WHEN p_competence = ANY (c.competences)
                                 THEN ARRAY[p_competence] END) AS comp(code)
  CROSS JOIN LATERAL unnest(CASE WHEN p_commune IS NULL THEN c.communes
                                 WHEN p_commune = ANY (c.communes)
                                 THEN ARRAY[p_commune] END) AS cm(code)"""


def _convention_holdings(statement: str) -> str:
    return f"{_HEADER}LANGUAGE plpgsql {_DEFINER} AS $$\nBEGIN\n  RETURN QUERY{statement};\nEND\n$$"


_HOLDINGS = f"""
CREATE OR REPLACE FUNCTION guichet_holdings(p_org uuid, p_competences text[], p_communes text[])
RETURNS TABLE (competence text, commune text, source text, convention_id uuid,
               categories text[])
LANGUAGE plpgsql {_DEFINER} AS $$
#variable_conflict use_column
DECLARE
  v_today date := (now() AT TIME ZONE 'Europe/Paris')::date;
  v_named text[];
BEGIN
  IF p_org IS DISTINCT FROM guichet_org() THEN
    RETURN;
  END IF;
  -- a convention delegates only competences its terms name: convention_holdings is asked
  -- about no other competence (it reads the grantee's conventions, never their other terms)
  v_named := ARRAY(SELECT unnest(c.competences) FROM convention c WHERE c.grantee_id = p_org);
  RETURN QUERY
  WITH pairs AS (
    SELECT DISTINCT x.competence, x.commune
    FROM unnest(p_competences, p_communes) AS x(competence, commune)
    WHERE x.competence IS NOT NULL AND x.commune IS NOT NULL
  )
  SELECT p.competence, p.commune,
         CASE WHEN d.id IS NULL THEN 'law'::text ELSE 'convention'::text END,
         d.id,
         CASE WHEN d.id IS NULL
              THEN {_PER_BATCH._LAW_CATEGORIES}
                   || CASE WHEN p.competence = ANY ({_PER_BATCH._NIR_COMPETENCES})
                           THEN ARRAY['nir']::text[] ELSE '{{}}'::text[] END
              ELSE c.data_categories::text[] END
  FROM pairs p
  -- by delegation (domain.md §4), as convention_holdings says it: the convention in force
  -- that grants it there, with its categories
  LEFT JOIN LATERAL (
    SELECT h.convention_id AS id
    FROM convention_holdings(p_org, p.competence, p.commune, v_today) h
    WHERE p.competence = ANY (v_named)
    ORDER BY h.convention_id
    LIMIT 1) d ON true
  LEFT JOIN convention c ON c.id = d.id
  -- else by law: its kind is a legal holder and the commune is in its territory
  WHERE d.id IS NOT NULL
     OR EXISTS (SELECT 1 FROM competence k
                JOIN organisation o ON o.id = p_org AND o.kind = ANY (k.legal_holder_kinds)
                WHERE k.code = p.competence
                  AND EXISTS (SELECT 1 FROM organisation_commune oc
                              WHERE oc.organisation_id = o.id
                                AND oc.commune_code = p.commune));
END
$$
"""


def upgrade() -> None:
    assert _EVERY_COMBINATION in _STATEMENT
    op.execute(_convention_holdings(_STATEMENT.replace(_EVERY_COMBINATION, _THE_PAIR_ASKED)))
    op.execute(_HOLDINGS)


def downgrade() -> None:
    op.execute(_convention_holdings(_STATEMENT))
    op.execute(_PER_BATCH._HOLDINGS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))
