"""`orchestrator notifications serve|list|show|export`: the webhook receiver and its registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import ssl
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from orchestrator.cli import _common, options
from orchestrator.config import FleetConfig
from orchestrator.errors import InputError
from orchestrator.notifications import export, receiver
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.secret import DEFAULT_ENV, load_secret

ExportFormat = Literal["json", "csv"]
ListFormat = Literal["table", "json", "csv"]

notifications = typer.Typer(
    help="Receive the managed-application notification webhook and keep the registry of instances.",
    no_args_is_help=True,
)


def _registry(path: Path, *, create: bool = False) -> Registry:
    if create:
        return Registry(path)
    found = Registry.existing(path)
    if found is None:
        raise InputError(f"{path}: no notification registry here (run `orchestrator notifications serve`)")
    return found


@notifications.command("serve")
def serve(
    host: str = typer.Option("0.0.0.0", help="Address to listen on."),  # noqa: S104 - a server
    port: int = typer.Option(8443, help="Port; 0 picks a free one."),
    certificate: Path | None = typer.Option(None, "--cert", help="TLS certificate chain (PEM)."),
    key: Path | None = typer.Option(None, "--key", help="TLS private key (PEM)."),
    plain_http: bool = typer.Option(
        False, "--plain-http", help="Serve plain HTTP (only behind a TLS-terminating proxy or ingress)."
    ),
    secret_env: str = typer.Option(DEFAULT_ENV, help="Environment variable holding the webhook secret."),
    secret_file: Path | None = typer.Option(None, help="File holding the webhook secret (mode 0600)."),
    param: str = typer.Option(receiver.DEFAULT_PARAM, help="Query parameter that carries the secret."),
    max_body: int = typer.Option(receiver.DEFAULT_MAX_BODY, min=1024, help="Largest body accepted (bytes)."),
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    confirm: bool = typer.Option(
        False,
        "--confirm/--no-confirm",
        help="Read each app back by id (needs --config) and record it; a PUT event for an app awaiting "
        "its customer verifies it at once (as `orchestrator verify`).",
    ),
    config: options.ConfigPath = options.DEFAULT_CONFIG,
    ready_file: Path | None = typer.Option(None, help="Write one JSON line {url} once listening."),
    log_format: options.LogFormatChoice = typer.Option("json", "--log-format", help="console or json."),
    log_level: options.LogLevelChoice = typer.Option(
        "info", "--log-level", help="Least severe log level shown on stderr."
    ),
) -> None:
    """Serve POST /resource?sig=… and GET /healthz until SIGINT/SIGTERM."""
    options.setup_logging(log_format, log_level)
    if (certificate is None) != (key is None):
        raise InputError("--cert and --key: give both (or --plain-http behind a TLS proxy)")
    if certificate is None and not plain_http:
        raise InputError("--cert/--key: HTTPS needs both; or --plain-http behind a TLS-terminating proxy")
    if certificate is not None and plain_http:
        raise InputError("--plain-http: not with --cert/--key")
    secret = load_secret(env=secret_env, file=secret_file)
    tls = None
    if certificate is not None and key is not None:
        try:
            tls = receiver.tls_context(certificate, key)
        except (OSError, ValueError) as exc:
            raise InputError(f"--cert/--key: cannot load: {exc}") from None
    fleet = options.load_fleet(config) if confirm else None
    registry = _registry(journal_path, create=True)
    settings = receiver.ReceiverSettings(secret=secret, param=param, max_body=max_body)
    try:
        options.run_async(_serve(settings, registry, host, port, tls, fleet, config, ready_file))
    finally:
        registry.close()


async def _serve(
    settings: receiver.ReceiverSettings,
    registry: Registry,
    host: str,
    port: int,
    tls: ssl.SSLContext | None,
    fleet: FleetConfig | None,
    config: Path,
    ready_file: Path | None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        confirm = None
        if fleet is not None:
            from orchestrator.notifications.confirm import Confirmer
            from orchestrator.verify import AwaitingVerifier

            gateway = await stack.enter_async_context(options.open_gateway(fleet, config))
            verifier = AwaitingVerifier(registry.path, gateway)
            stack.callback(verifier.close)
            confirm = Confirmer(fleet, gateway, registry, then=verifier)
        app = receiver.build_app(settings, registry, confirm=confirm)
        listening = await receiver.start(app, host, port, tls=tls)
        receiver.log.info("notification receiver listening", url=listening.url, journal=str(registry.path))
        if ready_file is not None:
            tmp = ready_file.with_suffix(ready_file.suffix + ".tmp")
            tmp.write_text(json.dumps({"url": listening.url}) + "\n", encoding="utf-8")
            tmp.replace(ready_file)
        try:
            await stop.wait()
        finally:
            receiver.log.info("notification receiver stopping")
            await listening.runner.cleanup()


@notifications.command("list")
def list_cmd(
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    fmt: Annotated[ListFormat, options.FORMAT] = "table",
    include_deleted: bool = typer.Option(True, "--deleted/--no-deleted", help="Show deleted instances."),
) -> None:
    """Every instance the notifications told of: version, last state, first and last seen."""
    with _registry(journal_path) as registry:
        instances = registry.instances(include_deleted=include_deleted)
    if fmt == "json":
        _common.emit(export.to_json(instances), json=True)
        return
    if fmt == "csv":
        _common.emit(export.to_csv(instances))
        return
    table = Table(title=f"{len(instances)} instances", title_justify="left", width=_common.wide(160))
    for column in ("app", "kind", "version", "last", "event time", "first seen", "deleted", "error"):
        table.add_column(column)
    for inst in instances:
        row = export.instance_row(inst)
        table.add_row(
            *(
                str(v)
                for v in (
                    inst.app_id.rsplit("/", 1)[-1],
                    inst.kind,
                    row["version"],
                    f"{inst.last_event_type} {inst.last_state}",
                    row["last_event_time"],
                    row["first_seen"],
                    "yes" if inst.deleted else "",
                    row["error"],
                )
            )
        )
    _common.console.print(table)


@notifications.command("show")
def show_cmd(
    app_id: str = typer.Argument(..., metavar="APP", help="The application's resource id."),
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    fmt: Annotated[Literal["table", "json"], options.FORMAT] = "table",
) -> None:
    """One instance and its events in eventTime order, with their confirmations."""
    with _registry(journal_path) as registry:
        inst = registry.instance(app_id)
        if inst is None:
            raise InputError(f"APP: the registry has no application {app_id}")
        events = registry.events(app_id)
    if fmt == "json":
        body = {"instance": export.instance_json(inst), "events": [export.event_json(e) for e in events]}
        _common.emit(json.dumps(body, indent=2) + "\n", json=True)
        return
    for key, value in export.instance_row(inst).items():
        _common.console.print(f"{key:>16}: {value}", highlight=False)
    table = Table(title="events", title_justify="left", width=_common.wide(140))
    for column in ("event time", "event", "state", "received", "confirmation", "error"):
        table.add_column(column)
    for stored in events:
        ev = stored.event
        table.add_row(
            *(
                v
                for v in (
                    ev.event_time.isoformat(),
                    ev.event_type,
                    ev.provisioning_state,
                    stored.received_at.isoformat(),
                    f"{stored.confirm_outcome}: {stored.confirm_detail}" if stored.confirm_outcome else "",
                    f"{ev.error_code}: {ev.error_message}" if ev.error_code else "",
                )
            )
        )
    _common.console.print(table)


@notifications.command("export")
def export_cmd(
    journal_path: options.JournalPath = options.DEFAULT_JOURNAL,
    fmt: Annotated[ExportFormat, options.FORMAT] = "json",
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of stdout."),
) -> None:
    """The registry as JSON or CSV."""
    with _registry(journal_path) as registry:
        instances = registry.instances()
    text = export.to_json(instances) if fmt == "json" else export.to_csv(instances)
    if out is not None:
        out.write_text(text, encoding="utf-8")
    else:
        _common.emit(text, json=fmt == "json")
