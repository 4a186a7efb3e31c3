"""What `zoo push` publishes and how it fails: no private paths, no credentials, no files of a
killed run, no push over one that landed meanwhile."""

from __future__ import annotations

import json
import urllib.request

import pytest

from zoo_core import artifacts

# As small as the runs of conftest's hub_runs.
TINY = {"hidden_size": 16, "embed_dim": 16, "num_layers": 1, "seq_len": 16}


@pytest.fixture
def client(hub_server, tmp_path, make_client):
    return make_client(hub_server.endpoint, tmp_path / "hf-home")


def hub_file(hub_server, repo: str, name: str, revision: str = "main") -> bytes:
    request = urllib.request.Request(
        f"{hub_server.endpoint}/{repo}/resolve/{revision}/{name}",
        headers={"Authorization": f"Bearer {hub_server.token}"},
    )
    with urllib.request.urlopen(request) as response:
        return response.read()


def tree(hub_server, repo: str, revision: str = "main") -> list[str]:
    request = urllib.request.Request(
        f"{hub_server.endpoint}/api/models/{repo}/tree/{revision}?recursive=true",
        headers={"Authorization": f"Bearer {hub_server.token}"},
    )
    with urllib.request.urlopen(request) as response:
        return sorted(entry["path"] for entry in json.load(response))


@pytest.fixture(scope="module")
def private_run(tmp_path_factory):
    """A tiny run trained on text under a folder that names its user."""
    import zoo_core

    base = tmp_path_factory.mktemp("home") / "alice-smith" / "secret-project"
    base.mkdir(parents=True)
    text = "".join(f"line {i} of the private corpus\n" for i in range(400))
    (base / "corpus.txt").write_text(text)
    (base / "held-out.txt").write_text(text[:4000])
    artifact, _ = zoo_core.train(
        "lstm",
        data=base / "corpus.txt",
        val_data=base / "held-out.txt",
        out=base / "run",
        overrides=dict(TINY),
        steps=2,
        batch_size=4,
        device="cpu",
        progress=False,
    )
    return artifact.path


def test_a_push_publishes_no_private_paths(client, hub_server, private_run):
    local = (private_run / artifacts.CONFIG_FILE).read_text()
    assert "alice-smith" in local  # the run folder keeps where its data was

    out = client.zoo("push", private_run, "acme/private-paths", HF_TOKEN=hub_server.token).stdout
    assert "pushed" in out
    pushed = hub_file(hub_server, "acme/private-paths", artifacts.CONFIG_FILE).decode()
    card = hub_file(hub_server, "acme/private-paths", artifacts.CARD_FILE).decode()
    for text in (pushed, card):
        assert "alice-smith" not in text and "secret-project" not in text
    config = json.loads(pushed)
    assert (config["data"], config["val_data"]) == ("corpus.txt", "held-out.txt")
    assert config["task_state"]["data"] == "corpus.txt"
    assert config["data_fingerprints"] == {}
    assert (private_run / artifacts.CONFIG_FILE).read_text() == local  # untouched

    # The published model loads and gives the run's outputs; pushing again sends nothing.
    assert client.same_outputs("hf:acme/private-paths", private_run) == [True]
    again = client.zoo("push", private_run, "acme/private-paths", HF_TOKEN=hub_server.token)
    assert "nothing to push" in again.stdout
    info = client.zoo("info", "acme/private-paths").stdout
    assert "corpus.txt" in info and "alice-smith" not in info


def post(hub_server, path: str, payload: dict) -> None:
    request = urllib.request.Request(
        f"{hub_server.endpoint}{path}", data=json.dumps(payload).encode(), method="POST"
    )
    urllib.request.urlopen(request).close()


def test_a_push_that_another_overtook_fails_and_undoes_nothing(client, hub_server, hub_runs):
    token = {"HF_TOKEN": hub_server.token}
    client.zoo("push", hub_runs["a"], "acme/race", **token)
    # Someone else's commit lands after this push listed the branch and before it commits.
    race = {"branch": "main", "path": "notes.md", "content": "added meanwhile\n"}
    post(hub_server, "/_test/race/acme/race", race)
    error = client.error("push", hub_runs["b"], "acme/race", **token)
    assert "changed while this push was prepared" in error and "push again" in error
    assert "notes.md" in tree(hub_server, "acme/race")
    assert client.same_outputs("hf:acme/race", hub_runs["a"]) == [True]  # nothing of b landed

    client.zoo("push", hub_runs["b"], "acme/race", **token)  # again, on the new head
    assert hub_file(hub_server, "acme/race", "notes.md") == b"added meanwhile\n"
    assert client.same_outputs("hf:acme/race", hub_runs["b"]) == [True]


def test_files_a_killed_run_left_behind_are_not_pushed(client, hub_server, hub_runs, tmp_path):
    import shutil

    run = tmp_path / "killed"
    shutil.copytree(hub_runs["a"], run)
    checkpoints = run / artifacts.CHECKPOINTS_DIR
    (checkpoints / ".tmp-step-00000009").mkdir()
    (checkpoints / ".tmp-step-00000009" / "model.safetensors").write_bytes(b"half written")
    step = next(p for p in checkpoints.iterdir() if not p.name.startswith("."))
    (step / ".state.json.k3j2.tmp").write_text("{")
    client.zoo("push", run, "acme/killed", "--include-checkpoints", HF_TOKEN=hub_server.token)
    files = tree(hub_server, "acme/killed")
    assert any(p.startswith(f"checkpoints/{step.name}/") for p in files)
    assert [p for p in files if ".tmp" in p] == []


def test_a_picture_the_owner_added_is_not_deleted(client, hub_server, hub_runs):
    from huggingface_hub import HfApi

    token = {"HF_TOKEN": hub_server.token}
    client.zoo("push", hub_runs["a"], "acme/own-picture", **token)
    # confusion.png is a picture the image classifier draws, not the language model.
    api = HfApi(endpoint=hub_server.endpoint, token=hub_server.token)
    api.upload_file(
        path_or_fileobj=b"\x89PNG by hand", path_in_repo="confusion.png", repo_id="acme/own-picture"
    )
    out = client.zoo("push", hub_runs["b"], "acme/own-picture", **token).stdout
    assert "removed" not in out
    assert hub_file(hub_server, "acme/own-picture", "confusion.png") == b"\x89PNG by hand"
