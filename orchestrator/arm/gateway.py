"""`AzureGateway`: the `ArmGateway` protocol over the real async Azure SDK clients.

Per tenant: one credential (bound to that tenant) and SDK clients cached per subscription. One aiohttp
session (its connector trusts the cloud's CA bundle) carries every client's requests: a connection
holds no identity (each request carries its own tenant's token), and sharing the pool saves a TLS
handshake per tenant and connection.
SDK models become `orchestrator.models` value objects the moment they arrive; azure-core
exceptions become `ArmError`.

Two retry layers exist on purpose: azure-core retries each HTTP call (408/429/5xx, connection
errors, honouring Retry-After) within `RetrySettings`; whatever survives that surfaces as an
`ArmError` with `transient` set, for the executor's operation-level retries to judge.

That holds for reads. A write goes through its own pipeline that never re-sends (`_write_session`,
`_write_apps_client`): once a write's request may have left the machine, only the executor decides,
after re-reading the app, whether a second write is safe.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import importlib.metadata
import json
import re
import ssl
import urllib.request
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast
from urllib.parse import quote

import aiohttp
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.pipeline import PipelineRequest, PipelineResponse, policies
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import AioHttpTransport
from azure.core.polling.base_polling import OperationFailed
from azure.core.rest import HttpRequest
from azure.mgmt.authorization.v2022_04_01.aio import AuthorizationManagementClient
from azure.mgmt.core.policies import ARMHttpLoggingPolicy, AsyncARMChallengeAuthenticationPolicy
from azure.mgmt.core.tools import parse_resource_id
from azure.mgmt.managedapplications.aio import ManagedApplicationsMgmtClient
from azure.mgmt.resource.subscriptions.aio import SubscriptionClient

from orchestrator.arm.convert import to_app, to_definition, to_deny_assignment, to_subscription
from orchestrator.arm.credentials import TenantCredential, build_credential
from orchestrator.arm.errors import call_info, envelope, retry_after, to_arm_error
from orchestrator.config import BY_ID_PATHS, WRITING_PATHS, FleetConfig
from orchestrator.gateway import ArmError, CallInfo, OperationResult, ResponseObserver, Submitted
from orchestrator.models import App, Definition, DenyAssignment, MarketplacePlan, Subscription

T = TypeVar("T")

APPLICATIONS_API_VERSION = "2023-12-01-preview"
DENY_ASSIGNMENTS_API_VERSION = "2022-04-01"
_APPS_SDK = importlib.metadata.version("azure-mgmt-managedapplications")


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


class _ResponseSignals(SansIOHTTPPolicy[Any, Any]):
    """Tells the gateway's observer about every response of one tenant's clients.

    A per-retry policy: it sees each attempt the transport makes (a 429 it will retry, each operation
    poll), which is what ARM's rate-limit headers and Retry-After describe.
    """

    def __init__(self, gateway: AzureGateway, tenant_id: str) -> None:
        self._gateway = gateway
        self._tenant_id = tenant_id

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        observer = self._gateway._observer
        if observer is None:
            return
        http_request = request.http_request
        found = _SUBSCRIPTION_IN_URL.search(http_request.url)
        observer(
            self._tenant_id,
            found.group(1) if found else None,
            http_request.method,
            response.http_response.status_code,
            _rate_info(response.http_response.headers),
        )


def _rate_info(headers: Mapping[str, str]) -> CallInfo:
    """The rate-limit part of `call_info`, read straight from the transport's case-insensitive headers
    (this runs for every response: no copy of the whole header set)."""

    def as_int(name: str) -> int | None:
        value = headers.get(name)
        try:
            return int(value) if value is not None else None
        except ValueError:
            return None

    wait: float | None = None
    if "retry-after-ms" in headers or "retry-after" in headers:
        wait = retry_after(headers)
    return CallInfo(
        remaining_reads=as_int("x-ms-ratelimit-remaining-subscription-reads"),
        remaining_writes=as_int("x-ms-ratelimit-remaining-subscription-writes"),
        tenant_remaining_reads=as_int("x-ms-ratelimit-remaining-tenant-reads"),
        tenant_remaining_writes=as_int("x-ms-ratelimit-remaining-tenant-writes"),
        retry_after=wait,
    )


@dataclass
class _TenantClients:
    credential: TenantCredential
    transport: AioHttpTransport
    signals: _ResponseSignals
    subscriptions: SubscriptionClient | None = None
    applications: dict[str, ManagedApplicationsMgmtClient] = field(default_factory=dict)
    authorization: dict[str, AuthorizationManagementClient] = field(default_factory=dict)
    # Writes only: clients whose pipeline never re-sends a request (see `_write_apps_client`).
    write_transport: AioHttpTransport | None = None
    write_applications: dict[str, ManagedApplicationsMgmtClient] = field(default_factory=dict)


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


class _HeaderCapture:
    """A `raw_response_hook` keeping the last response's headers (polls and pages included)."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        self.headers = dict(response.http_response.headers)

    @property
    def info(self) -> CallInfo:
        return call_info(self.headers)


class AzureGateway:
    """Tenant-scoped ARM access. Use as `async with AzureGateway(config) as gw:` or call `close()`.

    All credentials are built up front, so a missing secret is a `ConfigError` before any call.
    """

    def __init__(
        self,
        config: FleetConfig,
        *,
        retry: RetrySettings | None = None,
        credentials: Mapping[str, TenantCredential] | None = None,
        max_connections: int = 100,
    ) -> None:
        self._config = config
        self._retry = retry or RetrySettings()
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._writes_session: aiohttp.ClientSession | None = None
        self._credentials: dict[str, TenantCredential] = {}  # by identity name
        self._identities = {i.name: i for i in config.identity_list}
        self._customers = {c.id.lower(): c for c in config.customer_list}
        given = {k.lower(): v for k, v in (credentials or {}).items()}
        for identity in config.identity_list:
            found = given.get(identity.name.lower()) or given.get(identity.tenant_id.lower())
            self._credentials[identity.name] = found or build_credential(identity.as_tenant(), config.cloud)
        self._tenants: dict[str, _TenantClients] = {}  # by identity name
        # The token guard. Per identity, ARM's own subscription list (read once); a subscription is used
        # only when it lists it with the identity's home tenant as tenantId or in managedByTenants.
        self._listings: dict[str, asyncio.Task[dict[str, Subscription]]] = {}
        # (customer, subscription) -> identity, once the guard confirmed it.
        self._approved: dict[tuple[str, str], str] = {}
        # Publisher reads (no listing, no write): MRG -> identity, for apps read by id that name it.
        self._publisher_mrgs: dict[str, str] = {}
        # Customer -> app ids the notification registry learned (by-id paths read them like `app_ids`).
        self._registry_apps: dict[str, set[str]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False
        self._observer: ResponseObserver | None = None

    def observe_responses(self, observer: ResponseObserver | None) -> None:
        self._observer = observer

    @property
    def max_connections(self) -> int:
        """The connection pool's size: HTTP/1.1 carries one request per connection at a time."""
        return self._max_connections

    async def __aenter__(self) -> AzureGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- plumbing -------------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        # Built once and set on the session's connector. Passing `connection_verify=<path>` per
        # request instead would make azure-core build a new SSLContext per request, which aiohttp
        # keys its connection pool on: every request would open a fresh TLS connection.
        if self._ssl is None:
            bundle = self._config.cloud.ca_bundle
            self._ssl = ssl.create_default_context(cafile=str(bundle) if bundle else None)
        return self._ssl

    def _shared_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl_context(), limit=self._max_connections),
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
                    ssl=self._ssl_context(), limit=self._max_connections, force_close=True
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                trust_env=True,
                middlewares=(_never_resend,),
            )
        return self._writes_session

    def _tenant(self, identity: str) -> _TenantClients:
        """The clients of one identity (by name)."""
        if self._closed:
            raise RuntimeError("the gateway is closed")
        key = identity
        state = self._tenants.get(key)
        if state is None:
            credential = self._credentials.get(key)
            if credential is None:
                raise ArmError(f"identity {identity} is not in the fleet config", code="UnknownTenant")
            transport = AioHttpTransport(
                session=self._shared_session(),
                session_owner=False,
                connection_timeout=self._retry.connection_timeout,
                read_timeout=self._retry.read_timeout,
            )
            state = _TenantClients(
                credential=credential, transport=transport, signals=_ResponseSignals(self, key)
            )
            self._tenants[key] = state
        return state

    def _common(self, state: _TenantClients) -> dict[str, Any]:
        return {
            "base_url": self._config.cloud.arm,
            "credential_scopes": [self._config.cloud.scope],
            "transport": state.transport,
            "per_retry_policies": [state.signals],
            **self._retry.client_kwargs(),
        }

    # -- the token guard ----------------------------------------------------------------------------

    def _route(self, tenant_id: str, subscription_id: str | None) -> tuple[str, str]:
        """(identity name, path) for a customer's subscription; an identity's own home tenant (the
        publisher reading its definitions) counts as direct."""
        customer = self._customers.get(tenant_id.lower())
        if customer is None:
            for identity in self._identities.values():
                if identity.tenant_id.lower() == tenant_id.lower():
                    return identity.name, "direct"
            raise ArmError(f"tenant {tenant_id} is not in the fleet config", code="UnknownTenant")
        path, name = customer.route(subscription_id or "")
        if name is None:
            raise ArmError(
                f"customer {customer.display_name} ({customer.id}) has no identity for path {path}: "
                "nothing can be read or written there",
                code="NoIdentity",
            )
        return name, path

    async def _listing(self, identity: str) -> dict[str, Subscription]:
        """ARM's subscription list for the identity (once; concurrent callers share the one call)."""
        task = self._listings.get(identity)
        if task is None:
            client = self._subscriptions_client(identity)
            home = self._identities[identity].tenant_id

            async def read() -> dict[str, Subscription]:
                subs = await self.collect(
                    f"list subscriptions visible to identity {identity}",
                    lambda: client.subscriptions.list(),
                    lambda s: to_subscription(s, home),
                )
                return {s.id.lower(): s for s in subs}

            task = asyncio.ensure_future(read())
            self._listings[identity] = task
        try:
            return await asyncio.shield(task)
        except ArmError:
            self._listings.pop(identity, None)  # a later call may try again
            raise

    async def claim(self, tenant_id: str, subscription_id: str, *, write: bool = False) -> str:
        """The identity that may be used on a customer's subscription, or `ArmError` (code WrongTenant
        or NotWritable) before any request reaches that subscription.

        Allowed: ARM lists the subscription for the identity with tenantId the customer's and either
        tenantId or managedByTenants the identity's home tenant. Writes only on the direct and
        delegated paths."""
        key = (tenant_id.lower(), subscription_id.lower())
        name, path = self._route(tenant_id, subscription_id)
        if write and path not in WRITING_PATHS:
            raise ArmError(
                f"subscription {subscription_id} of tenant {tenant_id} is on path {path}: "
                "the orchestrator does not write there (the customer runs the update from its kit)",
                code="NotWritable",
            )
        if self._approved.get(key) == name:
            return name
        home = self._identities[name].tenant_id.lower()
        sub = (await self._listing(name)).get(subscription_id.lower())
        if sub is None:
            raise ArmError(
                f"identity {name} (tenant {home}) may not use subscription {subscription_id}: ARM does not "
                "list it for that identity (neither its home tenant's nor delegated to it); refusing",
                code="WrongTenant",
            )
        if sub.tenant_id.lower() != tenant_id.lower():
            raise ArmError(
                f"subscription {subscription_id} belongs to tenant {sub.tenant_id} according to ARM, "
                f"not to customer {tenant_id}; refusing to use identity {name}",
                code="WrongTenant",
            )
        if sub.tenant_id.lower() != home and home not in (t.lower() for t in sub.managed_by_tenants):
            raise ArmError(
                f"subscription {subscription_id} is neither in tenant {home} nor managed by it; "
                f"refusing to use identity {name}",
                code="WrongTenant",
            )
        self._approved[key] = name
        return name

    def _claim(self, tenant_id: str, subscription_id: str) -> str:
        """The identity `claim` already confirmed for this subscription (sync callers)."""
        name = self._approved.get((tenant_id.lower(), subscription_id.lower()))
        if name is None:
            raise ArmError(
                f"subscription {subscription_id}: not confirmed for tenant {tenant_id}; refusing",
                code="WrongTenant",
            )
        return name

    async def _claim_app_read(self, tenant_id: str, app_id: str) -> str:
        """Reading one application: a confirmed subscription, or (publisher path) an app id the
        customer's list names or the notification registry learned for it, read with the publisher
        identity."""
        sub, _, _ = _split_id(app_id)
        name, path = self._route(tenant_id, sub)
        try:
            return await self.claim(tenant_id, sub)
        except ArmError as exc:
            if exc.code != "WrongTenant" or path not in BY_ID_PATHS:
                raise
            customer = self._customers[tenant_id.lower()]
            known = self._registry_apps.get(tenant_id.lower(), set())
            if app_id.lower() not in {a.lower() for a in customer.app_ids} | known:
                raise
        return name

    def allow_app_reads(self, tenant_id: str, app_ids: Iterable[str]) -> None:
        self._registry_apps.setdefault(tenant_id.lower(), set()).update(a.lower() for a in app_ids)

    def _claim_mrg_read(self, tenant_id: str, scope: str) -> str | None:
        """The identity that read the app managing this MRG by id and found itself its publisher."""
        key = scope.rstrip("/").lower()
        for mrg, name in self._publisher_mrgs.items():
            if key == mrg or key.startswith(mrg + "/"):
                return name
        return None

    def _apps_client(self, identity: str, subscription_id: str) -> ManagedApplicationsMgmtClient:
        state = self._tenant(identity)
        key = subscription_id.lower()
        client = state.applications.get(key)
        if client is None:
            client = ManagedApplicationsMgmtClient(
                state.credential,
                subscription_id,
                api_version=APPLICATIONS_API_VERSION,
                **self._common(state),
            )
            state.applications[key] = client
        return client

    def _write_apps_client(self, identity: str, subscription_id: str) -> ManagedApplicationsMgmtClient:
        """A client for application writes whose pipeline never sends a request twice.

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
        state = self._tenant(identity)  # the caller had `claim(..., write=True)` confirm it
        key = subscription_id.lower()
        client = state.write_applications.get(key)
        if client is None:
            if state.write_transport is None:
                state.write_transport = AioHttpTransport(
                    session=self._write_session(),
                    session_owner=False,
                    connection_timeout=self._retry.connection_timeout,
                    read_timeout=self._retry.read_timeout,
                )
            scope = self._config.cloud.scope
            no_resend: list[Any] = [
                policies.RequestIdPolicy(),
                policies.HeadersPolicy(),
                policies.UserAgentPolicy(sdk_moniker=f"mgmt-managedapplications/{_APPS_SDK}"),
                policies.ProxyPolicy(),
                policies.ContentDecodePolicy(),
                AsyncARMChallengeAuthenticationPolicy(state.credential, scope),
                state.signals,  # tells the pacer what ARM answered (it sends nothing)
                policies.CustomHookPolicy(),
                policies.NetworkTraceLoggingPolicy(),
                policies.DistributedTracingPolicy(),
                ARMHttpLoggingPolicy(),
            ]
            client = ManagedApplicationsMgmtClient(
                state.credential,
                subscription_id,
                api_version=APPLICATIONS_API_VERSION,
                base_url=self._config.cloud.arm,
                credential_scopes=[scope],
                transport=state.write_transport,
                policies=no_resend,
                retry_total=0,
                permit_redirects=False,
                polling_interval=self._retry.polling_interval,
            )
            state.write_applications[key] = client
        return client

    def authz_client(self, tenant_id: str, subscription_id: str) -> AuthorizationManagementClient:
        """The Authorization client for a subscription `claim` confirmed (or an MRG the publisher reads)."""
        return self._authz_client(self._claim(tenant_id, subscription_id), subscription_id)

    def _authz_client(self, identity: str, subscription_id: str) -> AuthorizationManagementClient:
        state = self._tenant(identity)
        key = subscription_id.lower()
        client = state.authorization.get(key)
        if client is None:
            client = AuthorizationManagementClient(state.credential, subscription_id, **self._common(state))
            state.authorization[key] = client
        return client

    def _subscriptions_client(self, identity: str) -> SubscriptionClient:
        state = self._tenant(identity)
        if state.subscriptions is None:
            state.subscriptions = SubscriptionClient(state.credential, **self._common(state))
        return state.subscriptions

    async def _call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        try:
            return await call()
        except ArmError:
            raise
        except Exception as exc:
            raise to_arm_error(exc, what) from None

    async def collect(
        self, what: str, pages: Callable[[], AsyncIterable[Any]], convert: Callable[[Any], T]
    ) -> list[T]:
        async def run() -> list[T]:
            return [convert(item) async for item in pages()]

        return await self._call(what, run)

    # -- reads --------------------------------------------------------------------------------

    async def list_subscriptions(self, tenant_id: str) -> list[Subscription]:
        """The customer's subscriptions its identities see (ARM's tenantId is the customer's)."""
        customer = self._customers.get(tenant_id.lower())
        if customer is None:
            names = [self._route(tenant_id, None)[0]]
        else:
            names = [n for n in {customer.identity, *(s.identity for s in customer.subscription_paths)} if n]
        found: dict[str, Subscription] = {}
        for name in sorted(names):
            for key, sub in (await self._listing(name)).items():
                if sub.tenant_id.lower() == tenant_id.lower():
                    found.setdefault(key, sub)
        return list(found.values())

    async def list_applications(self, tenant_id: str, subscription_id: str) -> list[App]:
        path = f"/subscriptions/{quote(subscription_id)}/providers/Microsoft.Solutions/applications"
        items = await self._list_raw(
            tenant_id,
            subscription_id,
            path,
            APPLICATIONS_API_VERSION,
            f"list applications in {subscription_id}",
        )
        return [to_app(item, tenant_id) for item in items]

    async def list_deny_assignments(self, tenant_id: str, subscription_id: str) -> list[DenyAssignment]:
        # Unfiltered at subscription scope: every deny assignment at, above and below it (MRGs included).
        path = f"/subscriptions/{quote(subscription_id)}/providers/Microsoft.Authorization/denyAssignments"
        items = await self._list_raw(
            tenant_id,
            subscription_id,
            path,
            DENY_ASSIGNMENTS_API_VERSION,
            f"list deny assignments in {subscription_id}",
        )
        return [to_deny_assignment(item) for item in items]

    async def _list_raw(
        self,
        tenant_id: str,
        subscription_id: str,
        path: str,
        api_version: str,
        what: str,
        query: str = "",
        identity: str | None = None,
    ) -> list[Mapping[str, Any]]:
        """A paged ARM listing as plain JSON, through the SDK client's pipeline (`send_request`).

        The bulk listings skip SDK model deserialization (a third of the client's CPU per page on the
        inventory benchmark; the value objects are built from the JSON anyway) and go through the
        tenant's one SubscriptionClient rather than a ManagedApplicationsMgmtClient per subscription
        (2 ms of CPU to construct each). The pipeline is the same: the tenant's credential, retries
        honouring Retry-After, the ARM policies.
        """
        # `identity`: one the guard already allowed there (a publisher's MRG read); else `claim` decides.
        client = self._subscriptions_client(identity or await self.claim(tenant_id, subscription_id))

        async def pages() -> list[Mapping[str, Any]]:
            items: list[Mapping[str, Any]] = []
            url: str | None = f"{self._config.cloud.arm.rstrip('/')}{path}?api-version={api_version}{query}"
            while url:
                response = await client.send_request(HttpRequest("GET", url))
                if response.status_code != 200:
                    raise HttpResponseError(response=response)
                body = response.json()
                items.extend(body.get("value") or ())
                url = body.get("nextLink") or None
            return items

        return await self._call(what, pages)

    async def list_deny_assignments_at(self, tenant_id: str, scope: str) -> list[DenyAssignment]:
        parts = parse_resource_id(scope)
        subscription_id = str(parts.get("subscription") or "")
        if not subscription_id:
            raise ArmError(f"scope {scope!r} is not inside a subscription", code="InvalidScope")
        # A publisher reading an MRG through an app it read by id and found itself the publisher of.
        identity = self._claim_mrg_read(tenant_id, scope)
        # The URL `deny_assignments.list_for_scope(..., filter="atScope()")` sends, read as plain JSON:
        # the SDK's msrest models cost a deserialize and a serialize back per assignment (a tenth of
        # apply's client CPU, which verifies every app this way).
        path = "/" + quote(scope.strip("/"), safe="/") + "/providers/Microsoft.Authorization/denyAssignments"
        items = await self._list_raw(
            tenant_id,
            subscription_id,
            path,
            DENY_ASSIGNMENTS_API_VERSION,
            f"list deny assignments at {scope}",
            query="&%24filter=atScope%28%29",
            identity=identity,
        )
        return [to_deny_assignment(item) for item in items]

    async def get_definition(self, tenant_id: str, definition_id: str) -> Definition:
        sub, rg, name = _split_id(definition_id)
        client = self._apps_client(await self._definition_reader(tenant_id, sub), sub)
        what = f"read definition {definition_id}"
        model = await self._call(what, lambda: client.application_definitions.get(rg, name))
        if model is None:
            raise ArmError(f"{what}: HTTP 404 ResourceNotFound", status=404, code="ResourceNotFound")
        return to_definition(model, definition_id)

    async def _definition_reader(self, tenant_id: str, subscription_id: str) -> str:
        """A definition lives in the publisher's subscription: the identity ARM lists it for (its home
        tenant's first), else the customer's confirmed one."""
        try:
            return await self.claim(tenant_id, subscription_id)
        except ArmError as exc:
            if exc.code != "WrongTenant":
                raise
            refused = exc
        candidates = sorted(self._identities.values(), key=lambda i: i.name)
        for identity in candidates:
            with contextlib.suppress(ArmError):
                sub = (await self._listing(identity.name)).get(subscription_id.lower())
                if sub is not None:
                    self._approved[(sub.tenant_id.lower(), subscription_id.lower())] = identity.name
                    return identity.name
        # No identity's ARM listing holds the subscription: for this fleet it does not exist (no
        # request is sent into it); said as ARM would, so callers treat the definition as missing.
        raise ArmError(
            f"{refused}; subscription {subscription_id} is visible to no configured identity",
            status=404,
            code="SubscriptionNotFound",
        )

    async def get_application(self, tenant_id: str, app_id: str) -> App | None:
        sub, rg, name = _split_id(app_id)
        identity = await self._claim_app_read(tenant_id, app_id)
        client = self._apps_client(identity, sub)
        model = await self._call(f"read application {app_id}", lambda: client.applications.get(rg, name))
        if model is None:
            return None
        app = to_app(model, tenant_id)
        if (tenant_id.lower(), sub.lower()) not in self._approved:
            # Read as the publisher: its MRG is readable only if the app names this identity's tenant.
            home = self._identities[identity].tenant_id.lower()
            if (app.publisher_tenant_id or "").lower() != home:
                raise ArmError(
                    f"application {app_id} names publisher tenant {app.publisher_tenant_id}, not {home}; "
                    f"refusing to read its managed resource group with identity {identity}",
                    code="WrongTenant",
                )
            self._publisher_mrgs[app.managed_resource_group_id.rstrip("/").lower()] = identity
        return app

    # -- writes -------------------------------------------------------------------------------

    async def submit_upgrade(
        self,
        tenant_id: str,
        app_id: str,
        *,
        definition_id: str | None,
        plan: MarketplacePlan | None,
    ) -> Submitted:
        if (definition_id is None) == (plan is None):
            raise ValueError("give exactly one of definition_id (service catalog) or plan (marketplace)")
        sub, rg, name = _split_id(app_id)
        identity = await self.claim(tenant_id, sub, write=True)
        client = self._apps_client(identity, sub)
        what = f"upgrade application {app_id}"
        # A fresh GET: the PUT must carry everything the resource has now, not what the plan saw.
        model = await self._call(what, lambda: client.applications.get(rg, name))
        if model is None:
            raise ArmError(
                f"{what}: HTTP 404 ResourceNotFound: the application no longer exists",
                status=404,
                code="ResourceNotFound",
            )
        if definition_id is not None:
            model.properties.application_definition_id = definition_id
        else:
            assert plan is not None
            if model.plan is None:
                raise ArmError(
                    f"{what}: the application has no marketplace plan to upgrade", code="NotMarketplace"
                )
            model.plan.version = plan.version
        capture = _HeaderCapture()
        writer = self._write_apps_client(identity, sub)
        try:
            poller = await writer.applications.begin_create_or_update(
                rg, name, model, raw_response_hook=capture
            )
        except Exception as exc:
            raise _write_error(exc, what) from None
        headers = {k.lower(): v for k, v in capture.headers.items()}
        return Submitted(
            operation_url=headers.get("azure-asyncoperation") or headers.get("location"),
            resume_token=poller.continuation_token(),
            info=capture.info,
        )

    async def wait_operation(self, tenant_id: str, resume_token: str) -> OperationResult:
        sub, rg, name = _split_id(_token_resource_id(resume_token))
        client = self._apps_client(await self.claim(tenant_id, sub, write=True), sub)
        capture = _HeaderCapture()
        what = f"follow the operation on {name}"
        poller = await self._call(
            what,
            lambda: client.applications.begin_create_or_update(
                rg, name, cast(Any, None), continuation_token=resume_token, raw_response_hook=capture
            ),
        )
        try:
            await poller.result()
        except HttpResponseError as exc:
            if isinstance(exc.__cause__, OperationFailed):
                code, message = (exc.error.code, exc.error.message) if exc.error else (None, None)
                if code is None and exc.response is not None:
                    code, message = envelope(exc.response.text())
                return OperationResult(
                    status=poller.status() if poller.status() in ("Failed", "Canceled") else "Failed",
                    error_code=code,
                    error_message=message,
                    info=capture.info,
                )
            raise to_arm_error(exc, what) from None
        except Exception as exc:
            raise to_arm_error(exc, what) from None
        return OperationResult(status="Succeeded", info=capture.info)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for state in self._tenants.values():
            clients: list[Any] = [
                state.subscriptions,
                *state.applications.values(),
                *state.authorization.values(),
            ]
            clients += state.write_applications.values()
            for client in clients:
                if client is not None:
                    await client.close()
        for session in (self._session, self._writes_session):
            if session is not None:
                await session.close()
        for task in self._listings.values():
            task.cancel()
        for credential in self._credentials.values():
            await credential.close()
        self._tenants.clear()


def _write_error(exc: BaseException, what: str) -> ArmError:
    """An error from a write's request. Only an error answer from ARM (HTTP >= 400) says what became of
    the write; anything else (a lost connection, a cut or unreadable answer) means it may have landed:
    transient, so the executor re-reads before it decides."""
    error = to_arm_error(exc, what)
    answered = error.status is not None and error.status >= 400
    if answered or error.transient or isinstance(exc, ClientAuthenticationError):
        return error
    return ArmError(
        f"{what}: the answer was lost (the write may have landed): {error}",
        code="WriteOutcomeUnknown",
        transient=True,
        info=error.info,
    )


def _split_id(resource_id: str) -> tuple[str, str, str]:
    parts = parse_resource_id(resource_id)
    try:
        return str(parts["subscription"]), str(parts["resource_group"]), str(parts["name"])
    except KeyError:
        raise ArmError(f"{resource_id!r} is not a resource id", code="InvalidResourceId") from None


def _token_resource_id(resume_token: str) -> str:
    """The application id the continuation token's initial request was made against.

    azure-core (>= 1.38) tokens are base64 JSON `{"version", "data": {"request": {"url"}}}`.
    """
    from urllib.parse import urlsplit

    try:
        state = json.loads(base64.b64decode(resume_token))
        path = urlsplit(str(state["data"]["request"]["url"])).path
    except (ValueError, KeyError, TypeError):
        path = ""
    start = path.lower().find("/subscriptions/")
    if start < 0:
        raise ArmError("the resume token is not one this tool wrote", code="InvalidResumeToken")
    return path[start:]
