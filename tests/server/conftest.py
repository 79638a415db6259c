"""A real pyllama-server process on a free port, with SmolLM2 (2 slots)."""

from __future__ import annotations

import pytest

from helpers.server_process import ServerProcess


@pytest.fixture(scope="session")
def server(smollm2_path):
    # by name, as the README runs it (the model is in the cache the fixture filled)
    s = ServerProcess("smollm2-135m", "-np", "2", "-c", "4096", "-t", "2", "--metrics")
    yield s
    s.stop()
