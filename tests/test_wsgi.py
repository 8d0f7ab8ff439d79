"""The WSGI entry point freezes what a started app holds out of the garbage collector's
full collections (see wsgi.py): a worker's objects at start are in the permanent
generation, and what requests make afterwards is still collected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.processes import environment_without

PROBE = """
import gc, wsgi
frozen = gc.get_freeze_count()
class Cycle:
    pass
import weakref
a = Cycle(); a.me = a; alive = weakref.ref(a); del a
gc.collect()
print(frozen, alive() is None)
"""


def test_importing_the_entry_point_freezes_the_started_app(tmp_path):
    root = Path(__file__).resolve().parents[1]
    env = environment_without("DATABASE_URL", "AIPM_", "FLASK_", "TEST_")
    env |= {"AIPM_INSTANCE_DIR": str(tmp_path)}
    probed = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=root, env=env, capture_output=True, text=True
    )
    assert probed.returncode == 0, probed.stderr
    frozen, collected = probed.stdout.split()
    # A started app holds ~300,000 objects; far fewer would mean it froze before create_app.
    assert int(frozen) > 100_000
    assert collected == "True"  # garbage made after the freeze is still collected
