"""Config → credential kinds; secrets read from where the config says, never shown."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import (
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from orchestrator import logs
from orchestrator.arm.credentials import TenantCredential, build_credential
from orchestrator.config import CloudConfig, TenantConfig
from orchestrator.errors import ConfigError

SECRET = "s3cr3t-Value-Never-Shown"
TENANT = "11111111-1111-1111-1111-111111111111"
APP = "33333333-3333-3333-3333-333333333333"
CUSTOM = CloudConfig(
    name="custom", arm_endpoint="https://127.0.0.1:8443/", authority_host="https://127.0.0.1:8443/"
)


def tenant(credential: dict[str, Any], name: str = "Contoso") -> TenantConfig:
    return TenantConfig.model_validate({"id": TENANT, "name": name, "credential": credential})


async def test_client_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTOSO_SECRET", SECRET)
    cred = build_credential(
        tenant({"kind": "client_secret", "client_id": APP, "secret_env": "CONTOSO_SECRET"}), CUSTOM
    )
    async with cred:
        assert isinstance(cred._inner, ClientSecretCredential)
        assert cred.tenant_id == TENANT
        assert SECRET not in repr(cred)


async def test_client_secret_from_file_is_stripped(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    secret_file.chmod(0o600)
    cred = build_credential(
        tenant({"kind": "client_secret", "client_id": APP, "secret_file": str(secret_file)}), CUSTOM
    )
    async with cred:
        assert isinstance(cred._inner, ClientSecretCredential)
        assert cred._inner._secret == SECRET  # what azure-identity will send


def test_missing_env_var_is_one_line_naming_tenant_and_variable() -> None:
    with pytest.raises(ConfigError) as info:
        build_credential(
            tenant({"kind": "client_secret", "client_id": APP, "secret_env": "NOPE_SECRET"}), CUSTOM
        )
    message = str(info.value)
    assert "\n" not in message
    assert "NOPE_SECRET" in message and TENANT in message and "Contoso" in message


@pytest.mark.parametrize("content", [None, ""])
def test_missing_or_empty_secret_file_names_the_file(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "secret"
    if content is not None:
        path.write_text(content)
        path.chmod(0o600)
    with pytest.raises(ConfigError) as info:
        build_credential(
            tenant({"kind": "client_secret", "client_id": APP, "secret_file": str(path)}), CUSTOM
        )
    assert str(path) in str(info.value) and TENANT in str(info.value)


async def test_inline_secret_warns_without_the_value() -> None:
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    try:
        cred = build_credential(
            tenant(
                {"kind": "client_secret", "client_id": APP, "secret": SECRET, "allow_inline_secret": True}
            ),
            CUSTOM,
        )
        await cred.close()
    finally:
        logging.getLogger().handlers.clear()
    output = stream.getvalue()
    assert "inline client secret" in output
    assert SECRET not in output


def test_certificate_missing_file_and_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="certificate_path"):
        build_credential(
            tenant(
                {
                    "kind": "client_certificate",
                    "client_id": APP,
                    "certificate_path": str(tmp_path / "none.pem"),
                }
            ),
            CUSTOM,
        )
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    bad.chmod(0o600)
    with pytest.raises(ConfigError, match="not a usable certificate"):
        build_credential(
            tenant({"kind": "client_certificate", "client_id": APP, "certificate_path": str(bad)}), CUSTOM
        )


def test_certificate_password_env_must_exist(tmp_path: Path) -> None:
    pem = tmp_path / "c.pem"
    pem.write_text("x")
    pem.chmod(0o600)
    with pytest.raises(ConfigError, match="CERT_PASSWORD"):
        build_credential(
            tenant(
                {
                    "kind": "client_certificate",
                    "client_id": APP,
                    "certificate_path": str(pem),
                    "certificate_password_env": "CERT_PASSWORD",
                }
            ),
            CUSTOM,
        )


async def test_certificate_credential(tmp_path: Path) -> None:
    import trustme

    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    pem = tmp_path / "client.pem"
    ca.issue_cert(
        "client.example", key_type=trustme.KeyType.RSA
    ).private_key_and_cert_chain_pem.write_to_path(str(pem))
    pem.chmod(0o600)
    cred = build_credential(
        tenant({"kind": "client_certificate", "client_id": APP, "certificate_path": str(pem)}), CUSTOM
    )
    async with cred:
        assert isinstance(cred._inner, CertificateCredential)


async def test_other_kinds(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("federated")
    cases: list[tuple[dict[str, Any], type]] = [
        (
            {"kind": "workload_identity", "client_id": APP, "token_file": str(token_file)},
            WorkloadIdentityCredential,
        ),
        ({"kind": "managed_identity"}, ManagedIdentityCredential),
        ({"kind": "managed_identity", "client_id": APP}, ManagedIdentityCredential),
        ({"kind": "azure_cli"}, AzureCliCredential),
        ({"kind": "default"}, DefaultAzureCredential),
    ]
    for config, expected in cases:
        cred = build_credential(tenant(config), CUSTOM)
        async with cred:
            assert isinstance(cred._inner, expected), config
            assert cred.kind == config["kind"]


def test_workload_identity_needs_its_token_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token_file"):
        build_credential(
            tenant({"kind": "workload_identity", "client_id": APP, "token_file": str(tmp_path / "missing")}),
            CUSTOM,
        )


async def test_custom_cloud_sets_authority_instance_discovery_and_ca_bundle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    captured: dict[str, Any] = {}

    class Spy:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            captured.update(kwargs)

        async def close(self) -> None:
            pass

    monkeypatch.setattr("orchestrator.arm.credentials.ClientSecretCredential", Spy)
    monkeypatch.setenv("S", SECRET)
    cloud = CUSTOM.model_copy(update={"ca_bundle": Path("/tmp/ca.pem")})
    build_credential(tenant({"kind": "client_secret", "client_id": APP, "secret_env": "S"}), cloud)
    assert captured == {
        "authority": "https://127.0.0.1:8443/",
        "disable_instance_discovery": True,
        "connection_verify": "/tmp/ca.pem",
    }
    captured.clear()
    build_credential(tenant({"kind": "client_secret", "client_id": APP, "secret_env": "S"}), CloudConfig())
    assert captured == {"authority": "https://login.microsoftonline.com/"}


class _FakeInner:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls.append(kwargs)
        return AccessToken("tok", 0)

    async def close(self) -> None:
        pass


async def test_a_credential_refuses_tokens_for_another_tenant() -> None:
    inner = _FakeInner()
    cred = TenantCredential(TENANT, "client_secret", inner)
    assert (await cred.get_token("scope/.default", tenant_id=TENANT.upper())).token == "tok"
    with pytest.raises(ClientAuthenticationError, match="refuses a token for tenant other"):
        await cred.get_token("scope/.default", tenant_id="other")
    with pytest.raises(ClientAuthenticationError):
        await cred.get_token_info("scope/.default", options={"tenant_id": "other"})
    assert len(inner.calls) == 1


async def test_the_default_chain_is_asked_for_its_own_tenant() -> None:
    inner = _FakeInner()
    cred = TenantCredential(TENANT, "default", inner, pass_tenant=True)
    await cred.get_token("scope/.default")
    assert inner.calls == [{"claims": None, "tenant_id": TENANT}]
