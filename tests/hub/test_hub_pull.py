"""Downloads from a real Hub mirror (olah, offline, over local git repos) on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from zoo_testutil import BAD_REPO_IDS, REFUSED

from zoo_core import artifacts


@pytest.fixture
def client(olah, tmp_path, make_client):
    return make_client(olah.endpoint, tmp_path / "hf-home")


def snapshot(client, repo: str) -> Path:
    return client.home / "hub" / f"models--{repo.replace('/', '--')}"


def test_pull_fetches_the_artifact_files_only(client, mirror):
    path = Path(client.zoo("pull", "acme/tiny").stdout.strip())
    assert path.is_relative_to(client.home)
    assert path.name == mirror.commits["tiny-2"]  # main is the latest commit
    assert sorted(p.name for p in path.iterdir()) == sorted(artifacts.ARTIFACT_FILES)


def test_loading_from_the_hub_gives_the_run_outputs(client, hub_runs):
    # The check can tell weights apart: run 'a' is the older commit.
    assert client.same_outputs("hf:acme/tiny", hub_runs["b"], hub_runs["a"]) == [True, False]


def test_each_pinned_revision_is_the_weights_committed_then(client, mirror, hub_runs):
    first, second = mirror.commits["tiny-1"], mirror.commits["tiny-2"]
    old = Path(client.zoo("pull", f"acme/tiny@{first}").stdout.strip())
    paths = client.python(
        "import json, sys; from zoo_core.hub import pull\n"
        "print(json.dumps([str(pull('hf:acme/tiny', revision=r)) for r in sys.argv[1:]]))",
        second,
        "main",
    )
    new, main = map(Path, paths)
    assert (old.name, new.name, main) == (first, second, new)
    weights = artifacts.WEIGHTS_FILE
    assert (old / weights).read_bytes() == (hub_runs["a"] / weights).read_bytes()
    assert (new / weights).read_bytes() == (hub_runs["b"] / weights).read_bytes()
    # Both versions stay in the cache, each under its own commit.
    assert sorted(
        p.name for p in (snapshot(client, "acme/tiny") / "snapshots").iterdir()
    ) == sorted([first, second])


def test_a_cached_model_loads_after_the_server_stops(own_olah, tmp_path, make_client, hub_runs):
    client = make_client(own_olah.endpoint, tmp_path / "hf-home")
    client.zoo("pull", "acme/tiny")
    own_olah.stop()
    sample = client.zoo(
        "generate",
        "acme/tiny",
        "--length",
        40,
        "--seed",
        3,
        "--prompt",
        "The ",
        "--temperature",
        0.8,
    ).stdout
    import zoo_core

    run = zoo_core.load(hub_runs["b"])
    expected = "".join(run.task.stream(run.model, "The ", 40, 0.8, seed=3))
    assert sample == f"The {expected}\n" and len(expected) == 40
    # What was never downloaded cannot be had: the error says why and what to do.
    error = client.error("pull", "acme/pickled")
    assert "not in the Hugging Face cache" in error and "cannot be reached" in error
    assert "zoo pull acme/pickled@main" in error


def test_offline_mode_needs_no_network(client, olah, hub_runs):
    client.zoo("pull", "acme/tiny")
    before = olah.requests()
    proc = client.zoo("eval", "hf:acme/tiny", "--json", HF_HUB_OFFLINE="1")
    assert olah.requests() == before  # the server is up, yet nothing asked it
    import zoo_core

    assert json.loads(proc.stdout) == pytest.approx(zoo_core.load(hub_runs["b"]).evaluate())
    error = client.error("pull", "acme/noweights", HF_HUB_OFFLINE="1")
    assert "HF_HUB_OFFLINE" in error and "zoo pull acme/noweights@main" in error
    # A mistyped run folder looks like ORG/NAME: the error says it is no folder either.
    error = client.error("eval", "runs/typo", HF_HUB_OFFLINE="1")
    assert "not in the Hugging Face cache" in error and ", nor a folder here," in error
    assert ", nor a folder here," not in client.error("eval", "hf:runs/typo", HF_HUB_OFFLINE="1")


PRETRAINED = """
import contextlib, io, json, sys
import zoo_core
from zoo_core import ModelSpec, PretrainedWeights, ZooError, hookimpl
from zoo_core.plugins import pm, reset_catalog

repo, good, bad, sha256 = sys.argv[1:]

class Weights:
    @hookimpl
    def register_models(register):
        register(ModelSpec(
            name="lstm-hub", model="zoo_lstm.model:LSTMLanguageModel", tasks=("lm",),
            family="lstm", summary="an LSTM with published weights",
            pretrained={
                "good": PretrainedWeights(repo, good, sha256, "the first weights"),
                "bad": PretrainedWeights(repo, bad, sha256, "sha256 is of other weights"),
            },
        ))

pm.register(Weights, name="hub-weights")
reset_catalog()
model = zoo_core.create_model("lstm-hub", pretrained="good")
model_no_dropout = zoo_core.create_model("lstm-hub", pretrained=True, dropout=0.0)
try:
    zoo_core.create_model("lstm-hub", pretrained="bad")
    refused = None
except ZooError as exc:
    refused = str(exc)
out = io.StringIO()
from zoo_core.cli import cli
with contextlib.redirect_stdout(out):
    cli.main(["list", "--pretrained", "--json"], standalone_mode=False)
print(json.dumps({
    "weights": {k: v.tolist() for k, v in model.state_dict().items()},
    "dropout": model_no_dropout.config.dropout,
    "refused": refused,
    "listed": json.loads(out.getvalue()),
}))
"""


def test_pretrained_weights_are_checked_against_their_sha256(client, mirror, hub_runs):
    first, second = mirror.commits["tiny-1"], mirror.commits["tiny-2"]
    weights = hub_runs["a"] / artifacts.WEIGHTS_FILE
    sha256 = hashlib.sha256(weights.read_bytes()).hexdigest()
    out = client.python(PRETRAINED, "acme/tiny", first, second, sha256)
    import zoo_core

    # Read for the model, the head tied to the embedding is there under its own name too.
    state, _ = artifacts.state_from_file(weights, zoo_core.load(hub_runs["a"]).model)
    assert out["weights"] == {k: v.tolist() for k, v in state.items()}
    assert out["dropout"] == 0.0
    assert out["refused"] is not None
    assert "sha256" in out["refused"] and sha256 in out["refused"] and "refusing" in out["refused"]
    # Refused, not deleted: the downloaded file stays in the user's cache.
    assert (snapshot(client, "acme/tiny") / "snapshots" / second / artifacts.WEIGHTS_FILE).is_file()
    listed = {row["weights"]: row for row in out["listed"] if row["model"] == "lstm-hub"}
    assert listed["good"]["repo"] == "acme/tiny" and listed["good"]["revision"] == first
    assert listed["bad"]["sha256"] == sha256


def test_a_repo_with_pickle_weights_only_is_refused(client):
    error = client.error("pull", "acme/pickled")
    assert "pickle" in error and "pytorch_model.bin" in error and "safetensors" in error
    assert not (snapshot(client, "acme/pickled") / "snapshots").exists()  # nothing downloaded


def test_a_missing_repo_and_missing_weights_are_clear_errors(client, olah):
    error = client.error("eval", "acme/nothing")  # a bare name may have meant a folder
    assert f"'acme/nothing' was not found at {olah.endpoint} (and it is not a folder" in error
    error = client.error("pull", "acme/noweights")
    assert "has no model.safetensors" in error and "zoo push" in error


def test_a_repo_of_another_library_is_refused_by_pull(client):
    error = client.error("pull", "acme/bert")
    assert "'acme/bert@main' is not a zoo model" in error and "a bert config" in error
    assert "not a folder" not in client.error("pull", "acme/nothing")  # pull takes no folders


def test_a_model_no_installed_plugin_provides_names_the_plugin(client):
    error = client.error("generate", "acme/alien")
    assert "mamba-tiny" in error and "pip install zoo-mamba" in error


@pytest.fixture
def answering(tmp_path):
    """``answering(status)``: the endpoint of a server on 127.0.0.1 that answers every request
    with that HTTP status (a Hub that is down, or that refuses)."""
    servers = []

    def start(status: int) -> str:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):
                pass

            def answer(self):
                body = json.dumps({"error": f"status {status}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_HEAD = do_POST = answer

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_a_hub_answering_a_server_error_falls_back_to_the_cache(client, answering, make_client):
    path = client.zoo("pull", "acme/tiny").stdout.strip()
    down = make_client(answering(503), client.home)  # the same cache, a Hub that is down
    proc = down.zoo("pull", "acme/tiny")
    assert proc.stdout.strip() == path
    assert f"the Hub at {down.endpoint} answered 503; using the cached copy" in proc.stderr
    error = down.error("pull", "acme/pickled")  # never downloaded: nothing to fall back to
    assert "not in the Hugging Face cache" in error and "answered 503" in error


def test_a_refused_read_asks_for_read_access(client, answering, make_client):
    error = make_client(answering(403), client.home).error("pull", "acme/tiny")
    assert "(403)" in error and "read access" in error and "write access" not in error


def test_repo_ids_the_hub_refuses_are_one_line(client):
    refused = REFUSED.format(module="hub", function="pull", before="", first=1)
    errors = client.python(refused, *BAD_REPO_IDS)
    for bad, error in zip(BAD_REPO_IDS, errors, strict=True):
        assert error is not None and f"'{bad}' is not a Hub repo id" in error, (bad, error)
    assert "'acme/a-' is not a Hub repo id" in client.error("pull", "acme/a-")
    assert "'acme/a--b' is not a Hub repo id" in client.error("eval", "hf:acme/a--b")
    assert "'acme/a.git' is not a Hub repo id" in client.error("info", "acme/a.git")


def test_a_broken_environment_is_one_line(client, tmp_path):
    error = client.error("pull", "acme/tiny", HF_HOME="/dev/null/hf")
    assert "/dev/null/hf" in error and "HF_HOME" in error
    afile = tmp_path / "a-file"
    afile.write_text("not a folder\n")
    error = client.error("pull", "acme/tiny", HF_HUB_CACHE=str(afile))
    assert str(afile) in error and "HF_HUB_CACHE" in error
    error = client.error("pull", "acme/tiny", HF_ENDPOINT="http://127.0.0.1:abc")
    assert "HF_ENDPOINT is not a valid URL" in error and "127.0.0.1:abc" in error
