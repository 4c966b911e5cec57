"""What deny assignment a definition implies, and which deny assignment on an MRG is the application's.

Azure's rule as we model it (the emulator encodes the same rule independently):
lock level `None` places no deny assignment; `ReadOnly` denies `*` except `*/read` and the allowed
actions (data: denies `*` except the allowed data actions); `CanNotDelete` denies `*/delete` except the
allowed actions (data: denies nothing, excludes the allowed data actions).
"""

from __future__ import annotations

from collections.abc import Iterable

from orchestrator.models import Definition, DenyAssignment, LockLevel

EVERYONE_PRINCIPAL_ID = "00000000-0000-0000-0000-000000000000"


def expected_deny(definition: Definition) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(notActions, notDataActions) the definition's deny assignment carries, or None when it has none."""
    if definition.lock_level == "None":
        return None
    not_actions = definition.allowed_actions
    if definition.lock_level == "ReadOnly":
        not_actions = ("*/read", *not_actions)
    return tuple(not_actions), tuple(definition.allowed_data_actions)


def denied_actions(lock_level: LockLevel) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(actions, dataActions) a lock level denies before exclusions."""
    if lock_level == "ReadOnly":
        return ("*",), ("*",)
    if lock_level == "CanNotDelete":
        return ("*/delete",), ()
    return (), ()


def implied_lock_level(deny: DenyAssignment) -> LockLevel | None:
    """The lock level whose deny assignment this looks like, or None when it matches neither."""
    actions = {a.strip().casefold() for a in deny.actions}
    if actions == {"*"}:
        return "ReadOnly"
    if actions == {"*/delete"}:
        return "CanNotDelete"
    return None


def _scope_key(scope: str) -> str:
    return scope.strip().rstrip("/").casefold()


def select_system_deny_assignment(
    app_id: str, mrg_id: str, candidates: Iterable[DenyAssignment]
) -> DenyAssignment | None:
    """The system-protected deny assignment the application placed on its managed resource group.

    Users may add their own deny assignments (not system-protected) on an MRG; those are ignored.
    When several system-protected ones sit at the MRG scope, the one whose description names the
    application wins; if that does not single one out, none is chosen (the caller reports it).
    """
    mrg = _scope_key(mrg_id)
    system = [d for d in candidates if d.is_system_protected and _scope_key(d.scope) == mrg]
    if len(system) <= 1:
        return system[0] if system else None
    app = app_id.strip().rstrip("/").casefold()
    named = [d for d in system if app in d.description.casefold()]
    return named[0] if len(named) == 1 else None
