"""The emulator's notification sender: the documented events per write, and Azure's retry behaviour."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator.notify import resource_url
from orchestrator.emulator.testing import EmulatorHandle
from tests.emulator.conftest import raw, tenant_of, token_for

API = "api-version=2023-12-01-preview"


class Stub:
    """A webhook receiver whose answers a test scripts: `answers` is consumed first, then 200."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.answers: list[int] = []
        self.always: int | None = None
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stub.received.append((self.path, body))
                status = stub.always or (stub.answers.pop(0) if stub.answers else 200)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?sig=abc"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    s = Stub()
    yield s
    s.close()


def _wait(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def _settled(emu: EmulatorHandle, timeout: float = 120) -> dict[str, Any]:
    # One snapshot per check: an operation that finishes between two reads queues its event after
    # the first read saw nothing pending.
    snapshot: dict[str, Any] = {}

    def quiet() -> bool:
        snapshot.update(emu.stats())
        return bool(snapshot["notifications"]["pending"] == 0 and snapshot["operations_in_flight"] == 0)

    _wait(quiet, timeout)
    result: dict[str, Any] = snapshot["notifications"]
    return result


def test_resource_url_keeps_the_query() -> None:
    assert (
        resource_url("https://isv.example:1214/hooks?sig=x")
        == "https://isv.example:1214/hooks/resource?sig=x"
    )
    assert resource_url("https://isv.example?sig=x") == "https://isv.example/resource?sig=x"


def test_put_patch_delete_send_the_documented_events(emulator: EmulatorHandle, stub: Stub) -> None:
    fleet = emulator.fleet()
    tenant = tenant_of(emulator, fleet, 0)
    token = token_for(emulator, tenant)
    app = next(
        a
        for a in fleet["applications"]
        if a["kind"] == "ServiceCatalog" and f"/{tenant.subscriptions[0]}/" in a["id"]
    )
    emulator.set_notification_endpoint(stub.url)
    status, _, body = raw(emulator, "GET", f"{app['id']}?{API}", token)
    assert status == 200
    body["properties"]["applicationDefinitionId"] = fleet["publisher"]["definitions"]["app-v2"]
    assert raw(emulator, "PUT", f"{app['id']}?{API}", token, body)[0] == 200
    _settled(emulator)
    assert raw(emulator, "PATCH", f"{app['id']}?{API}", token, {"tags": {"a": "b"}})[0] == 202
    _settled(emulator)
    assert raw(emulator, "DELETE", f"{app['id']}?{API}", token)[0] == 202
    stats = _settled(emulator)
    events = [(b["eventType"], b["provisioningState"]) for _, b in stub.received]
    assert events == [
        ("PUT", "Accepted"),
        ("PUT", "Succeeded"),
        ("PATCH", "Succeeded"),
        ("DELETE", "Deleting"),
        ("DELETE", "Deleted"),
    ]
    assert {path for path, _ in stub.received} == {"/hook/resource?sig=abc"}
    assert all(b["applicationId"] == body["id"] for _, b in stub.received)
    assert stub.received[1][1]["applicationDefinitionId"] == fleet["publisher"]["definitions"]["app-v2"]
    times = [b["eventTime"] for _, b in stub.received]
    assert times == sorted(times) and all(t.endswith("Z") for t in times)
    assert stats == {**stats, "events": 5, "delivered": 5, "attempts": 5, "retries": 0}
    # The secret in the endpoint is masked in the admin state dump.
    assert "sig=abc" not in json.dumps(emulator.state())


def test_retries_5xx_429_until_200_and_stops_on_other_answers(emulator: EmulatorHandle, stub: Stub) -> None:
    emulator.set_time_scale(0.001)  # backoff 5 s → 5 ms, doubling
    stub.answers = [503, 429, 500]
    emulator.set_notification_endpoint(stub.url)
    assert emulator.set_notification_endpoint(stub.url, announce=True) == len(
        emulator.fleet()["applications"]
    )
    stats = _settled(emulator)
    n = stats["events"]
    assert stats["delivered"] == n and stats["retries"] == 3 and stats["attempts"] == n + 3
    assert stats["answers"] == {"200": n, "429": 1, "500": 1, "503": 1}

    emulator.reset()
    emulator.set_time_scale(0.001)
    stub.received.clear()
    stub.always = 401
    emulator.set_notification_endpoint(stub.url, announce=True)
    stats = _settled(emulator)
    assert stats["rejected"] == stats["events"] == stats["attempts"] and stats["delivered"] == 0


def test_gives_up_after_the_scaled_ten_hours(emulator: EmulatorHandle, stub: Stub) -> None:
    scale = 0.0002  # 10 h → 7.2 s; the first backoff 5 s → 1 ms, doubling up to 600 s → 120 ms
    emulator.set_time_scale(scale)
    stub.always = 503
    started = time.monotonic()
    emulator.set_notification_endpoint(stub.url, announce=True)
    # About 65 attempts per event (10 h of backoff doubling to 600 s) on an idle machine; on a loaded one
    # each attempt's real time eats into the scaled 10 hours and far fewer fit, so the check is only that
    # every event was retried, never a count that depends on the machine's speed.
    stats = _settled(emulator)
    elapsed = time.monotonic() - started
    assert stats["gave_up"] == stats["events"] > 0 and stats["delivered"] == 0
    assert stats["attempts"] >= 2 * stats["events"]  # kept retrying
    assert elapsed >= 10 * 3600 * scale - 0.05  # not before the (scaled) 10 hours


def test_notify_url_goes_on_every_definition_and_offer_and_its_secret_to_a_0600_file(tmp_path: Path) -> None:
    from orchestrator.emulator.lifecycle import build_runtime
    from orchestrator.emulator.notify import endpoint_of, endpoint_secret
    from orchestrator.emulator.runtime import Settings
    from orchestrator.emulator.writeconfig import write_notification_secret

    rt = build_runtime(
        Settings(), generate_spec="tenants=2,subscriptions=1,apps=3", notify_url="https://r.example/?sig=s3"
    )
    assert all(endpoint_of(rt, app) == "https://r.example/?sig=s3" for app in rt.state.applications.values())
    assert endpoint_secret(rt.state) == "s3"
    path = write_notification_secret(tmp_path / "fleet.toml", "s3")
    assert path.read_text() == "s3" and (path.stat().st_mode & 0o777) == 0o600
