"""Legal-aid dossiers and their events.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dossier",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("prestation", sa.String(40), nullable=False),
        sa.Column("instructing_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("deciding_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("instruction", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("instruction_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=True),
        sa.Column("start_on", sa.Date(), nullable=True),
        sa.Column("end_on", sa.Date(), nullable=True),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("decision_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_dossier_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["prestation"], ["competence.code"], name=op.f("fk_dossier_prestation_competence")
        ),
        sa.ForeignKeyConstraint(
            ["instructing_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_dossier_instructing_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["deciding_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_dossier_deciding_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier")),
    )
    op.create_index(
        "ix_dossier_beneficiary_id_prestation", "dossier", ["beneficiary_id", "prestation"]
    )
    op.create_index(
        "ix_dossier_instructing_organisation_id", "dossier", ["instructing_organisation_id"]
    )
    op.create_index("ix_dossier_deciding_organisation_id", "dossier", ["deciding_organisation_id"])
    op.create_table(
        "dossier_external_ref",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("system", sa.String(60), nullable=False),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"], ["dossier.id"], name=op.f("fk_dossier_external_ref_dossier_id_dossier")
        ),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_dossier_external_ref_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_dossier_external_ref_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_external_ref")),
        sa.UniqueConstraint(
            "organisation_id",
            "system",
            "external_id",
            name=op.f("uq_dossier_external_ref_organisation_id_system_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_dossier_external_ref_dossier_id"), "dossier_external_ref", ["dossier_id"]
    )
    op.create_table(
        "dossier_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("dossier_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(200), nullable=True),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("comment", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["dossier_id"], ["dossier.id"], name=op.f("fk_dossier_event_dossier_id_dossier")
        ),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_dossier_event_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_dossier_event_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_event")),
    )
    op.create_index(op.f("ix_dossier_event_dossier_id"), "dossier_event", ["dossier_id"])
    _security()


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")


# Whether the acting organisation may see a dossier (domain.md §7, §9): it follows the person
# for the dossier's prestation (an active care-team membership for that competence) and holds
# the prestation on the person's commune now, by law or by a convention in force. The change
# feed and the webhook worker call it by this name to re-check what a partner may see now;
# the policies call it per row. Role and data categories are the application's part.
# plpgsql, one primary-key lookup after the other: a single SQL statement let the planner
# hash-join the whole beneficiary table for each row when statistics were stale (2 ms/row).
_CAN_SEE = """
CREATE FUNCTION guichet_can_see_dossier(p_dossier uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER COST 500 SET search_path = public, pg_temp AS $$
DECLARE
  v_org uuid := guichet_org();
  v_person uuid;
  v_prestation text;
  v_commune text;
BEGIN
  IF v_org IS NULL OR p_dossier IS NULL THEN
    RETURN false;
  END IF;
  SELECT d.beneficiary_id, d.prestation INTO v_person, v_prestation
  FROM dossier d WHERE d.id = p_dossier;
  IF v_person IS NULL THEN
    RETURN false;
  END IF;
  IF NOT EXISTS (
    SELECT 1 FROM care_team_membership m
    WHERE m.organisation_id = v_org AND m.beneficiary_id = v_person
      AND m.competence = v_prestation AND m.ended_at IS NULL
  ) THEN
    RETURN false;
  END IF;
  SELECT b.commune_code INTO v_commune FROM beneficiary b WHERE b.id = v_person;
  IF v_commune IS NULL THEN
    RETURN false;
  END IF;
  RETURN EXISTS (
      SELECT 1
      FROM organisation o
      JOIN competence k ON k.code = v_prestation
      JOIN organisation_commune oc ON oc.organisation_id = o.id AND oc.commune_code = v_commune
      WHERE o.id = v_org AND o.kind = ANY (k.legal_holder_kinds)
    )
    OR EXISTS (
      SELECT 1
      FROM convention_holdings(
        v_org, v_prestation, v_commune, (now() AT TIME ZONE 'Europe/Paris')::date
      )
    );
END
$$
"""

# Submitting a dossier brings the deciding organisation into the person's care team for the
# prestation: the instructing organisation may write that membership, and only that one.
_DECIDER_JOINS = """
CREATE FUNCTION guichet_dossier_decider_joins(p_beneficiary uuid, p_org uuid, p_competence text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM dossier d
    WHERE d.beneficiary_id = p_beneficiary AND d.deciding_organisation_id = p_org
      AND d.prestation = p_competence AND d.instructing_organisation_id = guichet_org()
      AND d.status <> 'draft'
  )
$$
"""

# Identity matching of a sync batch in one statement (domain.md §6 "Identity matching"): for
# each item, the person with this id, the people with this NIR hash (anywhere: a NIR is never
# duplicated), and the people born that day who live on the caller's communes. Like
# person_candidates it returns what matching needs, never a record.
_MATCHES = """
CREATE FUNCTION dossier_person_matches(
  p_index int[], p_ids uuid[], p_nir_hashes text[], p_birth_dates date[], p_communes text[]
)
RETURNS TABLE (idx int, id uuid, commune_code text, match_keys text[], folded_names text,
               by_id boolean, nir_match boolean, has_nir boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT x.idx, b.id, b.commune_code::text, b.match_keys::text[], b.folded_names::text,
         coalesce(b.id = x.pid, false), coalesce(b.nir_hash = x.nir, false),
         b.nir_hash IS NOT NULL
  FROM unnest(p_index, p_ids, p_nir_hashes, p_birth_dates) AS x(idx, pid, nir, birth_date)
  CROSS JOIN LATERAL (
    SELECT c.id, c.commune_code, c.match_keys, c.folded_names, c.nir_hash
    FROM beneficiary c
    WHERE c.merged_into_id IS NULL
      AND (c.id = x.pid OR c.nir_hash = x.nir
           OR (c.birth_date = x.birth_date AND c.commune_code = ANY (p_communes)))
    LIMIT 50
  ) b
$$
"""

_FUNCTIONS = (
    ("guichet_can_see_dossier(uuid)", _CAN_SEE),
    ("guichet_dossier_decider_joins(uuid, uuid, text)", _DECIDER_JOINS),
    ("dossier_person_matches(int[], uuid[], text[], date[], text[])", _MATCHES),
)

_CAN_SEE_ROW = "guichet_can_see_dossier({column})"
_ATTACHED = "guichet_is_attached(beneficiary_id)"
# the cheap per-row probe first: most rows of a list are other partners' people
_VISIBLE = f"{_ATTACHED} AND {_CAN_SEE_ROW.format(column='id')}"

# (table, policy, command, clause)
_POLICIES = (
    ("dossier", "runtime_read", "SELECT", f"USING ({_VISIBLE})"),
    ("dossier", "runtime_update", "UPDATE", f"USING ({_VISIBLE})"),
    (
        "dossier",
        "runtime_create",
        "INSERT",
        f"WITH CHECK (instructing_organisation_id = guichet_org() AND {_ATTACHED})",
    ),
    (
        "dossier_external_ref",
        "runtime_read",
        "SELECT",
        f"USING (organisation_id = guichet_org() OR {_CAN_SEE_ROW.format(column='dossier_id')})",
    ),
    (
        "dossier_external_ref",
        "runtime_write",
        "INSERT",
        f"WITH CHECK (organisation_id = guichet_org() AND {_ATTACHED})",
    ),
    (
        "dossier_external_ref",
        "runtime_remove",
        "DELETE",
        "USING (organisation_id = guichet_org())",
    ),
    (
        "dossier_event",
        "runtime_read",
        "SELECT",
        f"USING ({_ATTACHED} AND {_CAN_SEE_ROW.format(column='dossier_id')})",
    ),
    (
        "dossier_event",
        "runtime_write",
        "INSERT",
        f"WITH CHECK (organisation_id = guichet_org() AND {_ATTACHED})",
    ),
    (
        "care_team_membership",
        "runtime_join_decider",
        "INSERT",
        "WITH CHECK (source = 'dossier' AND "
        "guichet_dossier_decider_joins(beneficiary_id, organisation_id, competence))",
    ),
)


def _security() -> None:
    role = app_role()
    for signature, statement in _FUNCTIONS:
        op.execute(statement)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    grant("dossier", "SELECT, INSERT, UPDATE")
    grant("dossier_external_ref", "SELECT, INSERT, DELETE")
    # events are immutable
    grant("dossier_event", "SELECT, INSERT")
    for table in ("dossier", "dossier_external_ref", "dossier_event"):
        enable_rls(table)
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
    for table, name, command, clause in _POLICIES:
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO {role} {clause}")
