"""The access rule probes a person's memberships whatever the statistics said, and its entry
point for records keeps its plan.

Measured in process on ``bench/sync.py``'s data (the département follows 3,076 people; a batch
updating 750 dossiers asks the dossier policy 2,250 times): the update request took 1.7 s, of
which ``guichet_access`` spent 0.47 ms a call in its own statement.

* **A plan made on stale statistics.** Migration 0030 keeps one plan per session for the rule.
  The plan is made at the session's first call, from the statistics of that moment; on a
  freshly loaded database (the organisation's memberships counted before they were written)
  the plan found the memberships by organisation alone and filtered the people out of all of
  them: 3,075 rows read to answer about one person, for the rest of the session. The rule now
  reads the memberships person by person (a lateral probe on the (organisation, person) index,
  kept a probe by ``OFFSET 0``), a plan whose cost does not depend on the organisation's size
  whatever the statistics say. Before, the same batches took 0.68 s once the database was
  analysed; after, 0.63 s without analysing it. On analysed statistics a batch of 1,000
  people pays a few milliseconds more (a probe per person instead of one index scan;
  ``bench/README.md``).
* **``guichet_may_see`` planned at every probe.** A SQL function that cannot be inlined (its
  body is an ``EXISTS``) is planned again each time the statement calling it starts, and the
  policies of dossiers, notes and aid requests call it from a plpgsql function, one statement
  per row. It is now plpgsql, whose statement keeps its plan for the session: same body.

Same answers: the statement reads the same memberships (each person once, as ``= ANY`` did)
and builds the same rows.

Revision ID: 0033
Revises: 0031
"""

from __future__ import annotations

import importlib

from alembic import op

revision = "0033"
down_revision = "0031"
branch_labels = None
depends_on = None

_RULE = importlib.import_module("api.db.migrations.versions.0016_access_rule")
_PLANS = importlib.import_module("api.db.migrations.versions.0030_access_rule_plans")
_PER_BATCH = importlib.import_module("api.db.migrations.versions.0031_holdings_per_batch")

# the rule as migration 0031 left it
_ACCESS_BEFORE = _PLANS._ACCESS.replace(_PER_BATCH._HELD_PER_PAIR, _PER_BATCH._HELD_AT_ONCE)

_BY_ORGANISATION = """
    FROM care_team_membership m
    JOIN beneficiary b ON b.id = m.beneficiary_id
    JOIN competence k ON k.code = m.competence
    WHERE m.beneficiary_id = ANY (p_people) AND m.organisation_id = guichet_org()
      AND m.ended_at IS NULL"""

_BY_PERSON = """
    FROM (SELECT DISTINCT unnest(p_people)) AS p(id)
    -- person by person: the plan is kept for the session, and must not depend on how many
    -- memberships the organisation had when it was made (OFFSET 0 keeps the probe a probe)
    CROSS JOIN LATERAL (
      SELECT x.* FROM care_team_membership x
      WHERE x.beneficiary_id = p.id AND x.organisation_id = guichet_org()
        AND x.ended_at IS NULL
      OFFSET 0) m
    JOIN beneficiary b ON b.id = m.beneficiary_id
    JOIN competence k ON k.code = m.competence"""

_MAY_SEE_BEFORE = _RULE._MAY_SEE.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)

_MAY_SEE = """
CREATE OR REPLACE FUNCTION guichet_may_see(
  p_person uuid, p_competence text, p_category text, p_role_categories text[])
RETURNS boolean LANGUAGE plpgsql STABLE AS $$
BEGIN
  RETURN EXISTS (
    SELECT 1 FROM guichet_access(ARRAY[p_person], p_role_categories) a
    WHERE a.competence = p_competence AND p_category = ANY (a.categories));
END
$$
"""


def upgrade() -> None:
    assert _BY_ORGANISATION in _ACCESS_BEFORE
    op.execute(_ACCESS_BEFORE.replace(_BY_ORGANISATION, _BY_PERSON))
    op.execute(_MAY_SEE)


def downgrade() -> None:
    op.execute(_MAY_SEE_BEFORE)
    op.execute(_ACCESS_BEFORE)
