"""A département-scale population, and what reading it costs against a raw primary-key read.

    .venv/bin/python -m bench.dataset --help

1. ``generate``: on a fresh database, ``guichet demo`` (the Somme, département 80, its demo
   organisations and users), then, as the owner with ``COPY`` (asyncpg
   ``copy_records_to_table``): ~300 organisations of the Somme (CCAS on distinct communes,
   associations serving the département) with one agent each, and ``--people`` (200 000)
   people living on Somme communes weighted by population, with 1–3 care-team memberships
   each, household sizes, NIR (encrypted with the service's key) and, when their tables
   exist, household members and notes.
2. Measures in the same run, against the live service (``bench/http.py``'s server start,
   wrk closed loop): ``/healthz``; ``GET /v1/beneficiaries/{id}`` as the CCAS d'Amiens agent
   (each read writes an audit entry); the preview search as the CIAS agent; the attached list
   (first page of 50) as the CCAS d'Amiens agent; and the baseline, a raw asyncpg
   ``SELECT * FROM beneficiary WHERE id = $1`` with as many connections as wrk has, for the
   same duration, measured in Python.
3. Profiles one request of each kind in process (the service's own code, runtime role,
   rolled back), and ``EXPLAIN ANALYZE``s the slowest statements.

See bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx

from bench.http import (
    ADMIN_URL,
    ROOT,
    WARMUP_SECONDS,
    LoadGenerator,
    Measurement,
    Result,
    Scenario,
    Service,
    add_load_options,
    check_load_options,
    choose_generator,
    create_database,
    fresh_database,
    machine,
    plain_url,
    profile_claims,
    run_cli,
    run_demo,
    save_results,
    service_env,
    service_source,
    to_result,
)

DEPARTEMENT = "80"
CCAS_AMIENS = "CCAS d'Amiens"
CIAS = "CIAS d'Amiens Métropole"
DEPARTEMENT_ORG = "Conseil départemental de la Somme"
CCAS_AGENT = "agent.ccas-amiens@somme.demo"
CIAS_AGENT = "agent.cias@somme.demo"
GENERATED_DOMAIN = "dataset.demo"
CCAS_SHARE = 2 / 3  # of the generated organisations; the rest are associations
RSA_SHARE = 0.15
ASSOCIATION_SHARE = 0.10
NIR_SHARE = 0.8
READ_IDS = 2000
SEARCH_TARGETS = 2000
LIST_LIMIT = 50
EXPLAIN_TOP = 4  # slowest SELECT statements explained per profiled request
EXPLAIN_MIN_MS = 2.0
PROFILE_RERUN_BELOW_MS = 5000.0
PROBE_REQUESTS = 3
DRAIN_SECONDS = 60  # after a load run, wait at most this long for the service to go idle
BIRTH_FIRST = date(1930, 1, 1)
BIRTH_LAST = date(2008, 12, 31)
GENERATED_AT = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # memberships start within 3 years

# --------------------------------------------------------------------------- names


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LAST_NAMES = _words(
    """Martin Bernard Thomas Petit Robert Richard Durand Dubois Moreau Laurent Simon Michel
    Lefebvre Leroy Roux David Bertrand Morel Fournier Girard Bonnet Dupont Lambert Fontaine
    Rousseau Vincent Muller Lefèvre Faure André Mercier Blanc Guérin Boyer Garnier Chevalier
    François Legrand Gauthier Garcia Perrin Robin Clément Morin Nicolas Henry Roussel Mathieu
    Gautier Masson Marchand Duval Denis Dumont Marie Lemaire Noël Meyer Dufour Meunier Brun
    Blanchard Giraud Joly Rivière Lucas Brunet Gaillard Barbier Arnaud Martinez Gérard Roche
    Renard Schmitt Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas
    Lacroix Olivier Philippe Bourgeois Pierre Benoît Rey Leclerc Payet Rolland Leclercq Guillaume
    Lecomte Lopez Jean Dupuy Guillot Hubert Berger Carpentier Sanchez Dupuis Moulin Louis
    Deschamps Huet Vasseur Perez Boucher Fleury Royer Klein Jacquet Adam Paris Poirier Marty
    Aubry Guyot Carré Charles Renault Charpentier Ménard Maillard Baron Bertin Bailly Hervé
    Schneider Fernandez Le-Gall Collet Léger Bouvier Julien Prévost Millet Perrot Daniel
    Le-Roux Cousin Germain Breton Besson Langlois Rémy Le-Goff Pelletier Lévêque Perrier
    Leblanc Barré Lebrun Marchal Weber Mallet Hamon Boulanger Jacob Monnier Michaud Rodriguez
    Guichard Gillet Étienne Grondin Poulain Tessier Chevallier Collin Chauvin Da-Silva Bouchet
    Gay Lemaître Bénard Maréchal Humbert Reynaud Antoine Hoarau Perret Barthélemy Cordier
    Pichon Lejeune Gilbert Lamy Delaunay Pasquier Carlier Laporte Dheilly Dewailly Lefrançois
    Boulogne Caudron Delattre Duflos Dufresne Fiquet Flament Gamain Hecquet Leleu Lenglet Lecat
    Poiré Tellier Vaquez Wallet Boinet Cocquerel Delaporte Demarcy Dobigny Froidure Hénocque
    Lesueur Macquet Obry Quentin Saguez Sueur Vasseur-Dubois Benali Diallo Traoré Nguyen Haddad
    Mansouri Boukhari Cissé Kone Camara Ben-Ali Yilmaz Da-Costa Ferreira Pereira Santos"""
)
FEMALE_FIRST = _words(
    """Marie Jeanne Françoise Monique Catherine Nathalie Isabelle Sylvie Anne Martine Nicole
    Christine Sophie Valérie Sandrine Stéphanie Céline Aurélie Julie Camille Laura Sarah Emma
    Léa Chloé Manon Inès Jade Louise Alice Lina Rose Anna Ambre Mila Juliette Zoé Léna Lucie
    Mathilde Pauline Émilie Élodie Virginie Véronique Patricia Brigitte Chantal Danielle
    Dominique Michèle Colette Simone Yvette Denise Suzanne Madeleine Josiane Ginette Odette
    Lucienne Raymonde Paulette Germaine Christiane Jacqueline Annie Laurence Corinne Karine
    Nadia Fatima Samia Aïcha Amina Yasmine Océane Clara Margaux Eva Maëlys Noémie Justine Marion
    Charlotte Audrey Mélanie Jessica Vanessa Caroline Agnès Hélène Florence Béatrice Claire
    Gisèle Huguette Marcelle Thérèse Solange Renée Éliane Maryse Évelyne Mireille Régine
    Marie-Claire Marie-Thérèse Anne-Marie Marie-Christine"""
)
MALE_FIRST = _words(
    """Jean Pierre Michel André Philippe René Louis Alain Jacques Bernard Marcel Daniel Roger
    Robert Paul Claude Christian Henri Georges Nicolas François Patrick Gérard Christophe
    Joseph Julien Maurice Lucien Frédéric Pascal Stéphane Sébastien David Laurent Olivier
    Thierry Éric Dominique Didier Bruno Serge Gilles Yves Thomas Antoine Maxime Alexandre
    Guillaume Romain Kevin Jérémy Anthony Mathieu Vincent Lucas Hugo Louis Gabriel Léo Raphaël
    Arthur Jules Adam Nathan Ethan Noah Enzo Mohamed Karim Mehdi Youssef Rayan Bilal Samir Ali
    Mamadou Moussa Cédric Fabrice Ludovic Franck Jérôme Arnaud Damien Benoît Florian Quentin
    Dylan Loïc Yannick Raymond Gaston Fernand Roland Guy Jean-Pierre Jean-Claude Jean-Marie
    Jean-Luc Jean-François Pierre-Yves Marc Luc Hervé Joël Rémi Régis Gaëtan"""
)
STREET_KINDS = ("rue", "rue", "rue", "avenue", "place", "chemin", "boulevard", "impasse", "allée")
STREET_NAMES = (
    "de la République",
    "Victor Hugo",
    "Jean Jaurès",
    "du Général de Gaulle",
    "des Jardins",
    "de la Gare",
    "de l'Église",
    "Pasteur",
    "Gambetta",
    "Jules Verne",
    "du Moulin",
    "des Écoles",
    "de la Somme",
    "des Hortillonnages",
    "Saint-Leu",
    "du 8 Mai 1945",
    "Émile Zola",
    "de Verdun",
    "des Lilas",
    "du Marais",
)
HOUSING = ("locataire parc social", "locataire parc privé", "propriétaire", "hébergé", "sans")
ACTIVITY = ("salarié", "demandeur d'emploi", "retraité", "étudiant", "sans activité", "RSA")
HOUSEHOLD_SIZES = ((1, 35), (2, 30), (3, 15), (4, 12), (5, 5), (6, 3))
RELATIONS = (
    "conjoint",
    "enfant",
    "enfant",
    "enfant",
    "autre",
)  # api.domain.people.schemas.Relation
NOTE_VISIBILITY = ("organisation",) * 6 + ("team",) * 3 + ("private",)
ASSOCIATION_NAMES = (
    "Restos du cœur – antenne de {c}",
    "Secours catholique – équipe de {c}",
    "Croix-Rouge – unité locale de {c}",
    "Emmaüs {c}",
    "Banque alimentaire – relais de {c}",
    "Association d'aide à domicile de {c}",
    "Point d'accueil solidarité de {c}",
)
NOTE_BODIES = (
    "Premier accueil : demande d'aide ponctuelle, orientation vers les permanences.",
    "Entretien de suivi : dossier complet, en attente de la commission.",
    "Appel téléphonique : rendez-vous reporté à la semaine prochaine.",
    "Accompagnement administratif : mise à jour des droits CAF.",
    "Visite à domicile : situation stable, pas de besoin urgent.",
    "Orientation vers l'association partenaire pour l'aide alimentaire.",
)

# --------------------------------------------------------------------------- generation


@dataclass
class GenerationReport:
    seconds: float = 0.0
    demo_seconds: float = 0.0
    load_seconds: float = 0.0
    analyze_seconds: float = 0.0
    people: int = 0
    memberships: int = 0
    organisations_added: int = 0
    ccas_added: int = 0
    associations_added: int = 0
    users_added: int = 0
    territory_rows: int = 0
    with_nir: int = 0
    household_members: int | None = None  # None: no household_member table
    notes: int | None = None  # None: no note table
    pending_tables: list[str] = field(default_factory=list)
    table_errors: list[str] = field(default_factory=list)
    triggers_skipped: bool = False  # foreign keys checked after the COPY, not row by row
    steps: dict[str, float] = field(default_factory=dict)


def _nir(sex: str, birth: date, commune: str, order: int) -> str:
    body = f"{1 if sex == 'M' else 2}{birth.year % 100:02d}{birth.month:02d}{commune}{order:03d}"
    return body + f"{97 - int(body) % 97:02d}"


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_V4 = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant


def _uuid(rng: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rng.getrandbits(128), version=4)


def _elided(name: str) -> str:
    return f"d'{name}" if name[:1].upper() in "AEIOUYÉÈÊÂÎÔH" else f"de {name}"


def generate(
    owner_url: str,
    people: int = 200_000,
    organisations: int = 300,
    seed: int = 2026,
    *,
    nir_key: str | None = None,
    env: dict[str, str] | None = None,
    source: Path = ROOT,
    analyze: bool = True,
) -> GenerationReport:
    """Fill a fresh database: ``guichet demo``, then the population (see the module docstring).

    ``nir_key`` is the service's ``GUICHET_NIR_KEY`` (base64 of 32 bytes); by default the one
    of ``env`` or of this process's environment. ``env`` is the environment of the demo
    command (``DATABASE_URL`` is set to ``owner_url``)."""
    started = time.monotonic()
    demo_env = dict(env if env is not None else service_env())
    demo_env["DATABASE_URL"] = owner_url
    for name in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
        demo_env.pop(name, None)  # the demo platform admin gets the demo password
    key = nir_key or demo_env.get("GUICHET_NIR_KEY")
    if key is None:
        raise RuntimeError("generate needs the service's NIR key (GUICHET_NIR_KEY)")
    demo_env["GUICHET_NIR_KEY"] = key
    report = GenerationReport()
    report.demo_seconds = run_demo(demo_env, source)
    print(f"generate: guichet demo {report.demo_seconds:.1f} s", file=sys.stderr)
    loaded = time.monotonic()
    asyncio.run(_load(owner_url, people, organisations, seed, key, report))
    report.load_seconds = time.monotonic() - loaded
    if analyze:
        t0 = time.monotonic()
        asyncio.run(_execute(owner_url, "ANALYZE"))
        report.analyze_seconds = time.monotonic() - t0
    report.seconds = time.monotonic() - started
    return report


async def _execute(url: str, statement: str) -> None:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@dataclass
class _Org:
    id: uuid.UUID
    name: str
    kind: str
    commune: str | None
    agent: uuid.UUID | None = None


async def _load(
    url: str, people: int, organisations: int, seed: int, nir_key: str, report: GenerationReport
) -> None:
    from api.auth.passwords import hash_password
    from api.domain.identity import name_match_keys, normalise_name
    from api.domain.people.nir import NirCipher
    from api.domain.text import fold

    rng = random.Random(seed)
    cipher = NirCipher(base64.b64decode(nir_key))
    conn = await asyncpg.connect(plain_url(url))
    step = time.monotonic()

    def lap(name: str) -> None:
        nonlocal step
        now = time.monotonic()
        report.steps[name] = round(now - step, 2)
        print(f"generate: {name} {now - step:.1f} s", file=sys.stderr)
        step = now

    try:
        communes = await conn.fetch(
            "SELECT code, name, population, epci_siren FROM commune "
            "WHERE departement_code = $1 ORDER BY population DESC, code",
            DEPARTEMENT,
        )
        if not communes:
            raise RuntimeError(f"no commune of département {DEPARTEMENT}: did guichet demo run?")
        names = {r["code"]: str(r["name"]) for r in communes}
        orgs = await conn.fetch("SELECT id, name, kind, commune_code FROM organisation")
        by_name = {str(r["name"]): r for r in orgs}
        for wanted in (CCAS_AMIENS, CIAS, DEPARTEMENT_ORG):
            if wanted not in by_name:
                raise RuntimeError(f"demo organisation {wanted!r} not found")
        agents = {
            r["organisation_id"]: r["user_id"]
            for r in await conn.fetch(
                "SELECT DISTINCT ON (organisation_id) organisation_id, user_id FROM membership "
                "WHERE 'agent' = ANY (roles) ORDER BY organisation_id, created_at"
            )
        }
        # who already acts locally: CCAS by commune, the CIAS on its territory
        local: dict[str, _Org] = {}
        for r in orgs:
            if r["kind"] == "ccas" and r["commune_code"]:
                local[r["commune_code"]] = _Org(
                    r["id"], r["name"], "ccas", r["commune_code"], agents.get(r["id"])
                )
        cias = by_name[CIAS]
        cias_org = _Org(cias["id"], cias["name"], "cias", None, agents.get(cias["id"]))
        for r in await conn.fetch(
            "SELECT commune_code FROM organisation_commune WHERE organisation_id = $1", cias["id"]
        ):
            local.setdefault(r["commune_code"], cias_org)
        dep = by_name[DEPARTEMENT_ORG]
        departement = _Org(dep["id"], dep["name"], "departement", None, agents.get(dep["id"]))

        # organisations -----------------------------------------------------------------
        password_hash = hash_password("guichet-demo-2026")  # once: argon2 is slow on purpose
        n_ccas = round(organisations * CCAS_SHARE)
        free = [r["code"] for r in communes if r["code"] not in local]
        new_ccas = free[:n_ccas]
        new_orgs: list[_Org] = []
        org_rows: list[tuple[Any, ...]] = []
        territory: list[tuple[uuid.UUID, str]] = []
        users: list[tuple[Any, ...]] = []
        members: list[tuple[Any, ...]] = []
        now = GENERATED_AT
        all_codes = [r["code"] for r in communes]
        associations: list[_Org] = []
        for i in range(organisations):
            org_id = _uuid(rng)
            if i < len(new_ccas):
                code = new_ccas[i]
                org = _Org(org_id, f"CCAS {_elided(names[code])}", "ccas", code)
                local[code] = org
                territory.append((org_id, code))
                slug = f"ccas-{code}"
                area: list[str] = []
            else:
                n = i - len(new_ccas)
                code = all_codes[(n * 7) % len(all_codes)]
                template = ASSOCIATION_NAMES[n % len(ASSOCIATION_NAMES)]
                org = _Org(
                    org_id, template.format(c=names[code]) + f" ({n + 1})", "association", None
                )
                associations.append(org)
                territory.extend((org_id, c) for c in all_codes)
                slug = f"asso-{n + 1:03d}"
                area = [DEPARTEMENT]
            org.agent = _uuid(rng)
            new_orgs.append(org)
            org_rows.append(
                (org_id, org.name, fold(org.name), org.kind, org.commune, [], area, 24, 1, now, now)
            )
            email = f"agent.{slug}@{GENERATED_DOMAIN}"
            users.append((org.agent, email, f"Agent {org.name}", password_hash, now))
            members.append((_uuid(rng), org.agent, org_id, ["agent"], now, now))
        await conn.copy_records_to_table(
            "organisation",
            records=org_rows,
            columns=[
                "id",
                "name",
                "search_name",
                "kind",
                "commune_code",
                "service_area_communes",
                "service_area_departements",
                "retention_months",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        await conn.copy_records_to_table(
            "organisation_commune", records=territory, columns=["organisation_id", "commune_code"]
        )
        await conn.copy_records_to_table(
            "app_user",
            records=users,
            columns=["id", "email", "full_name", "password_hash", "created_at"],
        )
        await conn.copy_records_to_table(
            "membership",
            records=members,
            # accepted at once: a membership whose accepted_at is NULL is an invitation
            columns=["id", "user_id", "organisation_id", "roles", "created_at", "accepted_at"],
        )
        report.organisations_added = len(new_orgs)
        report.ccas_added = len(new_ccas)
        report.associations_added = len(associations)
        report.users_added = len(users)
        report.territory_rows = len(territory)
        lap("organisations")

        # people ------------------------------------------------------------------------
        # (hot loop: 200 000 turns; lookups into precomputed lists rather than date arithmetic,
        # name folding cached per distinct name, ids as hex strings COPY accepts for uuid)
        rand = rng.random

        def pick(seq: Sequence[Any]) -> Any:
            return seq[int(rand() * len(seq))]

        def new_id() -> str:
            return f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_V4:032x}"

        @cache
        def keys_of(last: str, first: str) -> frozenset[str]:
            return name_match_keys(last, None, first)

        norm = cache(normalise_name)
        codes = [r["code"] for r in communes]
        weights = [max(1, int(r["population"])) for r in communes]
        homes = rng.choices(codes, weights=weights, k=people)
        birth_days = [
            BIRTH_FIRST + timedelta(days=d) for d in range((BIRTH_LAST - BIRTH_FIRST).days + 1)
        ]
        member_days = [
            BIRTH_FIRST + timedelta(days=d) for d in range((GENERATED_AT.date() - BIRTH_FIRST).days)
        ]
        instants = [now - timedelta(hours=h) for h in range(3 * 365 * 24)]  # the last 3 years
        months = [timedelta(days=30 * n) for n in range(4)]
        later = [timedelta(days=d, hours=h) for d in range(300) for h in (0, 5)]
        size_pool = [n for n, w in HOUSEHOLD_SIZES for _ in range(w)]
        first_pools = {
            "F": list(FEMALE_FIRST),
            "M": list(MALE_FIRST),
        }
        last_pool = [n.replace("-", " ") for n in LAST_NAMES]
        all_first = FEMALE_FIRST + MALE_FIRST
        housing_json = [json.dumps(h, ensure_ascii=False) for h in HOUSING]
        activity_json = [json.dumps(a, ensure_ascii=False) for a in ACTIVITY]
        streets = [
            json.dumps(f"{k} {n}", ensure_ascii=False)[1:-1]
            for k in STREET_KINDS
            for n in STREET_NAMES
        ]
        person_rows: list[tuple[Any, ...]] = []
        team_rows: list[tuple[Any, ...]] = []
        household_rows: list[tuple[Any, ...]] = []
        note_rows: list[tuple[Any, ...]] = []
        orders: Counter[tuple[str, int]] = Counter()
        for home in homes:
            person_id = new_id()
            sex = "F" if rand() < 0.52 else "M"
            pool = first_pools[sex]
            first = pick(pool)
            if rand() < 0.2:
                first = f"{first} {pick(pool)}"
            birth_name = pick(last_pool)
            usage_name = pick(last_pool) if sex == "F" and rand() < 0.35 else None
            birth = pick(birth_days)
            size = pick(size_pool)
            if rand() < NIR_SHARE:
                place = pick(codes)
                orders[(place, birth.year)] += 1
                nir = _nir(sex, birth, place, orders[(place, birth.year)])
                nir_cipher: bytes | None = cipher.encrypt(nir)
                nir_hash: str | None = cipher.lookup_hash(nir)
                missing: str | None = None
                report.with_nir += 1
            else:
                nir_cipher = nir_hash = None
                missing = "en cours d'immatriculation"
            started = pick(instants)
            postal = "80000" if home == "80021" else f"80{int(rand() * 900) + 100}"
            address = (
                f'{{"line1": "{int(rand() * 180) + 1} {pick(streets)}", "line2": null, '
                f'"postal_code": "{postal}"}}'
            )
            situation = (
                f'{{"household_size": {size}, "housing": {pick(housing_json)}, '
                f'"activity": {pick(activity_json)}}}'
            )
            # care team: the local CCAS/CIAS, else an association; the département for RSA
            first_org = local.get(home)
            team: list[tuple[_Org, str]] = (
                [(first_org, "aide_facultative")]
                if first_org is not None
                else [(pick(associations), "accueil")]
            )
            if rand() < RSA_SHARE:
                team.append((departement, "rsa"))
            if first_org is not None and rand() < ASSOCIATION_SHARE:
                team.append((pick(associations), "accueil"))
            for n, (org, competence) in enumerate(team):
                since = started + months[n]
                team_rows.append(
                    (
                        new_id(),
                        person_id,
                        org.id,
                        competence,
                        "referent" if n == 0 else "member",
                        "creation",
                        since,
                    )
                )
                if rand() < 0.5:
                    note_rows.append(
                        (
                            new_id(),
                            person_id,
                            org.id,
                            org.agent,
                            competence,
                            pick(NOTE_VISIBILITY),
                            pick(NOTE_BODIES),
                            since + pick(later),
                        )
                    )
            for k in range(size - 1):
                relation = "conjoint" if k == 0 and rand() < 0.6 else pick(RELATIONS[1:])
                household_rows.append(
                    (new_id(), person_id, None, pick(all_first), pick(member_days), relation)
                )
            keys = keys_of(birth_name, first)
            if usage_name is not None:
                keys = keys | keys_of(usage_name, first)
            folded = " ".join(norm(n) for n in (birth_name, usage_name or "", first) if n)
            person_rows.append(
                (
                    person_id,
                    birth_name,
                    usage_name,
                    first,
                    birth,
                    sex,
                    nir_cipher,
                    nir_hash,
                    missing,
                    home,
                    address,
                    f"06{int(rand() * 10**8):08d}" if rand() < 0.7 else None,
                    None,
                    situation,
                    sorted(keys),
                    folded,
                    started + pick(later),
                    team[0][0].id,
                    1,
                    started,
                    started,
                )
            )
        lap("people built in Python")
        # Foreign keys are checked by row triggers, most of the COPY time: as a superuser,
        # skip them while loading (the rows are consistent by construction) and check every
        # reference afterwards in one anti-join per foreign key.
        report.triggers_skipped = await skip_triggers(conn)
        await conn.copy_records_to_table(
            "beneficiary",
            records=person_rows,
            columns=[
                "id",
                "birth_name",
                "usage_name",
                "first_names",
                "birth_date",
                "sex",
                "nir_cipher",
                "nir_hash",
                "nir_missing_reason",
                "commune_code",
                "address",
                "phone",
                "email",
                "situation",
                "match_keys",
                "folded_names",
                "last_contact_at",
                "created_by_organisation_id",
                "version",
                "created_at",
                "updated_at",
            ],
        )
        lap("COPY beneficiary")
        await conn.copy_records_to_table(
            "care_team_membership",
            records=team_rows,
            columns=[
                "id",
                "beneficiary_id",
                "organisation_id",
                "competence",
                "team_role",
                "source",
                "started_at",
            ],
        )
        report.people = len(person_rows)
        report.memberships = len(team_rows)
        lap("COPY care_team_membership")

        # households and notes, when their tables exist -----------------------------------
        report.household_members = await _copy_if_table(
            conn,
            "household_member",
            [
                "id",
                "beneficiary_id",
                "member_beneficiary_id",
                "first_name",
                "birth_date",
                "relation",
            ],
            household_rows,
            report,
        )
        report.notes = await _copy_if_table(
            conn,
            "note",
            [
                "id",
                "beneficiary_id",
                "organisation_id",
                "author_user_id",
                "competence",
                "visibility",
                "body",
                "created_at",
            ],
            note_rows,
            report,
        )
        lap("households and notes")
        if report.triggers_skipped:
            await conn.execute("RESET session_replication_role")
            tables = ["beneficiary", "care_team_membership", "household_member", "note"]
            orphans = await foreign_key_orphans(conn, tables)
            if orphans:
                raise RuntimeError(f"generated rows break foreign keys: {orphans}")
            lap("foreign keys checked")
    finally:
        await conn.close()


async def skip_triggers(conn: asyncpg.Connection) -> bool:
    try:
        await conn.execute("SET session_replication_role = replica")
    except asyncpg.InsufficientPrivilegeError:
        return False
    return True


async def foreign_key_orphans(conn: asyncpg.Connection, tables: Sequence[str]) -> dict[str, int]:
    """Rows of ``tables`` whose foreign key points nowhere, by constraint (empty: none)."""
    constraints = await conn.fetch(
        "SELECT c.conname, c.conrelid::regclass::text AS child, c.confrelid::regclass::text "
        "AS parent, (SELECT array_agg(a.attname ORDER BY k.n) FROM unnest(c.conkey) WITH "
        "ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum "
        "= k.attnum) AS child_cols, (SELECT array_agg(a.attname ORDER BY k.n) FROM "
        "unnest(c.confkey) WITH ORDINALITY k(attnum, n) JOIN pg_attribute a ON a.attrelid = "
        "c.confrelid AND a.attnum = k.attnum) AS parent_cols FROM pg_constraint c "
        "WHERE c.contype = 'f' AND c.conrelid::regclass::text = ANY ($1::text[])",
        list(tables),
    )
    found: dict[str, int] = {}
    for c in constraints:
        join = " AND ".join(
            f'p."{pc}" = t."{cc}"' for cc, pc in zip(c["child_cols"], c["parent_cols"], strict=True)
        )
        present = " AND ".join(f't."{cc}" IS NOT NULL' for cc in c["child_cols"])
        n = await conn.fetchval(
            f'SELECT count(*) FROM "{c["child"]}" t WHERE {present} AND NOT EXISTS '
            f'(SELECT 1 FROM "{c["parent"]}" p WHERE {join})'
        )
        if n:
            found[str(c["conname"])] = int(n)
    return found


async def _copy_if_table(
    conn: asyncpg.Connection,
    table: str,
    columns: list[str],
    rows: list[tuple[Any, ...]],
    report: GenerationReport,
) -> int | None:
    """COPY into ``table`` if it exists with these columns (and no other required one);
    None, and the table listed as pending, when it does not exist."""
    existing = await conn.fetch(
        "SELECT column_name, is_nullable, column_default, is_identity FROM "
        "information_schema.columns WHERE table_schema = 'public' AND table_name = $1",
        table,
    )
    if not existing:
        report.pending_tables.append(table)
        return None
    names = {r["column_name"] for r in existing}
    missing = [c for c in columns if c not in names]
    required = [
        r["column_name"]
        for r in existing
        if r["is_nullable"] == "NO"
        and r["column_default"] is None
        and r["is_identity"] != "YES"
        and r["column_name"] not in columns
    ]
    if missing or required:
        report.table_errors.append(
            f"{table}: schema differs (missing {missing}, other required {required}); not filled"
        )
        return 0
    try:
        async with conn.transaction():
            await conn.copy_records_to_table(table, records=rows, columns=columns)
    except asyncpg.PostgresError as error:
        report.table_errors.append(f"{table}: {type(error).__name__}: {error}; not filled")
        return 0
    return len(rows)


# --------------------------------------------------------------------------- data facts


@dataclass
class DataSize:
    people: int
    memberships: int
    organisations: int
    users: int
    audit_entries: int
    ccas_amiens_follows: int
    cias_territory_people: int


async def _data_size(url: str, ccas_id: uuid.UUID, cias_id: uuid.UUID) -> DataSize:
    conn = await asyncpg.connect(plain_url(url))
    try:

        async def count(sql: str, *args: Any) -> int:
            return int(await conn.fetchval(sql, *args))

        return DataSize(
            people=await count("SELECT count(*) FROM beneficiary"),
            memberships=await count("SELECT count(*) FROM care_team_membership"),
            organisations=await count("SELECT count(*) FROM organisation"),
            users=await count("SELECT count(*) FROM app_user"),
            audit_entries=await count("SELECT count(*) FROM audit_entry"),
            ccas_amiens_follows=await count(
                "SELECT count(DISTINCT beneficiary_id) FROM care_team_membership "
                "WHERE organisation_id = $1 AND ended_at IS NULL",
                ccas_id,
            ),
            cias_territory_people=await count(
                "SELECT count(*) FROM beneficiary b JOIN organisation_commune t "
                "ON t.commune_code = b.commune_code WHERE t.organisation_id = $1",
                cias_id,
            ),
        )
    finally:
        await conn.close()


@dataclass
class Targets:
    ccas_id: uuid.UUID
    ccas_user: uuid.UUID
    cias_id: uuid.UUID
    cias_user: uuid.UUID
    read_ids: list[uuid.UUID]
    searches: list[tuple[date, str, str]]  # birth date, last name, first name
    postgres_version: str
    autovacuum: str


async def find_targets(url: str, seed: int) -> Targets:
    conn = await asyncpg.connect(plain_url(url))
    try:
        await conn.execute("SELECT setseed($1)", (seed % 1000) / 1000)

        async def persona(email: str) -> tuple[uuid.UUID, uuid.UUID]:
            row = await conn.fetchrow(
                "SELECT u.id AS user_id, m.organisation_id FROM app_user u "
                "JOIN membership m ON m.user_id = u.id WHERE u.email = $1",
                email,
            )
            if row is None:
                raise RuntimeError(f"demo user {email} not found")
            return row["organisation_id"], row["user_id"]

        ccas_id, ccas_user = await persona(CCAS_AGENT)
        cias_id, cias_user = await persona(CIAS_AGENT)
        read_ids = [
            r["beneficiary_id"]
            for r in await conn.fetch(
                "SELECT beneficiary_id FROM care_team_membership "
                "WHERE organisation_id = $1 AND ended_at IS NULL "
                "ORDER BY md5(beneficiary_id::text) LIMIT $2",
                ccas_id,
                READ_IDS,
            )
        ]
        searches = [
            (r["birth_date"], r["last_name"], r["first_names"].split(" ")[0])
            for r in await conn.fetch(
                "SELECT b.birth_date, coalesce(b.usage_name, b.birth_name) AS last_name, "
                "b.first_names FROM beneficiary b JOIN organisation_commune t "
                "ON t.commune_code = b.commune_code WHERE t.organisation_id = $1 "
                "ORDER BY md5(b.id::text) LIMIT $2",
                cias_id,
                SEARCH_TARGETS,
            )
        ]
        return Targets(
            ccas_id,
            ccas_user,
            cias_id,
            cias_user,
            read_ids,
            searches,
            str(await conn.fetchval("SHOW server_version")),
            str(await conn.fetchval("SHOW autovacuum")),
        )
    finally:
        await conn.close()


# --------------------------------------------------------------------------- measurements

BASELINE_PK = "asyncpg_pk_read"
HEALTHZ = "healthz"


async def raw_pk_reads(
    url: str, ids: Sequence[uuid.UUID], seconds: float, concurrency: int
) -> Measurement:
    """Closed loop: ``concurrency`` asyncpg connections (owner), each reading the next id by
    primary key as soon as the previous read is answered, for ``seconds``."""
    conns = [await asyncpg.connect(plain_url(url)) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = 0
    statement = "SELECT * FROM beneficiary WHERE id = $1"
    try:
        for c in conns:  # prepared once per connection, as a driver's statement cache does
            await c.fetchrow(statement, ids[0])
        started = time.perf_counter()
        deadline = started + seconds

        async def worker(conn: asyncpg.Connection, offset: int) -> None:
            nonlocal errors
            i = offset
            while time.perf_counter() < deadline:
                person = ids[i % len(ids)]
                i += 1
                t0 = time.perf_counter()
                try:
                    row = await conn.fetchrow(statement, person)
                except asyncpg.PostgresError:
                    errors += 1
                    continue
                if row is None:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(c, n * 7919) for n, c in enumerate(conns)))
        elapsed = time.perf_counter() - started
    finally:
        for c in conns:
            await c.close()
    # a row found; not found or failed: errors
    return Measurement.of(latencies, elapsed, errors, {"200": len(latencies)})


async def sign_in(base_url: str, email: str, password: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        response = await client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": password},
        )
    if response.status_code != 200:
        raise RuntimeError(f"sign-in of {email} answered {response.status_code}: {response.text}")
    return str(response.json()["access_token"])


@dataclass
class Row:
    result: Result
    rps_to_pk: float | None = None
    p50_to_pk: float | None = None
    rps_to_healthz: float | None = None
    #: median latency of PROBE_REQUESTS requests sent one at a time before the load (ms)
    alone_ms: float | None = None
    drained_s: float | None = None  # time the service took to go idle after the measure


async def probe_alone(
    base_url: str, paths: Sequence[str], headers: dict[str, str]
) -> tuple[float, dict[str, int]]:
    """Median latency of a few requests sent one after the other (no queueing), statuses."""
    timings: list[float] = []
    statuses: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=300) as client:
        for path in list(paths)[:PROBE_REQUESTS]:
            t0 = time.perf_counter()
            response = await client.get(path)
            timings.append((time.perf_counter() - t0) * 1000)
            statuses[str(response.status_code)] += 1
    timings.sort()
    return timings[len(timings) // 2], dict(statuses)


def measure(
    generator: LoadGenerator,
    service: Service,
    url: str,
    targets: Targets,
    password: str,
    *,
    seconds: float,
    concurrency: int,
) -> list[Row]:
    """healthz, the raw primary-key read, then the three people scenarios; each warmed up,
    then measured, the service left to drain what the load generator left queued."""
    read_paths = [f"/v1/beneficiaries/{i}" for i in targets.read_ids]
    search_paths = [
        f"/v1/beneficiaries/search?birth_date={d.isoformat()}&last_name={quote(last)}"
        f"&first_name={quote(first)}"
        for d, last, first in targets.searches
    ]
    plans: list[tuple[Scenario, list[str], str | None]] = [
        (Scenario(HEALTHZ, "liveness, no database", lambda _c: []), ["/healthz"], None),
        (
            Scenario(
                "get_beneficiary",
                f"GET /v1/beneficiaries/{{id}} as {CCAS_AGENT} over {len(read_paths)} "
                "followed ids (+ audit write)",
                lambda _c: [],
            ),
            read_paths,
            CCAS_AGENT,
        ),
        (
            Scenario(
                "preview_search",
                f"GET /v1/beneficiaries/search (birth date + names) as {CIAS_AGENT} over "
                f"{len(search_paths)} people of its territory (+ audit write)",
                lambda _c: [],
            ),
            search_paths,
            CIAS_AGENT,
        ),
        (
            Scenario(
                "attached_list",
                f"GET /v1/beneficiaries?limit={LIST_LIMIT} (first page) as {CCAS_AGENT}",
                lambda _c: [],
            ),
            [f"/v1/beneficiaries?limit={LIST_LIMIT}"],
            CCAS_AGENT,
        ),
    ]
    results: dict[str, Result] = {}
    probes: dict[str, float] = {}
    drained: dict[str, float] = {}
    order: list[str] = []
    for index, (scenario, paths, persona) in enumerate(plans):
        if index == 1:  # the baseline, right after healthz
            print(f"{BASELINE_PK}: warm-up {WARMUP_SECONDS:.0f} s", file=sys.stderr)
            asyncio.run(raw_pk_reads(url, targets.read_ids, WARMUP_SECONDS, concurrency))
            print(f"{BASELINE_PK}: measuring {seconds:g} s", file=sys.stderr)
            raw = asyncio.run(raw_pk_reads(url, targets.read_ids, seconds, concurrency))
            pk = Scenario(
                BASELINE_PK,
                f"asyncpg SELECT * FROM beneficiary WHERE id = $1, {concurrency} owner "
                "connections, in Python (no HTTP, no RLS)",
                lambda _c: [],
            )
            results[BASELINE_PK] = to_result(pk, len(targets.read_ids), raw)
            order.append(BASELINE_PK)
        headers = {}
        if persona is not None:  # 15-minute tokens: one taken right before each scenario
            token = asyncio.run(sign_in(service.base_url, persona, password))
            headers["Authorization"] = f"Bearer {token}"
        alone, statuses = asyncio.run(probe_alone(service.base_url, paths, headers))
        probes[scenario.name] = alone
        print(
            f"{scenario.name}: one request at a time: {alone:.1f} ms (median of "
            f"{PROBE_REQUESTS}), statuses {statuses}",
            file=sys.stderr,
        )
        if alone < WARMUP_SECONDS * 1000:
            print(f"{scenario.name}: warm-up {WARMUP_SECONDS:.0f} s", file=sys.stderr)
            generator.run(
                service.base_url, paths, headers, seconds=WARMUP_SECONDS, concurrency=concurrency
            )
            service.wait_idle(timeout=DRAIN_SECONDS)
        else:  # the probe warmed it; a warm-up would only queue minutes of work
            print(f"{scenario.name}: no warm-up (the probe warmed it)", file=sys.stderr)
        print(f"{scenario.name}: measuring {seconds:g} s", file=sys.stderr)
        measured = generator.run(
            service.base_url, paths, headers, seconds=seconds, concurrency=concurrency
        )
        drained[scenario.name] = service.wait_idle(timeout=DRAIN_SECONDS)
        results[scenario.name] = to_result(scenario, len(paths), measured)
        order.append(scenario.name)
    pk_result, healthz = results[BASELINE_PK], results[HEALTHZ]
    rows = []
    for name in order:
        r = results[name]
        rows.append(
            Row(
                r,
                rps_to_pk=r.rps / pk_result.rps if pk_result.rps else None,
                p50_to_pk=r.p50_ms / pk_result.p50_ms if pk_result.p50_ms else None,
                rps_to_healthz=r.rps / healthz.rps if healthz.rps else None,
                alone_ms=probes.get(name),
                drained_s=drained.get(name),
            )
        )
    return rows


# --------------------------------------------------------------------------- in-process profile


@dataclass
class Statement:
    sql: str
    parameters: tuple[Any, ...]
    ms: float


@dataclass
class Profile:
    request: str
    total_ms: float
    statements: int
    database_ms: float
    slowest: list[dict[str, Any]]  # sql, ms, plan (EXPLAIN ANALYZE lines)


async def _profile(url: str, nir_key: str, targets: Targets, explain: bool) -> list[Profile]:
    """One request of each kind through the service's own code (runtime role, row-level
    security on, scope built as a request builds it), in a transaction rolled back; every
    statement timed; the slowest SELECTs explained (ANALYZE, BUFFERS) in a fresh
    transaction with the same identity."""
    from pydantic import SecretStr
    from sqlalchemy import event

    from api.auth.builder import build_scope
    from api.db.engine import Database
    from api.domain.audit.repository import AuditLog
    from api.domain.organisations.repository import OrganisationStore
    from api.domain.people import service
    from api.domain.people.nir import NirCipher
    from api.domain.people.repository import PeopleStore
    from api.domain.people.service import People
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

    event.listen(database.app_engine.sync_engine, "before_cursor_execute", before)
    event.listen(database.app_engine.sync_engine, "after_cursor_execute", after)
    runtime_url = plain_url(database.app_engine.url.render_as_string(hide_password=False))
    raw = await asyncpg.connect(runtime_url)
    profiles: list[Profile] = []
    d, last, first = targets.searches[0]
    jobs: list[tuple[str, uuid.UUID, uuid.UUID, Callable[[People], Awaitable[object]]]] = [
        (
            "GET /v1/beneficiaries/{id}",
            targets.ccas_id,
            targets.ccas_user,
            lambda ctx: service.read(ctx, targets.read_ids[0]),
        ),
        (
            "GET /v1/beneficiaries/search",
            targets.cias_id,
            targets.cias_user,
            lambda ctx: service.preview_search(
                ctx, birth_date=d, last_name=last, first_name=first, nir=None
            ),
        ),
        (
            f"GET /v1/beneficiaries?limit={LIST_LIMIT}",
            targets.ccas_id,
            targets.ccas_user,
            lambda ctx: service.attached(
                ctx, competence=None, commune=None, cursor=None, limit=LIST_LIMIT
            ),
        ),
    ]
    try:
        for label, org, user, job in jobs:
            print(f"profile: {label}", file=sys.stderr)
            claims = profile_claims(settings, user, org)
            runs, total = 0, 0.0
            # the first run warms caches and the statement cache; measured again if it was
            # quick (a slow request has warmed itself)
            while runs == 0 or (runs == 1 and total < PROFILE_RERUN_BELOW_MS):
                runs += 1
                captured.clear()
                t0 = time.perf_counter()
                async with database.sessionmaker() as session:
                    transaction = await session.begin()
                    try:
                        scope = await build_scope(session, claims)
                        ctx = People(
                            scope=scope,
                            store=PeopleStore(session, scope),
                            orgs=OrganisationStore(session),
                            audit=AuditLog(session, scope),
                            nir=cipher,
                        )
                        await job(ctx)
                    finally:
                        await transaction.rollback()
                total = (time.perf_counter() - t0) * 1000
            statements = list(captured)
            slow = sorted(
                (s for s in statements if s.sql.lstrip().upper().startswith("SELECT")),
                key=lambda s: -s.ms,
            )
            slowest: list[dict[str, Any]] = []
            seen: set[str] = set()
            for s in slow:
                if len(slowest) >= EXPLAIN_TOP or s.ms < EXPLAIN_MIN_MS:
                    break
                if s.sql in seen or "pg_advisory" in s.sql:
                    continue
                seen.add(s.sql)
                same = [x.ms for x in statements if x.sql == s.sql]
                entry: dict[str, Any] = {
                    "sql": " ".join(s.sql.split()),
                    "ms": round(s.ms, 2),
                    "times_in_request": len(same),
                    "ms_in_request": round(sum(same), 2),
                }
                if explain:
                    entry["plan"] = await explain_statement(raw, org, user, s)
                slowest.append(entry)
            profiles.append(
                Profile(
                    request=label,
                    total_ms=round(total, 2),
                    statements=len(statements),
                    database_ms=round(sum(s.ms for s in statements), 2),
                    slowest=slowest,
                )
            )
    finally:
        await raw.close()
        await database.dispose()
    return profiles


async def explain_statement(
    raw: asyncpg.Connection, org: uuid.UUID, user: uuid.UUID, s: Statement
) -> list[str]:
    # rolled back: a statement that writes (a data-modifying CTE) is explained as it runs,
    # and what it wrote goes
    transaction = raw.transaction()
    await transaction.start()
    try:
        await raw.execute(
            "SELECT set_config('guichet.context', 'request', true), "
            "set_config('guichet.organisation_id', $1, true), "
            "set_config('guichet.principal_id', $2, true)",
            str(org),
            str(user),
        )
        try:
            rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {s.sql}", *s.parameters)
        except asyncpg.PostgresError as error:
            return [f"EXPLAIN failed: {type(error).__name__}: {error}"]
    finally:
        await transaction.rollback()
    return [str(r[0]) for r in rows]


def key_plan_lines(plan: Sequence[str], limit: int = 14) -> list[str]:
    """The lines of a plan worth reading first: nodes with their actual rows and times,
    InitPlans/SubPlans, filters, and the execution time."""
    keep: list[str] = []
    for line in plan:
        text = line.strip()
        if (
            "actual time" in text
            or text.startswith(("InitPlan", "SubPlan", "Execution Time", "Planning Time"))
            or text.startswith(("Filter:", "Index Cond:", "Rows Removed"))
        ):
            keep.append(line.rstrip())
    if len(keep) > limit:
        keep = [*keep[: limit - 2], "  …", keep[-1]]
    return keep


# --------------------------------------------------------------------------- output


def render(rows: Sequence[Row]) -> str:
    header = (
        f"{'scenario':<18}{'req/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'rps/pk':>9}{'p50/pk':>9}{'rps/healthz':>13}{'alone ms':>10}"
    )
    lines = [header, "-" * len(header)]

    def ratio(value: float | None, digits: int) -> str:
        return f"{value:.{digits}f}" if value is not None else "-"

    for row in rows:
        r = row.result
        lines.append(
            f"{r.scenario:<18}{r.rps:>10.1f}{r.p50_ms:>9.2f}{r.p95_ms:>9.2f}{r.p99_ms:>9.2f}"
            f"{r.errors:>8}{ratio(row.rps_to_pk, 4):>9}{ratio(row.p50_to_pk, 1):>9}"
            f"{ratio(row.rps_to_healthz, 3):>13}{ratio(row.alone_ms, 1):>10}"
        )
    return "\n".join(lines)


def report(
    args: argparse.Namespace,
    generator: LoadGenerator,
    labels: dict[str, str],
    gen: GenerationReport,
    before: DataSize,
    after: DataSize,
    rows: Sequence[Row],
    profiles: Sequence[Profile],
    problems: Sequence[str],
) -> None:
    host = machine()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    print()
    print(
        f"machine: {host['nproc']} CPU ({host['cpu_model']}), Python {host['python']}, "
        f"PostgreSQL {labels['postgres']} (autovacuum {labels['autovacuum']})"
    )
    print(f"database: {labels['database']}; code: {labels['code']}")
    print(
        f"generation: {gen.seconds:.1f} s in all = guichet demo {gen.demo_seconds:.1f} s + "
        f"load {gen.load_seconds:.1f} s ("
        + ", ".join(f"{k} {v:.1f} s" for k, v in gen.steps.items())
        + f") + ANALYZE {gen.analyze_seconds:.1f} s; seed {args.seed}"
    )
    print(
        f"generated: {gen.people} people ({gen.with_nir} with a NIR), {gen.memberships} "
        f"care-team memberships, {gen.organisations_added} organisations ({gen.ccas_added} "
        f"CCAS, {gen.associations_added} associations; {gen.territory_rows} territory rows), "
        f"{gen.users_added} agents; household members "
        + (str(gen.household_members) if gen.household_members is not None else "-")
        + ", notes "
        + (str(gen.notes) if gen.notes is not None else "-")
    )
    if gen.pending_tables:
        print(
            f"pending: no {', '.join(gen.pending_tables)} table in this schema: household sizes "
            "are in beneficiary.situation (household_size); notes not generated"
        )
    for error in gen.table_errors:
        print(f"! {error}")
    print(
        f"data: {after.people} people, {after.memberships} memberships, {after.organisations} "
        f"organisations, {after.users} users; {CCAS_AGENT} follows {after.ccas_amiens_follows}; "
        f"{after.cias_territory_people} people live on the CIAS territory; audit entries "
        f"{before.audit_entries} before the load, {after.audit_entries} after"
    )
    print(
        f"load: {generator.name}, {args.concurrency} connections, {args.workers} uvicorn "
        f"worker(s), {WARMUP_SECONDS:.0f} s warm-up + {args.duration:g} s per scenario; "
        f"{BASELINE_PK}: {args.concurrency} asyncpg connections in Python"
    )
    print(
        f"ratios: rps/pk and p50/pk to '{BASELINE_PK}', rps/healthz to '{HEALTHZ}', "
        "of this run (shared, noisy machine: compare ratios); alone ms: median of "
        f"{PROBE_REQUESTS} requests sent one at a time before the load"
    )
    print()
    print(render(rows))
    for row in rows:
        r = row.result
        if r.errors:
            print(f"! {r.scenario}: {r.errors} error(s); statuses {r.statuses}")
        if not r.requests:
            print(f"! {r.scenario}: no answer within the {args.duration:g} s run")
        if row.drained_s is not None and row.drained_s >= DRAIN_SECONDS:
            print(
                f"! {r.scenario}: the service was still busy {DRAIN_SECONDS} s after the load "
                "(requests left queued by wrk)"
            )
    if labels.get("profile_error"):
        print(f"! in-process profile failed: {labels['profile_error']}")
    if profiles:
        print()
        print(
            "in process, one request each (runtime role, rolled back, after one warm-up run): "
            "statements, their time, and the slowest SELECTs"
        )
        for p in profiles:
            print(
                f"* {p.request}: {p.total_ms:.1f} ms, {p.statements} statements, "
                f"{p.database_ms:.1f} ms in the database driver"
            )
            for s in p.slowest:
                print(
                    f"  - {s['ms']:.1f} ms (x{s['times_in_request']} = "
                    f"{s['ms_in_request']:.1f} ms): {s['sql'][:220]}"
                )
                for line in key_plan_lines(s.get("plan", [])):
                    print(f"      {line[:200]}")
    save_results(
        args,
        stamp,
        labels=labels,
        machine={**host, "postgres": labels["postgres"], "autovacuum": labels["autovacuum"]},
        load_generator=generator.name,
        problems=problems,
        config={
            "people": args.people,
            "organisations": args.organisations,
            "seed": args.seed,
        },
        sections={
            "generation": asdict(gen),
            "data_before": asdict(before),
            "data_after": asdict(after),
            "results": [
                {
                    **asdict(row.result),
                    "rps_to_pk": row.rps_to_pk,
                    "p50_to_pk": row.p50_to_pk,
                    "rps_to_healthz": row.rps_to_healthz,
                }
                for row in rows
            ],
            "profiles": [asdict(p) for p in profiles],
        },
    )


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.dataset",
        description="Generate a département-scale population on a fresh database (guichet "
        "demo + COPY), then measure GET /v1/beneficiaries/{id}, the preview search and the "
        "attached list with wrk, as ratios of a raw asyncpg primary-key read (and of /healthz) "
        "measured in the same run.",
    )
    parser.add_argument("--people", type=int, default=200_000, help="people (200000)")
    parser.add_argument(
        "--organisations",
        type=int,
        default=300,
        help="organisations added to the demo's: 2/3 CCAS on the largest communes without "
        "one, 1/3 associations serving the département (300)",
    )
    parser.add_argument("--seed", type=int, default=2026, help="random seed (2026)")
    parser.add_argument(
        "--generate-only",
        metavar="DATABASE_URL",
        help="only generate into this fresh, empty database (owner URL) and keep it; no load",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated database instead of dropping it (its name is printed)",
    )
    parser.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the in-process profile and EXPLAIN ANALYZE of the slowest statements",
    )
    add_load_options(parser, name="dataset")
    args = parser.parse_args(argv)
    if args.people < 1 or args.organisations < 3:
        parser.error("--people must be >= 1 and --organisations >= 3")
    check_load_options(parser, args)
    return args


def new_nir_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _generate_only(args: argparse.Namespace) -> int:
    env = service_env()
    env["GUICHET_NIR_KEY"] = env.get("GUICHET_NIR_KEY") or new_nir_key()
    gen = generate(
        args.generate_only, args.people, args.organisations, args.seed, env=env, source=ROOT
    )
    print(json.dumps(asdict(gen), indent=2))
    if "GUICHET_NIR_KEY" not in os.environ:
        print(f"serve it with GUICHET_NIR_KEY={env['GUICHET_NIR_KEY']}")
    return 0


def frozen_source(ref: str | None, workdir: Path) -> tuple[Path, str]:
    """The code to serve, generate with and profile, fixed for the whole run: ``ref``
    exported (bench/http.py), or a copy of the working tree's ``api/`` taken now, so that
    edits made to the tree during a run do not reach half of it."""
    if ref is not None:
        return service_source(ref, workdir)
    _root, label = service_source(None, workdir)
    target = workdir / "src"
    shutil.copytree(ROOT / "api", target / "api", ignore=shutil.ignore_patterns("__pycache__"))
    return target, f"{label}, copied at start"


def run(args: argparse.Namespace) -> int:
    if args.generate_only:
        return _generate_only(args)
    workdir = Path(tempfile.mkdtemp(prefix="guichet-bench-dataset-"))
    try:
        generator = choose_generator(args.loadgen, args.wrk_threads, workdir)
        print(f"load generator: {generator.name}", file=sys.stderr)
        source, code_label = frozen_source(args.ref, workdir)
        sys.path.insert(0, str(source))  # this process imports the same api as it serves
        env = service_env()
        for key in ("GUICHET_BOOTSTRAP_ADMIN_EMAIL", "GUICHET_BOOTSTRAP_ADMIN_PASSWORD"):
            env.pop(key, None)
        nir_key = new_nir_key()  # the service and the generator share it
        env["GUICHET_NIR_KEY"] = nir_key
        from api.demo.territory import DEMO_PASSWORD

        with bench_database(env, args.keep) as database_label:
            url = env["DATABASE_URL"]
            gen = generate(url, args.people, args.organisations, args.seed, env=env, source=source)
            print(f"generated in {gen.seconds:.1f} s", file=sys.stderr)
            targets = asyncio.run(find_targets(url, args.seed))
            before = asyncio.run(_data_size(url, targets.ccas_id, targets.cias_id))
            service = Service(env, args.workers, workdir / "service.log", source)
            try:
                ready_after = service.wait_ready(args.startup_timeout)
                print(f"service ready after {ready_after:.1f} s", file=sys.stderr)
                rows = measure(
                    generator,
                    service,
                    url,
                    targets,
                    DEMO_PASSWORD,
                    seconds=args.duration,
                    concurrency=args.concurrency,
                )
                after = asyncio.run(_data_size(url, targets.ccas_id, targets.cias_id))
                problems = service.log_problems()
            finally:
                service.stop()  # its queued requests would weigh on the profile
            profiles: list[Profile] = []
            profile_error = None
            if args.profile:
                try:
                    profiles = asyncio.run(_profile(url, nir_key, targets, explain=True))
                except Exception as error:  # the load figures are kept
                    profile_error = (
                        f"{type(error).__name__}: {(str(error).splitlines() or [''])[0]}"
                    )
        labels = {
            "postgres": targets.postgres_version,
            "autovacuum": targets.autovacuum,
            "database": database_label,
            "code": code_label,
            "service_log": str(service.log_path),
            "profile_error": profile_error or "",
        }
        report(args, generator, labels, gen, before, after, rows, profiles, problems)
        return 1 if any(r.result.errors or not r.result.requests for r in rows) else 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextmanager
def bench_database(env: dict[str, str], keep: bool) -> Iterator[str]:
    """``fresh_database`` (bench/http.py), or with ``keep`` a new database left in place."""
    if not keep:
        with fresh_database(env) as label:
            yield label
        return
    name, url = create_database(ADMIN_URL)
    env["DATABASE_URL"] = url
    print(f"created database {name} (kept)", file=sys.stderr)
    yield f"database {name} (kept: {url})"


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(parse_args, run, argv)


if __name__ == "__main__":
    sys.exit(main())
