"""`orchestrator notifications serve`: the aiohttp receiver of Azure's managed-application webhook.

POST /resource?{param}={secret}: the secret is compared in constant time (401, nothing stored); the
body is size-capped (413) and validated (400 with a one-line reason); the event is committed to the
registry **before** the 200 (503 if storage fails, so Azure retries). Concurrent requests share one
transaction (group commit): each still gets its 200 only after the commit that holds its event.
GET /healthz answers 200 while the registry is writable. One JSON log line per event; the query
string (the secret) is never logged, so aiohttp's access log is off.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ssl
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import InvalidEvent, Notification, parse_event

log = structlog.get_logger("orchestrator.notifications")

DEFAULT_PARAM = "sig"
DEFAULT_MAX_BODY = 64 * 1024  # a real event is well under 2 KiB
MAX_BATCH = 512

Confirm = Callable[[Notification], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class ReceiverSettings:
    secret: str
    param: str = DEFAULT_PARAM
    max_body: int = DEFAULT_MAX_BODY
    shutdown_timeout: float = 10.0


class StorageFailed(Exception):
    pass


class GroupCommit:
    """Queues events from concurrent requests and commits them together in a worker thread."""

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._queue: asyncio.Queue[tuple[Notification, asyncio.Future[bool]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """After the server stopped taking requests: commit what is queued, then end."""
        if self._task is None:
            return
        await self._queue.join()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def store(self, event: Notification) -> bool:
        """True if new, False if a duplicate; raises StorageFailed when the commit failed."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await asyncio.to_thread(self._registry.record_many, [e for e, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StorageFailed(str(exc)))
            else:
                for (_, future), new in zip(batch, results, strict=True):
                    if not future.done():
                        future.set_result(new)
            finally:
                for _ in batch:
                    self._queue.task_done()


def _reply(status: int, reason: str) -> web.Response:
    return web.json_response({"status": status, "reason": reason}, status=status)


class _Handlers:
    """The receiver's routes, sharing its settings, store and confirmation tasks."""

    def __init__(self, settings: ReceiverSettings, registry: Registry, confirm: Confirm | None) -> None:
        self.settings = settings
        self.registry = registry
        self.store = GroupCommit(registry)
        self.confirm = confirm
        self.confirmations: set[asyncio.Task[None]] = set()
        self._secret = settings.secret.encode()

    async def _event(self, request: web.Request) -> Notification | web.Response:
        """The request's event, or the refusal to send (401, 413, 400); nothing is stored."""
        settings = self.settings
        given = request.query.get(settings.param, "")
        if not hmac.compare_digest(given.encode(), self._secret):
            log.warning("notification refused", status=401, reason="wrong or missing secret")
            return _reply(401, f"missing or wrong {settings.param} parameter")
        if request.content_length is not None and request.content_length > settings.max_body:
            log.warning("notification refused", status=413, size=request.content_length)
            return _reply(413, f"body larger than {settings.max_body} bytes")
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            log.warning("notification refused", status=413)
            return _reply(413, f"body larger than {settings.max_body} bytes")
        try:
            return parse_event(raw)
        except InvalidEvent as exc:
            log.warning("notification refused", status=400, reason=str(exc))
            return _reply(400, str(exc))

    async def resource(self, request: web.Request) -> web.Response:
        event = await self._event(request)
        if isinstance(event, web.Response):
            return event
        fields = {
            "app": event.application_id,
            "event_type": event.event_type,
            "provisioning_state": event.provisioning_state,
            "event_time": event.event_time.isoformat(),
        }
        try:
            new = await self.store.store(event)
        except StorageFailed as exc:
            log.error("notification not stored", status=503, cause=str(exc), **fields)
            return _reply(503, "cannot store the event now; retry")
        log.info("notification stored" if new else "notification duplicate", status=200, **fields)
        if new and self.confirm is not None:
            task = asyncio.create_task(self.confirm(event))
            self.confirmations.add(task)
            task.add_done_callback(self.confirmations.discard)
        return _reply(200, "stored" if new else "duplicate")

    async def healthz(self, _: web.Request) -> web.Response:
        try:
            await asyncio.to_thread(self.registry.last_seq)
        except Exception as exc:
            return _reply(503, f"registry unavailable: {exc}")
        return _reply(200, "ok")

    async def on_startup(self, _: web.Application) -> None:
        self.store.start()

    async def on_shutdown(self, _: web.Application) -> None:
        await self.store.stop()
        if self.confirmations:
            await asyncio.wait(set(self.confirmations), timeout=self.settings.shutdown_timeout)


def build_app(
    settings: ReceiverSettings, registry: Registry, *, confirm: Confirm | None = None
) -> web.Application:
    handlers = _Handlers(settings, registry, confirm)
    app = web.Application(client_max_size=settings.max_body)
    app.router.add_post("/resource", handlers.resource)
    app.router.add_get("/healthz", handlers.healthz)
    app.on_startup.append(handlers.on_startup)
    app.on_cleanup.append(handlers.on_shutdown)
    return app


def tls_context(certificate: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certificate, key)
    return context


@dataclass(frozen=True)
class Listening:
    runner: web.AppRunner
    url: str


async def start(
    app: web.Application,
    host: str,
    port: int,
    *,
    tls: ssl.SSLContext | None = None,
    shutdown_timeout: float = 10.0,
) -> Listening:
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=tls)
    await site.start()
    server = site._server
    assert server is not None
    sockets = getattr(server, "sockets", None) or []
    bound = sockets[0].getsockname()[1] if sockets else port
    shown = f"[{host}]" if ":" in host else host
    return Listening(runner, f"{'https' if tls else 'http'}://{shown}:{bound}")
