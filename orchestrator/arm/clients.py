"""The SDK clients behind `AzureGateway`: sessions, transports and clients, per identity.

One aiohttp session (its connector trusts the cloud's CA bundle) carries every read: a connection
holds no identity (each request carries its own tenant's token), and sharing the pool saves a TLS
handshake per tenant and connection. Writes go through a session and pipeline of their own that
never re-send a request (`ClientPool.write_apps`).

Two retry layers exist on purpose: azure-core retries each HTTP call (408/429/5xx, connection
errors, honouring Retry-After) within `RetrySettings`; whatever survives that surfaces as an
`ArmError` with `transient` set, for the executor's operation-level retries to judge.
"""

from __future__ import annotations

import asyncio.sslproto
import importlib.metadata
import re
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from azure.core.pipeline import PipelineRequest, PipelineResponse, policies
from azure.core.pipeline.policies import AsyncHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.mgmt.authorization.v2022_04_01.aio import AuthorizationManagementClient
from azure.mgmt.core.policies import ARMHttpLoggingPolicy, AsyncARMChallengeAuthenticationPolicy
from azure.mgmt.managedapplications.aio import ManagedApplicationsMgmtClient
from azure.mgmt.resource.subscriptions.aio import SubscriptionClient

from orchestrator.arm.credentials import TenantCredential
from orchestrator.arm.errors import rate_info
from orchestrator.config import CloudConfig
from orchestrator.errors import ArmError
from orchestrator.gateway import CallInfo, CallObserver

APPLICATIONS_API_VERSION = "2023-12-01-preview"
_APPS_SDK = importlib.metadata.version("azure-mgmt-managedapplications")
# The subscription of a client that only runs `*_by_id` operations (see `ClientPool.apps`).
BY_ID_ONLY = ""


@dataclass(frozen=True)
class RetrySettings:
    """azure-core's per-HTTP-call retries (the transport layer).

    Retry-After from ARM (throttling, 503) is always honoured and takes precedence over the backoff.
    Keep `total` modest: the executor retries whole operations on top of this.
    """

    total: int = 6
    backoff_factor: float = 0.5  # seconds; doubles per attempt
    backoff_max: float = 30.0  # cap on the computed backoff (not on Retry-After)
    connection_timeout: float = 30.0
    read_timeout: float = 120.0
    # Default wait between long-running-operation polls when ARM sends no Retry-After.
    polling_interval: float = 5.0

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "retry_total": self.total,
            # azure-core caps status/connect/read retries at 3 each unless told: let `total` govern.
            "retry_status": self.total,
            "retry_connect": self.total,
            "retry_read": self.total,
            "retry_backoff_factor": self.backoff_factor,
            "retry_backoff_max": self.backoff_max,
            "retry_mode": "exponential",
            "polling_interval": self.polling_interval,
        }


_SUBSCRIPTION_IN_URL = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)


class _CallSignals(AsyncHTTPPolicy[Any, Any]):
    """Lets each request one identity's clients send leave when the pool's observer says it may, and
    tells the observer its answer.

    A per-retry policy: it sees each attempt the transport makes (a 429 it will retry, each operation
    poll and the poller's final read), which is what ARM's buckets meter and its rate-limit headers
    and Retry-After describe. Every request let go is reported answered exactly once (status 0 when
    no answer came): the pacer counts the unanswered ones against ARM's buckets, and a lost report
    would hold a place there for good.

    One instance per pipeline: a pipeline links each HTTPPolicy to its own next policy, so an instance
    shared by two would send one client's requests down the other's chain (a write through the read
    transport, which re-sends).
    """

    def __init__(self, pool: ClientPool, identity: str) -> None:
        super().__init__()
        self._pool = pool
        self._identity = identity

    async def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        observer = self._pool.observer
        if observer is None:
            return await self.next.send(request)
        http_request = request.http_request
        found = _SUBSCRIPTION_IN_URL.search(http_request.url)
        subscription = found.group(1) if found else None
        await observer.sending(self._identity, subscription, http_request.method)
        status, info = 0, CallInfo()
        try:
            response = await self.next.send(request)
            status = response.http_response.status_code
            info = rate_info(response.http_response.headers)
            return response
        finally:
            observer.observe_response(self._identity, subscription, http_request.method, status, info)


@dataclass
class _TenantClients:
    identity: str
    credential: TenantCredential
    transport: AioHttpTransport
    subscriptions: SubscriptionClient | None = None
    # Applications are addressed by id (`*_by_id`), so one client serves every subscription.
    applications: ManagedApplicationsMgmtClient | None = None
    definitions: dict[str, ManagedApplicationsMgmtClient] = field(default_factory=dict)
    authorization: dict[str, AuthorizationManagementClient] = field(default_factory=dict)
    # Writes only: a client whose pipeline never re-sends a request (see `ClientPool.write_apps`).
    write_transport: AioHttpTransport | None = None
    write_applications: ManagedApplicationsMgmtClient | None = None


class WriteMaybeSent(aiohttp.ClientConnectionError):
    """The connection failed after a write's request may have been sent (it is not re-sent)."""


async def _never_resend(
    request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType
) -> aiohttp.ClientResponse:
    """aiohttp middleware of the write session: turn the errors aiohttp would re-send on into one it
    does not.

    `ClientSession._request` sends an idempotent method (PUT, DELETE) a second time when the first
    attempt ends with `ServerDisconnectedError` or `ClientOSError` (aiohttp/client.py, "retrying
    requests", RFC 9112 9.3.1), and the session has no public switch for it. A connection reset after
    ARM accepted the PUT raises exactly those, so the re-sent PUT would land while the first one's
    operation runs. Errors from connecting (nothing was sent) pass through unchanged.
    """
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise WriteMaybeSent(f"connection lost after the request may have been sent: {exc}") from exc


# asyncio gives every TLS connection a receive buffer of this size, allocated and zeroed when the
# connection opens. Its default, 256 KiB, is above glibc's mmap threshold: each of apply's writes (a
# fresh connection apiece) paid an mmap, 64 page faults and a munmap, and 200 connections open at once
# held 50 MB. TLS records carry at most 16 KiB, so 64 KiB still takes several per read. Measured at
# 10,000 apps (bench_apply --large, alternating runs): peak RSS 324 -> 283 MiB, makespan 69-83 -> 61-70 s.
TLS_READ_BUFFER = 64 * 1024


def _lean_tls_buffers() -> None:
    """Set asyncio's per-connection TLS buffer (a class attribute, so it covers every connection this
    process opens, the credentials' token requests included)."""
    asyncio.sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


class ClientPool:
    """The sessions and the SDK clients of every identity (by name), built on first use and cached (per
    identity for applications, which go by id; per subscription for definitions and permissions);
    `close()` closes them all, the credentials included."""

    def __init__(
        self,
        cloud: CloudConfig,
        credentials: Mapping[str, TenantCredential],
        retry: RetrySettings,
        max_connections: int,
    ) -> None:
        self._cloud = cloud
        self.credentials = dict(credentials)  # by identity name
        self.retry = retry
        self.max_connections = max_connections
        self.observer: CallObserver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._writes_session: aiohttp.ClientSession | None = None
        self._ssl: ssl.SSLContext | None = None
        self._tenants: dict[str, _TenantClients] = {}
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once and set on the session's connector. Passing `connection_verify=<path>` per
        # request instead would make azure-core build a new SSLContext per request, which aiohttp
        # keys its connection pool on: every request would open a fresh TLS connection.
        if self._ssl is None:
            _lean_tls_buffers()
            bundle = self._cloud.ca_bundle
            self._ssl = ssl.create_default_context(cafile=str(bundle) if bundle else None)
        return self._ssl

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl_context(), limit=self.max_connections),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,  # azure-core's ContentDecodePolicy decodes
                # trust_env makes aiohttp look up netrc and proxies in a worker thread on every request
                # (two thread hops each); pay for it only when a proxy is configured.
                trust_env=bool(urllib.request.getproxies()),
            )
        return self._session

    def _write_session(self) -> aiohttp.ClientSession:
        """The aiohttp session writes go through: no re-send, and a fresh connection per request.

        A fresh connection (`force_close`) cannot be a stale keep-alive one that the server already
        closed, so a connection error on a write means something went wrong after it was opened; the
        middleware stops aiohttp's own re-send of idempotent methods. Writes are few (one per app):
        the extra TLS handshake each costs is small next to the long-running operation it starts.
        """
        if self._writes_session is None:
            self._writes_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    ssl=self._ssl_context(), limit=self.max_connections, force_close=True
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=bool(urllib.request.getproxies()),  # as the read session: see there
                middlewares=(_never_resend,),
            )
        return self._writes_session

    def _tenant(self, identity: str) -> _TenantClients:
        """The clients of one identity (by name)."""
        if self._closed:
            raise RuntimeError("the gateway is closed")
        state = self._tenants.get(identity)
        if state is None:
            credential = self.credentials.get(identity)
            if credential is None:
                raise ArmError(f"identity {identity} is not in the fleet config", code="UnknownTenant")
            transport = AioHttpTransport(
                session=self._shared_session(),
                session_owner=False,
                connection_timeout=self.retry.connection_timeout,
                read_timeout=self.retry.read_timeout,
            )
            state = _TenantClients(identity=identity, credential=credential, transport=transport)
            self._tenants[identity] = state
        return state

    def _common(self, state: _TenantClients) -> dict[str, Any]:
        return {
            "base_url": self._cloud.arm,
            "credential_scopes": [self._cloud.scope],
            "transport": state.transport,
            "per_retry_policies": [_CallSignals(self, state.identity)],
            **self.retry.client_kwargs(),
        }

    def apps(self, identity: str) -> ManagedApplicationsMgmtClient:
        """The identity's client for application reads, by id (`get_by_id`, and the operation's poller
        resumed by `begin_create_or_update_by_id`).

        One client per identity, not per subscription: at 1,000 subscriptions a read and a write
        client each were 2,000 pipelines built in the middle of a wave (a 10,000-app apply peaked
        24-31 MB higher). The by-id operations take the subscription from the application's id; the
        client's own subscription is left empty so that an operation that would use it fails loudly
        instead of reaching another subscription.
        """
        state = self._tenant(identity)
        if state.applications is None:
            state.applications = ManagedApplicationsMgmtClient(
                state.credential, BY_ID_ONLY, api_version=APPLICATIONS_API_VERSION, **self._common(state)
            )
        return state.applications

    def definitions(self, identity: str, subscription_id: str) -> ManagedApplicationsMgmtClient:
        """A client for application definitions in one subscription (a publisher's few)."""
        state = self._tenant(identity)
        key = subscription_id.lower()
        client = state.definitions.get(key)
        if client is None:
            client = ManagedApplicationsMgmtClient(
                state.credential, subscription_id, api_version=APPLICATIONS_API_VERSION, **self._common(state)
            )
            state.definitions[key] = client
        return client

    def write_apps(self, identity: str) -> ManagedApplicationsMgmtClient:
        """The identity's client for application writes (by id, as `apps`), whose pipeline never sends a
        request twice.

        The rule: a write is never re-sent by a transport. A reset after ARM accepted a PUT looks like
        "not sent" to azure-core (aiohttp reports it as a connection error) and to aiohttp itself, and
        a blind second PUT would land while the first one's operation runs, or after it succeeded. So
        this pipeline has every automatic re-send off:
        - azure-core's RetryPolicy: none (`retry_total=0`; no connect, read or status retries);
        - RedirectPolicy: none (a 307/308 would re-send the PUT elsewhere);
        - ARMAutoResourceProviderRegistrationPolicy: none (it re-sends a write refused with 409
          MissingSubscriptionRegistration after registering the provider, itself a write);
        - aiohttp's re-send of idempotent methods: off (`_write_session`).
        Anything that goes wrong once the request may have left surfaces as a transient `ArmError`;
        the executor then re-reads the app (and its operation) and decides. Reads keep their retries.
        """
        state = self._tenant(identity)  # the caller had the token guard confirm it for writing
        if state.write_applications is None:
            state.write_transport = AioHttpTransport(
                session=self._write_session(),
                session_owner=False,
                connection_timeout=self.retry.connection_timeout,
                read_timeout=self.retry.read_timeout,
            )
            scope = self._cloud.scope
            no_resend: list[Any] = [
                policies.RequestIdPolicy(),
                policies.HeadersPolicy(),
                policies.UserAgentPolicy(sdk_moniker=f"mgmt-managedapplications/{_APPS_SDK}"),
                policies.ProxyPolicy(),
                policies.ContentDecodePolicy(),
                AsyncARMChallengeAuthenticationPolicy(state.credential, scope),
                _CallSignals(self, identity),  # waits for the pacer, tells it the answer (re-sends nothing)
                policies.CustomHookPolicy(),
                policies.NetworkTraceLoggingPolicy(),
                policies.DistributedTracingPolicy(),
                ARMHttpLoggingPolicy(),
            ]
            state.write_applications = ManagedApplicationsMgmtClient(
                state.credential,
                BY_ID_ONLY,
                api_version=APPLICATIONS_API_VERSION,
                base_url=self._cloud.arm,
                credential_scopes=[scope],
                transport=state.write_transport,
                policies=no_resend,
                retry_total=0,
                permit_redirects=False,
                polling_interval=self.retry.polling_interval,
            )
        return state.write_applications

    def authorization(self, identity: str, subscription_id: str) -> AuthorizationManagementClient:
        state = self._tenant(identity)
        key = subscription_id.lower()
        client = state.authorization.get(key)
        if client is None:
            client = AuthorizationManagementClient(state.credential, subscription_id, **self._common(state))
            state.authorization[key] = client
        return client

    def subscriptions(self, identity: str) -> SubscriptionClient:
        state = self._tenant(identity)
        if state.subscriptions is None:
            state.subscriptions = SubscriptionClient(state.credential, **self._common(state))
        return state.subscriptions

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for state in self._tenants.values():
            clients: list[Any] = [
                state.subscriptions,
                state.applications,
                *state.definitions.values(),
                *state.authorization.values(),
                state.write_applications,
            ]
            for client in clients:
                if client is not None:
                    await client.close()
        for session in (self._session, self._writes_session):
            if session is not None:
                await session.close()
        for credential in self.credentials.values():
            await credential.close()
        self._tenants.clear()
