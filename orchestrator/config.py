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
from orchestrator.fields import ConfigPath, Guid, HttpsEndpoint, PemBundle, PrivateFile
from orchestrator.models import AccessPath
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
    token_file: ConfigPath  # the federated token file (e.g. AZURE_FEDERATED_TOKEN_FILE)


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


# -- identities and customers (issue 8) --------------------------------------------------------------
# An identity is a credential with its home tenant; a customer is a tenant reached through one path
# (per customer, or per subscription where a customer mixes). `[[tenants]]` stays valid: each entry is
# one identity (named by its tenant id) and one `direct` customer.

# Paths on which `apply` writes the application; on the others the customer runs the update (a kit).
WRITING_PATHS: frozenset[str] = frozenset({"direct", "delegated"})
# Paths whose apps come from an explicit list of application ids, read one by one.
BY_ID_PATHS: frozenset[str] = frozenset({"publisher", "customer-run"})


class IdentityConfig(_Model):
    name: str = Field(min_length=1)
    tenant_id: str  # the identity's home tenant
    credential: CredentialConfig

    def as_tenant(self) -> TenantConfig:
        """The credential's shape for `build_credential` (bound to the home tenant)."""
        return TenantConfig.model_construct(id=self.tenant_id, name=self.name, credential=self.credential)


class SubscriptionPathConfig(_Model):
    """A subscription of a customer reached another way than the customer's default path."""

    id: str
    path: AccessPath
    identity: str | None = None  # defaults to the customer's identity


class CustomerConfig(_Model):
    id: str  # the customer's tenant id
    name: str = ""
    ring: str = "default"
    tags: dict[str, str] = Field(default_factory=dict)
    maintenance: MaintenanceConfig | None = None
    path: AccessPath = "direct"
    identity: str | None = None  # name of an [[identities]] entry; optional only for customer-run
    subscriptions: Literal["all"] | tuple[str, ...] = "all"
    # A text file of application ids, one a line ('#' comments): the apps of by-id paths.
    apps: ConfigPath | None = None
    subscription_paths: tuple[SubscriptionPathConfig, ...] = ()
    # Filled by load_config from the `apps` file (lower-case-insensitive ids, as written).
    app_ids: tuple[str, ...] = ()

    @property
    def display_name(self) -> str:
        return self.name or self.id

    def route(self, subscription_id: str) -> tuple[AccessPath, str | None]:
        """(path, identity name) for one of this customer's subscriptions."""
        for sub in self.subscription_paths:
            if sub.id.lower() == subscription_id.lower():
                return sub.path, sub.identity or self.identity
        return self.path, self.identity

    @property
    def paths(self) -> frozenset[str]:
        return frozenset({self.path, *(s.path for s in self.subscription_paths)})

    @property
    def named_subscriptions(self) -> tuple[str, ...]:
        """The subscriptions the config names for this customer: its list, its subscription paths
        and those of the applications its `apps` file lists."""
        listed = self.subscriptions if self.subscriptions != "all" else ()
        return (*listed, *(s.id for s in self.subscription_paths), *(a.split("/")[2] for a in self.app_ids))


class ConcurrencyConfig(_Model):
    # Optional safety limits on apps in progress; unset, ARM's own signals pace a wave.
    global_limit: int | None = Field(default=None, ge=1)
    per_subscription: int | None = Field(default=None, ge=1)


class FleetConfig(_Model):
    cloud: CloudConfig = CloudConfig()
    concurrency: ConcurrencyConfig = ConcurrencyConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    tenants: tuple[TenantConfig, ...] = ()
    identities: tuple[IdentityConfig, ...] = ()
    customers: tuple[CustomerConfig, ...] = ()

    @model_validator(mode="after")
    def _unique_tenants(self) -> FleetConfig:
        if not self.tenants and not self.customers:
            raise ValueError("tenants: give at least one [[tenants]] or [[customers]] entry")
        seen: set[str] = set()
        for tenant in self.tenants:
            key = tenant.id.lower()
            if key in seen:
                raise ValueError(f"tenant {tenant.id} is listed twice")
            seen.add(key)
        return self

    @model_validator(mode="after")
    def _customers_and_identities(self) -> FleetConfig:
        identities = {i.name: i for i in self.identity_list}
        if len(identities) != len(self.identity_list):
            names = [i.name for i in self.identity_list]
            raise ValueError(f"identity {next(n for n in names if names.count(n) > 1)!r} is listed twice")
        seen: set[str] = set()
        owner: dict[str, CustomerConfig] = {}  # subscription -> customer naming it
        for n, customer in enumerate(self.customer_list):
            where = f"customers.{n}" if customer in self.customers else f"tenants ({customer.id})"
            if customer.id.lower() in seen:
                raise ValueError(f"{where}: customer {customer.id} is listed twice")
            seen.add(customer.id.lower())
            for sub in {s.lower() for s in customer.named_subscriptions}:
                other = owner.setdefault(sub, customer)
                if other.id.lower() != customer.id.lower():
                    raise ValueError(
                        f"subscription {sub} is listed under two customers: "
                        f"{other.display_name} and {customer.display_name}"
                    )
            for path, name in [(customer.path, customer.identity)] + [
                (s.path, s.identity or customer.identity) for s in customer.subscription_paths
            ]:
                _check_route(where, customer, path, name, identities)
            if customer.paths & BY_ID_PATHS and customer.apps is None:
                raise ValueError(f'{where}: path {customer.path!r} needs apps = "FILE" (application ids)')
        return self

    @property
    def identity_list(self) -> tuple[IdentityConfig, ...]:
        """Every identity: the [[identities]] and one per legacy [[tenants]] entry (named by tenant id)."""
        legacy = tuple(
            IdentityConfig(name=t.id, tenant_id=t.id, credential=t.credential) for t in self.tenants
        )
        return self.identities + legacy

    @property
    def customer_list(self) -> tuple[CustomerConfig, ...]:
        """Every customer: the [[customers]] and one `direct` customer per legacy [[tenants]] entry."""
        legacy = tuple(
            CustomerConfig(
                id=t.id,
                name=t.name,
                ring=t.ring,
                tags=t.tags,
                maintenance=t.maintenance,
                path="direct",
                identity=t.id,
                subscriptions=t.subscriptions,
            )
            for t in self.tenants
        )
        return self.customers + legacy

    def identity(self, name: str) -> IdentityConfig:
        for identity in self.identity_list:
            if identity.name == name:
                return identity
        raise KeyError(name)

    def customer(self, tenant_id: str) -> CustomerConfig:
        for customer in self.customer_list:
            if customer.id.lower() == tenant_id.lower():
                return customer
        raise KeyError(tenant_id)

    def tenant(self, tenant_id: str) -> TenantConfig:
        for tenant in self.tenants:
            if tenant.id.lower() == tenant_id.lower():
                return tenant
        raise KeyError(tenant_id)

    def maintenance_for(self, tenant: TenantConfig | CustomerConfig) -> MaintenanceConfig:
        return tenant.maintenance if tenant.maintenance is not None else self.maintenance


def _check_route(
    where: str, customer: CustomerConfig, path: str, name: str | None, identities: dict[str, IdentityConfig]
) -> None:
    if name is None:
        if path != "customer-run":
            raise ValueError(f'{where}: path {path!r} needs identity = "NAME" (an [[identities]] entry)')
        return
    identity = identities.get(name)
    if identity is None:
        raise ValueError(f"{where}: identity {name!r} is not in [[identities]]")
    home = identity.tenant_id.lower() == customer.id.lower()
    if path == "direct" and not home:
        raise ValueError(
            f"{where}: path 'direct' needs an identity whose home tenant is {customer.id}; "
            f"{name!r} belongs to {identity.tenant_id} (use path 'delegated' for Lighthouse)"
        )
    if path == "delegated" and home:
        raise ValueError(f"{where}: path 'delegated' needs an identity from another (the managing) tenant")


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
    return _load_app_lists(config, path)


def read_app_ids(path: Path) -> tuple[str, ...]:
    """Application resource ids from a list file: one a line, blank lines and '#' comments ignored."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (application id list)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    ids: list[str] = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.strip("/").split("/")
        if (
            len(parts) != 8
            or parts[0].lower() != "subscriptions"
            or parts[2].lower() != "resourcegroups"
            or "/".join(parts[4:7]).lower() != "providers/microsoft.solutions/applications"
        ):
            raise ConfigError(f"{path}:{n}: not an application resource id: {line[:120]!r}")
        ids.append("/" + "/".join(parts))
    return tuple(ids)


def _load_app_lists(config: FleetConfig, config_path: Path) -> FleetConfig:
    """Read each customer's `apps` file; an app's subscription must not belong to another customer."""
    if not any(c.apps for c in config.customers):
        return config
    owner = {sub.lower(): c for c in config.customer_list for sub in c.named_subscriptions}
    customers = []
    for customer in config.customers:
        ids = read_app_ids(customer.apps) if customer.apps is not None else ()
        for app_id in ids:
            other = owner.setdefault(app_id.split("/")[2].lower(), customer)
            if other.id.lower() != customer.id.lower():
                raise ConfigError(
                    f"{config_path}: {customer.apps}: subscription {app_id.split('/')[2]} is listed under "
                    f"two customers: {other.display_name} and {customer.display_name}"
                )
        customers.append(customer.model_copy(update={"app_ids": ids}))
    return config.model_copy(update={"customers": tuple(customers)})
