"""Fixtures for the Hub tests: tiny trained runs, real servers on 127.0.0.1, a client in a subprocess.

huggingface_hub reads HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE when it is imported, so the client
side always runs in a fresh process (`zoo ...` or `python -c`) with its own environment.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from zoo_core import artifacts

HERE = Path(__file__).parent
TOKEN = "hf_zoo_test_token"
# Small enough that training, loading and evaluating take about a second each.
TINY = {"hidden_size": 16, "embed_dim": 16, "num_layers": 1, "seq_len": 16}

# Prints whether the first source gives the same logits as each of the others, on one input.
SAME_OUTPUTS = """
import json, sys, torch, zoo_core
first, *others = [zoo_core.load(source) for source in sys.argv[1:]]
x = torch.arange(40).reshape(2, 20) % first.model.config.vocab_size  # (B, T)
with torch.no_grad():
    same = [torch.equal(first.model(x), other.model(x)) for other in others]
print(json.dumps(same))
"""


@dataclass
class Client:
    """Runs the zoo as a user would, against one Hub endpoint and one Hugging Face cache."""

    endpoint: str
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
        env.update(
            HF_HOME=str(self.home),
            HF_ENDPOINT=self.endpoint,
            OMP_NUM_THREADS="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HUB_DISABLE_TELEMETRY="1",
        )
        env.update(extra)
        return env

    def run(self, argv: list[str], check: bool, **env: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            argv, env=self.env(**env), capture_output=True, text=True, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"{argv[1:]} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    def zoo(self, *args: object, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-m", "zoo_core", *map(str, args)], check, **env)

    def python(self, code: str, *args: object, **env: str) -> dict:
        """Run ``code``; its last line of output is JSON, returned parsed."""
        proc = self.run([sys.executable, "-c", code, *map(str, args)], True, **env)
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def error(self, *args: object, **env: str) -> str:
        """Run a zoo command that must fail as a user mistake: one line, no traceback."""
        proc = self.zoo(*args, check=False, **env)
        assert proc.returncode == 1, proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
        assert len(lines) == 1, proc.stderr
        return lines[0]

    def same_outputs(self, source: object, *others: object, **env: str) -> list[bool]:
        """For each of ``others``: does it give the same outputs as ``source``?"""
        return self.python(SAME_OUTPUTS, source, *others, **env)


@pytest.fixture(scope="session")
def hub_runs(tmp_path_factory) -> dict[str, Path]:
    """Two tiny trained LSTM runs with different weights: 'a' and 'b'."""
    import zoo_core

    base = tmp_path_factory.mktemp("hub-runs")
    runs = {}
    for name, seed in (("a", 0), ("b", 1)):
        artifact, _ = zoo_core.train(
            "lstm",
            out=base / name,
            overrides=dict(TINY),
            steps=3,
            batch_size=4,
            seed=seed,
            device="cpu",
            progress=False,
        )
        runs[name] = artifact.path
    return runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:  # an error page is an answer too
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"server did not answer {url} within {seconds}s")


def stop(proc: subprocess.Popen) -> None:
    """Stop a server this test session started, by its PID."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


# -- olah, a Hub mirror, serving local git repos -----------------------------------------------
def git_commit(repo: Path, files: dict[str, bytes | Path], message: str) -> str:
    """Write ``files`` into git work tree ``repo`` (created if new), commit; return the commit id."""
    git = ["git", "-C", str(repo), "-c", "user.name=zoo", "-c", "user.email=zoo@example.org"]
    if not (repo / ".git").exists():
        repo.mkdir(parents=True, exist_ok=True)
        subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    for name, content in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, Path):
            shutil.copyfile(content, target)
        else:
            target.write_bytes(content)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", message], check=True)
    out = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def run_files(run: Path) -> dict[str, Path]:
    return {n: run / n for n in artifacts.ARTIFACT_FILES if (run / n).is_file()}


@dataclass
class Mirror:
    """Local git repos laid out as olah's mirrors-path wants: {path}/models/{org}/{name}."""

    path: Path
    commits: dict[str, str]  # name -> commit id


@pytest.fixture(scope="session")
def mirror(tmp_path_factory, hub_runs) -> Mirror:
    root = tmp_path_factory.mktemp("mirror")
    models = root / "models" / "acme"
    a, b = hub_runs["a"], hub_runs["b"]
    commits = {}
    # Two versions of one model; the first also holds files `zoo pull` must leave alone.
    stray = {
        "checkpoints/step-00000003/model.safetensors": a / artifacts.WEIGHTS_FILE,
        "modeling_evil.py": b"import pathlib; pathlib.Path('EVIL_RAN').touch()\n",
        "notes.txt": b"not part of a zoo model\n",
    }
    commits["tiny-1"] = git_commit(models / "tiny", {**run_files(a), **stray}, "first weights")
    commits["tiny-2"] = git_commit(models / "tiny", run_files(b), "second weights")
    # Weights as a pickle only (its bytes are never read: the listing alone refuses it).
    git_commit(
        models / "pickled",
        {
            "config.json": a / "config.json",
            "pytorch_model.bin": b"\x80\x04pickle bytes, never loaded",
        },
        "pickle weights",
    )
    git_commit(
        models / "noweights",
        {"config.json": a / "config.json", "README.md": b"# no weights here\n"},
        "config only",
    )
    # A model whose code no installed plugin provides.
    config = json.loads((a / "config.json").read_text())
    config.update(model="mamba-tiny", family="mamba", plugin="mamba", distribution="zoo-mamba")
    git_commit(
        models / "alien",
        {**run_files(a), "config.json": json.dumps(config).encode()},
        "a model of another plugin",
    )
    # Another library's model: a transformers config beside safetensors weights.
    git_commit(
        models / "bert",
        {
            "config.json": json.dumps({"model_type": "bert", "architectures": ["Bert"]}).encode(),
            "model.safetensors": a / artifacts.WEIGHTS_FILE,
        },
        "a transformers model",
    )
    return Mirror(root, commits)


@dataclass
class Olah:
    endpoint: str
    log: Path
    proc: subprocess.Popen

    def stop(self) -> None:
        stop(self.proc)

    def requests(self) -> int:
        """How many HTTP requests olah has answered so far (from its access log, once settled:
        a line may be written just after its response went out)."""

        def count() -> int:
            return sum(' HTTP/1.1" ' in line for line in self.log.read_text().splitlines())

        last, now = -1, count()
        while now != last:
            time.sleep(0.5)
            last, now = now, count()
        return now


def start_olah(base: Path, mirror: Mirror) -> Olah:
    port = free_port()
    base.mkdir(parents=True, exist_ok=True)
    config = base / "olah.toml"
    config.write_text(f"""[basic]
host = "127.0.0.1"
port = {port}
repos-path = "{base / "cache"}"
mirrors-path = ["{mirror.path}"]
mirror-netloc = "127.0.0.1:{port}"
mirror-lfs-netloc = "127.0.0.1:{port}"

[accessibility]
offline = true
""")
    log = base / "olah.out"
    olah = shutil.which(
        "olah-cli", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if olah is None:
        raise RuntimeError(
            "olah is not installed: pip install -c constraints.txt -r requirements-test.txt"
        )
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [olah, "-c", str(config), "--log-path", str(base / "logs")],
            cwd=base,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    server = Olah(f"http://127.0.0.1:{port}", log, proc)
    try:
        wait_for(f"{server.endpoint}/api/models/acme/tiny", proc)
    except BaseException:
        stop(proc)
        raise
    return server


@pytest.fixture(scope="module")
def olah(tmp_path_factory, mirror) -> Olah:
    server = start_olah(tmp_path_factory.mktemp("olah"), mirror)
    yield server
    server.stop()


@pytest.fixture
def own_olah(tmp_path, mirror) -> Olah:
    """An olah for one test, which may stop it."""
    server = start_olah(tmp_path / "olah", mirror)
    yield server
    server.stop()


@pytest.fixture
def make_client():
    """``make_client(endpoint, home)``: a :class:`Client` of that Hub with that cache."""
    return Client


# -- the project's own Hub-compatible server, for uploads ----------------------------------------
@dataclass
class HubServer:
    endpoint: str
    token: str


@pytest.fixture(scope="module")
def hub_server() -> HubServer:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "hub_server.py"), "--token", TOKEN],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("port "), line
        endpoint = f"http://127.0.0.1:{int(line.split()[1])}"
        wait_for(f"{endpoint}/api/models/none/none", proc)
    except BaseException:
        stop(proc)
        raise
    yield HubServer(endpoint, TOKEN)
    stop(proc)


@dataclass
class RepoKit:
    """What a test needs to serve git repos of its own through olah."""

    git_commit: object
    Mirror: type
    start_olah: object


@pytest.fixture(scope="session")
def repo_kit() -> RepoKit:
    return RepoKit(git_commit, Mirror, start_olah)
