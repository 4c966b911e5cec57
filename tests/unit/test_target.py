"""Target files (TOML) and targets from definitions: valid examples load, every bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import TargetError
from orchestrator.models import Authorization, Definition
from orchestrator.planning.target import load_target, target_from_definition

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
        (
            SC_FILE + 'allowed_actions = ["bogus"]\n',
            "'bogus' is not an action: it does not start with a provider",
        ),
        (
            SC_FILE + 'allowed_actions = ["Microsoft.Web/sites/frobnicate"]\n',
            "ends in 'frobnicate', not an operation verb",
        ),
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


# --- product lineage -------------------------------------------------------------------------------

NO_VERSION_ID = DEF_ID.replace("/app-v2", "/contoso-app")


def test_a_definition_target_without_replaces_uses_the_name_stem(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(SC_FILE)
    lineage = load_target(path).lineage
    assert lineage is not None and lineage.same_stem and not lineage.definition_ids and not lineage.names
    assert load_target(EXAMPLES / "target-marketplace-2.0.0.toml").lineage is None  # no definition


def test_replaces_names_the_definitions_a_target_replaces(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    old = DEF_ID.replace("/app-v2", "/legacy-app")
    path.write_text(
        f'definition_id = "{NO_VERSION_ID}"\nlock_level = "ReadOnly"\n'
        f'[replaces]\ndefinition_ids = ["{old}"]\nnames = ["contoso-app-*"]\n'
    )
    lineage = load_target(path).lineage
    assert lineage is not None and not lineage.same_stem
    assert lineage.definition_ids == (old,) and lineage.names == ("contoso-app-*",)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            f'definition_id = "{NO_VERSION_ID}"\nlock_level = "ReadOnly"\n',
            "definition_id: the name 'contoso-app' has no version token (like app-v2), so which "
            "definitions it replaces cannot be told from it; name the definitions it replaces in a "
            "`replaces` table",
        ),
        (SC_FILE + '[replaces]\nnames = ["a/b"]\n', "replaces.names: 'a/b' is not a definition name glob"),
        (
            SC_FILE + '[replaces]\ndefinition_ids = ["app-v1"]\n',
            "'app-v1' is not an application definition id",
        ),
        (SC_FILE + "[replaces]\nother = 1\n", "replaces.other"),
        (
            'lock_level = "ReadOnly"\n[plan]\npublisher="p"\nproduct="o"\nname="n"\nversion="2"\n'
            '[replaces]\nnames = ["x-*"]\n',
            "`replaces` names service-catalog definitions: give definition_id too",
        ),
    ],
)
def test_bad_lineage_is_one_line_naming_the_file(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TargetError) as info:
        load_target(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert problem in message


def test_target_definition_without_a_version_token_is_refused_with_the_way_out() -> None:
    with pytest.raises(TargetError) as info:
        target_from_definition(Definition(id=NO_VERSION_ID, lock_level="ReadOnly"))
    message = str(info.value)
    assert message.startswith(f"--target-definition {NO_VERSION_ID}: ") and "\n" not in message
    assert "write a target file" in message and "`replaces` table" in message
    target = target_from_definition(Definition(id=DEF_ID, lock_level="ReadOnly"))
    assert target.lineage is not None and target.lineage.same_stem
