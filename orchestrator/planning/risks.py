"""Risk flags on one planned update: a table of rules, each judging what the update changes *in effect*.

An exclusion only widens access if it names an operation the target's lock level denies (under
`CanNotDelete` only deletes are denied, so excluding a write there changes nothing), and a removal
only tightens when the removed operations are denied. Rules run in table order; each gives at most
one flag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from orchestrator.models import ActionChange, App, DenyAssignment, LockLevel, Risk, Severity, Target
from orchestrator.planning.actions import intersects, normalise
from orchestrator.planning.checks import key
from orchestrator.planning.derive import denied_actions

WRITE_OPERATIONS = "*/write"
DELETE_OPERATIONS = "*/delete"
AUTHORIZATION_OPERATIONS = "Microsoft.Authorization/*"


def backticked(patterns: Iterable[str]) -> str:
    return ", ".join(f"`{p}`" for p in patterns)


def principal_change(deny: DenyAssignment | None, target: Target) -> tuple[set[str], set[str]]:
    """(principals the target newly excludes, principals it stops excluding); empty when not known."""
    wanted = {key(a.principal_id) for a in target.definition.authorizations}
    if not wanted or deny is None:  # a target that lists no authorizations leaves principals unchecked
        return set(), set()
    actual = {key(p) for p in deny.excluded_principal_ids}
    return wanted - actual, actual - wanted


def _broadness(pattern: str) -> Severity | None:
    """HIGH for a wildcard across providers (`*`, `*/read`), MEDIUM for one covering a whole provider."""
    segments = normalise(pattern).split("/")
    if "*" in segments[0]:
        return Severity.HIGH
    if len(segments) > 1 and segments[1].startswith("*"):
        return Severity.MEDIUM
    return None


def _denied_by(pattern: str, denied: Sequence[str]) -> bool:
    return any(intersects(pattern, d) for d in denied)


def _version_key(version: str) -> tuple[int, ...] | None:
    parts = version.strip().split(".")
    return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else None


def _is_downgrade(current: str, target: str) -> bool:
    """Whether a marketplace plan version moves backwards (only for dotted numeric versions)."""
    before, after = _version_key(current), _version_key(target)
    return before is not None and after is not None and after < before


@dataclass(frozen=True)
class _Update:
    """What the rules look at: the app, its target, and the exclusions that change in effect."""

    app: App
    target: Target
    lock_before: LockLevel | None
    widening: tuple[str, ...]  # added exclusions of actions the target's lock level denies
    widening_data: tuple[str, ...]  # the same for data actions
    tightening: tuple[str, ...]  # removed exclusions (actions and data actions) it denies


_Flag = tuple[Severity, str] | None
_Rule = Callable[[_Update], _Flag]


def _widens(operations: str, allows: str) -> _Rule:
    def rule(u: _Update) -> _Flag:
        hits = [p for p in u.widening if intersects(p, operations)]
        return (Severity.HIGH, f"allows {allows}: {backticked(hits)}") if hits else None

    return rule


def _broad_wildcard(u: _Update) -> _Flag:
    broad = [(p, s) for p in u.widening if (s := _broadness(p)) is not None]
    if not broad:
        return None
    severity = Severity.HIGH if any(s == Severity.HIGH for _, s in broad) else Severity.MEDIUM
    return severity, f"wildcard over a whole provider or more: {backticked(p for p, _ in broad)}"


def _widens_data(u: _Update) -> _Flag:
    if not u.widening_data:
        return None
    strong = any(
        _broadness(p) is not None or intersects(p, WRITE_OPERATIONS) or intersects(p, DELETE_OPERATIONS)
        for p in u.widening_data
    )
    return Severity.HIGH if strong else Severity.MEDIUM, f"allows data actions: {backticked(u.widening_data)}"


def _tightens(u: _Update) -> _Flag:
    if not u.tightening:
        return None
    return Severity.HIGH, (
        f"no longer excludes {backticked(u.tightening)}: workloads relying on it will fail "
        "with AuthorizationFailed"
    )


def _lock_level_change(u: _Update) -> _Flag:
    after = u.target.definition.lock_level
    if u.lock_before is None or u.lock_before == after:
        return None
    return Severity.HIGH, f"lock level {u.lock_before} → {after}: the set of denied operations changes"


def _downgrade(u: _Update) -> _Flag:
    have, want = u.app.plan, u.target.plan
    if have is None or want is None or not _is_downgrade(have.version, want.version):
        return None
    return Severity.MEDIUM, f"plan version {have.version} → {want.version} is an older version"


def _principals_change(u: _Update) -> _Flag:
    added, dropped = principal_change(u.app.deny_assignment, u.target)
    if not (added or dropped):
        return None
    parts = [f"+{p}" for p in sorted(added)] + [f"-{p}" for p in sorted(dropped)]
    return (
        Severity.HIGH if added else Severity.MEDIUM,
        f"excluded principals (publisher authorizations) change: {' '.join(parts)}",
    )


# The rules, in the order their flags are listed.
RULES: tuple[tuple[str, _Rule], ...] = (
    ("widens-write", _widens(WRITE_OPERATIONS, "writes")),
    ("widens-delete", _widens(DELETE_OPERATIONS, "deletes")),
    ("widens-authorization", _widens(AUTHORIZATION_OPERATIONS, "Microsoft.Authorization operations")),
    ("broad-wildcard", _broad_wildcard),
    ("widens-data", _widens_data),
    ("tightens", _tightens),
    ("lock-level-change", _lock_level_change),
    ("downgrade", _downgrade),
    ("principals-change", _principals_change),
)


def risks(change: ActionChange, target: Target, lock_before: LockLevel | None, app: App) -> tuple[Risk, ...]:
    """The flags of moving `app` (whose lock level is `lock_before`) to `target` with `change`."""
    denied, denied_data = denied_actions(target.definition.lock_level)
    update = _Update(
        app=app,
        target=target,
        lock_before=lock_before,
        widening=tuple(p for p in change.actions_added if _denied_by(p, denied)),
        widening_data=tuple(p for p in change.data_actions_added if _denied_by(p, denied_data)),
        tightening=tuple(p for p in change.actions_removed if _denied_by(p, denied))
        + tuple(p for p in change.data_actions_removed if _denied_by(p, denied_data)),
    )
    flags = ((code, rule(update)) for code, rule in RULES)
    return tuple(Risk(code=code, severity=f[0], message=f[1]) for code, f in flags if f is not None)
