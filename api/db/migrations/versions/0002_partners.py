"""Partners: organisations and territories, users, memberships, API clients, refresh
tokens, conventions; row-level security and the public holdings function.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=True),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
    )
    op.create_table(
        "organisation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("search_name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("siret", sa.String(14), nullable=True),
        sa.Column("commune_code", sa.String(5), nullable=True),
        sa.Column("epci_siren", sa.String(9), nullable=True),
        sa.Column("departement_code", sa.String(3), nullable=True),
        sa.Column("service_area_communes", postgresql.ARRAY(sa.String(length=5)), nullable=False),
        sa.Column(
            "service_area_departements", postgresql.ARRAY(sa.String(length=3)), nullable=False
        ),
        sa.Column("email", sa.String(), nullable=True),
        sa.Column("phone", sa.String(), nullable=True),
        sa.Column("address", sa.String(), nullable=True),
        sa.Column("retention_months", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["commune.code"], name=op.f("fk_organisation_commune_code_commune")
        ),
        sa.ForeignKeyConstraint(
            ["departement_code"],
            ["departement.code"],
            name=op.f("fk_organisation_departement_code_departement"),
        ),
        sa.ForeignKeyConstraint(
            ["epci_siren"], ["epci.siren"], name=op.f("fk_organisation_epci_siren_epci")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation")),
    )
    op.create_index(op.f("ix_organisation_kind"), "organisation", ["kind"], unique=False)
    op.create_table(
        "api_client",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("secret_hash", sa.String(), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_api_client_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_client")),
        sa.UniqueConstraint("client_id", name=op.f("uq_api_client_client_id")),
    )
    op.create_index(
        op.f("ix_api_client_organisation_id"), "api_client", ["organisation_id"], unique=False
    )
    op.create_table(
        "convention",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(100), nullable=False),
        sa.Column("grantor_id", sa.Uuid(), nullable=False),
        sa.Column("grantee_id", sa.Uuid(), nullable=False),
        sa.Column("competences", postgresql.ARRAY(sa.String(length=40)), nullable=False),
        sa.Column("communes", postgresql.ARRAY(sa.String(length=5)), nullable=False),
        sa.Column("all_communes", sa.Boolean(), nullable=False),
        sa.Column("data_categories", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["grantee_id"], ["organisation.id"], name=op.f("fk_convention_grantee_id_organisation")
        ),
        sa.ForeignKeyConstraint(
            ["grantor_id"], ["organisation.id"], name=op.f("fk_convention_grantor_id_organisation")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_convention")),
    )
    op.create_index(op.f("ix_convention_grantee_id"), "convention", ["grantee_id"], unique=False)
    op.create_index(op.f("ix_convention_grantor_id"), "convention", ["grantor_id"], unique=False)
    op.create_table(
        "membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_membership_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_membership_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_membership")),
        sa.UniqueConstraint(
            "user_id", "organisation_id", name=op.f("uq_membership_user_id_organisation_id")
        ),
    )
    op.create_index(
        op.f("ix_membership_organisation_id"), "membership", ["organisation_id"], unique=False
    )
    op.create_index(op.f("ix_membership_user_id"), "membership", ["user_id"], unique=False)
    op.create_table(
        "organisation_commune",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.ForeignKeyConstraint(
            ["commune_code"],
            ["commune.code"],
            name=op.f("fk_organisation_commune_commune_code_commune"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_organisation_commune_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organisation_id", "commune_code", name=op.f("pk_organisation_commune")
        ),
    )
    op.create_index(
        "ix_organisation_commune_commune_code",
        "organisation_commune",
        ["commune_code"],
        unique=False,
    )
    op.create_table(
        "refresh_token",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_refresh_token_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_refresh_token_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refresh_token")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_refresh_token_token_hash")),
    )
    op.create_index(
        op.f("ix_refresh_token_family_id"), "refresh_token", ["family_id"], unique=False
    )
    op.create_table(
        "convention_event",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("convention_id", sa.Uuid(), nullable=False),
        sa.Column("grantor_id", sa.Uuid(), nullable=False),
        sa.Column("grantee_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_convention_event_actor_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["app_user.id"],
            name=op.f("fk_convention_event_actor_user_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["convention_id"],
            ["convention.id"],
            name=op.f("fk_convention_event_convention_id_convention"),
        ),
        sa.ForeignKeyConstraint(
            ["grantee_id"],
            ["organisation.id"],
            name=op.f("fk_convention_event_grantee_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["grantor_id"],
            ["organisation.id"],
            name=op.f("fk_convention_event_grantor_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_convention_event")),
    )
    op.create_index(
        op.f("ix_convention_event_convention_id"),
        "convention_event",
        ["convention_id"],
        unique=False,
    )
    _security()


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS convention_holdings(uuid, text, text, date)")
    op.execute("DROP FUNCTION IF EXISTS ensure_user(uuid, text, text, text)")
    for fn in ("guichet_org", "guichet_principal", "guichet_context"):
        op.execute(f"DROP FUNCTION IF EXISTS {fn}()")
    op.drop_index(op.f("ix_convention_event_convention_id"), table_name="convention_event")
    op.drop_table("convention_event")
    op.drop_index(op.f("ix_refresh_token_family_id"), table_name="refresh_token")
    op.drop_table("refresh_token")
    op.drop_index("ix_organisation_commune_commune_code", table_name="organisation_commune")
    op.drop_table("organisation_commune")
    op.drop_index(op.f("ix_membership_user_id"), table_name="membership")
    op.drop_index(op.f("ix_membership_organisation_id"), table_name="membership")
    op.drop_table("membership")
    op.drop_index(op.f("ix_convention_grantor_id"), table_name="convention")
    op.drop_index(op.f("ix_convention_grantee_id"), table_name="convention")
    op.drop_table("convention")
    op.drop_index(op.f("ix_api_client_organisation_id"), table_name="api_client")
    op.drop_table("api_client")
    op.drop_index(op.f("ix_organisation_kind"), table_name="organisation")
    op.drop_table("organisation")
    op.drop_table("app_user")


# The acting organisation, principal and context are set per transaction by the service
# (``set_config(..., true)``); policies read them through these functions.
_CONTEXT_FUNCTIONS = """
CREATE FUNCTION guichet_org() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('guichet.organisation_id', true), '')::uuid $$;
CREATE FUNCTION guichet_principal() RETURNS uuid LANGUAGE sql STABLE AS
  $$ SELECT nullif(current_setting('guichet.principal_id', true), '')::uuid $$;
CREATE FUNCTION guichet_context() RETURNS text LANGUAGE sql STABLE AS
  $$ SELECT coalesce(nullif(current_setting('guichet.context', true), ''), 'anonymous') $$;
"""

# Who holds which competence where because of a convention in force on p_on. SECURITY
# DEFINER: the answer is public (the "qui fait quoi" directory) while conventions themselves
# are readable by their parties only. Rules of domain.md §4: the grantor must hold the
# competence by law on the commune (so a delegate cannot re-delegate, and the end of the
# grantor's holding ends the delegate's), and the grantee's kind must be allowed for it.
_HOLDINGS_FUNCTION = """
CREATE FUNCTION convention_holdings(p_grantee uuid, p_competence text, p_commune text, p_on date)
RETURNS TABLE (grantee_id uuid, competence text, commune text, convention_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT c.grantee_id, comp.code::text, cm.code::text, c.id
  FROM convention c
  CROSS JOIN LATERAL unnest(c.competences) AS comp(code)
  CROSS JOIN LATERAL unnest(c.communes) AS cm(code)
  JOIN competence k ON k.code = comp.code
  JOIN organisation g ON g.id = c.grantor_id
  JOIN organisation e ON e.id = c.grantee_id
  WHERE c.status = 'active'
    AND c.valid_from <= p_on AND (c.valid_until IS NULL OR c.valid_until >= p_on)
    AND (p_grantee IS NULL OR c.grantee_id = p_grantee)
    AND (p_competence IS NULL OR comp.code = p_competence)
    AND (p_commune IS NULL OR cm.code = p_commune)
    AND g.kind = ANY (k.legal_holder_kinds)
    AND e.kind = ANY (k.delegable_to)
    AND EXISTS (SELECT 1 FROM organisation_commune oc
                WHERE oc.organisation_id = c.grantor_id AND oc.commune_code = cm.code)
$$;
"""

# Adding a member by e-mail must find a user who may belong to other organisations only,
# and so be invisible to the caller: this returns (or creates) the id and nothing else.
_ENSURE_USER_FUNCTION = """
CREATE FUNCTION ensure_user(p_id uuid, p_email text, p_full_name text, p_password_hash text)
RETURNS uuid
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  INSERT INTO app_user (id, email, full_name, password_hash, created_at)
  VALUES (p_id, lower(p_email), p_full_name, p_password_hash, now())
  ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email
  RETURNING id
$$;
"""

# Policies for the runtime role; the owner (migrations, CLI, worker) passes everything.
# ``auth`` is the token endpoint's context: it must find a user or client before any
# organisation is known. ``platform`` is set only for a verified platform administrator, who
# manages every organisation's members and clients (staff, never beneficiaries).
_POLICIES = {
    "app_user": (
        "id = guichet_principal() OR guichet_context() IN ('auth', 'platform') "
        "OR id = ANY (ARRAY(SELECT user_id FROM membership WHERE organisation_id = guichet_org()))"
    ),
    "membership": (
        "organisation_id = guichet_org() OR user_id = guichet_principal() "
        "OR guichet_context() IN ('auth', 'platform')"
    ),
    "api_client": "organisation_id = guichet_org() OR guichet_context() IN ('auth', 'platform')",
    "refresh_token": "guichet_context() = 'auth'",
    "convention": "guichet_org() IN (grantor_id, grantee_id)",
    "convention_event": "guichet_org() IN (grantor_id, grantee_id)",
}

_GRANTS = {
    "organisation": "SELECT, INSERT, UPDATE",
    "organisation_commune": "SELECT, INSERT, DELETE",
    "app_user": "SELECT, INSERT, UPDATE",
    "membership": "SELECT, INSERT, UPDATE, DELETE",
    "api_client": "SELECT, INSERT, UPDATE",
    "refresh_token": "SELECT, INSERT, UPDATE",
    "convention": "SELECT, INSERT, UPDATE",
    "convention_event": "SELECT, INSERT",
}


def _security() -> None:
    role = app_role()
    for statement in _CONTEXT_FUNCTIONS.strip().split(";"):
        if statement.strip():
            op.execute(statement)
    op.execute(_HOLDINGS_FUNCTION)
    op.execute(_ENSURE_USER_FUNCTION)
    op.execute("REVOKE ALL ON FUNCTION ensure_user(uuid, text, text, text) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION ensure_user(uuid, text, text, text) TO {role}")
    op.execute("REVOKE ALL ON FUNCTION convention_holdings(uuid, text, text, date) FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION convention_holdings(uuid, text, text, date) TO {role}")
    for table, privileges in _GRANTS.items():
        grant(table, privileges)
    for table, condition in _POLICIES.items():
        enable_rls(table)
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
        op.execute(
            f"CREATE POLICY runtime ON {table} TO {role} "
            f"USING ({condition}) WITH CHECK ({condition})"
        )
