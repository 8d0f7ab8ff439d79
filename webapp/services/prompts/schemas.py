"""What a prompt's input may hold: pydantic models used by the JSON API and the prompt
forms alike. The service adds what needs the database (the feature exists, the name is
free)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator

from webapp.models import ENVIRONMENTS
from webapp.services.core.json_values import check_json_field
from webapp.services.core.validation import (
    Flag,
    Id,
    Input,
    OneOf,
    Rule,
    Text,
    problem,
    problems,
)
from webapp.services.prompts.rendering import validate_declarations

# Letters of any alphabet ("Übersetzung"), digits, then also _ . - and spaces.
PROMPT_NAME = re.compile(r"^[^\W_][\w.\- ]{0,199}$")
MAX_CONTENT = 100_000
MAX_TAGS, MAX_TAG_LENGTH = 30, 50
PromptName = Annotated[
    str,
    Text(
        200,
        pattern=PROMPT_NAME,
        problem="must be 1-200 letters, digits, spaces, dots, dashes or underscores",
    ),
]


@dataclass(frozen=True)
class Content(Rule):
    """A template's text, kept exactly as written (not stripped); blank is missing."""

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise problem("is required")
        if len(value) > MAX_CONTENT:
            raise problem(f"must be at most {MAX_CONTENT:,} characters")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1, "maxLength": MAX_CONTENT}


@dataclass(frozen=True)
class Tags(Rule):
    """A list of tags (or, from a form, comma-separated text): stripped, each once,
    sorted."""

    def validate(self, value: Any) -> list[str]:
        return self.validate_input(value, from_json=False)

    def validate_input(self, value: Any, from_json: bool) -> list[str]:
        if isinstance(value, str) and not from_json:
            value = value.split(",")
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise problem("must be a list of tags")
        tags = sorted({t.strip() for t in value if t.strip()})
        if len(tags) > MAX_TAGS or any(len(t) > MAX_TAG_LENGTH for t in tags):
            raise problem(f"must be at most {MAX_TAGS} tags of at most {MAX_TAG_LENGTH} characters")
        return tags

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "array",
            "maxItems": MAX_TAGS,
            "items": {"type": "string", "maxLength": MAX_TAG_LENGTH},
        }


@dataclass(frozen=True)
class Declarations(Rule):
    """{name: {type, default, description}}: the variables a template declares."""

    def validate(self, value: Any) -> dict[str, Any]:
        found = {
            key.removeprefix("variables").lstrip("."): message
            for key, message in validate_declarations(value).items()
        }
        if not found:
            check_json_field({"variables": value}, "variables", found)
        if found:
            raise problems(found, value)
        return dict(value)

    def json_schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "additionalProperties": {
                "anyOf": [
                    {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string"},
                            "default": {},
                            "description": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    {"type": "null"},
                ]
            },
        }


class PromptUpdate(Input):
    """PUT /prompts/<id> and the prompt page's forms: new content makes a new version."""

    unknown_field: ClassVar[str] = "is not a field of a prompt"
    messages: ClassVar[dict[str, str]] = {
        "description": "must be text of at most 10,000 characters"
    }

    content: Annotated[str | None, Content()] = None
    description: Annotated[str | None, Text(10_000, required=False)] = None
    tags: Annotated[list[str] | None, Tags()] = None
    variables: Annotated[dict[str, Any] | None, Declarations()] = None


class PromptCreate(PromptUpdate):
    """POST /prompts and the new-prompt form (and a duplicate's copy)."""

    name: PromptName
    content: Annotated[str, Content()]
    feature_id: Annotated[uuid.UUID | None, Id("must be a feature id", optional=True)] = None
    is_active: Annotated[bool | None, Flag()] = None


class PromptDuplicate(Input):
    name: str = Field(min_length=1, max_length=200)


class PromptTest(Input):
    variables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("variables", mode="before")
    @classmethod
    def _object(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise problem("must be an object of variable values")
        return value


class PromptEnvironment(Input):
    """POST /prompts/<id>/activate, /deactivate and /rollback: which environment (the
    seed's calls send no body: production, what ``is_active`` means)."""

    environment: Annotated[str, OneOf(ENVIRONMENTS)] = "production"


class PromptPromote(Input):
    """POST /prompts/<id>/promote: the environment to promote to (from the one before)."""

    to_environment: Annotated[str, OneOf(("staging", "production"))]
