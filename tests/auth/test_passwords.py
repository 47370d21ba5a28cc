"""Password and client-secret hashing."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher, Type

from api.auth import passwords
from api.auth.passwords import (
    DUMMY_HASH,
    hash_client_secret,
    hash_password,
    needs_rehash,
    new_client_secret,
    verify_client_secret,
    verify_password,
)


def test_hash_is_salted_argon2id_and_verifies() -> None:
    first = hash_password("correct horse battery staple")
    second = hash_password("correct horse battery staple")
    assert first.startswith("$argon2id$")
    assert first != second  # a fresh salt each time
    assert "correct horse" not in first
    assert verify_password(first, "correct horse battery staple")
    assert verify_password(second, "correct horse battery staple")


@pytest.mark.parametrize(
    "attempt", ["", "correct horse battery stapl", "Correct horse battery staple", " " * 3]
)
def test_wrong_password_is_false(attempt: str) -> None:
    assert verify_password(hash_password("correct horse battery staple"), attempt) is False


@pytest.mark.parametrize("stored", ["", "plain-text", "$argon2id$v=19$m=1,t=1,p=1$garbage"])
def test_invalid_stored_hash_is_false_not_an_error(stored: str) -> None:
    assert verify_password(stored, "anything") is False


def test_unknown_account_costs_a_real_verification_and_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = passwords._HASHER

    class Spy:
        def verify(self, stored: str, password: str) -> Any:
            calls.append(stored)
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_HASHER", Spy())
    assert verify_password(None, "whatever") is False
    assert calls == [DUMMY_HASH]


def test_dummy_hash_has_the_same_cost_as_real_hashes_and_matches_nothing() -> None:
    assert DUMMY_HASH.startswith("$argon2id$")
    assert needs_rehash(DUMMY_HASH) is False  # same parameters, hence the same work
    assert DUMMY_HASH.split("$")[3] == hash_password("x").split("$")[3]
    assert verify_password(DUMMY_HASH, "") is False


def test_needs_rehash_when_parameters_change() -> None:
    assert needs_rehash(hash_password("pw")) is False
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, type=Type.ID).hash("pw")
    assert verify_password(weak, "pw") is True
    assert needs_rehash(weak) is True
    argon2i = PasswordHasher(type=Type.I).hash("pw")
    assert needs_rehash(argon2i) is True
    assert needs_rehash("not a hash") is True


def test_client_secrets_are_random_and_hashed_with_argon2() -> None:
    secret, other = new_client_secret(), new_client_secret()
    assert secret != other and len(secret) >= 43
    stored = hash_client_secret(secret)
    assert stored.startswith("$argon2id$")
    assert verify_client_secret(stored, secret) is True
    assert verify_client_secret(stored, other) is False
    assert verify_client_secret(None, secret) is False
