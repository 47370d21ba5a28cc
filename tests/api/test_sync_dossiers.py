"""POST /v1/sync/dossiers: the département's information system upserts dossiers by its
own references, with a report per item; identity matching; field ownership and conflicts."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from api.db.context import DbContext, set_db_context
from api.domain.identity import nir_key
from tests.api.test_dossiers import INSTRUCTION, act, decideur, open_dossier, rsa_person
from tests.world import World

__all__ = ["decideur"]  # the fixture, shared with tests/api/test_dossiers.py

Headers = Callable[[str], dict[str, str]]
SYSTEM = "iodas-cd80"
CLIENT = "client_with_scopes"


def instant(delta: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + delta).isoformat().replace("+00:00", "Z")


def identity(seed: str) -> dict[str, Any]:
    """A person of Amiens unlike any other: names and birth date drawn from ``seed``."""
    h = hashlib.sha256(seed.encode()).hexdigest()
    return {
        "birth_name": f"Nom{h[:8]}",
        "first_names": f"Prenom{h[8:16]}",
        "birth_date": (date(1940, 1, 1) + timedelta(days=int(h[16:24], 16) % 25_000)).isoformat(),
        "sex": "M",
        "commune": "80021",
    }


def nir_for(seed: str) -> str:
    digits = str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[-6:]
    body = f"18503800{digits[:2]}{digits[2:5]}"[:13]
    return body + nir_key(body)


def item(ref: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_ref": {"system": SYSTEM, "id": ref},
        "beneficiary": identity(ref),
        "prestation": "rsa",
        "status": "under_review",
        "instruction": {"household_size": 1, "monthly_resources": "300"},
        "source_updated_at": "2026-11-01T10:00:00Z",
    }
    body.update(overrides)
    return body


async def sync(
    client: httpx.AsyncClient,
    as_persona: Headers,
    items: list[Any],
    *,
    persona: str = CLIENT,
    key: str | None = None,
) -> httpx.Response:
    headers = {**as_persona(persona), "Idempotency-Key": key or str(uuid.uuid4())}
    return await client.post("/v1/sync/dossiers", json={"items": items}, headers=headers)


def outcomes(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return [x["outcome"] for x in r.json()["results"]]


async def counts(connection: AsyncConnection, world: World) -> dict[str, int]:
    """What the département's organisation sees written, with no repository filter."""
    session = AsyncSession(bind=connection)
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["departement"]
    )
    found = {}
    for name, sql in {
        "dossiers": "SELECT count(*) FROM dossier",
        "events": "SELECT count(*) FROM dossier_event",
        "refs": "SELECT count(*) FROM dossier_external_ref",
        "audit": "SELECT count(*) FROM audit_entry WHERE organisation_id = guichet_org()",
        "changes": "SELECT count(*) FROM change_event WHERE type = 'dossier'",
        "teams": "SELECT count(*) FROM care_team_membership WHERE organisation_id = guichet_org()",
    }.items():
        found[name] = int(await session.scalar(text(sql)) or 0)
    return found


async def test_only_a_client_with_dossiers_sync_may_sync(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    for persona in ("client_without_scopes", "departement_agent", "ccas_rsa_agent"):
        r = await sync(client, as_persona, [item("perm-1")], persona=persona)
        assert r.status_code == 403, (persona, r.text)
    assert (
        await sync(client, as_persona, [item("perm-1")], persona="anonymous")
    ).status_code == 401
    assert outcomes(await sync(client, as_persona, [item("perm-1")])) == ["created"]


async def test_a_batch_twice_creates_then_writes_nothing(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    decision = {"decision": "granted", "amount": "612.00", "start_on": "2026-11-01"}
    batch = [
        item("twice-1"),
        item(
            "twice-2",
            beneficiary={**identity("twice-2"), "nir": nir_for("twice-2")},
            status="notified",
            decision=decision,
        ),
        item("twice-3", prestation="apa", status="submitted", instruction=None),
    ]
    before = await counts(connection, world)
    first = await sync(client, as_persona, batch)
    assert outcomes(first) == ["created"] * 3
    assert first.json()["counts"]["created"] == 3
    after = await counts(connection, world)
    assert after["dossiers"] - before["dossiers"] == 3
    assert after["changes"] - before["changes"] == 3
    # the département joined each new person's care team for the prestation
    assert after["teams"] - before["teams"] == 3
    ids = [x["dossier_id"] for x in first.json()["results"]]
    read = await client.get(f"/v1/dossiers/{ids[1]}", headers=as_persona(CLIENT))
    assert read.status_code == 200
    assert read.json()["status"] == "notified"
    assert read.json()["decision"]["amount"] == "612.00"
    assert read.json()["decision"]["decided_on"] == "2026-11-01"
    assert read.json()["external_refs"][0]["id"] == "twice-2"
    person = read.json()["beneficiary_id"]
    team = await client.get(f"/v1/beneficiaries/{person}/care-team", headers=as_persona(CLIENT))
    assert [(m["competence"], m["source"]) for m in team.json()] == [("rsa", "sync")]

    settled = await counts(connection, world)
    again = await sync(client, as_persona, batch)
    assert outcomes(again) == ["unchanged"] * 3
    assert [x["dossier_id"] for x in again.json()["results"]] == ids
    # nothing written: no row, no event, no audit entry, no change announced
    assert await counts(connection, world) == settled


async def digests(connection: AsyncConnection, dossiers: list[str]) -> dict[str, str | None]:
    """What the references of these dossiers keep of their last sync (as the owner)."""
    rows = await connection.execute(
        text(
            "SELECT dossier_id::text, synced_digest FROM dossier_external_ref "
            "WHERE dossier_id = ANY (CAST(:ids AS uuid[]))"
        ),
        {"ids": dossiers},
    )
    return {dossier: digest for dossier, digest in rows}


async def test_a_resync_is_answered_from_the_reference_until_the_dossier_is_written(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    """The reference keeps the digest of the item that wrote the dossier; any later write to
    the dossier, here by the API, forgets it, and the item is planned against the dossier
    again: a newer status is a conflict, never ``unchanged``."""
    batch = [item("settled-1"), item("settled-2", status="submitted")]
    first = await sync(client, as_persona, batch)
    assert outcomes(first) == ["created", "created"]
    ids = [x["dossier_id"] for x in first.json()["results"]]
    assert all(d is not None for d in (await digests(connection, ids)).values())

    settled = await counts(connection, world)
    assert outcomes(await sync(client, as_persona, batch)) == ["unchanged", "unchanged"]
    assert await counts(connection, world) == settled

    reviewed = await act(client, as_persona, ids[1], "review", "departement_agent")
    assert reviewed.status_code == 200, reviewed.text
    kept = await digests(connection, ids)
    assert kept[ids[0]] is not None and kept[ids[1]] is None
    again = await sync(client, as_persona, batch)
    assert outcomes(again) == ["unchanged", "conflict"]

    # the system catches up: unchanged, so nothing is written, the digest included; its next
    # change is written and kept on the reference again
    caught_up = [batch[0], {**batch[1], "status": "under_review"}]
    assert outcomes(await sync(client, as_persona, caught_up)) == ["unchanged", "unchanged"]
    assert (await digests(connection, ids))[ids[1]] is None
    newer = {
        "instruction": {"household_size": 2, "monthly_resources": "300"},
        "source_updated_at": instant(),
    }
    changed = [batch[0], {**caught_up[1], **newer}]
    assert outcomes(await sync(client, as_persona, changed)) == ["unchanged", "updated"]
    assert (await digests(connection, ids))[ids[1]] is not None
    assert outcomes(await sync(client, as_persona, changed)) == ["unchanged", "unchanged"]


async def test_a_settled_item_whose_dossier_the_caller_no_longer_sees_is_not_found(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    """A matching digest never answers for the access rule: once the département no longer
    follows the person, the same item is a 404 error, as when the dossier is read."""
    batch = [item("left-1"), item("left-2")]
    first = await sync(client, as_persona, batch)
    ids = [x["dossier_id"] for x in first.json()["results"]]
    await connection.execute(
        text(
            "UPDATE care_team_membership SET ended_at = now() WHERE organisation_id = :org "
            "AND beneficiary_id = (SELECT beneficiary_id FROM dossier WHERE id = :dossier)"
        ),
        {"org": world.organisations["departement"], "dossier": ids[0]},
    )
    assert (await digests(connection, ids))[ids[0]] is not None
    again = await sync(client, as_persona, batch)
    assert outcomes(again) == ["error", "unchanged"]
    assert again.json()["results"][0]["problem"]["status"] == 404


async def written(
    connection: AsyncConnection, world: World, dossiers: list[str]
) -> dict[str, tuple[int | None, int, int]]:
    """Per dossier, as the département sees it: its version (None: not visible), its sync
    events and its ``dossier.sync_update`` audit entries."""
    session = AsyncSession(bind=connection)
    await set_db_context(
        session, context=DbContext.REQUEST, organisation_id=world.organisations["departement"]
    )
    found = {}
    for dossier in dossiers:
        version = await session.scalar(
            text("SELECT version FROM dossier WHERE id = :id"), {"id": dossier}
        )
        events = await session.scalar(
            text("SELECT count(*) FROM dossier_event WHERE dossier_id = :id AND action = 'sync'"),
            {"id": dossier},
        )
        audits = await session.scalar(
            text(
                "SELECT count(*) FROM audit_entry WHERE organisation_id = guichet_org() "
                "AND action = 'dossier.sync_update' AND resource_id = :id"
            ),
            {"id": dossier},
        )
        found[dossier] = (version, int(events or 0), int(audits or 0))
    return found


def newer(batch: list[dict[str, Any]], size: int) -> list[dict[str, Any]]:
    """The batch with another household size, as its system knows it now."""
    return [
        {
            **x,
            "instruction": {**x["instruction"], "household_size": size},
            "source_updated_at": instant(),
        }
        for x in batch
    ]


async def test_an_update_writes_each_dossier_once_with_its_event_and_audit_entry(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    batch = [item(f"upd-{i}") for i in range(3)]
    ids = [x["dossier_id"] for x in (await sync(client, as_persona, batch)).json()["results"]]
    before = await counts(connection, world)
    assert outcomes(await sync(client, as_persona, newer(batch, 2))) == ["updated"] * 3
    assert await written(connection, world, ids) == {d: (2, 1, 1) for d in ids}
    after = await counts(connection, world)
    assert after["changes"] - before["changes"] == 3
    assert after["audit"] - before["audit"] == 3
    for dossier in ids:
        read = await client.get(f"/v1/dossiers/{dossier}", headers=as_persona(CLIENT))
        assert read.json()["instruction"]["household_size"] == 2


def between_read_and_write(
    monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[AsyncSession], Awaitable[None]]
) -> None:
    """Run ``meanwhile`` in the request's transaction once the batch is read and planned,
    before anything is written: another writer's change landing at that moment."""
    import api.domain.dossiers.sync as module

    planned = module.plan_new

    async def plan_then_interfere(ctx: Any, entries: Any) -> None:
        await planned(ctx, entries)
        await meanwhile(ctx.store.session)

    monkeypatch.setattr(module, "plan_new", plan_then_interfere)


async def test_a_dossier_written_after_it_was_read_is_planned_again(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another write between the batch's read and its write moves the dossier's version: the
    batch is not lost to it nor written over it, the dossier is planned again against what
    it holds now and written once."""
    batch = [item("moved-1"), item("moved-2")]
    ids = [x["dossier_id"] for x in (await sync(client, as_persona, batch)).json()["results"]]

    async def bump(session: AsyncSession) -> None:
        await session.execute(
            text("UPDATE dossier SET version = version + 1 WHERE id = :id"), {"id": ids[0]}
        )

    between_read_and_write(monkeypatch, bump)
    assert outcomes(await sync(client, as_persona, newer(batch, 3))) == ["updated"] * 2
    assert await written(connection, world, ids) == {ids[0]: (3, 1, 1), ids[1]: (2, 1, 1)}


async def test_a_dossier_out_of_reach_after_it_was_read_is_not_found_and_not_written(
    client: httpx.AsyncClient,
    connection: AsyncConnection,
    world: World,
    as_persona: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The département leaves the person's care team between the batch's read and its write:
    that item is a 404 error and its dossier is not written (no row, event or audit entry);
    the other is written."""
    batch = [item("gone-1"), item("gone-2")]
    ids = [x["dossier_id"] for x in (await sync(client, as_persona, batch)).json()["results"]]

    async def end_membership(session: AsyncSession) -> None:
        await session.execute(
            text(
                "UPDATE care_team_membership SET ended_at = now() WHERE organisation_id = "
                "guichet_org() AND beneficiary_id = (SELECT beneficiary_id FROM dossier "
                "WHERE id = :id)"
            ),
            {"id": ids[0]},
        )

    between_read_and_write(monkeypatch, end_membership)
    again = await sync(client, as_persona, newer(batch, 4))
    assert outcomes(again) == ["error", "updated"]
    assert again.json()["results"][0]["problem"]["status"] == 404
    assert await written(connection, world, ids) == {ids[0]: (None, 0, 0), ids[1]: (2, 1, 1)}
    # any write to the dossier would have forgotten the digest its reference keeps
    assert (await digests(connection, ids))[ids[0]] is not None


async def test_a_thousand_items_with_ten_malformed_ones(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    batch: list[Any] = [item(f"k-{i}") for i in range(1000)]
    broken = {
        3: ("/items/3/prestation", lambda b: {**b, "prestation": "aide_facultative"}),
        50: ("/items/50/status", lambda b: {**b, "status": "lost"}),
        99: ("/items/99/source_updated_at", lambda b: {**b, "source_updated_at": "hier"}),
        150: ("/items/150/colour", lambda b: {**b, "colour": "blue"}),
        200: ("/items/200", lambda b: "not an object"),
        333: (
            "/items/333/beneficiary/nir",
            lambda b: {**b, "beneficiary": {**b["beneficiary"], "nir": "185038002112399"}},
        ),
        500: (
            "/items/500/beneficiary/commune",
            lambda b: {**b, "beneficiary": {**b["beneficiary"], "commune": "99999"}},
        ),
        640: ("/items/640/decision", lambda b: {**b, "decision": {"decision": "granted"}}),
        777: (
            "/items/777/source_updated_at",
            lambda b: {**b, "source_updated_at": instant(timedelta(days=2))},
        ),
        998: (
            "/items/998/external_ref",
            lambda b: {**b, "external_ref": {"system": SYSTEM, "id": "k-0"}},
        ),
    }
    for index, (_, spoil) in broken.items():
        batch[index] = spoil(batch[index])
    before = await counts(connection, world)
    first = await sync(client, as_persona, batch)
    results = first.json()["results"]
    assert first.json()["counts"] == {
        "created": 990,
        "updated": 0,
        "unchanged": 0,
        "conflict": 0,
        "error": 10,
    }
    for index, (pointer, _) in broken.items():
        assert results[index]["outcome"] == "error"
        assert results[index]["dossier_id"] is None
        pointers = [e["pointer"] for e in results[index]["problem"]["errors"]]
        assert pointer in pointers, (index, results[index]["problem"])
        assert results[index]["problem"]["status"] == 422
    middle = await counts(connection, world)
    # nothing half-written: exactly the 990 applied items, each with its reference and event
    assert {k: middle[k] - before[k] for k in ("dossiers", "refs", "events", "teams")} == {
        "dossiers": 990,
        "refs": 990,
        "events": 990,
        "teams": 990,
    }
    again = await sync(client, as_persona, batch)
    assert again.json()["counts"] == {**first.json()["counts"], "created": 0, "unchanged": 990}
    assert await counts(connection, world) == middle
    # the repaired batch: the ten missing ones created, then a thousand unchanged
    clean = [item(f"k-{i}") for i in range(1000)]
    assert outcomes(await sync(client, as_persona, clean)).count("created") == 10
    assert outcomes(await sync(client, as_persona, clean)) == ["unchanged"] * 1000


async def test_a_nul_character_in_one_item_is_that_items_error(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    """Like any other defect of an item, a NUL character (which PostgreSQL text cannot hold)
    fails that item only, naming the field, at any depth and in a key as well."""
    batch: list[Any] = [item(f"nul-{i}") for i in range(4)]
    batch[1]["beneficiary"]["first_names"] = "Ann\x00e"
    batch[2]["instruction"] = {"household_size": 1, "note\x00": "x"}
    answer = await sync(client, as_persona, batch)
    assert outcomes(answer) == ["created", "error", "error", "created"]
    results = answer.json()["results"]
    assert [e["pointer"] for e in results[1]["problem"]["errors"]] == [
        "/items/1/beneficiary/first_names"
    ]
    assert results[1]["problem"]["errors"][0]["detail"] == (
        "Text may not contain the NUL character."
    )
    assert results[2]["problem"]["status"] == 422
    assert all(
        e["pointer"].startswith("/items/2/instruction") for e in results[2]["problem"]["errors"]
    )


async def test_the_person_is_matched_by_nir_names_or_id_and_never_guessed(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    nir = nir_for("match-nir")
    by_nir = await rsa_person(client, as_persona, nir=nir, birth_name="Écrit Autrement")
    by_names = await rsa_person(
        client,
        as_persona,
        birth_name="Lemaître",
        first_names="Jean-Baptiste",
        birth_date="1961-05-05",
    )
    similar = await rsa_person(
        client, as_persona, birth_name="Duboisier", first_names="Mathilde", birth_date="1962-06-06"
    )
    by_id = await rsa_person(client, as_persona)
    r = await sync(
        client,
        as_persona,
        [
            item("m-nir", beneficiary={"nir": nir}),
            item(
                "m-names",
                beneficiary={
                    "birth_name": "LEMAITRE",
                    "first_names": "jean baptiste",
                    "birth_date": "1961-05-05",
                    "commune": "80021",
                },
            ),
            item(
                "m-similar",
                beneficiary={
                    "birth_name": "Duboisiere",
                    "first_names": "Mathilde",
                    "birth_date": "1962-06-06",
                    "commune": "80021",
                },
            ),
            item("m-id", beneficiary={"id": by_id}),
            item("m-unknown-id", beneficiary={"id": str(uuid.uuid4())}),
            # a NIR nobody has, and no identity to create the person with
            item("m-new-nir", beneficiary={"nir": nir_for("nobody")}),
            item("m-future", beneficiary={**identity("m-future"), "birth_date": "2999-01-01"}),
        ],
    )
    results = r.json()["results"]
    assert [x["outcome"] for x in results] == [
        "created",
        "created",
        "error",
        "created",
        "error",
        "error",
        "error",
    ]
    assert results[6]["problem"]["errors"][0]["pointer"] == "/items/6/beneficiary/birth_date"
    persons = []
    for x in results[:2] + results[3:4]:
        read = await client.get(f"/v1/dossiers/{x['dossier_id']}", headers=as_persona(CLIENT))
        persons.append(read.json()["beneficiary_id"])
    assert persons == [by_nir, by_names, by_id]
    assert results[2]["problem"]["code"] == "possible-duplicate"
    assert results[2]["problem"]["candidates"] == [similar]
    assert results[4]["problem"]["code"] == "not-found"
    assert {e["pointer"] for e in results[5]["problem"]["errors"]} >= {
        "/items/5/beneficiary/birth_name",
        "/items/5/beneficiary/birth_date",
    }
    # the département joined the care team of the people the CCAS followed (audited)
    team = await client.get(f"/v1/beneficiaries/{by_nir}/care-team", headers=as_persona(CLIENT))
    assert ("rsa", "sync") in {(m["competence"], m["source"]) for m in team.json()}
    log = await client.get(
        f"/v1/beneficiaries/{by_nir}/access-log", headers=as_persona("ccas_rsa_agent")
    )
    assert "care_team.sync_join" in {i["action"] for i in log.json()["items"]}
    # the CCAS, RSA delegate following the person, sees the département's dossier
    seen = await client.get(
        f"/v1/dossiers/{results[0]['dossier_id']}", headers=as_persona("ccas_rsa_agent")
    )
    assert seen.status_code == 200


async def test_two_items_for_one_new_person_create_one_person(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    person = identity("one-person")
    r = await sync(
        client,
        as_persona,
        [item("op-rsa", beneficiary=person), item("op-apa", beneficiary=person, prestation="apa")],
    )
    assert outcomes(r) == ["created", "created"]
    people = set()
    for x in r.json()["results"]:
        read = await client.get(f"/v1/dossiers/{x['dossier_id']}", headers=as_persona(CLIENT))
        people.add(read.json()["beneficiary_id"])
    assert len(people) == 1


async def test_a_ccas_dossier_is_linked_then_decided_by_the_departement_system(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    person = await rsa_person(client, as_persona)
    created = await open_dossier(client, as_persona, person, instruction=INSTRUCTION)
    dossier = created.json()["id"]
    await act(client, as_persona, dossier, "submit", "ccas_rsa_agent")
    pulled = await client.get(f"/v1/dossiers/{dossier}", headers=as_persona(CLIENT))
    assert pulled.status_code == 200
    copy = pulled.json()["instruction"]
    base = {"beneficiary": {"id": person}, "instruction": copy, "source_updated_at": instant()}
    # first time: linked by dossier_id; the CCAS's instruction echoed unchanged
    linked = await sync(
        client,
        as_persona,
        [item("L-1", dossier_id=dossier, **base), item("L-2", dossier_id=dossier, **base)],
    )
    # (one item per dossier and batch)
    assert outcomes(linked) == ["updated", "error"]
    assert linked.json()["results"][0]["dossier_id"] == dossier
    assert outcomes(await sync(client, as_persona, [item("L-1", **base)])) == ["unchanged"]
    # the CCAS's field: refused, named, nothing written
    foreign = await sync(
        client,
        as_persona,
        [item("L-1", **{**base, "instruction": {**copy, "household_size": 9}})],
    )
    assert outcomes(foreign) == ["error"]
    problem = foreign.json()["results"][0]["problem"]
    assert problem["code"] == "field-not-owned"
    assert [e["pointer"] for e in problem["errors"]] == ["/items/0/instruction"]
    # the CCAS completes its instruction; the département's older copy is now a conflict
    etag = (
        await client.get(f"/v1/dossiers/{dossier}", headers=as_persona("ccas_rsa_agent"))
    ).headers["etag"]
    patched = await client.patch(
        f"/v1/dossiers/{dossier}",
        json={"instruction": {**copy, "comments": "justificatif de loyer reçu"}},
        headers={**as_persona("ccas_rsa_agent"), "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    decision = {"decision": "granted", "amount": "590.10", "start_on": "2026-12-01"}
    stale = await sync(
        client,
        as_persona,
        [
            item(
                "L-1",
                **{**base, "source_updated_at": instant(-timedelta(minutes=1))},
                status="decided",
                decision=decision,
            )
        ],
    )
    assert outcomes(stale) == ["conflict"]
    assert stale.json()["results"][0]["problem"]["code"] == "sync-conflict"
    unchanged = await client.get(f"/v1/dossiers/{dossier}", headers=as_persona("ccas_rsa_agent"))
    assert unchanged.json()["status"] == "under_review" and unchanged.json()["decision"] is None
    # reconciled: the current instruction echoed, the decision recorded
    fresh = unchanged.json()["instruction"]
    decided = await sync(
        client,
        as_persona,
        [
            item(
                "L-1",
                **{**base, "instruction": fresh, "source_updated_at": instant()},
                status="decided",
                decision=decision,
            )
        ],
    )
    assert outcomes(decided) == ["updated"]
    read = await client.get(f"/v1/dossiers/{dossier}", headers=as_persona("ccas_rsa_agent"))
    assert read.json()["status"] == "decided"
    assert read.json()["decision"]["amount"] == "590.10"
    assert [(e["action"], e["channel"]) for e in read.json()["events"]] == [
        ("create", "api"),
        ("submit", "api"),
        ("sync", "sync"),
        ("update", "api"),
        ("sync", "sync"),
    ]
    last = read.json()["events"][-1]
    assert (last["from_status"], last["to_status"]) == ("under_review", "decided")
    # the CCAS's old ETag is stale
    late = await client.patch(
        f"/v1/dossiers/{dossier}",
        json={"instruction": fresh},
        headers={**as_persona("ccas_rsa_agent"), "If-Match": patched.headers["etag"]},
    )
    assert late.status_code == 412


async def test_the_departement_may_not_submit_another_organisations_draft(
    client: httpx.AsyncClient, world: World, as_persona: Headers, decideur: str
) -> None:
    person = await rsa_person(client, as_persona)
    dossier = (await open_dossier(client, as_persona, person)).json()["id"]
    # a draft is the instructor's: the département does not even see it
    r = await sync(
        client,
        as_persona,
        [item("D-1", dossier_id=dossier, beneficiary={"id": person}, status="submitted")],
    )
    assert outcomes(r) == ["error"]
    assert r.json()["results"][0]["problem"]["code"] == "not-found"


async def test_the_idempotency_key_replays_the_report(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    batch = [item("idem-1")]
    first = await sync(client, as_persona, batch, key="batch-idem-1")
    replay = await sync(client, as_persona, batch, key="batch-idem-1")
    assert outcomes(first) == outcomes(replay) == ["created"]
    assert replay.headers["idempotent-replayed"] == "true"
    other = await sync(client, as_persona, [item("idem-2")], key="batch-idem-1")
    assert other.status_code == 422 and other.json()["code"] == "idempotency-key-reuse"
    # machines must send a key; without one, nothing is written
    bare = await client.post(
        "/v1/sync/dossiers", json={"items": [item("idem-3")]}, headers=as_persona(CLIENT)
    )
    assert bare.status_code == 428
    assert outcomes(await sync(client, as_persona, [item("idem-3")])) == ["created"]


async def test_the_batch_is_bounded(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    assert (await sync(client, as_persona, [])).status_code == 422
    too_many = await sync(client, as_persona, [{}] * 1001)
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["pointer"] == "/items"


async def edit(
    c: httpx.AsyncClient,
    url: str,
    instruction: dict[str, Any],
    headers: dict[str, str],
    *,
    delay: float,
) -> httpx.Response:
    # every other pair of rounds lets the sync start first
    await asyncio.sleep(delay)
    return await c.patch(url, json={"instruction": instruction}, headers=headers)


async def test_concurrent_edits_by_the_ccas_and_a_sync_never_overwrite_silently(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    """A sync moving the status (its field) while echoing the CCAS's instruction, and one
    writing the instruction (not its field), each racing a CCAS edit: one side wins, the
    other gets a ``conflict``/``error`` item or a 412, never a silent overwrite."""
    c = committing_client
    ccas = as_persona("ccas_rsa_agent")
    seen: set[tuple[str, int]] = set()
    for round_ in range(8):
        owned = round_ % 2 == 0
        person = await rsa_person(c, as_persona)
        dossier = (await open_dossier(c, as_persona, person, instruction=INSTRUCTION)).json()["id"]
        await act(c, as_persona, dossier, "submit", "ccas_rsa_agent")
        url = f"/v1/dossiers/{dossier}"
        copy = (await c.get(url, headers=as_persona(CLIENT))).json()["instruction"]
        sent = copy if owned else {**copy, "comments": "saisi au département"}
        racing = item(
            f"race-{dossier}",
            dossier_id=dossier,
            beneficiary={"id": person},
            instruction=sent,
            source_updated_at=instant(),
        )
        etag = (await c.get(url, headers=ccas)).headers["etag"]
        mine = {**copy, "comments": "complété par le CCAS"}
        patch, synced = await asyncio.gather(
            edit(c, url, mine, {**ccas, "If-Match": etag}, delay=0.1 * (round_ // 2 % 2)),
            sync(c, as_persona, [racing]),
        )
        outcome = outcomes(synced)[0]
        seen.add((outcome, patch.status_code))
        final = (await c.get(url, headers=ccas)).json()
        if patch.status_code == 200:
            assert outcome in ("conflict", "error"), (owned, outcome)
            assert final["instruction"]["comments"] == "complété par le CCAS"
            assert final["status"] == "submitted"
        else:
            assert patch.status_code == 412 and owned and outcome == "updated"
            assert final["instruction"] == copy
            assert final["status"] == "under_review"
    assert seen <= {("conflict", 200), ("error", 200), ("updated", 412)}
