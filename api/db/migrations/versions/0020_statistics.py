"""Steering statistics: anonymous statistical rows that survive retention.

``stat_fact`` holds one row per record the analyse des besoins sociaux counts (a person, a
referral, an orientation, a legal-aid dossier): month, commune, age band, sex, household
type and codes, never a name. Triggers on the source tables keep it current from every
write path (API, sync, imports); the rows of existing records are written here once, set
by set. Each row's SELECT is written once (the templates below) and used twice: for one
record by the trigger, for every record by the backfill. The runtime role may only read
``stat_fact``, for the communes of the acting organisation's territory.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import holidays
import sqlalchemy as sa
from alembic import op

from api.db.migrations.helpers import app_role, enable_rls, grant

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

# metropolitan French public holidays, the same rule as api/domain/calendar.py
_HOLIDAY_YEARS = range(2000, 2061)

_HELPERS = (
    # weekdays from a fixed Monday to ``x`` included: working days are differences of it
    """
CREATE FUNCTION guichet_weekdays_to(x date) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT ((x - date '1970-01-05') / 7) * 5 + least((x - date '1970-01-05') % 7 + 1, 5)
$$""",
    # working days in (a, b]: weekdays minus the public holidays falling on one
    """
CREATE FUNCTION guichet_working_days(a date, b date) RETURNS integer
LANGUAGE sql STABLE STRICT PARALLEL SAFE AS $$
  SELECT guichet_weekdays_to(b) - guichet_weekdays_to(a)
         - (SELECT count(*) FROM stat_holiday h
            WHERE h.day > a AND h.day <= b AND extract(isodow FROM h.day) < 6)::integer
$$""",
    """
CREATE FUNCTION guichet_age_band(birth date, on_day date) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN birth IS NULL THEN NULL
    WHEN age < 18 THEN '0-17' WHEN age < 25 THEN '18-24' WHEN age < 40 THEN '25-39'
    WHEN age < 55 THEN '40-54' WHEN age < 65 THEN '55-64' WHEN age < 75 THEN '65-74'
    ELSE '75+' END
  FROM (SELECT extract(year FROM age(on_day, birth))::integer AS age) AS a
$$""",
    # the comparison figure of a CCAS's report: how many in its whole EPCI or département,
    # a total and nothing finer, beyond the caller's own territory (domain.md §12: the
    # commune beside its EPCI and département); sensitive competences never count here
    """
CREATE FUNCTION guichet_stat_area_count(p_measure text, p_kind text, p_code text,
                                        p_first date, p_last date) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT count(*) FROM stat_fact f JOIN commune c ON c.code = f.commune_code
  WHERE p_kind IN ('epci', 'departement') AND f.measure = p_measure
    AND f.month BETWEEN p_first AND p_last
    AND CASE p_kind WHEN 'epci' THEN c.epci_siren = p_code ELSE c.departement_code = p_code END
    AND (f.competence IS NULL OR f.competence <> ALL (
      ARRAY(SELECT code FROM competence WHERE sensitive)))
$$""",
)

# the household of person ``b`` as a type: a lateral join every template shares
_HOUSEHOLD = """
  LEFT JOIN LATERAL (
    SELECT CASE
      WHEN bool_or(relation = 'conjoint') AND bool_or(relation = 'enfant') THEN 'couple_children'
      WHEN bool_or(relation = 'conjoint') THEN 'couple'
      WHEN bool_or(relation = 'enfant') THEN 'single_parent'
      WHEN bool_or(relation = 'autre') THEN 'other'
      ELSE 'single' END AS type
    FROM household_member hm WHERE hm.beneficiary_id = b.id
  ) AS h ON true"""

# measure -> (columns, SELECT with a {where} placeholder, what an update may change)
_TEMPLATES = {
    # a person, counted at first contact; frozen once anonymised, absent once merged
    "people": (
        "age_band, sex, household_type, competence",
        f"""
  SELECT 'people', b.id, date_trunc('month', b.created_at)::date, b.commune_code,
         guichet_age_band(b.birth_date, b.created_at::date), b.sex, h.type,
         (SELECT m.competence FROM care_team_membership m WHERE m.beneficiary_id = b.id
          ORDER BY m.started_at, m.id LIMIT 1),
         now()
  FROM beneficiary b {_HOUSEHOLD}
  WHERE {{where}} AND b.anonymised_at IS NULL AND b.merged_into_id IS NULL
    AND b.commune_code IS NOT NULL""",
        "month, commune_code, age_band, sex, household_type, competence",
    ),
    # a referral: the person's age band and household when it was sent stay as they were
    "referrals": (
        "age_band, sex, household_type, competence, status, reason, outcome, "
        "acknowledged_days, accepted_days, completed_days",
        f"""
  SELECT 'referrals', r.id, date_trunc('month', r.created_at)::date, r.commune_code,
         guichet_age_band(coalesce(b.birth_date, (r.inline_identity ->> 'birth_date')::date),
                          r.created_at::date),
         coalesce(b.sex, r.inline_identity ->> 'sex'), CASE WHEN b.id IS NOT NULL THEN h.type END,
         r.competence, r.status, e.reason, e.outcome,
         guichet_working_days(r.created_at::date, e.acknowledged_on),
         guichet_working_days(r.created_at::date, e.accepted_on),
         guichet_working_days(r.created_at::date, e.completed_on),
         now()
  FROM referral r
  LEFT JOIN beneficiary b ON b.id = r.beneficiary_id {_HOUSEHOLD}
  CROSS JOIN LATERAL (
    SELECT (min(at) FILTER (WHERE to_status = 'acknowledged'))::date AS acknowledged_on,
           (min(at) FILTER (WHERE to_status = 'accepted'))::date AS accepted_on,
           (min(at) FILTER (WHERE to_status = 'completed'))::date AS completed_on,
           (array_agg(reason_code ORDER BY at DESC, id DESC)
              FILTER (WHERE reason_code IS NOT NULL))[1] AS reason,
           (array_agg(outcome_code ORDER BY at DESC, id DESC)
              FILTER (WHERE outcome_code IS NOT NULL))[1] AS outcome
    FROM referral_event ev WHERE ev.referral_id = r.id
  ) AS e
  WHERE {{where}}""",
        "status, reason, outcome, acknowledged_days, accepted_days, completed_days",
    ),
    "orientations": (
        "age_band, sex, household_type, competence, status, reason",
        f"""
  SELECT 'orientations', o.id, date_trunc('month', o.created_at)::date, b.commune_code,
         guichet_age_band(b.birth_date, o.created_at::date), b.sex, h.type,
         o.competence, o.status,
         (SELECT reason_code FROM orientation_event ev
          WHERE ev.orientation_id = o.id AND ev.reason_code IS NOT NULL
          ORDER BY ev.at DESC, ev.id DESC LIMIT 1),
         now()
  FROM orientation o JOIN beneficiary b ON b.id = o.beneficiary_id {_HOUSEHOLD}
  WHERE {{where}} AND b.commune_code IS NOT NULL""",
        "status, reason",
    ),
    "dossiers": (
        "age_band, sex, household_type, competence, prestation, status, decision, amount",
        f"""
  SELECT 'dossiers', d.id, date_trunc('month', d.created_at)::date, b.commune_code,
         guichet_age_band(b.birth_date, d.created_at::date), b.sex, h.type,
         d.prestation, d.prestation, d.status, d.decision, d.amount, now()
  FROM dossier d JOIN beneficiary b ON b.id = d.beneficiary_id {_HOUSEHOLD}
  WHERE {{where}} AND b.commune_code IS NOT NULL""",
        "status, decision, amount",
    ),
}
# aides facultatives (the aids capability's tables, migration 0019): counted when they exist
_AIDS = (
    "age_band, sex, household_type, competence, category, form, status, decision, reason, amount",
    f"""
  SELECT 'aids', a.id, date_trunc('month', a.created_at)::date, a.commune_code,
         guichet_age_band(b.birth_date, a.created_at::date), b.sex, h.type,
         a.competence, a.category, a.form, a.status,
         CASE WHEN a.status IN ('granted', 'paid') THEN 'granted'
              WHEN a.status = 'refused' THEN 'refused' END,
         a.refusal_reason, a.amount_granted, now()
  FROM aid_request a JOIN beneficiary b ON b.id = a.beneficiary_id {_HOUSEHOLD}
  WHERE {{where}}""",
    "commune_code, category, form, status, decision, reason, amount",
)

# which source row refreshes which measure: (table, events, measure, column naming the record,
# the id column of the template's main table)
_TRIGGERS = (
    ("beneficiary", "INSERT OR UPDATE", "people", "id"),
    ("care_team_membership", "INSERT", "people", "beneficiary_id"),
    ("household_member", "INSERT OR UPDATE OR DELETE", "people", "beneficiary_id"),
    ("referral", "INSERT OR UPDATE", "referrals", "id"),
    ("referral_event", "INSERT", "referrals", "referral_id"),
    ("orientation", "INSERT OR UPDATE", "orientations", "id"),
    ("orientation_event", "INSERT", "orientations", "orientation_id"),
    ("dossier", "INSERT OR UPDATE", "dossiers", "id"),
)
_AIDS_TRIGGER = ("aid_request", "INSERT OR UPDATE", "aids", "id")
_KEY = {
    "people": "b.id",
    "referrals": "r.id",
    "orientations": "o.id",
    "dossiers": "d.id",
    "aids": "a.id",
}


def _insert(measure: str, where: str, on_conflict: str) -> str:
    columns, select, _ = _TEMPLATES[measure]
    return (
        f"INSERT INTO stat_fact (measure, source_id, month, commune_code, {columns}, "
        f"refreshed_at) {select.format(where=where)} {on_conflict}"
    )


def _refresh_function(measure: str) -> str:
    updated = ", ".join(f"{c} = excluded.{c}" for c in _TEMPLATES[measure][2].split(", "))
    upsert = _insert(
        measure,
        f"{_KEY[measure]} = p_id",
        f"ON CONFLICT (measure, source_id) DO UPDATE SET {updated}, "
        "refreshed_at = excluded.refreshed_at",
    )
    # a merged or commune-less person is no longer counted
    forget = (
        "DELETE FROM stat_fact f USING beneficiary b WHERE f.measure = 'people' "
        "AND f.source_id = p_id AND b.id = p_id "
        "AND (b.merged_into_id IS NOT NULL OR b.commune_code IS NULL);"
        if measure == "people"
        else ""
    )
    # plpgsql: its statements are planned once per session, not at every call
    return (
        f"CREATE FUNCTION guichet_stat_{measure}(p_id uuid) RETURNS void LANGUAGE plpgsql "
        f"VOLATILE SECURITY DEFINER SET search_path = public AS $$ BEGIN {forget} "
        f"{upsert}; END $$"
    )


_TRIGGER_FUNCTION = """
CREATE FUNCTION guichet_stat_trigger() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE
  row_data jsonb;
  record_id uuid;
BEGIN
  IF TG_OP = 'DELETE' THEN row_data := to_jsonb(OLD); ELSE row_data := to_jsonb(NEW); END IF;
  record_id := (row_data ->> TG_ARGV[1])::uuid;
  CASE TG_ARGV[0]
    WHEN 'people' THEN PERFORM guichet_stat_people(record_id);
    WHEN 'referrals' THEN PERFORM guichet_stat_referrals(record_id);
    WHEN 'orientations' THEN PERFORM guichet_stat_orientations(record_id);
    WHEN 'dossiers' THEN PERFORM guichet_stat_dossiers(record_id);
    WHEN 'aids' THEN PERFORM guichet_stat_aids(record_id);
  END CASE;
  RETURN NULL;
END $$"""


def _tables() -> None:
    op.create_table(
        "stat_holiday",
        sa.Column("day", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_stat_holiday")),
    )
    days = sorted(holidays.country_holidays("FR", years=_HOLIDAY_YEARS))
    op.bulk_insert(
        sa.table("stat_holiday", sa.column("day", sa.Date())), [{"day": d} for d in days]
    )
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
        sa.Column("category", sa.String(20), nullable=True),
        sa.Column("form", sa.String(30), nullable=True),
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


def upgrade() -> None:
    _tables()
    for statement in _HELPERS:
        op.execute(statement)
    triggers = list(_TRIGGERS)
    if sa.inspect(op.get_bind()).has_table("aid_request"):
        _TEMPLATES["aids"] = _AIDS
        triggers.append(_AIDS_TRIGGER)
    for measure in _TEMPLATES:
        op.execute(_refresh_function(measure))
        # the records already there, set by set
        op.execute(_insert(measure, "true", "ON CONFLICT DO NOTHING"))
    op.execute("ANALYZE stat_fact")  # autovacuum may be off: plan on real figures
    op.execute(_TRIGGER_FUNCTION)
    for table, events, measure, column in triggers:
        op.execute(
            f"CREATE TRIGGER stat_fact_refresh AFTER {events} ON {table} FOR EACH ROW "
            f"EXECUTE FUNCTION guichet_stat_trigger('{measure}', '{column}')"
        )
    _security()


def _security() -> None:
    role = app_role()
    grant("stat_fact", "SELECT")
    grant("stat_holiday", "SELECT")
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
        "guichet_stat_area_count(text, text, text, date, date)",
        *(f"guichet_stat_{m}(uuid)" for m in _TEMPLATES),
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
    for signature in (
        "guichet_working_days(date, date)",
        "guichet_age_band(date, date)",
        "guichet_stat_area_count(text, text, text, date, date)",
    ):
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
