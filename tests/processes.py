"""What the tests that start a console in a process of its own (``flask``, gunicorn,
``python -c "import wsgi"``) share."""

from __future__ import annotations

import os


def environment_without(*prefixes: str) -> dict[str, str]:
    """This process's environment without the variables whose names start with one of
    ``prefixes``: what the started console inherits, less the settings the test sets
    itself (or must not leak into it, like the suite's own ``TEST_`` databases)."""
    return {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
