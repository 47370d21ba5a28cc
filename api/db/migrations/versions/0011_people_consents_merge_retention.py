"""Consents and information notices, merges, right-of-access exports, retention.

- ``consent``: information notices and consents, readable and recordable by organisations
  attached to the person (row-level security keyed on attachment).
- ``beneficiary.anonymised_at`` and ``organisation.audit_retention_months`` (domain.md §11).
- ``audit_chain_anchor``: where an organisation's audit chain starts once the purge deleted
  its oldest entries; ``audit_chain_head()`` falls back on it when every entry is gone.
- SECURITY DEFINER functions that find every column referring to a person in the catalogue,
  so that tables added later by other capabilities are merged and exported too.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("beneficiary", sa.Column("anonymised_at", sa.DateTime(timezone=True)))
    op.add_column(
        "organisation",
        sa.Column("audit_retention_months", sa.Integer(), nullable=False, server_default="12"),
    )
    op.create_table(
        "consent",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("beneficiary_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("competence", sa.String(40), nullable=True),
        sa.Column("purpose", sa.String(), nullable=False),
        sa.Column("method", sa.String(20), nullable=False),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.Column("withdrawal_reason", sa.String(), nullable=True),
        sa.Column("recorded_by_organisation_id", sa.Uuid(), nullable=False),
        sa.Column("recorded_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiary.id"],
            name=op.f("fk_consent_beneficiary_id_beneficiary"),
        ),
        sa.ForeignKeyConstraint(
            ["competence"], ["competence.code"], name=op.f("fk_consent_competence_competence")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_consent_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_organisation_id"],
            ["organisation.id"],
            name=op.f("fk_consent_recorded_by_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_user_id"],
            ["app_user.id"],
            name=op.f("fk_consent_recorded_by_user_id_app_user"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent")),
    )
    op.create_index(op.f("ix_consent_beneficiary_id"), "consent", ["beneficiary_id"])
    op.create_table(
        "audit_chain_anchor",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_audit_chain_anchor_organisation_id_organisation"),
        ),
        sa.PrimaryKeyConstraint("organisation_id", name=op.f("pk_audit_chain_anchor")),
    )
    _security()


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")


_ATTACHED = "guichet_is_attached(beneficiary_id)"

# The head of the acting organisation's chain: its newest entry, or, when the purge deleted
# every entry, the hash of the last one deleted.
_HEAD = """
CREATE OR REPLACE FUNCTION audit_chain_head() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT coalesce(
    (SELECT hash FROM audit_entry WHERE organisation_id = guichet_org()
     ORDER BY id DESC LIMIT 1),
    (SELECT hash FROM audit_chain_anchor WHERE organisation_id = guichet_org()))
$$
"""

# Anonymised people are nobody any more: discovery and break-glass no longer find them.
_CANDIDATES = """
CREATE OR REPLACE FUNCTION person_candidates(p_nir_hash text, p_birth_date date)
RETURNS TABLE (id uuid, birth_name text, usage_name text, first_names text, birth_date date,
               commune_code text, match_keys text[], folded_names text, nir_match boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT b.id, b.birth_name::text, b.usage_name::text, b.first_names::text, b.birth_date,
         b.commune_code::text, b.match_keys::text[], b.folded_names::text,
         (p_nir_hash IS NOT NULL AND b.nir_hash = p_nir_hash)
  FROM beneficiary b
  WHERE b.merged_into_id IS NULL AND b.anonymised_at IS NULL
    AND ((p_nir_hash IS NOT NULL AND b.nir_hash = p_nir_hash) OR b.birth_date = p_birth_date)
  LIMIT 200
$$
"""

_LOCATOR = """
CREATE OR REPLACE FUNCTION person_locator(p_id uuid) RETURNS TABLE (commune_code text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT b.commune_code::text FROM beneficiary b
  WHERE b.id = p_id AND b.merged_into_id IS NULL AND b.anonymised_at IS NULL
$$
"""

# The person a merged record now lives in, for answering its old id. Says nothing unless the
# caller may read the survivor (the service checks).
_MERGED_INTO = """
CREATE FUNCTION person_merged_into(p_id uuid) RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT merged_into_id FROM beneficiary WHERE id = p_id
$$
"""

# Every column that refers to a person: the foreign keys to beneficiary (whatever their
# name) and any uuid column named beneficiary_id, in every table of the schema, present or
# added later. The audit trail is history, chained by hash: it never moves.
_PERSON_COLUMNS = """
CREATE FUNCTION person_columns()
RETURNS TABLE (table_oid oid, table_name text, column_name text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT c.conrelid, c.conrelid::regclass::text, a.attname::text
  FROM pg_constraint c
  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
  WHERE c.contype = 'f' AND c.confrelid = 'beneficiary'::regclass
    AND cardinality(c.conkey) = 1
  UNION
  SELECT cl.oid, cl.oid::regclass::text, a.attname::text
  FROM pg_attribute a
  JOIN pg_class cl ON cl.oid = a.attrelid
  WHERE cl.relnamespace = 'public'::regnamespace AND cl.relkind IN ('r', 'p')
    AND a.attname = 'beneficiary_id' AND a.atttypid = 'uuid'::regtype
    AND NOT a.attisdropped
    AND cl.oid <> 'audit_entry'::regclass
$$
"""

# Merge (domain.md §6): every row referring to the duplicate is re-pointed to the survivor;
# care-team memberships of the same organisation and competence collapse into one; the
# survivor takes what it lacked (NIR, contact) and the duplicate's name keys; the duplicate
# keeps its id with merged_into_id. Both people must be followed by the acting organisation.
_MERGE = """
CREATE FUNCTION merge_beneficiaries(p_survivor uuid, p_duplicate uuid, p_now timestamptz)
RETURNS TABLE (table_name text, column_name text, moved bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  ref record;
  n bigint;
  s beneficiary%ROWTYPE;
  d beneficiary%ROWTYPE;
BEGIN
  IF p_survivor = p_duplicate OR NOT guichet_is_attached(p_survivor)
     OR NOT guichet_is_attached(p_duplicate) THEN
    RAISE EXCEPTION 'merge refused: both people must be followed' USING ERRCODE = '42501';
  END IF;
  -- both rows locked in one order: two merges of the same pair cannot deadlock, and rows
  -- referring to them (foreign keys) wait for the merge to end
  PERFORM 1 FROM beneficiary b WHERE b.id IN (p_survivor, p_duplicate) ORDER BY b.id FOR UPDATE;
  SELECT * INTO s FROM beneficiary b WHERE b.id = p_survivor;
  SELECT * INTO d FROM beneficiary b WHERE b.id = p_duplicate;
  IF s.merged_into_id IS NOT NULL OR d.merged_into_id IS NOT NULL
     OR s.anonymised_at IS NOT NULL OR d.anonymised_at IS NOT NULL THEN
    RAISE EXCEPTION 'merge refused: already merged or anonymised' USING ERRCODE = '55000';
  END IF;

  UPDATE care_team_membership sm SET
    granted_categories = CASE
      WHEN sm.granted_categories IS NULL OR dm.granted_categories IS NULL THEN NULL
      ELSE ARRAY(SELECT DISTINCT x FROM unnest(sm.granted_categories || dm.granted_categories)
                 AS g(x) ORDER BY x)
    END,
    referent_user_id = coalesce(sm.referent_user_id, dm.referent_user_id),
    team_role = CASE
      WHEN 'referent' IN (sm.team_role, dm.team_role) THEN 'referent'
      WHEN 'coordinator' IN (sm.team_role, dm.team_role) THEN 'coordinator'
      ELSE sm.team_role
    END
  FROM care_team_membership dm
  WHERE sm.beneficiary_id = p_survivor AND sm.ended_at IS NULL
    AND dm.beneficiary_id = p_duplicate AND dm.ended_at IS NULL
    AND dm.organisation_id = sm.organisation_id AND dm.competence = sm.competence;
  UPDATE care_team_membership dm SET ended_at = p_now, end_reason = 'merged'
  WHERE dm.beneficiary_id = p_duplicate AND dm.ended_at IS NULL
    AND EXISTS (SELECT 1 FROM care_team_membership sm
                WHERE sm.beneficiary_id = p_survivor AND sm.ended_at IS NULL
                  AND sm.organisation_id = dm.organisation_id
                  AND sm.competence = dm.competence);

  FOR ref IN
    SELECT pc.table_name, pc.column_name FROM person_columns() pc
    WHERE pc.table_oid <> 'beneficiary'::regclass
    ORDER BY pc.table_name, pc.column_name
  LOOP
    EXECUTE format('UPDATE %s SET %I = $1 WHERE %I = $2', ref.table_name, ref.column_name,
                   ref.column_name)
      USING p_survivor, p_duplicate;
    GET DIAGNOSTICS n = ROW_COUNT;
    table_name := ref.table_name;
    column_name := ref.column_name;
    moved := n;
    RETURN NEXT;
  END LOOP;

  -- the person no longer lives in their own household
  DELETE FROM household_member h
  WHERE h.beneficiary_id = p_survivor AND h.member_beneficiary_id = p_survivor;
  -- records merged earlier into the duplicate now point at the survivor (one hop)
  UPDATE beneficiary b SET merged_into_id = p_survivor, updated_at = p_now
  WHERE b.merged_into_id = p_duplicate;
  UPDATE beneficiary b SET
    usage_name = coalesce(b.usage_name, d.usage_name),
    birth_place = coalesce(b.birth_place, d.birth_place),
    nir_cipher = coalesce(b.nir_cipher, d.nir_cipher),
    nir_hash = CASE WHEN b.nir_cipher IS NULL THEN d.nir_hash ELSE b.nir_hash END,
    nir_missing_reason = CASE WHEN b.nir_cipher IS NULL AND d.nir_cipher IS NOT NULL
                              THEN NULL ELSE b.nir_missing_reason END,
    address = coalesce(b.address, d.address),
    phone = coalesce(b.phone, d.phone),
    email = coalesce(b.email, d.email),
    situation = coalesce(b.situation, d.situation),
    match_keys = ARRAY(SELECT DISTINCT k FROM unnest(b.match_keys || d.match_keys) AS m(k)
                       ORDER BY k),
    last_contact_at = greatest(b.last_contact_at, d.last_contact_at),
    version = b.version + 1,
    updated_at = p_now
  WHERE b.id = p_survivor;
  UPDATE beneficiary b SET merged_into_id = p_survivor, version = b.version + 1,
    updated_at = p_now
  WHERE b.id = p_duplicate;
END
$$
"""

# Right of access (domain.md §11): the rows of every table referring to the person, and the
# rows referring to those (a referral's messages and events), whoever wrote them. Only for
# an organisation following the person; the service checks the DPO role.
_EXPORT = """
CREATE FUNCTION person_export(p_id uuid)
RETURNS TABLE (table_name text, column_name text, via text, rows jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  ref record;
  sub record;
  found jsonb;
BEGIN
  IF NOT guichet_is_attached(p_id) THEN
    RETURN;
  END IF;
  FOR ref IN
    SELECT pc.table_oid, pc.table_name, pc.column_name FROM person_columns() pc
    ORDER BY pc.table_name, pc.column_name
  LOOP
    EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(t)), ''[]'') FROM %s t WHERE t.%I = $1',
                   ref.table_name, ref.column_name)
      INTO found USING p_id;
    table_name := ref.table_name;
    column_name := ref.column_name;
    via := NULL;
    rows := found;
    RETURN NEXT;
    FOR sub IN
      SELECT c.conrelid::regclass::text AS tbl, a.attname::text AS col, fa.attname::text AS key
      FROM pg_constraint c
      JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
      JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1]
      WHERE c.contype = 'f' AND c.confrelid = ref.table_oid AND cardinality(c.conkey) = 1
        AND c.conrelid <> ref.table_oid AND c.conrelid <> 'beneficiary'::regclass
        AND ref.table_oid <> 'beneficiary'::regclass
      ORDER BY 1, 2
    LOOP
      EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(u)), ''[]'') FROM %s u '
                     'WHERE u.%I IN (SELECT t.%I FROM %s t WHERE t.%I = $1)',
                     sub.tbl, sub.col, sub.key, ref.table_name, ref.column_name)
        INTO found USING p_id;
      table_name := sub.tbl;
      column_name := sub.col;
      via := ref.table_name || '.' || ref.column_name;
      rows := found;
      RETURN NEXT;
    END LOOP;
  END LOOP;
END
$$
"""

# A person's access log, including entries about records merged into them. Every
# organisation's entries for an organisation following the person; its own entries only
# otherwise (the same rule as the audit_entry read policy).
_ACCESS_LOG = """
CREATE FUNCTION person_access_log(p_id uuid, p_before bigint, p_limit integer)
RETURNS SETOF audit_entry
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  ids uuid[] := ARRAY(SELECT p_id UNION ALL
                      SELECT b.id FROM beneficiary b WHERE b.merged_into_id = p_id);
BEGIN
  IF guichet_is_attached(p_id) THEN
    RETURN QUERY SELECT e.* FROM audit_entry e
      WHERE e.beneficiary_id = ANY (ids) AND (p_before IS NULL OR e.id < p_before)
      ORDER BY e.id DESC LIMIT p_limit;
  ELSE
    RETURN QUERY SELECT e.* FROM audit_entry e
      WHERE e.beneficiary_id = ANY (ids) AND e.organisation_id = guichet_org()
        AND (p_before IS NULL OR e.id < p_before)
      ORDER BY e.id DESC LIMIT p_limit;
  END IF;
END
$$
"""

_FUNCTIONS = {
    "person_merged_into(uuid)": _MERGED_INTO,
    "person_columns()": _PERSON_COLUMNS,
    "merge_beneficiaries(uuid, uuid, timestamptz)": _MERGE,
    "person_export(uuid)": _EXPORT,
    "person_access_log(uuid, bigint, integer)": _ACCESS_LOG,
}


def _security() -> None:
    role = app_role()
    for statement in (_HEAD, _CANDIDATES, _LOCATOR):
        op.execute(statement)
    for signature, statement in _FUNCTIONS.items():
        op.execute(statement)
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        if signature != "person_columns()":
            op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")

    grant("consent", "SELECT, INSERT, UPDATE")
    enable_rls("consent")
    op.execute("CREATE POLICY owner_all ON consent TO CURRENT_USER USING (true) WITH CHECK (true)")
    op.execute(f"CREATE POLICY runtime_read ON consent FOR SELECT TO {role} USING ({_ATTACHED})")
    op.execute(
        f"CREATE POLICY runtime_record ON consent FOR INSERT TO {role} "
        f"WITH CHECK (recorded_by_organisation_id = guichet_org() AND {_ATTACHED})"
    )
    # a withdrawal may be recorded at any desk of the care team
    op.execute(
        f"CREATE POLICY runtime_withdraw ON consent FOR UPDATE TO {role} "
        f"USING ({_ATTACHED}) WITH CHECK ({_ATTACHED})"
    )

    # bookkeeping of the purge: the owner only (audit_chain_head() reads it as the owner)
    enable_rls("audit_chain_anchor")
    op.execute(
        "CREATE POLICY owner_all ON audit_chain_anchor TO CURRENT_USER "
        "USING (true) WITH CHECK (true)"
    )
