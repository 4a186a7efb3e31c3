from pathlib import Path

import pytest
from zoo_testutil import TINY, run_zoo


@pytest.fixture
def zoo():
    return run_zoo


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One tiny trained LSTM run folder, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    run_zoo("train", "lstm", "--steps", "30", "--out", out, "--quiet", *TINY)
    return out
