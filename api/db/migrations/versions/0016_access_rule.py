"""One access rule: its SQL home and the definer functions narrowed to it.

Who may see which categories of which person now (domain.md §7: role categories ∩ attachment
grants ∩ competence held now, sensitive clearance, break-glass limited to the competence
joined for) is written once, here, as SQL functions:

* ``guichet_holding(org, competence, commune)``: how an organisation holds a competence on a
  commune today (delegation first, then law) and the categories that holding grants;
* ``guichet_access(people, role_categories)``: one row per active care-team membership of the
  acting organisation on these people, with the categories it grants now;
* ``guichet_person_categories(person, role_categories)``: their union, for one person;
* ``guichet_may_see(person, competence, category, role_categories)``: the entry point of
  records "of competence C about person P" (dossiers, notes, aid requests): visible when the
  membership for C grants the category.

``role_categories`` NULL means "no role narrowing": what the organisation's attachment grants
(policies, the change feed, a DPO's export). The sensitive clearance is a request setting
(``guichet.clearance``), so the policies honour it too. Python (``api/auth/access.py``) only
asks these functions; the drifted copies are gone.

``guichet_holding`` and ``convention_grants`` answer about the acting organisation only. The
definer functions that answered too much are narrowed to the same rule: previews obey the
discovery rule (communes where the caller holds ``accueil``, exact names or NIR, ten at
most), so does the matching of a dossier sync, a merged record names its survivor only to
a caller following it, the access log hides
entries about notes and dossiers the caller may not see, and ``person_export`` is dropped:
the export is now the union of the ordinary read paths.

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

from api.db.migrations.helpers import app_role

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_DEFINER = "SECURITY DEFINER SET search_path = public, pg_temp"

# What a membership held by law grants (domain.md §7): every category but the NIR, and the
# NIR for the law-held legal-aid competences (api.domain.catalogue.LEGAL_AID_PRESTATIONS; a
# test checks the two lists agree).
_LAW_CATEGORIES = (
    "ARRAY['identity','contact','household','resources','situation','notes','referrals',"
    "'orientations','dossiers','aids']::text[]"
)
_NIR_COMPETENCES = "ARRAY['rsa','apa','pch','ash','fsl','faj']::text[]"
# person-level categories that a direct join (break-glass, or a dossier sync joining a known
# person) does not open while a sensitive competence follows the person: they may have been
# written for that follow-up (domain.md §7, break-glass limited to the competence joined for)
_PERSON_LEVEL = "ARRAY['household','resources','situation','nir']::text[]"

_CLEARANCE = """
CREATE FUNCTION guichet_clearance() RETURNS boolean LANGUAGE sql STABLE AS
  $$ SELECT coalesce(current_setting('guichet.clearance', true), '') = 'sensitive' $$
"""

# plpgsql, not sql: a definer sql function is never inlined and re-plans its statements at
# every call (6 ms per person measured); plpgsql keeps its plans for the session.
_HOLDING = f"""
CREATE FUNCTION guichet_holding(p_org uuid, p_competence text, p_commune text)
RETURNS TABLE (source text, convention_id uuid, categories text[])
LANGUAGE plpgsql STABLE {_DEFINER} AS $$
DECLARE
  v_today date := (now() AT TIME ZONE 'Europe/Paris')::date;
BEGIN
  IF p_org IS DISTINCT FROM guichet_org() OR p_commune IS NULL THEN
    RETURN;
  END IF;
  -- by delegation (domain.md §4), as convention_holdings says it (the rule's one statement
  -- of delegation): the convention in force that grants it there, with its categories
  RETURN QUERY
    SELECT 'convention'::text, c.id, c.data_categories::text[]
    FROM convention_holdings(p_org, p_competence, p_commune, v_today) h
    JOIN convention c ON c.id = h.convention_id
    ORDER BY c.id
    LIMIT 1;
  IF FOUND THEN
    RETURN;
  END IF;
  -- by law: its kind is a legal holder and the commune is in its territory
  RETURN QUERY
    SELECT 'law'::text, NULL::uuid,
           {_LAW_CATEGORIES} || CASE WHEN p_competence = ANY ({_NIR_COMPETENCES})
                                     THEN ARRAY['nir']::text[] ELSE '{{}}'::text[] END
    FROM organisation o
    JOIN competence k ON k.code = p_competence
    WHERE o.id = p_org AND o.kind = ANY (k.legal_holder_kinds)
      AND EXISTS (SELECT 1 FROM organisation_commune oc
                  WHERE oc.organisation_id = o.id AND oc.commune_code = p_commune);
END
$$
"""

# What conventions in force grant the acting organisation (its scope's holdings): to itself
# only. The public "who is competent" answer stays convention_holdings.
_GRANTS = f"""
CREATE OR REPLACE FUNCTION convention_grants(p_grantee uuid, p_on date)
RETURNS TABLE (convention_id uuid, competences text[], communes text[])
LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT h.convention_id, array_agg(DISTINCT h.competence), array_agg(DISTINCT h.commune)
  FROM convention_holdings(p_grantee, NULL, NULL, p_on) h
  WHERE p_grantee = guichet_org()
  GROUP BY h.convention_id
$$
"""

# Identity matching of a sync batch (0014), within the discovery rule: only people living
# where the caller holds accueil, whatever ids, NIR or communes the batch names.
_MATCHES = f"""
CREATE OR REPLACE FUNCTION dossier_person_matches(
  p_index int[], p_ids uuid[], p_nir_hashes text[], p_birth_dates date[], p_communes text[]
)
RETURNS TABLE (idx int, id uuid, commune_code text, match_keys text[], folded_names text,
               by_id boolean, nir_match boolean, has_nir boolean)
LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT x.idx, b.id, b.commune_code::text, b.match_keys::text[], b.folded_names::text,
         coalesce(b.id = x.pid, false), coalesce(b.nir_hash = x.nir, false),
         b.nir_hash IS NOT NULL
  FROM unnest(p_index, p_ids, p_nir_hashes, p_birth_dates) AS x(idx, pid, nir, birth_date)
  CROSS JOIN LATERAL (
    SELECT c.id, c.commune_code, c.match_keys, c.folded_names, c.nir_hash
    FROM beneficiary c
    WHERE c.merged_into_id IS NULL
      AND (c.id = x.pid OR c.nir_hash = x.nir
           OR (c.birth_date = x.birth_date AND c.commune_code = ANY (p_communes)))
      AND EXISTS (SELECT 1 FROM guichet_holding(guichet_org(), 'accueil', c.commune_code::text))
    LIMIT 50
  ) b
$$
"""

_ACCESS = f"""
CREATE FUNCTION guichet_access(p_people uuid[], p_role_categories text[])
RETURNS TABLE (beneficiary_id uuid, competence text, membership_source text, holding text,
               convention_id uuid, categories text[])
LANGUAGE plpgsql STABLE {_DEFINER} AS $$
BEGIN
  RETURN QUERY
  SELECT m.beneficiary_id, m.competence::text, m.source::text, h.source, h.convention_id,
    CASE WHEN h.source IS NULL OR (k.sensitive AND NOT guichet_clearance())
         THEN '{{}}'::text[]
    ELSE ARRAY(
      SELECT DISTINCT g FROM unnest(
        CASE WHEN m.granted_categories IS NOT NULL
             THEN array_remove(m.granted_categories::text[], 'nir')
             ELSE h.categories END) AS g
      WHERE (p_role_categories IS NULL OR g = ANY (p_role_categories))
        AND NOT (m.source IN ('break_glass', 'sync') AND g = ANY ({_PERSON_LEVEL})
                 AND EXISTS (SELECT 1 FROM care_team_membership s
                             JOIN competence sk ON sk.code = s.competence
                             WHERE s.beneficiary_id = m.beneficiary_id
                               AND s.ended_at IS NULL AND sk.sensitive
                               AND s.competence <> m.competence))
      ORDER BY g)
    END
  FROM care_team_membership m
  JOIN beneficiary b ON b.id = m.beneficiary_id
  JOIN competence k ON k.code = m.competence
  LEFT JOIN LATERAL guichet_holding(m.organisation_id, m.competence::text,
                                    b.commune_code::text) h ON true
  WHERE m.beneficiary_id = ANY (p_people) AND m.organisation_id = guichet_org()
    AND m.ended_at IS NULL;
END
$$
"""

_PERSON_CATEGORIES = """
CREATE FUNCTION guichet_person_categories(p_person uuid, p_role_categories text[])
RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{}'::text[])
  FROM guichet_access(ARRAY[p_person], p_role_categories) a, unnest(a.categories) AS c
$$
"""

_MAY_SEE = """
CREATE FUNCTION guichet_may_see(
  p_person uuid, p_competence text, p_category text, p_role_categories text[])
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT EXISTS (
    SELECT 1 FROM guichet_access(ARRAY[p_person], p_role_categories) a
    WHERE a.competence = p_competence AND p_category = ANY (a.categories))
$$
"""

# Notes (domain.md §7): private to their author, organisation to its organisation, team to
# the team members holding the note's competence; always within the notes category of the
# membership for that competence.
_NOTE_VISIBLE = """
CREATE FUNCTION guichet_note_visible(
  p_person uuid, p_competence text, p_organisation uuid, p_visibility text, p_author uuid)
RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT (p_visibility = 'team' OR p_organisation = guichet_org())
     AND (p_visibility <> 'private' OR p_author = guichet_principal())
     AND guichet_may_see(p_person, p_competence, 'notes', NULL)
$$
"""

# plpgsql for the same reason as guichet_holding: the policies call these once per row
_CAN_SEE_NOTE = f"""
CREATE FUNCTION guichet_can_see_note(p_note uuid) RETURNS boolean
LANGUAGE plpgsql STABLE {_DEFINER} AS $$
BEGIN
  RETURN coalesce((
    SELECT guichet_note_visible(n.beneficiary_id, n.competence::text, n.organisation_id,
                                n.visibility::text, n.author_user_id)
    FROM note n WHERE n.id = p_note), false);
END
$$
"""

_CAN_SEE_DOSSIER = f"""
CREATE OR REPLACE FUNCTION guichet_can_see_dossier(p_dossier uuid) RETURNS boolean
LANGUAGE plpgsql STABLE COST 500 {_DEFINER} AS $$
BEGIN
  RETURN coalesce((
    SELECT guichet_may_see(d.beneficiary_id, d.prestation::text, 'dossiers', NULL)
    FROM dossier d WHERE d.id = p_dossier), false);
END
$$
"""

# Discovery without access (domain.md §6), the whole rule in one place: people living where
# the caller holds accueil, with this NIR, or born that day with the same folded names; ten
# at most; nothing beyond a preview.
_PREVIEWS = f"""
CREATE FUNCTION person_previews(p_nir_hash text, p_birth_date date, p_keys text[])
RETURNS TABLE (id uuid, birth_name text, usage_name text, first_names text, birth_date date,
               commune_code text, nir_match boolean)
LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT b.id, b.birth_name::text, b.usage_name::text, b.first_names::text, b.birth_date,
         b.commune_code::text, (p_nir_hash IS NOT NULL AND b.nir_hash = p_nir_hash)
  FROM beneficiary b
  WHERE b.merged_into_id IS NULL AND b.anonymised_at IS NULL AND b.commune_code IS NOT NULL
    AND ((p_nir_hash IS NOT NULL AND b.nir_hash = p_nir_hash)
         OR (b.birth_date = p_birth_date AND b.match_keys::text[] && p_keys))
    AND EXISTS (SELECT 1 FROM guichet_holding(guichet_org(), 'accueil', b.commune_code::text))
  ORDER BY 7 DESC, b.id
  LIMIT 10
$$
"""

# Followers for previews: only of people the caller may discover (see person_previews).
_FOLLOWERS = f"""
CREATE OR REPLACE FUNCTION person_followers(p_ids uuid[])
RETURNS TABLE (beneficiary_id uuid, organisation_id uuid, organisation_name text,
               competence text)
LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT m.beneficiary_id, o.id, o.name::text, m.competence::text
  FROM care_team_membership m
  JOIN beneficiary b ON b.id = m.beneficiary_id
  JOIN organisation o ON o.id = m.organisation_id
  JOIN competence k ON k.code = m.competence
  WHERE m.beneficiary_id = ANY (p_ids) AND m.ended_at IS NULL AND NOT k.sensitive
    AND b.commune_code IS NOT NULL
    AND EXISTS (SELECT 1 FROM guichet_holding(guichet_org(), 'accueil', b.commune_code::text))
$$
"""

_MERGED_INTO = f"""
CREATE OR REPLACE FUNCTION person_merged_into(p_id uuid) RETURNS uuid
LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT merged_into_id FROM beneficiary
  WHERE id = p_id AND merged_into_id IS NOT NULL AND guichet_is_attached(merged_into_id)
$$
"""

# CASE, not AND: the cast must only meet the ids of notes and dossiers
# Where a person lives, for a legal holder joining directly (break-glass) or an access
# request: only to a caller who may discover the person (it holds accueil there; a legal
# holder of any competence on a commune holds accueil on it too). Anyone else learns nothing,
# not even that the id exists.
_LOCATOR = f"""
CREATE OR REPLACE FUNCTION person_locator(p_id uuid) RETURNS TABLE (commune_code text)
LANGUAGE sql STABLE {_DEFINER} AS $$
  SELECT b.commune_code::text FROM beneficiary b
  WHERE b.id = p_id AND b.merged_into_id IS NULL AND b.anonymised_at IS NULL
    AND b.commune_code IS NOT NULL
    AND EXISTS (SELECT 1 FROM guichet_holding(guichet_org(), 'accueil', b.commune_code::text))
$$
"""

_HIDDEN_RECORD = (
    "CASE e.resource_type WHEN 'note' THEN NOT guichet_can_see_note(e.resource_id::uuid) "
    "WHEN 'dossier' THEN NOT guichet_can_see_dossier(e.resource_id::uuid) ELSE false END"
)

_ACCESS_LOG = f"""
CREATE OR REPLACE FUNCTION person_access_log(p_id uuid, p_before bigint, p_limit integer)
RETURNS SETOF audit_entry
LANGUAGE plpgsql STABLE {_DEFINER} AS $$
DECLARE
  ids uuid[] := ARRAY(SELECT p_id UNION ALL
                      SELECT b.id FROM beneficiary b WHERE b.merged_into_id = p_id);
  attached boolean := guichet_is_attached(p_id);
BEGIN
  RETURN QUERY SELECT e.* FROM audit_entry e
    WHERE e.beneficiary_id = ANY (ids) AND (p_before IS NULL OR e.id < p_before)
      AND (e.organisation_id = guichet_org()
           OR (attached AND NOT (e.resource_id IS NOT NULL AND {_HIDDEN_RECORD})))
    ORDER BY e.id DESC LIMIT p_limit;
END
$$
"""

# The webhook worker asks as each subscriber organisation: no user, so no clearance.
_CAN_SEE_AS = """
CREATE OR REPLACE FUNCTION guichet_can_see_as(p_org uuid, p_type text, p_id uuid)
RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM set_config('guichet.context', 'request', true);
  PERFORM set_config('guichet.organisation_id', p_org::text, true);
  PERFORM set_config('guichet.principal_id', '', true);
  PERFORM set_config('guichet.clearance', '', true);
  RETURN guichet_can_see(p_type, p_id);
END
$$
"""

_NOTE_READ = (
    "guichet_is_attached(beneficiary_id) AND guichet_note_visible(beneficiary_id, "
    "competence, organisation_id, visibility, author_user_id)"
)

_RUNTIME = (
    "guichet_holding(uuid, text, text)",
    "guichet_access(uuid[], text[])",
    "guichet_can_see_note(uuid)",
    "person_previews(text, date, text[])",
)


# Why each function runs with its owner's rights: the one-line reasons of the security
# inventory (api/db/security_inventory.md reads them back from the catalogue).
REASONS = {
    "audit_chain_head()": "the acting organisation's chain head, also after the purge emptied "
    "it (the anchor table is the owner's)",
    "convention_grants(uuid, date)": "what conventions in force grant one grantee, for its own "
    "scope; conventions are readable by their parties only",
    "convention_holdings(uuid, text, text, date)": "the public 'who is competent' answer, "
    "while conventions are readable by their parties only",
    "dossier_person_matches(integer[], uuid[], text[], date[], text[])": "identity matching "
    "of a sync batch: matching facts only, the service keeps what the caller holds",
    "end_origin_memberships(uuid, text, timestamp with time zone)": "a party of a referral or "
    "orientation ends the memberships it gave, which belong to the other organisation",
    "ensure_user(uuid, text, text, text)": "adding a member by e-mail finds a user of other "
    "organisations, invisible to the caller; returns the id only",
    "guichet_access(uuid[], text[])": "THE access rule: categories each membership of the "
    "acting organisation grants now (reads conventions and the whole care team)",
    "guichet_can_see(text, uuid)": "the change feed and webhooks re-check what the acting "
    "organisation may see now, by type, through the per-type probes",
    "guichet_can_see_dossier(uuid)": "dossier policies probe a row through the access rule "
    "without recursing into their own table",
    "guichet_can_see_note(uuid)": "the access log hides entries about notes the caller may not "
    "read, whose rows it cannot read",
    "guichet_can_see_orientation(uuid)": "orientation event policies probe the parent row "
    "without recursing",
    "guichet_can_see_referral(uuid)": "referral event and message policies probe the parent "
    "row without recursing",
    "guichet_care_team_of(uuid)": "the audience of an access request: organisation ids only, "
    "to an attached caller or to the requester",
    "guichet_dossier_decider_joins(uuid, uuid, text)": "the instructing side writes the "
    "deciding side's membership, and only that one",
    "guichet_holding(uuid, text, text)": "how an organisation holds a competence on a commune "
    "now; conventions are readable by their parties only",
    "guichet_is_attached(uuid)": "the attachment probe of every person policy, without "
    "recursing into the care-team policy",
    "guichet_is_member(uuid, uuid)": "a referent named by an orientation must belong to the "
    "target organisation, whose members the caller cannot read",
    "guichet_origin_grants(uuid, uuid)": "the sender or issuer opens the recipient's "
    "membership: a yes or no, nothing read",
    "guichet_record_change(text, uuid, text, text, text, uuid[], timestamp with time zone)": (
        "the change and the other parties' webhook deliveries, whose subscriptions the "
        "caller cannot read"
    ),
    "merge_beneficiaries(uuid, uuid, timestamp with time zone)": "a merge re-points rows of "
    "every table, including other partners' rows about the person; both must be followed",
    "person_access_log(uuid, bigint, integer)": "a person's access log across organisations "
    "for the care team, hiding entries about notes and dossiers the caller may not see",
    "person_columns()": "the catalogue of columns referring to a person, for the merge (not "
    "granted to the app role)",
    "person_followers(uuid[])": "who follows people the caller may discover, for previews "
    "(sensitive competences never show)",
    "person_locator(uuid)": "where a discoverable person lives, for break-glass and access "
    "requests; nothing about anyone else",
    "person_merged_into(uuid)": "the survivor of a merged record, only when the caller follows "
    "the survivor",
    "person_previews(text, date, text[])": "discovery without access: ten minimal previews "
    "where the caller holds accueil, exact names or NIR",
    "referral_system_transition(uuid, text, text, text, text, timestamp with time zone)": (
        "a consent withdrawal recorded by a care-team member cancels referrals it is no party to"
    ),
    "referrals_for_consent(uuid)": "the referrals a withdrawn consent covered, for a member of "
    "the person's care team",
}


def upgrade() -> None:
    role = app_role()
    op.execute("DROP FUNCTION person_candidates(text, date)")
    op.execute("DROP FUNCTION person_export(uuid)")
    # no policy uses it since 0009 (guichet_is_attached probes per row)
    op.execute("DROP FUNCTION guichet_attached()")
    for statement in (
        _CLEARANCE,
        _HOLDING,
        _GRANTS,
        _MATCHES,
        _ACCESS,
        _PERSON_CATEGORIES,
        _MAY_SEE,
        _NOTE_VISIBLE,
        _CAN_SEE_NOTE,
        _CAN_SEE_DOSSIER,
        _PREVIEWS,
        _FOLLOWERS,
        _MERGED_INTO,
        _LOCATOR,
        _ACCESS_LOG,
        _CAN_SEE_AS,
    ):
        op.execute(statement)
    for signature in _RUNTIME:
        op.execute(f"REVOKE ALL ON FUNCTION {signature} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {signature} TO {role}")
    op.execute("DROP POLICY runtime_read ON note")
    op.execute(f"CREATE POLICY runtime_read ON note FOR SELECT TO {role} USING ({_NOTE_READ})")
    for signature, reason in REASONS.items():
        quoted = reason.replace("'", "''")
        op.execute(f"COMMENT ON FUNCTION {signature} IS '{quoted}'")


def downgrade() -> None:
    raise NotImplementedError("recreate the database or restore from backup")
