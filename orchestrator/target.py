"""What to roll out: a target file (TOML) or an application definition read from ARM.

A target file names either a service-catalog definition (`definition_id`) or a marketplace plan
version (`[plan]`), and states the lock level, allowed actions, allowed data actions and, optionally,
the publisher authorizations the new version implies. Marketplace plans need the file: their allowed
actions live in the offer's technical configuration, not in ARM. Schema: plans/target.schema.json.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from orchestrator.errors import TargetError
from orchestrator.models import Authorization, Definition, LockLevel, MarketplacePlan, Target

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
    return Target(
        name=model.name or default_name, definition_id=model.definition_id, plan=plan, definition=definition
    )


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc)


def load_target(path: Path) -> Target:
    """The target a file describes; every problem is one TargetError naming the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise TargetError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"{path}: not valid TOML: {exc}") from exc
    try:
        model = TargetFile.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = _where(first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise TargetError(f"{path}: {where + ': ' if where else ''}{message}") from exc
    return _to_target(model)


def target_from_definition(definition: Definition) -> Target:
    """The target for `--target-definition ID`: the definition as read from ARM."""
    if not definition.id:
        raise TargetError("--target-definition: the definition read has no id")
    return Target(name=_short(definition.id), definition_id=definition.id, definition=definition)
