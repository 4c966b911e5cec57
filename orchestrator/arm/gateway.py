"""`AzureGateway`: the `ArmGateway` protocol over the real async Azure SDK clients.

Per identity: one credential (bound to its tenant) and its SDK clients (`arm.clients`; applications
are read and written by id, through one client per identity); the token guard (`arm.guard`) picks
the identity for each call before any request reaches a subscription. SDK models become
`orchestrator.models` value objects the moment they arrive; azure-core exceptions become `ArmError`.

Reads keep azure-core's transport retries. A write goes through its own pipeline that never re-sends
(`ClientPool.write_apps`): once a write's request may have left the machine, only the executor decides,
after re-reading the app, whether a second write is safe.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, cast
from urllib.parse import quote

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResponseNotReadError
from azure.core.pipeline import PipelineResponse
from azure.core.polling import AsyncLROPoller
from azure.core.polling.base_polling import OperationFailed
from azure.core.rest import HttpRequest
from azure.mgmt.core.tools import parse_resource_id

from orchestrator.arm.clients import APPLICATIONS_API_VERSION, ClientPool, RetrySettings
from orchestrator.arm.convert import operation_seconds, to_app, to_definition, to_deny_assignment
from orchestrator.arm.credentials import TenantCredential, build_credential
from orchestrator.arm.errors import arm_call, call_info, envelope, to_arm_error
from orchestrator.arm.guard import TokenGuard, split_id
from orchestrator.config import FleetConfig
from orchestrator.errors import ArmError
from orchestrator.gateway import (
    AppRead,
    CallInfo,
    CallObserver,
    OperationResult,
    PermissionSet,
    Submitted,
)
from orchestrator.models import App, Definition, DenyAssignment, MarketplacePlan, Subscription

DENY_ASSIGNMENTS_API_VERSION = "2022-04-01"
# What a subscription-wide listing reads: noun -> (provider/type, api-version).
_LISTINGS = {
    "applications": ("Microsoft.Solutions/applications", APPLICATIONS_API_VERSION),
    "deny assignments": ("Microsoft.Authorization/denyAssignments", DENY_ASSIGNMENTS_API_VERSION),
}


class _HeaderCapture:
    """A `raw_response_hook` keeping the last response's headers (polls and pages included)."""

    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        self.headers = dict(response.http_response.headers)

    @property
    def info(self) -> CallInfo:
        return call_info(self.headers)


class _OperationCapture(_HeaderCapture):
    """`_HeaderCapture` for following an operation, also keeping how long it ran by ARM's clock (the
    last status that said both its start and end; `operation_seconds`)."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: float | None = None

    def __call__(self, response: PipelineResponse[Any, Any]) -> None:
        super().__call__(response)
        try:
            body = response.http_response.content
        except ResponseNotReadError:  # streamed: not one of the poller's own reads
            return
        if b'"endTime"' in body:  # only a status that ended says it: other bodies are not parsed twice
            try:
                seconds = operation_seconds(json.loads(body))
            except (ValueError, RecursionError):  # ARM's text: malformed or nested past the stack
                return
            if seconds is not None:
                self.seconds = seconds


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
        given = {k.lower(): v for k, v in (credentials or {}).items()}
        built: dict[str, TenantCredential] = {}  # by identity name
        for identity in config.identity_list:
            found = given.get(identity.name.lower()) or given.get(identity.tenant_id.lower())
            built[identity.name] = found or build_credential(identity.as_tenant(), config.cloud)
        self._pool = ClientPool(config.cloud, built, retry or RetrySettings(), max_connections)
        self._guard = TokenGuard(config, self._pool)
        self._closed = False

    def observe_calls(self, observer: CallObserver | None) -> None:
        self._pool.observer = observer

    @property
    def max_connections(self) -> int:
        """The connection pool's size: HTTP/1.1 carries one request per connection at a time."""
        return self._pool.max_connections

    async def __aenter__(self) -> AzureGateway:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- reads --------------------------------------------------------------------------------

    async def list_subscriptions(self, tenant_id: str) -> list[Subscription]:
        """The customer's subscriptions its identities see (ARM's tenantId is the customer's)."""
        found: dict[str, Subscription] = {}
        for name in self._guard.identities_of(tenant_id):
            for key, sub in (await self._guard.listing(name)).items():
                if sub.tenant_id.lower() == tenant_id.lower():
                    found.setdefault(key, sub)
        return list(found.values())

    async def list_applications(self, tenant_id: str, subscription_id: str) -> list[App]:
        items = await self._list_in_subscription(tenant_id, subscription_id, "applications")
        return [to_app(item, tenant_id) for item in items]

    async def list_deny_assignments(self, tenant_id: str, subscription_id: str) -> list[DenyAssignment]:
        # Unfiltered at subscription scope: every deny assignment at, above and below it (MRGs included).
        items = await self._list_in_subscription(tenant_id, subscription_id, "deny assignments")
        return [to_deny_assignment(item) for item in items]

    async def _list_in_subscription(
        self, tenant_id: str, subscription_id: str, noun: str
    ) -> list[Mapping[str, Any]]:
        kind, api_version = _LISTINGS[noun]
        path = f"/subscriptions/{quote(subscription_id)}/providers/{kind}"
        what = f"list {noun} in {subscription_id}"
        return await self._list_raw(tenant_id, subscription_id, path, api_version, what)

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
        tenant's one SubscriptionClient rather than an SDK client per subscription (2 ms of CPU to
        construct each). The pipeline is the same: the tenant's credential, retries
        honouring Retry-After, the ARM policies.
        """
        # `identity`: one the guard already allowed there (a publisher's MRG read); else `claim` decides.
        client = self._pool.subscriptions(identity or await self._guard.claim(tenant_id, subscription_id))

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

        return await arm_call(what, pages)

    async def list_deny_assignments_at(self, tenant_id: str, scope: str) -> list[DenyAssignment]:
        parts = parse_resource_id(scope)
        subscription_id = str(parts.get("subscription") or "")
        if not subscription_id:
            raise ArmError(f"scope {scope!r} is not inside a subscription", code="InvalidScope")
        # A publisher reading an MRG through an app it read by id and found itself the publisher of.
        identity = self._guard.claim_mrg_read(scope)
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
        sub, rg, name = split_id(definition_id)
        client = self._pool.definitions(await self._guard.definition_reader(tenant_id, sub), sub)
        what = f"read definition {definition_id}"
        model = await arm_call(what, lambda: client.application_definitions.get(rg, name))
        if model is None:
            raise ArmError(f"{what}: HTTP 404 ResourceNotFound", status=404, code="ResourceNotFound")
        return to_definition(model, definition_id)

    async def get_application(self, tenant_id: str, app_id: str) -> App | None:
        read = await self.read_for_update(tenant_id, app_id)
        return read.app if read is not None else None

    async def read_for_update(self, tenant_id: str, app_id: str) -> AppRead | None:
        sub = split_id(app_id)[0]
        identity = await self._guard.claim_app_read(tenant_id, app_id)
        client = self._pool.apps(identity)
        model = await arm_call(
            f"read application {app_id}", lambda: client.applications.get_by_id(_url_id(app_id))
        )
        if model is None:
            return None
        app = to_app(model, tenant_id)
        self._guard.admit_publisher_read(tenant_id, sub, identity, app)
        return AppRead(app, body=(tenant_id.lower(), app_id.lower(), model))

    def allow_app_reads(self, tenant_id: str, app_ids: Iterable[str]) -> None:
        self._guard.allow_app_reads(tenant_id, app_ids)

    async def list_permissions(
        self, tenant_id: str, subscription_id: str, resource_group: str
    ) -> list[PermissionSet]:
        """`GET .../resourceGroups/{rg}/providers/Microsoft.Authorization/permissions` (api 2022-04-01),
        once the token guard confirmed the subscription."""
        client = self._pool.authorization(
            await self._guard.claim(tenant_id, subscription_id), subscription_id
        )

        async def pages() -> list[PermissionSet]:
            listing = client.permissions.list_for_resource_group(resource_group)
            return [
                PermissionSet(actions=tuple(p.actions or ()), not_actions=tuple(p.not_actions or ()))
                async for p in listing
            ]

        what = f"list permissions on resource group {resource_group} in subscription {subscription_id}"
        return await arm_call(what, pages)

    async def probe_token(self, tenant_id: str) -> str:
        identity = self._guard.route(tenant_id, None)[0]
        credential = self._pool.credentials[identity]
        try:
            await credential.get_token(self._config.cloud.scope)
        except Exception as exc:
            raise to_arm_error(exc, f"get a token for tenant {credential.tenant_id}") from None
        return credential.kind

    # -- writes -------------------------------------------------------------------------------

    async def submit_upgrade(
        self,
        tenant_id: str,
        app_id: str,
        *,
        definition_id: str | None,
        plan: MarketplacePlan | None,
        base: AppRead | None = None,
    ) -> Submitted:
        if (definition_id is None) == (plan is None):
            raise ValueError("give exactly one of definition_id (service catalog) or plan (marketplace)")
        sub = split_id(app_id)[0]
        identity = await self._guard.claim(tenant_id, sub, write=True)
        client = self._pool.apps(identity)
        what = f"upgrade application {app_id}"
        # The PUT carries everything the resource has: as `base` read it (and the caller checked it),
        # else as a GET now finds it; never only what the plan saw.
        model = _body_of(base, tenant_id, app_id)
        if model is None:
            model = await arm_call(what, lambda: client.applications.get_by_id(_url_id(app_id)))
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
        writer = self._pool.write_apps(identity)
        try:
            poller = await writer.applications.begin_create_or_update_by_id(
                _url_id(app_id), model, raw_response_hook=capture
            )
        except Exception as exc:
            raise _write_error(exc, what) from None
        headers = {k.lower(): v for k, v in capture.headers.items()}
        return Submitted(
            operation_url=headers.get("azure-asyncoperation") or headers.get("location"),
            resume_token=poller.continuation_token(),
            info=capture.info,
        )

    async def wait_operation(self, tenant_id: str, app_id: str, resume_token: str) -> OperationResult:
        # The token is azure-core's poller state, handed back to the SDK unread; the app names the client.
        sub, _, name = split_id(app_id)
        client = self._pool.apps(await self._guard.claim(tenant_id, sub, write=True))
        capture = _OperationCapture()
        what = f"follow the operation on {name}"

        async def resume() -> AsyncLROPoller[Any]:
            try:
                return await client.applications.begin_create_or_update_by_id(
                    _url_id(app_id),
                    cast(Any, None),
                    continuation_token=resume_token,
                    raw_response_hook=capture,
                )
            except ValueError as exc:  # azure-core's answer to a token it did not make (or an old one)
                raise ArmError(f"{what}: {exc}", code="InvalidResumeToken") from None

        poller = await arm_call(what, resume)
        try:
            final = await poller.result()
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
        # The poller's last GET read the app after the operation: the executor need not read it again.
        app = to_app(final, tenant_id) if final is not None and getattr(final, "id", None) else None
        return OperationResult(status="Succeeded", info=capture.info, app=app, seconds=capture.seconds)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._guard.cancel()
        await self._pool.close()


def _url_id(app_id: str) -> str:
    """The application's id as the `*_by_id` operations put it into the URL, which they do not quote:
    rebuilt from its parts, each quoted as the SDK quotes a name, so that an id from a plan or journal
    can address nothing but an application (no `?`, `#`, `/` or `..` of its own)."""
    parsed = parse_resource_id(app_id)
    parts = tuple(str(parsed.get(key) or "") for key in ("subscription", "resource_group", "name"))
    kind = f"{parsed.get('namespace')}/{parsed.get('type')}".lower()
    bad_part = not all(parts) or {".", ".."} & set(parts)
    if kind != "microsoft.solutions/applications" or parsed.get("children") or bad_part:
        raise ArmError(f"{app_id!r} is not an application id", code="InvalidResourceId")
    sub, rg, name = (quote(part, safe="") for part in parts)
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Solutions/applications/{name}"


def _body_of(base: AppRead | None, tenant_id: str, app_id: str) -> Any:
    """The SDK model `read_for_update` kept, if `base` is this gateway's read of this app by this tenant.
    The write consumes it (no copy: a deep copy cost 0.7 ms per app; the executor uses a read once)."""
    if base is None or not isinstance(base.body, tuple) or len(base.body) != 3:
        return None
    tenant, app, model = base.body
    if (tenant, app) != (tenant_id.lower(), app_id.lower()):
        return None
    return model


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
