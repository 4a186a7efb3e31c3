"""Uploads through the project's own Hub-compatible server, and downloads of what was pushed."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from zoo_testutil import BAD_REPO_IDS, REFUSED

from zoo_core import artifacts

ARTIFACTS = artifacts.ARTIFACT_FILES
GITATTRIBUTES = ".gitattributes"  # the Hub's first commit in every repo


@pytest.fixture
def client(hub_server, tmp_path, make_client):
    return make_client(hub_server.endpoint, tmp_path / "hf-home")


def tree(hub_server, repo: str, revision: str) -> list[str]:
    request = urllib.request.Request(
        f"{hub_server.endpoint}/api/models/{repo}/tree/{revision}?recursive=true",
        headers={"Authorization": f"Bearer {hub_server.token}"},
    )
    with urllib.request.urlopen(request) as response:
        return sorted(entry["path"] for entry in json.load(response))


def exists(hub_server, repo: str) -> bool:
    """Is there such a repo on the server (private ones too: the token reads them)?"""
    request = urllib.request.Request(
        f"{hub_server.endpoint}/api/models/{repo}",
        headers={"Authorization": f"Bearer {hub_server.token}"},
    )
    try:
        urllib.request.urlopen(request).close()
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return False
        raise
    return True


PUSH_FROM_PYTHON = """
import json, sys, torch, zoo_core
artifact = zoo_core.load(sys.argv[1])
first = artifact.push_to_hub("acme/from-python", message="from Python")
# A pulled artifact pushes as well: its folder is the Hugging Face cache's snapshot.
copy = zoo_core.load("hf:acme/from-python").push_to_hub("acme/from-python-copy")
with torch.no_grad():
    next(artifact.model.parameters()).add_(1.0)
try:
    artifact.push_to_hub("acme/from-python")
    refused = None
except zoo_core.ZooError as exc:
    refused = str(exc)
print(json.dumps({"first": sorted(first.files), "copy": sorted(copy.files), "refused": refused}))
"""


def test_an_artifact_pushes_itself_from_python(client, hub_server, hub_runs):
    run = hub_runs["a"]
    out = client.python(PUSH_FROM_PYTHON, run, HF_TOKEN=hub_server.token)
    assert out["first"] == out["copy"] == sorted(ARTIFACTS)
    for repo in ("acme/from-python", "acme/from-python-copy"):
        assert tree(hub_server, repo, "main") == sorted([GITATTRIBUTES, *ARTIFACTS])
    assert client.same_outputs(run, "hf:acme/from-python", "hf:acme/from-python-copy") == [
        True,
        True,
    ]
    # Weights changed in memory are not what the folder holds: no silent push of the old ones.
    assert "weights differ" in out["refused"]


def test_push_then_pull_gives_the_same_model_and_a_card(client, hub_server, hub_runs):
    from huggingface_hub import ModelCard

    run = hub_runs["a"]
    card_before = (run / artifacts.CARD_FILE).read_bytes()
    out = client.zoo("push", run, "acme/round-trip", HF_TOKEN=hub_server.token).stdout
    assert f"{hub_server.endpoint}/acme/round-trip (main)" in out
    assert tree(hub_server, "acme/round-trip", "main") == sorted([GITATTRIBUTES, *ARTIFACTS])
    assert (run / artifacts.CARD_FILE).read_bytes() == card_before  # the run folder is untouched

    path = Path(client.zoo("pull", "acme/round-trip").stdout.strip())  # public: no token needed
    for name in (artifacts.CONFIG_FILE, artifacts.WEIGHTS_FILE, artifacts.TOKENIZER_FILE):
        assert (path / name).read_bytes() == (run / name).read_bytes()
    assert client.same_outputs("hf:acme/round-trip", run) == [True]

    card = ModelCard.load(path / artifacts.CARD_FILE)
    config = json.loads((run / artifacts.CONFIG_FILE).read_text())
    assert card.data.library_name == "zoo"
    assert {"lstm", "lm"} <= set(card.data.tags)
    assert card.data.datasets == ["pydoc-topics"]
    assert card.data.model_name == "acme/round-trip"
    results = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert results == pytest.approx(config["metrics"]) and "val_loss" in results
    assert (
        "zoo pull acme/round-trip" in card.text
        and 'zoo_core.load("hf:acme/round-trip")' in card.text
    )
    assert "| step |" in card.text  # the training curve

    # `zoo info ORG/NAME` shows the pushed model as `zoo info RUN` shows the run.
    info = client.zoo("info", "acme/round-trip").stdout.splitlines()
    assert info[0] == "acme/round-trip: lstm (plugin lstm, zoo-lstm) for task lm"
    assert info[1] == f"  folder: {path}"
    assert info[1:] == [f"  folder: {path}", *client.zoo("info", run).stdout.splitlines()[1:]]


def test_push_to_a_private_branch_with_checkpoints(client, hub_server, hub_runs):
    run = hub_runs["b"]
    client.zoo(
        "push",
        run,
        "acme/private",
        "--private",
        "--revision",
        "dev",
        "--include-checkpoints",
        "--message",
        "dev weights",
        HF_TOKEN=hub_server.token,
    )
    files = tree(hub_server, "acme/private", "dev")
    checkpoints = sorted(
        p.relative_to(run).as_posix() for p in run.glob("checkpoints/**/*") if p.is_file()
    )
    assert checkpoints and files == sorted([GITATTRIBUTES, *ARTIFACTS, *checkpoints])

    error = client.error("pull", "acme/private@dev")  # private: anonymous users see nothing
    assert "was not found" in error and "HF_TOKEN" in error
    path = Path(client.zoo("pull", "acme/private@dev", HF_TOKEN=hub_server.token).stdout.strip())
    assert sorted(p.name for p in path.iterdir()) == sorted(artifacts.ARTIFACT_FILES)
    card = (path / artifacts.CARD_FILE).read_text()  # its commands load the branch, not main
    assert "zoo pull acme/private@dev\n" in card and '"hf:acme/private@dev"' in card
    assert "zoo pull acme/private\n" not in card and '"hf:acme/private"' not in card
    assert (path / artifacts.WEIGHTS_FILE).read_bytes() == (
        run / artifacts.WEIGHTS_FILE
    ).read_bytes()


def commit(out: str) -> str:
    return out.strip().splitlines()[-1].rsplit("/", 1)[1]


def test_a_push_sends_what_changed_and_removes_what_the_run_lacks(
    client, hub_server, hub_runs, tmp_path
):
    import zoo_core

    token = {"HF_TOKEN": hub_server.token}
    first = client.zoo("push", hub_runs["a"], "acme/sync", **token).stdout
    assert f"pushed {len(ARTIFACTS)} files to" in first

    # The same run again: nothing is sent and no commit is made.
    again = client.zoo("push", hub_runs["a"], "acme/sync", **token).stdout
    assert "nothing to push" in again and f"this run's {len(ARTIFACTS)} files" in again
    assert commit(again) == commit(first)

    # Another run of the same model: its files are sent, and the one they share is not.
    other = client.zoo("push", hub_runs["b"], "acme/sync", **token).stdout
    assert commit(other) != commit(first)
    shared = [
        name
        for name in ARTIFACTS
        if (hub_runs["a"] / name).is_file()
        and (hub_runs["a"] / name).read_bytes() == (hub_runs["b"] / name).read_bytes()
    ]
    assert shared == [artifacts.TOKENIZER_FILE]  # same data, same tokenizer
    assert f"pushed {len(ARTIFACTS) - 1} files to" in other and "; 1 unchanged" in other

    # A model with no tokenizer, with its checkpoints: the branch now holds that run alone,
    # and no file from the earlier run is left to be mistaken for part of it.
    points, _ = zoo_core.train(
        "gan-mlp", out=tmp_path / "points", steps=4, batch_size=8, device="cpu", progress=False
    )
    out = client.zoo("push", points.path, "acme/sync", "--include-checkpoints", **token).stdout
    assert "removed tokenizer.json, which this run does not have" in out
    files = tree(hub_server, "acme/sync", "main")
    assert artifacts.TOKENIZER_FILE not in files and GITATTRIBUTES in files
    assert "samples.png" in files  # the picture its card shows goes with it
    steps = sorted(p.name for p in (points.path / "checkpoints").iterdir())
    assert {p.split("/")[1] for p in files if p.startswith("checkpoints/")} == set(steps)
    path = Path(client.zoo("pull", "acme/sync").stdout.strip())
    assert sorted(p.name for p in path.iterdir()) == sorted(
        [*(name for name in ARTIFACTS if name != artifacts.TOKENIZER_FILE), "samples.png"]
    )  # the picture its card shows comes with it
    assert (path / "samples.png").read_bytes() == (points.path / "samples.png").read_bytes()
    assert (
        client.python(
            "import json, sys, zoo_core; print(json.dumps(zoo_core.load(sys.argv[1]).spec.name))",
            "hf:acme/sync",
        )
        == "gan-mlp"
    )

    # Back to the language model with checkpoints: the other model's checkpoints go with it.
    back = client.zoo("push", hub_runs["a"], "acme/sync", "--include-checkpoints", **token).stdout
    ours = sorted(
        p.relative_to(hub_runs["a"]).as_posix()
        for p in (hub_runs["a"] / "checkpoints").rglob("*")
        if p.is_file()
    )
    gone = sorted(set(steps) - {p.split("/")[1] for p in ours})
    plural = "s" if len(gone) > 1 else ""
    assert gone and f"removed samples.png and checkpoint{plural} {', '.join(gone)}," in back
    assert tree(hub_server, "acme/sync", "main") == sorted([GITATTRIBUTES, *ARTIFACTS, *ours])


def test_a_pushed_unfinished_run_shows_its_steps_and_no_resume_hint(
    client, hub_server, hub_runs, tmp_path
):
    # An unfinished run: weights of its last checkpoint, a log, no final metrics.
    run = tmp_path / "unfinished"
    run.mkdir()
    for name in (artifacts.WEIGHTS_FILE, artifacts.TOKENIZER_FILE, artifacts.METRICS_FILE):
        (run / name).write_bytes((hub_runs["a"] / name).read_bytes())
    config = json.loads((hub_runs["a"] / artifacts.CONFIG_FILE).read_text())
    del config["metrics"]
    config["train_config"]["steps"] = 1000
    (run / artifacts.CONFIG_FILE).write_text(json.dumps(config))
    logged = max(r["step"] for r in artifacts.read_metrics(run))
    error = client.error("push", run, "acme/unfinished", HF_TOKEN=hub_server.token)
    assert f"'{run}' is unfinished (trained {logged} of 1,000 steps" in error
    assert f"zoo train --resume {run}" in error and "--allow-unfinished" in error
    assert not exists(hub_server, "acme/unfinished")  # nothing was created
    client.zoo("push", run, "acme/unfinished", "--allow-unfinished", HF_TOKEN=hub_server.token)
    lines = client.zoo("info", "acme/unfinished").stdout.splitlines()
    trained = next(line for line in lines if line.startswith("  trained: "))
    # The steps its log reached; a Hub repo has no checkpoint to resume, so no --resume hint.
    assert trained.startswith(f"  trained: {logged:,} of 1,000 steps in ")
    assert trained.endswith(" s, unfinished")


def test_push_without_a_token_is_refused(client, hub_runs):
    error = client.error("push", hub_runs["a"], "acme/no-token")
    assert "(401)" in error and "hf auth login" in error and "HF_TOKEN" in error


def test_hub_errors_are_one_clear_line(client, hub_server, hub_runs):
    client.zoo("push", hub_runs["a"], "acme/errors", HF_TOKEN=hub_server.token)
    error = client.error("pull", "acme/errors@no-such-branch")
    assert "has no revision 'no-such-branch'" in error
    urllib.request.urlopen(
        urllib.request.Request(f"{hub_server.endpoint}/_test/gate/acme/errors", method="POST")
    ).close()
    error = client.error("pull", "acme/errors")
    assert "gated repo" in error and "request access" in error
    error = client.error("push", hub_runs["a"], "not a repo id")
    assert "ORG/NAME" in error
    error = client.error("pull", "acme/errors", HF_ENDPOINT="http://127.0.0.1:9")  # nothing listens
    assert "cannot be reached" in error and "http://127.0.0.1:9" in error


def test_a_run_being_trained_is_not_pushed(client, hub_server, hub_runs):
    run = hub_runs["a"]
    with artifacts.locked(run):  # as `zoo train` holds it
        error = client.error("push", run, "acme/training", HF_TOKEN=hub_server.token)
    assert error == f"Error: '{run}' is still training; push it when it has finished"
    assert not exists(hub_server, "acme/training")
    client.zoo("push", run, "acme/training", HF_TOKEN=hub_server.token)  # once it has finished
    assert exists(hub_server, "acme/training")


def test_a_run_that_does_not_load_is_not_pushed(client, hub_server, hub_runs, tmp_path):
    token = {"HF_TOKEN": hub_server.token}
    good = hub_runs["a"]
    client.zoo("push", good, "acme/guarded", **token)
    before = tree(hub_server, "acme/guarded", "main")

    def broken(name: str) -> Path:
        run = tmp_path / name
        shutil.copytree(good, run, ignore=shutil.ignore_patterns(artifacts.CHECKPOINTS_DIR))
        return run

    truncated = broken("truncated")
    weights = (good / artifacts.WEIGHTS_FILE).read_bytes()
    (truncated / artifacts.WEIGHTS_FILE).write_bytes(weights[: len(weights) // 2])
    other_shape = broken("other-shape")
    config = json.loads((good / artifacts.CONFIG_FILE).read_text())
    for key in ("hidden_size", "embed_dim"):  # a valid config, of a wider model
        config["model_config"][key] *= 2
    (other_shape / artifacts.CONFIG_FILE).write_text(json.dumps(config))
    no_tokenizer = broken("no-tokenizer")
    (no_tokenizer / artifacts.TOKENIZER_FILE).unlink()
    for run, reason in (
        (truncated, "not a readable safetensors file"),
        (other_shape, "do not fit the model"),
        (no_tokenizer, f"has no {artifacts.TOKENIZER_FILE}, which its config names"),
    ):
        error = client.error("push", run, "acme/guarded", **token)
        assert error.startswith(f"Error: cannot push '{run}': ") and reason in error
    # Nothing was sent: the repo still holds the good run, tokenizer.json included.
    assert tree(hub_server, "acme/guarded", "main") == before
    assert client.same_outputs("hf:acme/guarded", good) == [True]


def test_a_repo_of_another_library_is_not_replaced_without_force(client, hub_server, hub_runs):
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub_server.endpoint, token=hub_server.token)
    api.create_repo("acme/bert")
    transformers = json.dumps({"model_type": "bert", "architectures": ["BertModel"]}).encode()
    api.upload_file(path_or_fileobj=transformers, path_in_repo="config.json", repo_id="acme/bert")
    before = tree(hub_server, "acme/bert", "main")

    error = client.error("push", hub_runs["a"], "acme/bert", HF_TOKEN=hub_server.token)
    assert "holds another model" in error and "bert config of another library" in error
    assert "--force" in error
    assert tree(hub_server, "acme/bert", "main") == before
    client.zoo("push", hub_runs["a"], "acme/bert", "--force", HF_TOKEN=hub_server.token)
    assert client.same_outputs("hf:acme/bert", hub_runs["a"]) == [True]
    # Now a zoo model's repo: the next push needs no --force.
    client.zoo("push", hub_runs["b"], "acme/bert", HF_TOKEN=hub_server.token)


def test_push_names_a_repo_as_pull_does(client, hub_server, hub_runs):
    token = {"HF_TOKEN": hub_server.token}
    run = hub_runs["a"]
    out = client.zoo("push", run, "hf:acme/named@dev", **token).stdout
    assert f"{hub_server.endpoint}/acme/named (dev)" in out
    assert tree(hub_server, "acme/named", "dev") == sorted([GITATTRIBUTES, *ARTIFACTS])
    error = client.error("push", run, "acme/named@dev", "--revision", "main", **token)
    assert "names revision 'dev', but revision 'main' was also given" in error
    error = client.error("push", run / artifacts.CONFIG_FILE, "acme/named", **token)
    assert "is a file, not a run folder" in error and f"'{run}'" in error
    refused = REFUSED.format(module="artifact", function="push", before="sys.argv[1], ", first=2)
    errors = client.python(refused, run, *BAD_REPO_IDS, **token)
    for bad, error in zip(BAD_REPO_IDS, errors, strict=True):
        assert error is not None and f"'{bad}' is not a Hub repo id" in error, (bad, error)
    assert "'acme/a--b' is not a Hub repo id" in client.error("push", run, "acme/a--b", **token)
