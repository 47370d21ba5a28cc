"""Steering statistics: anonymous statistical rows that survive retention.

``stat_fact`` holds one row per record the analyse des besoins sociaux counts (a person, a
referral, an orientation, a legal-aid dossier): month, commune, age band, sex, household
type and codes, never a name. Triggers on the source tables keep it current from every
write path (API, sync, imports); the rows of existing records are written here once.
The runtime role may only read it, for the communes of the acting organisation's territory.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import holidays
import sqlalchemy as sa
from alembic import op

from api.store.migrations.helpers import app_role, enable_rls, grant

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# metropolitan French public holidays, the same rule as api/domain/calendar.py
_HOLIDAY_YEARS = range(2000, 2061)


def _holidays_literal() -> str:
    days = sorted(holidays.country_holidays("FR", years=_HOLIDAY_YEARS))
    return "ARRAY[" + ",".join(f"'{d.isoformat()}'" for d in days) + "]::date[]"


def _functions() -> str:
    return f"""
CREATE FUNCTION guichet_working_days(a date, b date) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT count(*)::integer FROM generate_series(a + 1, b, interval '1 day') AS d
  WHERE extract(isodow FROM d) < 6 AND NOT (d::date = ANY ({_holidays_literal()}))
$$;

CREATE FUNCTION guichet_age_band(birth date, on_day date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN birth IS NULL THEN NULL
    WHEN age < 18 THEN '0-17' WHEN age < 25 THEN '18-24' WHEN age < 40 THEN '25-39'
    WHEN age < 55 THEN '40-54' WHEN age < 65 THEN '55-64' WHEN age < 75 THEN '65-74'
    ELSE '75+' END
  FROM (SELECT extract(year FROM age(on_day, birth))::integer AS age) AS a
$$;

CREATE FUNCTION guichet_household_type(person uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT CASE
    WHEN couple AND children THEN 'couple_children'
    WHEN couple THEN 'couple'
    WHEN children THEN 'single_parent'
    WHEN others THEN 'other'
    ELSE 'single' END
  FROM (
    SELECT coalesce(bool_or(relation = 'conjoint'), false) AS couple,
           coalesce(bool_or(relation = 'enfant'), false) AS children,
           coalesce(bool_or(relation = 'autre'), false) AS others
    FROM household_member WHERE beneficiary_id = person
  ) AS h
$$;

-- a person, counted at first contact; frozen once anonymised, gone once merged
CREATE FUNCTION guichet_stat_person(person uuid) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  DELETE FROM stat_fact f USING beneficiary b
  WHERE f.measure = 'people' AND f.source_id = person AND b.id = person
    AND (b.merged_into_id IS NOT NULL OR b.commune_code IS NULL);
  INSERT INTO stat_fact AS f (measure, source_id, month, commune_code, age_band, sex,
                              household_type, competence, refreshed_at)
  SELECT 'people', b.id, date_trunc('month', b.created_at)::date, b.commune_code,
         guichet_age_band(b.birth_date, b.created_at::date), b.sex,
         guichet_household_type(b.id),
         (SELECT m.competence FROM care_team_membership m WHERE m.beneficiary_id = b.id
          ORDER BY m.started_at, m.id LIMIT 1),
         now()
  FROM beneficiary b
  WHERE b.id = person AND b.anonymised_at IS NULL AND b.merged_into_id IS NULL
    AND b.commune_code IS NOT NULL
  ON CONFLICT (measure, source_id) DO UPDATE SET
    month = excluded.month, commune_code = excluded.commune_code,
    age_band = excluded.age_band, sex = excluded.sex,
    household_type = excluded.household_type, competence = excluded.competence,
    refreshed_at = excluded.refreshed_at;
$$;

-- a referral: the person's age band and household when it was sent stay as they were
CREATE FUNCTION guichet_stat_referral(referral_id uuid) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  INSERT INTO stat_fact AS f (measure, source_id, month, commune_code, age_band, sex,
                              household_type, competence, status, reason, outcome,
                              acknowledged_days, accepted_days, completed_days, refreshed_at)
  SELECT 'referrals', r.id, date_trunc('month', r.created_at)::date, r.commune_code,
         guichet_age_band(coalesce(b.birth_date,
                                   (r.inline_identity ->> 'birth_date')::date),
                          r.created_at::date),
         coalesce(b.sex, r.inline_identity ->> 'sex'),
         CASE WHEN r.beneficiary_id IS NOT NULL
              THEN guichet_household_type(r.beneficiary_id) END,
         r.competence, r.status, e.reason, e.outcome,
         guichet_working_days(r.created_at::date, e.acknowledged_on),
         guichet_working_days(r.created_at::date, e.accepted_on),
         guichet_working_days(r.created_at::date, e.completed_on),
         now()
  FROM referral r
  LEFT JOIN beneficiary b ON b.id = r.beneficiary_id
  CROSS JOIN LATERAL (
    SELECT (min(at) FILTER (WHERE to_status = 'acknowledged'))::date AS acknowledged_on,
           (min(at) FILTER (WHERE to_status = 'accepted'))::date AS accepted_on,
           (min(at) FILTER (WHERE to_status = 'completed'))::date AS completed_on,
           (array_agg(reason_code ORDER BY at DESC, id DESC)
              FILTER (WHERE reason_code IS NOT NULL))[1] AS reason,
           (array_agg(outcome_code ORDER BY at DESC, id DESC)
              FILTER (WHERE outcome_code IS NOT NULL))[1] AS outcome
    FROM referral_event WHERE referral_event.referral_id = r.id
  ) AS e
  WHERE r.id = guichet_stat_referral.referral_id
  ON CONFLICT (measure, source_id) DO UPDATE SET
    status = excluded.status, reason = excluded.reason, outcome = excluded.outcome,
    acknowledged_days = excluded.acknowledged_days, accepted_days = excluded.accepted_days,
    completed_days = excluded.completed_days, refreshed_at = excluded.refreshed_at;
$$;

CREATE FUNCTION guichet_stat_orientation(orientation_id uuid) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  INSERT INTO stat_fact AS f (measure, source_id, month, commune_code, age_band, sex,
                              household_type, competence, status, reason, refreshed_at)
  SELECT 'orientations', o.id, date_trunc('month', o.created_at)::date, b.commune_code,
         guichet_age_band(b.birth_date, o.created_at::date), b.sex,
         guichet_household_type(b.id), o.competence, o.status,
         (SELECT reason_code FROM orientation_event e
          WHERE e.orientation_id = o.id AND e.reason_code IS NOT NULL
          ORDER BY e.at DESC, e.id DESC LIMIT 1),
         now()
  FROM orientation o JOIN beneficiary b ON b.id = o.beneficiary_id
  WHERE o.id = guichet_stat_orientation.orientation_id AND b.commune_code IS NOT NULL
  ON CONFLICT (measure, source_id) DO UPDATE SET
    status = excluded.status, reason = excluded.reason, refreshed_at = excluded.refreshed_at;
$$;

CREATE FUNCTION guichet_stat_dossier(dossier_id uuid) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public AS $$
  INSERT INTO stat_fact AS f (measure, source_id, month, commune_code, age_band, sex,
                              household_type, competence, prestation, status, decision,
                              amount, refreshed_at)
  SELECT 'dossiers', d.id, date_trunc('month', d.created_at)::date, b.commune_code,
         guichet_age_band(b.birth_date, d.created_at::date), b.sex,
         guichet_household_type(b.id), d.prestation, d.prestation, d.status, d.decision,
         d.amount, now()
  FROM dossier d JOIN beneficiary b ON b.id = d.beneficiary_id
  WHERE d.id = guichet_stat_dossier.dossier_id AND b.commune_code IS NOT NULL
  ON CONFLICT (measure, source_id) DO UPDATE SET
    status = excluded.status, decision = excluded.decision, amount = excluded.amount,
    refreshed_at = excluded.refreshed_at;
$$;

-- the comparison figure of a CCAS's report: how many in its whole EPCI or département,
-- a total and nothing finer, beyond the caller's own territory (domain.md §12: the commune
-- beside its EPCI and département); sensitive competences never count here
CREATE FUNCTION guichet_stat_area_count(p_measure text, p_kind text, p_code text,
                                        p_first date, p_last date) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT count(*) FROM stat_fact f JOIN commune c ON c.code = f.commune_code
  WHERE p_kind IN ('epci', 'departement') AND f.measure = p_measure
    AND f.month BETWEEN p_first AND p_last
    AND CASE p_kind WHEN 'epci' THEN c.epci_siren = p_code ELSE c.departement_code = p_code END
    AND (f.competence IS NULL OR f.competence <> ALL (
      ARRAY(SELECT code FROM competence WHERE sensitive)))
$$;

CREATE FUNCTION guichet_stat_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  row_data jsonb;
BEGIN
  IF TG_OP = 'DELETE' THEN row_data := to_jsonb(OLD); ELSE row_data := to_jsonb(NEW); END IF;
  CASE TG_ARGV[0]
    WHEN 'person' THEN PERFORM guichet_stat_person((row_data ->> TG_ARGV[1])::uuid);
    WHEN 'referral' THEN PERFORM guichet_stat_referral((row_data ->> TG_ARGV[1])::uuid);
    WHEN 'orientation' THEN PERFORM guichet_stat_orientation((row_data ->> TG_ARGV[1])::uuid);
    WHEN 'dossier' THEN PERFORM guichet_stat_dossier((row_data ->> TG_ARGV[1])::uuid);
  END CASE;
  RETURN NULL;
END $$;
"""


# (table, events, what it refreshes, the column naming the record)
_TRIGGERS = (
    ("beneficiary", "INSERT OR UPDATE", "person", "id"),
    ("care_team_membership", "INSERT", "person", "beneficiary_id"),
    ("household_member", "INSERT OR UPDATE OR DELETE", "person", "beneficiary_id"),
    ("referral", "INSERT OR UPDATE", "referral", "id"),
    ("referral_event", "INSERT", "referral", "referral_id"),
    ("orientation", "INSERT OR UPDATE", "orientation", "id"),
    ("orientation_event", "INSERT", "orientation", "orientation_id"),
    ("dossier", "INSERT OR UPDATE", "dossier", "id"),
)

_BACKFILL = """
SELECT guichet_stat_person(id) FROM beneficiary;
SELECT guichet_stat_referral(id) FROM referral;
SELECT guichet_stat_orientation(id) FROM orientation;
SELECT guichet_stat_dossier(id) FROM dossier;
"""


def upgrade() -> None:
    op.create_table(
        "stat_fact",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("measure", sa.String(20), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("commune_code", sa.String(5), nullable=False),
        sa.Column("age_band", sa.String(5), nullable=True),
        sa.Column("sex", sa.String(1), nullable=True),
        sa.Column("household_type", sa.String(20), nullable=True),
        sa.Column("competence", sa.String(40), nullable=True),
        sa.Column("status", sa.String(20), nullable=True),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("outcome", sa.String(40), nullable=True),
        sa.Column("prestation", sa.String(40), nullable=True),
        sa.Column("decision", sa.String(20), nullable=True),
        sa.Column("amount", sa.Numeric(12, 2), nullable=True),
        sa.Column("acknowledged_days", sa.Integer(), nullable=True),
        sa.Column("accepted_days", sa.Integer(), nullable=True),
        sa.Column("completed_days", sa.Integer(), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["commune_code"], ["commune.code"], name=op.f("fk_stat_fact_commune_code_commune")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stat_fact")),
        sa.UniqueConstraint("measure", "source_id", name=op.f("uq_stat_fact_measure_source_id")),
    )
    op.create_index(
        "ix_stat_fact_measure_commune_code_month",
        "stat_fact",
        ["measure", "commune_code", "month"],
    )
    for statement in _functions().split("\nCREATE FUNCTION")[1:]:
        op.execute("CREATE FUNCTION" + statement)
    for table, events, kind, column in _TRIGGERS:
        op.execute(
            f"CREATE TRIGGER stat_fact_refresh AFTER {events} ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION guichet_stat_trigger('{kind}', '{column}')"
        )
    for statement in _BACKFILL.strip().splitlines():
        op.execute(statement)
    role = app_role()
    grant("stat_fact", "SELECT")
    enable_rls("stat_fact")
    op.execute(
        "CREATE POLICY owner_all ON stat_fact TO CURRENT_USER USING (true) WITH CHECK (true)"
    )
    # the acting organisation's territory only; the statistics service narrows it further
    op.execute(
        f"CREATE POLICY runtime_read ON stat_fact FOR SELECT TO {role} USING (commune_code = "
        "ANY (ARRAY(SELECT commune_code FROM organisation_commune "
        "WHERE organisation_id = guichet_org())))"
    )
    for signature in (
        "guichet_working_days(date, date)",
        "guichet_age_band(date, date)",
        "guichet_stat_area_count(text, text, text, date, date)",
    ):
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    op.execute(
        "REVOKE ALL ON FUNCTION guichet_stat_area_count(text, text, text, date, date) FROM PUBLIC"
    )
    for signature in (
        "guichet_household_type(uuid)",
        "guichet_stat_person(uuid)",
        "guichet_stat_referral(uuid)",
        "guichet_stat_orientation(uuid)",
        "guichet_stat_dossier(uuid)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
