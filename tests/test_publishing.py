"""Publishing and fetching guard what a user types: pip's pass-through options, a mistyped
folder, credentials in a URL."""

from __future__ import annotations

import pytest

from zoo_core import ZooError


@pytest.mark.parametrize(
    "args",
    [
        ["zoo-lstm", "--requireme=reqs.txt"],  # a prefix pip reads as --requirement
        ["zoo-lstm", "--req", "reqs.txt"],
        ["zoo-lstm", "-yrreqs.txt"],  # -y, then -r with its file
        ["zoo-lstm", "-qr", "reqs.txt"],
        ["zoo-lstm", "--constraint=c.txt"],
        ["zoo-lstm", "--"],
    ],
)
def test_uninstall_passes_only_a_few_options_to_pip(args):
    from zoo_core.scaffold import uninstall_args

    with pytest.raises(ZooError, match="only -y/--yes, -q/--quiet and -v/--verbose") as caught:
        uninstall_args(args)
    assert len(str(caught.value).splitlines()) == 1


def test_uninstall_keeps_the_options_it_allows():
    from zoo_core.scaffold import uninstall_args

    args = ["-y", "--quiet", "lstm", "-vv", "--yes", "-yq", "--verbose"]
    assert uninstall_args(args) == ["-y", "--quiet", "zoo-lstm", "-vv", "--yes", "-yq", "--verbose"]


def test_a_mistyped_run_folder_is_not_fetched_from_the_hub(zoo, tmp_path, monkeypatch):
    import zoo_core
    from zoo_core.artifact import pulled

    (tmp_path / "runs").mkdir()
    monkeypatch.chdir(tmp_path)
    for source in ("runs/foo", tmp_path.joinpath("runs", "foo").relative_to(tmp_path)):
        with pytest.raises(ZooError, match="'runs/foo' is not a run folder") as caught:
            pulled(source)
        assert "hf:runs/foo" in str(caught.value)
    with pytest.raises(ZooError, match="is not a run folder"):
        zoo_core.load("runs/foo")
    # Nothing listens on port 9: a request to the Hub would be another error.
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path)}
    for command in ("info", "eval"):
        result = zoo(command, "runs/foo", check=False, cwd=tmp_path, env=env)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.strip().startswith("Error: 'runs/foo' is not a run folder")
    # hf: asks the Hub, as does a name whose first part is no folder here.
    for source in ("hf:runs/foo", "acme/foo"):
        result = zoo("info", source, check=False, cwd=tmp_path, env=env)
        assert result.returncode == 1 and "not a run folder" not in result.stderr


def test_credentials_in_a_url_are_not_printed(zoo, tmp_path):
    from zoo_core._redact import redact

    assert redact("at https://user:s3cret@mirror/x and git+https://t@h/a.git") == (
        "at https://***@mirror/x and git+https://***@h/a.git"
    )
    assert redact("https://u:p@ss@h.org/simple") == "https://***@h.org/simple"
    assert redact("https://h.org/a@b user@example.org") == "https://h.org/a@b user@example.org"

    # A Hub error names the Hub, without the credentials in HF_ENDPOINT (nothing listens there).
    env = {"HF_ENDPOINT": "http://user:s3cret@127.0.0.1:9", "HF_HOME": str(tmp_path / "hf")}
    result = zoo("pull", "acme/tiny", check=False, cwd=tmp_path, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "http://***@127.0.0.1:9" in result.stderr and "s3cret" not in result.stderr

    # pip's failure, with the command it ran, shows no token either.
    url = "https://user:t0ken@127.0.0.1:9/simple"
    env = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = zoo("plugins", "install", "--index-url", url, "zoo-nothing", check=False, env=env)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "--index-url https://***@127.0.0.1:9/simple" in result.stderr
    assert "t0ken" not in result.stdout + result.stderr
