"""Merging two records of one person: every row moves to the survivor (tables added later
included), care-team duplicates collapse, both ids stay resolvable, both are audited."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from tests.api.people_support import CONSENT, Headers, create, demo_headers
from tests.world import World

JUSTIFICATION = "même personne, homonymie vérifiée au guichet"


async def _two_records(client: httpx.AsyncClient, ccas: dict[str, str]) -> tuple[str, str]:
    survivor = await create(client, ccas, phone=None)
    duplicate = await create(
        client,
        ccas,
        birth_name="CARPENTIER",
        first_names="Odile Marie",
        phone="07 00 00 00 09",
        force_create=True,
        justification="doublon probable, à vérifier",
    )
    return survivor, duplicate


async def test_merge_moves_rows_and_keeps_both_ids_resolvable(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    survivor, duplicate = await _two_records(client, ccas)
    note = await client.post(
        f"/v1/beneficiaries/{duplicate}/notes",
        json={"competence": "aide_facultative", "visibility": "team", "body": "suivi"},
        headers=ccas,
    )
    household = await client.put(
        f"/v1/beneficiaries/{duplicate}/household",
        json={"members": [{"relation": "enfant", "first_name": "Léa", "birth_date": "2012-05-01"}]},
        headers=ccas,
    )
    consent = await client.post(
        f"/v1/beneficiaries/{duplicate}/consents", json=CONSENT, headers=ccas
    )
    assert note.status_code == 201 and household.status_code == 200
    assert consent.status_code == 201

    merged = await client.post(
        f"/v1/beneficiaries/{survivor}/merge",
        json={"duplicate_id": duplicate, "justification": JUSTIFICATION},
        headers=ccas,
    )
    assert merged.status_code == 200, merged.text
    body = merged.json()
    assert body["duplicate_id"] == duplicate
    # the survivor took the phone it lacked
    assert body["beneficiary"]["phone"] == "07 00 00 00 09"
    assert body["moved"]["note.beneficiary_id"] == 1
    assert body["moved"]["consent.beneficiary_id"] == 1
    assert merged.headers["etag"]

    # care-team duplicates collapse: one active membership of the CCAS for aide_facultative
    team = (await client.get(f"/v1/beneficiaries/{survivor}/care-team", headers=ccas)).json()
    active = [m for m in team if m["ended_at"] is None]
    assert [(m["organisation_id"], m["competence"]) for m in active] == [
        (str(world.organisations["ccas_amiens"]), "aide_facultative")
    ]
    assert [m["end_reason"] for m in team if m["ended_at"]] == ["merged"]
    notes = (await client.get(f"/v1/beneficiaries/{survivor}/notes", headers=ccas)).json()
    assert note.json()["id"] in {n["id"] for n in notes}
    members = (await client.get(f"/v1/beneficiaries/{survivor}/household", headers=ccas)).json()
    assert [m["first_name"] for m in members["members"]] == ["Léa"]
    consents = (await client.get(f"/v1/beneficiaries/{survivor}/consents", headers=ccas)).json()
    assert [c["id"] for c in consents] == [consent.json()["id"]]

    # the duplicate's id answers 301 towards the survivor, sub-resources too
    old = await client.get(f"/v1/beneficiaries/{duplicate}", headers=ccas)
    assert old.status_code == 301
    assert old.headers["location"] == f"/v1/beneficiaries/{survivor}"
    assert old.headers["content-type"] == "application/problem+json"
    assert old.json()["code"] == "beneficiary-merged"
    assert old.json()["merged_into"] == survivor
    old_notes = await client.get(f"/v1/beneficiaries/{duplicate}/notes", headers=ccas)
    assert old_notes.status_code == 301
    assert old_notes.headers["location"] == f"/v1/beneficiaries/{survivor}/notes"
    # a caller who may not see the survivor learns nothing
    for persona in ("cias_agent", "departement_agent"):
        r = await client.get(f"/v1/beneficiaries/{duplicate}", headers=as_persona(persona))
        assert r.status_code == 404, persona
    # the merged record is not a candidate any more, nor listed
    listed = await client.get("/v1/beneficiaries", params={"limit": 200}, headers=ccas)
    assert duplicate not in {p["id"] for p in listed.json()["items"]}

    # audited on both ids, with the justification; the survivor's log shows the duplicate's
    log = await client.get(f"/v1/beneficiaries/{survivor}/access-log", headers=ccas)
    entries = {(i["action"], i["purpose"]) for i in log.json()["items"]}
    assert ("beneficiary.merge", JUSTIFICATION) in entries
    assert ("beneficiary.merged", JUSTIFICATION) in entries
    assert ("note.create", None) in entries  # written about the duplicate before the merge

    again = await client.post(
        f"/v1/beneficiaries/{survivor}/merge",
        json={"duplicate_id": duplicate, "justification": JUSTIFICATION},
        headers=ccas,
    )
    assert again.status_code == 409


async def test_merge_needs_both_people_and_an_agent(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    survivor, duplicate = await _two_records(client, ccas)
    body = {"duplicate_id": duplicate, "justification": JUSTIFICATION}
    # the CIAS follows the survivor only
    cias_person = await create(
        client, as_persona("cias_agent"), birth_name="Autre", birth_date="1971-03-03"
    )
    r = await client.post(
        f"/v1/beneficiaries/{cias_person}/merge", json=body, headers=as_persona("cias_agent")
    )
    assert r.status_code == 404
    accueil = await client.post(
        f"/v1/beneficiaries/{survivor}/merge", json=body, headers=as_persona("ccas_accueil")
    )
    assert accueil.status_code == 403
    itself = await client.post(
        f"/v1/beneficiaries/{survivor}/merge",
        json={"duplicate_id": survivor, "justification": JUSTIFICATION},
        headers=ccas,
    )
    assert itself.status_code == 422
    short = await client.post(
        f"/v1/beneficiaries/{survivor}/merge",
        json={"duplicate_id": duplicate, "justification": "oui"},
        headers=ccas,
    )
    assert short.status_code == 422
    unknown = await client.post(
        f"/v1/beneficiaries/{survivor}/merge",
        json={"duplicate_id": str(uuid.uuid4()), "justification": JUSTIFICATION},
        headers=ccas,
    )
    assert unknown.status_code == 404


async def test_tables_added_later_are_merged_and_exported_only_through_the_access_rule(
    committing_client: httpx.AsyncClient,
    app: FastAPI,
    database_url: URL,
    world: World,
    as_persona: Headers,
) -> None:
    """A table another capability adds, with a foreign key to the person, moves in a merge;
    it reaches the right-of-access export only once it plugs into the access rule."""
    async with owner_connection(database_url) as owner:
        await owner.execute(
            text(
                "CREATE TABLE later_record (id uuid PRIMARY KEY, "
                "beneficiary_id uuid NOT NULL REFERENCES beneficiary (id), label text)"
            )
        )
        await owner.execute(
            text(
                "CREATE TABLE later_event (id uuid PRIMARY KEY, "
                "later_record_id uuid NOT NULL REFERENCES later_record (id), code text)"
            )
        )
    try:
        ccas = as_persona("ccas_rsa_agent")
        tag = uuid.uuid4().hex[:8]
        survivor = await create(
            committing_client, ccas, birth_name=f"Later{tag}", birth_date="1959-02-02"
        )
        duplicate = await create(
            committing_client,
            ccas,
            birth_name=f"Later{tag}",
            birth_date="1959-02-02",
            force_create=True,
            justification="saisi deux fois",
        )
        record = uuid.uuid4()
        async with owner_connection(database_url) as owner:
            await owner.execute(
                text("INSERT INTO later_record VALUES (:i, :p, 'ajouté plus tard')"),
                {"i": record, "p": duplicate},
            )
            await owner.execute(
                text("INSERT INTO later_event VALUES (:i, :r, 'evenement')"),
                {"i": uuid.uuid4(), "r": record},
            )
        merged = await committing_client.post(
            f"/v1/beneficiaries/{survivor}/merge",
            json={"duplicate_id": duplicate, "justification": JUSTIFICATION},
            headers=ccas,
        )
        assert merged.status_code == 200, merged.text
        assert merged.json()["moved"]["later_record.beneficiary_id"] == 1
        async with owner_connection(database_url) as owner:
            moved_to = await owner.scalar(
                text("SELECT beneficiary_id FROM later_record WHERE id = :i"), {"i": record}
            )
        assert str(moved_to) == survivor

        # the export is the union of what the access rule lets the CCAS see: a kind of record
        # the rule does not know is never exported until it plugs into the rule
        dpo = await demo_headers(app, world, database_url, "ccas_dpo")
        exported = await committing_client.get(
            f"/v1/beneficiaries/{survivor}/export", params={"purpose": "droit d'accès"}, headers=dpo
        )
        assert exported.status_code == 200, exported.text
        assert "ajouté plus tard" not in exported.text and "evenement" not in exported.text
        assert exported.json()["record"]["id"] == survivor
    finally:
        async with owner_connection(database_url) as owner:
            await owner.execute(text("DROP TABLE later_event"))
            await owner.execute(text("DROP TABLE later_record"))


async def test_two_merges_of_one_duplicate_at_once_let_one_win(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    c = committing_client
    ccas = as_persona("ccas_rsa_agent")
    tag = uuid.uuid4().hex[:8]
    people = [
        await create(
            c,
            ccas,
            birth_name=f"Course{tag}",
            birth_date="1961-06-06",
            force_create=i > 0,
            justification="saisi plusieurs fois" if i else None,
        )
        for i in range(3)
    ]
    duplicate = people[0]
    answers = await asyncio.gather(
        *[
            c.post(
                f"/v1/beneficiaries/{survivor}/merge",
                json={"duplicate_id": duplicate, "justification": JUSTIFICATION},
                headers=ccas,
            )
            for survivor in people[1:]
        ]
    )
    codes = sorted(a.status_code for a in answers)
    assert codes == [200, 409], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()["beneficiary"]["id"]
    r = await c.get(f"/v1/beneficiaries/{duplicate}", headers=ccas)
    assert r.status_code == 301 and r.json()["merged_into"] == winner
