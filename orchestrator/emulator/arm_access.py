"""Who may call an ARM route: authentication, tenant isolation (Lighthouse and publisher reads
across tenants) and the tenant's publisher_access (read-only, none, by-id)."""

from __future__ import annotations

from aiohttp import web

from orchestrator.emulator import lighthouse
from orchestrator.emulator.arm_routes import Ctx, Route
from orchestrator.emulator.errors import ArmError
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.tokens import Claims, TokenError


def _authorization_failed(oid: object, action: str, scope: str) -> ArmError:
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{oid}' with object id '{oid}' does not have authorization to perform action '{action}' "
        f"over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your "
        "credentials.",
    )


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
            raise _authorization_failed(oid, action, path)
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
    raise _authorization_failed(ctx.claims.get("oid", ""), action, ctx.request.path)
