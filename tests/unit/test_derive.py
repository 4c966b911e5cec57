"""Deny-assignment derivation from a definition, and picking the application's own deny assignment."""

from __future__ import annotations

import pytest

from orchestrator.models import Definition, DenyAssignment
from orchestrator.planning.derive import (
    denied_actions,
    expected_deny,
    implied_lock_level,
    match_system_deny_assignment,
)

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
MRG = f"{SUB}/resourceGroups/mrg-app1"
APP = f"{SUB}/resourceGroups/rg/providers/Microsoft.Solutions/applications/a1"
KV = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"


REAL_NAME = f"System deny assignment created by managed application {APP}"
GENERIC = "Created by a managed application to protect its managed resource group."


def _deny(
    name: str, *, scope: str = MRG, system: bool = True, description: str = GENERIC, display: str = REAL_NAME
) -> DenyAssignment:
    return DenyAssignment(
        id=f"{scope}/providers/Microsoft.Authorization/denyAssignments/{name}",
        name=name,
        scope=scope,
        deny_assignment_name=display,
        description=description,
        is_system_protected=system,
    )


def select(candidates: list[DenyAssignment]) -> DenyAssignment | None:
    return match_system_deny_assignment(APP, MRG, candidates).found


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


def test_finds_the_app_by_name_with_a_generic_description_and_ignores_user_ones() -> None:
    system = _deny("sys")
    user = _deny("user", system=False, description=f"Created by managed application '{APP}'.")
    assert select([user, system]) == system
    assert select([user]) is None
    assert select([]) is None
    assert match_system_deny_assignment(APP, MRG, [user]).problem is None  # nothing system-protected


def test_the_app_id_may_be_in_the_description_instead() -> None:
    old_style = _deny(
        "old",
        display="System deny assignment created by managed application",
        description=f"Created by managed application '{APP.upper()}'.",
    )
    assert select([old_style]) == old_style


def test_scope_compares_case_insensitively_and_ignores_other_scopes() -> None:
    system = _deny("sys", scope=MRG.upper() + "/")
    elsewhere = _deny("other", scope=MRG + "-other")
    child = _deny("child", scope=MRG + "/providers/Microsoft.KeyVault/vaults/kv")
    assert select([elsewhere, child, system]) == system
    assert select([elsewhere, child]) is None


def test_a_blueprint_lock_beside_the_apps_deny_assignment_is_not_taken_for_it() -> None:
    mine = _deny("mine")
    blueprint = _deny(
        "bp", display="Blueprint deny assignment", description="Created by Blueprint assignment 'x'."
    )
    assert select([blueprint, mine]) == mine


def test_a_longer_app_id_does_not_name_this_app() -> None:
    app10 = _deny("a10", display=f"System deny assignment created by managed application {APP}0")
    found = match_system_deny_assignment(APP, MRG, [app10])
    assert found.found is None and found.problem is not None and "none naming it" in found.problem


def test_the_id_counts_wherever_it_ends_even_after_a_longer_one() -> None:
    both = _deny("both", display=f"Replaces {APP}0; created by managed application {APP.upper()}")
    assert select([both]) == both
    for suffix in ("-2", ".v2", "_b", "x"):
        longer = _deny("longer", display=f"created by managed application {APP}{suffix}")
        assert select([longer]) is None


def test_several_or_none_naming_the_app_choose_nothing_and_say_why() -> None:
    two = match_system_deny_assignment(APP, MRG, [_deny("one"), _deny("two")])
    assert two.found is None
    assert two.problem is not None and two.problem.startswith("2 system-protected deny assignments")
    assert "one" in two.problem and "two" in two.problem
    legacy = _deny("legacy", display="System deny assignment created by managed application")
    blueprint = _deny("bp", display="Blueprint deny assignment", description="Blueprint lock")
    none = match_system_deny_assignment(APP, MRG, [legacy, blueprint])
    assert none.found is None and none.problem is not None and "none naming it" in none.problem
