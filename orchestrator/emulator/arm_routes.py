"""ARM route table and dispatch: api-version, authentication, tenant isolation, access, paging.

Paths are matched case-insensitively (ARM treats `resourcegroups` and `resourceGroups` alike) with
precompiled regexes; the handlers themselves live in arm_handlers.py.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from orchestrator.emulator import lighthouse
from orchestrator.emulator.armhttp import ArmError
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.state import Tenant
from orchestrator.emulator.tokens import Claims, TokenError

_I = re.IGNORECASE
_SUB = r"^/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"

# Every api-version the stock clients send (Azure CLI 2.91, Az PowerShell) plus the specs' stable and
# preview versions; versions.py says how a response differs between them.
API_VERSIONS: dict[str, frozenset[str]] = {
    # azure-mgmt-resource-subscriptions 1.0.0 and the Azure CLI send 2022-12-01.
    "subscriptions": frozenset({"2022-12-01", "2021-01-01", "2020-01-01", "2016-06-01"}),
    # azure-mgmt-managedapplications 1.0.0b2 sends 2023-12-01-preview; 2021-07-01 is the last stable;
    # `az managedapp` sends 2019-07-01 (hard-wired).
    "solutions": frozenset({"2023-12-01-preview", "2021-07-01", "2019-07-01"}),
    # azure-mgmt-authorization 4.0.0 sends 2022-04-01 for deny assignments and permissions.
    "authorization": frozenset({"2022-04-01"}),
    # `az role deny-assignment` (azure-mgmt-authorization 5.0.0b2) sends 2024-07-01-preview.
    "denyAssignments": frozenset({"2022-04-01", "2024-07-01-preview"}),
    # Resource groups and providers: Microsoft.Resources' stable versions; the Azure CLI sends 2024-11-01.
    "resources": frozenset(
        {
            "2020-06-01",
            "2020-08-01",
            "2020-10-01",
            "2021-01-01",
            "2021-04-01",
            "2022-09-01",
            "2023-07-01",
            "2024-03-01",
            "2024-07-01",
            "2024-11-01",
        }
    ),
    "managedservices": frozenset({"2022-10-01"}),
}


@dataclass(frozen=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    family: str
    resource_type: str


ROUTES: tuple[Route, ...] = (
    Route("subscriptions", re.compile(r"^/subscriptions/?$", _I), "subscriptions", "subscriptions"),
    Route("subscription", re.compile(_SUB + r"/?$", _I), "subscriptions", "subscriptions"),
    Route("tenants", re.compile(r"^/tenants/?$", _I), "subscriptions", "tenants"),
    Route(
        "app",
        re.compile(_RG + r"/providers/microsoft\.solutions/applications/(?P<name>[^/]+)$", _I),
        "solutions",
        "applications",
    ),
    Route(
        "app_action",
        re.compile(
            _RG + r"/providers/microsoft\.solutions/applications/(?P<name>[^/]+)/(?P<action>[^/]+)$", _I
        ),
        "solutions",
        "applications",
    ),
    Route(
        "apps",
        re.compile(
            _SUB + r"(?:/resourcegroups/(?P<rg>[^/]+))?/providers/microsoft\.solutions/applications$", _I
        ),
        "solutions",
        "applications",
    ),
    Route(
        "op",
        re.compile(
            _SUB + r"/providers/microsoft\.solutions/locations/(?P<loc>[^/]+)/"
            r"(?P<opkind>operationstatuses|operationresults)/(?P<op>[^/]+)$",
            _I,
        ),
        "solutions",
        "locations/operationstatuses",
    ),
    Route(
        "definition",
        re.compile(_RG + r"/providers/microsoft\.solutions/applicationdefinitions/(?P<name>[^/]+)$", _I),
        "solutions",
        "applicationDefinitions",
    ),
    Route(
        "definitions",
        re.compile(
            _SUB
            + r"(?:/resourcegroups/(?P<rg>[^/]+))?/providers/microsoft\.solutions/applicationdefinitions$",
            _I,
        ),
        "solutions",
        "applicationDefinitions",
    ),
    Route(
        "permissions",
        re.compile(_RG + r"/providers/microsoft\.authorization/permissions$", _I),
        "authorization",
        "permissions",
    ),
    Route(
        "deny",
        re.compile(
            r"^(?P<scope>.*?)/providers/microsoft\.authorization/denyassignments(?:/(?P<name>[^/]+))?$", _I
        ),
        "denyAssignments",
        "denyAssignments",
    ),
    Route("rg", re.compile(_RG + r"/?$", _I), "resources", "resourceGroups"),
    Route("rgs", re.compile(_SUB + r"/resourcegroups/?$", _I), "resources", "resourceGroups"),
    Route(
        "provider",
        re.compile(r"^(?:/subscriptions/(?P<sub>[^/]+))?/providers/(?P<namespace>[^/]+)/?$", _I),
        "resources",
        "providers",
    ),
    Route(
        "lighthouse",
        re.compile(
            r"^(?P<scope>/subscriptions/[^/]+(?:/resourcegroups/[^/]+)?)/providers/microsoft\.managedservices/"
            r"(?P<kind>registrationdefinitions|registrationassignments)(?:/(?P<name>[^/]+))?$",
            _I,
        ),
        "managedservices",
        "registrationAssignments",
    ),
)

# The region list ARM quotes for Microsoft.Solutions (and the provider lookup returns).
LOCATIONS = ("eastus", "westeurope", "westus2")

_SCOPE_SUB = re.compile(r"^/subscriptions/([^/]+)", _I)


@dataclass
class Ctx:
    """One ARM request after dispatch, authentication and tenant checks."""

    rt: Runtime
    request: web.Request
    route: Route
    groups: dict[str, str]
    claims: Claims
    tenant: Tenant | None
    api_version: str

    @property
    def method(self) -> str:
        return self.request.method


Handler = Callable[[Ctx], Awaitable[web.Response]]


def match(path: str) -> tuple[Route, dict[str, str]] | None:
    for route in ROUTES:
        m = route.pattern.match(path)
        if m:
            return route, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


def kind_of(route: Route, groups: dict[str, str], method: str) -> str:
    if method != "GET":
        return "write"
    if route.name == "op":
        return "poll"
    if route.name in ("subscriptions", "tenants", "apps", "definitions", "rgs"):
        return "list"
    if route.name in ("deny", "lighthouse") and "name" not in groups:
        return "list"
    return "read"


def check_api_version(route: Route, request: web.Request) -> str:
    version = request.query.get("api-version")
    if not version:
        raise ArmError(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    supported = API_VERSIONS[route.family]
    if version not in supported:
        newest_first = sorted(supported, reverse=True)
        if route.family == "solutions":
            # ARM's wording for a resource provider's type: versions and locations joined by ", ".
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                f"No registered resource provider found for location 'global' and API version '{version}' "
                f"for type '{route.resource_type}'. The supported api-versions are "
                f"'{', '.join(newest_first)}'. The supported locations are '{', '.join(LOCATIONS)}'.",
            )
        # ARM's own types (Microsoft.Resources): the versions joined by "," without spaces.
        raise ArmError(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are '{','.join(newest_first)}'.",
        )
    return version


def _www_authenticate(rt: Runtime, tenant: str, error: str) -> dict[str, str]:
    return {
        "WWW-Authenticate": f'Bearer authorization_uri="{rt.base_url}{tenant}", error="invalid_token", '
        f'error_description="{error}"'
    }


def authenticate(rt: Runtime, request: web.Request) -> Claims:
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("bearer "):
        rt.stats.unauthenticated_attempts += 1
        raise ArmError(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            _www_authenticate(
                rt, "common", "The authentication failed because of missing 'Authorization' header."
            ),
        )
    try:
        claims = rt.tokens.verify(header[7:].strip())
    except TokenError as exc:
        if exc.code == "ExpiredAuthenticationToken":
            rt.stats.expired_token_attempts += 1
        else:
            rt.stats.unauthenticated_attempts += 1
        raise ArmError(401, exc.code, exc.message, _www_authenticate(rt, "common", exc.message)) from None
    if str(claims.get("aud", "")) not in rt.audiences:
        rt.stats.unauthenticated_attempts += 1
        raise ArmError(
            401,
            "InvalidAuthenticationTokenAudience",
            f"The access token has been obtained for wrong audience or resource '{claims.get('aud')}'. It "
            "should "
            f"exactly match with one of the allowed audiences '{rt.base_url}'.",
            _www_authenticate(rt, str(claims.get("tid", "common")), "The access token audience is invalid."),
        )
    return claims


def subscription_of(route: Route, groups: dict[str, str]) -> str | None:
    if "sub" in groups:
        return groups["sub"]
    if route.name in ("deny", "lighthouse"):
        m = _SCOPE_SUB.match(groups.get("scope", ""))
        return m.group(1) if m else None
    return None


def check_tenant(
    rt: Runtime,
    route: Route,
    method: str,
    sub_id: str | None,
    claims: Claims,
    groups: dict[str, str] | None = None,
    path: str = "",
) -> str | None:
    """Tenant isolation: a token is good for its own tenant's subscriptions, for scopes its tenant was
    delegated (Lighthouse, with the delegated roles' actions) and, for reads, for what a publisher may
    read of its applications. Anything else is a 401 counted as a cross-tenant attempt. Returns the
    subscription's tenant."""
    if sub_id is None:
        return None
    sub = rt.state.subscriptions.get(sub_id.lower())
    if sub is None:
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found.")
    tid = str(claims.get("tid", ""))
    # Documented simplification: any authenticated caller may read a definition (service catalog /
    # marketplace sharing is out of scope); writes to it still need the publisher tenant.
    if route.name == "definition" and method == "GET":
        return sub.tenant_id
    if sub.tenant_id.lower() != tid.lower() and not _cross_tenant_allowed(
        rt, route, method, groups or {}, path, claims
    ):
        rt.stats.cross_tenant_attempts += 1
        raise ArmError(
            401,
            "InvalidAuthenticationTokenTenant",
            f"The access token is from the wrong issuer '{rt.base_url}{tid}/v2.0'. It must match the tenant "
            f"'{rt.base_url}{sub.tenant_id}/v2.0' associated with this subscription. Please use the "
            "authority "
            f"(URL) '{rt.base_url}{sub.tenant_id}' to get the token. Note, if the subscription is "
            "transferred to "
            "another tenant there is no impact to the services, but information about new tenant could take "
            "time to propagate (up to an hour). If you just transferred your subscription and see this error "
            "message, please try back later.",
            _www_authenticate(rt, sub.tenant_id, "The access token is from the wrong issuer."),
        )
    return sub.tenant_id


def _cross_tenant_allowed(
    rt: Runtime, route: Route, method: str, groups: dict[str, str], path: str, claims: Claims
) -> bool:
    """A delegated scope (403 naming the missing action when the delegated roles lack it) or a
    publisher's read; False when neither applies."""
    tid, oid = str(claims.get("tid", "")), str(claims.get("oid", ""))
    roles = lighthouse.delegated_roles(rt.state, path, tid, oid)
    if roles is not None:
        action = required_action(route, method, groups)
        if not lighthouse.allows(roles, action):
            raise ArmError(
                403,
                "AuthorizationFailed",
                f"The client '{oid}' with object id '{oid}' does not have authorization to perform action "
                f"'{action}' over scope '{path}' or the scope is invalid. If access was recently granted, "
                "please refresh your credentials.",
            )
        return True
    return method == "GET" and lighthouse.publisher_may_read(rt.state, path, tid, oid)


def required_action(route: Route, method: str, groups: dict[str, str]) -> str:
    """The RBAC action a request needs (what AuthorizationFailed names)."""
    if method == "GET":
        found = READ_ACTIONS.get(route.name) or _OTHER_READS.get(route.name)
        return found or f"Microsoft.Resources/{route.resource_type}/read"
    template = ACTIONS.get((route.name, method))
    if template is not None:
        return template.format(action=groups.get("action", ""))
    return f"Microsoft.Resources/{route.resource_type}/write"


ACTIONS: dict[tuple[str, str], str] = {
    ("app", "PUT"): "Microsoft.Solutions/applications/write",
    ("app", "PATCH"): "Microsoft.Solutions/applications/write",
    ("app", "DELETE"): "Microsoft.Solutions/applications/delete",
    ("app_action", "POST"): "Microsoft.Solutions/applications/{action}/action",
    ("definition", "PUT"): "Microsoft.Solutions/applicationDefinitions/write",
    ("definition", "PATCH"): "Microsoft.Solutions/applicationDefinitions/write",
    ("definition", "DELETE"): "Microsoft.Solutions/applicationDefinitions/delete",
}
READ_ACTIONS: dict[str, str] = {
    "app": "Microsoft.Solutions/applications/read",
    "apps": "Microsoft.Solutions/applications/read",
    "deny": "Microsoft.Authorization/denyAssignments/read",
    "rg": "Microsoft.Resources/subscriptions/resourceGroups/read",
    "rgs": "Microsoft.Resources/subscriptions/resourceGroups/read",
}
# Further reads a delegated token needs an action for (publisher_access "none" still allows these).
_OTHER_READS: dict[str, str] = {
    "subscription": "Microsoft.Resources/subscriptions/read",
    "op": "Microsoft.Solutions/locations/operationStatuses/read",
    "permissions": "Microsoft.Authorization/permissions/read",
    "lighthouse": "Microsoft.ManagedServices/registrationAssignments/read",
}


def _subscription_wide(route: Route, groups: dict[str, str]) -> bool:
    """A listing of applications or deny assignments over a whole subscription."""
    if route.name == "apps":
        return not groups.get("rg")
    if route.name == "deny":
        return "/resourcegroups/" not in groups.get("scope", "").lower()
    return False


def check_access(ctx: Ctx) -> None:
    """publisher_access on the tenant: read-only refuses writes, none refuses reads too, by-id refuses
    subscription-wide listings (403)."""
    tenant = ctx.tenant
    if tenant is None or tenant.publisher_access == "full":
        return
    route, method = ctx.route, ctx.method
    action: str | None = None
    if method == "GET":
        if tenant.publisher_access == "none":
            action = READ_ACTIONS.get(route.name)
        elif tenant.publisher_access == "by-id" and _subscription_wide(route, ctx.groups):
            action = READ_ACTIONS.get(route.name)  # a role on resource groups only: no listing
    else:
        template = ACTIONS.get((route.name, method))
        if template is not None:
            action = template.format(action=ctx.groups.get("action", ""))
    if action is None:
        return
    scope = ctx.request.path
    oid = ctx.claims.get("oid", "")
    raise ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' "
        f"over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your "
        "credentials.",
    )


def _next_link(ctx: Ctx, token: str) -> str:
    """An absolute nextLink carrying api-version, the original $filter and the skip token."""
    query = {"api-version": ctx.api_version}
    if "$filter" in ctx.request.query:
        query["$filter"] = ctx.request.query["$filter"]
    query["$skiptoken"] = token
    return f"{ctx.rt.base_url}{ctx.request.path.lstrip('/')}?{urlencode(query)}"


def keyed_page(ctx: Ctx, rows_after: Callable[[str | None], Iterator[tuple[str, Any]]]) -> dict[str, Any]:
    """One page of an index scan, resuming after the sort key in the skip token.

    `rows_after(key)` yields (sort key, item) in order, strictly after `key`. Each page reads only
    its own rows plus one to know whether a next page exists, so a whole listing costs O(rows)."""
    size = max(1, ctx.rt.settings.page_size)
    raw = ctx.request.query.get("$skiptoken", "")
    after: str | None = None
    if raw:
        try:
            after = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-8")
        except (binascii.Error, ValueError):
            raise ArmError(400, "InvalidSkipToken", f"The skip token '{raw}' is invalid.") from None
    page: list[Any] = []
    last = ""
    for sort_key, item in rows_after(after):
        if len(page) == size:
            token = base64.urlsafe_b64encode(last.encode("utf-8")).decode("ascii").rstrip("=")
            return {"value": page, "nextLink": _next_link(ctx, token)}
        page.append(item)
        last = sort_key
    return {"value": page}


def page_of(ctx: Ctx, items: list[Any]) -> dict[str, Any]:
    """One page of a small in-memory list, with an offset skip token."""
    size = max(1, ctx.rt.settings.page_size)
    raw = ctx.request.query.get("$skiptoken", "")
    try:
        offset = int(raw, 16) if raw else 0
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", f"The skip token '{raw}' is invalid.") from None
    body: dict[str, Any] = {"value": items[offset : offset + size]}
    if offset + size < len(items):
        body["nextLink"] = _next_link(ctx, f"{offset + size:08x}")
    return body
