"""Deny-assignment derivation from a definition, and picking the application's own deny assignment."""

from __future__ import annotations

import pytest

from orchestrator.derive import (
    denied_actions,
    expected_deny,
    implied_lock_level,
    select_system_deny_assignment,
)
from orchestrator.models import Definition, DenyAssignment

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
MRG = f"{SUB}/resourceGroups/mrg-app1"
APP = f"{SUB}/resourceGroups/rg/providers/Microsoft.Solutions/applications/a1"
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


def _deny(name: str, *, scope: str = MRG, system: bool = True, description: str = "") -> DenyAssignment:
    return DenyAssignment(
        id=f"{scope}/providers/Microsoft.Authorization/denyAssignments/{name}",
        name=name,
        scope=scope,
        description=description,
        is_system_protected=system,
    )


@pytest.mark.parametrize(
    ("lock", "actions", "data", "expected"),
    [
        ("None", (KV,), ("d/read",), None),
        ("ReadOnly", (), (), (("*/read",), ())),
        ("ReadOnly", (KV,), ("d/read",), (("*/read", KV), ("d/read",))),
        ("CanNotDelete", (KV,), ("d/read",), ((KV,), ("d/read",))),
        ("CanNotDelete", (), (), ((), ())),
    ],
)
def test_expected_deny(lock: str, actions: tuple[str, ...], data: tuple[str, ...], expected: object) -> None:
    definition = Definition(lock_level=lock, allowed_actions=actions, allowed_data_actions=data)
    assert expected_deny(definition) == expected


def test_denied_actions_and_implied_lock_level_agree() -> None:
    for lock in ("ReadOnly", "CanNotDelete"):
        actions, _ = denied_actions(lock)
        deny = DenyAssignment(id="x", name="x", scope=MRG, actions=actions)
        assert implied_lock_level(deny) == lock
    assert denied_actions("None") == ((), ())
    assert implied_lock_level(DenyAssignment(id="x", name="x", scope=MRG, actions=("*/write",))) is None


def test_selects_the_only_system_deny_assignment_and_ignores_user_ones() -> None:
    system = _deny("sys")
    user = _deny("user", system=False, description=f"Created by managed application '{APP}'.")
    assert select_system_deny_assignment(APP, MRG, [user, system]) == system
    assert select_system_deny_assignment(APP, MRG, [user]) is None
    assert select_system_deny_assignment(APP, MRG, []) is None


def test_scope_compares_case_insensitively_and_ignores_other_scopes() -> None:
    system = _deny("sys", scope=MRG.upper() + "/")
    elsewhere = _deny("other", scope=MRG + "-other")
    child = _deny("child", scope=MRG + "/providers/Microsoft.KeyVault/vaults/kv")
    assert select_system_deny_assignment(APP, MRG, [elsewhere, child, system]) == system
    assert select_system_deny_assignment(APP, MRG, [elsewhere, child]) is None


def test_several_system_deny_assignments_pick_the_one_naming_the_app() -> None:
    mine = _deny("mine", description=f"Created by managed application '{APP.upper()}'.")
    other = _deny("other", description="Created by managed application '/subscriptions/x/other'.")
    assert select_system_deny_assignment(APP, MRG, [other, mine]) == mine
    # Nothing singles one out: none is chosen rather than a guess.
    assert select_system_deny_assignment(APP, MRG, [other, _deny("third")]) is None
