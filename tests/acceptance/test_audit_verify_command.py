"""`guichet audit-verify` passes on an intact trail and fails, naming the entry, once an
entry is modified behind the service's back."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import httpx
from sqlalchemy import text
from sqlalchemy.engine import URL

from api.db.engine import owner_connection
from tests.conftest import ROOT
from tests.world import World

Headers = Callable[[str], dict[str, str]]


def _verify(database_url: URL) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUICHET_")}
    env["DATABASE_URL"] = database_url.render_as_string(hide_password=False)
    return subprocess.run(
        [sys.executable, "-m", "api.cli", "audit-verify"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_verification_detects_a_modified_entry(
    database_url: URL, world: World, committing_client: httpx.AsyncClient, as_persona: Headers
) -> None:
    created = await committing_client.post(
        "/v1/beneficiaries",
        json={
            "competence": "aide_facultative",
            "birth_name": "Verif",
            "first_names": "Audit",
            "birth_date": "1944-08-25",
            "sex": "M",
            "commune": "80021",
        },
        headers=as_persona("ccas_rsa_agent"),
    )
    assert created.status_code in (201, 409)
    assert _verify(database_url).returncode == 0
    async with owner_connection(database_url) as conn:
        entry = (
            await conn.execute(text("SELECT id, action FROM audit_entry ORDER BY id DESC LIMIT 1"))
        ).one()
        await conn.execute(
            text("UPDATE audit_entry SET action = 'beneficiary.nothing' WHERE id = :i"),
            {"i": entry.id},
        )
    try:
        broken = _verify(database_url)
        assert broken.returncode == 1
        assert str(entry.id) in broken.stdout
    finally:
        async with owner_connection(database_url) as conn:
            await conn.execute(
                text("UPDATE audit_entry SET action = :a WHERE id = :i"),
                {"a": entry.action, "i": entry.id},
            )
