"""Entra ID: discovery documents and client-credential tokens, through the real azure-identity credentials."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError

from orchestrator.emulator.testing import EmulatorHandle
from tests.emulator.conftest import aio_credential, raw, sync_credential, tenant_of

pytestmark = pytest.mark.integration


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_openid_configuration_points_at_the_emulator(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tid = fleet["tenants"][0]["id"]
    status, _, body = raw(emulator, "GET", f"{tid}/v2.0/.well-known/openid-configuration")
    assert status == 200
    assert body["token_endpoint"] == f"{emulator.url}{tid}/oauth2/v2.0/token"
    assert body["issuer"] == f"{emulator.url}{tid}/v2.0"
    assert body["authorization_endpoint"].startswith(emulator.url)


def test_unknown_tenant_discovery_is_an_aadsts_error(emulator: EmulatorHandle) -> None:
    status, _, body = raw(
        emulator, "GET", "11111111-1111-1111-1111-111111111111/v2.0/.well-known/openid-configuration"
    )
    assert status == 400
    assert body["error_codes"] == [90002]


def test_instance_discovery_answers_msal(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tid = fleet["tenants"][0]["id"]
    auth = f"{emulator.url}{tid}/oauth2/v2.0/authorize"
    status, _, body = raw(
        emulator, "GET", f"common/discovery/instance?api-version=1.1&authorization_endpoint={auth}"
    )
    assert status == 200
    assert body["tenant_discovery_endpoint"] == f"{emulator.url}{tid}/v2.0/.well-known/openid-configuration"


def test_sync_credential_gets_a_jwt_with_the_expected_claims(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = tenant_of(emulator, fleet)
    token = sync_credential(emulator, tenant).get_token(emulator.url + ".default")
    claims = _claims(token.token)
    assert claims["tid"] == tenant.id
    assert claims["appid"] == tenant.client_id
    assert claims["oid"] == tenant.raw["principal_id"]
    # Like Entra, the resource is everything before "/.default": "https://host:port/.default" → no slash.
    assert claims["aud"] == emulator.url.rstrip("/")
    assert str(claims["iss"]).startswith(emulator.url)
    assert int(claims["exp"]) - int(claims["iat"]) == 3600
    assert {"nbf", "iat", "exp"} <= set(claims)


async def test_aio_credential_gets_a_token(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    tenant = tenant_of(emulator, fleet, 1)
    async with aio_credential(emulator, tenant) as cred:
        token = await cred.get_token(emulator.url + ".default")
    assert _claims(token.token)["tid"] == tenant.id


def test_wrong_secret_is_client_authentication_error_sync(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = tenant_of(emulator, fleet)
    with pytest.raises(ClientAuthenticationError) as info:
        sync_credential(emulator, tenant, secret="not-the-secret").get_token(emulator.url + ".default")
    assert "7000215" in str(info.value)


async def test_wrong_secret_is_client_authentication_error_aio(
    emulator: EmulatorHandle, fleet: dict[str, Any]
) -> None:
    tenant = tenant_of(emulator, fleet)
    async with aio_credential(emulator, tenant, secret="not-the-secret") as cred:
        with pytest.raises(ClientAuthenticationError) as info:
            await cred.get_token(emulator.url + ".default")
    assert "7000215" in str(info.value)


def test_token_endpoint_error_bodies(emulator: EmulatorHandle, fleet: dict[str, Any]) -> None:
    import urllib.error
    import urllib.parse
    import urllib.request

    from tests.emulator.conftest import ssl_context

    tenant = tenant_of(emulator, fleet)

    def post(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(  # noqa: S310
            f"{emulator.url}{tenant.id}/oauth2/v2.0/token",
            data=urllib.parse.urlencode(form).encode(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, context=ssl_context(emulator)) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    base = {
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "scope": emulator.url + ".default",
    }
    status, body = post({**base, "client_secret": "wrong"})
    assert status == 401
    assert body["error"] == "invalid_client"
    assert body["error_codes"] == [7000215]
    assert body["error_description"].startswith("AADSTS7000215: Invalid client secret provided.")
    assert {"timestamp", "trace_id", "correlation_id"} <= set(body)
    status, body = post(
        {**base, "client_id": "00000000-0000-0000-0000-00000000beef", "client_secret": tenant.secret}
    )
    assert status == 400
    assert body["error"] == "unauthorized_client"
    status, body = post({**base, "client_secret": tenant.secret})
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    # Workload identity: a federated assertion is accepted on shape and audience only (documented).
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    payload = (
        base64.urlsafe_b64encode(b'{"aud":"api://AzureADTokenExchange","sub":"system:sa"}')
        .rstrip(b"=")
        .decode()
    )
    assertion = f"{header}.{payload}.sig"
    status, body = post(
        {
            **base,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": assertion,
        }
    )
    assert status == 200
