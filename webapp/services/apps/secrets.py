"""API key secrets: ``aipm_<dev|stg|prd>_<40 base62 characters>``.

A secret carries 40 × log2(62) ≈ 238 bits from ``secrets``; only its SHA-256 is stored.
A fast hash is right here (unlike passwords): nobody can guess through 2**238 secrets, so
a slow hash would only add latency to every application request. The visible ``prefix``
(the environment tag and the first 8 random characters) names the key in lists and logs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string

ALPHABET = string.ascii_letters + string.digits  # base62
RANDOM_LENGTH = 40
PREFIX_RANDOM_LENGTH = 8
ENVIRONMENT_TAGS = {"development": "dev", "staging": "stg", "production": "prd"}
SECRET_PATTERN = re.compile(r"aipm_(dev|stg|prd)_[A-Za-z0-9]{32,128}")


def new_secret(environment: str) -> str:
    tag = ENVIRONMENT_TAGS[environment]
    return f"aipm_{tag}_" + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))


def secret_prefix(secret: str) -> str:
    """``aipm_prd_AbC12xYz``: what lists, logs and audit rows show of a key."""
    return secret[: len("aipm_prd_") + PREFIX_RANDOM_LENGTH]


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(value: str) -> bool:
    return SECRET_PATTERN.fullmatch(value) is not None
