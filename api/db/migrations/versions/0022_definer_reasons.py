"""Definer functions of staff, login limits, aids, statistics and the access version: each
states why it runs with its owner's rights; statistical rows read only through them.

**Statistics.** ``stat_fact`` holds one row per person, referral, orientation or dossier
counted, and a person's id until the retention purge: row by row it is microdata, not an
aggregate. Until now the runtime role read it directly for every communes of the acting
organisation's territory, whoever acted: any agent of the CAF, whose territory covers Amiens,
read the rows of the CCAS d'Amiens's people. Now its read policy also requires a statistics
reader (a ``pilotage`` member or a ``stats:read`` client of the acting organisation:
``guichet_stat_reader``), and the runtime role may read the columns of a statistical row but
never which record it counts (``id``, ``source_id``: column privileges). The comparison
total ``guichet_stat_area_count`` answers the same readers only, for an EPCI or a
département that contains part of their territory (a report's comparison line). Reading the
table itself, not a set-returning function, lets the planner aggregate the rows as it scans
them.

**Aids.** ``guichet_aid_history`` told any organisation attached to the person (the Secours
populaire after a referral sharing identity only) the household's aids from any grantor; it
now answers only a party of an aid request of that grantor about the person.

**Triggers.** ``guichet_stat_trigger`` is no longer executable by the runtime role: a trigger
fires whatever the writer's privileges, and called directly it only fails.

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

#: what the runtime role may read of stat_fact: everything but ``id`` and ``source_id``
STAT_COLUMNS = (
    "measure",
    "month",
    "commune_code",
    "age_band",
    "sex",
    "household_type",
    "competence",
    "status",
    "reason",
    "outcome",
    "prestation",
    "decision",
    "category",
    "form",
    "amount",
    "acknowledged_days",
    "accepted_days",
    "completed_days",
    "refreshed_at",
)

# Whether the transaction's principal may read statistics for the acting organisation: the
# database's copy of the permission table's ``pilotage`` → stats:read and client scope
# ``stats:read`` → stats:read (api/auth/permissions.py), read from the same rows the scope is
# built from. A definer: the read policy of stat_fact calls it for the runtime role, which
# may not read other members' rows.
_READER = """
CREATE FUNCTION guichet_stat_reader() RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT guichet_context() = 'request' AND guichet_org() IS NOT NULL AND (
    EXISTS (SELECT 1 FROM membership m JOIN app_user u ON u.id = m.user_id
            WHERE m.user_id = guichet_principal() AND m.organisation_id = guichet_org()
              AND m.accepted_at IS NOT NULL AND u.disabled_at IS NULL
              AND 'pilotage' = ANY (m.roles))
    OR EXISTS (SELECT 1 FROM api_client c
               WHERE c.id = guichet_principal() AND c.organisation_id = guichet_org()
                 AND c.revoked_at IS NULL AND 'stats:read' = ANY (c.scopes)))
$$
"""

# the same body as migration 0020's, answered only to a statistics reader and only for an
# area that contains part of its territory
_AREA_COUNT = """
CREATE OR REPLACE FUNCTION guichet_stat_area_count(p_measure text, p_kind text, p_code text,
                                                   p_first date, p_last date) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
  SELECT count(*) FROM stat_fact f JOIN commune c ON c.code = f.commune_code
  WHERE p_kind IN ('epci', 'departement') AND f.measure = p_measure
    AND f.month BETWEEN p_first AND p_last
    AND CASE p_kind WHEN 'epci' THEN c.epci_siren = p_code ELSE c.departement_code = p_code END
    AND (f.competence IS NULL OR f.competence <> ALL (
      ARRAY(SELECT code FROM competence WHERE sensitive)))
    AND guichet_stat_reader()
    AND EXISTS (
      SELECT 1 FROM organisation_commune oc JOIN commune own ON own.code = oc.commune_code
      WHERE oc.organisation_id = guichet_org()
        AND CASE p_kind WHEN 'epci' THEN own.epci_siren = p_code
                        ELSE own.departement_code = p_code END)
$$
"""

# 0019's body, told only to a party of an aid request of that grantor about the person (the
# grantor, or the organisation instructing it): being attached for another competence (a
# referral sharing identity only) no longer reads the household's aids
_AID_HISTORY = """
CREATE OR REPLACE FUNCTION guichet_aid_history(p_person uuid, p_grantor uuid, p_since date)
RETURNS TABLE (aid_code text, requests bigint, amount numeric)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT r.aid_code::text, count(*),
         coalesce(sum(r.amount_granted - coalesce((
           SELECT sum(p.amount) FROM aid_payment p
           WHERE p.request_id = r.id AND p.cancelled_at IS NOT NULL), 0)), 0)
  FROM aid_request r
  WHERE guichet_is_attached(p_person)
    AND EXISTS (
      SELECT 1 FROM aid_request own
      WHERE own.beneficiary_id = p_person AND own.grantor_organisation_id = p_grantor
        AND guichet_org() IN (own.grantor_organisation_id, own.instructing_organisation_id))
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

REASONS = {
    "bump_access_version()": (
        "trigger: replaces the access version on every committed change of what a scope is "
        "built from, while the runtime role may only read that number"
    ),
    "enrol_member(uuid, text, text, text, text[], timestamp with time zone)": (
        "the one enrolment path: whether the e-mail is a member elsewhere (other organisations' "
        "rows) decides member or invitation; only the acting organisation, or the platform "
        "operator for a first admin; returns the user id and the outcome only"
    ),
    "guichet_aid_grantor_joins(uuid, uuid, text)": (
        "aid_request policy probe: whether the acting organisation instructs a submitted "
        "request for that grantor, person and competence (the grantor's care-team join)"
    ),
    "guichet_aid_history(uuid, uuid, date)": (
        "a household's 12-month aids from one grantor, amounts per aid only, for a party "
        "(grantor or instructing organisation) of an aid request of that grantor about the "
        "person; other partners' requests stay unseen"
    ),
    "guichet_aid_money(integer)": (
        "the acting organisation's own granted and paid amounts of a year, including requests "
        "of people it no longer follows; amounts per request, no person"
    ),
    "guichet_aids_can_see(uuid, text)": (
        "the access rule for aid requests (category aids), asked of guichet_may_see by the "
        "policies, which cannot read the care teams themselves"
    ),
    "guichet_can_see_aid_request(uuid)": (
        "per-request probe of the event and payment policies and the feed: reads the "
        "request's person and competence, answers guichet_aids_can_see's boolean only"
    ),
    "guichet_login_admit(bytea, bytea, integer, integer, integer, integer, integer)": (
        "login limits: login_attempt is not granted to the runtime role; keyed hashes in, a "
        "reservation id and a wait out"
    ),
    "guichet_login_failed(bigint, bytea)": (
        "login limits: records a failure in login_attempt, which the runtime role cannot write"
    ),
    "guichet_login_succeeded(bytea)": (
        "login limits: clears an account hash's failures in login_attempt, which the runtime "
        "role cannot write"
    ),
    "guichet_stat_area_count(text, text, text, date, date)": (
        "a report's comparison total: one count for an EPCI or a département containing part "
        "of the caller's territory, beyond it; statistics readers only, sensitive excluded"
    ),
    "guichet_stat_dossiers(uuid)": (
        "keeps the dossier's anonymous statistical row current; not callable by the runtime role"
    ),
    "guichet_stat_aids(uuid)": (
        "keeps the aid request's anonymous statistical row current; not callable by the "
        "runtime role"
    ),
    "guichet_stat_orientations(uuid)": (
        "keeps the orientation's anonymous statistical row current; not callable by the "
        "runtime role"
    ),
    "guichet_stat_people(uuid)": (
        "keeps the person's anonymous statistical row current; not callable by the runtime role"
    ),
    "guichet_stat_referrals(uuid)": (
        "keeps the referral's anonymous statistical row current; not callable by the runtime role"
    ),
    "guichet_stat_reader()": (
        "whether the principal may read statistics for the acting organisation (pilotage or "
        "stats:read), for stat_fact's read policy; reads memberships and clients"
    ),
    "guichet_stat_trigger()": (
        "trigger on every source table: writes stat_fact (not writable by the runtime role) "
        "from every write path, whatever rows the writer may see"
    ),
}


def upgrade() -> None:
    role = app_role()
    op.execute(_READER)
    op.execute("REVOKE ALL ON FUNCTION guichet_stat_reader() FROM PUBLIC")
    op.execute(f"GRANT EXECUTE ON FUNCTION guichet_stat_reader() TO {role}")
    op.execute(_AREA_COUNT)
    # a statistics reader, its territory (the reader check evaluated once per statement)
    op.execute("DROP POLICY runtime_read ON stat_fact")
    op.execute(
        f"CREATE POLICY runtime_read ON stat_fact FOR SELECT TO {role} USING ("
        "(SELECT guichet_stat_reader()) AND commune_code = ANY (ARRAY("
        "SELECT commune_code FROM organisation_commune WHERE organisation_id = guichet_org())))"
    )
    # the columns of a statistical row, never which record it counts
    op.execute(f"REVOKE ALL ON stat_fact FROM {role}")
    op.execute(f"GRANT SELECT ({', '.join(STAT_COLUMNS)}) ON stat_fact TO {role}")
    op.execute("REVOKE ALL ON FUNCTION guichet_stat_trigger() FROM PUBLIC")
    op.execute(_AID_HISTORY)
    for signature, reason in REASONS.items():
        quoted = reason.replace("'", "''")
        op.execute(f"COMMENT ON FUNCTION {signature} IS '{quoted}'")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
