"""The ``guichet`` command."""

from __future__ import annotations

import asyncio

import typer
import uvicorn

from api.logging import configure_logging
from api.settings import get_settings

app = typer.Typer(help="Guichet unique: API server and administration.", no_args_is_help=True)


@app.command()
def serve(host: str = "127.0.0.1", port: int = 8000, workers: int = 1) -> None:
    """Start the API (migrating first unless GUICHET_AUTO_MIGRATE=0)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "api.main:app",
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        proxy_headers=True,
    )


@app.command()
def migrate() -> None:
    """Apply pending migrations and load reference data, then exit."""
    from api.store.db import owner_url
    from api.store.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(run_migrations(settings, owner_url(settings)))
    typer.echo("database migrated")


if __name__ == "__main__":
    app()
