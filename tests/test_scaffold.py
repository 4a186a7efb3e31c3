"""`zoo plugins new` writes a plugin that works; bad names and occupied folders are refused;
`zoo plugins install/uninstall` run the zoo's own pip and pass its failures on."""

import importlib
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from zoo_core import ModelSpec, ZooError, create_model, hookimpl, plugins
from zoo_core.scaffold import check_plugins, new_plugin, package_name


def zoo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    return subprocess.run(
        [sys.executable, "-m", "zoo_core", *args],
        env={**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", ["Gru", "my_gru", "2gru", "gru-", "-gru", "my--gru", "", "a" * 41])
def test_a_bad_name_is_refused(tmp_path, name):
    with pytest.raises(ZooError, match="cannot name a plugin"):
        new_plugin(name, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_names_that_are_taken_are_refused(tmp_path):
    with pytest.raises(ZooError, match="reserved"):
        new_plugin("core", tmp_path / "a")
    with pytest.raises(ZooError, match="zoo-lstm is already installed"):
        new_plugin("lstm", tmp_path / "b")
    assert list(tmp_path.iterdir()) == []


def test_a_name_another_distributions_plugin_has_is_refused(tmp_path, monkeypatch):
    site = tmp_path / "site"
    meta = site / "zoo_other-1.0.dist-info"
    meta.mkdir(parents=True)
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: zoo-other\nVersion: 1.0\n")
    (meta / "entry_points.txt").write_text("[zoo]\nprobe = zoo_other\n")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ZooError, match="'probe' is already taken by zoo-other 1.0"):
        new_plugin("probe", tmp_path / "zoo-probe")
    assert not (tmp_path / "zoo-probe").exists()


def test_a_name_whose_models_another_plugin_registers_is_refused(tmp_path):
    class Taken:
        @hookimpl
        def register_models(self, register):
            register(ModelSpec("taken-large", "x:y", ("lm",), "the variant's name is taken"))

    plugins.load_plugins()
    plugins.pm.register(Taken(), name="taken-names")
    plugins.reset_catalog()
    try:
        with pytest.raises(ZooError, match="'taken-large' is already registered by plugin 'taken"):
            new_plugin("taken", tmp_path / "zoo-taken")
    finally:
        plugins.pm.unregister(name="taken-names")
        plugins.reset_catalog()
    assert list(tmp_path.iterdir()) == []


def test_an_occupied_folder_is_refused_and_left_alone(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = zoo("plugins", "new", "gru-demo", "--dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: '{tmp_path}' already exists and is not empty; choose another --dir"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_package_names():
    assert package_name("tiny-mlp2") == "zoo_tiny_mlp2"


@pytest.fixture
def written(tmp_path, monkeypatch):
    """A new plugin written into an empty folder, its package importable."""
    (tmp_path / "zoo-my-gru").mkdir()  # an empty folder is fine
    result = zoo("plugins", "new", "my-gru", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    root = tmp_path / "zoo-my-gru"
    monkeypatch.syspath_prepend(str(root))
    yield root
    for module in ("zoo_my_gru", "zoo_my_gru.model", "zoo_my_gru.study"):
        sys.modules.pop(module, None)


def test_the_plugin_has_its_files(written):
    files = sorted(str(p.relative_to(written)) for p in written.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "tests/test_zoo_my_gru.py",
        "zoo_my_gru/__init__.py",
        "zoo_my_gru/model.py",
        "zoo_my_gru/study.py",
    ]
    pyproject = (written / "pyproject.toml").read_text()
    assert 'name = "zoo-my-gru"' in pyproject
    assert '[project.entry-points.zoo]\nmy-gru = "zoo_my_gru"' in pyproject
    assert (
        "from zoo_core.testing import check_model, model_names"
        in (written / "tests" / "test_zoo_my_gru.py").read_text()
    )


def test_the_plugin_is_lint_clean(written):
    for cmd in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *cmd], cwd=written, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_plugins_hooks_import_no_torch(written):
    code = (
        "import sys, zoo_my_gru\n"
        "from zoo_core import plugins\n"
        "plugins.pm.register(zoo_my_gru, name='my-gru')\n"
        "print(sorted(plugins.get_catalog().plugins['my-gru'].models), 'torch' in sys.modules)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "PYTHONPATH": str(written), "ZOO_LOAD_PLUGINS": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['my-gru', 'my-gru-large'] False"


def test_the_plugins_models_pass_the_contract_checks(written):
    module = importlib.import_module("zoo_my_gru")
    plugins.load_plugins()
    plugins.pm.register(module, name="my-gru")
    plugins.reset_catalog()
    try:
        (report,) = check_plugins("my-gru")
        assert report.distribution == "(registered at run time)"
        assert sorted(report.models) == ["my-gru", "my-gru-large"]
        assert report.ok, report
        assert plugins.get_catalog().studies["my-gru-vs-lstm"].plugin == "my-gru"
        # The variant's defaults reach the model.
        large = create_model("my-gru-large", vocab_size=10)
        assert (large.config.hidden_size, large.config.num_layers) == (512, 2)
    finally:
        plugins.pm.unregister(name="my-gru")
        plugins.reset_catalog()


@pytest.mark.slow
def test_the_plugins_study_runs(written, tmp_path):
    from zoo_core.studies.base import run_study

    module = importlib.import_module("zoo_my_gru")
    plugins.load_plugins()
    plugins.pm.register(module, name="my-gru")
    plugins.reset_catalog()
    try:
        record = run_study("my-gru-vs-lstm", quick=True, out=tmp_path / "study")
    finally:
        plugins.pm.unregister(name="my-gru")
        plugins.reset_catalog()
    (table,) = [t for t in record["tables"] if t["key"] == "my-gru-vs-lstm/val-loss"]
    assert [row[0] for row in table["rows"]] == ["my-gru", "lstm"]
    assert all(" ± " in row[-1] for row in table["rows"])  # two seeds: mean ± 95% interval
    assert (tmp_path / "study" / "tables.md").is_file()


def test_pip_failures_pass_on_pips_exit_code(tmp_path):
    # An option pip does not know: pip exits with 2 (a usage error), and so does the zoo.
    result = zoo("plugins", "install", "--no-such-pip-option", "zoo-nothing", cwd=tmp_path)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: pip install failed with exit code 2")
    assert f"{sys.executable} -m pip install --no-such-pip-option zoo-nothing" in last


def test_install_needs_something_to_install(tmp_path):
    result = zoo("plugins", "install", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: name what to install")


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("zoo-core", "'zoo-core' is the zoo itself, not a plugin"),
        ("zoo_Core", "'zoo_Core' is the zoo itself"),
        ("builtin-tasks", "built into zoo-core"),
        ("numpy", "no installed plugin is named 'numpy'"),
        ("zoo-nothing", "no installed plugin is named 'zoo-nothing'"),
    ],
)
def test_uninstall_refuses_the_zoo_itself_and_what_is_no_plugin(tmp_path, name, fragment):
    result = zoo("plugins", "uninstall", name, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert fragment in result.stderr
    assert metadata.version("zoo-core") and metadata.version("numpy")  # both still installed


def test_uninstall_takes_a_plugin_name_for_its_distribution():
    from zoo_core.scaffold import uninstall_args

    assert uninstall_args(["lstm", "--verbose", "zoo_gan"]) == ["zoo-lstm", "--verbose", "zoo-gan"]
    with pytest.raises(ZooError, match="name the plugins to uninstall"):
        uninstall_args(["-y"])
    for args in (
        ["-r", "reqs.txt"],
        ["--requirement", "reqs.txt"],
        ["-rreqs.txt"],
        ["--requirement=reqs.txt"],
    ):
        with pytest.raises(ZooError, match="not a requirements file"):
            uninstall_args(args)
