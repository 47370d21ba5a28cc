"""What a partner's system last wrote of a dossier, kept on its own reference: an unchanged
re-sync is answered without reading the dossiers.

A nightly sync sends back every dossier it knows, almost all of them unchanged. Telling
``unchanged`` meant reading each dossier as the runtime role, and the dossier's read policy
asks the access rule once per row (``guichet_can_see_dossier``): 0.5–1 ms a row, 77 % of the
database's time on an unchanged batch of 1,000. The caller's own references are read through
the cheap branch of their policy (``organisation_id = guichet_org()``), so:

* ``dossier_external_ref.synced_digest``: the digest of the sync item that last wrote the
  dossier through this reference, recorded only when the same item planned again against the
  state it leaves is ``unchanged`` (the service checks it with the sync rules themselves);
* any write to a dossier, by anyone and by any path (the API, a sync, a merge, the retention
  purge), forgets the digests of all its references: a statement trigger,
  ``guichet_dossier_refs_unsynced``, ``SECURITY DEFINER`` because the references of other
  organisations are beyond the writer's policies;
* the runtime role may update that one column of its own organisation's references.

An item whose digest matches is ``unchanged`` once the access rule, asked for all of them at
once through ``api/auth/access.py``, still shows the dossier; any other item is read and
planned as before. The digest decides nothing about access.

Revision ID: 0029
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.migrations.helpers import app_role

revision = "0029"
down_revision = "0027"
branch_labels = None
depends_on = None

_UNSYNCED = """
CREATE FUNCTION guichet_dossier_refs_unsynced() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  UPDATE dossier_external_ref r SET synced_digest = NULL
  FROM changed c
  WHERE r.dossier_id = c.id AND r.synced_digest IS NOT NULL;
  RETURN NULL;
END
$$
"""

_REASON = (
    "a write to a dossier forgets what every partner's system last synced of it, on "
    "references of other organisations that the writer may not update"
)

_TRIGGER = """
CREATE TRIGGER dossier_refs_unsynced AFTER UPDATE ON dossier
REFERENCING NEW TABLE AS changed FOR EACH STATEMENT
EXECUTE FUNCTION guichet_dossier_refs_unsynced()
"""


def upgrade() -> None:
    role = app_role()
    op.add_column(
        "dossier_external_ref", sa.Column("synced_digest", sa.String(length=64), nullable=True)
    )
    op.execute(_UNSYNCED)
    op.execute("REVOKE ALL ON FUNCTION guichet_dossier_refs_unsynced() FROM PUBLIC")
    quoted = _REASON.replace("'", "''")
    op.execute(f"COMMENT ON FUNCTION guichet_dossier_refs_unsynced() IS '{quoted}'")
    op.execute(_TRIGGER)
    op.execute(f"GRANT UPDATE (synced_digest) ON dossier_external_ref TO {role}")
    op.execute(
        f"CREATE POLICY runtime_resync ON dossier_external_ref FOR UPDATE TO {role} "
        "USING (organisation_id = guichet_org()) WITH CHECK (organisation_id = guichet_org())"
    )


def downgrade() -> None:
    role = app_role()
    op.execute("DROP POLICY runtime_resync ON dossier_external_ref")
    op.execute(f"REVOKE UPDATE (synced_digest) ON dossier_external_ref FROM {role}")
    op.execute("DROP TRIGGER dossier_refs_unsynced ON dossier")
    op.execute("DROP FUNCTION guichet_dossier_refs_unsynced()")
    op.drop_column("dossier_external_ref", "synced_digest")
