"""Access requests to a person's care team, and the categories they grant.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ATTACHED = "beneficiary_id = ANY (ARRAY(SELECT guichet_attached()))"


def upgrade() -> None:
    role = app_role()
    op.add_column(
        "care_team_membership",
        sa.Column("granted_categories", postgresql.ARRAY(sa.String(20)), nullable=True),
    )
    op.create_table(
        "access_request",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("competence", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("categories", postgresql.ARRAY(sa.String(20)), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by_organisation_id", sa.Uuid(), nullable=True),
        sa.Column("decided_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("decision_reason", sa.String(), nullable=True),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_access_request_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["competence"],
            ["competence.code"],
            name=op.f("fk_access_request_competence_competence"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_access_request_decided_by_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_user_id"],
            ["app_user.id"],
            name=op.f("fk_access_request_decided_by_user_id_app_user"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_access_request_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["app_user.id"],
            name=op.f("fk_access_request_requested_by_user_id_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_request")),
    )
    op.create_index(op.f("ix_access_request_beneficiary_id"), "access_request", ["beneficiary_id"])
    op.create_index(
        op.f("ix_access_request_organisation_id"), "access_request", ["organisation_id"]
    )
    grant("access_request", "SELECT, INSERT, UPDATE")
    enable_rls("access_request")
    op.execute(
        "CREATE POLICY owner_all ON access_request TO CURRENT_USER USING (true) WITH CHECK (true)"
    )
    op.execute(
        f"CREATE POLICY runtime_read ON access_request FOR SELECT TO {role} "
        f"USING (organisation_id = guichet_org() OR {_ATTACHED})"
    )
    op.execute(
        f"CREATE POLICY runtime_ask ON access_request FOR INSERT TO {role} "
        "WITH CHECK (organisation_id = guichet_org())"
    )
    op.execute(
        f"CREATE POLICY runtime_decide ON access_request FOR UPDATE TO {role} USING ({_ATTACHED})"
    )
    # A member approving a request adds the requester to the team: the one case where an
    # organisation writes a membership that is not its own.
    op.execute("DROP POLICY runtime_join ON care_team_membership")
    op.execute(
        f"CREATE POLICY runtime_join ON care_team_membership FOR INSERT TO {role} "
        "WITH CHECK (organisation_id = guichet_org() "
        f"OR (source = 'access_request' AND {_ATTACHED}))"
    )


def downgrade() -> None:
    op.drop_table("access_request")
    op.drop_column("care_team_membership", "granted_categories")
