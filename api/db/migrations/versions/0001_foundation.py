"""Runtime role and public reference tables (territories, competence catalogue).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from api.db.migrations.helpers import app_role, grant

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def create_role(role: str) -> str:
    """The runtime role, created unless it exists: it logs in but owns nothing, inherits
    nothing and never bypasses RLS. Roles are shared by every database of the server: two
    databases migrating for the first time at once (a test run's workers on a new server)
    both find it missing, and the second ``CREATE ROLE`` then fails on the role's unique name,
    which means the role is there."""
    return f"""
        DO $$ BEGIN
          IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
            CREATE ROLE {role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE
              NOBYPASSRLS NOREPLICATION;
          END IF;
        EXCEPTION WHEN unique_violation OR duplicate_object THEN
          NULL;
        END $$;
        """


def upgrade() -> None:
    role = app_role()
    op.execute(create_role(role))
    # Roles are shared by every database of the server: two databases migrating at once
    # (test runs, benches) race on the role's row ("tuple concurrently updated"), so retry.
    op.execute(
        f"""
        DO $$ BEGIN
          FOR attempt IN 1..50 LOOP
            BEGIN
              ALTER ROLE {role} NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS;
              EXIT;
            EXCEPTION WHEN internal_error THEN
              PERFORM pg_sleep(0.02 * attempt);
            END;
          END LOOP;
        END $$;
        """
    )
    op.execute(f"GRANT CONNECT ON DATABASE {_current_database()} TO {role}")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {role}")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC, {role}")

    op.create_table(
        "region",
        sa.Column("code", sa.String(3), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
    )
    op.create_table(
        "departement",
        sa.Column("code", sa.String(3), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("region_code", sa.String(3), sa.ForeignKey("region.code"), nullable=False),
        sa.Column("chef_lieu", sa.String(5), nullable=False),
    )
    op.create_table(
        "epci",
        sa.Column("siren", sa.String(9), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("type", sa.String(8), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
    )
    op.create_table(
        "commune",
        sa.Column("code", sa.String(5), primary_key=True),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("siren", sa.String(9), nullable=True),
        sa.Column("search_name", sa.String(), nullable=False),
        sa.Column(
            "departement_code", sa.String(3), sa.ForeignKey("departement.code"), nullable=False
        ),
        sa.Column("region_code", sa.String(3), sa.ForeignKey("region.code"), nullable=False),
        sa.Column("epci_siren", sa.String(9), sa.ForeignKey("epci.siren"), nullable=True),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.Column("postal_codes", postgresql.ARRAY(sa.String(5)), nullable=False),
    )
    op.create_index("ix_commune_departement_code", "commune", ["departement_code"])
    op.create_index("ix_commune_epci_siren", "commune", ["epci_siren"])
    op.create_index(
        "ix_commune_search_name",
        "commune",
        ["search_name"],
        postgresql_ops={"search_name": "text_pattern_ops"},
    )
    op.create_table(
        "competence",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("label", sa.String(), nullable=False),
        sa.Column("legal_holder_kinds", postgresql.ARRAY(sa.String(20)), nullable=False),
        sa.Column("delegable_to", postgresql.ARRAY(sa.String(20)), nullable=False),
        sa.Column("sensitive", sa.Boolean(), nullable=False),
    )
    # Which reference files were loaded, so set-up reloads only what changed.
    op.create_table(
        "reference_load",
        sa.Column("name", sa.String(), primary_key=True),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    for table in ("region", "departement", "epci", "commune", "competence"):
        grant(table, "SELECT")
    grant("alembic_version", "SELECT")


def downgrade() -> None:
    for table in ("reference_load", "competence", "commune", "epci", "departement", "region"):
        op.drop_table(table)


def _current_database() -> str:
    name = op.get_bind().exec_driver_sql("SELECT current_database()").scalar_one()
    return '"' + str(name).replace('"', '""') + '"'
