"""What a new account's input may hold (the users page, ``flask create-user``): one
pydantic model. The service adds what needs the database (the email is free)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import ValidationInfo, field_validator

from webapp.models import ROLES
from webapp.services.core.validation import Input, OneOf, Rule, Text, problem
from webapp.services.identity import passwords

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMAIL = 320


def normalize_email(email: str) -> str:
    return email.strip().lower()


@dataclass(frozen=True)
class Email(Rule):
    """An email address, stripped and lower-cased."""

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or not normalize_email(value):
            raise problem("is required")
        email = normalize_email(value)
        if not EMAIL_PATTERN.match(email) or len(email) > MAX_EMAIL:
            raise problem("is not a valid email address")
        return email

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "email", "maxLength": MAX_EMAIL}


class NewUser(Input):
    unknown_field: ClassVar[str] = "is not a field of a user"

    email: Annotated[str, Email()]
    role: Annotated[str, OneOf(ROLES)]
    display_name: Annotated[str | None, Text(200, required=False)] = None
    password: str

    @field_validator("password")
    @classmethod
    def _acceptable(cls, password: str, info: ValidationInfo) -> str:
        """Checked against the account's email when that is valid."""
        found = passwords.password_problem(password, info.data.get("email"))
        if found:
            raise problem(found)
        return password
