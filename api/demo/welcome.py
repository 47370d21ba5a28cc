"""The demo for a newcomer: load it, and say how to use it in a few lines.

``guichet demo`` loads the territory and prints the credentials; ``guichet serve --demo``
(what ``python3 dev.py run`` starts) loads it in the serving process, on the database the
server already opened, and prints the same block once the server accepts connections — last
and alone, not among the start-up logs.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from api.auth.bootstrap import bootstrap_platform_admin
from api.db.engine import Database, owner_connection
from api.demo.activity import load_demo_activity
from api.demo.aids import load_aid_demo
from api.demo.files import load_demo_files
from api.demo.loader import DemoResult, load_demo
from api.demo.territory import DEMO_PASSWORD, PLATFORM_ADMIN
from api.settings import Settings


@dataclass(frozen=True)
class LoadedDemo:
    admin_email: str
    result: DemoResult
    files: list[str]
    aids: list[str]
    activity: int  # fictitious people of the year of activity behind the statistics


def demo_settings(settings: Settings) -> Settings:
    """The demo's platform administrator (with the demo password) unless one is configured."""
    if settings.bootstrap_admin_email:
        return settings
    return settings.model_copy(
        update={
            "bootstrap_admin_email": PLATFORM_ADMIN,
            "bootstrap_admin_password": SecretStr(DEMO_PASSWORD),
        }
    )


async def load(app: FastAPI, database: Database, settings: Settings) -> LoadedDemo:
    """Load the demo through ``app``'s API (migrated database, idempotent)."""
    settings = demo_settings(settings)
    admin_email = settings.bootstrap_admin_email or PLATFORM_ADMIN
    with _quiet("guichet.access", "httpx"):  # one log line per internal call buries the rest
        await bootstrap_platform_admin(settings, database.owner_url)
        result = await load_demo(app, platform_admin_email=admin_email)
        files = await load_demo_files(app, result)
        aids = await load_aid_demo(app, result)
        async with owner_connection(database.owner_url) as conn:
            activity = await load_demo_activity(conn, result.organisations)
    return LoadedDemo(admin_email, result, files, aids, activity)


def credentials(demo: LoadedDemo) -> list[str]:
    lines = ["Demo territory: the Somme (80). Every demo user's password: " + DEMO_PASSWORD]
    lines.append(f"  {demo.admin_email:<40} platform operator admin")
    for email, organisation, roles in demo.result.users:
        lines.append(f"  {email:<40} {organisation} — {', '.join(roles)}")
    for name, client_id, secret in demo.result.clients:
        lines.append(f"  API client {name}: client_id={client_id} client_secret={secret}")
    if demo.files:
        lines.append("Sample case files on Amiens (a referral, an orientation, an RSA dossier):")
        lines.extend(f"  {line}" for line in demo.files)
    if demo.aids:
        lines.append("Aides facultatives (CCAS d'Amiens, CCAS de Corbie):")
        lines.extend(f"  {line}" for line in demo.aids)
    lines.append(
        f"A year of activity for the statistics: {demo.activity} fictitious people on Amiens "
        "Métropole and the Val de Somme, with referrals, orientations and dossiers."
    )
    return lines


def banner(demo: LoadedDemo, base_url: str) -> str:
    """What ``guichet serve --demo`` prints once it serves."""
    rule = "─" * 78
    token = (
        f"  curl -s {base_url}/v1/auth/token -d grant_type=password \\\n"
        f"       -d username=agent.ccas-amiens@somme.demo -d password={DEMO_PASSWORD}"
    )
    return "\n".join(
        [
            "",
            rule,
            f"Guichet unique serves on {base_url}",
            f"  interactive documentation: {base_url}/docs (Authorize: any demo login below)",
            "",
            *credentials(demo),
            "",
            "Get an access token (then send it as `Authorization: Bearer <access_token>`):",
            token,
            "The README walks on from there to a first referral. Stop with Ctrl-C.",
            rule,
        ]
    )


class DemoServer(uvicorn.Server):
    """uvicorn serving ``api.main:app``; once it listens, the demo is loaded through the app
    and the banner printed on stdout (the logs go to stderr)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.should_exit:
            return
        from api.main import app as service  # the object uvicorn loaded from its import string

        demo = await load(service, service.state.db, service.state.settings)
        host = self.config.host if self.config.host not in ("0.0.0.0", "::") else "127.0.0.1"  # noqa: S104
        print(banner(demo, f"http://{host}:{self.config.port}"), flush=True, file=sys.stdout)


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
