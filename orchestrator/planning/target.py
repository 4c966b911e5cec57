"""What to roll out: a target file (TOML) or an application definition read from ARM.

A target file names either a service-catalog definition (`definition_id`) or a marketplace plan
version (`[plan]`), and states the lock level, allowed actions, allowed data actions and, optionally,
the publisher authorizations the new version implies. Marketplace plans need the file: their allowed
actions live in the offer's technical configuration, not in ARM. Schema: plans/target.schema.json.

A service-catalog target moves only instances of its own product: `[replaces]` names the definitions
it replaces (ids, name globs); without it, those with the same name stem in the same publisher
resource group (`orchestrator.planning.lineage`), and a name without a version token is refused.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import TargetError
from orchestrator.models import Authorization, Definition, Lineage, LockLevel, MarketplacePlan, Target
from orchestrator.planning.actions import shape_problem
from orchestrator.planning.lineage import DEFAULT_LINEAGE, stem_problem
from orchestrator.untrusted import UnreadableFile, read_regular_file

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_DEFINITION_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Solutions/applicationDefinitions/[^/]+$",
    re.IGNORECASE,
)
# Letters, digits and the punctuation RBAC operation names use; `*` is the only wildcard.
_ACTION = re.compile(r"^[A-Za-z0-9.*_\-/]+$")


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlanVersion(_FileModel):
    """The marketplace plan instances move to (publisher, offer and plan must match each instance's)."""

    publisher: str = Field(min_length=1, description="Publisher id, e.g. 'contoso'.")
    product: str = Field(min_length=1, description="Offer id.")
    name: str = Field(min_length=1, description="Plan id.")
    version: str = Field(min_length=1, description="The plan version to move to, e.g. '2.0.0'.")


class AuthorizationEntry(_FileModel):
    principal_id: str = Field(description="Object id of the publisher's user, group or service principal.")
    role_definition_id: str = Field(description="Role definition GUID granted on the managed resource group.")

    @field_validator("principal_id", "role_definition_id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not _GUID.match(value):
            raise ValueError(f"{value!r} is not a GUID")
        return value


def _check_actions(values: list[str]) -> list[str]:
    for value in values:
        if not _ACTION.match(value):
            raise ValueError(f"{value!r} is not an action: use letters, digits, '.', '_', '-', '/' and '*'")
        problem = shape_problem(value)
        if problem is not None:
            raise ValueError(f"{value!r} is not an action: {problem}")
    return values


class Replaces(_FileModel):
    """The service-catalog definitions the target replaces; instances on any other are skipped as a
    different product. Without this table: the definitions with the target's name stem (app-v2 → app-…)
    in the target's publisher resource group."""

    definition_ids: list[str] = Field(
        default_factory=list, description="Definition ids (anywhere) whose instances move to the target."
    )
    names: list[str] = Field(
        default_factory=list,
        description="Globs on definition names (e.g. 'app-v*'), matched in the target definition's "
        "publisher resource group only.",
    )

    @field_validator("definition_ids")
    @classmethod
    def _ids(cls, values: list[str]) -> list[str]:
        for value in values:
            if not _DEFINITION_ID.match(value):
                raise ValueError(f"{value!r} is not an application definition id")
        return values

    @field_validator("names")
    @classmethod
    def _names(cls, values: list[str]) -> list[str]:
        for value in values:
            if not value.strip() or "/" in value:
                raise ValueError(f"{value!r} is not a definition name glob (no '/'; e.g. 'app-v*')")
        return values


class TargetFile(_FileModel):
    """A target file: `definition_id`, `[plan]`, or both (one release published on both channels)."""

    name: str | None = Field(default=None, description="A short label for reviews (default: from the id).")
    definition_id: str | None = Field(
        default=None, description="Service catalog: the ARM id of the application definition to move to."
    )
    plan: PlanVersion | None = Field(default=None, description="Marketplace: the plan version to move to.")
    lock_level: LockLevel = Field(description="The new version's lock level: None, CanNotDelete or ReadOnly.")
    allowed_actions: list[str] = Field(
        default_factory=list, description="lockingPolicy.allowedActions: excluded from the deny assignment."
    )
    allowed_data_actions: list[str] = Field(
        default_factory=list, description="lockingPolicy.allowedDataActions: excluded data actions."
    )
    authorizations: list[AuthorizationEntry] = Field(
        default_factory=list,
        description="Publisher authorizations (excluded principals). Omit to leave principals unchecked.",
    )
    replaces: Replaces | None = Field(
        default=None,
        description="Service catalog: the definitions this one replaces (its product lineage).",
    )

    @field_validator("allowed_actions", "allowed_data_actions")
    @classmethod
    def _actions(cls, values: list[str]) -> list[str]:
        return _check_actions(values)

    @field_validator("definition_id")
    @classmethod
    def _definition_id(cls, value: str | None) -> str | None:
        if value is not None and not _DEFINITION_ID.match(value):
            raise ValueError(
                "not an application definition id: expected /subscriptions/<sub>/resourceGroups/<rg>"
                "/providers/Microsoft.Solutions/applicationDefinitions/<name>"
            )
        return value

    @model_validator(mode="after")
    def _one_target(self) -> TargetFile:
        if self.definition_id is None and self.plan is None:
            raise ValueError("give definition_id (service catalog), [plan] (marketplace), or both")
        if self.replaces is not None and self.definition_id is None:
            raise ValueError("`replaces` names service-catalog definitions: give definition_id too")
        return self


def target_file_schema() -> dict[str, Any]:
    """The JSON Schema of target files (documentation; see scripts/gen_schemas.py)."""
    schema = TargetFile.model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Target file",
        "description": "What `orchestrator plan --target FILE` rolls out. Written in TOML; this schema "
        "describes the parsed document. definition_id, plan, or both.",
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def _short(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _to_target(model: TargetFile) -> Target:
    plan = MarketplacePlan(**model.plan.model_dump()) if model.plan is not None else None
    names = [_short(model.definition_id)] if model.definition_id else []
    if plan is not None:
        names.append(f"{plan.product}/{plan.name}@{plan.version}")
    default_name = " + ".join(names)
    definition = Definition(
        id=model.definition_id,
        lock_level=model.lock_level,
        allowed_actions=tuple(model.allowed_actions),
        allowed_data_actions=tuple(model.allowed_data_actions),
        authorizations=tuple(
            Authorization(principal_id=a.principal_id, role_definition_id=a.role_definition_id)
            for a in model.authorizations
        ),
    )
    lineage: Lineage | None = None
    if model.replaces is not None:
        replaces = model.replaces
        lineage = Lineage(definition_ids=tuple(replaces.definition_ids), names=tuple(replaces.names))
    elif model.definition_id is not None:
        lineage = DEFAULT_LINEAGE
    return Target(
        name=model.name or default_name,
        definition_id=model.definition_id,
        plan=plan,
        definition=definition,
        lineage=lineage,
    )


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


MAX_TARGET_BYTES = 1024 * 1024


def load_target(path: Path) -> Target:
    """The target a file describes; every problem is one TargetError naming the file."""
    try:
        text = read_regular_file(Path(path), limit=MAX_TARGET_BYTES).decode("utf-8")
    except UnreadableFile as exc:
        raise TargetError(f"{path}: {exc}") from None
    except UnicodeDecodeError as exc:
        raise TargetError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from exc
    except RecursionError:
        raise TargetError(f"{path}: not valid TOML: nested too deeply") from None
    try:
        model = TargetFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise TargetError(f"{path}: {where + ': ' if where else ''}{message}") from exc
    if model.definition_id is not None and model.replaces is None:
        problem = stem_problem(model.definition_id)
        if problem:
            raise TargetError(
                f"{path}: definition_id: {problem}; name the definitions it replaces in a `replaces` "
                "table (its definition_ids, or names such as app-v*)"
            )
    return _to_target(model)


def target_from_definition(definition: Definition) -> Target:
    """The target for `--target-definition ID`: the definition as read from ARM."""
    if not definition.id:
        raise TargetError("--target-definition: the definition read has no id")
    problem = stem_problem(definition.id)
    if problem:
        raise TargetError(
            f"--target-definition {definition.id}: {problem}; write a target file (--target FILE) whose "
            "`replaces` table names the definitions it replaces (plans/target.schema.json)"
        )
    return Target(
        name=_short(definition.id),
        definition_id=definition.id,
        definition=definition,
        lineage=DEFAULT_LINEAGE,
    )
