"""Runs the matrix of tests/api/matrix.py: every endpoint × every persona."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.api.matrix import CASES, PERSONAS, Case
from tests.world import World


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    r = await client.request(
        case.method,
        case.path(world),
        headers={**as_persona(persona), **case.headers},
        json=case.body(world) if case.body else None,
    )
    expected = case.status_for(persona)
    assert r.status_code == expected, f"{case.name} as {persona}: {r.status_code} {r.text[:300]}"
    if expected == 401:
        assert r.headers["www-authenticate"].startswith("Bearer")
    if expected >= 400:
        assert r.headers["content-type"] == "application/problem+json"
