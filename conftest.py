"""Shared by every test folder (the core's and the plugins'): caches kept out of the user's."""

import os
import shutil
import tempfile

import pytest

# One OpenMP thread a process: the suite runs a worker per core (pytest-xdist), and the zoo
# commands and torchrun ranks it starts inherit this. With PyTorch's default of a thread per
# core, the workers' threads spin against each other and tests of small models ran tens of
# times slower under load. Set before anything imports torch, which reads it once.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# `datasets` reads where its cache is when it is imported, which collecting the tests may do.
_DATASETS_CACHE = tempfile.mkdtemp(prefix="zoo-test-datasets-")
os.environ.setdefault("HF_DATASETS_CACHE", _DATASETS_CACHE)


@pytest.fixture(scope="session", autouse=True)
def _zoo_cache(tmp_path_factory):
    """Token maps go to a folder of this test session (``ZOO_CACHE``), which `zoo` commands run
    in subprocesses inherit, never to the user's Hugging Face home; so do the Arrow files
    `datasets` makes of local Parquet files (``HF_DATASETS_CACHE``)."""
    before = os.environ.get("ZOO_CACHE")
    os.environ["ZOO_CACHE"] = str(tmp_path_factory.mktemp("zoo-cache"))
    yield
    if before is None:
        os.environ.pop("ZOO_CACHE", None)
    else:
        os.environ["ZOO_CACHE"] = before
    shutil.rmtree(_DATASETS_CACHE, ignore_errors=True)
