"""People: beneficiaries, care teams, the audit trail; their row-level security and the
discovery functions that expose previews, never records.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(200), nullable=True),
        sa.Column("action", sa.String(60), nullable=False),
        sa.Column("resource_type", sa.String(40), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=True),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=True),
        sa.Column("purpose", sa.String(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_audit_entry_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entry")),
    )
    op.create_index(
        "ix_audit_entry_beneficiary_id_at", "audit_entry", ["beneficiary_id", "at"], unique=False
    )
    op.create_index(
        "ix_audit_entry_organisation_id_id", "audit_entry", ["organisation_id", "id"], unique=False
    )
    op.create_table(
        "beneficiary",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("birth_name", sa.String(200), nullable=False),
        sa.Column("usage_name", sa.String(200), nullable=True),
        sa.Column("first_names", sa.String(200), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("birth_place", sa.String(200), nullable=True),
        sa.Column("nir_cipher", sa.LargeBinary(), nullable=True),
        sa.Column("nir_hash", sa.String(64), nullable=True),
        sa.Column("nir_missing_reason", sa.String(200), nullable=True),
        sa.Column("commune_code", sa.String(5), nullable=True),
        sa.Column("domiciliation_organisation_id", sa.Uuid(), nullable=True),
        sa.Column("address", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("phone", sa.String(30), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("situation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("match_keys", postgresql.ARRAY(sa.String()), nullable=False),
        sa.Column("folded_names", sa.String(), nullable=False),
        sa.Column("last_contact_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("merged_into_id", sa.Uuid(), nullable=True),
        sa.Column("created_by_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["commune.code"], name=op.f("fk_beneficiary_commune_code_commune")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_beneficiary_created_by_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["domiciliation_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_beneficiary_domiciliation_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["beneficiary.id"],
            name=op.f("fk_beneficiary_merged_into_id_beneficiary"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_beneficiary")),
    )
    op.create_index("ix_beneficiary_birth_date", "beneficiary", ["birth_date"], unique=False)
    op.create_index("ix_beneficiary_nir_hash", "beneficiary", ["nir_hash"], unique=False)
    op.create_table(
        "care_team_membership",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("competence", sa.String(40), nullable=False),
        sa.Column("referent_user_id", sa.Uuid(), nullable=True),
        sa.Column("team_role", sa.String(20), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("justification", sa.String(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_care_team_membership_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["competence"],
            ["competence.code"],
            name=op.f("fk_care_team_membership_competence_competence"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_care_team_membership_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["referent_user_id"],
            ["app_user.id"],
            name=op.f("fk_care_team_membership_referent_user_id_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_team_membership")),
    )
    op.create_index(
        op.f("ix_care_team_membership_beneficiary_id"),
        "care_team_membership",
        ["beneficiary_id"],
        unique=False,
    )
    op.create_index(
        "ix_care_team_membership_organisation_id_beneficiary_id",
        "care_team_membership",
        ["organisation_id", "beneficiary_id"],
        unique=False,
    )
    _security()


def downgrade() -> None:
    for fn in _FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS {fn}")
    op.drop_index(
        "ix_care_team_membership_organisation_id_beneficiary_id", table_name="care_team_membership"
    )
    op.drop_index(op.f("ix_care_team_membership_beneficiary_id"), table_name="care_team_membership")
    op.drop_table("care_team_membership")
    op.drop_index("ix_beneficiary_nir_hash", table_name="beneficiary")
    op.drop_index("ix_beneficiary_birth_date", table_name="beneficiary")
    op.drop_table("beneficiary")
    op.drop_index("ix_audit_entry_organisation_id_id", table_name="audit_entry")
    op.drop_index("ix_audit_entry_beneficiary_id_at", table_name="audit_entry")
    op.drop_table("audit_entry")


# Persons the acting organisation follows now. SECURITY DEFINER so the care-team policy can
# use it without recursing into itself; policies read it as ``= ANY (ARRAY(SELECT …))`` so
# it runs once per statement, not once per row.
_ATTACHED = """
CREATE FUNCTION guichet_attached() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT DISTINCT beneficiary_id
  FROM care_team_membership
  WHERE organisation_id = guichet_org() AND ended_at IS NULL
$$
"""

# Discovery without access (domain.md §6): the minimal preview of people with this NIR hash
# or born on this date, for duplicate detection and preview search. The caller filters by
# names and by its accueil territory; nothing beyond a preview ever leaves this function.
_CANDIDATES = """
CREATE FUNCTION person_candidates(p_nir_hash text, p_birth_date date)
RETURNS TABLE (id uuid, birth_name text, usage_name text, first_names text, birth_date date,
               commune_code text, match_keys text[], folded_names text, nir_match boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT b.id, b.birth_name::text, b.usage_name::text, b.first_names::text, b.birth_date,
         b.commune_code::text, b.match_keys::text[], b.folded_names::text,
         (p_nir_hash IS NOT NULL AND b.nir_hash = p_nir_hash)
  FROM beneficiary b
  WHERE b.merged_into_id IS NULL
    AND ((p_nir_hash IS NOT NULL AND b.nir_hash = p_nir_hash) OR b.birth_date = p_birth_date)
  LIMIT 200
$$
"""

# Which partners follow these people, for previews; sensitive competences never show.
_FOLLOWERS = """
CREATE FUNCTION person_followers(p_ids uuid[])
RETURNS TABLE (beneficiary_id uuid, organisation_id uuid, organisation_name text,
               competence text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT m.beneficiary_id, o.id, o.name::text, m.competence::text
  FROM care_team_membership m
  JOIN organisation o ON o.id = m.organisation_id
  JOIN competence k ON k.code = m.competence
  WHERE m.beneficiary_id = ANY (p_ids) AND m.ended_at IS NULL AND NOT k.sensitive
$$
"""

# Where a person lives, and nothing else: a legal holder joining the care team directly
# (break-glass) must check it holds the competence there before it can see anything.
_LOCATOR = """
CREATE FUNCTION person_locator(p_id uuid) RETURNS TABLE (commune_code text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT b.commune_code::text FROM beneficiary b WHERE b.id = p_id AND b.merged_into_id IS NULL
$$
"""

_ATTACHED_TO = "{column} = ANY (ARRAY(SELECT guichet_attached()))"


_FUNCTIONS = (
    "guichet_attached()",
    "person_candidates(text, date)",
    "person_followers(uuid[])",
    "person_locator(uuid)",
)


def _security() -> None:
    role = app_role()
    for statement in (_ATTACHED, _CANDIDATES, _FOLLOWERS, _LOCATOR):
        op.execute(statement)
    for signature in _FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    grant("beneficiary", "SELECT, INSERT, UPDATE")
    grant("care_team_membership", "SELECT, INSERT, UPDATE")
    # append-only: the runtime role can neither update nor delete an audit entry
    grant("audit_entry", "SELECT, INSERT")
    for table in ("beneficiary", "care_team_membership", "audit_entry"):
        enable_rls(table)
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )

    attached = _ATTACHED_TO.format(column="id")
    op.execute(f"CREATE POLICY runtime_read ON beneficiary FOR SELECT TO {role} USING ({attached})")
    op.execute(
        f"CREATE POLICY runtime_update ON beneficiary FOR UPDATE TO {role} USING ({attached})"
    )
    op.execute(
        f"CREATE POLICY runtime_create ON beneficiary FOR INSERT TO {role} "
        "WITH CHECK (created_by_organisation_id = guichet_org())"
    )
    team = _ATTACHED_TO.format(column="beneficiary_id")
    op.execute(
        f"CREATE POLICY runtime_read ON care_team_membership FOR SELECT TO {role} USING ({team})"
    )
    op.execute(
        f"CREATE POLICY runtime_join ON care_team_membership FOR INSERT TO {role} "
        "WITH CHECK (organisation_id = guichet_org())"
    )
    op.execute(
        f"CREATE POLICY runtime_leave ON care_team_membership FOR UPDATE TO {role} "
        "USING (organisation_id = guichet_org())"
    )
    op.execute(
        f"CREATE POLICY runtime_read ON audit_entry FOR SELECT TO {role} "
        f"USING (organisation_id = guichet_org() OR {team})"
    )
    op.execute(
        f"CREATE POLICY runtime_write ON audit_entry FOR INSERT TO {role} "
        "WITH CHECK (organisation_id = guichet_org())"
    )
