"""Password hashing (Argon2id via argon2-cffi) and the password policy.

Hashes of another scheme (Werkzeug's ``pbkdf2:`` and ``scrypt:``, as older Flask apps
store them) still verify, and are replaced by an Argon2id hash at the next successful
sign-in (``needs_rehash``)."""

from __future__ import annotations

import gzip
from functools import cache, lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from werkzeug.security import check_password_hash

COMMON_PASSWORDS_FILE = Path(__file__).resolve().parents[2] / "data" / "common-passwords.txt.gz"
LEGACY_PREFIXES = ("pbkdf2:", "scrypt:")

MIN_LENGTH = 12
MAX_LENGTH = 128


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def password_hasher() -> PasswordHasher:
    config = current_app.config
    return _hasher(
        config["ARGON2_TIME_COST"],
        config["ARGON2_MEMORY_COST_KIB"],
        config["ARGON2_PARALLELISM"],
    )


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_PASSWORDS_FILE, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip().lower() for line in lines if line.strip())


# A local part this short ("al@…") would refuse too many passwords merely containing it.
MIN_LOCAL_PART_TO_REFUSE = 3


def password_problem(password: str, email: str | None = None) -> str | None:
    """What is wrong with a new password for the account ``email``, or None when it is
    acceptable."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    folded = password.casefold()
    if len(set(folded)) == 1:
        return "must not be one character repeated"
    if password.strip().lower() in common_passwords():
        return "is one of the 10,000 most common passwords; choose another"
    if email:
        email = email.strip().casefold()
        local_part = email.split("@", 1)[0]
        if email in folded or (
            len(local_part) >= MIN_LOCAL_PART_TO_REFUSE and local_part in folded
        ):
            return "must not contain the account's email address or its name part"
    return None


def hash_password(password: str) -> str:
    return password_hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    if password_hash.startswith(LEGACY_PREFIXES):
        return check_password_hash(password_hash, password)
    try:
        return password_hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True for another scheme or weaker Argon2 parameters than configured."""
    if not password_hash.startswith("$argon2id$"):
        return True
    return password_hasher().check_needs_rehash(password_hash)


def burn_verification_time(password: str) -> None:
    """Spend the time of one verification, so unknown emails answer as slowly as wrong
    passwords and response timing does not reveal which accounts exist."""
    verify_password(_dummy_hash(), password)


def _dummy_hash() -> str:
    hasher = password_hasher()
    return _dummy_hash_for(hasher.time_cost, hasher.memory_cost, hasher.parallelism)


@lru_cache(maxsize=4)
def _dummy_hash_for(time_cost: int, memory_cost: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_cost, parallelism).hash("not a real password, ever")
