"""Dependencies are pinned, and `make audit` runs pip-audit strictly over them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
PIN = re.compile(r"^[A-Za-z0-9_.\-]+(\[[a-z0-9,]+\])?==[0-9][0-9A-Za-z.]*$")


@pytest.mark.parametrize(
    "name", ["requirements.txt", "requirements-dev.txt", "requirements-audit.txt"]
)
def test_every_requirement_is_pinned(name):
    lines = [line.split("#", 1)[0].strip() for line in (PROJECT / name).read_text().splitlines()]
    for line in filter(None, lines):
        if line.startswith("-e ./"):
            # A package of this repository (the Python client): its version is this commit.
            assert (PROJECT / line.removeprefix("-e ") / "pyproject.toml").is_file(), line
            continue
        assert line.startswith("-r ") or PIN.match(line), f"{name}: {line!r} is not pinned"


def make_plan(*arguments: str) -> str:
    """What ``make -n …`` would run (nothing is run)."""
    if not shutil.which("make"):
        pytest.skip("make is not installed")
    return subprocess.run(
        ["make", "--no-print-directory", "-n", *arguments],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_make_audit_runs_pip_audit_strictly():
    plan = make_plan("-W", "requirements-audit.txt", "audit")
    assert "pip install" in plan and "requirements-audit.txt" in plan
    assert "pip-audit --strict" in plan
    audit_pin = (PROJECT / "requirements-audit.txt").read_text()
    assert re.search(r"^pip-audit==\d", audit_pin, re.M)
