"""The change feed: monotonic cursor under out-of-order commits, isolation between
organisations, visibility re-checked at read time, tombstones.

The feed serves only what committed transactions wrote, so these tests commit (their data
stays in the run's database: random references and names keep them apart)."""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from api.db.engine import create_engine
from api.domain.changes.repository import ChangeLog
from tests.api.feed_support import announce, ids, read_all, until
from tests.world import World

Headers = Callable[[str], dict[str, str]]


def _convention(world: World) -> dict[str, Any]:
    return {
        "reference": f"CONV-FEED-{uuid.uuid4().hex[:12]}",
        "grantee_id": str(world.organisations["secours_populaire"]),
        "competences": ["aide_facultative"],
        "communes": ["80021"],
        "data_categories": ["identity", "contact"],
        "valid_from": "2026-01-01",
    }


async def _person(c: httpx.AsyncClient, as_persona: Headers) -> str:
    body = {
        "competence": "aide_facultative",
        "birth_name": "Flux" + "".join(random.choices(string.ascii_lowercase, k=10)),
        "first_names": "Suivi",
        "birth_date": f"19{random.randint(20, 99)}-0{random.randint(1, 9)}-2{random.randint(0, 8)}",
        "sex": "M",
        "commune": "80021",
    }
    r = await c.post("/v1/beneficiaries", json=body, headers=as_persona("ccas_rsa_agent"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_convention_changes_reach_both_parties_in_order_and_only_once(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    c = committing_client
    ccas, association = as_persona("ccas_rsa_agent"), as_persona("association_agent")
    _, ccas_start = await read_all(c, ccas, None)
    _, association_start = await read_all(c, association, None)
    proposed = []
    for _ in range(3):
        r = await c.post(
            "/v1/conventions", json=_convention(world), headers=as_persona("org_admin")
        )
        assert r.status_code == 201, r.text
        proposed.append(r.json()["id"])
    revoked = await c.post(
        f"/v1/conventions/{proposed[0]}/revoke",
        json={"reason": "erreur"},
        headers=as_persona("org_admin"),
    )
    assert revoked.status_code == 200, revoked.text

    async def arrived() -> list[dict[str, Any]] | None:
        items, _ = await read_all(c, ccas, ccas_start)
        mine = [i for i in items if i["id"] in proposed]
        return mine if len(mine) == 4 else None

    mine = await until(arrived)
    assert [(i["id"], i["action"], i["status"]) for i in mine] == [
        (proposed[0], "created", "proposed"),
        (proposed[1], "created", "proposed"),
        (proposed[2], "created", "proposed"),
        (proposed[0], "status_changed", "revoked"),
    ]
    assert {i["type"] for i in mine} == {"convention"}
    assert {i["event"] for i in mine} == {"convention.status_changed"}
    # the grantee sees the same events
    theirs, _ = await read_all(c, association, association_start)
    assert [i["id"] for i in theirs if i["id"] in proposed] == [i["id"] for i in mine]

    # page by page, one event at a time: the same events, never twice, then caught up
    seen: list[str] = []
    after = ccas_start
    while True:
        r = await c.get("/v1/changes", params={"after": after, "limit": 1}, headers=ccas)
        page = r.json()
        assert len(page["items"]) <= 1
        seen += [i["cursor"] for i in page["items"]]
        after = page["next_cursor"]
        if not page["has_more"]:
            break
    everything, caught_up = await read_all(c, ccas, ccas_start)
    assert seen[: len(everything)] == [i["cursor"] for i in everything]
    assert len(seen) == len(set(seen))
    nothing, same = await read_all(c, ccas, caught_up)
    assert [i for i in nothing if i["id"] in proposed] == []
    assert same is not None


async def test_out_of_order_commits_are_never_skipped(
    committing_client: httpx.AsyncClient, database_url: URL, world: World, as_persona: Headers
) -> None:
    """Event ids are taken at insert and commit in another order. Transaction A writes first
    and commits last; B's event has a higher id than A's first and a lower id than A's
    second. A reader must not move past A while it runs, and then gets A's events and B's,
    each once, in the order of their transactions."""
    c = committing_client
    h = as_persona("ccas_rsa_agent")
    org = world.organisations["ccas_amiens"]
    _, start = await read_all(c, h, None)
    a1, a2, b1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    engine = create_engine(database_url, pool_size=2, max_overflow=0)

    async def tombstone(session: AsyncSession, resource: uuid.UUID) -> None:
        await ChangeLog(session).record(
            type="beneficiary",
            resource_id=resource,
            action="deleted",
            event="beneficiary.deleted",
            audience=[org],
        )

    try:
        async with engine.connect() as a, engine.connect() as b:
            await tombstone(AsyncSession(bind=a), a1)
            await tombstone(AsyncSession(bind=b), b1)
            await b.commit()
            held, resume = await read_all(c, h, start)
            assert not {str(a1), str(b1)} & set(ids(held)), "B served while A still runs"
            await tombstone(AsyncSession(bind=a), a2)
            await a.commit()
    finally:
        await engine.dispose()
    wanted = {str(a1), str(a2), str(b1)}

    async def complete() -> list[dict[str, Any]] | None:
        items, _ = await read_all(c, h, resume)
        mine = [i for i in items if i["id"] in wanted]
        return mine if len(mine) == 3 else None

    mine = await until(complete)
    assert ids(mine) == [str(a1), str(a2), str(b1)]
    assert all(i["action"] == "deleted" for i in mine)


async def test_each_organisation_sees_only_what_it_may_see_now(
    committing_client: httpx.AsyncClient, database_url: URL, world: World, as_persona: Headers
) -> None:
    """An access request is announced to the requester and to the person's care team. A
    third organisation never sees it; a care-team member that leaves stops seeing it."""
    c = committing_client
    ccas, departement = as_persona("ccas_rsa_agent"), as_persona("departement_agent")
    others = [as_persona(p) for p in ("ccas_agent", "association_agent", "cias_agent")]
    _, ccas_start = await read_all(c, ccas, None)
    _, dep_start = await read_all(c, departement, None)
    starts = [(await read_all(c, o, None))[1] for o in others]
    pid = await _person(c, as_persona)
    asked = await c.post(
        f"/v1/beneficiaries/{pid}/access-requests",
        json={"competence": "rsa", "reason": "instruction RSA"},
        headers=departement,
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    # a tombstone for the CCAS alone, about a record nobody can read any more
    gone = uuid.uuid4()
    await announce(
        database_url,
        resource_id=gone,
        audience=[world.organisations["ccas_amiens"]],
        action="deleted",
        event="beneficiary.deleted",
    )
    # a change about a record the CCAS cannot see is not served even to its audience
    hidden = uuid.uuid4()
    await announce(database_url, resource_id=hidden, audience=[world.organisations["ccas_amiens"]])

    async def ccas_sees() -> list[dict[str, Any]] | None:
        items, _ = await read_all(c, ccas, ccas_start)
        return items if {request_id, str(gone)} <= set(ids(items)) else None

    seen = await until(ccas_sees)
    assert str(hidden) not in ids(seen)
    created = next(i for i in seen if i["id"] == request_id)
    assert (created["type"], created["action"], created["event"]) == (
        "access_request",
        "created",
        "access_request.created",
    )
    dep_items, _ = await read_all(c, departement, dep_start)
    assert request_id in ids(dep_items) and str(gone) not in ids(dep_items)
    for headers, start in zip(others, starts, strict=True):
        items, _ = await read_all(c, headers, start)
        assert not {request_id, str(gone), str(hidden), pid} & set(ids(items))

    # the CCAS leaves the person's care team: the request is none of its business any more
    team = await c.get(f"/v1/beneficiaries/{pid}/care-team", headers=ccas)
    membership = next(
        m["id"]
        for m in team.json()
        if m["organisation_id"] == str(world.organisations["ccas_amiens"]) and not m["ended_at"]
    )
    left = await c.request(
        "DELETE",
        f"/v1/beneficiaries/{pid}/care-team/{membership}",
        json={"reason": "fin de suivi"},
        headers=ccas,
    )
    assert left.status_code == 204, left.text
    after_leaving, _ = await read_all(c, ccas, ccas_start)
    assert request_id not in ids(after_leaving)
    assert str(gone) in ids(after_leaving)  # a tombstone stays with its audience
    dep_items, _ = await read_all(c, departement, dep_start)
    assert request_id in ids(dep_items)  # the requester still sees its request


async def test_types_filter_and_invalid_input(
    committing_client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    c = committing_client
    h = as_persona("ccas_rsa_agent")
    items, _ = await read_all(c, h, None, types="convention")
    assert items and {i["type"] for i in items} == {"convention"}
    bad_type = await c.get("/v1/changes", params={"types": "convention,person"}, headers=h)
    assert bad_type.status_code == 422
    assert bad_type.json()["errors"][0]["pointer"] == "/types"
    for cursor in ("not-a-cursor", "W10=", "WyJhIiwxXQ==", "Wy0xLDFd", "W3RydWUsMV0="):
        bad = await c.get("/v1/changes", params={"after": cursor}, headers=h)
        assert bad.status_code == 422, cursor
        assert bad.json()["errors"][0]["pointer"] == "/after"
