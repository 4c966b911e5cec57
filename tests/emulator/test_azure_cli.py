"""The stock Azure CLI (from PyPI, in its own environment) against the emulator, as an operator uses it.

TLS verification stays on: the CLI trusts the emulator's CA through REQUESTS_CA_BUNDLE (both MSAL
and azure-core use requests), and a run without it is refused. `core.instance_discovery=false` is
the CLI's own setting for private clouds (Azure Stack): MSAL otherwise asks login.microsoftonline.com
to validate the authority.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator.testing import EmulatorHandle
from tests import azure_cli
from tests.emulator.conftest import publisher_of, tenant_of

# The first run installs the CLI (minutes, once per machine); later runs take about half a minute.
pytestmark = pytest.mark.timeout(azure_cli.INSTALL_TIMEOUT * 2 + 300)


@pytest.fixture(scope="module")
def az_python() -> Path:
    python, why = azure_cli.ensure()
    if python is None:
        pytest.skip(f"the stock Azure CLI cannot be installed here: {why}")
    return python


class Az:
    def __init__(self, python: Path, config_dir: Path, ca_bundle: Path) -> None:
        self.python = python
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "REQUESTS_CA", "CURL_CA"))},
            "AZURE_CONFIG_DIR": str(config_dir),
            "REQUESTS_CA_BUNDLE": str(ca_bundle),
            "AZURE_CORE_INSTANCE_DISCOVERY": "false",
            "AZURE_CORE_COLLECT_TELEMETRY": "false",
            "AZURE_CORE_NO_COLOR": "true",
            "AZURE_CORE_SURVEY_MESSAGE": "false",
        }

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "azure.cli", *args],
            capture_output=True,
            text=True,
            env=env or self.env,
            timeout=300,
            check=False,
        )

    def __call__(self, *args: str) -> Any:
        done = self.run(*args, "--output", "json")
        assert done.returncode == 0, f"az {' '.join(args)}: {done.stderr[-2000:]}"
        return json.loads(done.stdout) if done.stdout.strip() else None


def test_stock_azure_cli_does_every_operator_step(
    az_python: Path, emulator: EmulatorHandle, fleet: dict[str, Any], tmp_path: Path
) -> None:
    az = Az(az_python, tmp_path / "azure", emulator.ca_bundle)
    _register_cloud(az, emulator.url)
    sub = _log_in(az, emulator, fleet)
    app = _read_apps_and_definitions(az, fleet, sub)

    # Deny assignments (2024-07-01-preview): the app's carries the app id in its name.
    mrg = app["managedResourceGroupId"]
    denies = az("role", "deny-assignment", "list", "--scope", mrg)
    system = [d for d in denies if d.get("isSystemProtected")]
    assert [d["denyAssignmentName"] for d in system] == [
        f"System deny assignment created by managed application {app['id']}"
    ]

    _update_through_az_resource(az, app, fleet["publisher"]["definitions"]["app-v2"])
    assert emulator.stats()["conflicting_writes"] == 0

    group = az("group", "show", "-n", app["id"].split("/")[4])
    assert group["id"].lower() == "/".join(app["id"].split("/")[:5]).lower()

    raw = az("rest", "--method", "get", "--url", f"{emulator.url.rstrip('/')}{mrg}?api-version=2024-11-01")
    assert raw["id"].lower() == mrg.lower() and raw["managedBy"].lower() == app["id"].lower()


def _register_cloud(az: Az, url: str) -> None:
    # Verification is on: without the emulator's CA the CLI refuses the endpoint.
    untrusted = {k: v for k, v in az.env.items() if k != "REQUESTS_CA_BUNDLE"}
    refused = az.run(
        "cloud", "register", "-n", "Untrusted", "--endpoint-resource-manager", url, env=untrusted
    )
    assert refused.returncode != 0 and "certificate verify failed" in refused.stderr.lower()

    # Cloud registration with default endpoint discovery (GET /metadata/endpoints).
    az("cloud", "register", "-n", "Emulator", "--endpoint-resource-manager", url)
    az("cloud", "set", "-n", "Emulator")
    cloud = az("cloud", "show", "-n", "Emulator")
    assert cloud["endpoints"]["activeDirectory"] == url
    assert cloud["endpoints"]["activeDirectoryResourceId"] == url


def _log_in(az: Az, emulator: EmulatorHandle, fleet: dict[str, Any]) -> str:
    """The publisher first (definitions live in its subscription), then the customer as the default;
    returns the customer's subscription now selected."""
    publisher = publisher_of(emulator, fleet)
    customer = tenant_of(emulator, fleet)
    for who in (publisher, customer):
        az("login", "--service-principal", "-u", who.client_id, "-p", who.secret, "--tenant", who.id)
    accounts = az("account", "list")
    assert {a["id"] for a in accounts} >= set(customer.subscriptions) | set(publisher.subscriptions)
    assert all(a["cloudName"] == "Emulator" for a in accounts)
    sub = customer.subscriptions[0]
    az("account", "set", "-s", sub)
    return sub


def _read_apps_and_definitions(az: Az, fleet: dict[str, Any], sub: str) -> dict[str, Any]:
    """Microsoft.Solutions 2019-07-01, hard-wired in `az managedapp`; returns a service-catalog app."""
    apps = az("managedapp", "list")
    assert apps and {a["id"].split("/")[2] for a in apps} == {sub}
    app = next(a for a in apps if a["kind"] == "ServiceCatalog" and a["provisioningState"] == "Succeeded")
    shown = az("managedapp", "show", "--ids", app["id"])
    assert shown["id"] == app["id"] and shown["managedResourceGroupId"] == app["managedResourceGroupId"]

    definitions = fleet["publisher"]["definitions"]
    v1, v2 = definitions["app-v1"], definitions["app-v2"]
    def_rg = v1.split("/")[4]
    pub_sub = fleet["publisher"]["subscription_id"]
    listed = az("managedapp", "definition", "list", "-g", def_rg, "--subscription", pub_sub)
    assert v2 in {d["id"] for d in listed}
    definition = az("managedapp", "definition", "show", "--ids", v2)
    assert definition["id"] == v2 and definition["lockLevel"] in ("ReadOnly", "CanNotDelete")
    return dict(app)


def _update_through_az_resource(az: Az, app: dict[str, Any], v2: str) -> None:
    """`az resource` picks the api-version from the provider (no --api-version) and follows the LRO."""
    resource = az("resource", "show", "--ids", app["id"])
    assert resource["properties"]["applicationDefinitionId"].lower() == app["applicationDefinitionId"].lower()
    updated = az(
        "resource", "update", "--ids", app["id"], "--set", f"properties.applicationDefinitionId={v2}"
    )
    assert updated["properties"]["provisioningState"] == "Succeeded"
    assert updated["properties"]["applicationDefinitionId"] == v2
    after = az("managedapp", "show", "--ids", app["id"])
    assert after["applicationDefinitionId"] == v2 and after["provisioningState"] == "Succeeded"
