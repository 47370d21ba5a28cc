"""Fixtures for the auth unit tests: no database, keys in a temporary folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.auth.keys import KeyRing
from api.settings import Settings

ISSUER = "urn:guichet:test"
AUDIENCE = "guichet-test-api"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def auth_settings(tmp_path: Path) -> Settings:
    return Settings(
        _env_file=None,
        data_dir=tmp_path,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        access_token_ttl_seconds=900,
    )


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys")
