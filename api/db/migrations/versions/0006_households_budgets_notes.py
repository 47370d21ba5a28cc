"""Households, budgets and notes, readable through the care team.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_line",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("type", sa.String(60), nullable=False),
        sa.Column("monthly_amount", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_budget_line_beneficiary_id_beneficiary"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_line")),
    )
    op.create_index(
        op.f("ix_budget_line_beneficiary_id"), "budget_line", ["beneficiary_id"], unique=False
    )
    op.create_table(
        "household_member",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("member_beneficiary_id", sa.Uuid(), nullable=True),
        sa.Column("first_name", sa.String(200), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("relation", sa.String(20), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_household_member_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["member_beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_household_member_member_beneficiary_id_beneficiary"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_member")),
    )
    op.create_index(
        op.f("ix_household_member_beneficiary_id"),
        "household_member",
        ["beneficiary_id"],
        unique=False,
    )
    op.create_table(
        "note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("author_user_id", sa.Uuid(), nullable=True),
        sa.Column("competence", sa.String(40), nullable=False),
        sa.Column("visibility", sa.String(20), nullable=False),
        sa.Column("body", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_user_id"], ["app_user.id"], name=op.f("fk_note_author_user_id_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"], ["beneficiary.id"], name=op.f("fk_note_beneficiary_id_beneficiary")
        ),
        sa.ForeignKeyConstraint(
            ["competence"], ["competence.code"], name=op.f("fk_note_competence_competence")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_note_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_note")),
    )
    op.create_index(op.f("ix_note_beneficiary_id"), "note", ["beneficiary_id"], unique=False)
    _security()


def downgrade() -> None:
    op.drop_index(op.f("ix_note_beneficiary_id"), table_name="note")
    op.drop_table("note")
    op.drop_index(op.f("ix_household_member_beneficiary_id"), table_name="household_member")
    op.drop_table("household_member")
    op.drop_index(op.f("ix_budget_line_beneficiary_id"), table_name="budget_line")
    op.drop_table("budget_line")


_ATTACHED = "beneficiary_id = ANY (ARRAY(SELECT guichet_attached()))"
# private: the author only; organisation: its organisation; team: every attached member
_NOTE_READ = (
    f"{_ATTACHED} AND (visibility = 'team' OR organisation_id = guichet_org()) "
    "AND (visibility <> 'private' OR author_user_id = guichet_principal())"
)


def _security() -> None:
    role = app_role()
    for table in ("household_member", "budget_line"):
        grant(table, "SELECT, INSERT, UPDATE, DELETE")
        enable_rls(table)
        op.execute(
            f"CREATE POLICY owner_all ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
        op.execute(
            f"CREATE POLICY runtime ON {table} TO {role} "
            f"USING ({_ATTACHED}) WITH CHECK ({_ATTACHED})"
        )
    grant("note", "SELECT, INSERT")
    enable_rls("note")
    op.execute("CREATE POLICY owner_all ON note TO CURRENT_USER USING (true) WITH CHECK (true)")
    op.execute(f"CREATE POLICY runtime_read ON note FOR SELECT TO {role} USING ({_NOTE_READ})")
    op.execute(
        f"CREATE POLICY runtime_write ON note FOR INSERT TO {role} "
        f"WITH CHECK (organisation_id = guichet_org() AND {_ATTACHED})"
    )
