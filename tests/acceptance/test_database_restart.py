"""The database stops and starts again under a running service: meanwhile every request that
needs it answers 503 with Retry-After (health stays up, readiness says 503), and once it is
back the same process serves again, without a restart. A dedicated embedded PostgreSQL
(``pgserver``) is stopped and started, not the shared test server."""

from __future__ import annotations

import asyncio
import tempfile
import warnings
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from api.db.engine import Database, start_embedded
from api.db.migrate import migrate
from api.main import create_app
from api.settings import Settings
from tests.api.test_http_conventions import assert_problem

COMMUNE = "/v1/territories/communes/80021"


def _server(data_dir: Path):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
        import pgserver

        return pgserver.get_server(data_dir.resolve() / "pg", cleanup_mode="stop")  # type: ignore[attr-defined]


def _stop(server) -> None:  # type: ignore[no-untyped-def]
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)


async def test_the_service_answers_503_while_the_database_is_down_and_recovers(
    settings: Settings,
) -> None:
    with tempfile.TemporaryDirectory(prefix="guichet-restart-") as folder:
        data_dir = Path(folder)
        owner = start_embedded(data_dir)
        server = _server(data_dir)
        own = settings.model_copy(
            update={"database_url": owner.render_as_string(hide_password=False)}
        )
        await migrate(own, owner)
        database = Database.connect(own, owner=make_url(str(owner)))
        app = create_app(own, database=database)
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                assert (await client.get(COMMUNE)).status_code == 200

                _stop(server)
                down = await client.get(COMMUNE)
                assert_problem(down, 503, "service-unavailable")
                assert int(down.headers["retry-after"]) >= 1
                assert (await client.get("/healthz")).status_code == 200
                assert (await client.get("/readyz")).status_code == 503

                server.ensure_postgres_running()
                statuses = []
                for _ in range(50):
                    response = await client.get(COMMUNE)
                    statuses.append(response.status_code)
                    if response.status_code == 200:
                        break
                    await asyncio.sleep(0.2)
                assert statuses[-1] == 200, statuses
                assert set(statuses) <= {200, 503}
                assert (await client.get("/readyz")).status_code == 200
        finally:
            await database.dispose()
            server.cleanup()
