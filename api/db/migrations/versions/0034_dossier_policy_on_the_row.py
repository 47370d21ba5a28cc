"""A dossier's policies ask the access rule about the row itself.

The read and update policies of ``dossier`` called ``guichet_can_see_dossier(id)``, which reads
the dossier again by its id to find its person and prestation. Two consequences:

* **The write check looked at the old row.** An update's new row is checked against the same
  expression, but the function reads the dossier as the statement found it: a runtime role
  that sees a dossier could move it onto a person, or a prestation, it does not follow, and
  the check still saw the old person and prestation. The policies now ask
  ``guichet_may_see(beneficiary_id, prestation, 'dossiers')`` of the row being checked, so
  the new row is judged on its own person and prestation
  (``tests/store/test_row_level_security.py``).
* **Each probe read the dossier once more** through a plpgsql layer of its own, on every row
  a read or an update checks (three per dossier a sync updates).

The rule is unchanged: ``guichet_can_see_dossier`` still answers for the tables that only
carry a dossier's id (its events, its references), and both ask ``guichet_may_see``.

Revision ID: 0034
Revises: 0033
"""

from __future__ import annotations

import importlib

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

_DOSSIERS = importlib.import_module("api.db.migrations.versions.0014_dossiers")

# the cheap attachment probe first, as before: most rows of a list are other partners' people
_ON_THE_ROW = (
    f"{_DOSSIERS._ATTACHED} AND guichet_may_see(beneficiary_id, prestation::text, 'dossiers', NULL)"
)


def _policies(clause: str) -> None:
    role = app_role()
    for name, command in (("runtime_read", "SELECT"), ("runtime_update", "UPDATE")):
        op.execute(f"DROP POLICY {name} ON dossier")
        op.execute(f"CREATE POLICY {name} ON dossier FOR {command} TO {role} USING ({clause})")


def upgrade() -> None:
    _policies(_ON_THE_ROW)


def downgrade() -> None:
    _policies(_DOSSIERS._VISIBLE)
