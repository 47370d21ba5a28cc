"""The demo's aides facultatives: created through the API once, one request in each state,
a closed commission with minutes, vouchers; and the README's comparison call answers what
the README shows (this test's writes are rolled back)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

from api.demo.aids import load_aid_demo
from api.demo.files import load_demo_files
from api.demo.loader import DemoResult
from tests.world import World

ROOT = Path(__file__).resolve().parents[2]
COMPARE = {
    "communes": ["80021", "80212"],
    "household": {
        "adults": 1,
        "children_ages": [8, 14],
        "monthly_resources": 1250,
        "monthly_charges": 820,
    },
}


async def test_the_aid_demo_loads_once_with_a_request_in_each_state(
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    result = DemoResult(organisations=dict(world.organisations))
    await load_demo_files(app, result)
    created = await load_aid_demo(app, result)
    assert await load_aid_demo(app, result) == []
    states = {
        line.split(":")[0].split()[-1]: line.split(": ")[1]
        for line in created
        if line.startswith("aid request")
    }
    assert set(states) == {
        "draft",
        "submitted",
        "scheduled",
        "adjourned",
        "cancelled",
        "refused",
        "granted",
        "paid",
    }
    for state, request in states.items():
        read = await client.get(f"/v1/aid-requests/{request}", headers=as_persona("ccas_rsa_agent"))
        assert read.json()["status"] == state
    minutes = next(line.split(": ")[1] for line in created if line.startswith("commission minutes"))
    page = await client.get(minutes, headers=as_persona("ccas_rsa_agent"))
    assert page.status_code == 200 and "granted" in page.text and "Dubois" not in page.text
    vouchers = next(line for line in created if line.startswith("vouchers"))
    assert vouchers.count("BA-2026-") == 3

    answer = await client.post("/v1/aid-rules/compare", json={**COMPARE, "on": "2026-12-01"})
    assert answer.status_code == 200, answer.text
    names = {
        str(world.organisations["ccas_amiens"]): "<CCAS d'Amiens>",
        str(world.organisations["ccas_corbie"]): "<CCAS de Corbie>",
    }
    got = answer.json()
    for item in got["items"]:
        item["organisation"], item["rules_id"] = names[item["organisation"]], "…"
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("<!-- compare-answer -->")[1].split("```json")[1].split("```")[0]
    assert got == json.loads(shown)
