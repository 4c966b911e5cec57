"""Options every command shares, defined once, and the helpers that go with them (the fleet config,
logging, running async work).

Options are `typing.Annotated` aliases; the default stays in the signature:

    def my_cmd(
        config: options.ConfigPath = options.DEFAULT_CONFIG,
        log_format: options.LogFormat = "console",
        log_level: options.LogLevel = "warning",
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
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

import typer

from orchestrator import logs
from orchestrator.config import FleetConfig, load_config
from orchestrator.errors import ConfigError, InputError
from orchestrator.journal import DEFAULT_PATH, ENV_VAR
from orchestrator.untrusted import clean

if TYPE_CHECKING:
    from orchestrator.arm import AzureGateway

T = TypeVar("T")

CONFIG_ENV = "ORCHESTRATOR_CONFIG"
DEFAULT_CONFIG = Path("fleet.toml")
JOURNAL_ENV = ENV_VAR
DEFAULT_JOURNAL = DEFAULT_PATH
LogFormatChoice = Literal["console", "json"]
LogLevelChoice = Literal["debug", "info", "warning", "error"]


ConfigPath = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        envvar=CONFIG_ENV,
        help=f"Fleet config file (TOML). Default: ${CONFIG_ENV}, else ./fleet.toml.",
        show_default=False,
    ),
]
JournalPath = Annotated[
    Path,
    typer.Option(
        "--journal",
        envvar=JOURNAL_ENV,
        help=f"Journal file (SQLite). Default: ${JOURNAL_ENV}, else {DEFAULT_JOURNAL}.",
        show_default=False,
    ),
]
RegistryJournal = Annotated[
    Path,
    typer.Option(
        "--journal",
        envvar=JOURNAL_ENV,
        help=f"Journal holding the notification registry. Default: ${JOURNAL_ENV}, else {DEFAULT_JOURNAL}.",
        show_default=False,
    ),
]
LogFormat = Annotated[
    LogFormatChoice,
    typer.Option("--log-format", help="Logs on stderr: console (readable) or json (one object per line)."),
]
LogLevel = Annotated[
    LogLevelChoice, typer.Option("--log-level", help="Least severe log level shown on stderr.")
]

# The options of the commands that run a plan (apply, resume, rollback).
Concurrency = Annotated[
    int | None,
    typer.Option(
        "--concurrency",
        help="Safety limit on apps in progress at once, all tenants together (default: the config's, "
        "else none: ARM paces).",
    ),
]
PerSubscription = Annotated[
    int | None,
    typer.Option(
        "--per-subscription",
        help="Safety limit on apps in progress in one subscription (ARM throttles writes per "
        "subscription; default: the config's, else none).",
    ),
]
FailureTolerance = Annotated[
    str,
    typer.Option(
        "--failure-tolerance",
        help="Failures (failed or unverified apps) a wave may have before the rollout stops: N or P%.",
    ),
]
Bake = Annotated[float, typer.Option("--bake", help="Seconds to wait after a wave before starting the next.")]
RespectWindows = Annotated[
    bool,
    typer.Option(
        "--respect-windows",
        help="Start an app only while its tenant's maintenance window is open; the others wait "
        "(run the same command again later).",
    ),
]
Need = Annotated[
    int,
    typer.Option(
        "--need", help="With --respect-windows: minutes the window must stay open for an app to start."
    ),
]
Yes = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")
]
TIME_SCALE_ENV = "ORCHESTRATOR_TIME_SCALE"


def _positive(value: float, env: str) -> float:
    if value <= 0:
        raise typer.BadParameter(f"must be positive (got {value:g}; ${env} sets it too)")
    return value


TimeScale = Annotated[
    float,
    typer.Option(
        "--time-scale",
        envvar=TIME_SCALE_ENV,
        callback=lambda value: _positive(value, TIME_SCALE_ENV),
        help="Multiply the executor's own waits (retries, verification, pacing) by this factor: the "
        "emulator's --time-scale, for a time-scaled emulator.",
        show_default=False,
    ),
]


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


FORMAT = typer.Option("--format", "-f", help="Output format.")
"""`--format/-f`: `Annotated[Literal[...accepted formats], options.FORMAT]`."""
