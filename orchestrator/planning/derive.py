"""What deny assignment a definition implies, and which deny assignment on an MRG is the application's.

Azure's rule as we model it (the emulator encodes the same rule independently):
lock level `None` places no deny assignment; `ReadOnly` denies `*` except `*/read` and the allowed
actions (data: denies `*` except the allowed data actions); `CanNotDelete` denies `*/delete` except the
allowed actions (data: denies nothing, excludes the allowed data actions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class DenyMatch:
    """Which deny assignment on an MRG is the application's: `found`, or why none can be told apart."""

    found: DenyAssignment | None = None
    # Set when system-protected deny assignments sit on the MRG but not exactly one names the app.
    problem: str | None = None


def _carries(text: str, app: str) -> bool:
    """Whether `text` holds the (lower-cased) app id, not as the start of a longer name: ".../app1" is
    not in ".../app10". A plain search, not a regex per app: compiling one cost 1 ms per app at 10k."""
    text = text.lower()
    start = text.find(app)
    while start >= 0:
        end = start + len(app)
        if end == len(text) or not (text[end].isalnum() or text[end] in "_.-"):
            return True
        start = text.find(app, start + 1)
    return False


def _names(deny: DenyAssignment, app: str) -> bool:
    return _carries(deny.deny_assignment_name, app) or _carries(deny.description, app)


def match_system_deny_assignment(app_id: str, mrg_id: str, candidates: Iterable[DenyAssignment]) -> DenyMatch:
    """The one rule for finding an application's system deny assignment (inventory, plan, verification).

    It is the deny assignment whose scope is the app's managed resource group, that is system-protected
    (users' own deny assignments are not), and whose name or description carries the app id (real ones
    say "System deny assignment created by managed application <app id>"; Blueprint locks are
    system-protected too, so "the only system-protected one" is not enough). Several or none of those
    while system-protected ones are present: nothing is chosen and `problem` says why.
    """
    mrg = _scope_key(mrg_id)
    system = [d for d in candidates if d.is_system_protected and _scope_key(d.scope) == mrg]
    if not system:
        return DenyMatch()
    app = app_id.strip().rstrip("/").lower()
    named = [d for d in system if _names(d, app)]
    if len(named) == 1:
        return DenyMatch(named[0])
    ids = ", ".join(sorted(d.id for d in (named or system)))
    where = "on its managed resource group"
    if named:
        return DenyMatch(problem=f"{len(named)} system-protected deny assignments {where} name it: {ids}")
    return DenyMatch(
        problem=f"{len(system)} system-protected deny assignment(s) {where}, none naming it: {ids}"
    )
