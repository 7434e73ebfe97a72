"""`vibelocal config path|show|set|unset`: the settings as valid TOML, changed one validated key at a time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from vibelocal.cli.output import print_json
from vibelocal.paths import get_paths

if TYPE_CHECKING:
    from vibelocal.config import Settings


def settings_toml(settings: Settings, *, describe: bool = False, header: str = "") -> str:
    """Every setting as TOML that `load_settings` reads back to the same values; unset ones are comments."""
    import tomli_w

    from vibelocal.config import Settings

    lines = [f"# {line}" for line in header.splitlines()]
    for name, field in Settings.model_fields.items():
        value = getattr(settings, name)
        if describe:
            lines += [f"# {line.strip()}" for line in (field.description or "").splitlines()]
        if value is None:
            lines.append(f"# {name} =   (unset)")
        else:
            lines.append(tomli_w.dumps({name: value}).rstrip("\n"))
        if describe:
            lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def set_value(key: str, value: str | None) -> Any:
    """Set (or with None, remove) one key in config.toml after validating the result; returns the stored value."""
    from pydantic import ValidationError

    from vibelocal.config import Settings, _describe, _read_toml, save_settings
    from vibelocal.errors import ConfigError

    file = get_paths().config_file
    if key not in Settings.model_fields:
        known = ", ".join(Settings.model_fields)
        raise ConfigError(f"unknown setting {key!r} for {file}", hint=f"known settings: {known}")
    current = {k: v for k, v in _read_toml(file).items() if k != key}
    candidate = current if value is None else {**current, key: value}
    try:
        typed = Settings.model_validate(candidate)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, str(file))) from None
    stored = None if value is None else getattr(typed, key)
    save_settings({key: stored}, paths=get_paths(), drop=key if value is None else None)
    return stored


def register(app: typer.Typer) -> None:
    config_app = typer.Typer(
        help="Show, set and unset settings (config.toml), and say where it lives.", no_args_is_help=True
    )

    @config_app.command("path")
    def path() -> None:
        """Print the path of config.toml (it need not exist yet)."""
        typer.echo(str(get_paths().config_file))

    @config_app.command("show")
    def show(
        as_json: bool = typer.Option(False, "--json", help="Print the settings as JSON."),
        describe: bool = typer.Option(False, "--describe", help="Explain every setting."),
    ) -> None:
        """Print the effective settings as valid TOML: defaults, then config.toml, then VIBELOCAL_* variables.

        `vibelocal config show > config.toml` writes a file every command reads back unchanged.
        """
        from vibelocal.config import load_settings

        settings = load_settings()
        if as_json:
            print_json(settings.model_dump(mode="json"))
            return
        file = get_paths().config_file
        header = f"vibelocal settings; the file is {file}{'' if file.exists() else ' (not created yet)'}"
        typer.echo(settings_toml(settings, describe=describe, header=header), nl=False)

    @config_app.command("set")
    def set_cmd(
        key: str = typer.Argument(..., metavar="KEY", help="A setting name, as `config show` lists them."),
        value: str = typer.Argument(
            ..., metavar="VALUE", help="Its new value (true/false, a number, or text)."
        ),
    ) -> None:
        """Set one setting in config.toml, checked by the same rules every command applies."""
        stored = set_value(key, value)
        typer.echo(settings_line(key, stored))

    @config_app.command("unset")
    def unset_cmd(
        key: str = typer.Argument(..., metavar="KEY", help="The setting to remove from config.toml."),
    ) -> None:
        """Remove one setting from config.toml, so its default (or VIBELOCAL_* variable) applies."""
        set_value(key, None)
        typer.echo(f"# {key} =   (unset)")

    app.add_typer(config_app, name="config")


def settings_line(key: str, value: Any) -> str:
    import tomli_w

    return tomli_w.dumps({key: value}).rstrip("\n")
