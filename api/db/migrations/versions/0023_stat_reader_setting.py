"""Who may read statistics has one source: the permission table in Python.

Migration 0022 restated in SQL the rule "a ``pilotage`` member or a ``stats:read`` client of
the acting organisation" (``guichet_stat_reader``, a definer function reading memberships and
clients) that ``api/auth/permissions.py`` already states as the action ``stats:read``: two
copies of one rule, bound to drift. Now the request's scope says it, like the sensitive
clearance (migration 0016): the scope builder sets ``guichet.statistics`` to ``read``, local
to the transaction, when the scope permits ``stats:read``, and ``guichet_stat_reader`` only
reads that setting (an ordinary function: it reads no table any more, so it needs no owner's
rights). The membership, the user and the client are checked where they were already checked
for every request, when the scope is built. stat_fact's read policy and the comparison total
``guichet_stat_area_count`` keep calling ``guichet_stat_reader``.

The policy is made again around the new function, its territory check written so that the
planner estimates the rows it keeps (below).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# the request context of an organisation whose scope permits stats:read (api/db/context.py)
_READER = """
CREATE FUNCTION guichet_stat_reader() RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT guichet_context() = 'request' AND guichet_org() IS NOT NULL
         AND coalesce(current_setting('guichet.statistics', true), '') = 'read'
$$
"""

# 0022's rule: a statistics reader (evaluated once per statement), its territory. The
# territory as ``IN (subquery)`` (a hashed subplan, built once) rather than ``= ANY (ARRAY
# (subquery))``: the planner cannot see inside the array and counted on a few communes, so a
# département's year (480,000 rows) was read by a plain index scan in random heap order,
# ~4.5 s instead of ~0.7 s by a bitmap scan (bench/statistics.py, 1,000,000 referrals).
_POLICY = (
    "CREATE POLICY runtime_read ON stat_fact FOR SELECT TO {role} USING ("
    "(SELECT guichet_stat_reader()) AND commune_code IN ("
    "SELECT commune_code FROM organisation_commune WHERE organisation_id = guichet_org()))"
)


def upgrade() -> None:
    # the policy depends on the function: dropped and made again around it
    op.execute("DROP POLICY runtime_read ON stat_fact")
    op.execute("DROP FUNCTION guichet_stat_reader()")
    op.execute(_READER)
    op.execute(_POLICY.format(role=app_role()))


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
