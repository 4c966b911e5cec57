"""`orchestrator emulator serve` (and `python -m orchestrator.emulator serve`).

The options named like `Settings` fields become the runtime's settings (Settings.of), as
testing.run_emulator's arguments do; Settings.argv gives them back as these flags."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from orchestrator.emulator.lifecycle import build_runtime, serve
from orchestrator.emulator.runtime import Settings

app = typer.Typer(help="A local HTTPS emulator of Entra ID and the ARM routes the orchestrator uses.")

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(help="Port; 0 picks a free one.")]
Fleet = Annotated[Path | None, typer.Option(help="Fleet JSON file (same format as --state).")]
Generate = Annotated[
    str | None,
    typer.Option(
        help="Generate a fleet: tenants=T,subscriptions=S,apps=N (default tenants=3,subscriptions=2,apps=4); "
        "add access=direct:2,delegated:3,publisher:2,locked:1 for a mix of access paths."
    ),
]
Seed = Annotated[int, typer.Option(help="Seed for the generator and for fault probabilities.")]
TimeScale = Annotated[float, typer.Option(help="Multiply every emulated duration (0.01: 120 s takes 1.2 s).")]
Faults = Annotated[Path | None, typer.Option(help="Fault rules file (JSON or TOML).")]
Throttle = Annotated[bool, typer.Option("--throttle/--no-throttle", help="ARM-like token-bucket limits.")]
StateFile = Annotated[
    Path | None,
    typer.Option("--state", help="Persist state here: loaded at start, saved on exit and every 30 s."),
]
StateDir = Annotated[Path, typer.Option(help="Where the local CA lives.")]
WriteConfig = Annotated[
    Path | None, typer.Option(help="Write an orchestrator fleet config (TOML) for this emulator.")
]
PageSize = Annotated[int, typer.Option(min=1, help="Items per page of every list.")]
LatencyMs = Annotated[float, typer.Option(min=0, help="Latency added to every request.")]
OperationSeconds = Annotated[
    float, typer.Option(min=0, help="Duration of an application write, before scaling.")
]
TokenLifetime = Annotated[float, typer.Option(min=1, help="Access token lifetime in seconds (not scaled).")]
ReadyFile = Annotated[
    Path | None, typer.Option(help="Write a JSON line (url, ca_bundle, admin_url) once listening.")
]
NotifyUrl = Annotated[
    str | None,
    typer.Option(
        help="Notification endpoint (e.g. https://host:8443/?sig=SECRET) set on every definition and "
        "offer; events go to it + /resource. With --write-config the sig goes to "
        "secrets/notifications.secret."
    ),
]
Announce = Annotated[
    bool, typer.Option(help="With --notify-url: send PUT Succeeded for every app of the fleet at start.")
]


@app.callback()
def _root() -> None:
    """Keep `serve` a sub-command even though it is the only one."""


@app.command("serve")
def serve_cmd(
    host: Host = "127.0.0.1",
    port: Port = 0,
    fleet: Fleet = None,
    generate: Generate = None,
    seed: Seed = 1,
    time_scale: TimeScale = 1.0,
    faults: Faults = None,
    throttle: Throttle = False,
    state_file: StateFile = None,
    state_dir: StateDir = Path(".state/emulator"),
    write_config: WriteConfig = None,
    page_size: PageSize = 10,
    latency_ms: LatencyMs = 0.0,
    operation_seconds: OperationSeconds = 120.0,
    token_lifetime: TokenLifetime = 3600.0,
    ready_file: ReadyFile = None,
    notify_url: NotifyUrl = None,
    announce: Announce = False,
) -> None:
    """Run the emulator in the foreground until SIGINT/SIGTERM."""
    settings = Settings.of(locals())
    if fleet is not None and generate is not None:
        raise typer.BadParameter("give --fleet or --generate, not both")
    if time_scale <= 0:
        raise typer.BadParameter("--time-scale must be > 0")
    try:
        rt = build_runtime(
            settings, fleet=fleet, generate_spec=generate, faults_file=faults, notify_url=notify_url
        )
    except (OSError, ValueError, KeyError) as exc:
        typer.echo(f"emulator: cannot start: {exc}", err=True)
        raise typer.Exit(2) from None
    if notify_url is not None and not notify_url.startswith(("http://", "https://")):
        raise typer.BadParameter("--notify-url must be http(s)://…")
    asyncio.run(serve(rt, host, port, ready_file=ready_file, config_file=write_config, announce=announce))
