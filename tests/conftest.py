import os

import matplotlib
import pytest

matplotlib.use("Agg")


@pytest.fixture(autouse=True, scope="session")
def _quiet_progress():
    """Progress bars stay silent in tests whatever the terminal."""
    os.environ.setdefault("THEORYKIT_PROGRESS", "0")
    yield
