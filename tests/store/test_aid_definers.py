"""The aid definer functions asked by a partner that does follow the person, but not for
the competence of its aids: the household's aid history is an ``aids`` record, told only to
a party of an aid request of that grantor about the person (the grantor or the organisation
instructing it)."""

from __future__ import annotations

import uuid
from datetime import date

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.context import DbContext, set_db_context
from tests.api.aids_support import Headers, add_personas, aid_person, generous_rules
from tests.api.test_aid_requests import act, open_request
from tests.api.test_referrals import act as referral_act
from tests.api.test_referrals import send
from tests.world import World


async def _as(connection: AsyncConnection, world: World, persona: str) -> AsyncSession:
    session = AsyncSession(bind=connection)
    who = world.personas[persona]
    await set_db_context(
        session,
        context=DbContext.REQUEST,
        organisation_id=who.organisation_id,
        principal_id=who.principal_id,
    )
    return session


async def test_an_organisation_following_the_person_for_food_learns_nothing_of_its_energy_aid(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    database_url: URL,
) -> None:
    await add_personas(world, database_url)
    await generous_rules(client, as_persona)
    # an energy aid (aide_facultative) of a person the CCAS follows for it
    person = await aid_person(client, as_persona, competence="aide_facultative")
    created = await open_request(
        client, as_persona, person, aid_code="aide_energie", form="paiement_tiers"
    )
    assert created.status_code == 201, created.text
    request = str(created.json()["id"])
    for action, body in (("submit", None), ("grant", {"amount": "50"})):
        r = await act(client, as_persona, request, action, body=body)
        assert r.status_code == 200, r.text
    # the Secours populaire joins the care team for food, by an accepted referral sharing
    # identity only
    referral = await send(client, as_persona, world, person)
    accepted = await referral_act(client, as_persona, "association_agent", referral["id"], "accept")
    assert accepted.status_code == 200, accepted.text

    params = {
        "p": uuid.UUID(person),
        "g": world.organisations["ccas_amiens"],
        "s": date.today().replace(year=date.today().year - 1),
        "r": uuid.UUID(request),
    }
    history = "SELECT count(*) FROM guichet_aid_history(:p, :g, :s)"
    amiens = await _as(connection, world, "ccas_rsa_agent")
    assert await amiens.scalar(text(history), params) == 1  # the grantor itself

    secours = await _as(connection, world, "association_agent")
    assert await secours.scalar(text("SELECT guichet_is_attached(:p)"), params)
    assert await secours.scalar(text(history), params) == 0
    assert not await secours.scalar(text("SELECT guichet_can_see_aid_request(:r)"), params)
    assert not await secours.scalar(
        text("SELECT guichet_aids_can_see(:p, 'aide_facultative')"), params
    )
    seen = await client.get(f"/v1/aid-requests/{request}", headers=as_persona("association_agent"))
    assert seen.status_code == 404
