"""Customer-run kits: what a customer needs to make the update itself (pure: plan in, file texts out).

Per customer with publisher or customer-run updates in a plan, one folder:
  README.md / README.html  what changes and why, in words a change board reads
  update.sh                the stock Azure CLI (`az resource update --ids ... --set ...`)
  update.ps1               Az PowerShell (Get-AzResource / Set-AzResource)
  templates/<app>.json     an ARM template deploying the application in place (portal: "Deploy a
                           custom template"), with <app>.parameters.json
  SHA256SUMS               `sha256sum -c SHA256SUMS`

Both scripts only touch the application ids written into them, refuse a subscription that is not in
the customer's tenant, are idempotent (an application already on the target is left alone) and
print each operation's outcome. Values from ARM (names, ids, versions) are untrusted: ids and
versions must match a strict pattern before they go into a script; everything else is escaped for
Markdown or HTML.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

from orchestrator.models import ActionChange, Decision, Plan, PlanItem
from orchestrator.render.templating import MdSafe, template

# What the kit's scripts send (Microsoft.Solutions applications, the last stable api-version).
KIT_API_VERSION = "2021-07-01"
KIT_PATHS = frozenset({"publisher", "customer-run"})
_SAFE_ID = re.compile(r"^/subscriptions/[0-9A-Za-z-]+/resourceGroups/[-\w.()]+/providers/[-\w./()]+$")
_SAFE_VALUE = re.compile(r"^[-\w./()]+$")
_GUID = re.compile(r"^[0-9A-Fa-f-]{36}$")


class KitError(ValueError):
    """A value from the plan that cannot go into a script safely."""


@dataclass(frozen=True)
class Kit:
    tenant_id: str
    tenant_name: str
    folder: str  # a safe folder name
    items: tuple[PlanItem, ...]
    files: dict[str, str]  # relative path -> text (SHA256SUMS included)


def kit_items(plan: Plan) -> dict[str, list[PlanItem]]:
    """Updates the customers make themselves, by tenant id (lower-cased), in plan order."""
    out: dict[str, list[PlanItem]] = {}
    for item in plan.items:
        if item.decision == Decision.UPDATE and item.path in KIT_PATHS:
            out.setdefault(item.tenant_id.lower(), []).append(item)
    return out


def build_kits(plan: Plan, *, made_at: datetime, tool_version: str) -> list[Kit]:
    kits = []
    for items in kit_items(plan).values():
        first = items[0]
        folder = _folder(first.tenant_name, first.tenant_id)
        files = {
            "README.md": readme_markdown(plan, items, made_at=made_at),
            "README.html": readme_html(plan, items, made_at=made_at),
            "update.sh": update_sh(plan, items, made_at=made_at, tool_version=tool_version),
            "update.ps1": update_ps1(plan, items, made_at=made_at, tool_version=tool_version),
        }
        for item in items:
            name = _file_name(item.app_name)
            template, parameters = arm_template(item)
            files[f"templates/{name}.json"] = template
            files[f"templates/{name}.parameters.json"] = parameters
        files["SHA256SUMS"] = "".join(
            f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}  {path}\n"
            for path, text in sorted(files.items())
        )
        kits.append(Kit(first.tenant_id, first.tenant_name, folder, tuple(items), files))
    return kits


# -- helpers ---------------------------------------------------------------------------------------


def _folder(name: str, tenant_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "customer"
    return f"{slug}-{re.sub(r'[^0-9a-f]', '', tenant_id.lower())[:8]}"


def _file_name(app_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", app_name).strip("-.")[:80] or "application"


def _target(item: PlanItem) -> tuple[str, str, str]:
    """(kind, target, previous): kind "definition" (service catalog) or "plan" (marketplace version)."""
    if item.to_definition_id is not None:
        return "definition", item.to_definition_id, item.from_definition_id or ""
    if item.to_plan is not None:
        return "plan", item.to_plan.version, item.from_plan.version if item.from_plan else ""
    raise KitError(f"{item.app_id}: the plan item has no target")


def _checked(item: PlanItem) -> tuple[str, str, str, str, str]:
    """(app id, subscription, kind, target, previous), each safe to put into a script."""
    kind, target, previous = _target(item)
    if not _SAFE_ID.match(item.app_id):
        raise KitError(f"application id {item.app_id!r} has characters a kit script will not carry")
    if not _GUID.match(item.subscription_id):
        raise KitError(f"subscription id {item.subscription_id!r} is not a GUID")
    check = _SAFE_ID if kind == "definition" else _SAFE_VALUE
    for value in (target, previous):
        if value and not check.match(value):
            raise KitError(f"{item.app_id}: {value!r} has characters a kit script will not carry")
    return item.app_id, item.subscription_id, kind, target, previous


def _describe_target(item: PlanItem) -> tuple[str, str]:
    kind, target, previous = _target(item)
    if kind == "definition":
        return previous or "?", target
    return f"plan version {previous or '?'}", f"plan version {target}"


@dataclass(frozen=True)
class _Change:
    stop_denied: tuple[str, ...]
    become_denied: tuple[str, ...]


def _changes(change: ActionChange) -> _Change:
    return _Change(
        stop_denied=change.actions_added + tuple(f"{a} (data)" for a in change.data_actions_added),
        become_denied=change.actions_removed + tuple(f"{a} (data)" for a in change.data_actions_removed),
    )


# -- README ----------------------------------------------------------------------------------------

_DURATION = (
    "Each application is one Azure Resource Manager update operation; it usually takes a few minutes, and "
    "the scripts wait for each one to finish. The applications keep running meanwhile. Nothing else in "
    "your subscriptions is changed."
)


def _readme(plan: Plan, items: Sequence[PlanItem], made_at: datetime) -> dict[str, object]:
    """What both READMEs say: who, when, each application now and after, what changes, the risks."""
    first = items[0]
    changes = [_changes(i.change) for i in items]
    rows = [(i.app_name, i.resource_group, i.subscription_id, *_describe_target(i)) for i in items]
    return {
        "who": first.tenant_name or first.tenant_id,
        "tenant_id": first.tenant_id,
        "prepared": MdSafe(f"{made_at:%Y-%m-%d %H:%M}"),
        "plan": plan,
        "rows": rows,
        "stop": sorted({a for c in changes for a in c.stop_denied}),
        "become": sorted({a for c in changes for a in c.become_denied}),
        "risks": sorted({(r.severity, r.code, r.message) for i in items for r in i.risks}),
        "duration": MdSafe(_DURATION),
    }


def readme_markdown(plan: Plan, items: Sequence[PlanItem], *, made_at: datetime) -> str:
    return template("kit_readme.md").render(_readme(plan, items, made_at))


def readme_html(plan: Plan, items: Sequence[PlanItem], *, made_at: datetime) -> str:
    """The README as one self-contained page (inline CSS, no script, nothing fetched)."""
    return template("kit_readme.html").render(_readme(plan, items, made_at))


# -- scripts ---------------------------------------------------------------------------------------


def _fill(name: str, plan: Plan, items: Sequence[PlanItem], made_at: datetime, tool: str, apps: str) -> str:
    """A script template from orchestrator/kit with its @@NAME@@ slots filled (values checked before)."""
    tenant = items[0].tenant_id
    if not _GUID.match(tenant):
        raise KitError(f"tenant id {tenant!r} is not a GUID")
    text = resources.files("orchestrator.kit").joinpath(name).read_text(encoding="utf-8")
    slots = {
        "COUNT": str(len(items)),
        "TENANT": tenant,
        "MADE": f"{made_at:%Y-%m-%dT%H:%M:%SZ}",
        "TOOL": re.sub(r"[^\w.+-]", "", tool),
        "PLAN": plan.digest[:19],
        "API": KIT_API_VERSION,
        "APPS": apps,
    }
    return re.sub(r"@@([A-Z]+)@@", lambda m: slots[m.group(1)], text)


def update_sh(plan: Plan, items: Sequence[PlanItem], *, made_at: datetime, tool_version: str) -> str:
    entries = "\n".join(f"  '{'|'.join(_checked(item))}'" for item in items)
    return _fill("update.sh.tmpl", plan, items, made_at, tool_version, entries)


def _ps(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def update_ps1(plan: Plan, items: Sequence[PlanItem], *, made_at: datetime, tool_version: str) -> str:
    entries = []
    for item in items:
        app, sub, kind, target, previous = _checked(item)
        entries.append(
            f"    @{{ Id = {_ps(app)}; Subscription = {_ps(sub)}; Kind = {_ps(kind)}; "
            f"Target = {_ps(target)}; Previous = {_ps(previous)} }}"
        )
    body = ",\n".join(entries)
    return _fill("update.ps1.tmpl", plan, items, made_at, tool_version, body)


# -- ARM template ----------------------------------------------------------------------------------


def arm_template(item: PlanItem) -> tuple[str, str]:
    """A template deploying the application in place (same name, MRG and kind; new definition or plan
    version) and its parameters file. The application's current parameters are the customer's to give
    (`applicationParameters`): the plan does not carry them."""
    _checked(item)
    kind, target, _ = _target(item)
    parameters = _template_parameters(item)
    properties: dict[str, object] = {
        "managedResourceGroupId": "[parameters('managedResourceGroupId')]",
        "parameters": "[parameters('applicationParameters')]",
    }
    resource: dict[str, object] = {
        "type": "Microsoft.Solutions/applications",
        "apiVersion": KIT_API_VERSION,
        "name": "[parameters('applicationName')]",
        "location": "[parameters('location')]",
        "kind": item.kind,
        "properties": properties,
    }
    if kind == "definition":
        parameters["applicationDefinitionId"] = {"type": "string", "defaultValue": target}
        properties["applicationDefinitionId"] = "[parameters('applicationDefinitionId')]"
    else:
        assert item.to_plan is not None
        p = item.to_plan
        plan = {"publisher": p.publisher, "product": p.product, "name": p.name, "version": p.version}
        parameters["plan"] = {"type": "object", "defaultValue": plan}
        resource["plan"] = "[parameters('plan')]"
    template = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
        "contentVersion": "1.0.0.0",
        "metadata": {"description": f"Updates {item.app_name} in place ({item.app_id})"},
        "parameters": parameters,
        "resources": [resource],
    }
    values = {
        "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentParameters.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {"applicationParameters": {"value": {}}},
    }
    return json.dumps(template, indent=2) + "\n", json.dumps(values, indent=2) + "\n"


def _template_parameters(item: PlanItem) -> dict[str, object]:
    """The parameters every in-place template takes, with the application's values as defaults."""
    mrg = item.as_read.managed_resource_group_id if item.as_read else ""
    return {
        "applicationName": {"type": "string", "defaultValue": item.app_name},
        "location": {
            "type": "string",
            "defaultValue": "[resourceGroup().location]",
            "metadata": {"description": "The application's current location (it cannot change)."},
        },
        "managedResourceGroupId": {"type": "string", "defaultValue": mrg},
        "applicationParameters": {
            "type": "object",
            "metadata": {
                "description": "The application's current parameters: az managedapp show --ids <id> "
                "--query properties.parameters"
            },
        },
    }
