"""`zoo compare` on a task of this plugin's whose own option is called length."""

import zoo_core
from zoo_core import plugins
from zoo_core.compare import compare

LENGTHY_TASK = """
from dataclasses import dataclass

from zoo_gan.tasks import Toy2D, ToyOptions


@dataclass
class Options(ToyOptions):
    length: int = 3  # an option of the task's own, not a length evaluate() takes


class LengthyToy(Toy2D):
    name = "lengthy-toy"
    Options = Options
"""


def test_an_option_named_length_is_not_taken_for_an_evaluation_length(tmp_path, monkeypatch):
    (tmp_path / "zoo_lengthy_task.py").write_text(LENGTHY_TASK)
    monkeypatch.syspath_prepend(str(tmp_path))

    class Lengthy:
        @zoo_core.hookimpl
        def register_tasks(self, register):
            register(zoo_core.TaskSpec("lengthy-toy", "zoo_lengthy_task:LengthyToy", "x"))

        @zoo_core.hookimpl
        def register_models(self, register):
            register(zoo_core.ModelSpec("lengthy-gan", "zoo_gan.model:MLPGAN", "lengthy-toy", "x"))

    plugins.load_plugins()
    plugins.pm.register(Lengthy(), name="lengthy")
    plugins.reset_catalog()
    try:
        results = compare(["lengthy-gan"], "lengthy-toy", steps=2, out=tmp_path / "cmp")
    finally:
        plugins.pm.unregister(name="lengthy")
        plugins.reset_catalog()
    assert results["length_option"] is None and results["metric"] == "val_modes"
    assert "val_modes" in results["runs"][0]["eval"]["-"]
