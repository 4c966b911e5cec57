"""Entra ID routes: per-tenant OpenID configuration, the v2.0 token endpoint, instance discovery.

MSAL (the sync ClientSecretCredential) reads `{authority}/v2.0/.well-known/openid-configuration`
when instance discovery is disabled, or `/common/discovery/instance` first when it is not
(msal/authority.py); the aio credential posts straight to `{authority}/{tenant}/oauth2/v2.0/token`.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from orchestrator.emulator.armhttp import json_response
from orchestrator.emulator.runtime import Runtime
from orchestrator.emulator.state import Tenant
from orchestrator.emulator.tokens import unverified_claims

OPENID_RE = re.compile(r"^/([^/]+)/v2\.0/\.well-known/openid-configuration$", re.IGNORECASE)
TOKEN_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/token$", re.IGNORECASE)
DISCOVERY_RE = re.compile(r"^/([^/]+)/discovery/instance$", re.IGNORECASE)
KEYS_RE = re.compile(r"^/([^/]+)/discovery/v2\.0/keys$", re.IGNORECASE)
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def is_entra_path(path: str) -> bool:
    return bool(
        TOKEN_RE.match(path) or OPENID_RE.match(path) or DISCOVERY_RE.match(path) or KEYS_RE.match(path)
    )


def _aad_error(status: int, error: str, code: int, description: str) -> web.Response:
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    return json_response(
        {
            "error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace} Correlation ID: {corr} "
            f"Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(code),
        },
        status,
    )


def openid_configuration(rt: Runtime, tenant: str) -> dict[str, Any]:
    base = rt.base_url
    return {
        "token_endpoint": f"{base}{tenant}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}{tenant}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}{tenant}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}oidc/userinfo",
        "authorization_endpoint": f"{base}{tenant}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}{tenant}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}{tenant}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "tid", "oid", "appid"],
        "kerberos_endpoint": f"{base}{tenant}/kerberos",
        "tenant_region_scope": "WW",
        "cloud_instance_name": "emulator.local",
        "cloud_graph_host_name": "graph.emulator.local",
        "msgraph_host": "graph.emulator.local",
        "rbac_url": rt.base_url,
    }


async def handle(rt: Runtime, request: web.Request) -> web.Response:
    path = request.path
    m = OPENID_RE.match(path)
    if m and request.method == "GET":
        tenant = m.group(1)
        if tenant.lower() not in rt.state.tenants and tenant.lower() not in ("common", "organizations"):
            return _aad_error(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the "
                "correct tenant ID and are signing into the correct cloud.",
            )
        return json_response(openid_configuration(rt, tenant))
    m = DISCOVERY_RE.match(path)
    if m and request.method == "GET":
        endpoint = request.query.get("authorization_endpoint", "")
        # MSAL passes "https://host/{tenant}/oauth2/v2.0/authorize"; the tenant is the first path segment.
        segments = urlsplit(endpoint).path.strip("/").split("/") if endpoint else []
        tenant = segments[0] if segments and segments[0] else m.group(1)
        return json_response(
            {
                "tenant_discovery_endpoint": f"{rt.base_url}{tenant}/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [
                    {
                        "preferred_network": request.host,
                        "preferred_cache": request.host,
                        "aliases": [request.host],
                    }
                ],
            }
        )
    m = KEYS_RE.match(path)
    if m and request.method == "GET":
        # Tokens are HS256 with a private emulator key; there is no public key to publish.
        return json_response({"keys": []})
    m = TOKEN_RE.match(path)
    if m and request.method == "POST":
        return await _token(rt, request, m.group(1))
    return _aad_error(404, "invalid_request", 90027, f"The route {path} is not emulated.")


class _Refused(Exception):
    """A token request Entra refuses: rendered by `_aad_error` and counted as a token failure."""

    def __init__(self, status: int, error: str, code: int, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.code, self.description = status, error, code, description


async def _token(rt: Runtime, request: web.Request, tenant_id: str) -> web.Response:
    form = await request.post()
    try:
        tenant = _client(rt, form, tenant_id)
        audience = _audience(str(form.get("scope", "")))
    except _Refused as refused:
        rt.stats.token_failures += 1
        return _aad_error(refused.status, refused.error, refused.code, refused.description)
    token, lifetime = rt.tokens.issue(
        {
            "aud": audience,
            "iss": f"{rt.base_url}{tenant.id}/v2.0",
            "tid": tenant.id,
            "oid": tenant.principal_id,
            "sub": tenant.principal_id,
            "appid": tenant.client_id,
            "idtyp": "app",
            "ver": "2.0",
        }
    )
    rt.stats.tokens_issued += 1
    return json_response(
        {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}
    )


def _client(rt: Runtime, form: Mapping[str, Any], tenant_id: str) -> Tenant:
    """The client-credentials grant's tenant and client, proven by a secret or a federated assertion."""
    grant = str(form.get("grant_type", ""))
    client_id = str(form.get("client_id", ""))
    if grant != "client_credentials":
        raise _Refused(
            400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant}'."
        )
    tenant = rt.state.tenants.get(tenant_id.lower())
    if tenant is None:
        raise _Refused(400, "invalid_request", 90002, f"Tenant '{tenant_id}' not found.")
    if tenant.client_id.lower() != client_id.lower():
        raise _Refused(
            400,
            "unauthorized_client",
            700016,
            f"Application with identifier '{client_id}' was not found in the directory '{tenant_id}'.",
        )
    secret = form.get("client_secret")
    assertion = form.get("client_assertion")
    if secret is not None:
        if str(secret) != tenant.client_secret:
            raise _Refused(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{client_id}'.",
            )
    elif assertion is not None and form.get("client_assertion_type") == ASSERTION_TYPE:
        # Workload identity: the federated token's shape and audience are checked, its issuer is not.
        claims = unverified_claims(str(assertion))
        if claims is None or claims.get("aud") not in (
            "api://AzureADTokenExchange",
            ["api://AzureADTokenExchange"],
        ):
            raise _Refused(
                400,
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion.",
            )
    else:
        raise _Refused(
            401,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
    return tenant


def _audience(scope: str) -> str:
    """The token's audience: like Entra, everything before "/.default" ("https://x//.default" →
    "https://x/"); client-credentials flows must ask for a /.default scope."""
    if not scope.endswith("/.default"):
        raise _Refused(
            400,
            "invalid_scope",
            1002012,
            f"The provided value for scope {scope} is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the resource identifier (application "
            "ID URI).",
        )
    return scope.split(" ")[0].removesuffix("/.default")
