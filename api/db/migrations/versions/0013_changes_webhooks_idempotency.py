"""Change feed, webhook subscriptions and outbox, idempotency keys.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def _instant(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _tables() -> None:
    op.create_table(
        "change_event",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(30), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("event", sa.String(60), nullable=False),
        sa.Column("status", sa.String(30), nullable=True),
        sa.Column("audience", postgresql.ARRAY(sa.Uuid()), nullable=False),
        _instant("at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_change_event")),
    )
    op.create_index("ix_change_event_txid_id", "change_event", ["txid", "id"])
    op.create_table(
        "webhook_subscription",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("events", postgresql.ARRAY(sa.String(60)), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("secret_cipher", sa.LargeBinary(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        _instant("created_at"),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_webhook_subscription_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscription")),
    )
    op.create_index(
        "ix_webhook_subscription_organisation_id_created_at",
        "webhook_subscription",
        ["organisation_id", "created_at"],
    )
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("event_type", sa.String(60), nullable=False),
        sa.Column("resource_type", sa.String(30), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=False),
        sa.Column("resource_status", sa.String(30), nullable=True),
        sa.Column("tombstone", sa.Boolean(), nullable=False),
        _instant("event_at"),
        sa.Column("webhook_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _instant("next_attempt_at"),
        _instant("locked_until", nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        _instant("created_at"),
        _instant("delivered_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["webhook_subscription.id"],
            name=op.f("fk_webhook_delivery_subscription_id_webhook_subscription"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_webhook_delivery_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_delivery")),
        sa.UniqueConstraint("webhook_id", name=op.f("uq_webhook_delivery_webhook_id")),
    )
    op.create_index(
        "ix_webhook_delivery_subscription_id_created_at",
        "webhook_delivery",
        ["subscription_id", "created_at"],
    )
    op.create_index(
        "ix_webhook_delivery_due",
        "webhook_delivery",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        _instant("at"),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(200), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_delivery.id"],
            name=op.f("fk_webhook_attempt_delivery_id_webhook_delivery"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_webhook_attempt_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempt")),
    )
    op.create_index(
        "ix_webhook_attempt_delivery_id_attempt", "webhook_attempt", ["delivery_id", "attempt"]
    )
    op.create_table(
        "idempotency_key",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("body_cipher", sa.LargeBinary(), nullable=True),
        _instant("created_at"),
        sa.PrimaryKeyConstraint(
            "principal_id", "organisation_id", "key", name=op.f("pk_idempotency_key")
        ),
    )
    op.create_index("ix_idempotency_key_created_at", "idempotency_key", ["created_at"])


# What the acting organisation may see of a record *now*, by type: the change feed and the
# webhook worker ask it before announcing anything. plpgsql resolves the functions it calls
# at call time, so the per-type probes of later migrations (referrals and orientations in
# 0012, dossiers in 0014) need no change here; an unknown type is never visible.
_CAN_SEE = """
CREATE FUNCTION guichet_can_see(p_type text, p_id uuid) RETURNS boolean
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_org uuid := guichet_org();
BEGIN
  IF v_org IS NULL OR p_id IS NULL THEN
    RETURN false;
  END IF;
  CASE p_type
    WHEN 'convention' THEN
      RETURN EXISTS (SELECT 1 FROM convention c
                     WHERE c.id = p_id AND (c.grantor_id = v_org OR c.grantee_id = v_org));
    WHEN 'access_request' THEN
      RETURN EXISTS (SELECT 1 FROM access_request r
                     WHERE r.id = p_id
                       AND (r.organisation_id = v_org OR guichet_is_attached(r.beneficiary_id)));
    WHEN 'beneficiary' THEN
      RETURN guichet_is_attached(p_id);
    WHEN 'referral' THEN
      RETURN guichet_can_see_referral(p_id);
    WHEN 'orientation' THEN
      RETURN guichet_can_see_orientation(p_id);
    WHEN 'dossier' THEN
      RETURN guichet_can_see_dossier(p_id);
    WHEN 'webhook' THEN
      RETURN EXISTS (SELECT 1 FROM webhook_subscription s
                     WHERE s.id = p_id AND s.organisation_id = v_org);
    ELSE
      RETURN false;
  END CASE;
END
$$
"""

# The webhook worker (owner role) asks on behalf of each subscriber organisation.
_CAN_SEE_AS = """
CREATE FUNCTION guichet_can_see_as(p_org uuid, p_type text, p_id uuid) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM set_config('guichet.context', 'request', true);
  PERFORM set_config('guichet.organisation_id', p_org::text, true);
  PERFORM set_config('guichet.principal_id', '', true);
  RETURN guichet_can_see(p_type, p_id);
END
$$
"""

# The event and one outbox row per matching subscription of the audience, in the caller's
# transaction. SECURITY DEFINER: the acting organisation may not read the other parties'
# subscriptions, yet their messages must be queued with its change. ``txid`` is the
# top-level transaction id (the feed's ordering key).
_RECORD_CHANGE = """
CREATE FUNCTION guichet_record_change(
  p_type text, p_resource uuid, p_action text, p_event text, p_status text,
  p_audience uuid[], p_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_id bigint;
BEGIN
  INSERT INTO change_event (txid, type, resource_id, action, event, status, audience, at)
  VALUES (pg_current_xact_id()::text::bigint, p_type, p_resource, p_action, p_event,
          p_status, p_audience, p_at)
  RETURNING id INTO v_id;
  INSERT INTO webhook_delivery (
    id, subscription_id, organisation_id, event_id, event_type, resource_type, resource_id,
    resource_status, tombstone, event_at, webhook_id, status, attempts, next_attempt_at,
    created_at)
  SELECT gen_random_uuid(), s.id, s.organisation_id, v_id, p_event, p_type, p_resource,
         p_status, p_action = 'deleted', p_at,
         'msg_' || v_id::text || '_' || replace(s.id::text, '-', ''),
         'pending', 0, p_at, p_at
  FROM webhook_subscription s
  WHERE s.organisation_id = ANY (p_audience) AND s.active
    AND (p_event = ANY (s.events) OR '*' = ANY (s.events)
         OR split_part(p_event, '.', 1) || '.*' = ANY (s.events));
  RETURN v_id;
END
$$
"""

# The organisations following a person, for the audience of an access request: answered
# only to an organisation attached to the person or asking for access to them.
_CARE_TEAM_OF = """
CREATE FUNCTION guichet_care_team_of(p_beneficiary uuid) RETURNS uuid[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT coalesce(array_agg(DISTINCT m.organisation_id), '{}')
  FROM care_team_membership m
  WHERE m.beneficiary_id = p_beneficiary AND m.ended_at IS NULL
    AND (guichet_is_attached(p_beneficiary)
         OR EXISTS (SELECT 1 FROM access_request r
                    WHERE r.beneficiary_id = p_beneficiary
                      AND r.organisation_id = guichet_org()))
$$
"""

_RUNTIME_FUNCTIONS = (
    "guichet_can_see(text, uuid)",
    "guichet_record_change(text, uuid, text, text, text, uuid[], timestamptz)",
    "guichet_care_team_of(uuid)",
)

_OWN_SUBSCRIPTIONS = (
    "ARRAY(SELECT id FROM webhook_subscription WHERE organisation_id = guichet_org())"
)

# (table, privileges, [(policy, command, clause)])
_SECURITY = [
    (
        "change_event",
        "SELECT",
        [("runtime_read", "SELECT", "USING (guichet_org() = ANY (audience))")],
    ),
    (
        "webhook_subscription",
        "SELECT, INSERT, UPDATE, DELETE",
        [
            (
                "runtime",
                "ALL",
                "USING (organisation_id = guichet_org()) "
                "WITH CHECK (organisation_id = guichet_org())",
            )
        ],
    ),
    (
        "webhook_delivery",
        "SELECT, INSERT",
        [
            ("runtime_read", "SELECT", "USING (organisation_id = guichet_org())"),
            (
                "runtime_test",
                "INSERT",
                "WITH CHECK (organisation_id = guichet_org() "
                f"AND subscription_id = ANY ({_OWN_SUBSCRIPTIONS}))",
            ),
        ],
    ),
    (
        "webhook_attempt",
        "SELECT",
        [("runtime_read", "SELECT", "USING (organisation_id = guichet_org())")],
    ),
    (
        "idempotency_key",
        "SELECT, INSERT, UPDATE",
        [
            (
                "runtime",
                "ALL",
                "USING (principal_id = guichet_principal() AND organisation_id = guichet_org()) "
                "WITH CHECK (principal_id = guichet_principal() "
                "AND organisation_id = guichet_org())",
            )
        ],
    ),
]


def upgrade() -> None:
    role = app_role()
    _tables()
    for statement in (_CAN_SEE, _CAN_SEE_AS, _RECORD_CHANGE, _CARE_TEAM_OF):
        op.execute(statement)
    op.execute("REVOKE ALL ON FUNCTION guichet_can_see_as(uuid, text, uuid) FROM PUBLIC")
    for signature in _RUNTIME_FUNCTIONS:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    for table, privileges, policies in _SECURITY:
        grant(table, privileges)
        enable_rls(table)
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
        for name, command, clause in policies:
            op.execute(f"CREATE POLICY {name} ON {table} FOR {command} TO {role} {clause}")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
