"""Product lineage: which service-catalog definitions a target replaces. Pure.

An ISV may publish several products (definitions) from one publisher resource group; a target for one
must never move an instance of another. A target names the definitions it replaces (a target file's
`[replaces]`: ids and/or name globs); without that, the rule is the name stem: `app-v2` replaces the
definitions named `app-<version>…` in the same publisher resource group (`app-v1`, `app-1.2`,
`app-v1-unlocked`), never `monitoring-v1` nor an `app-v1` published from another resource group.
"""

from __future__ import annotations

import fnmatch
import re

from orchestrator.models import Lineage, Target

_DEFINITION_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Solutions/"
    r"applicationDefinitions/(?P<name>[^/]+)$",
    re.IGNORECASE,
)
# The stem is what comes before the first version token: a separator, an optional `v`, digits.
_STEM = re.compile(r"^(?P<stem>.+?)[-_.]v?\d+(?:[-_.].*)?$", re.IGNORECASE)

DEFAULT_LINEAGE = Lineage(same_stem=True)


def name_stem(name: str) -> str | None:
    """`app` for `app-v2`, `app_v10`, `app-2.1` or `app-v1-unlocked`; None when the name has no
    version token (then the stem rule cannot say which definitions are the same product)."""
    match = _STEM.match(name.strip())
    return match.group("stem").lower() if match else None


def _parts(definition_id: str) -> tuple[str, str, str] | None:
    match = _DEFINITION_ID.match(definition_id.strip())
    if match is None:
        return None
    return match.group("sub").lower(), match.group("rg").lower(), match.group("name")


def lineage_of(target: Target) -> Lineage:
    return target.lineage if target.lineage is not None else DEFAULT_LINEAGE


def in_lineage(definition_id: str | None, target: Target) -> bool:
    """Whether an app on `definition_id` is the target's product (the target's own definition is)."""
    if not definition_id or not target.definition_id:
        return False
    if definition_id.strip().lower() == target.definition_id.strip().lower():
        return True
    lineage = lineage_of(target)
    if any(definition_id.strip().lower() == d.strip().lower() for d in lineage.definition_ids):
        return True
    mine, theirs = _parts(definition_id), _parts(target.definition_id)
    if mine is None or theirs is None or mine[:2] != theirs[:2]:
        return False
    name = mine[2].lower()
    if any(fnmatch.fnmatchcase(name, pattern.strip().lower()) for pattern in lineage.names):
        return True
    stem = name_stem(mine[2])
    return lineage.same_stem and stem is not None and stem == name_stem(theirs[2])


def describe(target: Target) -> str:
    """The lineage for people: 'definitions named app-<version>… in resource group rg-publisher'."""
    lineage = lineage_of(target)
    theirs = _parts(target.definition_id or "")
    group = f"resource group {theirs[1]}" if theirs else "the target's resource group"
    parts = [_short(d) for d in lineage.definition_ids]
    if lineage.names:
        parts.append(f"definitions named {' or '.join(lineage.names)} in {group}")
    stem = name_stem(theirs[2]) if theirs else None
    if lineage.same_stem and stem:
        parts.append(f"definitions named {stem}-<version>… in {group}")
    return "; ".join(parts) or "its own definition only"


def stem_problem(definition_id: str) -> str | None:
    """Why the default rule cannot apply to a target definition id, or None when it can."""
    parts = _parts(definition_id)
    if parts is None:
        return "not an application definition id"
    if name_stem(parts[2]) is None:
        return (
            f"the name {parts[2]!r} has no version token (like app-v2), so which definitions it replaces "
            "cannot be told from it"
        )
    return None


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]
