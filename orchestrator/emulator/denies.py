"""Deny assignments, the model: the $filter forms ARM accepts and which assignments a listing returns."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.emulator.derive import EVERYONE
from orchestrator.emulator.errors import ArmError
from orchestrator.emulator.index import EXACT, subscription_bucket
from orchestrator.emulator.state import Json, State

_FILTER_NAMES = ("denyAssignmentName", "principalId", "gdprExportPrincipalId")


def get(state: State, scope: str, name: str) -> Json:
    key = f"{scope}/providers/microsoft.authorization/denyassignments/{name}".lower()
    found: Json | None = state.deny_assignments.get(key)
    if found is None:
        raise ArmError(
            404, "DenyAssignmentNotFound", f"The deny assignment '{name}' does not exist at scope '{scope}'."
        )
    return found


def parse_filter(raw: str) -> dict[str, str]:
    """The $filter forms the deny-assignment spec documents: atScope(), denyAssignmentName eq '..',
    principalId eq '..', gdprExportPrincipalId eq '..' (joined with 'and')."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in raw.replace(" AND ", " and ").split(" and ")):
        if not part:
            continue
        if part.replace(" ", "").lower() == "atscope()":
            out["atScope"] = ""
            continue
        name, sep, value = part.partition(" eq ")
        name, value = name.strip(), value.strip()
        if not sep or len(value) < 2 or value[0] != "'" or value[-1] != "'":
            raise ArmError(400, "InvalidFilterInQueryString", f"The filter '{raw}' is not supported.")
        if name not in _FILTER_NAMES:
            raise ArmError(400, "UnsupportedQuery", f"The filter property '{name}' is not supported.")
        out[name] = value[1:-1]
    return out


def listing(
    state: State, scope: str, filter_text: str, caller_tenant: str
) -> tuple[list[tuple[str, str]], Callable[[Json], bool]]:
    """A listing at `scope`: the index ranges to scan and the test each assignment found must pass."""
    filt = parse_filter(filter_text)
    lscope = scope.lower()
    tenant_subs: set[str] | None = None
    if not lscope.startswith("/subscriptions/"):
        # Above subscriptions (root or a management group): only the caller's tenant's subscriptions.
        tenant_subs = {s.id.lower() for s in state.subscriptions_of(caller_tenant)}
    ranges = ranges_for(lscope, at_scope="atScope" in filt, tenant_subs=tenant_subs)
    return ranges, lambda da: matches(da, lscope, filt, tenant_subs)


def _is_within(child: str, parent: str) -> bool:
    return child == parent or parent == "" or child.startswith(parent + "/")


def ranges_for(lscope: str, *, at_scope: bool, tenant_subs: set[str] | None) -> list[tuple[str, str]]:
    """Index ranges holding every deny assignment a listing at `lscope` can return (a superset:
    `matches` decides). Deny assignments sort by scope + EXACT + id, so the ones at a scope
    start with `scope + EXACT` and the ones at or below it with `scope + "/"`."""
    # Above: the scopes `lscope` lies under (the root "" included), each only its own entries.
    ranges = [(subscription_bucket(lscope[:i]), lscope[:i] + EXACT) for i, c in enumerate(lscope) if c == "/"]
    if at_scope:
        ranges.append((subscription_bucket(lscope), lscope + EXACT))
        return ranges
    below = lscope + "/" if lscope else ""  # root: everything
    if tenant_subs is None:
        ranges.append((subscription_bucket(lscope), below))
    else:
        ranges += [(bucket, below) for bucket in ("", *sorted(tenant_subs))]
    return ranges


def matches(da: Json, lscope: str, filt: dict[str, str], tenant_subs: set[str] | None) -> bool:
    props = da["properties"]
    da_scope = props["scope"].lower()
    if tenant_subs is not None and da_scope.split("/")[2:3] and da_scope.split("/")[2] not in tenant_subs:
        return False
    if "atScope" in filt:
        if not _is_within(lscope, da_scope):  # at or above the requested scope
            return False
    elif not (_is_within(da_scope, lscope) or _is_within(lscope, da_scope)):
        return False
    if "denyAssignmentName" in filt and props.get("denyAssignmentName") != filt["denyAssignmentName"]:
        return False
    if "principalId" in filt:
        ids = {p["id"].lower() for p in props.get("principals", [])}
        if filt["principalId"].lower() not in ids and EVERYONE not in ids:
            return False
    if "gdprExportPrincipalId" in filt:
        ids = {p["id"].lower() for p in props.get("principals", []) + props.get("excludePrincipals", [])}
        if filt["gdprExportPrincipalId"].lower() not in ids:
            return False
    return True
