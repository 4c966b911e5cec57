"""One azure-identity async credential per tenant, built from `TenantConfig.credential`.

Every credential is wrapped in `TenantCredential`, bound to one tenant id: it refuses any token
request for another tenant, so a credential can never be borrowed for another customer. Secrets are
read here (environment variable, file, or an opted-in inline value) and handed straight to
azure-identity; they are never logged, and the wrapper's repr shows only the tenant and the kind.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from azure.core.credentials import AccessToken, AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import (
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)

from orchestrator.config import (
    AzureCliCredentialConfig,
    ClientCertificateCredentialConfig,
    ClientSecretCredentialConfig,
    CloudConfig,
    DefaultCredentialConfig,
    ManagedIdentityCredentialConfig,
    TenantConfig,
    WorkloadIdentityCredentialConfig,
)
from orchestrator.errors import ConfigError
from orchestrator.untrusted import UnreadableFile, read_regular_file

_log = structlog.get_logger(__name__)
MAX_SECRET_BYTES = 64 * 1024  # a client secret is tens of bytes; anything far larger is not one


class TenantCredential:
    """An async token credential that only ever issues tokens for its own tenant."""

    def __init__(self, tenant_id: str, kind: str, inner: Any, *, pass_tenant: bool = False) -> None:
        self.tenant_id = tenant_id
        self.kind = kind
        self._inner = inner
        # The default chain is not built for one tenant: ask each link for ours explicitly.
        self._pass_tenant = pass_tenant
        # One token request at a time: every SDK client has its own auth policy, and without this a
        # burst of first calls would each fetch a token before azure-identity's cache holds one.
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"TenantCredential(tenant_id={self.tenant_id!r}, kind={self.kind!r})"

    def _check_tenant(self, requested: str | None) -> None:
        if requested and requested.lower() != self.tenant_id.lower():
            raise ClientAuthenticationError(
                f"the credential of tenant {self.tenant_id} refuses a token for tenant {requested}"
            )

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        self._check_tenant(tenant_id)
        if self._pass_tenant:
            kwargs["tenant_id"] = self.tenant_id
        if enable_cae:
            kwargs["enable_cae"] = True
        async with self._lock:
            token: AccessToken = await self._inner.get_token(*scopes, claims=claims, **kwargs)
        return token

    async def get_token_info(
        self, *scopes: str, options: TokenRequestOptions | None = None
    ) -> AccessTokenInfo:
        opts: TokenRequestOptions = dict(options or {})  # type: ignore[assignment]
        self._check_tenant(opts.get("tenant_id"))
        if self._pass_tenant:
            opts["tenant_id"] = self.tenant_id
        if hasattr(self._inner, "get_token_info"):
            async with self._lock:
                info: AccessTokenInfo = await self._inner.get_token_info(*scopes, options=opts)
            return info
        token = await self.get_token(*scopes, claims=opts.get("claims"))
        return AccessTokenInfo(token.token, token.expires_on)

    async def close(self) -> None:
        await self._inner.close()

    async def __aenter__(self) -> TenantCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.close()


def build_credential(tenant: TenantConfig, cloud: CloudConfig) -> TenantCredential:
    """The credential for `tenant`, configured for `cloud` (authority, instance discovery, CA bundle).

    Raises `ConfigError` naming the tenant and the variable or file when a secret cannot be read.
    """
    cred = tenant.credential
    common = _common_kwargs(cloud)
    who = _who(tenant)
    if isinstance(cred, ClientSecretCredentialConfig):
        secret = _client_secret(cred, who)
        return TenantCredential(
            tenant.id, cred.kind, ClientSecretCredential(tenant.id, cred.client_id, secret, **common)
        )
    if isinstance(cred, ClientCertificateCredentialConfig):
        password = _env(cred.certificate_password_env, who, "certificate_password_env")
        _readable(cred.certificate_path, who, "certificate_path")
        try:
            inner: Any = CertificateCredential(
                tenant.id,
                cred.client_id,
                certificate_path=str(cred.certificate_path),
                password=password,
                **common,
            )
        except (ValueError, OSError) as exc:
            # azure-identity / cryptography describe the format problem, never the key material.
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ConfigError(
                f"{who}: certificate_path {cred.certificate_path} is not a usable certificate: {reason}"
            ) from None
        return TenantCredential(tenant.id, cred.kind, inner)
    if isinstance(cred, WorkloadIdentityCredentialConfig):
        _readable(cred.token_file, who, "token_file")
        inner = WorkloadIdentityCredential(
            tenant_id=tenant.id, client_id=cred.client_id, token_file_path=str(cred.token_file), **common
        )
        return TenantCredential(tenant.id, cred.kind, inner)
    if isinstance(cred, ManagedIdentityCredentialConfig):
        # A managed identity lives in the tenant of the resource it runs on; there is no authority.
        mi_kwargs: dict[str, Any] = {"client_id": cred.client_id} if cred.client_id else {}
        if cloud.ca_bundle is not None:
            mi_kwargs["connection_verify"] = str(cloud.ca_bundle)
        return TenantCredential(tenant.id, cred.kind, ManagedIdentityCredential(**mi_kwargs))
    if isinstance(cred, AzureCliCredentialConfig):
        return TenantCredential(tenant.id, cred.kind, AzureCliCredential(tenant_id=tenant.id))
    if isinstance(cred, DefaultCredentialConfig):
        inner = DefaultAzureCredential(
            workload_identity_tenant_id=tenant.id,
            shared_cache_tenant_id=tenant.id,
            visual_studio_code_tenant_id=tenant.id,
            additionally_allowed_tenants=[tenant.id],
            **common,
        )
        return TenantCredential(tenant.id, cred.kind, inner, pass_tenant=True)
    raise ConfigError(f"{who}: unsupported credential kind {getattr(cred, 'kind', '?')!r}")


def _common_kwargs(cloud: CloudConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"authority": cloud.authority}
    if cloud.name == "custom":
        # Entra instance discovery only knows Microsoft's clouds; a custom authority must skip it.
        kwargs["disable_instance_discovery"] = True
    if cloud.ca_bundle is not None:
        kwargs["connection_verify"] = str(cloud.ca_bundle)
    return kwargs


def _who(tenant: TenantConfig) -> str:
    return f"tenant {tenant.display_name} ({tenant.id})" if tenant.name else f"tenant {tenant.id}"


def _client_secret(cred: ClientSecretCredentialConfig, who: str) -> str:
    if cred.secret is not None:
        _log.warning(
            "inline client secret in the fleet config is discouraged; use secret_env or secret_file",
            tenant=who,
        )
        value = cred.secret.get_secret_value()
        if not value:
            raise ConfigError(f"{who}: the inline secret is empty")
        return value
    if cred.secret_env is not None:
        from_env = _env(cred.secret_env, who, "secret_env")
        assert from_env is not None
        return from_env
    assert cred.secret_file is not None
    _readable(cred.secret_file, who, "secret_file")
    try:
        value = read_regular_file(cred.secret_file, limit=MAX_SECRET_BYTES).decode("utf-8").strip()
    except UnreadableFile as exc:
        raise ConfigError(f"{who}: secret_file {cred.secret_file}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{who}: secret_file {cred.secret_file} cannot be read: {type(exc).__name__}"
        ) from None
    if not value:
        raise ConfigError(f"{who}: secret_file {cred.secret_file} is empty")
    return value


def _env(name: str | None, who: str, field: str) -> str | None:
    if name is None:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"{who}: environment variable {name} ({field}) is not set")
    return value


def _readable(path: Path, who: str, field: str) -> None:
    if not path.is_file() or not os.access(path, os.R_OK):
        raise ConfigError(f"{who}: {field} {path} does not exist or is not readable")
