"""Authorization matrix of the change feed and the webhook endpoints: every persona."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.api.matrix import PERSONAS, Case
from tests.api.test_authorization_matrix import test_matrix as run_case
from tests.world import World

PUBLIC_URL = "https://93.184.215.14/hooks/guichet"

# agents and API clients with changes:read or referrals:read (all of the département)
_FEED_READERS = {
    "departement_agent": 200,
    "ccas_rsa_agent": 200,
    "ccas_agent": 200,
    "cias_agent": 200,
    "association_agent": 200,
    "client_with_scopes": 200,
}
_ADMINS = {"org_admin": 200, "departement_admin": 200}


def hook_path(suffix: str = "") -> Callable[[World], str]:
    return lambda w: f"/v1/webhooks/{w.extra['hook']}{suffix}"


# the subscription belongs to the CCAS d'Amiens (created by its admin in the test's
# transaction): other organisations get 404, its members without the admin role 403
_OWN_SIDE = {"ccas_rsa_agent": 403}

CASES = [
    Case("change feed", "GET", lambda w: "/v1/changes", _FEED_READERS, 403),
    Case(
        "change feed by type",
        "GET",
        lambda w: "/v1/changes?types=referral,convention&limit=10",
        _FEED_READERS,
        403,
    ),
    Case("webhooks list", "GET", lambda w: "/v1/webhooks", _ADMINS, 403),
    Case(
        "webhook create",
        "POST",
        lambda w: "/v1/webhooks",
        {"org_admin": 201, "departement_admin": 201},
        403,
        body=lambda w: {"url": PUBLIC_URL, "events": ["referral.*"]},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    ),
    Case("webhook read", "GET", hook_path(), {"org_admin": 200, **_OWN_SIDE}, 404),
    Case(
        "webhook deliveries",
        "GET",
        hook_path("/deliveries"),
        {"org_admin": 200, **_OWN_SIDE},
        404,
    ),
    Case("webhook test", "POST", hook_path("/test"), {"org_admin": 202, **_OWN_SIDE}, 404),
    Case("webhook delete", "DELETE", hook_path(), {"org_admin": 204, **_OWN_SIDE}, 404),
]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_changes_and_webhooks_matrix(
    case: Case,
    persona: str,
    client: httpx.AsyncClient,
    world: World,
    as_persona: Callable[[str], dict[str, str]],
) -> None:
    created = await client.post(
        "/v1/webhooks",
        json={"url": PUBLIC_URL, "events": ["*"]},
        headers={**as_persona("org_admin"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert created.status_code == 201, created.text
    world.extra["hook"] = created.json()["id"]
    await run_case(case, persona, client, world, as_persona)
