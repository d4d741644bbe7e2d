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
StateDir = Annotated[
    Path,
    typer.Option(envvar="TURNOUT_STATE_DIR", help="where `turnout up` keeps up.json and secrets"),
]


def _local_stack(state_dir: Path, database_url: str | None) -> str:
    """The DSN to use: the option / TURNOUT_DATABASE_URL, else the database of the stack
    `turnout up` runs from ``state_dir`` (its up.json), else the default. The stack's dev
    encryption key (secrets.json) is used when TURNOUT_ENCRYPTION_KEYS is not set."""
    import json
    import os

    up = state_dir / "up.json"
    info = json.loads(up.read_text()) if up.exists() else {}
    secrets = state_dir / "secrets.json"
    own_key = info.get("encryption_key_in") == "secrets.json" and secrets.exists()
    if not os.environ.get("TURNOUT_ENCRYPTION_KEYS") and own_key:
        key = json.loads(secrets.read_text()).get("encryption_key")
        if key:
            os.environ["TURNOUT_ENCRYPTION_KEYS"] = key
    return database_url or str(info.get("database_url") or DEFAULT_DSN)


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
    typer.echo(f"applied {len(applied)} migrations" if applied else "the database is up to date")


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
    request_log: Annotated[
        bool, typer.Option(help="log one line per request (method, model, provider, status…)")
    ] = True,
) -> None:
    """Run the whole system on this machine (Postgres, broker, the four services)."""
    from turnout.up import run_up

    raise typer.Exit(run_up(state_dir, demo=demo, quiet=not request_log))


@config_app.command("apply")
def config_apply(
    file: Annotated[Path, typer.Option("-f", "--file", exists=True, dir_okay=False)],
    dry_run: Annotated[bool, typer.Option(help="print the diff, change nothing")] = False,
    database_url: Annotated[str | None, typer.Option(envvar="TURNOUT_DATABASE_URL")] = None,
    state_dir: StateDir = Path(".turnout"),
) -> None:
    """Make the config match FILE (idempotent); secrets must be ${ENV_VAR} references.
    Next to a `turnout up` it needs no settings (it reads the state dir)."""
    from turnout.config_file import apply_file
    from turnout_common.errors import TurnoutError

    try:
        dsn = _local_stack(state_dir, database_url)
        diff = asyncio.run(apply_file(dsn, file, dry_run=dry_run))
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
    state_dir: StateDir = Path(".turnout"),
) -> None:
    """Print the current config in `apply`'s YAML format (secrets are never exported).
    Next to a `turnout up` it needs no settings (it reads the state dir)."""
    import yaml

    from turnout.config_file import export_config

    doc = asyncio.run(export_config(_local_stack(state_dir, database_url)))
    typer.echo(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
