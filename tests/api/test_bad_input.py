"""Bad input is a 4xx naming what is wrong, never a 500: NUL characters, forged cursors,
unknown ids, bodies in a media type the route does not read."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.http.schemas import body_holds_no_nul, decode_cursor, decode_keyset, holds_nul
from api.problems import ValidationFailed
from tests.api.people_support import Headers, create, person
from tests.api.test_http_conventions import assert_problem


def forged(key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


async def test_nul_in_any_body_text_is_422_naming_the_field(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    agent = as_persona("ccas_rsa_agent")
    for body, pointer in (
        (person(situation={"note": "violences conjugales\u0000"}), "/situation"),
        (person(birth_name="Du\u0000pont"), "/birth_name"),
        (person(address={"line1": "1 rue\u0000", "postal_code": "80000"}), "/address/line1"),
    ):
        r = await client.post("/v1/beneficiaries", json=body, headers=agent)
        problem = assert_problem(r, 422, "validation-error")
        assert [e["pointer"] for e in problem["errors"]] == [pointer]  # type: ignore[index]


# any text a JSON body can carry in UTF-8 (no lone surrogate), NUL included
_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_TEXT, children, max_size=4),
    max_leaves=12,
)


@given(value=_JSON, ascii_only=st.booleans())
def test_a_json_body_said_to_hold_no_nul_holds_none(value: Any, ascii_only: bool) -> None:
    """The sync skips searching its items when the body has no escaped NUL: whatever the
    value and however it is encoded, a NUL inside it is never missed."""
    body = json.dumps({"items": [value]}, ensure_ascii=ascii_only).encode()
    if holds_nul(value):
        assert not body_holds_no_nul(body)


def test_only_an_escaped_nul_makes_a_body_searched() -> None:
    assert body_holds_no_nul('{"items": [{"a": "é"}]}'.encode())
    assert not body_holds_no_nul(b'{"items": [{"a": "x\\u0000"}]}')
    # an escaped backslash before "u0000" is no NUL: a false alarm, which only costs the search
    assert not body_holds_no_nul(b'{"items": [{"a": "\\\\u0000"}]}')


async def test_nul_in_query_path_and_form_is_422(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    agent = as_persona("ccas_rsa_agent")
    params = {"last_name": "Du\x00pont"}
    r = await client.get("/v1/beneficiaries/search", params=params, headers=agent)
    assert assert_problem(r, 422, "validation-error")["errors"] == [
        {
            "pointer": "/last_name",
            "detail": "Text may not contain the NUL character.",
            "in": "query",
        }
    ]
    assert_problem(await client.get("/v1/territories/communes/80%0021"), 422, "validation-error")
    token = await client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": "a\x00@b.fr", "password": "x"},
    )
    assert token.status_code == 422


async def test_forged_cursors_are_422(client: httpx.AsyncClient, as_persona: Headers) -> None:
    beyond = 2**63
    dpo = as_persona("dpo")
    cases = [
        ("/v1/changes", "after", [beyond, 1], as_persona("client_with_scopes")),
        ("/v1/audit", "cursor", [beyond], dpo),
        ("/v1/organisations", "cursor", [1, 2], {}),  # anonymous
        ("/v1/organisations", "cursor", [1, 2], dpo),
        ("/v1/territories/communes", "cursor", [0, -(2**40), "80021"], {}),
        ("/v1/access-requests", "cursor", ["not-a-uuid"], dpo),
    ]
    for path, name, key, headers in cases:
        r = await client.get(path, params={name: forged(key)}, headers=headers)
        assert r.status_code == 422, (path, r.text)


async def test_forged_access_log_cursor_is_422(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    agent = as_persona("ccas_rsa_agent")
    person_id = await create(client, agent)
    r = await client.get(
        f"/v1/beneficiaries/{person_id}/access-log",
        params={"cursor": forged([2**63])},
        headers=agent,
    )
    assert_problem(r, 422, "validation-error")


async def test_household_member_naming_an_unknown_id_is_422(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    agent = as_persona("ccas_rsa_agent")
    person_id = await create(client, agent)
    members = [
        {"first_name": "Léa", "birth_date": "2015-02-01", "relation": "enfant"},
        {"beneficiary_id": str(uuid.uuid4()), "relation": "conjoint"},
    ]
    r = await client.put(
        f"/v1/beneficiaries/{person_id}/household", json={"members": members}, headers=agent
    )
    problem = assert_problem(r, 422, "validation-error")
    assert [e["pointer"] for e in problem["errors"]] == ["/members/1/beneficiary_id"]  # type: ignore[index]


async def test_a_body_in_another_media_type_is_415(
    client: httpx.AsyncClient, as_persona: Headers
) -> None:
    agent = as_persona("ccas_rsa_agent")
    r = await client.post(
        "/v1/beneficiaries",
        content=b"birth_name=Dupont",
        headers={**agent, "content-type": "text/plain"},
    )
    assert_problem(r, 415, "unsupported-media-type")
    r = await client.post("/v1/auth/token", json={"grant_type": "password"})
    assert_problem(r, 415, "unsupported-media-type")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)


@given(key=json_values, arity=st.integers(1, 3))
@settings(max_examples=300, suppress_health_check=list(HealthCheck))
def test_decoded_cursor_parts_are_only_bindable_values(key: Any, arity: int) -> None:
    try:
        position = decode_cursor(forged(key), arity)
    except ValidationFailed:
        return
    assert position is not None
    for part in position:
        assert isinstance(part, str | int) and not isinstance(part, bool)
        assert "\x00" not in part if isinstance(part, str) else -(2**63) <= part < 2**63


@given(raw=st.text(max_size=80))
@settings(max_examples=300)
def test_any_string_is_a_cursor_or_a_422(raw: str) -> None:
    try:
        decode_keyset(raw, uuid.UUID)
    except ValidationFailed as error:
        assert error.errors[0].pointer == "/cursor"
