"""The ``guichet`` command."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Any

import typer
import uvicorn

from api.db.engine import exit_cleanly_on_sigterm
from api.logging import configure_logging
from api.settings import Settings, get_settings

app = typer.Typer(
    help="Guichet unique: API server and administration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def default_workers(database_url: str | None) -> int:
    """One worker process per core this process may run on; one with the embedded
    PostgreSQL, which each worker would otherwise start and stop on its own."""
    return len(os.sched_getaffinity(0)) if database_url else 1


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="uvicorn worker processes (default: one per core this process may use, or "
            "one with the embedded PostgreSQL)",
            show_default=False,
        ),
    ] = None,
    demo: bool = typer.Option(
        False, help="Load the demo territory and print how to use it once serving."
    ),
) -> None:
    """Start the API (migrating first unless GUICHET_AUTO_MIGRATE=0)."""
    settings = get_settings()
    configure_logging(settings.log_level)
    exit_cleanly_on_sigterm()
    if demo:
        if workers not in (None, 1):
            raise typer.BadParameter("the demo is served by one worker", param_hint="--workers")
        from api.demo.welcome import DemoServer

        DemoServer(uvicorn.Config("api.main:app", host=host, port=port, **_uvicorn(settings))).run()
        return
    if workers is None:
        workers = default_workers(settings.database_url)
    uvicorn.run("api.main:app", host=host, port=port, workers=workers, **_uvicorn(settings))


def _uvicorn(settings: Settings) -> dict[str, Any]:
    return {
        "access_log": False,
        "log_config": None,
        # X-Forwarded-For is believed only from the configured proxies: from anyone else it
        # would let a client pick the address its login attempts are counted under.
        "proxy_headers": bool(settings.trusted_proxies),
        "forwarded_allow_ips": settings.trusted_proxies or None,
    }


@app.command()
def migrate() -> None:
    """Apply pending migrations and load reference data, then exit."""
    from api.db.engine import owner_url
    from api.db.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(run_migrations(settings, owner_url(settings)))
    typer.echo("database migrated")


@app.command()
def demo() -> None:
    """Migrate, load the demo territory (idempotent) and print its credentials (new API client
    secrets at every load)."""
    from api.db.engine import Database
    from api.db.migrate import migrate as run_migrations
    from api.demo.welcome import credentials, demo_settings, load
    from api.main import create_app

    settings = demo_settings(get_settings())
    configure_logging(settings.log_level)

    async def run() -> None:
        database = Database.connect(settings)
        try:
            await run_migrations(settings, database.owner_url)
            loaded = await load(create_app(settings, database=database), database, settings)
        finally:
            await database.dispose()
        typer.echo("\n" + "\n".join(credentials(loaded)))

    asyncio.run(run())


@app.command()
def worker(
    once: bool = typer.Option(False, help="Run one pass of every job that is due, then exit."),
    concurrency: int = typer.Option(8, min=1, max=256, help="Webhook messages sent at once."),
    poll: float = typer.Option(1.0, min=0.05, help="Seconds between polls of an idle queue."),
    timeout: float = typer.Option(10.0, min=1.0, max=60.0, help="Seconds per webhook attempt."),
) -> None:
    """Run background work: webhook delivery and periodic jobs (several workers may run)."""
    from api.jobs.worker import run

    settings = get_settings()
    configure_logging(settings.log_level)
    asyncio.run(
        run(
            settings,
            once=once,
            concurrency=concurrency,
            poll_seconds=poll,
            timeout_seconds=timeout,
        )
    )


@app.command("audit-verify")
def audit_verify() -> None:
    """Check every organisation's audit hash chain; exit 1 when one is broken."""
    from api.db.engine import owner_url
    from api.jobs.audit_verify import verify

    settings = get_settings()
    configure_logging(settings.log_level)
    if asyncio.run(verify(owner_url(settings))):
        raise typer.Exit(1)


@app.command()
def purge() -> None:
    """Apply retention (detach, anonymise, prune the audit trail); print the report as JSON
    (ids and counts only)."""
    import json

    from api.db.engine import owner_url
    from api.jobs.purge import purge as run_purge

    settings = get_settings()
    configure_logging(settings.log_level)
    report = asyncio.run(run_purge(owner_url(settings)))
    typer.echo(json.dumps(report.as_dict(), indent=2))


@app.command("rotate-keys")
def rotate_keys() -> None:
    """Add a new signing key: it signs from the next start; older keys keep verifying
    tokens already issued until their PEM file is removed (after 15 minutes at least)."""
    from api.auth.keys import KeyRing

    key = KeyRing.rotate(get_settings().keys_dir)
    typer.echo(f"new signing key {key.kid}; restart every worker to sign with it")


@app.command()
def openapi(check: bool = typer.Option(False, help="Fail if the file is out of date.")) -> None:
    """Write the OpenAPI document to openapi/openapi.json."""
    from api.http.openapi import OPENAPI_PATH, render
    from api.main import create_app

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


@app.command("security-inventory")
def security_inventory(
    check: bool = typer.Option(False, help="Fail if the file is out of date."),
) -> None:
    """Write the policies and SECURITY DEFINER functions of the migrated database to
    api/db/security_inventory.md."""
    from api.db.engine import owner_connection, owner_url
    from api.db.inventory import INVENTORY_PATH, render

    settings = get_settings()

    async def run() -> str:
        async with owner_connection(owner_url(settings)) as conn:
            return await render(conn, settings.app_role)

    document = asyncio.run(run())
    if check:
        if not INVENTORY_PATH.exists() or INVENTORY_PATH.read_text() != document:
            typer.echo("the security inventory is out of date: run it without --check", err=True)
            raise typer.Exit(1)
        return
    INVENTORY_PATH.write_text(document)
    typer.echo(f"wrote {INVENTORY_PATH.name}")


if __name__ == "__main__":
    app()
