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

import importlib

from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None

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

# as migration 0016 wrote it, but for the statement of the delegation step
_HOLDING = (
    importlib.import_module("api.db.migrations.versions.0016_access_rule")
    ._HOLDING.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1)
    .replace(_DELEGATION_BEFORE, _DELEGATION_AFTER)
)


def upgrade() -> None:
    assert _DELEGATION_AFTER in _HOLDING
    op.execute(_HOLDING)


def downgrade() -> None:
    op.execute(_HOLDING.replace(_DELEGATION_AFTER, _DELEGATION_BEFORE))
