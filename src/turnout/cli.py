"""The ``turnout`` command: up, serve, migrate, keys."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from turnout.services import SERVICES

app = typer.Typer(
    help="Turnout: an event-driven LLM gateway and control plane.",
    no_args_is_help=True,
    add_completion=False,
)
keys_app = typer.Typer(help="Encryption keys: generate, rotate.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def serve(
    service: Annotated[str, typer.Argument(help="config-api | router | health-worker | metering")],
) -> None:
    """Run one service in the foreground (one per pod in production)."""
    spec = SERVICES.get(service)
    if spec is None:
        raise typer.BadParameter(
            f"unknown service {service!r}; choose one of {', '.join(SERVICES)}"
        )
    spec.main().serve()


@app.command()
def migrate(
    database_url: Annotated[
        str | None, typer.Option(envvar="TURNOUT_DATABASE_URL", help="PostgreSQL DSN")
    ] = None,
    service: Annotated[list[str] | None, typer.Option(help="only these services")] = None,
) -> None:
    """Apply every service's schema migrations (idempotent, safe to run concurrently)."""
    from turnout.migrate import migrate_all

    dsn = database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
    applied = asyncio.run(migrate_all(dsn, service or list(SERVICES)))
    for name in applied:
        typer.echo(f"applied {name}")
    typer.echo(f"migrations up to date ({len(applied)} applied now)")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new Fernet key (prepend it to TURNOUT_ENCRYPTION_KEYS, then `keys rotate`)."""
    from turnout_common.crypto import generate_key

    typer.echo(generate_key())


@keys_app.command("rotate")
def keys_rotate(
    database_url: Annotated[str | None, typer.Option(envvar="TURNOUT_DATABASE_URL")] = None,
) -> None:
    """Re-encrypt every stored secret under the newest key of TURNOUT_ENCRYPTION_KEYS."""
    from turnout.migrate import rotate_secrets

    dsn = database_url or "postgresql://postgres@127.0.0.1:5432/postgres"
    count = asyncio.run(rotate_secrets(dsn))
    typer.echo(f"re-encrypted {count} secrets under the newest key")


@app.command()
def up(
    state_dir: Annotated[Path, typer.Option(envvar="TURNOUT_STATE_DIR")] = Path(".turnout"),
    demo: Annotated[
        bool, typer.Option(help="also start a local OpenAI-compatible simulator and configure it")
    ] = False,
) -> None:
    """Run the whole system on this machine (Postgres, broker, the four services)."""
    from turnout.up import run_up

    raise typer.Exit(run_up(state_dir, demo=demo))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
