"""Options and helpers every command shares: the fleet config, logging, running async work.

Use in a command:

    def my_cmd(
        config: Path = options.config_option(),
        log_format: options.LogFormatChoice = options.log_format_option(),
        log_level: options.LogLevelChoice = options.log_level_option(),
    ) -> None:
        options.setup_logging(log_format, log_level)
        fleet = options.load_fleet(config)
        result = options.run_async(work(fleet))
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import typer

from orchestrator import logs
from orchestrator.config import FleetConfig, load_config
from orchestrator.errors import ConfigError, InputError
from orchestrator.untrusted import clean

if TYPE_CHECKING:
    from orchestrator.arm import AzureGateway

T = TypeVar("T")

CONFIG_ENV = "ORCHESTRATOR_CONFIG"
DEFAULT_CONFIG = Path("fleet.toml")
LogFormatChoice = Literal["console", "json"]
LogLevelChoice = Literal["debug", "info", "warning", "error"]


def config_option() -> Any:
    """`--config/-c FILE`: the fleet config; defaults to $ORCHESTRATOR_CONFIG, else ./fleet.toml."""
    return typer.Option(
        DEFAULT_CONFIG,
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help=f"Fleet config file (TOML). Default: ${CONFIG_ENV}, else ./fleet.toml.",
        show_default=False,
    )


def log_format_option() -> Any:
    return typer.Option(
        "console",
        "--log-format",
        help="Logs on stderr: console (readable) or json (one object per line).",
    )


def log_level_option() -> Any:
    return typer.Option(
        "warning",
        "--log-level",
        help="Least severe log level shown on stderr.",
    )


def setup_logging(log_format: str, log_level: str) -> None:
    fmt = cast(logs.LogFormat, log_format.lower())
    logs.configure(fmt, level=log_level.lower())


def load_fleet(path: Path) -> FleetConfig:
    """The validated fleet config, or a one-line `ConfigError` naming the file (exit 2)."""
    if path == DEFAULT_CONFIG and not path.exists() and not os.environ.get(CONFIG_ENV):
        raise ConfigError(f"{path}: no such file (give --config FILE or set {CONFIG_ENV})")
    return load_config(path)


def open_gateway(fleet: FleetConfig, config_path: Path) -> AzureGateway:
    """An `AzureGateway` for the fleet; a credential that cannot be built names the config file."""
    from orchestrator.arm import AzureGateway

    try:
        return AzureGateway(fleet)
    except ConfigError as exc:
        raise ConfigError(f"{config_path}: {exc}") from None


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh event loop; pending tasks are cancelled and the loop closed."""
    box: list[T] = []

    async def main() -> None:
        box.append(await coro)

    # The main task returns None on purpose: Python 3.11's asyncio.run formats the main task's repr
    # (result included) when it restores the SIGINT handler, which for a 10,000-app snapshot costs
    # seconds of CPU.
    asyncio.run(main())
    return box[0]


def check_run_id(value: str | None) -> str | None:
    """A RUN argument is a run id as the journal makes them, or one line and exit 2."""
    from orchestrator.journal import RUN_ID

    if value is not None and not RUN_ID.fullmatch(value):
        raise InputError(
            f"RUN '{clean(value, single_line=True)}': not a run id "
            "(e.g. 20260101T020000Z-1a2b3c; `orchestrator runs` lists them)"
        )
    return value


def format_option(default: str) -> Any:
    """`--format/-f`; annotate the parameter with a `Literal[...]` of the accepted formats."""
    return typer.Option(default, "--format", "-f", help="Output format.")
