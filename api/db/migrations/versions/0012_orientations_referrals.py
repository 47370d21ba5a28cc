"""Orientations and referrals between partners.

A party of an open referral or orientation is attached to the person (domain.md §7) through a
care-team membership that names its origin (``origin_id``) and the categories it grants; the
membership ends with the referral or orientation. The sender may open that membership for the
recipient, and either party may end it, only through the checks below.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _instant(name: str, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tables() -> None:
    op.add_column("care_team_membership", sa.Column("origin_id", sa.Uuid(), nullable=True))
    op.create_index(
        "ix_care_team_membership_origin_id", "care_team_membership", ["origin_id"], unique=False
    )
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sender_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("sender_user_id", sa.Uuid(), nullable=True),
        sa.Column("sender_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(length=200), nullable=True),
        sa.Column("recipient_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("redirected_by_organisation_id", sa.Uuid(), nullable=True),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=True),
        sa.Column("inline_identity", postgresql.JSONB(), nullable=True),
        sa.Column("commune_code", sa.String(length=5), nullable=False),
        sa.Column("competence", sa.String(length=40), nullable=False),
        sa.Column("need_code", sa.String(length=60), nullable=False),
        sa.Column("need_description", sa.String(), nullable=False),
        sa.Column("message", sa.String(), nullable=True),
        sa.Column("shared_categories", postgresql.ARRAY(sa.String(length=20)), nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("response_due_on", sa.Date(), nullable=False),
        sa.Column("paused_on", sa.Date(), nullable=True),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("consent_override_reason", sa.String(length=30), nullable=True),
        sa.Column("consent_override_justification", sa.String(), nullable=True),
        sa.Column("consent_declared", postgresql.JSONB(), nullable=True),
        sa.Column("previous_referral_id", sa.Uuid(), nullable=True),
        sa.Column("parent_referral_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _instant("created_at"),
        _instant("updated_at"),
        _instant("closed_at", nullable=True),
        sa.ForeignKeyConstraint(["beneficiary_id"], ["beneficiary.id"]),
        sa.ForeignKeyConstraint(["commune_code"], ["commune.code"]),
        sa.ForeignKeyConstraint(["competence"], ["competence.code"]),
        sa.ForeignKeyConstraint(["parent_referral_id"], ["referral.id"]),
        sa.ForeignKeyConstraint(["previous_referral_id"], ["referral.id"]),
        sa.ForeignKeyConstraint(["recipient_organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["redirected_by_organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["sender_organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["sender_user_id"], ["app_user.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_referral_beneficiary_id", "referral", ["beneficiary_id"])
    op.create_index("ix_referral_consent_id", "referral", ["consent_id"])
    op.create_index(
        "ix_referral_inbox", "referral", ["recipient_organisation_id", "created_at", "id"]
    )
    op.create_index(
        "ix_referral_outbox", "referral", ["sender_organisation_id", "created_at", "id"]
    )
    op.create_index(
        "ix_referral_due",
        "referral",
        ["response_due_on"],
        postgresql_where=sa.text("status IN ('sent', 'acknowledged')"),
    )
    op.create_table(
        "referral_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        _instant("at"),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(length=200), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("outcome_code", sa.String(length=40), nullable=True),
        sa.Column("comment", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["referral_id"], ["referral.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_referral_event_referral_id", "referral_event", ["referral_id"])
    op.create_table(
        "referral_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("referral_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("author_user_id", sa.Uuid(), nullable=True),
        sa.Column("author_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(length=200), nullable=True),
        sa.Column("body", sa.String(), nullable=False),
        _instant("created_at"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["referral_id"], ["referral.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_referral_message_referral_id", "referral_message", ["referral_id"])
    op.create_table(
        "orientation",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("competence", sa.String(length=40), nullable=False),
        sa.Column("issuer_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("issuer_user_id", sa.Uuid(), nullable=True),
        sa.Column("issuer_client_id", sa.Uuid(), nullable=True),
        sa.Column("target_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=True),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("referent_user_id", sa.Uuid(), nullable=True),
        sa.Column("previous_orientation_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _instant("created_at"),
        _instant("updated_at"),
        sa.ForeignKeyConstraint(["beneficiary_id"], ["beneficiary.id"]),
        sa.ForeignKeyConstraint(["competence"], ["competence.code"]),
        sa.ForeignKeyConstraint(["issuer_organisation_id"], ["organisation.id"]),
        sa.ForeignKeyConstraint(["issuer_user_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["previous_orientation_id"], ["orientation.id"]),
        sa.ForeignKeyConstraint(["referent_user_id"], ["app_user.id"]),
        sa.ForeignKeyConstraint(["target_organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_orientation_beneficiary_id", "orientation", ["beneficiary_id"])
    op.create_index(
        "ix_orientation_inbox", "orientation", ["target_organisation_id", "created_at", "id"]
    )
    op.create_index(
        "ix_orientation_outbox", "orientation", ["issuer_organisation_id", "created_at", "id"]
    )
    op.create_index(
        "uq_orientation_active",
        "orientation",
        ["beneficiary_id", "competence"],
        unique=True,
        postgresql_where=sa.text("status = 'accepted'"),
    )
    op.create_table(
        "orientation_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("orientation_id", sa.Uuid(), nullable=False),
        _instant("at"),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(length=200), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("comment", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(["orientation_id"], ["orientation.id"]),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisation.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_orientation_event_orientation_id", "orientation_event", ["orientation_id"])


_FUNCTIONS = {
    # a party of the referral: sender, recipient, or the partner that redirected it
    "guichet_can_see_referral(uuid)": """
CREATE FUNCTION guichet_can_see_referral(p_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM referral WHERE id = p_id AND guichet_org() IN (
      sender_organisation_id, recipient_organisation_id, redirected_by_organisation_id)
  )
$$
""",
    # a party of the orientation, or a member of the person's care team (its history)
    "guichet_can_see_orientation(uuid)": """
CREATE FUNCTION guichet_can_see_orientation(p_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM orientation WHERE id = p_id AND (
      guichet_org() IN (issuer_organisation_id, target_organisation_id)
      OR guichet_is_attached(beneficiary_id))
  )
$$
""",
    # a référent named by an orientation must belong to the target organisation
    "guichet_is_member(uuid, uuid)": """
CREATE FUNCTION guichet_is_member(p_organisation uuid, p_user uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM membership WHERE organisation_id = p_organisation AND user_id = p_user
  )
$$
""",
    # whether the caller may open a membership for ``p_organisation`` coming from ``p_origin``:
    # the sender (or redirecting partner) for the recipient, the issuer for the target
    "guichet_origin_grants(uuid, uuid)": """
CREATE FUNCTION guichet_origin_grants(p_origin uuid, p_organisation uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM referral WHERE id = p_origin AND recipient_organisation_id = p_organisation
      AND guichet_org() IN (sender_organisation_id, redirected_by_organisation_id)
  ) OR EXISTS (
    SELECT 1 FROM orientation WHERE id = p_origin AND target_organisation_id = p_organisation
      AND issuer_organisation_id = guichet_org()
  )
$$
""",
    # ends the memberships a referral or orientation gave, for a party of it (or for the
    # care team when a consent is withdrawn or a réorientation ends the previous one)
    "end_origin_memberships(uuid, text, timestamptz)": """
CREATE FUNCTION end_origin_memberships(p_origin uuid, p_reason text, p_at timestamptz)
RETURNS integer
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  WITH ended AS (
    UPDATE care_team_membership SET ended_at = p_at, end_reason = p_reason
    WHERE origin_id = p_origin AND ended_at IS NULL
      AND (guichet_can_see_referral(p_origin) OR guichet_can_see_orientation(p_origin))
    RETURNING 1
  )
  SELECT count(*)::integer FROM ended
$$
""",
    # referrals a withdrawn consent covered, for a member of the person's care team
    "referrals_for_consent(uuid)": """
CREATE FUNCTION referrals_for_consent(p_consent uuid)
RETURNS TABLE (id uuid, status varchar, beneficiary_id uuid, sender_organisation_id uuid,
               recipient_organisation_id uuid)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT r.id, r.status, r.beneficiary_id, r.sender_organisation_id, r.recipient_organisation_id
  FROM referral r
  WHERE r.consent_id = p_consent AND r.beneficiary_id IS NOT NULL
    AND guichet_is_attached(r.beneficiary_id)
$$
""",
    # the service's own transition of a referral it may not otherwise update (consent
    # withdrawal recorded by a care-team member who is not a party); only from ``p_from``
    "referral_system_transition(uuid, text, text, text, text, timestamptz)": """
CREATE FUNCTION referral_system_transition(
  p_id uuid, p_from text, p_to text, p_reason_code text, p_comment text, p_at timestamptz)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  UPDATE referral SET status = p_to, version = version + 1, updated_at = p_at, closed_at = p_at
  WHERE id = p_id AND status = p_from
    AND (guichet_can_see_referral(p_id) OR guichet_is_attached(beneficiary_id));
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  INSERT INTO referral_event (referral_id, at, from_status, to_status, organisation_id,
                              actor_user_id, reason_code, comment)
  VALUES (p_id, p_at, p_from, p_to, guichet_org(), guichet_principal(), p_reason_code,
          p_comment);
  UPDATE care_team_membership SET ended_at = p_at, end_reason = p_to
  WHERE origin_id = p_id AND ended_at IS NULL;
  RETURN true;
END
$$
""",
}

_PARTY = (
    "guichet_org() IN (sender_organisation_id, recipient_organisation_id, "
    "redirected_by_organisation_id)"
)


def _security() -> None:
    role = app_role()
    for statement in _FUNCTIONS.values():
        op.execute(statement)
    for signature in _FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    grant("referral", "SELECT, INSERT, UPDATE")
    grant("referral_event", "SELECT, INSERT")
    grant("referral_message", "SELECT, INSERT")
    grant("orientation", "SELECT, INSERT, UPDATE")
    grant("orientation_event", "SELECT, INSERT")
    for table in ("referral", "referral_event", "referral_message", "orientation"):
        enable_rls(table)
    enable_rls("orientation_event")
    for table in ("referral", "referral_event", "referral_message", "orientation"):
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
    op.execute(
        "CREATE POLICY owner_all ON orientation_event TO CURRENT_USER USING (true) "
        "WITH CHECK (true)"
    )
    policies = [
        ("referral", "runtime_read", "SELECT", f"USING ({_PARTY})"),
        (
            "referral",
            "runtime_send",
            "INSERT",
            "WITH CHECK (guichet_org() IN (sender_organisation_id, redirected_by_organisation_id))",
        ),
        ("referral", "runtime_update", "UPDATE", f"USING ({_PARTY})"),
        (
            "referral_event",
            "runtime_read",
            "SELECT",
            "USING (guichet_can_see_referral(referral_id))",
        ),
        (
            "referral_event",
            "runtime_write",
            "INSERT",
            "WITH CHECK (organisation_id = guichet_org() "
            "AND guichet_can_see_referral(referral_id))",
        ),
        (
            "referral_message",
            "runtime_read",
            "SELECT",
            "USING (guichet_can_see_referral(referral_id))",
        ),
        (
            "referral_message",
            "runtime_write",
            "INSERT",
            "WITH CHECK (organisation_id = guichet_org() "
            "AND guichet_can_see_referral(referral_id))",
        ),
        (
            "orientation",
            "runtime_read",
            "SELECT",
            "USING (guichet_org() IN (issuer_organisation_id, target_organisation_id) "
            "OR guichet_is_attached(beneficiary_id))",
        ),
        (
            "orientation",
            "runtime_issue",
            "INSERT",
            "WITH CHECK (issuer_organisation_id = guichet_org())",
        ),
        # the care team may end the previous orientation when a new one is accepted
        (
            "orientation",
            "runtime_update",
            "UPDATE",
            "USING (guichet_org() IN (issuer_organisation_id, target_organisation_id) "
            "OR guichet_is_attached(beneficiary_id))",
        ),
        (
            "orientation_event",
            "runtime_read",
            "SELECT",
            "USING (guichet_can_see_orientation(orientation_id))",
        ),
        (
            "orientation_event",
            "runtime_write",
            "INSERT",
            "WITH CHECK (organisation_id = guichet_org() "
            "AND guichet_can_see_orientation(orientation_id))",
        ),
    ]
    for table, name, command, clause in policies:
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO {role} {clause}")
    # the sender opens the recipient's membership (what the referral shares), the issuer the
    # target's; everything else as before
    op.execute("DROP POLICY runtime_join ON care_team_membership")
    op.execute(
        f"CREATE POLICY runtime_join ON care_team_membership FOR INSERT TO {role} "
        "WITH CHECK (organisation_id = guichet_org() "
        "OR (source = 'access_request' AND guichet_is_attached(beneficiary_id)) "
        "OR (origin_id IS NOT NULL AND guichet_origin_grants(origin_id, organisation_id)))"
    )


def upgrade() -> None:
    _tables()
    _security()


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
