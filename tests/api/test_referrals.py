"""Referrals between partners: the closed loop of domain.md §8 over HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.engine import create_engine, owner_connection
from api.domain.referrals.repository import anonymise_referrals
from api.domain.referrals.schemas import ReferralSummary
from api.domain.referrals.service import expire_overdue
from api.http.schemas import Page
from tests.api.feed_support import read_all, until
from tests.api.test_people import create
from tests.world import World

Headers = Callable[[str], dict[str, str]]

OVERRIDE = {"reason": "urgence", "justification": "Famille sans ressources ce soir."}


async def person_of_ccas(client: httpx.AsyncClient, as_persona: Headers, **overrides: Any) -> str:
    """A person the CCAS d'Amiens follows (created even if a namesake was committed by
    another test of the run: these tests are not about duplicates)."""
    overrides = {"force_create": True, "justification": "essai", **overrides}
    r = await create(client, as_persona, **overrides)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def referral_body(world: World, person: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "beneficiary_id": person,
        "competence": "aide_alimentaire",
        "recipient_organisation_id": str(world.organisations["secours_populaire"]),
        "need": {"code": "colis_alimentaire", "description": "Colis pour 3 personnes."},
        "shared_categories": ["identity"],
        "consent_override": OVERRIDE,
    }
    body.update(overrides)
    return body


async def send(
    client: httpx.AsyncClient, as_persona: Headers, world: World, person: str, **overrides: Any
) -> dict[str, Any]:
    r = await client.post(
        "/v1/referrals",
        json=referral_body(world, person, **overrides),
        headers=as_persona("ccas_rsa_agent"),
    )
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/v1/referrals/{r.json()['id']}"
    return dict(r.json())


async def act(
    client: httpx.AsyncClient, as_persona: Headers, persona: str, rid: str, action: str, **body: Any
) -> httpx.Response:
    return await client.post(
        f"/v1/referrals/{rid}/{action}", json=body, headers=as_persona(persona)
    )


async def test_recipient_sees_shared_categories_before_accepting_and_the_team_view_after(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    referral = await send(client, as_persona, world, pid)
    assert referral["status"] == "sent"
    assert referral["recipient"]["id"] == str(world.organisations["secours_populaire"])
    assert referral["response_due_on"] > "2000-01-01"

    before = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    assert before.status_code == 200
    assert before.json()["categories"] == ["identity"]
    assert "phone" not in before.json()

    read = await client.get(
        f"/v1/referrals/{referral['id']}", headers=as_persona("association_agent")
    )
    assert read.json()["beneficiary"]["categories"] == ["identity"]
    assert read.json()["allowed_actions"] == ["acknowledge", "accept", "decline", "redirect"]

    accepted = await act(client, as_persona, "association_agent", referral["id"], "accept")
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    after = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    # what the convention CONV-AMIENS-SPF-2026 grants
    assert set(after.json()["categories"]) == {
        "identity",
        "contact",
        "household",
        "resources",
        "referrals",
        "aids",
    }
    assert after.json()["phone"] == "06 00 00 00 01"
    team = await client.get(
        f"/v1/beneficiaries/{pid}/care-team", headers=as_persona("ccas_rsa_agent")
    )
    spf = [
        m
        for m in team.json()
        if m["organisation_id"] == str(world.organisations["secours_populaire"])
        and m["ended_at"] is None
    ]
    assert [m["competence"] for m in spf] == ["aide_alimentaire"]


async def test_a_third_organisation_gets_404_on_the_referral_its_messages_and_actions(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    for method, path in (
        ("GET", f"/v1/referrals/{rid}"),
        ("GET", f"/v1/referrals/{rid}/messages"),
        ("POST", f"/v1/referrals/{rid}/messages"),
        ("POST", f"/v1/referrals/{rid}/accept"),
        ("POST", f"/v1/referrals/{rid}/withdraw"),
    ):
        body = {"body": "Bonjour"} if path.endswith("messages") else {}
        r = await client.request(method, path, json=body, headers=as_persona("ccas_agent"))
        assert r.status_code == 404, (method, path, r.text)
    for box in ("inbox", "outbox"):
        listed = await client.get(f"/v1/referrals?box={box}", headers=as_persona("ccas_agent"))
        assert rid not in [i["id"] for i in listed.json()["items"]]
    person = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_agent"))
    assert person.status_code == 404


async def test_sides_and_states_are_enforced(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    # only the recipient accepts; only the sender withdraws
    r = await act(client, as_persona, "ccas_rsa_agent", rid, "accept")
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = await act(client, as_persona, "association_agent", rid, "withdraw")
    assert r.status_code == 403
    # not allowed from sent, for anyone
    r = await act(client, as_persona, "association_agent", rid, "complete", outcome_code="autre")
    assert r.status_code == 409
    assert r.json()["code"] == "invalid-transition"
    assert r.json()["allowed_actions"] == ["acknowledge", "accept", "decline", "redirect"]
    # a decline needs a code from the shared list
    r = await act(client, as_persona, "association_agent", rid, "decline")
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/reason_code"
    r = await act(
        client, as_persona, "association_agent", rid, "decline", reason_code="pas_de_capacite"
    )
    assert r.status_code == 200 and r.json()["status"] == "declined"
    # terminal: nothing reopens it, and the recipient's access to the person ended
    r = await act(client, as_persona, "association_agent", rid, "accept")
    assert r.status_code == 409 and r.json()["allowed_actions"] == []
    gone = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    assert gone.status_code == 404
    events = (
        await client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
    ).json()["events"]
    assert [(e["from_status"], e["to_status"]) for e in events] == [
        (None, "sent"),
        ("sent", "declined"),
    ]
    assert events[1]["reason_code"] == "pas_de_capacite"


async def test_full_fulfilment_cycle_with_hold_pausing_the_deadline(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    spf = "association_agent"
    for action, body, status in (
        ("acknowledge", {}, "acknowledged"),
        ("accept", {}, "accepted"),
        ("start", {}, "in_progress"),
        ("hold", {"comment": "En attente de justificatifs"}, "on_hold"),
        ("resume", {}, "in_progress"),
        ("complete", {"outcome_code": "aide_accordee"}, "completed"),
    ):
        r = await act(client, as_persona, spf, rid, action, **body)
        assert r.status_code == 200, (action, r.text)
        assert r.json()["status"] == status
    sender_view = await client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
    assert sender_view.json()["status"] == "completed"
    assert sender_view.json()["allowed_actions"] == []


async def test_bad_input_names_the_field_and_sends_nothing(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    cases = [
        ({"consent_override": None}, "/consent_id"),
        ({"shared_categories": ["contact"]}, "/shared_categories"),
        ({"shared_categories": ["identity", "nir"]}, "/shared_categories/1"),
        ({"competence": "rsa"}, "/recipient_organisation_id"),
        ({"response_due_on": "2001-01-01"}, "/response_due_on"),
        ({"unknown": 1}, "/unknown"),
        ({"beneficiary_id": None}, "/beneficiary_id"),
    ]
    for overrides, pointer in cases:
        r = await client.post(
            "/v1/referrals",
            json=referral_body(world, pid, **overrides),
            headers=as_persona("ccas_rsa_agent"),
        )
        assert r.status_code == 422, (overrides, r.text)
        assert pointer in [e["pointer"] for e in r.json()["errors"]], (overrides, r.json())
    outbox = await client.get("/v1/referrals?box=outbox", headers=as_persona("ccas_rsa_agent"))
    assert [i for i in outbox.json()["items"] if i["beneficiary_id"] == pid] == []


async def test_a_revoked_convention_refuses_the_next_referral_to_its_grantee(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    """Who holds a competence on a commune is read once per access version: once the CCAS
    revokes the convention delegating food aid to the Secours populaire, the next referral
    to it is refused, though the same answer was reused for the sends before."""
    pid = await person_of_ccas(client, as_persona)
    await send(client, as_persona, world, pid)
    await send(client, as_persona, world, pid)
    revoked = await client.post(
        f"/v1/conventions/{world.conventions['CONV-AMIENS-SPF-2026']}/revoke",
        json={"reason": "fin"},
        headers=as_persona("org_admin"),
    )
    assert revoked.status_code == 200, revoked.text
    r = await client.post(
        "/v1/referrals", json=referral_body(world, pid), headers=as_persona("ccas_rsa_agent")
    )
    assert r.status_code == 422, r.text
    assert "/recipient_organisation_id" in [e["pointer"] for e in r.json()["errors"]]


async def test_sender_must_see_the_person_and_typing_an_id_grants_nothing(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    r = await client.post(
        "/v1/referrals",
        json={**referral_body(world, pid), "recipient_organisation_id": None},
        headers=as_persona("ccas_agent"),
    )
    assert r.status_code == 404


async def test_redirect_creates_a_child_the_sender_sees_in_its_chain(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    cias = str(world.organisations["cias"])
    r = await act(
        client,
        as_persona,
        "association_agent",
        rid,
        "redirect",
        recipient_organisation_id=cias,
        reason_code="pas_de_capacite",
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "redirected"
    chain = r.json()["chain"]
    assert [c["recipient"]["id"] for c in chain] == [cias]
    child = chain[0]["id"]
    sender = await client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
    assert [c["id"] for c in sender.json()["chain"]] == [child]
    inbox = await client.get("/v1/referrals?box=inbox", headers=as_persona("cias_agent"))
    assert child in [i["id"] for i in inbox.json()["items"]]
    # the association's access ended; the CIAS sees what was shared
    assert (
        await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    ).status_code == 404
    cias_view = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("cias_agent"))
    assert cias_view.json()["categories"] == ["identity"]
    # the sender may withdraw the child; the redirecting association may not act on it
    r = await act(client, as_persona, "association_agent", child, "accept")
    assert r.status_code == 403
    r = await act(client, as_persona, "ccas_rsa_agent", child, "withdraw")
    assert r.status_code == 200 and r.json()["status"] == "withdrawn"


async def test_inline_identity_is_matched_or_created_on_acceptance(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    known = await person_of_ccas(client, as_persona, birth_name="Dupont", first_names="Léa")
    inline = {
        "birth_name": "DUPONT",
        "first_names": "Lea",
        "birth_date": "1975-04-12",
        "sex": "F",
        "commune": "80021",
    }
    r = await client.post(
        "/v1/referrals",
        json={
            "beneficiary": inline,
            "competence": "aide_facultative",
            "recipient_organisation_id": str(world.organisations["ccas_amiens"]),
            "need": {"code": "aide_energie", "description": "Facture d'électricité impayée."},
            "shared_categories": ["identity", "contact"],
            "consent_declared": {"method": "ecrit", "given_on": "2026-01-05"},
        },
        headers=as_persona("association_agent"),
    )
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["inline_identity"]["birth_name"] == "DUPONT"
    # the CCAS follows "Dupont Léa" already: a likely duplicate, previews to choose from
    accept = await act(client, as_persona, "ccas_rsa_agent", rid, "accept")
    assert accept.status_code == 409 and accept.json()["code"] == "possible-duplicate"
    assert known in [c["id"] for c in accept.json()["candidates"]]
    # linking a person who does not match is refused
    stranger = await person_of_ccas(client, as_persona, birth_name="Autre", first_names="Nom")
    r = await act(client, as_persona, "ccas_rsa_agent", rid, "accept", beneficiary_id=stranger)
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/beneficiary_id"
    r = await act(client, as_persona, "ccas_rsa_agent", rid, "accept", beneficiary_id=known)
    assert r.status_code == 200, r.text
    assert r.json()["beneficiary_id"] == known
    assert r.json()["inline_identity"] is None


async def test_inline_referral_needs_a_declared_consent_or_an_override(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    r = await client.post(
        "/v1/referrals",
        json={
            "beneficiary": {
                "birth_name": "Petit",
                "first_names": "Jean",
                "birth_date": "1980-02-02",
                "sex": "M",
                "commune": "80021",
            },
            "competence": "aide_facultative",
            "need": {"code": "aide_energie", "description": "Facture."},
        },
        headers=as_persona("association_agent"),
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["pointer"] == "/consent_declared"


async def test_messages_between_both_sides(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    r = await client.post(
        f"/v1/referrals/{rid}/messages",
        json={"body": "Pouvez-vous la recevoir jeudi ?"},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert r.status_code == 201, r.text
    r = await client.post(
        f"/v1/referrals/{rid}/messages",
        json={"body": "Oui, à 10 h."},
        headers=as_persona("association_agent"),
    )
    assert r.status_code == 201
    listed = await client.get(f"/v1/referrals/{rid}/messages", headers=as_persona("ccas_rsa_agent"))
    assert [m["body"] for m in listed.json()] == ["Pouvez-vous la recevoir jeudi ?", "Oui, à 10 h."]


async def test_lists_page_newest_first_without_gaps(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    sent = [(await send(client, as_persona, world, pid))["id"] for _ in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        url = "/v1/referrals?box=outbox&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=as_persona("ccas_rsa_agent"))).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [i for i in seen if i in sent] == list(reversed(sent))
    assert len(seen) == len(set(seen))


async def test_a_box_page_is_what_its_response_model_sends(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    """A box's page is serialised from plain rows, not through its response model: it must
    be byte for byte what the model sends (fields, their order, formats), and each summary
    the one a read of the referral shows."""
    known = (await send(client, as_persona, world, await person_of_ccas(client, as_persona)))["id"]
    inline = await client.post(
        "/v1/referrals",
        json={
            "beneficiary": {
                "birth_name": "Lefèvre",
                "first_names": "Zoé",
                "birth_date": "1990-03-04",
                "sex": "F",
                "commune": "80021",
            },
            "competence": "aide_facultative",
            "recipient_organisation_id": str(world.organisations["ccas_amiens"]),
            "need": {"code": "aide_energie", "description": "Facture."},
            "consent_declared": {"method": "ecrit", "given_on": "2026-01-05"},
        },
        headers=as_persona("association_agent"),
    )
    assert inline.status_code == 201, inline.text
    model = TypeAdapter(Page[ReferralSummary])
    summary_fields = list(ReferralSummary.model_fields)
    for persona, box, rid in (
        ("ccas_rsa_agent", "outbox", known),
        ("association_agent", "inbox", known),
        ("ccas_rsa_agent", "inbox", inline.json()["id"]),
        ("association_agent", "outbox", inline.json()["id"]),
    ):
        listed = await client.get(f"/v1/referrals?box={box}&limit=1", headers=as_persona(persona))
        assert listed.status_code == 200, listed.text
        assert listed.headers["content-type"] == "application/json"
        assert model.dump_json(model.validate_json(listed.content)) == listed.content
        page = listed.json()
        read = await client.get(f"/v1/referrals/{rid}", headers=as_persona(persona))
        assert page["items"] == [{name: read.json()[name] for name in summary_fields}]
    assert page["items"][0]["beneficiary_id"] is None


@pytest.mark.parametrize("action", ["withdraw", "cancel"])
async def test_sender_ends_the_loop_and_the_recipient_loses_access(
    action: str, client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    body = {"comment": "Plus nécessaire"} if action == "cancel" else {}
    r = await act(client, as_persona, "ccas_rsa_agent", rid, action, **body)
    assert r.status_code == 200, r.text
    gone = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    assert gone.status_code == 404
    still = await client.get(f"/v1/referrals/{rid}", headers=as_persona("association_agent"))
    assert still.status_code == 200 and still.json()["beneficiary"] is None


async def test_expiry_by_two_workers_at_once_expires_each_overdue_referral_once(
    committing_client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    database_url: URL,
) -> None:
    pid = await person_of_ccas(
        committing_client, as_persona, birth_name="Expire", birth_date="1981-01-01"
    )
    rid = (await send(committing_client, as_persona, world, pid))["id"]
    async with owner_connection(database_url) as conn:
        await conn.execute(
            text("UPDATE referral SET response_due_on = current_date - 1 WHERE id = :id"),
            {"id": rid},
        )

    engine = create_engine(database_url, pool_size=2, max_overflow=0)

    async def one_pass() -> int:
        async with AsyncSession(engine) as session:
            expired = await expire_overdue(session)
            await session.commit()
            return expired

    try:
        await asyncio.gather(one_pass(), one_pass())
    finally:
        await engine.dispose()
    read = await committing_client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
    assert read.json()["status"] == "expired"
    assert [e["to_status"] for e in read.json()["events"]] == ["sent", "expired"]
    assert read.json()["events"][1]["organisation"] is None  # the service itself
    gone = await committing_client.get(
        f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent")
    )
    assert gone.status_code == 404


# the table of domain.md §8 for the two sides that act over HTTP, written out independently
_SENT, _ACK, _ACC, _PROG, _HOLD = "sent", "acknowledged", "accepted", "in_progress", "on_hold"
HTTP_TABLE: dict[tuple[str, str], tuple[str, str]] = {
    (_SENT, "acknowledge"): (_ACK, "recipient"),
    (_SENT, "accept"): (_ACC, "recipient"),
    (_ACK, "accept"): (_ACC, "recipient"),
    (_SENT, "decline"): ("declined", "recipient"),
    (_ACK, "decline"): ("declined", "recipient"),
    (_SENT, "withdraw"): ("withdrawn", "sender"),
    (_ACK, "withdraw"): ("withdrawn", "sender"),
    (_ACC, "start"): (_PROG, "recipient"),
    (_ACC, "hold"): (_HOLD, "recipient"),
    (_PROG, "hold"): (_HOLD, "recipient"),
    (_HOLD, "resume"): (_PROG, "recipient"),
    (_PROG, "complete"): ("completed", "recipient"),
    (_HOLD, "complete"): ("completed", "recipient"),
    (_ACC, "not-complete"): ("not_completed", "recipient"),
    (_PROG, "not-complete"): ("not_completed", "recipient"),
    (_HOLD, "not-complete"): ("not_completed", "recipient"),
    (_SENT, "cancel"): ("cancelled", "sender"),
    (_ACK, "cancel"): ("cancelled", "sender"),
    (_ACC, "cancel"): ("cancelled", "sender"),
}
ACTION_BODY: dict[str, dict[str, str]] = {
    "decline": {"reason_code": "non_eligible"},
    "hold": {"comment": "Pièces manquantes"},
    "complete": {"outcome_code": "service_rendu"},
    "not-complete": {"reason_code": "injoignable"},
    "cancel": {"comment": "Erreur de saisie"},
}
SIDES = {"sender": "ccas_rsa_agent", "recipient": "association_agent"}


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(sorted({a for _, a in HTTP_TABLE})),
            st.sampled_from(sorted(SIDES)),
        ),
        min_size=1,
        max_size=7,
    )
)
async def test_random_action_sequences_follow_the_table(
    steps: list[tuple[str, str]],
    client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
) -> None:
    pid = await person_of_ccas(client, as_persona, birth_name="Sequence")
    rid = (await send(client, as_persona, world, pid))["id"]
    status = "sent"
    for action, side in steps:
        r = await act(client, as_persona, SIDES[side], rid, action, **ACTION_BODY.get(action, {}))
        expected = HTTP_TABLE.get((status, action))
        if expected is None:
            assert r.status_code == 409, (status, action, side, r.text)
        elif expected[1] != side:
            assert r.status_code == 403, (status, action, side, r.text)
        else:
            assert r.status_code == 200, (status, action, side, r.text)
            status = expected[0]
        current = await client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
        assert current.json()["status"] == status


async def test_withdrawing_the_consent_cancels_the_referral_and_ends_the_access(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    spf = str(world.organisations["secours_populaire"])
    consent = await client.post(
        f"/v1/beneficiaries/{pid}/consents",
        json={
            "kind": "consent",
            "organisation_id": spf,
            "purpose": "Orientation vers l'aide alimentaire",
            "method": "ecrit",
            "given_on": "2026-11-02",
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert consent.status_code == 201, consent.text
    cid = consent.json()["id"]
    # a consent for another recipient does not cover this one
    r = await client.post(
        "/v1/referrals",
        json=referral_body(
            world,
            pid,
            consent_override=None,
            consent_id=cid,
            competence="aide_facultative",
            recipient_organisation_id=str(world.organisations["cias"]),
        ),
        headers=as_persona("ccas_rsa_agent"),
    )
    assert r.status_code == 422 and r.json()["errors"][0]["pointer"] == "/consent_id"
    rid = (await send(client, as_persona, world, pid, consent_override=None, consent_id=cid))["id"]
    assert (await act(client, as_persona, "association_agent", rid, "accept")).status_code == 200
    seen = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    assert seen.status_code == 200

    withdrawn = await client.post(
        f"/v1/beneficiaries/{pid}/consents/{cid}/withdraw",
        json={"reason": "La personne ne souhaite plus ce partage."},
        headers=as_persona("ccas_rsa_agent"),
    )
    assert withdrawn.status_code == 200, withdrawn.text
    read = await client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
    assert read.json()["status"] == "cancelled"
    assert read.json()["events"][-1]["reason_code"] == "consentement_retire"
    gone = await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("association_agent"))
    assert gone.status_code == 404
    # a withdrawn consent covers nothing any more
    again = await client.post(
        "/v1/referrals",
        json=referral_body(world, pid, consent_override=None, consent_id=cid),
        headers=as_persona("ccas_rsa_agent"),
    )
    assert again.status_code == 422


async def test_the_timeline_shows_referral_and_orientation_events_to_the_parties(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    rid = (await send(client, as_persona, world, pid))["id"]
    await act(client, as_persona, "association_agent", rid, "decline", reason_code="doublon")
    timeline = await client.get(
        f"/v1/beneficiaries/{pid}/timeline", headers=as_persona("ccas_rsa_agent")
    )
    assert timeline.status_code == 200, timeline.text
    mine = [i for i in timeline.json()["items"] if i["id"] == rid]
    assert [i["type"] for i in mine] == ["referral.status_changed", "referral.created"]
    assert mine[0]["status"] == "declined"


async def test_fifty_concurrent_sends_with_one_key_create_one_referral(
    live_server: str, database_url: URL, world: World, as_persona: Headers
) -> None:
    headers = as_persona("ccas_rsa_agent")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        created = await http.post(
            "/v1/beneficiaries",
            json={
                "competence": "aide_facultative",
                "birth_name": "Cinquante",
                "first_names": "Envois",
                "birth_date": "1969-09-09",
                "sex": "F",
                "commune": "80021",
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        keyed = {**headers, "Idempotency-Key": f"referral-{pid}"}
        answers = await asyncio.gather(
            *(
                http.post("/v1/referrals", json=referral_body(world, pid), headers=keyed)
                for _ in range(50)
            )
        )
    assert [a.status_code for a in answers] == [201] * 50, [a.text for a in answers[:3]]
    assert len({a.content for a in answers}) == 1
    assert len({a.headers["location"] for a in answers}) == 1
    async with owner_connection(database_url) as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM referral WHERE beneficiary_id = :p"), {"p": pid}
        )
        # what this test committed leaves the statistics other tests read (Amiens' cells)
        await conn.execute(
            text(
                "DELETE FROM stat_fact WHERE source_id = :p OR source_id IN "
                "(SELECT id FROM referral WHERE beneficiary_id = :p)"
            ),
            {"p": pid},
        )
    assert count == 1


async def test_retention_clears_the_free_text_of_referrals_and_keeps_the_codes(
    committing_client: httpx.AsyncClient,
    world: World,
    as_persona: Headers,
    database_url: URL,
) -> None:
    pid = await person_of_ccas(
        committing_client, as_persona, birth_name="Oubli", birth_date="1982-02-02"
    )
    rid = (await send(committing_client, as_persona, world, pid, message="Très urgent"))["id"]
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as conn:
            transaction = await conn.begin()
            await anonymise_referrals(conn, [uuid.UUID(pid)], datetime.now(UTC))
            row = (
                await conn.execute(
                    text(
                        "SELECT need_code, need_description, message, status FROM referral "
                        "WHERE id = :id"
                    ),
                    {"id": rid},
                )
            ).one()
            await transaction.rollback()
    finally:
        await engine.dispose()
    assert (row.need_code, row.need_description, row.message, row.status) == (
        "colis_alimentaire",
        "",
        None,
        "sent",
    )


async def test_a_sensitive_referral_is_invisible_without_the_clearance(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    r = await create(
        client,
        as_persona,
        persona="departement_sensitive",
        competence="violences",
        force_create=True,
        justification="essai",
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    ccas = str(world.organisations["ccas_amiens"])
    body = referral_body(world, pid, competence="violences", recipient_organisation_id=ccas)
    refused = await client.post("/v1/referrals", json=body, headers=as_persona("departement_agent"))
    assert refused.status_code == 403
    sent = await client.post(
        "/v1/referrals", json=body, headers=as_persona("departement_sensitive")
    )
    assert sent.status_code == 201, sent.text
    rid = sent.json()["id"]
    # the recipient's agent has no clearance: neither the referral nor the person shows
    assert (
        await client.get(f"/v1/referrals/{rid}", headers=as_persona("ccas_rsa_agent"))
    ).status_code == 404
    inbox = await client.get("/v1/referrals?box=inbox", headers=as_persona("ccas_rsa_agent"))
    assert rid not in [i["id"] for i in inbox.json()["items"]]
    assert (
        await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("ccas_rsa_agent"))
    ).status_code == 404
    outbox = await client.get("/v1/referrals?box=outbox", headers=as_persona("departement_agent"))
    assert rid not in [i["id"] for i in outbox.json()["items"]]


async def test_the_feed_announces_a_referral_to_its_parties_only(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    c = committing_client
    ccas, spf, corbie = (
        as_persona("ccas_rsa_agent"),
        as_persona("association_agent"),
        as_persona("ccas_agent"),
    )
    starts = {}
    for name, headers in (("ccas", ccas), ("spf", spf), ("corbie", corbie)):
        starts[name] = (await read_all(c, headers, None, types="referral"))[1]
    pid = await person_of_ccas(c, as_persona, birth_name="Flux", birth_date="1983-03-03")
    rid = (await send(c, as_persona, world, pid))["id"]
    assert (await act(c, as_persona, "association_agent", rid, "acknowledge")).status_code == 200

    async def seen_by(headers: dict[str, str], start: str | None) -> list[str] | None:
        items, _ = await read_all(c, headers, start, types="referral")
        actions = [i["action"] for i in items if i["id"] == rid]
        return actions if len(actions) == 2 else None

    assert await until(lambda: seen_by(ccas, starts["ccas"])) == ["created", "status_changed"]
    assert await until(lambda: seen_by(spf, starts["spf"])) == ["created", "status_changed"]
    others, _ = await read_all(c, corbie, starts["corbie"], types="referral")
    assert rid not in [i["id"] for i in others]


async def test_a_redirect_stays_within_what_the_person_agreed_to(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    pid = await person_of_ccas(client, as_persona)
    consent = await client.post(
        f"/v1/beneficiaries/{pid}/consents",
        json={
            "kind": "consent",
            "organisation_id": str(world.organisations["secours_populaire"]),
            "purpose": "Aide alimentaire",
            "method": "oral",
            "given_on": "2026-11-02",
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert consent.status_code == 201, consent.text
    rid = (
        await send(
            client, as_persona, world, pid, consent_override=None, consent_id=consent.json()["id"]
        )
    )["id"]
    r = await act(
        client,
        as_persona,
        "association_agent",
        rid,
        "redirect",
        recipient_organisation_id=str(world.organisations["cias"]),
        comment="Plus de capacité",
    )
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["pointer"] == "/recipient_organisation_id"
    still = await client.get(f"/v1/referrals/{rid}", headers=as_persona("association_agent"))
    assert still.json()["status"] == "sent"
    assert (
        await client.get(f"/v1/beneficiaries/{pid}", headers=as_persona("cias_agent"))
    ).status_code == 404


async def test_a_send_writes_every_row_and_answers_what_a_read_shows(
    client: httpx.AsyncClient, world: World, as_persona: Headers, connection: AsyncConnection
) -> None:
    """A send writes in a few statements: the person's last contact (touched as they are
    read), the referral with its audit entries (the override one of its own, after the send's)
    and its announcement, then its event and the recipient's pending membership. Every row is
    there, and the answer, composed from what was written, is what a read shows afterwards;
    a refused send leaves the last contact as it was."""
    pid = await person_of_ccas(client, as_persona)
    sender = as_persona("ccas_rsa_agent")
    org = world.personas["ccas_rsa_agent"].organisation_id
    spf = world.organisations["secours_populaire"]
    await connection.execute(
        text("SELECT set_config('guichet.organisation_id', :o, true)"), {"o": str(org)}
    )
    contact = text("SELECT last_contact_at FROM beneficiary WHERE id = :p")
    before = (await connection.execute(contact, {"p": pid})).scalar_one()

    refused = await client.post(
        "/v1/referrals",
        json=referral_body(world, pid, consent_override=None),
        headers=sender,
    )
    assert refused.status_code == 422, refused.text
    assert (await connection.execute(contact, {"p": pid})).scalar_one() == before

    started = datetime.now(UTC)
    r = await client.post(
        "/v1/referrals",
        json=referral_body(world, pid),
        headers={**sender, "X-Request-ID": f"send-{pid}"},
    )
    assert r.status_code == 201, r.text
    sent, rid = r.json(), r.json()["id"]
    touched = (await connection.execute(contact, {"p": pid})).scalar_one()
    assert touched >= started
    assert datetime.fromisoformat(sent["beneficiary"]["last_contact_at"]) == touched

    read = await client.get(f"/v1/referrals/{rid}", headers=sender)
    assert read.status_code == 200, read.text
    assert sent == read.json()
    assert r.headers["etag"] == read.headers["etag"] == '"1"'
    assert sent["sender"]["id"] == str(org) and sent["recipient"]["id"] == str(spf)
    assert [e["to_status"] for e in sent["events"]] == ["sent"]

    entries = (
        await connection.execute(
            text(
                "SELECT action, resource_id, beneficiary_id::text, purpose FROM audit_entry "
                "WHERE request_id = :request ORDER BY id"
            ),
            {"request": f"send-{pid}"},
        )
    ).all()
    assert [tuple(e) for e in entries] == [
        ("referral.send", rid, pid, None),
        ("referral.consent_override", rid, pid, f"urgence: {OVERRIDE['justification']}"),
    ]
    changes = (
        await connection.execute(
            text("SELECT action, event, status, audience FROM change_event WHERE resource_id = :r"),
            {"r": rid},
        )
    ).all()
    assert [tuple(c) for c in changes] == [("created", "referral.created", "sent", [org, spf])]
    pending = (
        await connection.execute(
            text(
                "SELECT organisation_id, competence, source, granted_categories, ended_at "
                "FROM care_team_membership WHERE origin_id = :r"
            ),
            {"r": rid},
        )
    ).all()
    assert [tuple(m) for m in pending] == [
        (spf, "aide_alimentaire", "referral", ["identity"], None)
    ]
