"""What a new account's input may hold (the users page, ``flask create-user``): one
pydantic model. The service adds what needs the database (the email is free)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationInfo, field_validator

from webapp.models import ROLES
from webapp.services.core.validation import Input, OneOf, Rule, Text, problem
from webapp.services.identity import passwords

MAX_EMAIL = 320  # the column; a valid address has at most 254 characters (RFC 5321)


def checked_email(email: str) -> str:
    """The address in its one stored form, or ``EmailNotValidError`` saying what is wrong.

    email-validator checks the syntax strictly (a local part of at most 64 characters,
    the whole of at most 254, no display name or markup around it, a domain with a
    period that is not a special-use name such as ``.local``), without any DNS lookup,
    and normalises Unicode (NFC) and the domain; the whole address is then lower-cased,
    as every stored address is (the console treats ``Ann@X.com`` and ``ann@x.com`` as
    one account)."""
    found = validate_email(email.strip(), check_deliverability=False, strict=True)
    return found.normalized.lower()


def normalize_email(email: str) -> str:
    """The stored form of a typed address; text that is not a valid address is only
    stripped and lower-cased (a sign-in lookup or an audit row still gets one form)."""
    try:
        return checked_email(email)
    except EmailNotValidError:
        return email.strip().lower()


def _reason(error: EmailNotValidError) -> str:
    text = str(error).rstrip(".")
    return text[:1].lower() + text[1:]


@dataclass(frozen=True)
class Email(Rule):
    """An email address, checked by email-validator and normalised (``checked_email``)."""

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise problem("is required")
        try:
            return checked_email(value)
        except EmailNotValidError as error:
            raise problem(f"is not a valid email address: {_reason(error)}") from None

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
