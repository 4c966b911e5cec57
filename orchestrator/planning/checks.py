"""Pure checks on one app, shared by the planner and the engine: one rule per fact.

- `on_release`: is the app on a given release (the planner's "already on the target", the engine's
  "already there" and "the earlier write landed", `verify`'s "on the target");
- `moved_from_start`, `difference`: how an app differs from the state a plan was made from;
- `convergence_gap`: what its deny assignment still lacks (or still has) against the planned exclusions.

The engine passes a work item; anything with the fields of `Move` will do (`verify` passes one too).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from orchestrator.models import (
    TERMINAL_SUCCESS,
    App,
    AppKind,
    AppStateSummary,
    DenyAssignment,
    MarketplacePlan,
)
from orchestrator.planning.fingerprint import describe_difference


class Move(Protocol):
    """One planned update as the checks see it: where it starts, where it goes, what it expects."""

    @property
    def to_definition_id(self) -> str | None: ...
    @property
    def to_plan(self) -> MarketplacePlan | None: ...
    @property
    def from_definition_id(self) -> str | None: ...
    @property
    def from_plan(self) -> MarketplacePlan | None: ...
    @property
    def as_read(self) -> AppStateSummary | None: ...
    @property
    def expect_deny_assignment(self) -> bool: ...
    @property
    def expected_not_actions(self) -> tuple[str, ...]: ...
    @property
    def expected_not_data_actions(self) -> tuple[str, ...]: ...


def key(value: str | None) -> str:
    """Ids, kinds and offer names compare without case or surrounding blanks (ARM ignores case)."""
    return (value or "").strip().casefold()


def is_marketplace(app: App) -> bool:
    return key(app.kind) == key(AppKind.MARKETPLACE)


def same_offer(a: MarketplacePlan, b: MarketplacePlan) -> bool:
    """The same publisher, product and plan name (any version)."""
    return (key(a.publisher), key(a.product), key(a.name)) == (key(b.publisher), key(b.product), key(b.name))


def on_release(app: App, definition_id: str | None, plan: MarketplacePlan | None) -> bool:
    """Whether `app` runs the release named by `definition_id` / `plan`: the one rule for "on the target".

    The app's kind says which name counts, as it says how the app is updated: a MarketPlace instance
    is on the release when its plan is the same offer at the same version; any other instance when its
    application definition is the one named. A release that names nothing for the app's kind is not
    the app's.
    """
    if is_marketplace(app):
        return (
            plan is not None
            and app.plan is not None
            and same_offer(app.plan, plan)
            and app.plan.version.strip() == plan.version.strip()
        )
    return definition_id is not None and key(app.definition_id) == key(definition_id)


def on_target(app: App, move: Move) -> bool:
    return on_release(app, move.to_definition_id, move.to_plan)


def describe(app: App) -> str:
    """The app's release in words."""
    if app.plan is not None:
        return f"plan {app.plan.name} version {app.plan.version}"
    return f"definition {app.definition_id}"


def moved_from_start(app: App, move: Move) -> str | None:
    """How the app's release differs from the one the plan started from; None when it has not moved."""
    if move.from_definition_id is not None and key(app.definition_id) != key(move.from_definition_id):
        return f"definition changed from {move.from_definition_id} to {app.definition_id}"
    if move.from_plan is not None and (app.plan is None or app.plan.version != move.from_plan.version):
        now = app.plan.version if app.plan else "none"
        return f"plan version changed from {move.from_plan.version} to {now}"
    return None


def difference(app: App, move: Move) -> str:
    """One line saying how the app differs from the state the plan was made from."""
    if move.as_read is not None:
        described = describe_difference(move.as_read, app)
        if described:
            return "changed since planning: " + described
    parts: list[str] = []
    moved = moved_from_start(app, move)
    if on_target(app, move):
        parts.append(f"already on the target ({describe(app)})")
    elif moved is not None:
        parts.append(moved)
    if app.provisioning_state != TERMINAL_SUCCESS:
        parts.append(f"provisioning state is {app.provisioning_state}")
    if not parts:
        parts.append("its deny assignment or managed resource group changed")
    return "changed since planning: " + "; ".join(parts)


def _fold(values: Sequence[str]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


def convergence_gap(found: DenyAssignment | None, move: Move) -> str | None:
    """None when the deny assignment is as planned; else what is still wrong."""
    if not move.expect_deny_assignment:
        return None if found is None else f"deny assignment {found.id} still present"
    if found is None:
        return "no system deny assignment on the managed resource group"
    gaps: list[str] = []
    for label, want, have in (
        ("notActions", move.expected_not_actions, found.not_actions),
        ("notDataActions", move.expected_not_data_actions, found.not_data_actions),
    ):
        missing = sorted(_fold(want) - _fold(have))
        extra = sorted(_fold(have) - _fold(want))
        if missing:
            gaps.append(f"{label} lacks {', '.join(missing)}")
        if extra:
            gaps.append(f"{label} still has {', '.join(extra)}")
    return "; ".join(gaps) or None


def already_there(app: App, move: Move) -> bool:
    """On the target, settled, and its deny assignment carries the planned exclusions."""
    return (
        on_target(app, move)
        and app.provisioning_state == TERMINAL_SUCCESS
        and convergence_gap(app.deny_assignment, move) is None
    )
