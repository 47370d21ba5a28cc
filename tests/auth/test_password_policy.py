"""Chosen passwords: long enough, not common or breached-style, not built on the user's name
or e-mail; refused at the API with a 422 naming the field."""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.auth.password_policy import MIN_LENGTH, password_problems
from tests.world import World

EMAIL = "jeanne.martin@ccas-amiens.fr"
NAME = "Jeanne Martin"


@pytest.mark.parametrize(
    "password",
    [
        "short-1",  # too short
        "azertyuiop123",  # keyboard walk
        "Password1234!",  # breached-style
        "qwertyqwerty",
        "martinjeanne1985",  # the user's name
        "jeanne.martin@ccas-amiens.fr",  # the user's e-mail
        "Martin2026Martin",
    ],
)
def test_weak_or_personal_passwords_are_refused(password: str) -> None:
    assert password_problems(password, email=EMAIL, full_name=NAME)


@pytest.mark.parametrize(
    "password", ["guichet-demo-2026", "cheval agrafe pile batterie", "vG7#kq2!Lm9zPw"]
)
def test_strong_passwords_are_accepted(password: str) -> None:
    assert password_problems(password, email=EMAIL, full_name=NAME) == []


@given(st.text(min_size=0, max_size=MIN_LENGTH - 1))
@settings(max_examples=100)
def test_anything_shorter_than_the_minimum_is_refused(password: str) -> None:
    assert password_problems(password, email=EMAIL, full_name=NAME)


@given(st.integers(0, 2**32))
@settings(max_examples=25, deadline=None)
def test_random_passwords_of_16_characters_pass(seed: int) -> None:
    alphabet = string.ascii_letters + string.digits + "!#%&*+-=?@"
    password = "".join(secrets.choice(alphabet) for _ in range(16))
    assert password_problems(password, email=EMAIL, full_name=NAME) == []


async def test_the_api_refuses_a_weak_password_naming_the_field(
    client: httpx.AsyncClient, as_persona: Callable[[str], dict[str, str]], world: World
) -> None:
    body = {"email": EMAIL, "full_name": NAME, "roles": ["agent"], "password": "jeannemartin2026"}
    r = await client.post(
        f"/v1/organisations/{world.organisations['ccas_amiens']}/members",
        json=body,
        headers={**as_persona("org_admin"), "Idempotency-Key": secrets.token_hex(8)},
    )
    assert r.status_code == 422, r.text
    assert {e["pointer"] for e in r.json()["errors"]} == {"/password"}
