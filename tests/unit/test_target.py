"""Target files (TOML) and targets from definitions: valid examples load, every bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import TargetError
from orchestrator.models import Authorization, Definition
from orchestrator.target import load_target, target_from_definition

EXAMPLES = Path(__file__).resolve().parents[2] / "plans" / "examples"
DEF_ID = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/rg-publisher"
    "/providers/Microsoft.Solutions/applicationDefinitions/app-v2"
)
SC_FILE = f'definition_id = "{DEF_ID}"\nlock_level = "ReadOnly"\n'


def test_service_catalog_example() -> None:
    target = load_target(EXAMPLES / "target-v2.toml")
    assert target.name == "app-v2"
    assert target.definition_id == target.definition.id
    assert target.definition_id is not None and target.definition_id.endswith("/app-v2")
    assert target.plan is None
    assert target.definition.lock_level == "ReadOnly"
    assert "Microsoft.KeyVault/vaults/secrets/readMetadata/action" in target.definition.allowed_actions
    assert len(target.definition.authorizations) == 1


def test_marketplace_example() -> None:
    target = load_target(EXAMPLES / "target-marketplace-2.0.0.toml")
    assert target.definition_id is None and target.definition.id is None
    assert target.plan is not None
    assert (target.plan.publisher, target.plan.product, target.plan.name, target.plan.version) == (
        "contoso-isv",
        "contoso-app",
        "standard",
        "2.0.0",
    )
    assert target.definition.authorizations == ()


def test_a_target_may_name_both_channels(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(SC_FILE + '[plan]\npublisher="p"\nproduct="o"\nname="n"\nversion="2"\n')
    target = load_target(path)
    assert target.definition_id == DEF_ID
    assert target.plan is not None and target.plan.version == "2"
    assert target.name == "app-v2 + o/n@2"


def test_name_defaults_from_the_id(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(SC_FILE)
    assert load_target(path).name == "app-v2"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("lock_level = ", "not valid TOML"),
        ('lock_level = "ReadOnly"\n', "give definition_id (service catalog), [plan] (marketplace), or both"),
        (f'definition_id = "{DEF_ID}"\n', "lock_level: Field required"),
        (f'definition_id = "{DEF_ID}"\nlock_level = "Locked"\n', "lock_level: Input should be"),
        (
            'definition_id = "/subscriptions/x/app-v2"\nlock_level = "ReadOnly"\n',
            "not an application definition id",
        ),
        (
            SC_FILE + 'allowed_actions = "Microsoft.Web/sites/read"\n',
            "allowed_actions: Input should be a valid list",
        ),
        (
            SC_FILE + 'allowed_actions = ["Microsoft.Web/sites/read", "bad action"]\n',
            "'bad action' is not an action",
        ),
        (SC_FILE + 'allowed_data_actions = [""]\n', "allowed_data_actions: '' is not an action"),
        (SC_FILE + 'colour = "blue"\n', "colour: Extra inputs are not permitted"),
        (SC_FILE + '[[authorizations]]\nprincipal_id = "me"\nrole_definition_id = "x"\n', "is not a GUID"),
        (
            'lock_level = "ReadOnly"\n[plan]\npublisher = "p"\nproduct = "o"\nname = "n"\n',
            "plan.version: Field required",
        ),
    ],
)
def test_bad_files_give_one_line_naming_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "target.toml"
    path.write_text(content)
    with pytest.raises(TargetError) as caught:
        load_target(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert problem in message
    assert "\n" not in message
    assert caught.value.exit_code == 2


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=r"missing\.toml: cannot read"):
        load_target(tmp_path / "missing.toml")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(TargetError, match=r"bin\.toml: not UTF-8"):
        load_target(binary)


def test_target_from_definition() -> None:
    definition = Definition(
        id=DEF_ID,
        lock_level="CanNotDelete",
        allowed_actions=("a/b/action",),
        authorizations=(Authorization(principal_id="p", role_definition_id="r"),),
    )
    target = target_from_definition(definition)
    assert (target.name, target.definition_id, target.plan, target.definition) == (
        "app-v2",
        DEF_ID,
        None,
        definition,
    )
    with pytest.raises(TargetError, match="--target-definition"):
        target_from_definition(Definition(lock_level="ReadOnly"))
