"""Performance: audit entries chained after commit by the worker; an access version.

**Audit.** Until now every audited request took its organisation's advisory lock, read the
chain's head, inserted its entries chained to it and held the lock back through Python to
COMMIT: one organisation's reads ran one at a time. Requests now insert their entries unchained
(``prev_hash``, ``hash`` and ``chain_position`` NULL) and take no lock; ``guichet worker``
(job ``audit.chain``) and ``guichet audit-verify`` chain them as the owner, in id order, each
to the head of its organisation's chain. ``chain_position`` is the order of the chain: a
transaction that took its id early may commit late, so chain order is not always id order.

The runtime role still only INSERTs and SELECTs the trail, and a restrictive policy keeps it
from inserting an entry that claims to be chained already.

**Access version.** ``access_version`` holds one number, replaced (from a sequence, so a
rolled-back change never hands its number to another state) by statement triggers on every
table a request's scope or the competence catalogue is built from. It changes when such a
change commits, not before, and the runtime role may only read it: a process may reuse a
scope it built while the number it reads in the request's first round trip is unchanged.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role, grant

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    role = app_role()
    op.execute("ALTER TABLE audit_entry ALTER COLUMN prev_hash DROP NOT NULL")
    op.execute("ALTER TABLE audit_entry ALTER COLUMN hash DROP NOT NULL")
    op.execute("ALTER TABLE audit_entry ADD COLUMN chain_position BIGINT")
    # entries written so far were chained in id order, under the lock
    op.execute("UPDATE audit_entry SET chain_position = id")
    op.execute(
        "ALTER TABLE audit_entry ADD CONSTRAINT ck_audit_entry_chained_together CHECK "
        "((chain_position IS NULL) = (hash IS NULL) AND (hash IS NULL) = (prev_hash IS NULL))"
    )
    op.execute(
        "CREATE UNIQUE INDEX ix_audit_entry_organisation_id_chain_position "
        "ON audit_entry (organisation_id, chain_position)"
    )
    op.execute(
        "CREATE INDEX ix_audit_entry_unchained ON audit_entry (organisation_id, id) "
        "WHERE chain_position IS NULL"
    )
    op.execute(
        f"CREATE POLICY runtime_writes_unchained ON audit_entry AS RESTRICTIVE FOR INSERT "
        f"TO {role} WITH CHECK (chain_position IS NULL AND hash IS NULL AND prev_hash IS NULL)"
    )
    _access_version(role)


#: what a scope (membership, client, holdings: territory, law, conventions) or the
#: catalogue is built from
_VERSIONED_TABLES = (
    "app_user",
    "membership",
    "api_client",
    "organisation",
    "organisation_commune",
    "convention",
    "competence",
)

_BUMP = """
CREATE FUNCTION bump_access_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  UPDATE access_version SET version = nextval('access_version_seq') WHERE id = 1;
  RETURN NULL;
END
$$
"""


def _access_version(role: str) -> None:
    op.execute("CREATE SEQUENCE access_version_seq")
    op.execute(
        "CREATE TABLE access_version (id smallint NOT NULL, version bigint NOT NULL, "
        "CONSTRAINT pk_access_version PRIMARY KEY (id), "
        "CONSTRAINT ck_access_version_one_row CHECK (id = 1))"
    )
    op.execute("INSERT INTO access_version VALUES (1, nextval('access_version_seq'))")
    grant("access_version", "SELECT")
    op.execute(_BUMP)
    op.execute("REVOKE ALL ON FUNCTION bump_access_version() FROM PUBLIC")
    for table in _VERSIONED_TABLES:
        op.execute(
            f"CREATE TRIGGER bump_access_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE "
            f"ON {table} FOR EACH STATEMENT EXECUTE FUNCTION bump_access_version()"
        )


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
