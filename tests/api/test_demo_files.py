"""The demo's sample case files: created through the API, once, and seen by the right
partners (this test's writes are rolled back)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI

from api.demo.files import load_demo_files
from api.demo.loader import DemoResult
from tests.world import World


async def test_sample_files_load_once_and_show_in_the_organisations_boxes(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    result = DemoResult(organisations=dict(world.organisations))
    created = await load_demo_files(app, result)
    assert len(created) == 3
    assert await load_demo_files(app, result) == []

    ids = {line.split(":")[0].split()[-1]: line.split(": ")[1] for line in created}
    inbox = await client.get(
        f"/v1/referrals?box=inbox&beneficiary_id={ids['Dubois']}",
        headers=as_persona("association_agent"),
    )
    assert [(i["need_code"], i["status"]) for i in inbox.json()["items"]] == [
        ("colis_alimentaire", "accepted")
    ]
    proposed = await client.get(
        f"/v1/orientations?box=inbox&beneficiary_id={ids['Martin']}",
        headers=as_persona("ccas_rsa_agent"),
    )
    assert [(o["competence"], o["status"]) for o in proposed.json()["items"]] == [
        ("rsa", "proposed")
    ]
    dossiers = await client.get(
        f"/v1/dossiers?beneficiary_id={ids['Petit']}", headers=as_persona("departement_agent")
    )
    assert [(d["prestation"], d["status"]) for d in dossiers.json()["items"]] == [
        ("rsa", "submitted")
    ]
