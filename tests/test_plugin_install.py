"""A third-party plugin's life, end to end, in a fresh virtual environment.

`zoo plugins new` writes it, pip builds its wheel, `zoo plugins install` installs it, and the zoo
then lists it, trains it and checks it; its own tests pass; `zoo plugins uninstall` removes it.
The fresh environment sees this one's packages (torch...) through a .pth file, so nothing big is
installed again, but not this one's zoo distributions: zoo-core is installed into it from the
repository, as a user would install it.
"""

import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAME = "demo-gru"


def _run(cmd, env, cwd, timeout=120):
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, (
        f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    )
    return result


def _visible_packages(tmp: Path) -> Path:
    """This environment's site-packages minus its zoo distributions, as a folder of links."""
    view = tmp / "deps"
    view.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        lowered = entry.name.lower()
        if lowered.startswith(("zoo", "__editable__")) or lowered.endswith(".pth"):
            continue
        (view / entry.name).symlink_to(entry)
    return view


def _fresh_venv(tmp: Path) -> Path:
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (purelib,) = (venv / "lib").glob("python*/site-packages")
    (purelib / "_zoo_test_deps.pth").write_text(f"{_visible_packages(tmp)}\n")
    return venv


@pytest.mark.slow
def test_scaffold_build_install_train_check_uninstall(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "PYTHON", "PIP_"))}
    env.update(OMP_NUM_THREADS="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1")
    # Every command runs in the temporary folder: nothing lands in the repository.
    run = functools.partial(_run, env=env, cwd=tmp_path)
    venv = _fresh_venv(tmp_path)
    python, zoo = venv / "bin" / "python", venv / "bin" / "zoo"
    wheels = tmp_path / "wheels"

    # zoo-core from a copy of the repository (a build writes into its source folder).
    src = tmp_path / "zoo-core"
    src.mkdir()
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copy(ROOT / "README.md", src)
    shutil.copytree(
        ROOT / "zoo_core", src / "zoo_core", ignore=shutil.ignore_patterns("__pycache__")
    )
    pip_wheel = ["-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)]
    run([str(python), *pip_wheel, str(src)])
    (core_wheel,) = wheels.glob("zoo_core-*.whl")
    run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(core_wheel)])
    assert NAME not in run([str(zoo), "list"]).stdout

    # The installed zoo writes the plugin (its templates are package data), pip builds its wheel.
    plugin = tmp_path / f"zoo-{NAME}"
    run([str(zoo), "plugins", "new", NAME, "--dir", str(plugin)])
    run([str(python), *pip_wheel, str(plugin)])
    (plugin_wheel,) = wheels.glob("zoo_demo_gru-*.whl")

    installed = run([str(zoo), "plugins", "install", str(plugin_wheel)])
    assert f"plugin '{NAME}' (zoo-{NAME} 0.1.0) installed" in installed.stdout
    listed = run([str(zoo), "list"])
    assert NAME in listed.stdout.split() and f"{NAME}-large" in listed.stdout.split()
    assert listed.stderr == ""  # no plugin failed to load
    plugins_table = run([str(zoo), "plugins"]).stdout
    assert f"zoo-{NAME}" in plugins_table and f"models: {NAME}, {NAME}-large" in plugins_table

    out = tmp_path / "run"
    run([str(zoo), "train", NAME, "--steps", "3", "--out", str(out), "--quiet"])
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()

    checked = run([str(zoo), "plugins", "check", NAME])
    assert f"pass {NAME} (" in checked.stdout and f"pass {NAME}-large (" in checked.stdout

    # The plugin's own tests, run against the installed plugin (not its source folder).
    run(
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin / "tests")],
        timeout=300,
    )

    removed = run([str(zoo), "plugins", "uninstall", f"zoo-{NAME}"])
    assert f"plugin '{NAME}' (zoo-{NAME} 0.1.0) uninstalled" in removed.stdout
    assert NAME not in run([str(zoo), "list"]).stdout

    # Editable, as in CONTRIBUTING.md: pip's options pass through `zoo plugins install`.
    run([str(zoo), "plugins", "install", "--no-build-isolation", "-e", str(plugin)])
    assert NAME in run([str(zoo), "list", f"{NAME}*"]).stdout.split()
    run([str(zoo), "plugins", "uninstall", f"zoo-{NAME}"])
    assert NAME not in run([str(zoo), "list"]).stdout
