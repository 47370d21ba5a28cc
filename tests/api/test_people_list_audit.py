"""Every list view shows in the access log of each person it listed."""

from __future__ import annotations

import httpx

from tests.api.people_support import Headers, create
from tests.world import World


async def test_each_listed_person_has_the_list_in_their_access_log(
    client: httpx.AsyncClient, world: World, as_persona: Headers
) -> None:
    ccas = as_persona("ccas_rsa_agent")
    mine = {
        await create(client, ccas, birth_name=f"Liste{n}", birth_date=f"1980-01-1{n}")
        for n in range(3)
    }
    listed: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await client.get("/v1/beneficiaries", params=params, headers=ccas)
        assert page.status_code == 200
        listed += [p["id"] for p in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert mine <= set(listed)
    for pid in mine:
        log = await client.get(f"/v1/beneficiaries/{pid}/access-log", headers=ccas)
        actions = [i["action"] for i in log.json()["items"]]
        assert actions.count("beneficiary.list") == 1, actions
    # another organisation's list neither shows them nor logs them
    other = await client.get("/v1/beneficiaries", headers=as_persona("cias_agent"))
    assert not mine & {p["id"] for p in other.json()["items"]}
    for pid in mine:
        log = await client.get(f"/v1/beneficiaries/{pid}/access-log", headers=ccas)
        organisations = {
            i["organisation"]["id"]
            for i in log.json()["items"]
            if i["action"] == "beneficiary.list"
        }
        assert organisations == {str(world.organisations["ccas_amiens"])}
