"""The receiver over real sockets: secret, schema, size, storage failure, duplicates, burst, TLS, logs."""

from __future__ import annotations

import asyncio
import io
import json
import ssl
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
import trustme

from orchestrator import logs
from orchestrator.notifications import receiver
from orchestrator.notifications.registry import Registry
from orchestrator.notifications.schema import Notification
from tests.notifications.events import app_id, raw

SECRET = "s3cr3t-webhook-value-0123456789"


class Server:
    def __init__(self, url: str, registry: Registry, runner: object) -> None:
        self.url = url
        self.registry = registry
        self.runner = runner

    def resource(self, secret: str | None = SECRET) -> str:
        return f"{self.url}/resource" + (f"?sig={secret}" if secret is not None else "")


async def _start(
    tmp_path: Path, *, tls: ssl.SSLContext | None = None, registry: Registry | None = None
) -> tuple[Server, receiver.Listening]:
    registry = registry or Registry(tmp_path / "journal.db")
    app = receiver.build_app(receiver.ReceiverSettings(secret=SECRET, max_body=16 * 1024), registry)
    listening = await receiver.start(app, "127.0.0.1", 0, tls=tls)
    return Server(listening.url, registry, listening.runner), listening


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv, listening = await _start(tmp_path)
    yield srv
    await listening.runner.cleanup()
    srv.registry.close()


async def _post(session: aiohttp.ClientSession, url: str, data: bytes) -> tuple[int, str]:
    async with session.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
        return resp.status, (await resp.json())["reason"]


async def test_refusals_store_nothing_and_the_receiver_keeps_serving(server: Server) -> None:
    async with aiohttp.ClientSession() as session:
        assert await _post(session, server.resource(None), raw()) == (401, "missing or wrong sig parameter")
        assert (await _post(session, server.resource("wrong"), raw()))[0] == 401
        assert (await _post(session, server.resource(SECRET + "x"), raw()))[0] == 401
        assert await _post(session, server.resource(), b"{") == (400, "body is not JSON")
        status, reason = await _post(session, server.resource(), raw(event_type="PATCH", state="Failed"))
        assert status == 400 and "not one of PATCH's" in reason
        assert (await _post(session, server.resource(), b"{" + b" " * 100_000 + b"}"))[0] == 413

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap still holds
            for _ in range(40):
                yield b" " * 1024

        async with session.post(server.resource(), data=chunks()) as resp:
            assert resp.status == 413
        assert server.registry.count_events() == 0
        assert await _post(session, server.resource(), raw()) == (200, "stored")
        assert await _post(session, server.resource(), raw()) == (200, "duplicate")
        async with session.get(f"{server.url}/healthz") as resp:
            assert resp.status == 200
        async with session.get(server.resource()) as resp:
            assert resp.status == 405
    assert server.registry.count_events() == 1


async def test_storage_failure_answers_503_so_azure_retries(server: Server, tmp_path: Path) -> None:
    real = server.registry.record_many
    calls = 0

    def failing(events: Sequence[Notification]) -> list[bool]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return real(events)

    server.registry.record_many = failing  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as session:
        assert (await _post(session, server.resource(), raw()))[0] == 503
        assert server.registry.count_events() == 0
        assert await _post(session, server.resource(), raw()) == (200, "stored")
    assert server.registry.count_events() == 1


async def test_a_burst_of_2000_events_is_all_stored(server: Server) -> None:
    bodies = [raw(n=n, seconds=n % 7) for n in range(2000)]
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        statuses = await asyncio.gather(*(_post(session, server.resource(), b) for b in bodies))
    assert {s for s, _ in statuses} == {200}
    assert server.registry.count_events() == 2000
    assert len(server.registry.instances()) == 2000


async def test_https_with_a_certificate_and_no_secret_in_logs(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    stream = io.StringIO()
    logs.configure("json", level="debug", stream=stream)
    srv, listening = await _start(tmp_path, tls=receiver.tls_context(cert_file, key_file))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    try:
        assert srv.url.startswith("https://")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client)) as session:
            assert await _post(session, srv.resource(), raw()) == (200, "stored")
            assert (await _post(session, srv.resource("nope"), raw()))[0] == 401
    finally:
        await listening.runner.cleanup()
        srv.registry.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    stored = [line for line in lines if line["event"] == "notification stored"]
    assert stored and stored[0]["app"] == app_id(1) and stored[0]["provisioning_state"] == "Succeeded"
    assert SECRET not in stream.getvalue()


async def test_graceful_shutdown_answers_what_it_accepted(tmp_path: Path) -> None:
    srv, listening = await _start(tmp_path)
    real = srv.registry.record_many

    def slow(events: Sequence[Notification]) -> list[bool]:
        time.sleep(0.3)
        return real(events)

    srv.registry.record_many = slow  # type: ignore[method-assign]
    async with aiohttp.ClientSession() as session:
        pending = asyncio.ensure_future(_post(session, srv.resource(), raw()))
        await asyncio.sleep(0.1)
        await listening.runner.cleanup()  # SIGTERM does this
        assert await pending == (200, "stored")
    assert srv.registry.count_events() == 1
    srv.registry.close()
