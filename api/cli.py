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


@app.command()
def demo() -> None:
    """Migrate, then load the demo territory (idempotent) and print its credentials."""
    from api.store.db import owner_url
    from api.store.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(run_migrations(settings, owner_url(settings)))
    typer.echo("database migrated; reference data loaded")


@app.command()
def openapi(check: bool = typer.Option(False, help="Fail if the file is out of date.")) -> None:
    """Write the OpenAPI document to openapi/openapi.json."""
    from api.main import create_app
    from api.openapi import OPENAPI_PATH, render

    document = render(create_app())
    if check:
        current = OPENAPI_PATH.read_text() if OPENAPI_PATH.exists() else ""
        if current != document:
            typer.echo("openapi/openapi.json is out of date: run `guichet openapi`", err=True)
            raise typer.Exit(1)
        return
    OPENAPI_PATH.parent.mkdir(exist_ok=True)
    OPENAPI_PATH.write_text(document)
    typer.echo(f"wrote {OPENAPI_PATH.name}")


if __name__ == "__main__":
    app()
