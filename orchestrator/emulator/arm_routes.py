"""ARM route table and what a request carries after dispatch (Ctx): match, kind, api-version.

Paths are matched case-insensitively (ARM treats `resourcegroups` and `resourceGroups` alike) with
precompiled regexes; who may call a route is arm_access.py, the handlers are arm_handlers.py and
arm_scopes.py, what they answer is in the model modules (applications, definitions, denies, directory).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from orchestrator.emulator.errors import ArmError, missing_api_version
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.state import Tenant
from orchestrator.emulator.tokens import Claims
from orchestrator.emulator.versions import API_VERSIONS, LOCATIONS

_I = re.IGNORECASE
_SUB = r"^/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"


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
        raise missing_api_version()
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


def subscription_of(route: Route, groups: dict[str, str]) -> str | None:
    if "sub" in groups:
        return groups["sub"]
    if route.name in ("deny", "lighthouse"):
        m = _SCOPE_SUB.match(groups.get("scope", ""))
        return m.group(1) if m else None
    return None
