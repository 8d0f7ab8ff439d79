from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.clients.live import FakeClock, LiveConsole


@pytest.fixture
def console(app, db) -> Iterator[LiveConsole]:
    live = LiveConsole(app)
    yield live
    live.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
