"""The fleet config loader: every malformed input is one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from orchestrator.config import ClientSecretCredentialConfig, load_config
from orchestrator.errors import ConfigError

GOOD = """
[cloud]
name = "custom"
arm_endpoint = "https://127.0.0.1:8443"
authority_host = "https://127.0.0.1:8443"
ca_bundle = "ca.pem"

[[tenants]]
id = "11111111-1111-1111-1111-111111111111"
name = "Contoso"
ring = "canary"
subscriptions = ["22222222-2222-2222-2222-222222222222"]
credential = { kind = "client_secret", client_id = "APP", secret_file = "secrets/contoso" }
"""

TENANT = """
[[tenants]]
id = "44444444-4444-4444-4444-444444444444"
credential = {credential}
"""


APP = "33333333-3333-3333-3333-333333333333"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.toml"
    path.write_text(text.replace('"APP"', f'"{APP}"'), encoding="utf-8")
    return path


def test_a_good_config_loads_and_resolves_relative_paths(tmp_path: Path) -> None:
    trustme.CA().cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = load_config(write(tmp_path, GOOD))
    assert config.cloud.arm == "https://127.0.0.1:8443/"
    assert config.cloud.scope == "https://127.0.0.1:8443/.default"
    assert config.cloud.ca_bundle == (tmp_path / "ca.pem").resolve()
    tenant = config.tenants[0]
    assert tenant.display_name == "Contoso" and tenant.ring == "canary"
    assert isinstance(tenant.credential, ClientSecretCredentialConfig)
    assert tenant.credential.secret_file == (tmp_path / "secrets/contoso").resolve()


def test_known_clouds_and_token_audience(tmp_path: Path) -> None:
    text = 'cloud = { name = "AzureUSGovernment" }\n' + TENANT.format(credential='{ kind = "azure_cli" }')
    config = load_config(write(tmp_path, text))
    assert config.cloud.arm == "https://management.usgovcloudapi.net/"
    assert config.cloud.authority == "https://login.microsoftonline.us/"


BAD = [
    ("tenants = [", "not valid TOML"),
    ("[cloud]\nname = 'custom'\n", "arm_endpoint and authority_host"),
    (
        "cloud = { name = 'Mars' }\n" + TENANT.format(credential='{ kind = "azure_cli" }'),
        "unknown cloud 'Mars'",
    ),
    ("[cloud]\n", "tenants"),
    (TENANT.format(credential='{ kind = "password" }'), "tenants.0.credential"),
    (
        TENANT.format(credential='{ kind = "client_secret", client_id = "APP" }'),
        "exactly one of secret_env",
    ),
    (
        TENANT.format(
            credential='{ kind = "client_secret", client_id = "APP", secret_env = "X", secret_file = "f" }'
        ),
        "exactly one of secret_env",
    ),
    (
        TENANT.format(credential='{ kind = "client_secret", client_id = "APP", secret = "hunter2" }'),
        "allow_inline_secret",
    ),
    (
        TENANT.format(credential='{ kind = "azure_cli" }')
        + TENANT.format(credential='{ kind = "azure_cli" }'),
        "listed twice",
    ),
    (TENANT.format(credential='{ kind = "azure_cli" }') + "bogus = 1\n", "tenants.0.bogus"),
    (
        "[concurrency]\nglobal_limit = 0\n" + TENANT.format(credential='{ kind = "azure_cli" }'),
        "concurrency.global_limit",
    ),
    (
        TENANT.format(credential='{ kind = "azure_cli" }')
        + "[tenants.maintenance]\nwindows = [{ days = ['mon'], start = 02:00:00, duration_minutes = 60, "
        + "timezone = 'Mars/Base' }]\n",
        "unknown IANA time zone",
    ),
    (
        TENANT.format(credential='{ kind = "azure_cli" }').replace(
            'id = "44444444-4444-4444-4444-444444444444"', "id = 5"
        ),
        "tenants.0.id",
    ),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_each_malformed_config_is_one_line_naming_file_and_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert info.value.exit_code == 2


def test_an_inline_secret_never_appears_in_the_error(tmp_path: Path) -> None:
    text = TENANT.format(credential='{ kind = "client_secret", client_id = "APP", secret = "hunter2-value" }')
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert "hunter2-value" not in str(info.value)


def test_an_opted_in_inline_secret_loads_but_never_prints(tmp_path: Path) -> None:
    text = TENANT.format(
        credential='{ kind = "client_secret", client_id = "APP", secret = "hunter2-value", '
        "allow_inline_secret = true }"
    )
    config = load_config(write(tmp_path, text))
    assert "hunter2-value" not in repr(config) and "hunter2-value" not in config.model_dump_json()


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "absent.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(binary)


# -- identities and customers (issue 8) --------------------------------------------------------------

PUB_TENANT = "99999999-9999-9999-9999-999999999999"
C1 = "11111111-1111-1111-1111-111111111111"
C2 = "33333333-3333-3333-3333-333333333333"
S1 = "22222222-2222-2222-2222-222222222222"
LISTED_APP = f"/subscriptions/{S1}/resourceGroups/rg/providers/Microsoft.Solutions/applications/a1"

MIXED = f"""
[[identities]]
name = "publisher"
tenant_id = "{PUB_TENANT}"
[identities.credential]
kind = "client_secret"
client_id = "55555555-5555-5555-5555-555555555555"
secret_file = "secrets/pub"

[[customers]]
id = "{C1}"
name = "Fabrikam"
path = "delegated"
identity = "publisher"
subscription_paths = [{{ id = "{S1}", path = "customer-run" }}]
apps = "customers/fabrikam.txt"

[[customers]]
id = "{C2}"
name = "Tailwind"
ring = "canary"
path = "publisher"
identity = "publisher"
apps = "customers/tailwind.txt"

[[tenants]]
id = "44444444-4444-4444-4444-444444444444"
credential = {{ kind = "azure_cli" }}
"""


def _lists(tmp_path: Path, fabrikam: str = LISTED_APP, tailwind: str = "") -> None:
    (tmp_path / "customers").mkdir(exist_ok=True)
    (tmp_path / "customers/fabrikam.txt").write_text(f"# Fabrikam's apps\n\n{fabrikam}\n", encoding="utf-8")
    (tmp_path / "customers/tailwind.txt").write_text(tailwind, encoding="utf-8")


def test_identities_customers_and_legacy_tenants_side_by_side(tmp_path: Path) -> None:
    _lists(tmp_path)
    config = load_config(write(tmp_path, MIXED))
    assert [i.name for i in config.identity_list] == ["publisher", "44444444-4444-4444-4444-444444444444"]
    fabrikam, tailwind, legacy = config.customer_list
    assert (
        fabrikam.app_ids == (LISTED_APP,) and fabrikam.apps == (tmp_path / "customers/fabrikam.txt").resolve()
    )
    assert fabrikam.route(S1) == ("customer-run", "publisher")
    assert fabrikam.route("other") == ("delegated", "publisher")
    assert tailwind.route(S1) == ("publisher", "publisher") and tailwind.app_ids == ()
    assert (legacy.path, legacy.identity) == ("direct", legacy.id)
    assert config.identity("publisher").credential.kind == "client_secret"


BAD_CUSTOMERS = [
    (MIXED.replace('path = "delegated"', 'path = "direct"'), "home tenant is"),
    (MIXED.replace('identity = "publisher"\nsubscription', 'identity = "nobody"\nsubscription'), "'nobody'"),
    (MIXED.replace('path = "publisher"\nidentity = "publisher"\n', 'path = "publisher"\n'), "needs identity"),
    (MIXED.replace('apps = "customers/tailwind.txt"', ""), "needs apps"),
    (MIXED.replace('ring = "canary"', f'subscriptions = ["{S1}"]'), "listed under two customers"),
    (MIXED.replace('path = "delegated"', 'path = "teleport"'), "customers.0.path"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_CUSTOMERS)
def test_bad_customer_config_is_one_line(tmp_path: Path, text: str, expected: str) -> None:
    _lists(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text))
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_an_app_list_naming_another_customers_subscription_is_refused(tmp_path: Path) -> None:
    _lists(tmp_path, tailwind=LISTED_APP)
    with pytest.raises(ConfigError, match="listed under two customers: Fabrikam and Tailwind"):
        load_config(write(tmp_path, MIXED))


def test_an_app_list_line_that_is_not_an_application_id_names_the_line(tmp_path: Path) -> None:
    _lists(tmp_path, fabrikam="/subscriptions/x/resourceGroups/rg")
    with pytest.raises(ConfigError, match=r"fabrikam.txt:3: not an application resource id"):
        load_config(write(tmp_path, MIXED))
