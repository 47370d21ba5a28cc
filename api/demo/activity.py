"""A year of plausible activity in the demo territory, so that the statistics and the ABS
report have something to show: people received on Amiens Métropole and the Val de Somme,
their households, referrals between the demo partners with their answers and delays,
orientations and RSA/APA/FSL dossiers, from 1 January of last year to today.

Written as the owner with batched inserts (the statistical rows follow through their
triggers). Idempotent: every id is derived from a fixed seed, and a row already there is
left as it is. The people are fictitious.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from api.db.tables import Beneficiary, CareTeamMembership, Dossier, HouseholdMember
from api.domain import clock
from api.domain.calendar import add_working_days
from api.domain.orientations.tables import Orientation, OrientationEvent
from api.domain.referrals.tables import Referral, ReferralEvent
from api.domain.text import fold

SEED = 2026
PEOPLE = 700
NAMESPACE = uuid.UUID("6f1c0d52-6a3e-4c1e-9a59-2b0c4f5e8d10")

# commune -> (weight, the partner that receives people there, its competences)
_COMMUNES = {
    "80021": (60, "ccas_amiens", ("aide_facultative", "aide_alimentaire", "domiciliation")),
    "80489": (8, "ccas_longueau", ("aide_facultative", "aide_alimentaire")),
    "80212": (10, "ccas_corbie", ("aide_facultative", "aide_alimentaire")),
    "80164": (5, "cias", ("aide_facultative", "aide_alimentaire")),
    "80674": (5, "cias", ("aide_facultative", "personnes_agees")),
    "80725": (4, "cias", ("aide_facultative", "personnes_agees")),
    "80131": (4, "departement", ("rsa", "apa")),
    "80799": (4, "departement", ("rsa", "apa")),
}
_LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Lefebvre",
    "Leroy",
    "Moreau",
    "Petit",
    "Roux",
    "Fournier",
    "Girard",
    "Lambert",
    "Caron",
    "Dumont",
    "Lemaire",
    "Vasseur",
    "Delattre",
)
_FIRST_NAMES = {
    "F": ("Julie", "Nadia", "Sophie", "Chantal", "Léa", "Aïcha", "Monique", "Inès"),
    "M": ("Kevin", "Karim", "Jean", "Michel", "Lucas", "Thierry", "Youssef", "Paul"),
}
# (competence, recipient key, need code)
_ROUTES = (
    ("aide_alimentaire", "secours_populaire", "colis_alimentaire"),
    ("rsa", "departement", "ouverture_droits"),
    ("fsl", "departement", "impaye_energie"),
    ("faj", "mission_locale", "aide_jeune"),
    ("apa", "departement", "maintien_domicile"),
)
_DECLINES = ("hors_competence", "pas_de_capacite", "non_eligible", "injoignable", "doublon")
_OUTCOMES = ("service_rendu", "droit_ouvert", "aide_accordee", "aide_refusee", "abandon")


@dataclass
class _Rows:
    people: list[dict[str, Any]] = field(default_factory=list)
    members: list[dict[str, Any]] = field(default_factory=list)
    households: list[dict[str, Any]] = field(default_factory=list)
    referrals: list[dict[str, Any]] = field(default_factory=list)
    referral_events: list[dict[str, Any]] = field(default_factory=list)
    orientations: list[dict[str, Any]] = field(default_factory=list)
    orientation_events: list[dict[str, Any]] = field(default_factory=list)
    dossiers: list[dict[str, Any]] = field(default_factory=list)


def _table(model: type[Any]) -> Any:
    return model.__table__


def _id(kind: str, index: int) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"{kind}-{index}")


def _instant(day: date, rng: random.Random) -> datetime:
    return datetime.combine(day, time(8 + rng.randrange(9), rng.randrange(60)), UTC)


async def load_demo_activity(conn: AsyncConnection, organisations: dict[str, uuid.UUID]) -> int:
    """Insert what is missing; returns how many people the activity has."""
    rows = _generate(organisations, clock.today())
    for table, values in (
        (_table(Beneficiary), rows.people),
        (_table(CareTeamMembership), rows.members),
        (_table(HouseholdMember), rows.households),
        (_table(Referral), rows.referrals),
        (_table(ReferralEvent), rows.referral_events),
        (_table(Orientation), rows.orientations),
        (_table(OrientationEvent), rows.orientation_events),
        (_table(Dossier), rows.dossiers),
    ):
        if values:
            statement = insert(table).on_conflict_do_nothing()
            await conn.execute(statement, values)
    return len(rows.people)


def _generate(organisations: dict[str, uuid.UUID], today: date) -> _Rows:
    rng = random.Random(SEED)  # noqa: S311 - reproducible fictitious data, not secrets
    start = date(today.year - 1, 1, 1)
    span = (today - start).days
    rows = _Rows()
    communes = list(_COMMUNES)
    weights = [_COMMUNES[c][0] for c in communes]
    for index in range(PEOPLE):
        commune = rng.choices(communes, weights)[0]
        _, follower, competences = _COMMUNES[commune]
        first_contact = start + timedelta(days=rng.randrange(span))
        person = _person(rng, rows, index, commune, organisations[follower], first_contact)
        competence = rng.choice(competences)
        rows.members.append(
            {
                "id": _id("member", index),
                "beneficiary_id": person,
                "organisation_id": organisations[follower],
                "competence": competence,
                "team_role": "referent",
                "source": "creation",
                "started_at": _instant(first_contact, rng),
            }
        )
        for n in range(rng.choice((0, 0, 1, 1, 2, 3))):
            _referral(
                rng,
                rows,
                index * 10 + n,
                person,
                commune,
                organisations[follower],
                organisations,
                first_contact,
                today,
            )
        if index % 5 == 0:
            _orientation(rng, rows, index, person, organisations, first_contact, today)
        if index % 6 == 0:
            _dossier(rng, rows, index, person, organisations, first_contact, today)
    return rows


def _person(
    rng: random.Random,
    rows: _Rows,
    index: int,
    commune: str,
    creator: uuid.UUID,
    first_contact: date,
) -> uuid.UUID:
    person = _id("person", index)
    sex = rng.choice("FM")
    age = rng.choices((20, 30, 45, 58, 68, 80), (12, 28, 27, 14, 10, 9))[0] + rng.randrange(6)
    birth = first_contact - timedelta(days=365 * age + rng.randrange(365))
    last, first = rng.choice(_LAST_NAMES), rng.choice(_FIRST_NAMES[sex])
    at = _instant(first_contact, rng)
    rows.people.append(
        {
            "id": person,
            "birth_name": last,
            "first_names": first,
            "birth_date": birth,
            "sex": sex,
            "commune_code": commune,
            "match_keys": [fold(last)],
            "folded_names": fold(f"{last} {first}"),
            "last_contact_at": at,
            "created_by_organisation_id": creator,
            "version": 1,
            "created_at": at,
            "updated_at": at,
        }
    )
    household = rng.choices(("single", "couple", "parent", "family", "other"), (38, 14, 22, 20, 6))[
        0
    ]
    relations = {
        "single": [],
        "couple": ["conjoint"],
        "parent": ["enfant"] * rng.randint(1, 3),
        "family": ["conjoint", *["enfant"] * rng.randint(1, 4)],
        "other": ["autre"],
    }
    for n, relation in enumerate(relations[household]):
        rows.households.append(
            {
                "id": _id("household", index * 10 + n),
                "beneficiary_id": person,
                "first_name": None,
                "birth_date": None,
                "relation": relation,
            }
        )
    return person


def _referral(
    rng: random.Random,
    rows: _Rows,
    index: int,
    person: uuid.UUID,
    commune: str,
    sender: uuid.UUID,
    organisations: dict[str, uuid.UUID],
    first_contact: date,
    today: date,
) -> None:
    competence, recipient_key, need = rng.choice(_ROUTES)
    recipient = organisations[recipient_key]
    if recipient == sender:
        return
    sent = min(today, first_contact + timedelta(days=rng.randrange(60)))
    referral = _id("referral", index)
    steps: list[tuple[str, str | None, str | None, date]] = [("sent", None, None, sent)]
    acknowledged = add_working_days(sent, rng.choice((0, 1, 1, 2, 3, 5, 8)))
    fate = rng.choices(
        ("completed", "declined", "expired", "in_progress", "not_completed"), (55, 15, 8, 14, 8)
    )[0]
    if fate == "expired":
        steps.append(("expired", None, None, add_working_days(sent, 11)))
    else:
        steps.append(("acknowledged", None, None, acknowledged))
        if fate == "declined":
            reason = rng.choice(_DECLINES)
            steps.append(("declined", reason, None, add_working_days(acknowledged, 2)))
        else:
            accepted = add_working_days(acknowledged, rng.choice((0, 1, 2, 4, 6)))
            steps.append(("accepted", None, None, accepted))
            steps.append(("in_progress", None, None, accepted))
            ended = add_working_days(accepted, rng.randrange(5, 40))
            if fate == "completed":
                steps.append(("completed", None, rng.choice(_OUTCOMES), ended))
            elif fate == "not_completed":
                steps.append(("not_completed", "injoignable", None, ended))
    steps = [s for s in steps if s[3] <= today]
    status = steps[-1][0]
    created = _instant(sent, rng)
    rows.referrals.append(
        {
            "id": referral,
            "sender_organisation_id": sender,
            "recipient_organisation_id": recipient,
            "beneficiary_id": person,
            "commune_code": commune,
            "competence": competence,
            "need_code": need,
            "need_description": "",
            "shared_categories": ["identity"],
            "urgency": "normal",
            "response_due_on": add_working_days(sent, 10),
            "status": status,
            "consent_override_reason": "obligation_legale",
            "version": len(steps),
            "created_at": created,
            "updated_at": _instant(steps[-1][3], rng),
            "closed_at": None
            if status in ("sent", "acknowledged", "accepted", "in_progress")
            else _instant(steps[-1][3], rng),
        }
    )
    previous: str | None = None
    for n, (to, reason_code, outcome_code, day) in enumerate(steps):
        rows.referral_events.append(
            {
                "referral_id": referral,
                "at": created + timedelta(days=(day - sent).days, seconds=n),
                "from_status": previous,
                "to_status": to,
                "organisation_id": sender if to in ("sent",) else recipient,
                "reason_code": reason_code,
                "outcome_code": outcome_code,
            }
        )
        previous = to


def _orientation(
    rng: random.Random,
    rows: _Rows,
    index: int,
    person: uuid.UUID,
    organisations: dict[str, uuid.UUID],
    first_contact: date,
    today: date,
) -> None:
    orientation = _id("orientation", index)
    status = rng.choices(("accepted", "refused", "proposed"), (70, 15, 15))[0]
    at = _instant(min(today, first_contact + timedelta(days=rng.randrange(30))), rng)
    rows.orientations.append(
        {
            "id": orientation,
            "beneficiary_id": person,
            "competence": "rsa",
            "issuer_organisation_id": organisations["departement"],
            "target_organisation_id": organisations["ccas_amiens"],
            "category": "sociale",
            "reason": "",
            "status": status,
            "version": 1,
            "created_at": at,
            "updated_at": at,
        }
    )
    rows.orientation_events.append(
        {
            "orientation_id": orientation,
            "at": at,
            "from_status": None,
            "to_status": "proposed",
            "organisation_id": organisations["departement"],
        }
    )
    if status != "proposed":
        rows.orientation_events.append(
            {
                "orientation_id": orientation,
                "at": at + timedelta(days=3),
                "from_status": "proposed",
                "to_status": status,
                "organisation_id": organisations["ccas_amiens"],
                "reason_code": "hors_competence" if status == "refused" else None,
            }
        )


def _dossier(
    rng: random.Random,
    rows: _Rows,
    index: int,
    person: uuid.UUID,
    organisations: dict[str, uuid.UUID],
    first_contact: date,
    today: date,
) -> None:
    prestation = rng.choice(("rsa", "rsa", "apa", "fsl"))
    decision = rng.choices(("granted", "rejected", None), (60, 20, 20))[0]
    at = _instant(min(today, first_contact + timedelta(days=rng.randrange(20))), rng)
    amounts = {"rsa": 607, "apa": 420, "fsl": 350}
    rows.dossiers.append(
        {
            "id": _id("dossier", index),
            "beneficiary_id": person,
            "prestation": prestation,
            "instructing_organisation_id": organisations["ccas_amiens"],
            "deciding_organisation_id": organisations["departement"],
            "status": "decided" if decision else "submitted",
            "instruction": {},
            "instruction_updated_at": at,
            "decision": decision,
            "amount": Decimal(amounts[prestation]) if decision == "granted" else None,
            "status_changed_at": at,
            "version": 1,
            "created_at": at,
            "updated_at": at,
        }
    )
