"""Idempotency keys on creating requests: replay, reuse, scoping, in-flight duplicates,
API clients, and 50 concurrent duplicates against the real server."""

from __future__ import annotations

import asyncio
import random
import string
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

import api.http.idempotency
from api.db.context import DbContext, set_db_context
from api.db.engine import owner_connection
from tests.world import World

Headers = Callable[[str], dict[str, str]]


def _name() -> str:
    return "Idem" + "".join(random.choices(string.ascii_lowercase, k=10))


def person(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "competence": "aide_facultative",
        "birth_name": _name(),
        "first_names": "Rejoue",
        "birth_date": f"19{random.randint(20, 99)}-0{random.randint(1, 9)}-1{random.randint(0, 9)}",
        "sex": "F",
        "commune": "80021",
    }
    body.update(overrides)
    return body


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def _count_like(connection: AsyncConnection, body: dict[str, Any], org: object) -> int:
    """People with this birth date and name that ``org`` follows (the test's transaction)."""
    session = AsyncSession(bind=connection)
    await session.execute(
        text(
            "SELECT set_config('guichet.context', 'request', true), "
            "set_config('guichet.organisation_id', :o, true)"
        ),
        {"o": str(org)},
    )
    return int(
        await session.scalar(
            text("SELECT count(*) FROM beneficiary WHERE birth_date = :d AND birth_name = :n"),
            {"d": date.fromisoformat(body["birth_date"]), "n": body["birth_name"]},
        )
        or 0
    )


async def test_a_replay_answers_the_first_response_byte_for_byte(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    headers = {**as_persona("ccas_rsa_agent"), **key()}
    body = person()
    first = await client.post("/v1/beneficiaries", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    # the same JSON with its keys in another order is the same request
    again = await client.post(
        "/v1/beneficiaries", json=dict(reversed(list(body.items()))), headers=headers
    )
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"]
    assert again.headers["etag"] == first.headers["etag"]
    # one person only: a second creation would have been refused as a likely duplicate
    forced = await client.post("/v1/beneficiaries", json=body, headers=as_persona("ccas_rsa_agent"))
    assert forced.status_code == 409 and forced.json()["code"] == "possible-duplicate"
    assert len(forced.json()["candidates"]) == 1


async def test_the_same_key_for_another_request_is_refused(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    headers = {**as_persona("ccas_rsa_agent"), **key()}
    first = await client.post("/v1/beneficiaries", json=person(), headers=headers)
    assert first.status_code == 201
    other = await client.post("/v1/beneficiaries", json=person(), headers=headers)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency-key-reuse"
    # another path with the same key is another request too
    pid = first.json()["id"]
    note = await client.post(
        f"/v1/beneficiaries/{pid}/notes",
        json={"competence": "aide_facultative", "visibility": "team", "body": "suivi"},
        headers=headers,
    )
    assert note.status_code == 422 and note.json()["code"] == "idempotency-key-reuse"


async def test_keys_belong_to_their_principal(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    shared = key()
    body = person()
    mine = await client.post(
        "/v1/beneficiaries", json=body, headers={**as_persona("ccas_rsa_agent"), **shared}
    )
    assert mine.status_code == 201
    # a colleague of the same organisation with the same key and body is not replayed the
    # first answer: the request runs (and meets the person just created)
    colleague = await client.post(
        "/v1/beneficiaries", json=body, headers={**as_persona("ccas_accueil"), **shared}
    )
    assert "idempotent-replayed" not in colleague.headers
    assert colleague.status_code == 409 and colleague.json()["code"] == "possible-duplicate"


async def test_a_failed_request_leaves_its_key_free(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    headers = {**as_persona("ccas_rsa_agent"), **key()}
    # Corbie is not where the CCAS d'Amiens holds aide_facultative: refused, nothing kept
    refused = await client.post("/v1/beneficiaries", json=person(commune="80212"), headers=headers)
    assert refused.status_code == 422, refused.text
    ok = await client.post("/v1/beneficiaries", json=person(), headers=headers)
    assert ok.status_code == 201 and "idempotent-replayed" not in ok.headers


async def test_a_key_older_than_a_day_counts_as_new(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    headers = {**as_persona("ccas_rsa_agent"), **key()}
    first = await client.post("/v1/beneficiaries", json=person(), headers=headers)
    assert first.status_code == 201
    persona = world.personas["ccas_rsa_agent"]
    session = AsyncSession(bind=connection)
    await set_db_context(
        session,
        context=DbContext.REQUEST,
        organisation_id=persona.organisation_id,
        principal_id=persona.principal_id,
    )
    aged = await session.execute(
        text(
            "UPDATE idempotency_key SET created_at = created_at - interval '25 hours' "
            "WHERE key = :k"
        ),
        {"k": headers["Idempotency-Key"]},
    )
    assert getattr(aged, "rowcount", 0) == 1
    later = await client.post("/v1/beneficiaries", json=person(), headers=headers)
    assert later.status_code == 201 and "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]


@pytest.mark.parametrize("bad", ["", "a b", "é".encode("latin-1"), "x" * 256])
async def test_malformed_keys_are_refused(
    client: httpx.AsyncClient, world: World, as_persona: Headers, bad: str | bytes
) -> None:
    r = await client.post(
        "/v1/beneficiaries",
        json=person(),
        headers={**as_persona("ccas_rsa_agent"), "Idempotency-Key": bad},
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["in"] == "header"


async def _client_token(client: httpx.AsyncClient, as_persona: Headers, world: World) -> str:
    created = await client.post(
        f"/v1/organisations/{world.organisations['ccas_amiens']}/api-clients",
        json={"name": "Logiciel du CCAS", "scopes": ["beneficiaries:write"]},
        headers=as_persona("org_admin"),
    )
    assert created.status_code == 201, created.text
    token = await client.post(
        "/v1/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created.json()["client_id"],
            "client_secret": created.json()["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


async def test_api_clients_must_send_a_key_and_nothing_is_written_without(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    auth = {"Authorization": f"Bearer {await _client_token(client, as_persona, world)}"}
    body = person()
    missing = await client.post("/v1/beneficiaries", json=body, headers=auth)
    assert missing.status_code == 428
    assert missing.json()["code"] == "idempotency-key-required"
    assert await _count_like(connection, body, world.organisations["ccas_amiens"]) == 0
    sent = await client.post("/v1/beneficiaries", json=body, headers={**auth, **key()})
    assert sent.status_code == 201, sent.text
    assert await _count_like(connection, body, world.organisations["ccas_amiens"]) == 1
    # a request that fails anyway fails the same way with or without a key
    forbidden = await client.post(
        "/v1/beneficiaries", json=person(), headers=as_persona("client_with_scopes")
    )
    assert forbidden.status_code == 403
    invalid = await client.post("/v1/beneficiaries", json=person(commune="80212"), headers=auth)
    assert invalid.status_code == 422 and invalid.json()["code"] == "validation-error"


async def test_a_replayed_secret_is_not_stored_in_clear(
    client: httpx.AsyncClient, connection: AsyncConnection, world: World, as_persona: Headers
) -> None:
    headers = {**as_persona("org_admin"), **key()}
    path = f"/v1/organisations/{world.organisations['ccas_amiens']}/api-clients"
    body = {"name": "Logiciel rejoué", "scopes": ["referrals:read"]}
    first = await client.post(path, json=body, headers=headers)
    again = await client.post(path, json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["client_secret"] == first.json()["client_secret"]
    session = AsyncSession(bind=connection)
    persona = world.personas["org_admin"]
    await set_db_context(
        session,
        context=DbContext.REQUEST,
        organisation_id=persona.organisation_id,
        principal_id=persona.principal_id,
    )
    stored = await session.scalar(
        text("SELECT body_cipher FROM idempotency_key WHERE key = :k"),
        {"k": headers["Idempotency-Key"]},
    )
    assert stored and first.json()["client_secret"].encode() not in stored
    assert first.json()["client_id"].encode() not in stored


async def test_a_duplicate_waits_then_answers_409_while_the_first_runs(
    committing_client: httpx.AsyncClient,
    app_engine: AsyncEngine,
    world: World,
    as_persona: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api.http.idempotency, "IN_FLIGHT_WAIT", timedelta(milliseconds=300))
    persona = world.personas["ccas_rsa_agent"]
    headers = {**as_persona("ccas_rsa_agent"), **key()}
    # another request holding the key, not committed yet
    async with app_engine.connect() as holder:
        session = AsyncSession(bind=holder)
        await set_db_context(
            session,
            context=DbContext.REQUEST,
            organisation_id=persona.organisation_id,
            principal_id=persona.principal_id,
        )
        await session.execute(
            text(
                "INSERT INTO idempotency_key (principal_id, organisation_id, key, request_hash, "
                "created_at) VALUES (:p, :o, :k, 'running', now())"
            ),
            {
                "p": persona.principal_id,
                "o": persona.organisation_id,
                "k": headers["Idempotency-Key"],
            },
        )
        busy = await committing_client.post("/v1/beneficiaries", json=person(), headers=headers)
        assert busy.status_code == 409, busy.text
        assert busy.json()["code"] == "idempotency-key-in-use"
        assert busy.headers["retry-after"] == "1"
        await session.rollback()  # the first request failed: its key is free again
    after = await committing_client.post("/v1/beneficiaries", json=person(), headers=headers)
    assert after.status_code == 201, after.text


async def test_fifty_concurrent_duplicates_create_one_record(
    live_server: str, database_url: URL, world: World, as_persona: Headers
) -> None:
    body = person()
    headers = {**as_persona("ccas_rsa_agent"), **key()}
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as http:
        answers = await asyncio.gather(
            *(http.post("/v1/beneficiaries", json=body, headers=headers) for _ in range(50))
        )
    assert [a.status_code for a in answers] == [201] * 50, [a.text for a in answers[:3]]
    assert len({a.content for a in answers}) == 1
    assert len({a.headers["location"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 49
    async with owner_connection(database_url) as conn:
        count = await conn.scalar(
            text("SELECT count(*) FROM beneficiary WHERE birth_name = :n"),
            {"n": body["birth_name"]},
        )
    assert count == 1
