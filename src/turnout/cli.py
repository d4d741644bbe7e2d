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
config_app = typer.Typer(
    help="Declarative config: apply a YAML file, export the current config.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


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

    dsn = database_url or DEFAULT_DSN
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

    dsn = database_url or DEFAULT_DSN
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


@config_app.command("apply")
def config_apply(
    file: Annotated[Path, typer.Option("-f", "--file", exists=True, dir_okay=False)],
    dry_run: Annotated[bool, typer.Option(help="print the diff, change nothing")] = False,
    database_url: Annotated[str | None, typer.Option(envvar="TURNOUT_DATABASE_URL")] = None,
) -> None:
    """Make the config match FILE (idempotent); secrets must be ${ENV_VAR} references."""
    from turnout.config_file import apply_file
    from turnout_common.errors import TurnoutError

    try:
        diff = asyncio.run(apply_file(database_url or DEFAULT_DSN, file, dry_run=dry_run))
    except TurnoutError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2) from None
    for line in diff:
        typer.echo(line)
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{verb} {len(diff)} entities" if diff else "nothing to change")


@config_app.command("export")
def config_export(
    database_url: Annotated[str | None, typer.Option(envvar="TURNOUT_DATABASE_URL")] = None,
) -> None:
    """Print the current config in `apply`'s YAML format (secrets are never exported)."""
    import yaml

    from turnout.config_file import export_config

    doc = asyncio.run(export_config(database_url or DEFAULT_DSN))
    typer.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
