"""The fleet config file (TOML): the cloud, and the tenants with their credentials, rings and windows.

Validated with pydantic; every problem becomes one `ConfigError` line naming the file and the field.
Secrets are never stored in this model: only where to find them (an environment variable or a file),
except an inline secret behind an explicit opt-in, held as `SecretStr` so it never prints.
"""

from __future__ import annotations

import re
import tomllib
from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.errors import ConfigError
from orchestrator.fields import Guid, HttpsEndpoint, PemBundle, PrivateFile
from orchestrator.untrusted import UnreadableFile, read_regular_file

KNOWN_CLOUDS: dict[str, tuple[str, str]] = {
    # name: (ARM endpoint, authority host)
    "AzureCloud": ("https://management.azure.com/", "https://login.microsoftonline.com/"),
    "AzureUSGovernment": ("https://management.usgovcloudapi.net/", "https://login.microsoftonline.us/"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn/", "https://login.chinacloudapi.cn/"),
}


MAX_CONFIG_BYTES = 16 * 1024 * 1024


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CloudConfig(_Model):
    name: str = "AzureCloud"  # one of KNOWN_CLOUDS, or "custom"
    arm_endpoint: HttpsEndpoint | None = None
    authority_host: HttpsEndpoint | None = None
    # Audience for ARM tokens; defaults to the ARM endpoint (what ARM accepts for custom clouds).
    token_audience: str | None = None
    ca_bundle: PemBundle | None = None  # PEM bundle to trust, for custom clouds and the emulator

    @model_validator(mode="after")
    def _resolve(self) -> CloudConfig:
        if self.name == "custom":
            if not self.arm_endpoint or not self.authority_host:
                raise ValueError("a custom cloud needs arm_endpoint and authority_host")
        elif self.name not in KNOWN_CLOUDS:
            raise ValueError(f"unknown cloud {self.name!r}; use one of {', '.join(KNOWN_CLOUDS)} or 'custom'")
        return self

    @property
    def arm(self) -> str:
        return (self.arm_endpoint or KNOWN_CLOUDS[self.name][0]).rstrip("/") + "/"

    @property
    def authority(self) -> str:
        return (self.authority_host or KNOWN_CLOUDS[self.name][1]).rstrip("/") + "/"

    @property
    def scope(self) -> str:
        """The OAuth scope for ARM tokens."""
        audience = (self.token_audience or self.arm).rstrip("/")
        return audience + "/.default"


class ClientSecretCredentialConfig(_Model):
    kind: Literal["client_secret"]
    client_id: Guid
    secret_env: str | None = None  # name of an environment variable holding the secret
    # A file holding only the secret (e.g. a mounted Kubernetes secret), readable by its owner only.
    secret_file: PrivateFile | None = None
    secret: SecretStr | None = None  # inline: only with allow_inline_secret = true
    allow_inline_secret: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> ClientSecretCredentialConfig:
        sources = [s for s in (self.secret_env, self.secret_file, self.secret) if s is not None]
        if len(sources) != 1:
            raise ValueError("give exactly one of secret_env, secret_file or secret")
        if self.secret is not None and not self.allow_inline_secret:
            raise ValueError("an inline secret needs allow_inline_secret = true (prefer secret_env)")
        return self


class ClientCertificateCredentialConfig(_Model):
    kind: Literal["client_certificate"]
    client_id: Guid
    certificate_path: PrivateFile
    certificate_password_env: str | None = None


class WorkloadIdentityCredentialConfig(_Model):
    kind: Literal["workload_identity"]
    client_id: Guid
    token_file: Path  # the federated token file (e.g. AZURE_FEDERATED_TOKEN_FILE)


class ManagedIdentityCredentialConfig(_Model):
    kind: Literal["managed_identity"]
    client_id: Guid | None = None  # user-assigned identity; omit for system-assigned


class AzureCliCredentialConfig(_Model):
    kind: Literal["azure_cli"]


class DefaultCredentialConfig(_Model):
    kind: Literal["default"]


CredentialConfig = Annotated[
    ClientSecretCredentialConfig
    | ClientCertificateCredentialConfig
    | WorkloadIdentityCredentialConfig
    | ManagedIdentityCredentialConfig
    | AzureCliCredentialConfig
    | DefaultCredentialConfig,
    Field(discriminator="kind"),
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class WeeklyWindow(_Model):
    """A recurring maintenance window in the tenant's local time."""

    days: tuple[Weekday, ...]
    start: time
    duration_minutes: int = Field(gt=0, le=7 * 24 * 60)
    timezone: str = "UTC"  # IANA name

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA time zone {value!r}") from exc
        return value


class MaintenanceConfig(_Model):
    windows: tuple[WeeklyWindow, ...] = ()
    blackout_dates: tuple[date, ...] = ()


class TenantConfig(_Model):
    id: Guid
    name: str = ""
    credential: CredentialConfig
    # "all": every subscription the credential can see; or an explicit list of subscription ids.
    subscriptions: Literal["all"] | tuple[Guid, ...] = "all"
    ring: str = "default"
    tags: dict[str, str] = Field(default_factory=dict)
    maintenance: MaintenanceConfig | None = None  # falls back to FleetConfig.maintenance

    @property
    def display_name(self) -> str:
        return self.name or self.id


class ConcurrencyConfig(_Model):
    # Optional safety limits on apps in progress; unset, ARM's own signals pace a wave.
    global_limit: int | None = Field(default=None, ge=1)
    per_subscription: int | None = Field(default=None, ge=1)


class FleetConfig(_Model):
    cloud: CloudConfig = CloudConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    tenants: tuple[TenantConfig, ...]

    @model_validator(mode="after")
    def _unique_tenants(self) -> FleetConfig:
        seen: set[str] = set()
        for tenant in self.tenants:
            key = tenant.id.lower()
            if key in seen:
                raise ValueError(f"tenant {tenant.id} is listed twice")
            seen.add(key)
        return self

    def tenant(self, tenant_id: str) -> TenantConfig:
        for tenant in self.tenants:
            if tenant.id.lower() == tenant_id.lower():
                return tenant
        raise KeyError(tenant_id)

    def maintenance_for(self, tenant: TenantConfig) -> MaintenanceConfig:
        return tenant.maintenance if tenant.maintenance is not None else self.maintenance


_UNION_TAG = re.compile(r"[a-z]+\[.*\]")  # pydantic's name for a union branch: literal['all'], tuple[...]


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors()
    # A field that is a union (`"all"` or a list of GUIDs) fails every branch: show the branch's own
    # problem (a value error, e.g. "not a GUID") rather than "Input should be 'all'".
    err = next((e for e in errors if e["type"] == "value_error"), errors[0])
    where = ".".join(
        str(p)
        for p in err["loc"]
        if not str(p).endswith("Config") and p != "custom-error" and not _UNION_TAG.fullmatch(str(p))
    )
    message = str(err["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {message}{more}" if where else f"{message}{more}"


def load_config(path: Path) -> FleetConfig:
    """Read and validate a fleet config; relative paths in it are resolved against its folder."""
    try:
        raw = tomllib.loads(read_regular_file(path, limit=MAX_CONFIG_BYTES).decode("utf-8"))
    except UnreadableFile as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: cannot read: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        # Paths in the config are relative to its folder (the field types in orchestrator.fields).
        config = FleetConfig.model_validate(raw, context={"base": path.parent})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    return _resolve_paths(config, path.parent)


def _resolve_paths(config: FleetConfig, base: Path) -> FleetConfig:
    def fix(p: Path | None) -> Path | None:
        return p if p is None or p.is_absolute() else (base / p).resolve()

    cloud = config.cloud.model_copy(update={"ca_bundle": fix(config.cloud.ca_bundle)})
    tenants = []
    for tenant in config.tenants:
        cred = tenant.credential
        updates: dict[str, Path | None] = {}
        for field in ("secret_file", "certificate_path", "token_file"):
            if getattr(cred, field, None) is not None:
                updates[field] = fix(getattr(cred, field))
        tenants.append(tenant.model_copy(update={"credential": cred.model_copy(update=updates)}))
    return config.model_copy(update={"cloud": cloud, "tenants": tuple(tenants)})
