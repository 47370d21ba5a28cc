"""Aides facultatives: règlements, requests, assessments, payments, envelopes, commissions.

Tables of api/domain/aids/tables.py, their row-level security (forced; the runtime role owns
nothing), the definer functions the aid rule needs, and the change feed taught the two new
record types.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _tables()
    _security()


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")


def _tables() -> None:
    op.create_table(
        "aid_commission",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("meeting_on", sa.Date(), nullable=False),
        sa.Column("body", sa.String(40), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_commission_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_commission")),
    )
    op.create_index(
        op.f("ix_aid_commission_organisation_id"),
        "aid_commission",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "aid_envelope",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(20), nullable=True),
        sa.Column("aid_code", sa.String(60), nullable=True),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_envelope_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_envelope")),
    )
    op.create_index(
        "ix_aid_envelope_organisation_id_year",
        "aid_envelope",
        ["organisation_id", "year"],
        unique=False,
    )
    op.create_table(
        "aid_rules",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("max_per_household_12_months", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_rules_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_rules")),
    )
    op.create_index(
        "ix_aid_rules_organisation_id_valid_from",
        "aid_rules",
        ["organisation_id", "valid_from"],
        unique=False,
    )
    op.create_table(
        "aid_voucher_counter",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_voucher_counter_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", "year", name=op.f("pk_aid_voucher_counter")),
    )
    op.create_table(
        "aid_type",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rules_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(60), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("competence", sa.String(40), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("forms", postgresql.ARRAY(sa.String(30)), nullable=False),
        sa.Column("max_per_request", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("max_per_household_12_months", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("max_requests_12_months", sa.Integer(), nullable=True),
        sa.Column("reste_a_vivre_max", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("residence_months_min", sa.Integer(), nullable=True),
        sa.Column("communes", postgresql.ARRAY(sa.String(5)), nullable=False),
        sa.Column("decision", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("emergency_up_to", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.ForeignKeyConstraint(
            ["competence"], ["competence.code"], name=op.f("fk_aid_type_competence_competence")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_type_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["rules_id"], ["aid_rules.id"], name=op.f("fk_aid_type_rules_id_aid_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_type")),
        sa.UniqueConstraint("rules_id", "code", name=op.f("uq_aid_type_rules_id_code")),
    )
    op.create_index(
        "ix_aid_type_communes", "aid_type", ["communes"], unique=False, postgresql_using="gin"
    )
    op.create_table(
        "aid_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("grantor_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("instructing_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("rules_id", sa.Uuid(), nullable=False),
        sa.Column("aid_type_id", sa.Uuid(), nullable=False),
        sa.Column("aid_code", sa.String(60), nullable=False),
        sa.Column("competence", sa.String(40), nullable=False),
        sa.Column("category", sa.String(20), nullable=False),
        sa.Column("form", sa.String(30), nullable=False),
        sa.Column("amount_asked", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("amount_granted", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("payee", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("required_level", sa.String(20), nullable=True),
        sa.Column("decision_level", sa.String(20), nullable=True),
        sa.Column("assessment", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("budget_snapshot", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("reste_a_vivre", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("consumption_units", sa.Numeric(precision=5, scale=2), nullable=True),
        sa.Column("household_size", sa.Integer(), nullable=True),
        sa.Column("refusal_reason", sa.String(30), nullable=True),
        sa.Column("derogation", sa.Boolean(), nullable=False),
        sa.Column("derogation_justification", sa.String(), nullable=True),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("commission_id", sa.Uuid(), nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["aid_type_id"], ["aid_type.id"], name=op.f("fk_aid_request_aid_type_id_aid_type")
        ),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_aid_request_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["commission_id"],
            ["aid_commission.id"],
            name=op.f("fk_aid_request_commission_id_aid_commission"),
        ),
        sa.ForeignKeyConstraint(
            ["competence"], ["competence.code"], name=op.f("fk_aid_request_competence_competence")
        ),
        sa.ForeignKeyConstraint(
            ["grantor_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_request_grantor_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["instructing_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_request_instructing_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["rules_id"], ["aid_rules.id"], name=op.f("fk_aid_request_rules_id_aid_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_request")),
    )
    op.create_index(
        "ix_aid_request_beneficiary_id", "aid_request", ["beneficiary_id"], unique=False
    )
    op.create_index(
        "ix_aid_request_grantor_organisation_id_status",
        "aid_request",
        ["grantor_organisation_id", "status"],
        unique=False,
    )
    op.create_index(
        "ix_aid_request_instructing_organisation_id",
        "aid_request",
        ["instructing_organisation_id"],
        unique=False,
    )
    op.create_table(
        "aid_payment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("grantor_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("form", sa.String(30), nullable=False),
        sa.Column("payee", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("voucher_number", sa.String(20), nullable=True),
        sa.Column("voucher_year", sa.Integer(), nullable=True),
        sa.Column("voucher_sequence", sa.Integer(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["grantor_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_payment_grantor_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["aid_request.id"], name=op.f("fk_aid_payment_request_id_aid_request")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_payment")),
        sa.UniqueConstraint(
            "grantor_organisation_id",
            "voucher_year",
            "voucher_sequence",
            name=op.f("uq_aid_payment_grantor_organisation_id_voucher_year_voucher_sequence"),
        ),
    )
    op.create_index(
        "ix_aid_payment_grantor_organisation_id_paid_on",
        "aid_payment",
        ["grantor_organisation_id", "paid_on"],
        unique=False,
    )
    op.create_index(op.f("ix_aid_payment_request_id"), "aid_payment", ["request_id"], unique=False)
    op.create_table(
        "aid_request_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=True),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("actor_user_id", sa.Uuid(), nullable=True),
        sa.Column("actor_client_id", sa.Uuid(), nullable=True),
        sa.Column("acting_agent", sa.String(200), nullable=True),
        sa.Column("reason_code", sa.String(30), nullable=True),
        sa.Column("comment", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_aid_request_event_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_aid_request_event_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["aid_request.id"],
            name=op.f("fk_aid_request_event_request_id_aid_request"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_aid_request_event")),
    )
    op.create_index(
        op.f("ix_aid_request_event_request_id"), "aid_request_event", ["request_id"], unique=False
    )
    op.drop_index(op.f("ix_commune_search_words"), table_name="commune", postgresql_using="gin")


# The access rule (domain.md §7) for aid requests, asked of its one SQL home: an aid request is
# a record of its competence about a person, category ``aids``, exactly as a dossier is one of
# its prestation (guichet_can_see_dossier asks the same question). The policies and the feed
# below only call this name.
_AIDS_CAN_SEE = """
CREATE FUNCTION guichet_aids_can_see(p_person uuid, p_competence text) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT guichet_may_see(p_person, p_competence, 'aids', NULL)
$$
"""

# Per request id, for the event and payment policies and the change feed.
_CAN_SEE_REQUEST = """
CREATE FUNCTION guichet_can_see_aid_request(p_request uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_person uuid;
  v_competence text;
BEGIN
  SELECT r.beneficiary_id, r.competence INTO v_person, v_competence
  FROM aid_request r WHERE r.id = p_request;
  RETURN guichet_aids_can_see(v_person, v_competence);
END
$$
"""

# Submitting a request brings the grantor into the person's care team for the aid's
# competence: the instructing organisation may write that membership, and only that one.
_GRANTOR_JOINS = """
CREATE FUNCTION guichet_aid_grantor_joins(p_beneficiary uuid, p_org uuid, p_competence text)
RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT EXISTS (
    SELECT 1 FROM aid_request r
    WHERE r.beneficiary_id = p_beneficiary AND r.grantor_organisation_id = p_org
      AND r.competence = p_competence AND r.instructing_organisation_id = guichet_org()
      AND r.status <> 'draft'
  )
$$
"""

# The 12-month history of a household's aids from one grantor, as amounts only: a delegate
# instructing a request must see what the grantor granted the household on other partners'
# requests, without seeing those requests. Asked only by an organisation attached to the
# person; the household is read here, never passed in.
_HISTORY = """
CREATE FUNCTION guichet_aid_history(p_person uuid, p_grantor uuid, p_since date)
RETURNS TABLE (aid_code text, requests bigint, amount numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT r.aid_code::text, count(*),
         coalesce(sum(r.amount_granted - coalesce((
           SELECT sum(p.amount) FROM aid_payment p
           WHERE p.request_id = r.id AND p.cancelled_at IS NOT NULL), 0)), 0)
  FROM aid_request r
  WHERE guichet_is_attached(p_person)
    AND r.grantor_organisation_id = p_grantor
    AND r.status IN ('granted', 'paid')
    AND r.decided_on >= p_since
    AND r.beneficiary_id = ANY (ARRAY(
      SELECT p_person
      UNION
      SELECT h.member_beneficiary_id FROM household_member h
      WHERE h.beneficiary_id = p_person AND h.member_beneficiary_id IS NOT NULL))
  GROUP BY r.aid_code
$$
"""

# A grantor's money of one year, per request granted that year, amounts only: its envelopes
# must count every request it granted, including those of people it no longer follows.
_MONEY = """
CREATE FUNCTION guichet_aid_money(p_year int)
RETURNS TABLE (aid_code text, category text, granted numeric, paid numeric, cancelled numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT r.aid_code::text, r.category::text, r.amount_granted,
         coalesce(sum(p.amount) FILTER (WHERE p.cancelled_at IS NULL), 0),
         coalesce(sum(p.amount) FILTER (WHERE p.cancelled_at IS NOT NULL), 0)
  FROM aid_request r
  LEFT JOIN aid_payment p ON p.request_id = r.id
  WHERE r.grantor_organisation_id = guichet_org()
    AND r.status IN ('granted', 'paid')
    AND r.decided_on BETWEEN make_date(p_year, 1, 1) AND make_date(p_year, 12, 31)
  GROUP BY r.id
$$
"""

_FUNCTIONS = (
    ("guichet_aids_can_see(uuid, text)", _AIDS_CAN_SEE),
    ("guichet_can_see_aid_request(uuid)", _CAN_SEE_REQUEST),
    ("guichet_aid_grantor_joins(uuid, uuid, text)", _GRANTOR_JOINS),
    ("guichet_aid_history(uuid, uuid, date)", _HISTORY),
    ("guichet_aid_money(int)", _MONEY),
)

_ATTACHED = "guichet_is_attached(beneficiary_id)"
# the cheap per-row probe first: most rows of a list are other partners' people
_VISIBLE = f"{_ATTACHED} AND guichet_aids_can_see(beneficiary_id, competence)"
_OWN = "organisation_id = guichet_org()"
_GRANTOR = "grantor_organisation_id = guichet_org()"

# (table, policy, command, clause)
_POLICIES = (
    ("aid_rules", "runtime_read", "SELECT", "USING (true)"),
    ("aid_rules", "runtime_publish", "INSERT", f"WITH CHECK ({_OWN})"),
    ("aid_type", "runtime_read", "SELECT", "USING (true)"),
    ("aid_type", "runtime_publish", "INSERT", f"WITH CHECK ({_OWN})"),
    ("aid_request", "runtime_read", "SELECT", f"USING ({_VISIBLE})"),
    ("aid_request", "runtime_update", "UPDATE", f"USING ({_VISIBLE})"),
    (
        "aid_request",
        "runtime_create",
        "INSERT",
        f"WITH CHECK (instructing_organisation_id = guichet_org() AND {_ATTACHED})",
    ),
    (
        "aid_request_event",
        "runtime_read",
        "SELECT",
        f"USING ({_ATTACHED} AND guichet_can_see_aid_request(request_id))",
    ),
    (
        "aid_request_event",
        "runtime_write",
        "INSERT",
        f"WITH CHECK ({_OWN} AND {_ATTACHED})",
    ),
    ("aid_payment", "runtime_read", "SELECT", f"USING ({_GRANTOR})"),
    (
        "aid_payment",
        "runtime_pay",
        "INSERT",
        f"WITH CHECK ({_GRANTOR} AND guichet_can_see_aid_request(request_id))",
    ),
    ("aid_payment", "runtime_cancel", "UPDATE", f"USING ({_GRANTOR})"),
    ("aid_voucher_counter", "runtime_all", "ALL", f"USING ({_OWN}) WITH CHECK ({_OWN})"),
    ("aid_envelope", "runtime_all", "ALL", f"USING ({_OWN}) WITH CHECK ({_OWN})"),
    ("aid_commission", "runtime_all", "ALL", f"USING ({_OWN}) WITH CHECK ({_OWN})"),
    (
        "care_team_membership",
        "runtime_join_aid_grantor",
        "INSERT",
        "WITH CHECK (source = 'aid_request' AND "
        "guichet_aid_grantor_joins(beneficiary_id, organisation_id, competence))",
    ),
)

_GRANTS = (
    ("aid_rules", "SELECT, INSERT"),
    ("aid_type", "SELECT, INSERT"),
    ("aid_request", "SELECT, INSERT, UPDATE"),
    # events are immutable
    ("aid_request_event", "SELECT, INSERT"),
    ("aid_payment", "SELECT, INSERT, UPDATE"),
    ("aid_voucher_counter", "SELECT, INSERT, UPDATE"),
    ("aid_envelope", "SELECT, INSERT, UPDATE, DELETE"),
    ("aid_commission", "SELECT, INSERT, UPDATE"),
)

# The change feed and the webhook worker ask guichet_can_see(type, id) before announcing
# anything. Its body is patched where it is defined today (whatever earlier migrations made
# of it) by adding the two aid types before its ELSE: the other branches stay as they are.
_FEED_BRANCHES = """    WHEN 'aid_request' THEN
      RETURN guichet_can_see_aid_request(p_id);
    WHEN 'aid_payment' THEN
      RETURN guichet_can_see_aid_request((SELECT p.request_id FROM aid_payment p
                                          WHERE p.id = p_id));
    ELSE"""


def _teach_the_feed() -> None:
    bind = op.get_bind()
    definition = bind.scalar(
        sa.text("SELECT pg_get_functiondef('guichet_can_see(text, uuid)'::regprocedure)")
    )
    assert isinstance(definition, str)
    marker = "    ELSE\n      RETURN false;"
    if marker not in definition:
        raise RuntimeError("guichet_can_see no longer ends its CASE with ELSE RETURN false")
    op.execute(definition.replace(marker, _FEED_BRANCHES + "\n      RETURN false;", 1))


def _security() -> None:
    role = app_role()
    for signature, statement in _FUNCTIONS:
        op.execute(statement)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    for table, privileges in _GRANTS:
        grant(table, privileges)
        enable_rls(table)
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
    for table, name, command, clause in _POLICIES:
        op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO {role} {clause}")
    _teach_the_feed()
