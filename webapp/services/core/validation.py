"""Input validation with pydantic v2: the typed field kinds every input model is built
from, and the one place that turns pydantic's errors into our ``ValidationFailed``.

An input model (``webapp/services/<domain>/schemas.py``) checks shapes, types, lengths,
ranges and choices, and pydantic reports every wrong field at once. The JSON API hands
the parsed body to the service and an HTML form view hands the submitted form, as a
dict; the service validates it with the model and adds only what needs the database
(exists, unique). Field errors keep our wording: a field kind raises its own message
(``PydanticCustomError`` of type ``"input"``), pydantic's own errors are reworded in
``_message`` below, and a model may word a field differently in ``messages``."""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    ValidationError,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, core_schema

from webapp.services.core.errors import ValidationFailed
from webapp.services.core.json_values import MAX_JSON_FIELD_BYTES, check_json_field

INPUT_ERROR = "input"  # the error type of our own messages: used as they are


class Input(BaseModel):
    """Base of every input model: unknown fields are refused, values are assigned as
    validated (so ``check`` can validate one field alone)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    # What an unknown field is told ("is not a field of a feature").
    unknown_field: ClassVar[str] = "is not a field that can be set"
    # {field: message} replacing the wording of any error of that field except a missing
    # value; the key is the dotted place ("pricing.price_per_image"), and "<place>.*" is
    # what an unknown field inside a nested object is told.
    messages: ClassVar[dict[str, str]] = {}


def problem(message: str) -> PydanticCustomError:
    """An error a field kind raises with our wording."""
    return PydanticCustomError(INPUT_ERROR, message)


def problems(found: dict[str, str], value: Any) -> ValidationError:
    """Several errors inside one field, each at its own place under it ("" for the
    field itself): raise it from a field's validator and they are named
    ``<field>.<place>``."""
    return ValidationError.from_exception_data(
        "input",
        [
            InitErrorDetails(
                type=problem(message),
                loc=tuple(place.split(".")) if place else (),
                input=value,
            )
            for place, message in found.items()
        ],
    )


M = TypeVar("M", bound=Input)


# ---------------------------------------------------------------------------------------
# Field kinds: ``Annotated[str, Text(200)]``. Each validates the raw value itself (so a
# JSON body and a form's text go through the same code) and describes itself to the JSON
# schema that the OpenAPI document is made of.


class JsonInput(dict[str, Any]):
    """A JSON body (the API's): held to JSON's types where a form's text would do (a
    list of tags, not "a, b"). Anything else validated is a form's or a caller's."""


class Rule:
    """Metadata that replaces pydantic's validation of a field with ``validate``."""

    def validate(self, value: Any) -> Any:
        raise NotImplementedError

    def validate_input(self, value: Any, from_json: bool) -> Any:
        """``validate``, knowing whether the value came in a JSON body."""
        return self.validate(value)

    def _validate(self, value: Any, info: core_schema.ValidationInfo) -> Any:
        return self.validate_input(value, bool(info.context and info.context.get("json")))

    def json_schema(self) -> dict[str, Any]:
        return {}

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(self._validate)

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.json_schema()


def _nullable(schema: dict[str, Any], optional: bool) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]} if optional else schema


@dataclass(frozen=True)
class Text(Rule):
    """Text, stripped. Required: None, "" and blanks are "is required"; optional: they
    are None."""

    max_length: int
    required: bool = True
    pattern: re.Pattern[str] | None = None
    problem: str | None = None  # what a value that does not match ``pattern`` is told
    lower_case: bool = False  # no upper-case letter in any alphabet ("übersetzung")

    def validate(self, value: Any) -> str | None:
        if value is None or value == "":
            if self.required:
                raise problem("is required")
            return None
        if not isinstance(value, str):
            raise problem("must be text")
        value = value.strip()
        if self.required and not value:
            raise problem("is required")
        if len(value) > self.max_length:
            raise problem(f"must be at most {self.max_length} characters")
        if value and self.pattern is not None:
            # A name has one spelling: "ü" typed as u + combining diaeresis is "ü" (NFC),
            # so that the pattern's letters (\w, any alphabet) match it.
            value = unicodedata.normalize("NFC", value)
            if not self.pattern.match(value) or (self.lower_case and value != value.lower()):
                raise problem(self.problem or "is not in the expected form")
        return value or None

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
        if self.required:
            schema["minLength"] = 1
        if self.pattern is not None:
            schema["pattern"] = self.pattern.pattern
        return _nullable(schema, not self.required)


@dataclass(frozen=True)
class OneOf(Rule):
    """One of ``choices`` (a model's constants)."""

    choices: tuple[str, ...]

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or value not in self.choices:
            raise problem(f"must be one of {', '.join(self.choices)}")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "enum": list(self.choices)}


def as_decimal(value: Any) -> Decimal | None:
    """A finite Decimal from a number or numeric text, else None. A JSON number arrives as
    a float whose shortest repr is the text the client sent ("0.1"): that text becomes the
    Decimal, never the binary float. Booleans are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@dataclass(frozen=True)
class Amount(Rule):
    """An exact Decimal with at most ``places`` decimals, from a number or numeric text,
    between ``minimum`` and ``maximum``. ``optional``: None and "" are None."""

    places: int
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    exclusive_minimum: bool = False
    out_of_range: str | None = None  # what a number outside the bounds is told
    below_minimum: str | None = None  # ... below ``minimum``, when it differs
    not_a_number: str = "must be a decimal number"
    too_precise: str | None = None  # default: "must have at most N decimal places"
    optional: bool = False
    required: str = "is required"

    def validate(self, value: Any) -> Decimal | None:
        if value is None or value == "":
            if self.optional:
                return None
            raise problem(self.required)
        amount = as_decimal(value)
        if amount is None:
            raise problem(self.not_a_number)
        if abs(amount) < 10**12:  # far larger ("1e30") would overflow quantize
            step = Decimal(1).scaleb(-self.places)
            if amount != amount.quantize(step):
                raise problem(self.too_precise or f"must have at most {self.places} decimal places")
            amount = amount.quantize(step)
        low, high = self.minimum, self.maximum
        out_of_range = self.out_of_range or f"must be from {low} to {high}"
        if low is not None and (amount <= low if self.exclusive_minimum else amount < low):
            raise problem(self.below_minimum or out_of_range)
        if high is not None and amount > high:
            raise problem(out_of_range)
        return amount

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {
            "type": ["number", "string"],
            "multipleOf": float(Decimal(1).scaleb(-self.places)),
        }
        if self.minimum is not None:
            key = "exclusiveMinimum" if self.exclusive_minimum else "minimum"
            schema[key] = float(self.minimum)
        if self.maximum is not None:
            schema["maximum"] = float(self.maximum)
        return _nullable(schema, self.optional)


@dataclass(frozen=True)
class Flag(Rule):
    """true or false, nothing else ("yes" is not a boolean)."""

    def validate(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise problem("must be true or false")
        return value

    def json_schema(self) -> dict[str, Any]:
        return {"type": "boolean"}


@dataclass(frozen=True)
class JsonObject(Rule):
    """A free JSON object, refused when it cannot be stored (see ``core/json_values``)."""

    shape: str = "must be a JSON object"
    max_bytes: int = MAX_JSON_FIELD_BYTES
    optional: bool = False

    def validate(self, value: Any) -> dict[str, Any] | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, dict):
            raise problem(self.shape)
        errors: dict[str, str] = {}
        check_json_field({"value": value}, "value", errors, max_bytes=self.max_bytes)
        if errors:
            raise problem(errors["value"])
        return value

    def json_schema(self) -> dict[str, Any]:
        return _nullable({"type": "object", "additionalProperties": True}, self.optional)


@dataclass(frozen=True)
class Id(Rule):
    """A UUID from its text; anything else is told ``message``. ``optional``: None and ""
    are None."""

    message: str = "must be a UUID"
    optional: bool = False

    def validate(self, value: Any) -> uuid.UUID | None:
        if self.optional and (value is None or value == ""):
            return None
        if isinstance(value, uuid.UUID):
            return value
        if not isinstance(value, str):
            raise problem(self.message)
        try:
            return uuid.UUID(value)
        except ValueError:
            raise problem(self.message) from None

    def json_schema(self) -> dict[str, Any]:
        return _nullable({"type": "string", "format": "uuid"}, self.optional)


# ---------------------------------------------------------------------------------------
# Checking


@dataclass
class Checked(Generic[M]):
    """What ``check`` found: the model when everything is right, every field error, and
    the validated value of each top-level field that is right (for the database checks
    that still run when another field is wrong)."""

    model: M | None
    errors: dict[str, str]
    values: dict[str, Any] = field(default_factory=dict)

    def valid(self) -> M:
        """The model, or ``ValidationFailed`` naming every wrong field."""
        if self.model is None or self.errors:
            raise ValidationFailed(self.errors)
        return self.model


def _place(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _message(item: ErrorDetails, schema: type[Input], place: str) -> str:
    """Our wording for one of pydantic's errors."""
    kind = item["type"]
    context = item.get("ctx") or {}
    if kind == "missing" or item["msg"] == "is required":
        return "is required"
    if kind == "extra_forbidden":
        parent = place.rpartition(".")[0]
        return schema.messages.get(f"{parent}.*", schema.unknown_field)
    if place in schema.messages:
        return schema.messages[place]
    if kind == INPUT_ERROR:
        return item["msg"]
    if kind in ("string_type", "string_sub_type"):
        return "must be text"
    if kind == "string_too_long":
        return f"must be at most {context.get('max_length')} characters"
    if kind == "string_too_short":
        return "is required"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "must be an object"
    if kind == "list_type":
        return "must be a list"
    if kind == "too_short":
        return f"must contain at least {context.get('min_length')} item(s)"
    if kind == "too_long":
        return f"must contain at most {context.get('max_length')} items"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return "must be a whole number"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return "must be a number"
    if kind == "bool_type" or kind == "bool_parsing":
        return "must be true or false"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(context.values()), "")
        words = {
            "greater_than": "above",
            "greater_than_equal": "at least",
            "less_than": "below",
            "less_than_equal": "at most",
        }
        return f"must be {words[kind]} {bound}"
    return str(item["msg"][:1].lower() + item["msg"][1:])


def field_errors(error: ValidationError, schema: type[Input], prefix: str = "") -> dict[str, str]:
    """{dotted field: message}, the first problem of each field, in our words. ``prefix``
    names the place of the whole input ("items.3.", "events[3].")."""
    errors: dict[str, str] = {}
    for item in error.errors():
        place = _place(item["loc"])
        key = f"{prefix}{place}" if place else (prefix.rstrip(".") or "body")
        errors.setdefault(key, _message(item, schema, place))
    return errors


def check(schema: type[M], data: Mapping[str, Any] | M, prefix: str = "") -> Checked[M]:
    """Validate ``data`` with ``schema``; never raises for bad input."""
    if isinstance(data, schema):
        return Checked(data, {}, dict(data))
    if not isinstance(data, Mapping):
        return Checked(None, {prefix.rstrip(".") or "body": "must be an object"})
    context = {"json": isinstance(data, JsonInput)}
    try:
        model = schema.model_validate(dict(data), context=context)
    except ValidationError as error:
        errors = field_errors(error, schema, prefix)
        wrong = {str(item["loc"][0]) for item in error.errors() if item["loc"]}
        return Checked(None, errors, _valid_values(schema, data, wrong, context))
    return Checked(model, {}, {name: getattr(model, name) for name in model.model_fields_set})


def _valid_values(
    schema: type[Input], data: Mapping[str, Any], wrong: set[str], context: dict[str, Any]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    blank = schema.model_construct()
    for name, raw in data.items():
        if name in wrong or name not in schema.model_fields:
            continue
        try:
            values[name] = getattr(
                schema.__pydantic_validator__.validate_assignment(
                    blank, name, raw, context=context
                ),
                name,
            )
        except ValidationError:
            continue
    return values


def validated(schema: type[M], data: Mapping[str, Any] | M, prefix: str = "") -> M:
    """The model, or ``ValidationFailed`` naming every wrong field."""
    return check(schema, data, prefix).valid()


def given(model: Input) -> dict[str, Any]:
    """The fields the input set, as validated (what an update changes)."""
    return {name: getattr(model, name) for name in model.model_fields_set}


# ---------------------------------------------------------------------------------------
# Checks by hand, for inputs not yet described by a model


def clean_text(
    fields: dict[str, Any],
    key: str,
    errors: dict[str, str],
    *,
    max_length: int,
    required: bool = True,
    pattern: re.Pattern[str] | None = None,
    problem: str | None = None,
) -> None:
    """Strip ``fields[key]`` in place, or record in ``errors`` what is wrong with it."""
    try:
        fields[key] = Text(max_length, required, pattern, problem).validate(fields.get(key))
    except PydanticCustomError as error:
        errors[key] = error.message()


def check_choice(
    fields: dict[str, Any], key: str, choices: tuple[str, ...], errors: dict[str, str]
) -> None:
    if key in fields:
        try:
            OneOf(choices).validate(fields[key])
        except PydanticCustomError as error:
            errors[key] = error.message()
