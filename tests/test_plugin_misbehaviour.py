"""Plugins that misbehave are reported clearly, and the rest of the zoo keeps working.

Import failures, strictness and the allow-list go through the real path: installed distributions
(a ``*.dist-info`` with an ``entry_points.txt``) on ``sys.path`` of a ``zoo`` subprocess. Plugins
that load but then misbehave are plugin objects registered on the plugin manager in-process.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zoo_core
from zoo_core import (
    ModelSpec,
    TaskSpec,
    TokenizerSpec,
    ZooError,
    create_model,
    hookimpl,
)
from zoo_core.artifact import run_info
from zoo_core.scaffold import check_plugins
from zoo_core.testing import run_checks


# -- installed distributions, run in a `zoo` subprocess --------------------------------------------
def install_fake(site: Path, name: str, code: str, dist: str | None = None) -> None:
    """Make ``site`` hold a distribution (zoo-NAME 1.0) whose entry point ``name`` runs ``code``."""
    dist = dist or f"zoo-{name}"
    module = dist.replace("-", "_")
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(textwrap.dedent(code))
    meta = site / f"{module}-1.0.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text(f"[zoo]\n{name} = {module}\n")


def zoo(site: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "PYTHONPATH"))}
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        env={**clean, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", **env},
        cwd=site,
        capture_output=True,
        text=True,
        timeout=120,
    )


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


BROKEN_IMPORT = "import zoo_core\nimport a_module_nobody_has  # noqa\n"

DUPLICATE = """
from zoo_core import ModelSpec, hookimpl

@hookimpl
def register_models(register):
    register(ModelSpec("dup-model", "zoo_lstm.model:LSTMLanguageModel", ("lm",), "a copy"))
"""


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "site"
    path.mkdir()
    return path


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(site):
    install_fake(site, "broken", BROKEN_IMPORT)
    listed = zoo(site, "list")
    assert listed.returncode == 0
    assert "lstm" in listed.stdout.split()  # the rest of the zoo works
    (warning,) = lines(listed.stderr)  # one line, no traceback
    assert "plugin 'broken' (zoo-broken)" in warning
    assert "failed to import: ModuleNotFoundError" in warning and "a_module_nobody_has" in warning

    table = zoo(site, "plugins")
    assert "zoo-broken" in table.stdout and "failed to import" in table.stdout

    checked = zoo(site, "plugins", "check", "zoo-broken")
    assert checked.returncode == 1
    assert "broken (zoo-broken 1.0): FAIL" in checked.stdout
    assert "FAIL failed to import: ModuleNotFoundError" in checked.stdout


def test_strict_mode_turns_a_broken_plugin_into_an_error(site):
    install_fake(site, "broken", BROKEN_IMPORT)
    result = zoo(site, "list", ZOO_STRICT_PLUGINS="1")
    assert result.returncode != 0
    assert result.stdout == ""
    (error,) = lines(result.stderr)
    assert error.startswith("Error: plugin 'broken' (zoo-broken): failed to import")


def test_strict_mode_also_covers_a_plugin_that_raises_in_a_hook(site):
    install_fake(
        site,
        "raiser",
        "from zoo_core import hookimpl\n\n@hookimpl\n"
        "def register_models(register):\n    raise RuntimeError('no models today')\n",
    )
    assert zoo(site, "list").returncode == 0
    result = zoo(site, "list", ZOO_STRICT_PLUGINS="1")
    assert result.returncode == 1
    (error,) = lines(result.stderr)
    assert "plugin 'raiser'" in error and "RuntimeError: no models today" in error


def test_the_allow_list_loads_only_the_named_plugins(site, tiny_run):
    install_fake(site, "broken", BROKEN_IMPORT)
    builtins_only = zoo(site, "list", ZOO_LOAD_PLUGINS="")
    assert builtins_only.returncode == 0 and builtins_only.stderr == ""
    assert "lstm" not in builtins_only.stdout.split()
    assert "No models: ZOO_LOAD_PLUGINS loads no plugin" in builtins_only.stdout
    # What the allow-list leaves out is named as such, not as missing.
    checked = zoo(site, "plugins", "check", "lstm", ZOO_LOAD_PLUGINS="")
    assert (
        "plugin 'lstm' is not loaded" in checked.stderr and "ZOO_LOAD_PLUGINS=''" in checked.stderr
    )
    evaluated = zoo(site, "eval", str(tiny_run), ZOO_LOAD_PLUGINS="broken")
    assert evaluated.returncode == 1
    assert "model 'lstm' of zoo-lstm (installed: lstm; but ZOO_LOAD_PLUGINS" in evaluated.stderr

    only_lstm = zoo(site, "list", ZOO_LOAD_PLUGINS="lstm")
    assert "lstm" in only_lstm.stdout.split()
    assert only_lstm.stderr == ""  # the broken plugin is not even imported

    # `zoo plugins` says which installed plugins the allow-list left out.
    table = zoo(site, "plugins", ZOO_LOAD_PLUGINS="lstm")
    assert "zoo-broken" in table.stdout and "not loaded (ZOO_LOAD_PLUGINS)" in table.stdout


def test_two_plugins_registering_one_name_is_an_error_naming_both(site):
    install_fake(site, "first", DUPLICATE)
    install_fake(site, "second", DUPLICATE)
    listed = zoo(site, "list")
    assert listed.returncode == 0 and "lstm" in listed.stdout.split()
    assert "dup-model" not in listed.stdout  # neither copy can be used
    (warning,) = lines(listed.stderr)
    assert "'second' (zoo-second)" in warning and "'first' (zoo-first)" in warning
    assert "dup-model" in warning

    used = zoo(site, "info", "dup-model")
    assert used.returncode == 1
    warning_again, error = lines(used.stderr)  # every run warns; then the error, one line
    assert warning_again == warning
    assert "plugin 'first'" in error and "plugin 'second'" in error and "uninstall one" in error


def test_a_spec_pointing_at_a_missing_module_fails_when_used_and_in_check(site):
    install_fake(
        site,
        "ghost",
        """
        from zoo_core import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("ghost", "zoo_ghost_code:Model", ("lm",), "code that is not there"))
    """,
    )
    listed = zoo(site, "list")
    assert "ghost" in listed.stdout.split() and listed.stderr == ""  # specs are light data

    trained = zoo(site, "train", "ghost", "--steps", "1", "--quiet")
    assert trained.returncode == 1
    (error,) = lines(trained.stderr)
    assert "model 'ghost' of plugin 'ghost'" in error and "'zoo_ghost_code'" in error
    assert not (site / "runs").exists()  # nothing half-written

    checked = zoo(site, "plugins", "check", "ghost")
    assert checked.returncode == 1
    assert "FAIL ghost" in checked.stdout and "import: ZooError" in checked.stdout


def test_a_plugin_with_a_hook_of_wrong_arguments_is_reported_not_fatal(site):
    # pluggy refuses the registration of such a plugin; the zoo reports it like an import failure.
    install_fake(
        site,
        "wrongargs",
        "from zoo_core import hookimpl\n\n@hookimpl\ndef register_models(reg):\n    pass\n",
    )
    listed = zoo(site, "list")
    assert listed.returncode == 0 and "lstm" in listed.stdout.split()
    (warning,) = lines(listed.stderr)
    assert "plugin 'wrongargs'" in warning
    assert "{'reg'} are declared in the hookimpl" in warning  # pluggy's reason, on one line


COMMANDS = """
import click
from zoo_core import ModelSpec, hookimpl

@hookimpl
def register_commands(cli):
    @cli.command("list")
    def hijack():
        click.echo("hijacked")

    @cli.command("hello")
    def hello():
        click.echo("hello from a plugin")
"""


def test_a_plugin_command_does_not_replace_a_command_the_zoo_has(site):
    install_fake(site, "cmds", COMMANDS)
    listed = zoo(site, "list")
    assert listed.returncode == 0 and "lstm" in listed.stdout.split()
    assert "hijacked" not in listed.stdout
    (warning,) = lines(listed.stderr)
    assert "plugin 'cmds'" in warning and "command 'list', which the zoo already has" in warning
    assert zoo(site, "hello").stdout == "hello from a plugin\n"  # its other commands are added
    table = zoo(site, "plugins").stdout
    assert "commands: hello" in table and "commands: hello, list" not in table


def test_a_plugin_that_fails_in_one_hook_adds_nothing_through_the_others(site):
    install_fake(
        site,
        "halfway",
        """
        import click
        from zoo_core import ModelSpec, hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("half")
            def half():
                click.echo("still here")
            raise RuntimeError("commands broke")

        @hookimpl
        def register_models(register):
            register(ModelSpec("half-model", "zoo_lstm.model:LSTMLanguageModel", ("lm",), "x"))
        """,
    )
    install_fake(
        site,
        "nomodels",
        """
        import click
        from zoo_core import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command("orphan")
            def orphan():
                click.echo("still here")

        @hookimpl
        def register_models(register):
            raise RuntimeError("models broke")
        """,
    )
    listed = zoo(site, "list")
    assert listed.returncode == 0 and "lstm" in listed.stdout.split()
    assert "half-model" not in listed.stdout
    warnings = lines(listed.stderr)
    assert len(warnings) == 2 and all(
        w.endswith("(ZOO_STRICT_PLUGINS=1 makes this an error)") for w in warnings
    )
    for command in ("half", "orphan"):
        used = zoo(site, command)
        assert used.returncode != 0 and "still here" not in used.stdout
        assert f"No such command '{command}'" in used.stderr


def test_two_distributions_with_one_entry_point_name_are_reported(site):
    install_fake(site, "probe", DUPLICATE, dist="zoo-probe")
    install_fake(site, "probe", "raise RuntimeError('never imported')\n", dist="zoo-twin")
    listed = zoo(site, "list")
    assert listed.returncode == 0 and "dup-model" in listed.stdout.split()  # zoo-probe's
    (warning,) = lines(listed.stderr)
    assert (
        "plugin 'probe' (zoo-twin)" in warning
        and "entry-point name 'probe' of zoo-probe" in warning
    )
    table = zoo(site, "plugins").stdout
    assert "zoo-probe" in table and "zoo-twin" in table  # both shown, one of them failed
    strict = zoo(site, "list", ZOO_STRICT_PLUGINS="1")
    assert strict.returncode == 1 and "zoo-twin" in strict.stderr


def test_a_plugin_that_calls_sys_exit_as_it_is_imported_is_skipped(site):
    install_fake(site, "quits", "import sys\nsys.exit('needs a library that is missing')\n")
    listed = zoo(site, "list")
    assert listed.returncode == 0 and "lstm" in listed.stdout.split()
    (warning,) = lines(listed.stderr)
    assert "plugin 'quits'" in warning and "SystemExit: needs a library" in warning


def test_strict_mode_is_an_error_on_every_use_from_python(site):
    install_fake(site, "broken", BROKEN_IMPORT)
    code = (
        "import zoo_core\n"
        "for attempt in range(2):\n"
        "    try:\n"
        "        zoo_core.list_models()\n"
        "        print('listed')\n"
        "    except zoo_core.ZooError as exc:\n"
        "        print('error', exc)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "PYTHONPATH"))}
    for value, expected in (("1", "error plugin 'broken'"), ("off", "listed")):
        result = subprocess.run(
            [sys.executable, "-c", code],
            env={**clean, "PYTHONPATH": str(site), "ZOO_STRICT_PLUGINS": value},
            capture_output=True,
            text=True,
            timeout=60,
        )
        printed = result.stdout.splitlines()
        assert len(printed) == 2 and all(line.startswith(expected) for line in printed), printed


def test_lazy_import_listing_models_imports_no_torch(site):
    install_fake(
        site,
        "ghost",
        """
        from zoo_core import ModelSpec, hookimpl

        @hookimpl
        def register_models(register):
            register(ModelSpec("ghost", "zoo_ghost_code:Model", ("lm",), "never imported"))
    """,
    )
    code = (
        "import sys, zoo_core\n"
        "names = [s.name for s in zoo_core.list_models()]\n"
        "assert 'lstm' in names and 'ghost' in names, names\n"
        "print('torch' in sys.modules, 'zoo_lstm.model' in sys.modules)\n"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "PYTHONPATH"))}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "False"]


def test_an_unknown_model_name_suggests_the_closest(site):
    result = zoo(site, "train", "lstn")
    assert result.returncode == 1
    (error,) = lines(result.stderr)
    assert "unknown model 'lstn'" in error and "Did you mean: lstm" in error


# -- plugin objects registered in-process ----------------------------------------------------------
MODELS = '''
from dataclasses import dataclass

from torch import nn


@dataclass
class Config:
    vocab_size: int = 32
    width: int = 8


class WrongShapes(nn.Module):
    """Its head does not fit its embedding: forward fails."""

    config_class = Config

    def __init__(self, config):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.width)
        self.head = nn.Linear(config.width + 1, config.vocab_size)

    def forward(self, idx):
        return self.head(self.embed(idx))


class PlainConfig(nn.Module):
    """A model whose config_class is a plain class, not a dataclass."""

    class config_class:
        width = 8


class Fine(WrongShapes):
    def __init__(self, config):
        super().__init__(config)
        self.head = nn.Linear(config.width, config.vocab_size)


class Flat(Fine):
    """Returns logits (B*T, V), which a loss over flattened logits would not notice."""

    def forward(self, idx):
        return super().forward(idx).flatten(0, 1)


class ShortReach(Fine):
    max_context = 8  # reads no more than 8 tokens


@dataclass
class RequiredConfig:
    vocab_size: int  # no default: the task sets it, but `zoo info NAME` cannot build one


class NeedsVocab(Fine):
    config_class = RequiredConfig
'''


@pytest.fixture
def model_module(tmp_path, monkeypatch):
    (tmp_path / "zoo_misbehaving_models.py").write_text(MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "zoo_misbehaving_models"


def test_a_plugin_that_raises_in_a_hook_is_skipped_whole(register_plugin, capsys):
    class Raises:
        @hookimpl
        def register_tokenizers(self, register):
            register(TokenizerSpec("half-tok", "zoo_core.tokenizers.simple:CharTokenizer", "x"))

        @hookimpl
        def register_models(self, register):
            raise RuntimeError("cannot count")

    catalog = register_plugin(Raises(), "raises-in-hook")
    (warning,) = lines(capsys.readouterr().err)
    assert "plugin 'raises-in-hook'" in warning
    assert "raised in register_models: RuntimeError: cannot count" in warning
    assert "half-tok" not in catalog.tokenizers  # nothing of a plugin that raised is half-used
    assert "lstm" in catalog.models and "char" in catalog.tokenizers

    (report,) = check_plugins("raises-in-hook")
    assert not report.ok and "RuntimeError: cannot count" in report.errors[0]


def test_registering_a_taken_name_makes_both_unusable_and_names_both(register_plugin, capsys):
    class Copycat:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("lstm", "zoo_lstm.model:LSTMLanguageModel", ("lm",), "mine now"))

    catalog = register_plugin(Copycat(), "copycat")
    assert "plugin 'copycat'" in capsys.readouterr().err
    with pytest.raises(ZooError, match="both plugin 'lstm' and plugin 'copycat'"):
        catalog.get("model", "lstm")
    assert "lstm-large" in catalog.models  # the rest of the lstm plugin still works
    assert not check_plugins("copycat")[0].ok


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"tasks": None}, "tasks must be a tuple of one or more task names"),
        ({"tasks": ()}, "tasks must be a tuple of one or more task names"),
        ({"name": "My Model"}, "a name is letters, digits"),
        ({"name": "org/model"}, "a name is letters, digits"),
        ({"defaults": None}, "defaults must be a dict"),
        ({"pretrained": ["org/weights"]}, "pretrained must be a dict"),
        ({"pretrained": {"base": "org/weights"}}, "pretrained['base'] must be a PretrainedWeights"),
        ({"model": None}, "model must be a 'module:attr' string"),
        ({"width": 256}, "width must be the name of a config field"),
        ({"width": "hidden_size", "width_multiple_of": (0,)}, "width_multiple_of must be"),
        ({"width": "hidden_size", "tied_widths": "embed_dim"}, "tied_widths must be a tuple"),
        ({"tied_widths": ("embed_dim",)}, "width_multiple_of and tied_widths need a width"),
    ],
)
def test_a_spec_with_fields_of_the_wrong_kind_is_refused_at_registration(
    register_plugin, capsys, fields, message
):
    spec = {"name": "odd", "model": "zoo_lstm.model:LSTMLanguageModel", "tasks": ("lm",)}
    spec.update(fields)

    class Odd:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec(spec.pop("name"), spec.pop("model"), summary="x", **spec))

    catalog = register_plugin(Odd(), "odd-fields")
    (warning,) = lines(capsys.readouterr().err)
    assert "plugin 'odd-fields'" in warning and message in warning
    assert "odd" not in catalog.models and "lstm" in catalog.models
    assert [s.name for s in zoo_core.list_models("lstm")] == ["lstm"]  # listing still works


def test_a_name_registered_twice_by_one_plugin_says_so(register_plugin, capsys):
    class Twice:
        @hookimpl
        def register_models(self, register):
            for _ in range(2):
                register(ModelSpec("twice", "zoo_lstm.model:LSTMLanguageModel", ("lm",), "x"))

    catalog = register_plugin(Twice(), "twice")
    (warning,) = lines(capsys.readouterr().err)
    assert "registers model 'twice' twice" in warning and "twice" not in catalog.models


def test_a_plugin_cannot_take_a_name_built_into_the_zoo(register_plugin, capsys):
    class Usurper:
        @hookimpl
        def register_tasks(self, register):
            register(TaskSpec("lm", "zoo_core.tasks.lm:LanguageModeling", "mine now"))

        @hookimpl
        def register_tokenizers(self, register):
            register(TokenizerSpec("own-tok", "zoo_core.tokenizers.simple:CharTokenizer", "x"))

    catalog = register_plugin(Usurper(), "usurper")
    (warning,) = lines(capsys.readouterr().err)
    assert "registers task 'lm', which is built into the zoo; the zoo's is used" in warning
    assert catalog.get("task", "lm").plugin == "builtin-tasks"  # every LM keeps working
    assert "own-tok" in catalog.tokenizers  # the rest of the plugin is used


def test_a_third_plugin_on_a_taken_name_is_reported_too(register_plugin, capsys):
    def copycat(n):
        class Copycat:
            @hookimpl
            def register_models(self, register):
                register(ModelSpec("lstm", "zoo_lstm.model:LSTMLanguageModel", ("lm",), f"{n}"))

        return Copycat()

    register_plugin(copycat(1), "copycat-one")
    capsys.readouterr()
    register_plugin(copycat(2), "copycat-two")
    warnings = lines(capsys.readouterr().err)
    assert any("'copycat-two'" in w and "'lstm' and 'copycat-one'" in w for w in warnings)


def test_a_missing_attribute_fails_when_used_and_in_check(register_plugin):
    class Typo:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("typo", "zoo_core.tasks.lm:LanguageModle", ("lm",), "a typo"))

    register_plugin(Typo(), "typo-plugin")
    with pytest.raises(ZooError, match="has no attribute 'LanguageModle'"):
        create_model("typo")
    (report,) = check_plugins("typo-plugin")
    spec, imported = report.models["typo"]  # the checks stop at the import
    assert spec.ok and not imported.ok
    assert imported.check == "import" and "LanguageModle" in imported.message


def test_model_code_that_fails_as_it_is_imported_is_a_one_line_error(
    register_plugin, tmp_path, monkeypatch
):
    (tmp_path / "zoo_fails_at_import.py").write_text("raise RuntimeError('needs a driver')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    class FailsAtImport:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("fragile", "zoo_fails_at_import:Model", ("lm",), "x"))

    register_plugin(FailsAtImport(), "fragile-plugin")
    with pytest.raises(ZooError, match="cannot be imported: RuntimeError: needs a driver"):
        create_model("fragile")
    (report,) = check_plugins("fragile-plugin")
    assert [r.check for r in report.models["fragile"] if not r.ok] == ["import"]


def test_a_model_that_does_not_match_its_config_fails_the_checks(register_plugin, model_module):
    class Mismatched:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("bad-forward", f"{model_module}:WrongShapes", ("lm",), "x"))
            register(
                ModelSpec(
                    "bad-defaults", f"{model_module}:Fine", ("lm",), "x", defaults={"depth": 3}
                )
            )
            register(ModelSpec("good", f"{model_module}:Fine", ("lm",), "x"))
            register(ModelSpec("flat", f"{model_module}:Flat", ("lm",), "x"))
            fine = f"{model_module}:Fine"
            register(ModelSpec("typo", fine, ("lm",), "x", train_defaults={"stpes": 5}))
            register(ModelSpec("wide", fine, ("lm",), "x", defaults={"width": "wide"}))
            register(ModelSpec("needs-vocab", f"{model_module}:NeedsVocab", ("lm",), "x"))

    register_plugin(Mismatched(), "mismatched")
    (report,) = check_plugins("mismatched")
    failed = {m: {r.check for r in rs if not r.ok} for m, rs in report.models.items()}
    assert failed == {
        "bad-forward": {"lm: forward/backward", "lm: save/load"},
        "bad-defaults": {"metadata"},
        "good": set(),
        "flat": {"lm: forward/backward"},
        "typo": {"metadata"},
        "wide": {"metadata"},
        "needs-vocab": {"metadata"},
    }
    for model, says in (
        ("typo", "neither the Trainer nor its tasks have: ['stpes']"),
        ("wide", "width must be an integer, not 'wide'"),
        ("needs-vocab", "config fields without a default: ['vocab_size']"),
    ):
        (message,) = [r.message for r in report.models[model] if not r.ok]
        assert says in message, message
    (flat,) = [r.message for r in report.models["flat"] if not r.ok]
    assert "returns (batch, length, vocab_size)" in flat
    assert not report.ok
    messages = [r.message for r in report.models["bad-forward"] if not r.ok]
    assert all("RuntimeError" in m for m in messages)
    with pytest.raises(ZooError, match="has no field 'depth'"):
        create_model("bad-defaults")
    assert all(r.ok for r in run_checks("lstm"))  # other plugins' models are unaffected


def test_check_reports_a_plugin_that_registers_nothing(register_plugin):
    class Undecorated:
        def register_models(self, register):  # no @hookimpl: pluggy never calls it
            register(ModelSpec("never", "zoo_lstm.model:LSTMLanguageModel", ("lm",), "x"))

    register_plugin(Undecorated(), "undecorated")
    (report,) = check_plugins("undecorated")
    assert not report.ok and "registers nothing" in report.errors[0]
    assert all(r.ok for r in check_plugins("lstm"))  # one that does is fine


def test_a_hook_with_a_misspelt_name_is_reported_by_check(register_plugin):
    class Misspelt:
        @hookimpl
        def register_model(self, register):  # not a hook: pluggy would ignore it silently
            register(ModelSpec("never", "x:y", ("lm",), "x"))

    register_plugin(Misspelt(), "misspelt")
    (report,) = check_plugins("misspelt")
    assert not report.ok
    assert "implements 'register_model', which is not a zoo hook" in report.errors[0]


def test_code_of_the_wrong_kind_is_a_one_line_error(register_plugin, model_module):
    class WrongKinds:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("not-a-module", "zoo_core.registry:ModelSpec", ("lm",), "x"))
            register(ModelSpec("no-dataclass", f"{model_module}:PlainConfig", ("lm",), "x"))

        @hookimpl
        def register_tasks(self, register):
            register(TaskSpec("not-a-task", "zoo_core.registry:TaskSpec", "x"))

        @hookimpl
        def register_tokenizers(self, register):
            register(TokenizerSpec("not-a-tok", "zoo_core.registry:TokenizerSpec", "x"))

    register_plugin(WrongKinds(), "wrong-kinds")
    with pytest.raises(ZooError, match="not a subclass of torch.nn.modules.module.Module"):
        create_model("not-a-module")
    with pytest.raises(ZooError, match="PlainConfig.config_class is not a dataclass"):
        create_model("no-dataclass")
    from zoo_core.tasks.base import task_class
    from zoo_core.tokenizers.base import tokenizer_class

    with pytest.raises(ZooError, match="not a subclass of zoo_core.tasks.base.Task"):
        task_class("not-a-task")
    with pytest.raises(ZooError, match="not a subclass of zoo_core.tokenizers.base.Tokenizer"):
        tokenizer_class("not-a-tok")


def test_a_tokenizer_is_saved_under_the_name_it_is_registered_by(register_plugin, tmp_path):
    class Renamed:  # the class's own name is "char"; the zoo knows it as "renamed-tok"
        @hookimpl
        def register_tokenizers(self, register):
            register(TokenizerSpec("renamed-tok", "zoo_core.tokenizers.simple:CharTokenizer", "x"))

    register_plugin(Renamed(), "renamed")
    out = tmp_path / "run"
    zoo_core.train(
        "lstm",
        steps=2,
        out=out,
        tokenizer="renamed-tok",
        hidden_size=16,
        embed_dim=16,
        progress=False,
    )
    assert json.loads((out / "config.json").read_text())["tokenizer"] == "renamed-tok"
    artifact = zoo_core.load(out)
    assert artifact.tokenizer.name == "renamed-tok"
    assert json.loads((out / "tokenizer.json").read_text())["type"] == "renamed-tok"


def test_a_run_saved_by_another_version_of_its_plugin_says_which(tiny_run, tmp_path):
    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    assert config["distribution"] == "zoo-lstm" and config["plugin_version"]
    config["model_config"]["old_field"] = 1  # a field this version of the plugin dropped
    config["plugin_version"] = "0.0.1"
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ZooError) as caught:
        zoo_core.load(run)
    message = str(caught.value)
    assert "'old_field'" in message and "pip install zoo-lstm==0.0.1" in message
    info = run_info(str(run))  # everything but the parameter count still shows
    assert info["model"] == "lstm" and info["parameters"] is None

    config["model_config"].pop("old_field")
    config["model_config"]["hidden_size"] = "wide"  # a value the config's checks refuse
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ZooError, match="zoo-lstm==0.0.1"):
        zoo_core.load(run)


def test_training_longer_than_a_models_max_context_is_one_line(
    register_plugin, model_module, tmp_path
):
    class Short:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("short-reach", f"{model_module}:ShortReach", ("lm",), "x"))

    register_plugin(Short(), "short")
    with pytest.raises(ZooError, match="reads at most 8 tokens and was given 16; set a smaller"):
        zoo_core.train("short-reach", steps=1, seq_len=16, out=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()  # nothing left behind


def test_a_run_whose_tokenizer_plugin_is_gone_names_what_to_install(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    config = json.loads((run / "config.json").read_text())
    assert config["task_distribution"] == config["tokenizer_distribution"] == "zoo-core"
    config["tokenizer"], config["tokenizer_distribution"] = "words", "zoo-words"
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(ZooError, match=r"needs tokenizer 'words'.*install zoo-words"):
        zoo_core.load(run)
