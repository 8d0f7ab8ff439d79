"""Field errors as an admin reads them on a page: the form's label, not the API's field
name ("End date: the range may span at most 1,830 days", "Per request must not be
negative"). The services' problems stay as they are (the JSON APIs answer with field
names, which applications rely on); only the pages put them into sentences here.

A problem that reads as a predicate ("is required", "must be …") follows the label
directly; any other ("the range may …") follows a colon. Labels lose a trailing
parenthetical such as "(optional)", which belongs on the form, not in a sentence.
Whole numbers of four digits or more get thousands separators (the services write some
limits without them)."""

from __future__ import annotations

import re
from collections.abc import Mapping

from webapp.services.core.errors import DomainError, ValidationFailed

# First words of a problem that make "<label> <problem>" a sentence.
PREDICATES = frozenset(
    {
        "is",
        "are",
        "must",
        "may",
        "can",
        "cannot",
        "has",
        "have",
        "does",
        "do",
        "was",
        "were",
        "should",
        "needs",
        "contains",
        "uses",
        "exceeds",
        "lies",
        "names",
        "not",
    }
)
_PARENTHETICAL = re.compile(r"\s*\([^()]*\)\s*$")
# A bare number of 4+ digits before any decimals (99999999.99): not part of a date
# (2026-01-01), a time, an id or a word, nor the number of a standard (ISO 8601, RFC 3339).
_WHOLE_NUMBER = re.compile(r"(?<![\w.,:/\-])(?<!ISO )(?<!RFC )(\d{4,})(\.\d+)?(?![\w,:/\-]|\.\d)")


# Field names that some services' problems mention, in words (pages only).
FIELD_WORDS = {"start_date": "the start date", "end_date": "the end date"}
_FIELD_WORD = re.compile(r"(?<![{`\w])(" + "|".join(FIELD_WORDS) + r")(?![}`\w])")


def label_of(name: str, labels: Mapping[str, str] | None = None) -> str:
    """The label for a field: the form's own (``labels``), else the field name in words
    ("end_date" → "End date", "health_check.url" → "Health check url")."""
    label = (labels or {}).get(name) or name.replace("_", " ").replace(".", " ")
    label = _PARENTHETICAL.sub("", label).strip() or label.strip()
    return label[:1].upper() + label[1:]


def separated(text: str) -> str:
    """Thousands separators in the bare numbers of ``text`` (1830 → 1,830)."""
    return _WHOLE_NUMBER.sub(lambda match: f"{int(match[1]):,}{match[2] or ''}", text)


def in_words(problem: str) -> str:
    """``problem`` with field names in it said in words, numbers separated."""
    return separated(_FIELD_WORD.sub(lambda match: FIELD_WORDS[match.group()], problem))


def field_sentence(label: str, problem: str) -> str:
    """``problem`` of the field labelled ``label`` as one sentence start."""
    label = label_of(label)
    problem = in_words(problem.strip())
    first = problem.split(" ", 1)[0]
    if first in PREDICATES:
        return f"{label} {problem}"
    return f"{label}: {problem}"


def refusal(error: ValidationFailed, labels: Mapping[str, str] | None = None) -> str:
    """Every field's problem of ``error``, each with its label, in one line."""
    return "; ".join(
        field_sentence(label_of(name, labels), problem) for name, problem in error.errors.items()
    )


def said(error: DomainError, labels: Mapping[str, str] | None = None) -> str:
    """A refused write in words: the field problems with their labels, or the message
    of any other domain error (a conflict says what clashes)."""
    if isinstance(error, ValidationFailed):
        return refusal(error, labels)
    return error.message


# How a status reads after "is now": "AI Chatbot is now in maintenance."
STATUS_PHRASES = {"maintenance": "in maintenance", "beta": "in beta"}


def status_phrase(status: str) -> str:
    return STATUS_PHRASES.get(status, status)


def with_article(noun: str) -> str:
    """ "an admin", "a viewer"."""
    noun = noun.replace("_", " ")  # platform_admin: "a platform admin"
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
