"""Staff governance: role grants needing a second admin, invitations, one enrolment path.

- ``role_grant``: a request by one admin to give ``sensitive`` or ``dpo`` to a member, applied
  only when a different admin of the organisation (or, while it has a single admin, the
  platform operator) approves it.
- ``membership.accepted_at``: a membership offered to someone who already works for another
  organisation stays an invitation (``NULL``) until that person accepts it; login, refresh and
  scope building ignore it, so adding a stranger's e-mail attaches nobody.
- ``enrol_member``: the one way the service adds a member. It replaces ``ensure_user`` for
  that purpose, decides between a direct membership and an invitation with rows the caller
  may not read, and refuses what the platform operator may not do in another organisation.
- the membership insert policy repeats that last rule: outside its own organisation the
  platform operator inserts admins only; a trigger refuses any change of a user's own roles.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

# SECURITY DEFINER: the caller may not see the person's other memberships (they belong to
# other organisations), yet whether one exists decides between a member and an invitation.
# Only the outcome and the user id come back. The checks repeat the service's: the caller's
# own organisation, or the platform operator adding the first admin of an organisation.
_ENROL = """
CREATE FUNCTION enrol_member(
  p_organisation uuid, p_email text, p_full_name text, p_password_hash text,
  p_roles text[], p_now timestamptz
) RETURNS TABLE (user_id uuid, outcome text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  v_user uuid;
  v_elsewhere boolean;
BEGIN
  IF p_organisation IS DISTINCT FROM guichet_org() AND NOT (
    guichet_context() = 'platform' AND p_roles <@ ARRAY['admin']::text[]
    AND NOT EXISTS (SELECT 1 FROM membership m
                    WHERE m.organisation_id = p_organisation AND m.accepted_at IS NOT NULL
                      AND 'admin' = ANY (m.roles))
  ) THEN
    RAISE EXCEPTION 'enrol_member: not allowed for this organisation'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO app_user AS u (id, email, full_name, password_hash, created_at)
  VALUES (gen_random_uuid(), lower(p_email), p_full_name, p_password_hash, p_now)
  ON CONFLICT (email) DO UPDATE SET email = u.email
  RETURNING u.id INTO v_user;
  IF EXISTS (SELECT 1 FROM membership m
             WHERE m.user_id = v_user AND m.organisation_id = p_organisation) THEN
    RETURN QUERY SELECT v_user, 'already_member'::text;
    RETURN;
  END IF;
  v_elsewhere := EXISTS (SELECT 1 FROM membership m
                         WHERE m.user_id = v_user AND m.organisation_id <> p_organisation
                           AND m.accepted_at IS NOT NULL);
  INSERT INTO membership (id, user_id, organisation_id, roles, created_at, accepted_at)
  VALUES (gen_random_uuid(), v_user, p_organisation, p_roles::varchar(20)[], p_now,
          CASE WHEN v_elsewhere THEN NULL ELSE p_now END);
  RETURN QUERY SELECT v_user, CASE WHEN v_elsewhere THEN 'invited' ELSE 'added' END;
END
$$;
"""

# Nobody changes their own roles, said once more by the database: the runtime role may
# update the signed-in user's own membership rows (accepting an invitation), never their roles.
_NO_SELF_ROLES = """
CREATE FUNCTION membership_no_self_roles() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
  IF NEW.user_id = guichet_principal() AND NEW.roles IS DISTINCT FROM OLD.roles THEN
    RAISE EXCEPTION 'membership: nobody changes their own roles'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END
$$
"""
_NO_SELF_ROLES_TRIGGER = """
CREATE TRIGGER membership_no_self_roles BEFORE UPDATE ON membership
  FOR EACH ROW EXECUTE FUNCTION membership_no_self_roles()
"""

_MEMBERSHIP_SEEN = (
    "organisation_id = guichet_org() OR user_id = guichet_principal() "
    "OR guichet_context() IN ('auth', 'platform')"
)
_MEMBERSHIP_INSERTED = (
    "organisation_id = guichet_org() "
    "OR (guichet_context() = 'platform' AND roles <@ ARRAY['admin']::varchar(20)[])"
)
_GRANT_SEEN = "organisation_id = guichet_org() OR guichet_context() = 'platform'"


def upgrade() -> None:
    role = app_role()
    op.add_column("membership", sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE membership SET accepted_at = created_at")
    op.create_table(
        "role_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("roles", postgresql.ARRAY(sa.String(20)), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_role_grant_organisation_id_organisation"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_role_grant_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_grant")),
    )
    op.create_index(
        "ix_role_grant_organisation_id_requested_at",
        "role_grant",
        ["organisation_id", "requested_at"],
    )
    # one pending request per member: a second one would race the first's approval
    op.create_index(
        "uq_role_grant_pending",
        "role_grant",
        ["organisation_id", "user_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    grant("role_grant", "SELECT, INSERT, UPDATE")
    enable_rls("role_grant")
    op.execute(
        "CREATE POLICY owner_all ON role_grant TO CURRENT_USER USING (true) WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY runtime_read ON role_grant FOR SELECT TO {role} USING ({_GRANT_SEEN})"
    )
    op.execute(
        f"CREATE POLICY runtime_request ON role_grant FOR INSERT TO {role} "
        "WITH CHECK (organisation_id = guichet_org())"
    )
    op.execute(
        f"CREATE POLICY runtime_decide ON role_grant FOR UPDATE TO {role} "
        f"USING ({_GRANT_SEEN}) WITH CHECK ({_GRANT_SEEN})"
    )

    op.execute("DROP POLICY runtime ON membership")
    op.execute(
        f"CREATE POLICY runtime_read ON membership FOR SELECT TO {role} USING ({_MEMBERSHIP_SEEN})"
    )
    op.execute(
        f"CREATE POLICY runtime_enrol ON membership FOR INSERT TO {role} "
        f"WITH CHECK ({_MEMBERSHIP_INSERTED})"
    )
    op.execute(
        f"CREATE POLICY runtime_change ON membership FOR UPDATE TO {role} "
        f"USING ({_MEMBERSHIP_SEEN}) WITH CHECK ({_MEMBERSHIP_SEEN})"
    )
    op.execute(
        f"CREATE POLICY runtime_leave ON membership FOR DELETE TO {role} USING ({_MEMBERSHIP_SEEN})"
    )

    op.execute(_ENROL)
    op.execute(_NO_SELF_ROLES)
    op.execute(_NO_SELF_ROLES_TRIGGER)
    signature = "enrol_member(uuid, text, text, text, text[], timestamptz)"
    op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
