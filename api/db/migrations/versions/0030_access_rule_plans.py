"""The access rule keeps its plans, and asks how a competence is held once per commune.

Every person read, list page, policy check of a dossier and sync batch asks ``guichet_access``.
Measured one call at a time with pgbench (jit off, 2 shared cores, load ~5), on the 1 M
referrals dataset (200,703 people; the département follows 87,432 of them, the CCAS d'Amiens
62,482): one person cost 2.5–3.0 ms, a batch of 1,000 people of the CCAS 257 ms.

* **Plans made again at every call.** PostgreSQL re-plans a plpgsql statement whenever its
  reusable ("generic") plan looks dearer than one made for the call's values. The rule's
  statement always looked dearer: ``guichet_holding`` was estimated at 1,000 rows per call (it
  returns one at most), and ``convention_holdings`` filters by ``p IS NULL OR column = p``,
  which only a plan for the values can fold. So the rule planned a five-relation statement per
  call, and ``guichet_holding`` and ``convention_holdings`` theirs per membership.
  ``plan_cache_mode = force_generic_plan`` on the three functions keeps one plan per session.
  The plans chosen probe ``care_team_membership`` by (organisation, person) on its index, whatever
  the organisation's size. (Forcing it was measured at 18–25 ms for the département before:
  that was JIT compiling the generic plan at every execution, not the plan; the service now
  runs without JIT, ``api/db/engine.py``.) ``guichet_holding`` is declared ``ROWS 1``.
* **One holding per (competence, commune).** ``guichet_holding`` was called per membership; a
  batch of the CCAS's people asks about a handful of (competence, commune) pairs. It is now
  called once per distinct pair of the memberships read, and the answers are joined back.

Same rule, same answers (``tests/store/test_access_rule.py`` and the authorisation
matrices): the statement reads the same memberships, asks ``guichet_holding`` with the same
organisation (the caller's, which the memberships are filtered on), competence and commune,
and builds the categories with the same expression. After, same measure: one person
0.66–0.90 ms, a batch of 1,000 40–44 ms.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

_DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"

_RULE = importlib.import_module("api.db.migrations.versions.0016_access_rule")

# The categories a membership grants, as migration 0016 wrote them, over a row ``m`` (the
# membership, with its competence's ``sensitive`` flag) and ``h`` (how the competence is held
# on the person's commune now): 0016's expression, taken from it rather than copied, its
# competence's flag read from ``m`` instead of the joined ``k``.
_CATEGORIES_FROM = _RULE._ACCESS.index("\n    CASE WHEN h.source IS NULL")
_CATEGORIES_TO = _RULE._ACCESS.index("    END\n  FROM care_team_membership m") + len("    END")
_CATEGORIES = _RULE._ACCESS[_CATEGORIES_FROM:_CATEGORIES_TO].replace(
    "(k.sensitive AND", "(m.sensitive AND"
)

_SIGNATURE = """
CREATE OR REPLACE FUNCTION guichet_access(p_people uuid[], p_role_categories text[])
RETURNS TABLE (beneficiary_id uuid, competence text, membership_source text, holding text,
               convention_id uuid, categories text[])"""

_ACCESS = f"""{_SIGNATURE}
LANGUAGE plpgsql STABLE {_DEFINER} SET plan_cache_mode = force_generic_plan AS $$
BEGIN
  RETURN QUERY
  WITH m AS MATERIALIZED (
    SELECT m.beneficiary_id, m.competence::text AS competence, m.source::text AS source,
           m.granted_categories, b.commune_code::text AS commune, k.sensitive
    FROM care_team_membership m
    JOIN beneficiary b ON b.id = m.beneficiary_id
    JOIN competence k ON k.code = m.competence
    WHERE m.beneficiary_id = ANY (p_people) AND m.organisation_id = guichet_org()
      AND m.ended_at IS NULL
  ), held AS MATERIALIZED (
    -- how each competence is held on each commune now, asked once per pair
    SELECT p.competence, p.commune, h.source, h.convention_id, h.categories
    FROM (SELECT DISTINCT m.competence, m.commune FROM m) p
    CROSS JOIN LATERAL guichet_holding(guichet_org(), p.competence, p.commune) h
  )
  SELECT m.beneficiary_id, m.competence, m.source, h.source, h.convention_id,{_CATEGORIES}
  FROM m
  LEFT JOIN held h ON h.competence = m.competence AND h.commune = m.commune;
END
$$
"""

# as migration 0016 wrote it (downgrade)
_ACCESS_BEFORE = _RULE._ACCESS.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)

_HOLDING = "guichet_holding(uuid, text, text)"
_HOLDINGS = "convention_holdings(uuid, text, text, date)"


def upgrade() -> None:
    op.execute(_ACCESS)
    op.execute(f"ALTER FUNCTION {_HOLDING} ROWS 1 SET plan_cache_mode = force_generic_plan")
    op.execute(f"ALTER FUNCTION {_HOLDINGS} SET plan_cache_mode = force_generic_plan")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {_HOLDINGS} RESET plan_cache_mode")
    op.execute(f"ALTER FUNCTION {_HOLDING} ROWS 1000 RESET plan_cache_mode")
    op.execute(_ACCESS_BEFORE)
