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
from orchestrator.untrusted import clean, html_text

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


def _code(text: str) -> str:
    """Untrusted text as a Markdown code span (safe in a table cell too)."""
    flat = " ".join(clean(str(text)).split()).replace("|", "\\|")
    fence = "`" * (max((len(m) for m in re.findall(r"`+", flat)), default=0) + 1)
    return f"{fence} {flat} {fence}"


def _e(text: object) -> str:
    return html_text(text)


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


def _summary(plan: Plan, items: Sequence[PlanItem]) -> dict[str, object]:
    changes = [_changes(i.change) for i in items]
    stop = sorted({a for c in changes for a in c.stop_denied})
    become = sorted({a for c in changes for a in c.become_denied})
    risks = sorted({(r.severity.value, r.code, r.message) for i in items for r in i.risks})
    return {"stop": stop, "become": become, "risks": risks}


# -- README ----------------------------------------------------------------------------------------

_DURATION = (
    "Each application is one Azure Resource Manager update operation; it usually takes a few minutes, and "
    "the scripts wait for each one to finish. The applications keep running meanwhile. Nothing else in "
    "your subscriptions is changed."
)


def readme_markdown(plan: Plan, items: Sequence[PlanItem], *, made_at: datetime) -> str:
    first = items[0]
    s = _summary(plan, items)
    lines = [
        f"# Managed application update for {_code(first.tenant_name or first.tenant_id)}",
        "",
        f"Prepared {made_at:%Y-%m-%d %H:%M} UTC by your application's publisher, from the reviewed rollout "
        f"plan {_code(plan.digest[:19])} (target {_code(plan.target.name)}). Your tenant: "
        f"{_code(first.tenant_id)}.",
        "",
        "## What changes and why",
        "",
        f"{len(items)} managed application(s) move to a new version of the publisher's application "
        f"({_code(plan.target.moves_to)}). The new version changes which operations the application's "
        "deny assignment lets people in your organisation perform on the resources it manages.",
        "",
        "| Application | Resource group | Subscription | Now | After |",
        "|---|---|---|---|---|",
    ]
    for item in items:
        before, after = _describe_target(item)
        lines.append(
            f"| {_code(item.app_name)} | {_code(item.resource_group)} | {_code(item.subscription_id)} | "
            f"{_code(before)} | {_code(after)} |"
        )
    lines += ["", "### Operations that stop being denied", ""]
    lines += [f"- {_code(a)}" for a in s["stop"]] or ["- none"]  # type: ignore[attr-defined]
    lines += ["", "### Operations that become denied", ""]
    lines += [f"- {_code(a)}" for a in s["become"]] or ["- none"]  # type: ignore[attr-defined]
    lines += ["", "### Risk flags", ""]
    risks = s["risks"]
    lines += [f"- **{sev}** {_code(code)}: {_code(msg)}" for sev, code, msg in risks] or ["- none"]  # type: ignore[attr-defined]
    lines += [
        "",
        "## How long it takes",
        "",
        _DURATION,
        "",
        "## How to run it",
        "",
        "Sign in with an account that may write these applications (for example the built-in *Managed "
        "Application Contributor Role* on their resource groups), then either:",
        "",
        "- Azure CLI (bash): `./update.sh` (stock `az`; it only touches the applications listed in it and "
        "refuses subscriptions outside your tenant; running it twice is harmless);",
        "- Az PowerShell: `./update.ps1`;",
        "- the Azure portal: *Deploy a custom template* with `templates/<application>.json` into the "
        "application's resource group, giving `applicationParameters` the application's current "
        "parameters (`az managedapp show --ids <id> --query properties.parameters`).",
        "",
        "Check the kit first: `sha256sum -c SHA256SUMS`.",
        "",
        "## How to check afterwards",
        "",
        "`./update.sh --check` (or `./update.ps1 -Check`) reports each application's version; the "
        "publisher confirms from its side too.",
        "",
        "## How to roll back",
        "",
        "`./update.sh --rollback` (or `./update.ps1 -Rollback`) puts each application back on the version "
        "it was on when this kit was made.",
        "",
    ]
    return "\n".join(lines)


def readme_html(plan: Plan, items: Sequence[PlanItem], *, made_at: datetime) -> str:
    """The README as one self-contained page (inline CSS, no script, nothing fetched)."""
    first = items[0]
    s = _summary(plan, items)
    who = first.tenant_name or first.tenant_id
    rows = []
    for item in items:
        before, after = _describe_target(item)
        cells = (item.app_name, item.resource_group, item.subscription_id, before, after)
        rows.append("<tr>" + "".join(f"<td><code>{_e(c)}</code></td>" for c in cells) + "</tr>")

    def bullets(values: Sequence[str]) -> str:
        return (
            "<ul>" + ("".join(f"<li><code>{_e(v)}</code></li>" for v in values) or "<li>none</li>") + "</ul>"
        )

    risks = "".join(
        f"<li><b>{_e(sev)}</b> <code>{_e(code)}</code>: {_e(msg)}</li>"
        for sev, code, msg in s["risks"]  # type: ignore[attr-defined]
    )
    css = (
        "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
        "color:#1f2937}table{border-collapse:collapse;width:100%}td,th{border:1px solid #d1d5db;"
        "padding:.3rem .5rem;text-align:left;vertical-align:top}code{font-size:13px;overflow-wrap:anywhere}"
        "h1{font-size:1.5rem}"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Managed application update for {_e(who)}</title><style>{css}</style></head><body>"
        f"<h1>Managed application update for {_e(who)}</h1>"
        f"<p>Prepared {made_at:%Y-%m-%d %H:%M} UTC by your application's publisher, from the reviewed "
        f"rollout plan <code>{_e(plan.digest[:19])}</code> (target <code>{_e(plan.target.name)}</code>). "
        f"Your tenant: <code>{_e(first.tenant_id)}</code>.</p>"
        "<h2>What changes and why</h2>"
        f"<p>{len(items)} managed application(s) move to a new version of the publisher's application "
        f"(<code>{_e(plan.target.moves_to)}</code>). The new version changes which operations the "
        "application's deny assignment lets people in your organisation perform on the resources it "
        "manages.</p>"
        "<table><tr><th>Application</th><th>Resource group</th><th>Subscription</th><th>Now</th>"
        f"<th>After</th></tr>{''.join(rows)}</table>"
        f"<h3>Operations that stop being denied</h3>{bullets(s['stop'])}"  # type: ignore[arg-type]
        f"<h3>Operations that become denied</h3>{bullets(s['become'])}"  # type: ignore[arg-type]
        f"<h3>Risk flags</h3><ul>{risks or '<li>none</li>'}</ul>"
        f"<h2>How long it takes</h2><p>{_e(_DURATION)}</p>"
        "<h2>How to run it</h2><p>Sign in with an account that may write these applications (for example "
        "the built-in <i>Managed Application Contributor Role</i> on their resource groups), then run "
        "<code>./update.sh</code> (Azure CLI), <code>./update.ps1</code> (Az PowerShell), or use "
        "<i>Deploy a custom template</i> in the portal with <code>templates/&lt;application&gt;.json</code>. "
        "Check the kit first: <code>sha256sum -c SHA256SUMS</code>.</p>"
        "<h2>How to check afterwards</h2><p><code>./update.sh --check</code> (or "
        "<code>./update.ps1 -Check</code>) reports each application's version.</p>"
        "<h2>How to roll back</h2><p><code>./update.sh --rollback</code> (or "
        "<code>./update.ps1 -Rollback</code>) puts each application back on its earlier version.</p>"
        "</body></html>\n"
    )


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
    mrg = item.as_read.managed_resource_group_id if item.as_read else ""
    parameters: dict[str, object] = {
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
    resource: dict[str, object] = {
        "type": "Microsoft.Solutions/applications",
        "apiVersion": KIT_API_VERSION,
        "name": "[parameters('applicationName')]",
        "location": "[parameters('location')]",
        "kind": item.kind,
        "properties": {
            "managedResourceGroupId": "[parameters('managedResourceGroupId')]",
            "parameters": "[parameters('applicationParameters')]",
        },
    }
    if kind == "definition":
        parameters["applicationDefinitionId"] = {"type": "string", "defaultValue": target}
        resource["properties"]["applicationDefinitionId"] = "[parameters('applicationDefinitionId')]"  # type: ignore[index]
    else:
        assert item.to_plan is not None
        p = item.to_plan
        parameters["plan"] = {
            "type": "object",
            "defaultValue": {
                "publisher": p.publisher,
                "product": p.product,
                "name": p.name,
                "version": p.version,
            },
        }
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
