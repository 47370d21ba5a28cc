"""Referrals at scale: a big recipient's inbox and outbox, and sending, against a raw
primary-key read of the same run.

    .venv/bin/python -m bench.referrals --help

1. ``generate``: bench/dataset.py's population (``guichet demo``, ~300 organisations of the
   Somme with one agent each, ``--people`` people with their care teams), then, as the owner
   with ``COPY`` (foreign-key triggers skipped, every reference checked afterwards),
   ``--referrals`` (1 000 000) referrals between the partners of those people: each starts
   from a person and one of their care-team organisations and goes to another partner for a
   competence (the local CCAS/CIAS to the département for the RSA or to an association for
   food aid, the département or an association to the local CCAS/CIAS, ...), so that the
   département and the CCAS of the big communes, the CCAS d'Amiens first, receive most of
   them. Created over the last three years (denser lately); statuses by age (recent ones
   mostly open, old ones mostly closed); every transition an event; a redirected referral
   has its child; a pending care-team membership for the recipient of each referral about a
   known person (active while unanswered), a full one from acceptance; a consent record per
   person, sender and competence, or an audited override, or an inline identity (5 %).
   Then ``ANALYZE`` (autovacuum is off on this machine's PostgreSQL).
   With ``--database-url``, a database generated earlier is measured instead (kept).
2. Measures with wrk against the live service (bench/http.py's ``Service``), in
   ``--rounds`` interleaved rounds: ``healthz``; the baseline ``asyncpg_pk_read`` of
   bench/dataset.py (raw ``SELECT * FROM beneficiary WHERE id = $1``); the CCAS d'Amiens
   agent's inbox, first page and pages deep in it through cursors; its outbox; the baseline
   ``raw_send`` (the rows a send writes, by plain asyncpg statements, one transaction per
   send) and ``POST /v1/referrals`` from a few associations to the CCAS d'Amiens (each
   request a new referral); the service's CPU per request and the load average beside them.
3. Profiles each request in process (the service's own code, runtime role, rolled back) and
   ``EXPLAIN (ANALYZE, BUFFERS)``s the list query and the slowest statements; lists the
   rows one send and one raw send write. On a kept or given database, deletes what the
   sends wrote.

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from bench.dataset import (
    BASELINE_PK,
    CCAS_AGENT,
    CCAS_AMIENS,
    DEPARTEMENT_ORG,
    DRAIN_SECONDS,
    EXPLAIN_MIN_MS,
    EXPLAIN_TOP,
    HEALTHZ,
    PROBE_REQUESTS,
    GenerationReport,
    Profile,
    Row,
    Statement,
    Targets,
    bench_database,
    explain_statement,
    find_targets,
    foreign_key_orphans,
    frozen_source,
    generate,
    key_plan_lines,
    new_nir_key,
    probe_alone,
    raw_pk_reads,
    sign_in,
    skip_triggers,
)
from bench.http import (
    WARMUP_SECONDS,
    WRK_SCRIPT,
    LoadGenerator,
    Measurement,
    Result,
    Scenario,
    Service,
    Wrk,
    add_load_options,
    check_load_options,
    choose_generator,
    machine,
    plain_url,
    profile_claims,
    run_cli,
    save_results,
    service_env,
    to_result,
)

AMIENS = "80021"
PAGE_LIMIT = 50
DEEP_CURSORS = 200  # cursors spread over the inbox, rotated over by the deep-page scenario
CHUNK = 50_000  # referrals built in Python, then copied, at a time
SPAN_DAYS = 3 * 365  # referrals are created over the last three years
RECENT_DAYS = 14
AGE_SKEW = 1.6  # age = span * u ** AGE_SKEW: more referrals lately (activity grows)
INLINE_SHARE = 0.05  # referrals naming a person by an inline identity (no record yet)
OVERRIDE_SHARE = 0.10  # of those about a known person: audited consent override
HIGH_URGENCY_SHARE = 0.10
ACKNOWLEDGED_FIRST = 0.5  # answered after an acknowledgement
ASSOCIATION_ZIPF = 0.9  # exponent of the associations' weights: a few big ones
SEND_PEOPLE = 200  # people per sending association in the creation scenario
REFERRAL_STATUSES = (
    "sent",
    "acknowledged",
    "accepted",
    "in_progress",
    "on_hold",
    "completed",
    "not_completed",
    "declined",
    "redirected",
    "withdrawn",
    "expired",
    "cancelled",
)
OPEN_UNANSWERED = frozenset({"sent", "acknowledged"})
OPEN_ANSWERED = frozenset({"accepted", "in_progress", "on_hold"})
# status weights (%) by age: under RECENT_DAYS, then older
RECENT_MIX = (30, 20, 12, 10, 2, 8, 1, 8, 3, 3, 2, 1)
OLDER_MIX = (0, 0, 2, 6, 2, 55, 8, 12, 3, 3, 6, 3)
NEEDS: dict[str, tuple[tuple[str, str], ...]] = {
    "rsa": (
        ("instruction_rsa", "Ouverture de droits au RSA à instruire."),
        ("accompagnement_rsa", "Accompagnement social du bénéficiaire du RSA."),
    ),
    "insertion": (("accompagnement_emploi", "Accompagnement socio-professionnel vers l'emploi."),),
    "fsl": (
        ("impaye_loyer", "Impayés de loyer : dossier FSL maintien."),
        ("acces_logement", "Dépôt de garantie et premier loyer : FSL accès."),
        ("energie", "Facture d'énergie impayée : FSL énergie."),
    ),
    "apa": (("evaluation_apa", "Évaluation de la perte d'autonomie à domicile."),),
    "aide_facultative": (
        ("secours_urgence", "Secours d'urgence : plus de ressources jusqu'à la fin du mois."),
        ("aide_cantine", "Participation aux frais de cantine des enfants."),
        ("aide_energie", "Aide ponctuelle pour une facture d'énergie."),
    ),
    "aide_alimentaire": (
        ("colis_alimentaire", "Colis pour 3 personnes."),
        ("epicerie_sociale", "Accès à l'épicerie sociale pour trois mois."),
    ),
    "domiciliation": (("election_domicile", "Demande d'élection de domicile."),),
}
MESSAGES = (
    None,
    None,
    "Personne reçue en permanence, dossier transmis.",
    "Merci de la recontacter rapidement.",
    "Situation connue de nos services.",
)
SHARED_EXTRA = ("contact", "situation", "resources")
CONSENT_PURPOSE = "Partage avec les partenaires pour l'adressage de sa demande."
OVERRIDE_JUSTIFICATION = "Famille sans ressources ce soir."


# --------------------------------------------------------------------------- generation


@dataclass
class ReferralGeneration:
    seconds: float = 0.0  # the referrals' part: Python, COPY and the foreign-key checks
    analyze_seconds: float = 0.0
    referrals: int = 0
    redirected_children: int = 0
    inline: int = 0
    overrides: int = 0
    events: int = 0
    memberships: int = 0
    pending_active: int = 0  # unanswered: the recipient sees what was shared
    accepted_active: int = 0  # from acceptance, until the referral closes
    consents: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    triggers_skipped: bool = False


@dataclass
class _Person:
    id: str
    commune: str
    local: str | None  # the CCAS/CIAS following them (aide_facultative)
    association: str | None  # an association following them (accueil)
    identity: tuple[str, str, date, str]  # birth name, first names, birth date, sex


REFERRAL_COLUMNS = [
    "id",
    "sender_organisation_id",
    "sender_user_id",
    "recipient_organisation_id",
    "redirected_by_organisation_id",
    "beneficiary_id",
    "inline_identity",
    "commune_code",
    "competence",
    "need_code",
    "need_description",
    "message",
    "shared_categories",
    "urgency",
    "response_due_on",
    "paused_on",
    "consent_id",
    "consent_override_reason",
    "consent_override_justification",
    "consent_declared",
    "parent_referral_id",
    "status",
    "version",
    "created_at",
    "updated_at",
    "closed_at",
]
EVENT_COLUMNS = [
    "referral_id",
    "at",
    "from_status",
    "to_status",
    "organisation_id",
    "actor_user_id",
    "reason_code",
    "outcome_code",
    "comment",
]
MEMBERSHIP_COLUMNS = [
    "id",
    "beneficiary_id",
    "organisation_id",
    "competence",
    "team_role",
    "source",
    "granted_categories",
    "started_at",
    "ended_at",
    "end_reason",
    "origin_id",
]
CONSENT_COLUMNS = [
    "id",
    "beneficiary_id",
    "kind",
    "organisation_id",
    "competence",
    "purpose",
    "method",
    "given_on",
    "recorded_by_organisation_id",
    "recorded_by_user_id",
    "created_at",
]


def generate_referrals(owner_url: str, referrals: int, seed: int) -> ReferralGeneration:
    """Add ``referrals`` referrals (see the module docstring) to a database filled by
    bench/dataset.py's ``generate``, then ANALYZE it."""
    report = ReferralGeneration()
    started = time.monotonic()
    asyncio.run(_load_referrals(owner_url, referrals, seed, report))
    report.seconds = time.monotonic() - started
    t0 = time.monotonic()
    asyncio.run(_analyze(owner_url))
    report.analyze_seconds = time.monotonic() - t0
    return report


async def _analyze(url: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


class _Builder:
    """Builds the rows of one referral at a time (and of its redirected child)."""

    def __init__(
        self,
        rng: random.Random,
        end: datetime,
        agents: dict[str, str | None],
        departement: str,
        associations: list[str],
    ) -> None:
        from api.domain.referrals.rules import DECLINE_REASONS, OUTCOMES, default_response_due_on

        self.rng = rng
        self.rand = rng.random
        self.end = end
        self.agents = agents
        self.departement = departement
        self.associations = associations
        weights = [1 / (n + 1) ** ASSOCIATION_ZIPF for n in range(len(associations))]
        total = sum(weights)
        self.association_cdf = []
        acc = 0.0
        for w in weights:
            acc += w / total
            self.association_cdf.append(acc)
        self.decline_reasons = sorted(DECLINE_REASONS)
        self.outcomes = sorted(OUTCOMES)
        self.due_on = cache(default_response_due_on)
        self.referrals: list[tuple[Any, ...]] = []
        self.events: list[tuple[Any, ...]] = []
        self.memberships: list[tuple[Any, ...]] = []
        self.consents: list[tuple[Any, ...]] = []
        self.consent_ids: dict[tuple[str, str, str], str] = {}
        self.counts: Counter[str] = Counter()
        self.paths = {
            (status, ack): self._path(status, ack)
            for status in REFERRAL_STATUSES
            for ack in (False, True)
        }

    @staticmethod
    def _path(status: str, ack: bool) -> tuple[str, ...]:
        """The statuses after ``sent`` leading to ``status``."""
        first = ("acknowledged",) if ack else ()
        return {
            "sent": (),
            "acknowledged": ("acknowledged",),
            "accepted": (*first, "accepted"),
            "in_progress": (*first, "accepted", "in_progress"),
            "on_hold": (*first, "accepted", "in_progress", "on_hold"),
            "completed": (*first, "accepted", "in_progress", "completed"),
            "not_completed": (*first, "accepted", "in_progress", "not_completed"),
            "declined": (*first, "declined"),
            "redirected": (*first, "redirected"),
            "withdrawn": ("withdrawn",),
            "expired": (*first, "expired"),
            "cancelled": ("cancelled",),
        }[status]

    def new_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def association(self, other_than: str | None = None) -> str:
        while True:
            u = self.rand()
            lo, hi = 0, len(self.association_cdf) - 1
            while lo < hi:  # first weight whose cumulated share exceeds u
                mid = (lo + hi) // 2
                if self.association_cdf[mid] < u:
                    lo = mid + 1
                else:
                    hi = mid
            if self.associations[lo] != other_than or len(self.associations) == 1:
                return self.associations[lo]

    def pick(self, options: Sequence[Any]) -> Any:
        return options[int(self.rand() * len(options))]

    def weighted(self, options: Sequence[tuple[Any, float]]) -> Any:
        u = self.rand()
        for value, share in options:
            u -= share
            if u < 0:
                return value
        return options[-1][0]

    def flow(self, person: _Person) -> tuple[str, str, str]:
        """Sender, recipient and competence of a referral about ``person``."""
        dep = self.departement
        local = person.local
        association = person.association or self.association()
        u = self.rand()
        if local is not None:
            if u < 0.40:
                return (
                    local,
                    dep,
                    self.weighted((("rsa", 0.5), ("insertion", 0.2), ("fsl", 0.2), ("apa", 0.1))),
                )
            if u < 0.60:
                return local, association, self.weighted((("aide_alimentaire", 0.8), ("fsl", 0.2)))
            if u < 0.85:
                return (
                    dep,
                    local,
                    self.weighted(
                        (
                            ("aide_facultative", 0.7),
                            ("aide_alimentaire", 0.2),
                            ("domiciliation", 0.1),
                        )
                    ),
                )
            return (
                association,
                local,
                self.weighted((("aide_facultative", 0.6), ("aide_alimentaire", 0.4))),
            )
        if u < 0.5:
            return association, dep, self.weighted((("rsa", 0.6), ("fsl", 0.4)))
        if u < 0.8:
            return dep, self.association(), self.weighted((("fsl", 0.5), ("aide_alimentaire", 0.5)))
        return association, self.association(other_than=association), "aide_alimentaire"

    def status_for(self, age: timedelta) -> str:
        mix = RECENT_MIX if age < timedelta(days=RECENT_DAYS) else OLDER_MIX
        u = self.rand() * 100
        for status, weight in zip(REFERRAL_STATUSES, mix, strict=True):
            u -= weight
            if u < 0:
                return status
        return "completed"

    def add(
        self,
        person: _Person,
        sender: str,
        recipient: str,
        competence: str,
        created: datetime,
        *,
        parent: tuple[str, str, dict[str, Any]] | None = None,
        child_allowed: bool = True,
    ) -> int:
        """Rows of one referral (and of its child if redirected); how many referrals."""
        rand = self.rand
        rid = self.new_id()
        age = self.end - created
        status = self.status_for(age)
        if status == "redirected" and (parent is not None or not child_allowed):
            status = "declined"  # one redirection per chain here; no child past the total
        path = self.paths[(status, rand() < ACKNOWLEDGED_FIRST)]
        if parent is None:
            inline = rand() < INLINE_SHARE
            code, description = self.pick(NEEDS[competence])
            shared = ["identity", *(c for c in SHARED_EXTRA if rand() < 0.4)]
            urgency = "high" if rand() < HIGH_URGENCY_SHARE else "normal"
            common: dict[str, Any] = {
                "inline": inline,
                "need": (code, description),
                "message": self.pick(MESSAGES),
                "shared": ["identity", "contact"] if inline else shared,
                "urgency": urgency,
                "override": not inline and rand() < OVERRIDE_SHARE,
            }
            redirector = None
        else:
            parent_id, redirector, common = parent
        inline = common["inline"]
        urgency = common["urgency"]
        day = created.date()
        due = self.due_on(competence, urgency, day)
        # the life of the referral: one instant per transition, never past the end
        instants = [created]
        at = created
        for to in path:
            hours = 1 + rand() * rand() * (24 * 30 if to in ("completed", "not_completed") else 96)
            step = timedelta(hours=hours)
            if at + step >= self.end:
                step = (self.end - at) * rand()
            at = at + step
            instants.append(at)
        closed = status not in OPEN_UNANSWERED and status not in OPEN_ANSWERED
        last = instants[-1]
        accepted_at = instants[path.index("accepted") + 1] if "accepted" in path else None
        person_id = person.id if not inline or accepted_at is not None else None
        consent_id = None
        declared = None
        identity = None
        if inline:
            birth_name, first_names, birth, sex = person.identity
            identity = json.dumps(
                {
                    "birth_name": birth_name,
                    "usage_name": None,
                    "first_names": first_names,
                    "birth_date": birth.isoformat(),
                    "sex": sex,
                    "commune": person.commune,
                    "phone": None,
                    "email": None,
                },
                ensure_ascii=False,
            )
            declared = f'{{"method": "oral", "given_on": "{day.isoformat()}"}}'
        elif not common["override"]:
            key = (person.id, sender, competence)
            consent_id = self.consent_ids.get(key)
            if consent_id is None:
                consent_id = self.new_id()
                self.consent_ids[key] = consent_id
                self.consents.append(
                    (
                        consent_id,
                        person.id,
                        "consent",
                        None,
                        competence,
                        CONSENT_PURPOSE,
                        "oral" if rand() < 0.7 else "ecrit",
                        day,
                        sender,
                        self.agents.get(sender),
                        created,
                    )
                )
        code, description = common["need"]
        self.referrals.append(
            (
                rid,
                sender,
                self.agents.get(sender),
                recipient,
                redirector,
                person_id,
                identity,
                person.commune,
                competence,
                code,
                description,
                common["message"],
                common["shared"],
                urgency,
                due,
                last.date() if status == "on_hold" else None,
                consent_id,
                "urgence" if common["override"] else None,
                OVERRIDE_JUSTIFICATION if common["override"] else None,
                declared,
                parent_id if parent is not None else None,
                status,
                1 + len(path),
                created,
                last,
                last if closed else None,
            )
        )
        self.counts[status] += 1
        if inline:
            self.counts["inline"] += 1
        if common["override"]:
            self.counts["override"] += 1
        # events: sent by the sender (or by the partner that redirected it), then the path
        opener = redirector or sender
        self.events.append(
            (rid, created, None, "sent", opener, self.agents.get(opener), None, None, None)
        )
        previous = "sent"
        for to, when in zip(path, instants[1:], strict=True):
            if to == "expired":
                org = None
            elif to in ("withdrawn", "cancelled"):
                org = sender
            else:
                org = recipient
            reason = outcome = comment = None
            if to in ("declined", "not_completed"):
                reason = self.pick(self.decline_reasons)
            elif to == "completed":
                outcome = self.pick(self.outcomes)
            elif to == "on_hold":
                comment = "En attente de pièces justificatives."
            elif to == "redirected":
                reason, comment = "hors_competence", "Relève d'un autre partenaire."
            elif to == "cancelled":
                comment = "La personne a renoncé à sa demande."
            self.events.append(
                (
                    rid,
                    when,
                    previous,
                    to,
                    org,
                    self.agents.get(org) if org else None,
                    reason,
                    outcome,
                    comment,
                )
            )
            previous = to
        # care team: what was shared until the answer, then the competence once accepted
        if not inline:
            # the first answer (or withdrawal, expiry...) after a possible acknowledgement
            answer = next((n for n, to in enumerate(path) if to != "acknowledged"), None)
            pending_end = instants[answer + 1] if answer is not None else None
            end_reason = None
            if pending_end is not None:
                end_reason = "accepted" if accepted_at is not None else status
            self.memberships.append(
                (
                    self.new_id(),
                    person.id,
                    recipient,
                    competence,
                    "member",
                    "referral",
                    common["shared"],
                    created,
                    pending_end,
                    end_reason,
                    rid,
                )
            )
            if pending_end is None:
                self.counts["pending_active"] += 1
        if accepted_at is not None:
            self.memberships.append(
                (
                    self.new_id(),
                    person.id,
                    recipient,
                    competence,
                    "member",
                    "referral",
                    None,
                    accepted_at,
                    last if closed else None,
                    status if closed else None,
                    rid,
                )
            )
            if not closed:
                self.counts["accepted_active"] += 1
        made = 1
        if status == "redirected":
            self.counts["children"] += 1
            child_recipient = self.association(other_than=recipient)
            if child_recipient == sender:
                child_recipient = self.departement if sender != self.departement else recipient
            made += self.add(
                person,
                sender,
                child_recipient,
                competence,
                last,
                parent=(rid, recipient, common),
            )
        return made


async def _load_referrals(url: str, total: int, seed: int, report: ReferralGeneration) -> None:
    rng = random.Random(seed * 7919 + 1)  # not the population's stream
    conn = await asyncpg.connect(plain_url(url))
    step = time.monotonic()

    def lap(name: str) -> None:
        nonlocal step
        now = time.monotonic()
        report.steps[name] = round(now - step, 2) + report.steps.get(name, 0.0)
        step = now

    try:
        orgs = await conn.fetch("SELECT id::text AS id, name, kind FROM organisation")
        by_name = {str(r["name"]): str(r["id"]) for r in orgs}
        if DEPARTEMENT_ORG not in by_name:
            raise RuntimeError(f"demo organisation {DEPARTEMENT_ORG!r} not found")
        associations = sorted(str(r["id"]) for r in orgs if r["kind"] == "association")
        rng.shuffle(associations)  # the big ones: any of them
        agents: dict[str, str | None] = {
            str(r["organisation_id"]): str(r["user_id"])
            for r in await conn.fetch(
                "SELECT DISTINCT ON (organisation_id) organisation_id, user_id FROM membership "
                "WHERE 'agent' = ANY (roles) ORDER BY organisation_id, created_at"
            )
        }
        rows = await conn.fetch(
            "SELECT b.id::text AS id, b.commune_code, b.birth_name, b.first_names, b.birth_date, "
            "b.sex, array_agg(m.organisation_id::text ORDER BY m.started_at) AS orgs, "
            "array_agg(m.competence ORDER BY m.started_at) AS competences "
            "FROM beneficiary b JOIN care_team_membership m ON m.beneficiary_id = b.id "
            "AND m.ended_at IS NULL WHERE b.commune_code IS NOT NULL GROUP BY b.id ORDER BY b.id"
        )
        if not rows:
            raise RuntimeError("no person with a care team: did bench/dataset.py generate run?")
        people: list[_Person] = []
        for r in rows:
            team = dict(zip(r["competences"], r["orgs"], strict=True))
            people.append(
                _Person(
                    id=r["id"],
                    commune=r["commune_code"],
                    local=team.get("aide_facultative"),
                    association=team.get("accueil"),
                    identity=(r["birth_name"], r["first_names"], r["birth_date"], r["sex"]),
                )
            )
        end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
        builder = _Builder(rng, end, agents, by_name[DEPARTEMENT_ORG], associations)
        lap("people and organisations read")
        report.triggers_skipped = await skip_triggers(conn)
        span = timedelta(days=SPAN_DAYS).total_seconds()
        made = 0
        while made < total:
            while made < total and len(builder.referrals) < CHUNK:
                person = builder.pick(people)
                sender, recipient, competence = builder.flow(person)
                if sender == recipient:
                    continue
                age = timedelta(seconds=60 + span * rng.random() ** AGE_SKEW)
                made += builder.add(
                    person, sender, recipient, competence, end - age, child_allowed=total - made > 1
                )
            lap("rows built in Python")
            await _flush(conn, builder, report)
            lap("COPY")
            print(f"generate: {made} referrals", file=sys.stderr)
        report.referrals = made
        report.redirected_children = builder.counts["children"]
        report.inline = builder.counts["inline"]
        report.overrides = builder.counts["override"]
        report.pending_active = builder.counts["pending_active"]
        report.accepted_active = builder.counts["accepted_active"]
        report.by_status = {s: builder.counts[s] for s in REFERRAL_STATUSES}
        if report.triggers_skipped:
            await conn.execute("RESET session_replication_role")
            tables = ["referral", "referral_event", "care_team_membership", "consent"]
            orphans = await foreign_key_orphans(conn, tables)
            if orphans:
                raise RuntimeError(f"generated rows break foreign keys: {orphans}")
            lap("foreign keys checked")
    finally:
        await conn.close()


async def _flush(conn: asyncpg.Connection, builder: _Builder, report: ReferralGeneration) -> None:
    await conn.copy_records_to_table(
        "referral", records=builder.referrals, columns=REFERRAL_COLUMNS
    )
    events = builder.events
    await conn.copy_records_to_table("referral_event", records=events, columns=EVENT_COLUMNS)
    await conn.copy_records_to_table(
        "care_team_membership", records=builder.memberships, columns=MEMBERSHIP_COLUMNS
    )
    await conn.copy_records_to_table("consent", records=builder.consents, columns=CONSENT_COLUMNS)
    report.events += len(events)
    report.memberships += len(builder.memberships)
    report.consents += len(builder.consents)
    builder.referrals.clear()
    builder.events.clear()
    builder.memberships.clear()
    builder.consents.clear()


# --------------------------------------------------------------------------- data facts


@dataclass
class ReferralFacts:
    people: int
    organisations: int
    referrals: int
    events: int
    referral_memberships: int
    pending_active: int
    consents: int
    audit_entries: int
    senders: int  # organisations that sent at least one referral
    recipients: int  # organisations that received at least one
    median_inbox: float  # referrals received, median over the recipients
    top_recipients: list[tuple[str, int]]
    inbox: int  # the CCAS d'Amiens's
    inbox_unanswered: int
    outbox: int


async def _facts(url: str, organisation_id: uuid.UUID) -> ReferralFacts:
    conn = await asyncpg.connect(plain_url(url))
    try:

        async def count(sql: str, *args: Any) -> int:
            return int(await conn.fetchval(sql, *args))

        received = await conn.fetch(
            "SELECT o.name, count(*) AS n FROM referral r JOIN organisation o "
            "ON o.id = r.recipient_organisation_id GROUP BY o.name ORDER BY n DESC, o.name"
        )
        return ReferralFacts(
            people=await count("SELECT count(*) FROM beneficiary"),
            organisations=await count("SELECT count(*) FROM organisation"),
            referrals=await count("SELECT count(*) FROM referral"),
            events=await count("SELECT count(*) FROM referral_event"),
            referral_memberships=await count(
                "SELECT count(*) FROM care_team_membership WHERE source = 'referral'"
            ),
            pending_active=await count(
                "SELECT count(*) FROM care_team_membership WHERE source = 'referral' "
                "AND ended_at IS NULL AND granted_categories IS NOT NULL"
            ),
            consents=await count("SELECT count(*) FROM consent"),
            audit_entries=await count("SELECT count(*) FROM audit_entry"),
            senders=await count("SELECT count(DISTINCT sender_organisation_id) FROM referral"),
            recipients=len(received),
            median_inbox=statistics.median([int(r["n"]) for r in received]) if received else 0,
            top_recipients=[(str(r["name"]), int(r["n"])) for r in received[:5]],
            inbox=await count(
                "SELECT count(*) FROM referral WHERE recipient_organisation_id = $1",
                organisation_id,
            ),
            inbox_unanswered=await count(
                "SELECT count(*) FROM referral WHERE recipient_organisation_id = $1 "
                "AND status IN ('sent', 'acknowledged')",
                organisation_id,
            ),
            outbox=await count(
                "SELECT count(*) FROM referral WHERE sender_organisation_id = $1",
                organisation_id,
            ),
        )
    finally:
        await conn.close()


@dataclass
class Sender:
    organisation_id: uuid.UUID
    name: str
    email: str
    user_id: uuid.UUID
    people: list[str]  # Amiens residents it follows


@dataclass
class BenchTargets:
    deep: list[tuple[int, str]]  # (depth, cursor) spread over the CCAS d'Amiens's inbox
    senders: list[Sender]
    recipient: uuid.UUID  # the CCAS d'Amiens
    sample: uuid.UUID  # a referral of its inbox, read in process


async def _bench_targets(
    url: str, ccas_id: uuid.UUID, senders: int, *, nir_readable: bool = True
) -> BenchTargets:
    """The deep cursors, the senders and their people, a referral to read. Without
    ``nir_readable`` (a reused database whose NIR key is not given), only people without a
    NIR: reading a person back decrypts it."""
    from api.http.schemas import encode_cursor

    no_nir = "" if nir_readable else "AND b.nir_cipher IS NULL "

    conn = await asyncpg.connect(plain_url(url))
    try:
        inbox = int(
            await conn.fetchval(
                "SELECT count(*) FROM referral WHERE recipient_organisation_id = $1", ccas_id
            )
        )
        if inbox <= PAGE_LIMIT:
            raise RuntimeError(f"the {CCAS_AMIENS} inbox has {inbox} referrals: too few")
        depths = sorted(
            {
                PAGE_LIMIT + int((inbox - PAGE_LIMIT) * (k + 0.5) / DEEP_CURSORS)
                for k in range(DEEP_CURSORS)
            }
        )
        rows = await conn.fetch(
            "SELECT n, created_at, id FROM (SELECT created_at, id, row_number() OVER "
            "(ORDER BY created_at DESC, id DESC) AS n FROM referral "
            "WHERE recipient_organisation_id = $1) t WHERE n = ANY ($2::bigint[]) ORDER BY n",
            ccas_id,
            depths,
        )
        deep = [
            (int(r["n"]), encode_cursor([r["created_at"].isoformat(), str(r["id"])])) for r in rows
        ]
        found = await conn.fetch(
            "SELECT m.organisation_id, o.name, (array_agg(DISTINCT m.beneficiary_id::text))"
            "[1:$3] AS people FROM care_team_membership m "
            "JOIN beneficiary b ON b.id = m.beneficiary_id "
            "JOIN organisation o ON o.id = m.organisation_id "
            "WHERE m.ended_at IS NULL AND m.competence = 'accueil' AND o.kind = 'association' "
            f"AND b.commune_code = $1 {no_nir}GROUP BY m.organisation_id, o.name "
            "ORDER BY count(DISTINCT m.beneficiary_id) DESC, o.name LIMIT $2",
            AMIENS,
            senders,
            SEND_PEOPLE,
        )
        chosen: list[Sender] = []
        for r in found:
            agent = await conn.fetchrow(
                "SELECT u.id, u.email FROM membership m JOIN app_user u ON u.id = m.user_id "
                "WHERE m.organisation_id = $1 AND 'agent' = ANY (m.roles) "
                "ORDER BY m.created_at LIMIT 1",
                r["organisation_id"],
            )
            if agent is not None:
                chosen.append(
                    Sender(
                        r["organisation_id"],
                        str(r["name"]),
                        str(agent["email"]),
                        agent["id"],
                        list(r["people"]),
                    )
                )
        if not chosen:
            raise RuntimeError("no association follows a resident of Amiens: no sender")
        sample = await conn.fetchval(
            "SELECT r.id FROM referral r JOIN beneficiary b ON b.id = r.beneficiary_id "
            f"WHERE r.recipient_organisation_id = $1 {no_nir}"
            "ORDER BY r.created_at DESC, r.id DESC LIMIT 1",
            ccas_id,
        )
        return BenchTargets(deep, chosen, ccas_id, sample or rows[0]["id"])
    finally:
        await conn.close()


def referral_body(person: str, recipient: uuid.UUID) -> dict[str, Any]:
    """A new referral to the CCAS d'Amiens about an Amiens resident the sender follows (as
    tests/api/test_referrals.py sends them: shared identity, urgent override)."""
    return {
        "beneficiary_id": person,
        "competence": "aide_facultative",
        "recipient_organisation_id": str(recipient),
        "need": {"code": "secours_urgence", "description": "Secours d'urgence pour ce soir."},
        "shared_categories": ["identity"],
        "consent_override": {"reason": "urgence", "justification": OVERRIDE_JUSTIFICATION},
    }


# --------------------------------------------------------------------------- POST load

# As bench/http.py's script (same counters and JSON line), but each request a POST of the
# next line's body with that line's token, and a fresh Idempotency-Key (run prefix, thread,
# request number): every request asks for a new referral.
POST_SCRIPT = r"""
local threads = {}
local tokens = {}
local bodies = {}
local base = {}
local counter = 0
local sent = 0
statuses = {}  -- global: done() reads it from each thread

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(args[1]) do
    local token, body = line:match("^([^\t]+)\t(.+)$")
    if token then
      tokens[#tokens + 1] = token
      bodies[#bodies + 1] = body
    end
  end
  for line in io.lines(args[2]) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    if name then base[name] = value end
  end
  counter = (id * 7919) % #bodies
end

function request()
  counter = counter % #bodies + 1
  sent = sent + 1
  local headers = {}
  for k, v in pairs(base) do headers[k] = v end
  headers["Authorization"] = "Bearer " .. tokens[counter]
  headers["Idempotency-Key"] = string.format("%s-%d-%d", base["Idempotency-Key"], id, sent)
  return wrk.format("POST", "/v1/referrals", headers, bodies[counter])
end

""" + WRK_SCRIPT[WRK_SCRIPT.index("function response(") :]


def _post_headers() -> dict[str, str]:
    return {"Content-Type": "application/json", "Idempotency-Key": f"bench-{secrets.token_hex(6)}"}


class PostLoad:
    """Closed-loop POSTs of ``token\\tbody`` lines: wrk with POST_SCRIPT when the harness
    uses wrk, else Python asyncio + httpx (as bench/http.py's fallback)."""

    def __init__(self, generator: LoadGenerator, workdir: Path) -> None:
        self.wrk: Wrk | None = None
        if isinstance(generator, Wrk):
            folder = workdir / "post"
            folder.mkdir(exist_ok=True)
            self.wrk = Wrk(generator.executable, generator.threads, folder)
            self.wrk.script = folder / "post.lua"
            self.wrk.script.write_text(POST_SCRIPT)

    def run(
        self, base_url: str, lines: Sequence[str], *, seconds: float, concurrency: int
    ) -> Measurement:
        if self.wrk is not None:
            return self.wrk.run(
                base_url, lines, _post_headers(), seconds=seconds, concurrency=concurrency
            )
        return asyncio.run(_python_posts(base_url, lines, seconds, concurrency))


async def _python_posts(
    base_url: str, lines: Sequence[str], seconds: float, concurrency: int
) -> Measurement:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    errors = 0
    requests = [line.split("\t", 1) for line in lines]
    prefix = _post_headers()
    started = time.perf_counter()
    deadline = started + seconds

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        nonlocal errors
        i = n * 7919
        while time.perf_counter() < deadline:
            token, body = requests[i % len(requests)]
            i += 1
            headers = {
                **prefix,
                "Authorization": f"Bearer {token}",
                "Idempotency-Key": f"{prefix['Idempotency-Key']}-{n}-{i}",
            }
            t0 = time.perf_counter()
            try:
                response = await client.post("/v1/referrals", content=body, headers=headers)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[str(response.status_code)] += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client, n) for n in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Measurement.of(latencies, elapsed, errors, dict(sorted(statuses.items())))


async def _probe_posts(base_url: str, lines: Sequence[str]) -> tuple[float, dict[str, int]]:
    """Median latency of a few POSTs sent one after the other (no queueing), statuses."""
    timings: list[float] = []
    statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:
        for line in list(lines)[:PROBE_REQUESTS]:
            token, body = line.split("\t", 1)
            headers = {**_post_headers(), "Authorization": f"Bearer {token}"}
            t0 = time.perf_counter()
            response = await client.post("/v1/referrals", content=body, headers=headers)
            timings.append((time.perf_counter() - t0) * 1000)
            statuses[str(response.status_code)] += 1
            if response.status_code != 201:
                print(f"  POST answered {response.status_code}: {response.text[:500]}")
    timings.sort()
    return timings[len(timings) // 2], dict(statuses)


# --------------------------------------------------------------------------- measurements


@dataclass
class Plan:
    scenario: Scenario
    paths: list[str]  # GET paths, or the ``token\tbody`` lines of a POST scenario
    persona: str | None = None  # signed in right before the scenario (GET)
    senders: list[Sender] | None = None  # POST: each signs in, its bodies in turn


def plans(bench: BenchTargets) -> list[Plan]:
    inbox = f"/v1/referrals?box=inbox&limit={PAGE_LIMIT}"
    depths = [d for d, _ in bench.deep]
    return [
        Plan(Scenario(HEALTHZ, "liveness, no database", lambda _c: []), ["/healthz"]),
        Plan(
            Scenario(
                "inbox_first",
                f"GET {inbox} (first page) as {CCAS_AGENT}",
                lambda _c: [],
            ),
            [inbox],
            CCAS_AGENT,
        ),
        Plan(
            Scenario(
                "inbox_deep",
                f"GET {inbox}&cursor=… as {CCAS_AGENT}, over {len(bench.deep)} cursors from "
                f"{min(depths)} to {max(depths)} referrals deep",
                lambda _c: [],
            ),
            [f"{inbox}&cursor={quote(cursor)}" for _, cursor in bench.deep],
            CCAS_AGENT,
        ),
        Plan(
            Scenario(
                "outbox_first",
                f"GET /v1/referrals?box=outbox&limit={PAGE_LIMIT} (first page) as {CCAS_AGENT}",
                lambda _c: [],
            ),
            [f"/v1/referrals?box=outbox&limit={PAGE_LIMIT}"],
            CCAS_AGENT,
        ),
        Plan(
            Scenario(
                "create_referral",
                f"POST /v1/referrals to {CCAS_AMIENS} from {len(bench.senders)} associations "
                f"(their agents in turn) about Amiens residents they follow; each a new "
                "referral (+ event, pending membership, 2 audit entries, change)",
                lambda _c: [],
                expected_status=(201,),
            ),
            [],
            senders=bench.senders,
        ),
    ]


RAW_SEND = "raw_send"
SEND = "create_referral"
STORED_ANSWER_BYTES = 2_000  # a sealed 201 answer of POST /v1/referrals, about


@dataclass
class ScenarioRow(Row):
    round: int = 1
    load_average: float | None = None  # the machine's, 1 minute, when the round began
    #: CPU of the service's processes during the measure / requests answered (none for the
    #: baselines, which run in this process)
    cpu_ms_per_request: float | None = None
    rps_to_raw_send: float | None = None  # create_referral only


def measure(
    generator: LoadGenerator,
    posts: PostLoad,
    service: Service,
    url: str,
    targets: Targets,
    bench: BenchTargets,
    password: str,
    *,
    seconds: float,
    concurrency: int,
    rounds: int,
) -> list[ScenarioRow]:
    """``rounds`` interleaved rounds of every scenario, so that the machine's noise falls on
    all of them alike: read each round's ratios and their median."""
    rows: list[ScenarioRow] = []
    for number in range(1, rounds + 1):
        load = os.getloadavg()[0]
        print(f"round {number}/{rounds}, load average {load:.1f}", file=sys.stderr)
        rows += _round(
            number,
            load,
            generator,
            posts,
            service,
            url,
            targets,
            bench,
            password,
            seconds=seconds,
            concurrency=concurrency,
        )
    return rows


def _round(
    number: int,
    load_average: float,
    generator: LoadGenerator,
    posts: PostLoad,
    service: Service,
    url: str,
    targets: Targets,
    bench: BenchTargets,
    password: str,
    *,
    seconds: float,
    concurrency: int,
) -> list[ScenarioRow]:
    """healthz, the raw primary-key read of bench/dataset.py, then the referral scenarios,
    the raw INSERTs of a send right before the sends; each probed, warmed up, measured, and
    the service left to drain what was queued."""
    results: dict[str, Result] = {}
    probes: dict[str, float] = {}
    drained: dict[str, float] = {}
    cpu: dict[str, float] = {}
    order: list[str] = []

    def baseline(
        name: str,
        description: str,
        distinct: int,
        run: Callable[[float], Measurement],
        expected: tuple[int, ...] = (200,),
    ) -> None:
        print(f"{name}: warm-up {WARMUP_SECONDS:.0f} s", file=sys.stderr)
        run(WARMUP_SECONDS)
        print(f"{name}: measuring {seconds:g} s", file=sys.stderr)
        measured = run(seconds)
        scenario = Scenario(name, description, lambda _c: [], expected_status=expected)
        results[name] = to_result(scenario, distinct, measured)
        order.append(name)

    for index, plan in enumerate(plans(bench)):
        scenario = plan.scenario
        if index == 1:  # the baseline, right after healthz
            baseline(
                BASELINE_PK,
                f"asyncpg SELECT * FROM beneficiary WHERE id = $1, {concurrency} owner "
                "connections, in Python (no HTTP, no RLS)",
                len(targets.read_ids),
                lambda s: asyncio.run(raw_pk_reads(url, targets.read_ids, s, concurrency)),
            )
        if plan.senders is not None:
            baseline(
                RAW_SEND,
                f"the rows of a send (referral, event, pending membership, the person's "
                f"last contact, 2 audit entries, change, idempotency key) by asyncpg "
                f"INSERTs, one transaction each, {concurrency} owner connections, in Python",
                sum(len(s.people) for s in plan.senders),
                lambda s: asyncio.run(raw_sends(url, bench, s, concurrency)),
                expected=(201,),
            )
            lines = []
            for sender in plan.senders:
                token = asyncio.run(sign_in(service.base_url, sender.email, password))
                lines += [
                    f"{token}\t{json.dumps(referral_body(p, bench.recipient))}"
                    for p in sender.people
                ]
            # the senders in turn, so that the load is not one organisation's
            lines = [lines[i] for i in _interleaved(plan.senders)]
            alone, statuses = asyncio.run(_probe_posts(service.base_url, lines))

            load: Callable[[float], Measurement] = partial(
                _run_posts, posts, service.base_url, lines, concurrency
            )

            distinct = len(lines)
        else:
            headers = {}
            if plan.persona is not None:
                token = asyncio.run(sign_in(service.base_url, plan.persona, password))
                headers["Authorization"] = f"Bearer {token}"
            alone, statuses = asyncio.run(probe_alone(service.base_url, plan.paths, headers))

            load = partial(_run_gets, generator, service.base_url, plan.paths, headers, concurrency)

            distinct = len(plan.paths)
        probes[scenario.name] = alone
        print(
            f"{scenario.name}: one request at a time: {alone:.1f} ms (median of "
            f"{PROBE_REQUESTS}), statuses {statuses}",
            file=sys.stderr,
        )
        if alone < WARMUP_SECONDS * 1000:
            print(f"{scenario.name}: warm-up {WARMUP_SECONDS:.0f} s", file=sys.stderr)
            load(WARMUP_SECONDS)
            service.wait_idle(timeout=DRAIN_SECONDS)
        else:
            print(f"{scenario.name}: no warm-up (the probe warmed it)", file=sys.stderr)
        print(f"{scenario.name}: measuring {seconds:g} s", file=sys.stderr)
        cpu_before = service.cpu_seconds()
        measured = load(seconds)
        cpu[scenario.name] = service.cpu_seconds() - cpu_before
        drained[scenario.name] = service.wait_idle(timeout=DRAIN_SECONDS)
        results[scenario.name] = to_result(scenario, distinct, measured)
        order.append(scenario.name)
    pk_result, healthz, raw_send = results[BASELINE_PK], results[HEALTHZ], results[RAW_SEND]
    rows = []
    for name in order:
        r = results[name]
        rows.append(
            ScenarioRow(
                r,
                rps_to_pk=r.rps / pk_result.rps if pk_result.rps else None,
                p50_to_pk=r.p50_ms / pk_result.p50_ms if pk_result.p50_ms else None,
                rps_to_healthz=r.rps / healthz.rps if healthz.rps else None,
                alone_ms=probes.get(name),
                drained_s=drained.get(name),
                round=number,
                load_average=load_average,
                cpu_ms_per_request=cpu[name] * 1000 / r.requests
                if name in cpu and r.requests
                else None,
                rps_to_raw_send=r.rps / raw_send.rps if name == SEND and raw_send.rps else None,
            )
        )
    return rows


async def raw_sends(url: str, bench: BenchTargets, seconds: float, concurrency: int) -> Measurement:
    """The baseline of a send: the rows ``POST /v1/referrals`` writes (the referral, its
    ``sent`` event, the recipient's pending care-team membership, the person's last contact,
    the two audit entries of a send with a consent override, the change event, the stored
    idempotent answer), as plain asyncpg INSERTs (and the one UPDATE) with fixed values, one
    transaction per send, ``concurrency`` owner connections in a closed loop (no HTTP, no
    row-level security, no checks; the tables' triggers fire as for the service). The
    referrals it writes stay, as the service's do."""
    conns = [await asyncpg.connect(plain_url(url)) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    work = [
        (s, p)
        for k in range(SEND_PEOPLE)
        for s in bench.senders
        if k < len(s.people)
        for p in [s.people[k]]
    ]
    answer = secrets.token_bytes(STORED_ANSWER_BYTES)

    try:
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(conn: asyncpg.Connection, offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                sender, person = work[i % len(work)]
                i += 1
                t0 = time.perf_counter()
                try:
                    async with conn.transaction():
                        await raw_send(conn, bench, sender, person, answer)
                except asyncpg.PostgresError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(c, n * 7919) for n, c in enumerate(conns)))
        elapsed = time.perf_counter() - started
    finally:
        for c in conns:
            await c.close()
    return Measurement.of(latencies, elapsed, errors, {"201": len(latencies)})


async def raw_send(
    conn: asyncpg.Connection, bench: BenchTargets, sender: Sender, person: str, answer: bytes
) -> None:
    """The rows of one send (see :func:`raw_sends`), in the connection's transaction."""
    now = datetime.now(UTC)
    referral = uuid.uuid4()
    person_id = uuid.UUID(person)
    org, user, recipient = sender.organisation_id, sender.user_id, bench.recipient
    due = now.date() + timedelta(days=2)
    await conn.execute(_RAW_REFERRAL, referral, org, user, recipient, person_id, AMIENS, due, now)
    await conn.execute(_RAW_EVENT, referral, now, org, user)
    await conn.execute(_RAW_MEMBERSHIP, uuid.uuid4(), person_id, recipient, referral, now)
    await conn.execute(_RAW_CONTACT, person_id, now)
    purpose = f"urgence: {OVERRIDE_JUSTIFICATION}"
    await conn.execute(_RAW_AUDIT, now, org, user, str(referral), person_id, purpose)
    await conn.execute(_RAW_CHANGE, referral, [org, recipient], now)
    await conn.execute(_RAW_IDEMPOTENCY, user, org, secrets.token_hex(8), now, answer)


#: the rows the current transaction wrote, by table (PostgreSQL's own counters)
ROWS_WRITTEN = (
    "SELECT relname, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables "
    "WHERE n_tup_ins + n_tup_upd + n_tup_del > 0 ORDER BY relname"
)


def written(before: Sequence[Any], after: Sequence[Any]) -> dict[str, str]:
    """``{table: "+inserted ~updated -deleted"}`` between two readings of ROWS_WRITTEN in
    one transaction: the views also count the backend's earlier transactions whose counts
    it has not reported yet, which do not change while the transaction runs."""
    earlier = {str(r[0]): tuple(r[1:]) for r in before}
    out = {}
    for name, *counts in after:
        done = [n - e for n, e in zip(counts, earlier.get(str(name), (0, 0, 0)), strict=True)]
        if any(done):
            out[str(name)] = " ".join(
                f"{sign}{n}" for sign, n in zip("+~-", done, strict=True) if n
            )
    return out


async def raw_rows_written(url: str, bench: BenchTargets) -> dict[str, str]:
    """What one raw send writes, by table, in a transaction rolled back."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            sender = bench.senders[0]
            before = await conn.fetch(ROWS_WRITTEN)
            await raw_send(conn, bench, sender, sender.people[0], b"answer")
            return written(before, await conn.fetch(ROWS_WRITTEN))
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


async def remove_sends(url: str, bench: BenchTargets, since: datetime) -> int:
    """Delete, as the owner, what the send scenarios wrote (the referrals from the bench's
    senders to its recipient created since ``since``, their events, memberships,
    statistical rows, changes and audit entries, the senders' idempotency keys): repeated
    runs on a kept database would otherwise pile hundreds of referrals, and as many pending
    memberships, on the same few people, and every later read of them (the access rule
    weighs each membership) would cost more than in the run before. Triggers are skipped
    (the statistical rows are deleted by hand). How many referrals went."""
    conn = await asyncpg.connect(plain_url(url))
    try:
        async with conn.transaction():
            await skip_triggers(conn)
            ids = [
                r["id"]
                for r in await conn.fetch(
                    "SELECT id FROM referral WHERE created_at >= $1 "
                    "AND recipient_organisation_id = $2 AND sender_organisation_id = ANY ($3)",
                    since,
                    bench.recipient,
                    [s.organisation_id for s in bench.senders],
                )
            ]
            texts = [str(i) for i in ids]
            for statement, values in (
                ("DELETE FROM care_team_membership WHERE origin_id = ANY ($1)", ids),
                ("DELETE FROM referral_event WHERE referral_id = ANY ($1)", ids),
                ("DELETE FROM stat_fact WHERE source_id = ANY ($1)", ids),
                ("DELETE FROM change_event WHERE resource_id = ANY ($1)", ids),
                ("DELETE FROM webhook_delivery WHERE resource_id = ANY ($1)", ids),
                ("DELETE FROM audit_entry WHERE resource_id = ANY ($1)", texts),
                ("DELETE FROM referral WHERE id = ANY ($1)", ids),
            ):
                await conn.execute(statement, values)
            await conn.execute(
                "DELETE FROM idempotency_key WHERE created_at >= $1 AND principal_id = ANY ($2)",
                since,
                [s.user_id for s in bench.senders],
            )
            await conn.execute("RESET session_replication_role")
        return len(ids)
    finally:
        await conn.close()


_RAW_REFERRAL = (
    "INSERT INTO referral (id, sender_organisation_id, sender_user_id, "
    "recipient_organisation_id, beneficiary_id, commune_code, competence, need_code, "
    "need_description, shared_categories, urgency, response_due_on, "
    "consent_override_reason, consent_override_justification, status, version, created_at, "
    "updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'aide_facultative', 'secours_urgence', "
    "'Secours d''urgence pour ce soir.', '{identity}', 'normal', $7, 'urgence', "
    f"'{OVERRIDE_JUSTIFICATION}', 'sent', 1, $8, $8)"
)
_RAW_EVENT = (
    "INSERT INTO referral_event (referral_id, at, to_status, organisation_id, actor_user_id) "
    "VALUES ($1, $2, 'sent', $3, $4)"
)
_RAW_MEMBERSHIP = (
    "INSERT INTO care_team_membership (id, beneficiary_id, organisation_id, competence, "
    "team_role, source, granted_categories, started_at, origin_id) "
    "VALUES ($1, $2, $3, 'aide_facultative', 'member', 'referral', '{identity}', $5, $4)"
)
_RAW_CONTACT = (
    "UPDATE beneficiary SET last_contact_at = greatest(last_contact_at, $2) WHERE id = $1"
)
_RAW_AUDIT = (
    "INSERT INTO audit_entry (at, organisation_id, actor_user_id, action, resource_type, "
    "resource_id, beneficiary_id, purpose) VALUES "
    "($1, $2, $3, 'referral.send', 'referral', $4, $5, NULL), "
    "($1, $2, $3, 'referral.consent_override', 'referral', $4, $5, $6)"
)
_RAW_CHANGE = (
    "INSERT INTO change_event (txid, type, resource_id, action, event, status, audience, at) "
    "VALUES (pg_current_xact_id()::text::bigint, 'referral', $1, 'created', "
    "'referral.created', 'sent', $2, $3)"
)
_RAW_IDEMPOTENCY = (
    "INSERT INTO idempotency_key (principal_id, organisation_id, key, request_hash, "
    "status_code, headers, body_cipher, created_at) "
    "VALUES ($1, $2, $3, 'bench', 201, '{}', $5, $4)"
)


def _run_posts(
    posts: PostLoad, base_url: str, lines: list[str], concurrency: int, seconds: float
) -> Measurement:
    return posts.run(base_url, lines, seconds=seconds, concurrency=concurrency)


def _run_gets(
    generator: LoadGenerator,
    base_url: str,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
) -> Measurement:
    return generator.run(base_url, paths, headers, seconds=seconds, concurrency=concurrency)


def _interleaved(senders: Sequence[Sender]) -> list[int]:
    """Indexes of the senders' lines (concatenated in order) taken one sender at a time."""
    offsets, start = [], 0
    for s in senders:
        offsets.append(start)
        start += len(s.people)
    longest = max(len(s.people) for s in senders)
    return [
        offsets[n] + k for k in range(longest) for n, s in enumerate(senders) if k < len(s.people)
    ]


# --------------------------------------------------------------------------- in-process profile

PROFILE_RUNS = 5  # of each request, after one warm-up run; the median is reported


@dataclass
class RequestProfile(Profile):
    #: every statement of the median run, in order: milliseconds and the SQL's start
    timeline: list[tuple[float, str]] = field(default_factory=list)


SEND_LABEL = "POST /v1/referrals"


async def _profile(
    url: str,
    nir_key: str,
    targets: Targets,
    bench: BenchTargets,
    service_rows: dict[str, str],
) -> list[RequestProfile]:
    """Each request through the service's own code (runtime role, row-level security on, the
    scope built as a request builds it), in a transaction rolled back: the median of a few
    runs, every statement timed; the list query and the slowest SELECTs explained (ANALYZE,
    BUFFERS) in a fresh transaction with the same identity. Two more lists than the load
    measures, for the index question: the inbox filtered on ``status=sent`` (what is left to
    answer), first page and deep."""
    from pydantic import SecretStr
    from sqlalchemy import event, text

    from api.auth.builder import build_scope
    from api.db.engine import Database
    from api.domain.audit.repository import AuditLog
    from api.domain.changes.repository import ChangeLog
    from api.domain.organisations.repository import OrganisationStore
    from api.domain.people.nir import NirCipher
    from api.domain.people.repository import PeopleStore
    from api.domain.people.service import People
    from api.domain.referrals import service
    from api.domain.referrals.repository import ReferralStore
    from api.domain.referrals.schemas import ReferralCreate
    from api.domain.referrals.service import Referrals
    from api.settings import Settings

    settings = Settings(database_url=url, nir_key=SecretStr(nir_key))
    database = Database.connect(settings)
    cipher = NirCipher(base64.b64decode(nir_key))
    captured: list[Statement] = []
    started: dict[int, float] = {}

    def before(conn: Any, _cursor: Any, _s: str, _p: Any, _ctx: Any, _many: bool) -> None:
        started[id(conn)] = time.perf_counter()

    def after(conn: Any, _cursor: Any, statement: str, parameters: Any, *_rest: Any) -> None:
        elapsed = time.perf_counter() - started.pop(id(conn), time.perf_counter())
        captured.append(Statement(statement, tuple(parameters or ()), elapsed * 1000))

    def logged(query: Any) -> None:
        # what runs on the driver connection itself (api.db.driver); SQLAlchemy's own
        # statements run as prepared statements, which the logger does not see
        if query.query.strip().rstrip(";").upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            captured.append(Statement(query.query, tuple(query.args or ()), query.elapsed * 1000))

    def on_connect(_dbapi_connection: Any, record: Any) -> None:
        record.driver_connection.add_query_logger(logged)

    event.listen(database.app_engine.sync_engine, "before_cursor_execute", before)
    event.listen(database.app_engine.sync_engine, "after_cursor_execute", after)
    event.listen(database.app_engine.sync_engine.pool, "connect", on_connect)
    runtime_url = plain_url(database.app_engine.url.render_as_string(hide_password=False))
    raw = await asyncpg.connect(runtime_url)
    deep_depth, deep_cursor = bench.deep[-1]
    sender = bench.senders[0]
    body = ReferralCreate.model_validate(referral_body(sender.people[0], bench.recipient))

    def listing(
        box: str, status: str | None, cursor: str | None
    ) -> Callable[[Any], Awaitable[object]]:
        return lambda ctx: service.page(
            ctx,
            box=box,
            status=status,
            competence=None,
            beneficiary_id=None,
            cursor=cursor,
            limit=PAGE_LIMIT,
        )

    inbox = f"GET /v1/referrals?box=inbox&limit={PAGE_LIMIT}"
    jobs: list[tuple[str, uuid.UUID, uuid.UUID, Callable[[Any], Awaitable[object]]]] = [
        (inbox, targets.ccas_id, targets.ccas_user, listing("inbox", None, None)),
        (
            f"{inbox}&cursor=({deep_depth} deep)",
            targets.ccas_id,
            targets.ccas_user,
            listing("inbox", None, deep_cursor),
        ),
        (
            f"GET /v1/referrals?box=outbox&limit={PAGE_LIMIT}",
            targets.ccas_id,
            targets.ccas_user,
            listing("outbox", None, None),
        ),
        (
            f"{inbox}&status=sent",
            targets.ccas_id,
            targets.ccas_user,
            listing("inbox", "sent", None),
        ),
        (
            f"{inbox}&status=sent&cursor=({deep_depth} deep)",
            targets.ccas_id,
            targets.ccas_user,
            listing("inbox", "sent", deep_cursor),
        ),
        (
            f"GET /v1/referrals?box=outbox&limit={PAGE_LIMIT}&status=sent",
            targets.ccas_id,
            targets.ccas_user,
            listing("outbox", "sent", None),
        ),
        (
            "GET /v1/referrals/{id} (+ audit entry)",
            targets.ccas_id,
            targets.ccas_user,
            lambda ctx: service.read(ctx, bench.sample),
        ),
        (
            SEND_LABEL,
            sender.organisation_id,
            sender.user_id,
            lambda ctx: service.send(ctx, body),
        ),
    ]
    profiles: list[RequestProfile] = []
    try:
        for label, org, user, job in jobs:
            print(f"profile: {label}", file=sys.stderr)
            claims = profile_claims(settings, user, org)
            runs: list[tuple[float, list[Statement]]] = []
            for _run in range(PROFILE_RUNS + 1):  # the first warms the caches
                captured.clear()
                t0 = time.perf_counter()
                async with database.sessionmaker() as session:
                    transaction = await session.begin()
                    try:
                        scope = await build_scope(session, claims)
                        audit = AuditLog(session, scope)
                        people = People(
                            scope=scope,
                            store=PeopleStore(session, scope),
                            orgs=OrganisationStore(session),
                            audit=audit,
                            nir=cipher,
                        )
                        ctx = Referrals(
                            scope=scope,
                            store=ReferralStore(session, scope),
                            orgs=people.orgs,
                            people=people,
                            audit=audit,
                            changes=ChangeLog(session),
                        )
                        counting = _run == 0 and label == SEND_LABEL
                        if counting:
                            counted = (await session.execute(text(ROWS_WRITTEN))).all()
                        await job(ctx)
                        if counting:
                            now = (await session.execute(text(ROWS_WRITTEN))).all()
                            service_rows.update(written(counted, now))
                    finally:
                        await transaction.rollback()
                runs.append(((time.perf_counter() - t0) * 1000, list(captured)))
            runs = sorted(runs[1:], key=lambda r: r[0])
            total, statements = runs[len(runs) // 2]
            chosen: list[Statement] = [
                s for s in statements if "FROM referral" in s.sql and "LIMIT" in s.sql
            ]
            for s in sorted(
                (s for s in statements if s.sql.lstrip().upper().startswith(("SELECT", "WITH"))),
                key=lambda s: -s.ms,
            ):
                if len(chosen) >= EXPLAIN_TOP or s.ms < EXPLAIN_MIN_MS:
                    break
                if "pg_advisory" not in s.sql and s.sql not in {c.sql for c in chosen}:
                    chosen.append(s)
            slowest: list[dict[str, Any]] = []
            for s in chosen:
                same = [x.ms for x in statements if x.sql == s.sql]
                slowest.append(
                    {
                        "sql": " ".join(s.sql.split()),
                        "ms": round(s.ms, 2),
                        "times_in_request": len(same),
                        "ms_in_request": round(sum(same), 2),
                        "plan": await explain_statement(raw, org, user, s),
                    }
                )
            profiles.append(
                RequestProfile(
                    request=label,
                    total_ms=round(total, 2),
                    statements=len(statements),
                    database_ms=round(sum(s.ms for s in statements), 2),
                    slowest=slowest,
                    timeline=[(round(s.ms, 2), " ".join(s.sql.split())[:160]) for s in statements],
                )
            )
    finally:
        await raw.close()
        await database.dispose()
    return profiles


def execution_ms(plan: Sequence[str]) -> float | None:
    for line in plan:
        if line.strip().startswith("Execution Time:"):
            return float(line.split(":", 1)[1].split()[0])
    return None


# --------------------------------------------------------------------------- output


def render_rounds(rows: Sequence[ScenarioRow]) -> str:
    """Every round's figures, then each scenario's medians over the rounds."""
    header = (
        f"{'round':>5} {'scenario':<16}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
        f"{'errors':>7}{'cpu ms/req':>11}{'rps/pk':>8}{'rps/healthz':>12}{'/raw_send':>10}"
        f"{'alone ms':>9}{'load':>6}"
    )
    lines = [header, "-" * len(header)]

    def fmt(value: float | None, digits: int) -> str:
        return f"{value:.{digits}f}" if value is not None else "-"

    for row in rows:
        r = row.result
        lines.append(
            f"{row.round:>5} {r.scenario:<16}{r.rps:>9.1f}{r.p50_ms:>9.2f}{r.p95_ms:>9.2f}"
            f"{r.p99_ms:>9.2f}{r.errors:>7}{fmt(row.cpu_ms_per_request, 2):>11}"
            f"{fmt(row.rps_to_pk, 4):>8}{fmt(row.rps_to_healthz, 3):>12}"
            f"{fmt(row.rps_to_raw_send, 3):>10}{fmt(row.alone_ms, 1):>9}"
            f"{fmt(row.load_average, 1):>6}"
        )
    lines.append("-" * len(header))

    def median(values: Sequence[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    for name in dict.fromkeys(row.result.scenario for row in rows):
        mine = [row for row in rows if row.result.scenario == name]
        lines.append(
            f"{'med':>5} {name:<16}{median([m.result.rps for m in mine]) or 0:>9.1f}"
            f"{median([m.result.p50_ms for m in mine]) or 0:>9.2f}"
            f"{median([m.result.p95_ms for m in mine]) or 0:>9.2f}"
            f"{median([m.result.p99_ms for m in mine]) or 0:>9.2f}"
            f"{sum(m.result.errors for m in mine):>7}"
            f"{fmt(median([m.cpu_ms_per_request for m in mine]), 2):>11}"
            f"{fmt(median([m.rps_to_pk for m in mine]), 4):>8}"
            f"{fmt(median([m.rps_to_healthz for m in mine]), 3):>12}"
            f"{fmt(median([m.rps_to_raw_send for m in mine]), 3):>10}"
            f"{fmt(median([m.alone_ms for m in mine]), 1):>9}"
            f"{fmt(median([m.load_average for m in mine]), 1):>6}"
        )
    return "\n".join(lines)


def report(
    args: argparse.Namespace,
    generator: LoadGenerator,
    labels: dict[str, str],
    population: GenerationReport | None,
    gen: ReferralGeneration | None,
    before: ReferralFacts,
    after: ReferralFacts,
    bench: BenchTargets,
    rows: Sequence[ScenarioRow],
    profiles: Sequence[RequestProfile],
    problems: Sequence[str],
    rows_written: Mapping[str, Mapping[str, str]],
) -> None:
    host = machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    print()
    print(
        f"machine: {host['nproc']} CPU ({host['cpu_model']}), Python {host['python']}, "
        f"PostgreSQL {labels['postgres']} (autovacuum {labels['autovacuum']})"
    )
    print(f"database: {labels['database']}; code: {labels['code']}")
    if population is not None and gen is not None:
        print(
            f"generation: population {population.seconds:.1f} s (bench/dataset.py: guichet "
            f"demo {population.demo_seconds:.1f} s + load {population.load_seconds:.1f} s), "
            f"referrals {gen.seconds:.1f} s ("
            + ", ".join(f"{k} {v:.1f} s" for k, v in gen.steps.items())
            + f"), ANALYZE {gen.analyze_seconds:.1f} s; seed {args.seed}"
        )
        print(
            f"generated: {gen.referrals} referrals ({gen.redirected_children} after a "
            f"redirection, {gen.inline} inline identities, {gen.overrides} consent overrides), "
            f"{gen.events} events, {gen.memberships} care-team memberships from referrals "
            f"({gen.pending_active} pending and {gen.accepted_active} accepted still active), "
            f"{gen.consents} consents"
        )
        print(
            "statuses: "
            + ", ".join(f"{s} {n}" for s, n in sorted(gen.by_status.items(), key=lambda x: -x[1]))
        )
    else:
        print("generation: none (a database generated earlier, reused as it is)")
    print(
        f"data: {before.people} people, {before.organisations} organisations; "
        f"{before.referrals} referrals from {before.senders} senders to {before.recipients} "
        f"recipients (median {before.median_inbox:g} received); {before.events} events; "
        f"{before.referral_memberships} memberships from referrals, {before.pending_active} "
        f"pending; {before.consents} consents"
    )
    print("biggest inboxes: " + ", ".join(f"{name} {n}" for name, n in before.top_recipients))
    depths = [d for d, _ in bench.deep]
    print(
        f"{CCAS_AMIENS} ({CCAS_AGENT}): inbox {before.inbox} ({before.inbox_unanswered} "
        f"unanswered), outbox {before.outbox}; deep cursors {min(depths)}–{max(depths)} deep"
    )
    print(
        "senders of create_referral: "
        + ", ".join(f"{s.name} ({len(s.people)} people)" for s in bench.senders)
    )
    print(
        f"after the load: {after.referrals} referrals (+{after.referrals - before.referrals}), "
        f"audit entries {before.audit_entries} -> {after.audit_entries}"
    )
    print(
        f"load: {generator.name}, {args.concurrency} connections, {args.workers} uvicorn "
        f"worker(s), {WARMUP_SECONDS:.0f} s warm-up + {args.duration:g} s per scenario; "
        f"{BASELINE_PK}: {args.concurrency} asyncpg connections in Python"
    )
    print(
        f"ratios: rps/pk and p50/pk to '{BASELINE_PK}', rps/healthz to '{HEALTHZ}', of this "
        "run (shared, noisy machine: compare ratios); alone ms: median of "
        f"{PROBE_REQUESTS} requests sent one at a time before the load"
    )
    for source, tables in rows_written.items():
        print(
            f"rows written by one send, {source}: "
            + (", ".join(f"{t} {n}" for t, n in tables.items()) or "(not measured)")
        )
    print()
    print(render_rounds(rows))
    for row in rows:
        r = row.result
        if r.errors:
            print(f"! round {row.round} {r.scenario}: {r.errors} error(s); statuses {r.statuses}")
        if not r.requests:
            print(f"! round {row.round} {r.scenario}: no answer within the {args.duration:g} s run")
        if row.drained_s is not None and row.drained_s >= DRAIN_SECONDS:
            print(f"! {r.scenario}: the service was still busy {DRAIN_SECONDS} s after the load")
    if labels.get("profile_error"):
        print(f"! in-process profile failed: {labels['profile_error']}")
    if profiles:
        print()
        print(
            f"in process (runtime role, rolled back; median of {PROFILE_RUNS} runs after a "
            "warm-up): statements, their time, the list query's plan and the slowest SELECTs"
        )
        for p in profiles:
            print(
                f"* {p.request}: {p.total_ms:.1f} ms, {p.statements} statements, "
                f"{p.database_ms:.1f} ms in the database driver"
            )
            for s in p.slowest:
                plan = s.get("plan", [])
                executed = execution_ms(plan)
                print(
                    f"  - {s['ms']:.1f} ms (x{s['times_in_request']})"
                    + (f", EXPLAIN ANALYZE {executed:.2f} ms" if executed is not None else "")
                    + f": {s['sql'][:150]}"
                )
                listing = "FROM referral" in s["sql"] and "LIMIT" in s["sql"]
                if listing or (executed is not None and executed >= EXPLAIN_MIN_MS):
                    for line in key_plan_lines(plan, limit=18):
                        print(f"      {line[:180]}")
            if not p.request.startswith("GET /v1/referrals?"):
                print("  statements of the request, in order (ms):")
                for ms, sql in p.timeline:
                    print(f"    {ms:6.1f}  {sql[:110]}")
    save_results(
        args,
        stamp,
        labels=labels,
        machine={**host, "postgres": labels["postgres"], "autovacuum": labels["autovacuum"]},
        load_generator=generator.name,
        problems=problems,
        config={
            "referrals": args.referrals,
            "people": args.people,
            "organisations": args.organisations,
            "senders": args.senders,
            "seed": args.seed,
        },
        sections={
            "generation": {
                "population": asdict(population) if population else None,
                "referrals": asdict(gen) if gen else None,
            },
            "data_before": asdict(before),
            "data_after": asdict(after),
            "deep_cursor_depths": depths,
            "senders": [
                {"organisation": s.name, "email": s.email, "people": len(s.people)}
                for s in bench.senders
            ],
            "results": [
                {
                    **asdict(row.result),
                    "rps_to_pk": row.rps_to_pk,
                    "p50_to_pk": row.p50_to_pk,
                    "rps_to_healthz": row.rps_to_healthz,
                    "alone_ms": row.alone_ms,
                    "drained_s": row.drained_s,
                    "round": row.round,
                    "load_average": row.load_average,
                    "cpu_ms_per_request": row.cpu_ms_per_request,
                    "rps_to_raw_send": row.rps_to_raw_send,
                }
                for row in rows
            ],
            "profiles": [asdict(p) for p in profiles],
            "rows_written": rows_written,
        },
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.referrals",
        description="Generate referrals between the partners of a département-scale "
        "population on a fresh database (bench/dataset.py's population, then COPY), or "
        "reuse one (--database-url), then measure a big recipient's inbox (first page, "
        "deep pages), its outbox and POST /v1/referrals with wrk in interleaved rounds, as "
        "ratios of a raw asyncpg primary-key read, of /healthz and, for the sends, of the "
        "same rows written by raw INSERTs, measured in the same round.",
    )
    parser.add_argument(
        "--referrals", type=int, default=1_000_000, help="referrals generated (1000000)"
    )
    parser.add_argument("--people", type=int, default=200_000, help="people (200000)")
    parser.add_argument(
        "--organisations",
        type=int,
        default=300,
        help="organisations added to the demo's, as bench/dataset.py (300)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    parser.add_argument(
        "--senders",
        type=int,
        default=8,
        help="associations sending in the creation scenario (their audit chains are "
        "written one transaction at a time each) (8)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated database instead of dropping it (its name is printed)",
    )
    parser.add_argument(
        "--database-url",
        help="reuse a database this bench generated (owner URL, e.g. kept with --keep; "
        "migrated to the head revision first): no generation, the database is kept. Give "
        "the NIR key it was generated with (GUICHET_NIR_KEY, printed by --keep) to send "
        "about any person; without it the senders' people are those without a NIR (reading "
        "a person back decrypts it)",
    )
    parser.add_argument(
        "--leave-sends",
        dest="remove_sends",
        action="store_false",
        help="leave the referrals the send scenarios wrote (by default a kept or given "
        "database gets them deleted at the end, so that the next run measures the same data)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="interleaved rounds of every scenario: read each round's ratios and their median (3)",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the in-process profile and EXPLAIN ANALYZE of the requests",
    )
    add_load_options(parser, name="referrals", duration=5)
    args = parser.parse_args(argv)
    if args.referrals < 1 or args.people < 1 or args.organisations < 3 or args.senders < 1:
        parser.error("--referrals, --people, --senders must be >= 1 and --organisations >= 3")
    if args.rounds < 1:
        parser.error("--rounds must be >= 1")
    if args.database_url and args.keep:
        parser.error("--keep is for a generated database; --database-url is always kept")
    check_load_options(parser, args)
    return args


@contextmanager
def referral_database(
    args: argparse.Namespace, env: dict[str, str], source: Path
) -> Iterator[tuple[str, GenerationReport | None, ReferralGeneration | None]]:
    """The database measured, its label and how it was generated: the given one (kept, not
    generated here), or a new one filled by the generators (dropped unless ``--keep``)."""
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
        yield "given --database-url (kept)", None, None
        return
    with bench_database(env, args.keep) as label:
        url = env["DATABASE_URL"]
        population = generate(
            url,
            args.people,
            args.organisations,
            args.seed,
            env=env,
            source=source,
            analyze=False,  # once, after the referrals
        )
        print(f"population generated in {population.seconds:.1f} s", file=sys.stderr)
        gen = generate_referrals(url, args.referrals, args.seed)
        print(
            f"referrals generated in {gen.seconds:.1f} s, ANALYZE {gen.analyze_seconds:.1f} s",
            file=sys.stderr,
        )
        yield label, population, gen


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-referrals-"))
    try:
        generator = choose_generator(args.loadgen, args.wrk_threads, workdir)
        posts = PostLoad(generator, workdir)
        print(f"load generator: {generator.name}", file=sys.stderr)
        source, code_label = frozen_source(args.ref, workdir)
        sys.path.insert(0, str(source))  # this process imports the same api as it serves
        env = service_env()
        for key in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
            env.pop(key, None)
        # the service and the generator share it; a reused database's only matters to NIR
        # lookups, which this bench does not make
        nir_key = os.environ.get("GUICHET_NIR_KEY") if args.database_url else None
        nir_readable = nir_key is not None or not args.database_url
        nir_key = nir_key or new_nir_key()
        env["GUICHET_NIR_KEY"] = nir_key
        if args.keep:
            print(
                f"GUICHET_NIR_KEY={nir_key} (give it with --database-url to read the NIRs)",
                file=sys.stderr,
            )
        from api.demo.territory import DEMO_PASSWORD

        with referral_database(args, env, source) as (database_label, population, gen):
            url = env["DATABASE_URL"]
            targets = asyncio.run(find_targets(url, args.seed))
            bench = asyncio.run(
                _bench_targets(url, targets.ccas_id, args.senders, nir_readable=nir_readable)
            )
            before = asyncio.run(_facts(url, targets.ccas_id))
            since = datetime.now(UTC)  # the sends written from now on are the bench's
            service = Service(env, args.workers, workdir / "service.log", source)
            try:
                ready_after = service.wait_ready(args.startup_timeout)
                print(f"service ready after {ready_after:.1f} s", file=sys.stderr)
                rows = measure(
                    generator,
                    posts,
                    service,
                    url,
                    targets,
                    bench,
                    DEMO_PASSWORD,
                    seconds=args.duration,
                    concurrency=args.concurrency,
                    rounds=args.rounds,
                )
                after = asyncio.run(_facts(url, targets.ccas_id))
                problems = service.log_problems()
            finally:
                service.stop()
            profiles: list[RequestProfile] = []
            profile_error = None
            send_rows: dict[str, str] = {}  # what a send writes, by table (in process)
            raw_rows = asyncio.run(raw_rows_written(url, bench))
            if args.profile:
                try:
                    profiles = asyncio.run(_profile(url, nir_key, targets, bench, send_rows))
                except Exception as error:  # the load figures are kept
                    profile_error = (
                        f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
                    )
            if args.remove_sends and (args.keep or args.database_url):
                removed = asyncio.run(remove_sends(url, bench, since))
                print(f"removed the {removed} referrals the sends wrote", file=sys.stderr)
        labels = {
            "postgres": targets.postgres_version,
            "autovacuum": targets.autovacuum,
            "database": database_label,
            "code": code_label,
            "service_log": str(service.log_path),
            "profile_error": profile_error or "",
        }
        report(
            args,
            generator,
            labels,
            population,
            gen,
            before,
            after,
            bench,
            rows,
            profiles,
            problems,
            {
                "service (in process, without its idempotency key: +1 ~1)": send_rows,
                f"{RAW_SEND} baseline": raw_rows,
            },
        )
        return 1 if any(r.result.errors or not r.result.requests for r in rows) else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
