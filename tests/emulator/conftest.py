"""Fixtures: one emulator per test module (reset before each test) and SDK clients wired to it."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import pytest
from azure.mgmt.managedapplications import types as wire

from orchestrator.emulator.testing import EmulatorHandle, run_emulator

# Small pages so paging is always exercised; 7 apps per subscription spread over 3 pages.
FLEET = "tenants=3,subscriptions=4,apps=7"
PAGE_SIZE = 3


T = TypeVar("T")
C = TypeVar("C")


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorHandle]:
    with run_emulator(generate=FLEET, page_size=PAGE_SIZE, time_scale=0.005) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _fresh(request: pytest.FixtureRequest) -> None:
    if "emulator" in request.fixturenames:
        request.getfixturevalue("emulator").reset()


@dataclass
class Tenant:
    id: str
    name: str
    client_id: str
    secret: str
    subscriptions: list[str]
    raw: dict[str, Any]


@pytest.fixture
def fleet(emulator: EmulatorHandle) -> dict[str, Any]:
    return emulator.fleet()


def tenant_of(emu: EmulatorHandle, fleet: dict[str, Any], index: int = 0) -> Tenant:
    t = fleet["tenants"][index]
    return Tenant(t["id"], t["name"], t["client_id"], emu.secret_for(t["id"]), t["subscriptions"], t)


def signed_in(emu: EmulatorHandle, fleet: dict[str, Any], index: int = 0) -> tuple[Tenant, str, str]:
    """A customer tenant, an ARM token for it and its first subscription."""
    tenant = tenant_of(emu, fleet, index)
    return tenant, token_for(emu, tenant), tenant.subscriptions[0]


def publisher_of(emu: EmulatorHandle, fleet: dict[str, Any]) -> Tenant:
    p = fleet["publisher"]
    return Tenant(p["id"], p["name"], p["client_id"], emu.secret_for(p["id"]), p["subscriptions"], p)


def present(value: T | None) -> T:
    """The SDK models type every field as optional: where the emulator must have filled one, check it."""
    assert value is not None
    return value


def app_body(body: dict[str, Any]) -> wire.Application:
    """Our request bodies are plain JSON built from what the emulator returned (some deliberately
    invalid); the SDKs type them as TypedDicts, so they are passed through as the wire shape."""
    return cast(wire.Application, body)


def patch_body(body: dict[str, Any]) -> wire.ApplicationPatchable:
    return cast(wire.ApplicationPatchable, body)


def client_kwargs(emu: EmulatorHandle) -> dict[str, Any]:
    """What a custom cloud needs, for both the requests and the aiohttp transports."""
    return {
        "base_url": emu.url,
        "credential_scopes": [emu.url + ".default"],
        "connection_verify": str(emu.ca_bundle),
        "retry_backoff_factor": 0.01,
        "polling_interval": 0.01,
    }


def _credential_args(emu: EmulatorHandle, tenant: Tenant, secret: str | None) -> dict[str, Any]:
    """ClientSecretCredential's arguments (sync and aio alike) for a tenant of the emulator."""
    return {
        "tenant_id": tenant.id,
        "client_id": tenant.client_id,
        "client_secret": secret if secret is not None else tenant.secret,
        "authority": emu.url,
        "disable_instance_discovery": True,
        "connection_verify": str(emu.ca_bundle),
    }


def sync_credential(emu: EmulatorHandle, tenant: Tenant, secret: str | None = None) -> Any:
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(**_credential_args(emu, tenant, secret))


def aio_credential(emu: EmulatorHandle, tenant: Tenant, secret: str | None = None) -> Any:
    from azure.identity.aio import ClientSecretCredential

    return ClientSecretCredential(**_credential_args(emu, tenant, secret))


def sync_client(cls: Callable[..., C], emu: EmulatorHandle, tenant: Tenant, *args: Any) -> C:
    """A sync management client acting as `tenant` against the emulator."""
    return cls(sync_credential(emu, tenant), *args, **client_kwargs(emu))


def ssl_context(emu: EmulatorHandle) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(emu.ca_bundle))


def token_for(emu: EmulatorHandle, tenant: Tenant) -> str:
    cred = sync_credential(emu, tenant)
    return str(cred.get_token(emu.url + ".default").token)


def raw(
    emu: EmulatorHandle,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    data: bytes | None = None,
) -> tuple[int, dict[str, str], Any]:
    """A plain HTTPS call (urllib) for what the SDKs hide: status codes, headers, envelopes."""
    import json
    import urllib.error
    import urllib.request

    url = path if path.startswith("https://") else emu.url + path.lstrip("/")
    if data is None and body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310
    req.add_header("Content-Type", (headers or {}).get("Content-Type", "application/json"))
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for k, v in (headers or {}).items():
        if k != "Content-Type":
            req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, context=ssl_context(emu), timeout=30) as resp:  # noqa: S310
            payload = resp.read()
            return resp.status, dict(resp.headers.items()), json.loads(payload) if payload else None
    except urllib.error.HTTPError as err:
        payload = err.read()
        return err.code, dict(err.headers.items()), json.loads(payload) if payload else None
