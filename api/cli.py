"""The ``guichet`` command."""

from __future__ import annotations

import asyncio

import typer
import uvicorn

from api.logging import configure_logging
from api.settings import get_settings

app = typer.Typer(
    help="Guichet unique: API server and administration.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


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
    """Migrate, load the demo territory (idempotent) and print its credentials."""
    from pydantic import SecretStr

    from api.auth.bootstrap import bootstrap_platform_admin
    from api.demo import DEMO_PASSWORD, PLATFORM_ADMIN, load_demo, load_demo_files
    from api.demo_activity import load_demo_activity
    from api.demo_aids import load_aid_demo
    from api.main import create_app
    from api.store.db import Database, owner_connection
    from api.store.migrate import migrate as run_migrations

    settings = get_settings()
    configure_logging(settings.log_level)
    admin_email = settings.bootstrap_admin_email or PLATFORM_ADMIN
    if not settings.bootstrap_admin_email:
        settings = settings.model_copy(
            update={
                "bootstrap_admin_email": PLATFORM_ADMIN,
                "bootstrap_admin_password": SecretStr(DEMO_PASSWORD),
            }
        )

    async def run() -> None:
        database = Database.connect(settings)
        try:
            await run_migrations(settings, database.owner_url)
            await bootstrap_platform_admin(settings, database.owner_url)
            app = create_app(settings, database=database)
            result = await load_demo(app, platform_admin_email=admin_email)
            files = await load_demo_files(app, result)
            async with owner_connection(database.owner_url) as conn:
                activity = await load_demo_activity(conn, result.organisations)
            aids = await load_aid_demo(app, result)
        finally:
            await database.dispose()
        typer.echo("\nDemo territory: the Somme (80). Every demo user's password: " + DEMO_PASSWORD)
        typer.echo(f"  {admin_email:<40} platform operator admin")
        for email, organisation, roles in result.users:
            typer.echo(f"  {email:<40} {organisation} — {', '.join(roles)}")
        for name, client_id, secret in result.clients:
            typer.echo(f"  API client {name}: client_id={client_id} client_secret={secret}")
        if not result.clients:
            typer.echo("  (API clients exist already; their secrets were printed when created)")
        if files:
            typer.echo(
                "\nSample case files on Amiens (a referral, an orientation, an RSA dossier):"
            )
            for line in files:
                typer.echo(f"  {line}")
        typer.echo(
            f"\nA year of activity for the statistics: {activity} fictitious people on Amiens "
            "Métropole and the Val de Somme, with referrals, orientations and dossiers."
        )
        if aids:
            typer.echo("\nAides facultatives (CCAS d'Amiens, CCAS de Corbie):")
            for line in aids:
                typer.echo(f"  {line}")

    asyncio.run(run())


@app.command()
def worker(
    once: bool = typer.Option(False, help="Run one pass of every job that is due, then exit."),
    concurrency: int = typer.Option(8, min=1, max=256, help="Webhook messages sent at once."),
    poll: float = typer.Option(1.0, min=0.05, help="Seconds between polls of an idle queue."),
    timeout: float = typer.Option(10.0, min=1.0, max=60.0, help="Seconds per webhook attempt."),
) -> None:
    """Run background work: webhook delivery and periodic jobs (several workers may run)."""
    from api.worker import run

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
    from api.audit_verify import verify
    from api.store.db import owner_url

    settings = get_settings()
    configure_logging(settings.log_level)
    if asyncio.run(verify(owner_url(settings))):
        raise typer.Exit(1)


@app.command()
def purge() -> None:
    """Apply retention (detach, anonymise, prune the audit trail); print the report as JSON
    (ids and counts only)."""
    import json

    from api.domain.people.retention import purge as run_purge
    from api.store.db import owner_url

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
