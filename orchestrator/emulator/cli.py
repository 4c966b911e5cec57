"""`orchestrator emulator serve` (and `python -m orchestrator.emulator serve`)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from orchestrator.emulator.lifecycle import build_runtime, serve
from orchestrator.emulator.runtime import Settings

app = typer.Typer(help="A local HTTPS emulator of Entra ID and the ARM routes the orchestrator uses.")


@app.callback()
def _root() -> None:
    """Keep `serve` a sub-command even though it is the only one."""


@app.command("serve")
def serve_cmd(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(0, help="Port; 0 picks a free one."),
    fleet: Path | None = typer.Option(None, help="Fleet JSON file (same format as --state)."),
    generate: str | None = typer.Option(
        None,
        help="Generate a fleet: tenants=T,subscriptions=S,apps=N (default tenants=3,subscriptions=2,apps=4); "
        "add access=direct:2,delegated:3,publisher:2,locked:1 for a mix of access paths.",
    ),
    seed: int = typer.Option(1, help="Seed for the generator and for fault probabilities."),
    time_scale: float = typer.Option(1.0, help="Multiply every emulated duration (0.01: 120 s takes 1.2 s)."),
    faults: Path | None = typer.Option(None, help="Fault rules file (JSON or TOML)."),
    throttle: bool = typer.Option(False, "--throttle/--no-throttle", help="ARM-like token-bucket limits."),
    state: Path | None = typer.Option(
        None, help="Persist state here: loaded at start, saved on exit and every 30 s."
    ),
    state_dir: Path = typer.Option(Path(".state/emulator"), help="Where the local CA lives."),
    write_config: Path | None = typer.Option(
        None, help="Write an orchestrator fleet config (TOML) for this emulator."
    ),
    page_size: int = typer.Option(10, min=1, help="Items per page of every list."),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency added to every request."),
    operation_seconds: float = typer.Option(
        120.0, min=0, help="Duration of an application write, before scaling."
    ),
    token_lifetime: float = typer.Option(
        3600.0, min=1, help="Access token lifetime in seconds (not scaled)."
    ),
    ready_file: Path | None = typer.Option(
        None, help="Write a JSON line (url, ca_bundle, admin_url) once listening."
    ),
    notify_url: str | None = typer.Option(
        None,
        help="Notification endpoint (e.g. https://host:8443/?sig=SECRET) set on every definition and "
        "offer; events go to it + /resource. With --write-config the sig goes to "
        "secrets/notifications.secret.",
    ),
    announce: bool = typer.Option(
        False, help="With --notify-url: send PUT Succeeded for every app of the fleet at start."
    ),
) -> None:
    """Run the emulator in the foreground until SIGINT/SIGTERM."""
    if fleet is not None and generate is not None:
        raise typer.BadParameter("give --fleet or --generate, not both")
    if time_scale <= 0:
        raise typer.BadParameter("--time-scale must be > 0")
    settings = Settings(
        time_scale=time_scale,
        page_size=page_size,
        latency_ms=latency_ms,
        throttle=throttle,
        seed=seed,
        operation_seconds=operation_seconds,
        token_lifetime=token_lifetime,
        state_file=state,
        state_dir=state_dir,
    )
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
