from pathlib import Path

import pytest
from zoo_testutil import TINY, run_zoo

from zoo_core import plugins


@pytest.fixture
def zoo():
    return run_zoo


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One tiny trained LSTM run folder, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("runs") / "tiny"
    run_zoo("train", "lstm", "--steps", "30", "--out", out, "--quiet", *TINY)
    return out


@pytest.fixture
def register_plugin():
    """Register plugin objects on the plugin manager for one test; the catalog is rebuilt."""
    names = []

    def register(plugin, name):
        plugins.load_plugins()
        plugins.pm.register(plugin, name=name)
        names.append(name)
        plugins.reset_catalog()
        return plugins.get_catalog()

    try:
        yield register
    finally:
        for name in names:
            plugins.pm.unregister(name=name)
        plugins.reset_catalog()
