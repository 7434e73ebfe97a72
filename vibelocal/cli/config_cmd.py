"""`vibelocal config path|show`."""

from __future__ import annotations

import typer

from vibelocal.cli.output import print_json
from vibelocal.config import Settings, load_settings
from vibelocal.paths import get_paths


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(help="Show where settings live and what they are.", no_args_is_help=True)

    @config_app.command("path")
    def path() -> None:
        """Print the path of config.toml (it need not exist yet)."""
        typer.echo(str(get_paths().config_file))

    @config_app.command("show")
    def show(
        as_json: bool = typer.Option(False, "--json", help="Print the settings as JSON."),
        describe: bool = typer.Option(False, "--describe", help="Explain every setting."),
    ) -> None:
        """Print the effective settings (defaults < config.toml < VIBELOCAL_* environment)."""
        settings = load_settings()
        if as_json:
            print_json(settings.model_dump(mode="json"))
            return
        paths = get_paths()
        typer.echo(f"# {paths.config_file}{'' if paths.config_file.exists() else ' (not created yet)'}")
        for name, field in Settings.model_fields.items():
            value = getattr(settings, name)
            if describe and field.description:
                for line in field.description.splitlines():
                    typer.echo(f"# {line.strip()}")
            shown = "(unset)" if value is None else repr(value) if isinstance(value, str) else value
            typer.echo(f"{name} = {shown}")
            if describe:
                typer.echo("")

    app.add_typer(config_app, name="config")
