"""A Hub repo is a stranger's data: the paths, names and advice in its config.json are never
used as such. Repos are published into the real mirror (olah on 127.0.0.1) this module serves."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from zoo_core import artifacts

SECRET = "a file of the user's that no repo may make the zoo read\n" * 40


@pytest.fixture(scope="module")
def secret(tmp_path_factory):
    path = tmp_path_factory.mktemp("home") / "secret.txt"
    path.write_text(SECRET)
    return path


def publish(mirror, run: Path, name: str, raw: str | None = None, **changes: object) -> str:
    """Commit ``run`` as repo acme/NAME of the mirror, ``changes`` made to sections of its
    config (or the config replaced by the text ``raw``); return the repo id."""
    repo = mirror.path / "models" / "acme" / name
    repo.mkdir(parents=True)
    for file in artifacts.ARTIFACT_FILES:
        if (run / file).is_file():
            shutil.copyfile(run / file, repo / file)
    config = json.loads((run / artifacts.CONFIG_FILE).read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    (repo / artifacts.CONFIG_FILE).write_text(json.dumps(config) if raw is None else raw)
    git = ["git", "-C", str(repo), "-c", "user.name=zoo", "-c", "user.email=zoo@example.org"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", name]):
        subprocess.run([*git, *args], check=True)
    return f"acme/{name}"


@pytest.fixture(scope="module")
def mirror(mirror, hub_runs, secret):
    """The shared mirror, with the repos of this module added before olah serves it."""
    a = hub_runs["a"]
    publish(mirror, a, "names-val-data", val_data=str(secret))
    publish(mirror, a, "names-data", data=str(secret))
    publish(mirror, a, "names-state-data", task_state={"data": str(secret)})
    publish(mirror, a, "names-state-val", task_state={"val_data": str(secret)})
    publish(mirror, a, "names-root", task_state={"data": "/"})
    text = (a / artifacts.CONFIG_FILE).read_text()
    publish(mirror, a, "huge-int", raw=text.replace("{", '{"n": ' + "1" * 5000 + ", ", 1))
    publish(
        mirror, a, "deep", raw=text.replace("{", '{"n": ' + "[" * 10**5 + "]" * 10**5 + ", ", 1)
    )
    return mirror


@pytest.fixture
def client(olah, tmp_path, make_client):
    return make_client(olah.endpoint, tmp_path / "hf-home")


# -- a repo names no local path ------------------------------------------------------------------
@pytest.mark.parametrize(
    "repo",
    [
        "acme/names-val-data",
        "acme/names-data",
        "acme/names-state-data",
        "acme/names-state-val",
        "acme/names-root",
    ],
)
def test_evaluating_a_repo_never_reads_a_path_its_config_names(client, repo, tmp_path):
    error = client.error("eval", f"hf:{repo}")
    assert "give the data to evaluate on with --data" in error, error
    # The same model, given data, evaluates.
    data = tmp_path / "mine.txt"
    data.write_text("Some text of the user's own to evaluate the model on. " * 40)
    out = client.zoo("eval", f"hf:{repo}", "--data", data, "--json").stdout
    assert json.loads(out)["val_loss"] > 0


def test_the_python_api_refuses_the_same_and_says_where_the_model_came_from(client):
    result = client.python(
        "import json, zoo_core\n"
        "from zoo_core.errors import ZooError\n"
        "artifact = zoo_core.load('hf:acme/names-state-val')\n"
        "try:\n"
        "    artifact.evaluate(batch_size=2)\n"
        "except ZooError as exc:\n"
        "    print(json.dumps([artifact.from_hub, artifact.task.val_source, str(exc)]))\n"
    )
    from_hub, val_source, error = result
    assert from_hub and val_source is None and "--data" in error


def test_a_repo_trained_on_the_embedded_default_evaluates_on_it(client, hub_runs):
    out = client.zoo("eval", "hf:acme/tiny", "--json").stdout
    here = client.zoo("eval", hub_runs["b"], "--json").stdout
    assert json.loads(out) == json.loads(here)


# -- parsers that throw ----------------------------------------------------------------------------
@pytest.mark.parametrize("repo", ["acme/huge-int", "acme/deep"])
def test_a_config_the_json_parser_refuses_is_one_line_on_pull(client, repo):
    error = client.error("pull", repo)
    assert "config.json" in error and "is not valid JSON" in error, error
