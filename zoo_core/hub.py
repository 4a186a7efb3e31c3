"""Models on the Hugging Face Hub: pull, push, pinned pretrained weights, offline use.

A Hub repo holds the files of a run folder (``zoo_core.artifacts.ARTIFACT_FILES``), so
``zoo push RUN org/name`` and ``zoo pull org/name`` are symmetric. huggingface_hub does the work:
its cache (``HF_HOME``, ``HF_HUB_CACHE``), its offline mode (``HF_HUB_OFFLINE=1``), tokens
(``HF_TOKEN`` or ``hf auth login``) and ``HF_ENDPOINT`` for self-hosted mirrors.

Safety: only ``model.safetensors`` is ever read as weights, and no code from a repo is imported
or run. A model's code always comes from an installed plugin; a repo only names it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, NoReturn

from zoo_core import artifacts
from zoo_core._redact import redact
from zoo_core.card import all_picture_names, pictures, render_card, task_pictures
from zoo_core.errors import ZooError
from zoo_core.runconfig import RunConfig, config_problem

# What `zoo pull` fetches: the artifact format and nothing else (no checkpoints, no stray files),
# and the pictures the card shows (see pull_patterns()).
PULL_PATTERNS = list(artifacts.ARTIFACT_FILES)
# Weights in these formats are unpickled to be read, which can run arbitrary code: never loaded.
# What `zoo pull` fetches of a repo in the `transformers` layout, which an importer converts: its
# config, its safetensors weights, and the tokenizer or preprocessor files (nothing else: no
# card, no code, no other weights).
FOREIGN_FILES = (
    artifacts.CONFIG_FILE,
    artifacts.WEIGHTS_FILE,
    artifacts.TOKENIZER_FILE,
    "preprocessor_config.json",
)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# A config.json larger than this is no config (a real one is a few kilobytes; id2label of 21k
# classes about 1 MiB): it is not parsed.
MAX_CONFIG_BYTES = 4 << 20
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


# -- names -----------------------------------------------------------------------------------------
def _import_hub() -> None:
    """Import huggingface_hub, which reads HF_ENDPOINT as it is imported: a malformed one is one
    line, not a traceback."""
    try:
        import huggingface_hub.hf_api  # noqa: F401  (imports its HTTP layer, which parses the URL)
    except ValueError as exc:
        raise ZooError(
            redact(
                f"HF_ENDPOINT is not a valid URL ({os.environ.get('HF_ENDPOINT', '')!r}: {exc}); "
                "set it to a Hub's address, such as https://huggingface.co, or unset it"
            )
        ) from None


def parse_source(source: str, revision: str | None = None) -> tuple[str, str]:
    """``hf:org/name@rev`` or ``org/name[@rev]`` -> ``(repo_id, revision)`` (default ``main``)."""
    text = source[3:] if source.startswith("hf:") else source
    repo_id, at, rev = text.partition("@")
    if at and not rev:
        raise ZooError(f"'{source}' ends with '@' but names no revision (a branch, tag or commit)")
    if rev and revision and rev != revision:
        raise ZooError(
            f"'{source}' names revision '{rev}', but revision '{revision}' was also given"
        )
    check_repo_id(repo_id)
    return repo_id, rev or revision or "main"


def check_repo_id(repo_id: str) -> None:
    """Refuse what the Hub would refuse, by huggingface_hub's own rules, as one line."""
    _import_hub()
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    rule = "letters, digits, '.', '_', '-'"
    if not _REPO_ID.match(repo_id) or ".." in repo_id:
        raise ZooError(f"'{repo_id}' is not a Hub repo id: write it as ORG/NAME ({rule})")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ZooError(f"'{repo_id}' is not a Hub repo id: {_first_line(exc)}") from None


def endpoint() -> str:
    """The Hub the client talks to: ``HF_ENDPOINT``, else huggingface.co."""
    from huggingface_hub import constants

    return constants.ENDPOINT.rstrip("/")


def _offline() -> bool:
    from huggingface_hub import constants

    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if is_offline else constants.HF_HUB_OFFLINE)


# -- errors ----------------------------------------------------------------------------------------
def _connection_errors() -> tuple[type[BaseException], ...]:
    """Transport failures of whichever HTTP library this huggingface_hub uses (httpx2 in 2.x,
    httpx in 1.x, requests before). Looked up in ``sys.modules``: the one that raised is loaded."""
    found: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module, names in (
        ("httpx2", ("TransportError",)),
        ("httpx", ("TransportError",)),
        ("requests", ("ConnectionError", "Timeout")),
    ):
        mod = sys.modules.get(module)
        found += [getattr(mod, n) for n in names if mod is not None and hasattr(mod, n)]
    return tuple(found)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _login_hint() -> str:
    return "log in with `hf auth login` or set HF_TOKEN"


def _status(exc: BaseException) -> int | None:
    """The HTTP status of a huggingface_hub error, if it carries one."""
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None) if response is not None else None


def _cache_error(exc: OSError) -> ZooError | None:
    """A Hugging Face folder (cache, token) that cannot be used: which one, and which variable
    sets it; None if the failing path is none of theirs."""
    from huggingface_hub import constants

    path = str(exc.filename)
    folders = [("HF_HUB_CACHE", constants.HF_HUB_CACHE), ("HF_HOME", constants.HF_HOME)]
    if os.environ.get("HF_TOKEN_PATH"):
        folders.insert(0, ("HF_TOKEN_PATH", constants.HF_TOKEN_PATH))
    for variable, folder in folders:
        if path.startswith(str(folder)):
            if not os.environ.get(variable):
                variable = "HF_HOME"  # a folder under HF_HOME, which is what sets it
            return ZooError(
                f"cannot use the Hugging Face folder '{folder}' ({exc.strerror or exc}: "
                f"'{path}'): set {variable} to a folder you can write"
            )
    return None


def hub_error(
    exc: BaseException,
    repo_id: str,
    revision: str | None = None,
    *,
    path_like: bool = False,
    write: bool = False,
) -> ZooError | None:
    """One clear line for a huggingface_hub failure, or None if ``exc`` is not a Hub failure.

    ``path_like``: the name was given without ``hf:``, so it may have been meant as a folder.
    ``write``: the request was to change the repo (a push), not to read it. Credentials in a URL
    (``HF_ENDPOINT=https://user:token@mirror``) are not shown.
    """
    error = _hub_error(exc, repo_id, revision, path_like=path_like, write=write)
    return None if error is None else ZooError(redact(str(error)))


def _hub_error(
    exc: BaseException, repo_id: str, revision: str | None, *, path_like: bool, write: bool
) -> ZooError | None:
    from huggingface_hub import errors as hf

    where = endpoint()
    rev = f" (revision '{revision}')" if revision and revision != "main" else ""
    if isinstance(exc, hf.HFValidationError):
        return ZooError(f"'{repo_id}' is not a Hub repo id: {_first_line(exc)}")
    if isinstance(exc, hf.GatedRepoError):
        return ZooError(
            f"'{repo_id}' is a gated repo: request access on {where}/{repo_id}, then {_login_hint()}"
        )
    if isinstance(exc, hf.RepositoryNotFoundError):
        folder = " (and it is not a folder here either)" if path_like else ""
        return ZooError(
            f"'{repo_id}'{rev} was not found at {where}{folder}: check the name and revision; if "
            f"the repo is private, {_login_hint()} with a token that can read it"
        )
    if isinstance(exc, hf.RevisionNotFoundError):
        return ZooError(
            f"'{repo_id}' has no revision '{revision}' at {where}: name an existing branch, tag or commit"
        )
    if isinstance(exc, getattr(hf, "DisabledRepoError", ())):
        return ZooError(f"'{repo_id}' has been disabled on {where} and cannot be downloaded")
    if isinstance(exc, getattr(hf, "LocalEntryNotFoundError", ())):
        return ZooError(
            f"'{repo_id}'{rev} is not in the Hugging Face cache ({_cache_dir()}) and the Hub at "
            f"{where} could not be reached: check the network or HF_ENDPOINT, then run "
            f"`zoo pull {repo_id}@{revision or 'main'}`"
        )
    if isinstance(exc, hf.EntryNotFoundError):
        return ZooError(f"'{repo_id}'{rev} at {where} is missing a file: {_first_line(exc)}")
    if isinstance(exc, getattr(hf, "OfflineModeIsEnabled", ())):
        return ZooError(
            f"HF_HUB_OFFLINE is set, so '{repo_id}' cannot be reached; unset it to go online"
        )
    if isinstance(exc, hf.HfHubHTTPError):
        status = _status(exc)
        if status == 401:
            return ZooError(
                f"the Hub at {where} refused the request for '{repo_id}' (401): {_login_hint()}"
            )
        if status == 403 and write:
            return ZooError(
                f"your token may not do this on '{repo_id}' at {where} (403): use a token with "
                "write access to that namespace"
            )
        if status == 403:
            return ZooError(
                f"you may not read '{repo_id}' at {where} (403): ask its owner for access, then "
                f"{_login_hint()} with a token that has read access to it"
            )
        if status == 412 and write:  # the parent_commit a push gave is no longer the head
            return ZooError(
                f"'{repo_id}'{rev} at {where} changed while this push was prepared (another "
                "push landed first); nothing was committed: look at the branch, then push again"
            )
        message = getattr(exc, "server_message", None) or _first_line(exc)
        return ZooError(f"the Hub at {where} answered {status} for '{repo_id}': {message}")
    if isinstance(exc, _connection_errors()):
        return ZooError(
            f"cannot reach the Hub at {where} ({_first_line(exc)}): check the network or HF_ENDPOINT"
        )
    if isinstance(exc, OSError) and exc.filename:
        return _cache_error(exc)
    return None


def _raise(
    exc: BaseException,
    repo_id: str,
    revision: str | None,
    path_like: bool = False,
    write: bool = False,
) -> NoReturn:
    error = hub_error(exc, repo_id, revision, path_like=path_like, write=write)
    if error is None:
        raise exc
    raise error from None


def _cache_dir() -> str:
    from huggingface_hub import constants

    return constants.HF_HUB_CACHE


# -- pull ------------------------------------------------------------------------------------------
def pull_patterns() -> list[str]:
    """The files `zoo pull` fetches: the artifact files and every installed task's pictures (a
    GAN's samples.png), which a pushed card shows."""
    return [*PULL_PATTERNS, *sorted(all_picture_names() - set(PULL_PATTERNS))]


def pull(
    source: str,
    revision: str | None = None,
    *,
    sha256: str | None = None,
    token: str | None = None,
    what: str | None = None,
    folder_hint: bool = True,
    foreign: bool = False,
) -> Path:
    """Download a model's files into the Hugging Face cache; return the snapshot folder.

    ``source`` is ``hf:org/name@rev`` or ``org/name[@rev]``. With ``sha256`` the weights must
    hash to it. Offline (``HF_HUB_OFFLINE=1``), or when the Hub cannot be reached or answers an
    error, ``snapshot_download`` serves the cached snapshot. Only the artifact files are fetched;
    a repo holding only pickle weights is refused before anything is downloaded.
    ``folder_hint``: a name without ``hf:`` may have been meant as a run folder (as ``zoo eval``
    takes either), and errors say it is not one. ``foreign``: a repo in the ``transformers``
    layout is fetched too (``FOREIGN_FILES`` only), for ``zoo_core.importers`` to convert.
    """
    _import_hub()
    repo_id, rev = parse_source(source, revision)
    where = f"{repo_id}@{rev}"
    path_like = folder_hint and not source.startswith("hf:")  # it may have been meant as a folder
    if _COMMIT.match(rev) and (cached := _cached(repo_id, rev, foreign)) is not None:
        folder = cached  # a commit never changes, and its listing was checked when downloaded
    else:
        folder = _download(repo_id, rev, token, path_like, foreign)
    _check_folder(folder, where, foreign)
    if sha256:
        verify_sha256(folder / artifacts.WEIGHTS_FILE, sha256, what or where)
    return folder


def foreign_format(config: Any) -> str | None:
    """``"transformers"`` when ``config`` (parsed JSON) is a ``transformers`` config.json (it names
    a ``model_type`` and no zoo model), else None."""
    if isinstance(config, dict) and "model" not in config:
        if isinstance(config.get("model_type"), str):
            return "transformers"
    return None


def _patterns(foreign: bool) -> list[str]:
    """What a cached snapshot may hold: a zoo model's files, and with ``foreign`` another
    library's."""
    extra = [name for name in FOREIGN_FILES if name not in pull_patterns()] if foreign else []
    return [*pull_patterns(), *extra]


def _download(repo_id: str, rev: str, token: str | None, path_like: bool, foreign: bool) -> Path:
    """``snapshot_download`` fetches the artifact files; when offline, when the Hub cannot be
    reached or when it answers an error, it serves the cached snapshot instead, or raises."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    from huggingface_hub import errors as hf

    where = f"{repo_id}@{rev}"
    # snapshot_download shows no listing before it downloads, so a repo of pickle weights would
    # only be found out afterwards: the zoo asks for the listing first, to refuse such a repo
    # before anything of it is downloaded. When that fails, snapshot_download makes the same
    # request and decides: it serves a cached snapshot after any failure (offline, no
    # connection, any HTTP error), and raises when there is none.
    listing_failed: BaseException | None = None
    patterns = _patterns(foreign)
    try:
        info = HfApi(token=token).model_info(repo_id, revision=rev)
    except Exception as exc:
        listing_failed = exc  # snapshot_download decides below whether the cached copy serves
        # A cached transformers repo holds only FOREIGN_FILES, which the zoo's patterns would
        # find incomplete: it is served as such.
        cached = _cached_foreign(repo_id, rev) if foreign else None
        if cached is not None:
            if not isinstance(exc, hf.OfflineModeIsEnabled):
                print(
                    redact(f"{_unavailable(exc)}; using the cached copy of {where}"),
                    file=sys.stderr,
                )
            return cached
    else:
        _check_listing([s.rfilename for s in info.siblings or []], where)
        if foreign:  # which layout it is, from its config alone, before the weights come
            try:
                path = hf_hub_download(
                    repo_id, artifacts.CONFIG_FILE, revision=info.sha or rev, token=token
                )
            except Exception as exc:
                _raise(exc, repo_id, rev, path_like)
            if foreign_format(_read_config(Path(path))):
                patterns = list(FOREIGN_FILES)
    try:
        folder = Path(
            snapshot_download(repo_id, revision=rev, allow_patterns=patterns, token=token)
        )
    except hf.LocalEntryNotFoundError as exc:
        raise ZooError(redact(str(_not_cached(exc, repo_id, rev, path_like)))) from None
    except Exception as exc:
        _raise(exc, repo_id, rev, path_like)
    if listing_failed is not None and not isinstance(listing_failed, hf.OfflineModeIsEnabled):
        line = f"{_unavailable(listing_failed)}; using the cached copy of {where}"
        print(redact(line), file=sys.stderr)
    return folder


def _unavailable(exc: BaseException) -> str:
    """Why the Hub did not serve a request: its answer, or why it could not be reached."""
    status = _status(exc)
    failure = f"answered {status}" if status else f"cannot be reached ({_first_line(exc)})"
    return f"the Hub at {endpoint()} {failure}"


def _read_config(path: Path) -> Any:
    """A downloaded config.json, parsed, or None when it is not JSON (or far too large for one)."""
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None


def _cached_foreign(repo_id: str, rev: str) -> Path | None:
    """The cached snapshot of a repo in the transformers layout, if there is one."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(
            snapshot_download(
                repo_id, revision=rev, allow_patterns=list(FOREIGN_FILES), local_files_only=True
            )
        )
    except Exception:
        return None
    if not (folder / artifacts.WEIGHTS_FILE).is_file():
        return None
    return folder if foreign_format(_read_config(folder / artifacts.CONFIG_FILE)) else None


def _cached(repo_id: str, rev: str, foreign: bool = False) -> Path | None:
    from huggingface_hub import snapshot_download

    if foreign and (found := _cached_foreign(repo_id, rev)) is not None:
        return found

    try:
        folder = Path(
            snapshot_download(
                repo_id, revision=rev, allow_patterns=_patterns(foreign), local_files_only=True
            )
        )
    except Exception:
        return None
    return folder if (folder / artifacts.WEIGHTS_FILE).is_file() else None


def _not_cached(exc: BaseException, repo_id: str, rev: str, path_like: bool) -> ZooError:
    """One line for ``snapshot_download`` finding no cached copy to serve: why the Hub did not
    serve it (the error it chained: offline mode, no connection, the Hub's answer)."""
    from huggingface_hub import errors as hf

    cause = exc.__cause__
    status = _status(cause) if cause is not None else None
    if status is not None and status < 500:
        # The Hub answered and refused (403, say): that is what to fix, not the cache.
        error = hub_error(cause, repo_id, rev, path_like=path_like)  # type: ignore[arg-type]
        if error is not None:
            return error
    if cause is None or isinstance(cause, hf.OfflineModeIsEnabled):
        reason, todo = "HF_HUB_OFFLINE is set", "unset HF_HUB_OFFLINE and "
    else:
        reason, todo = _unavailable(cause), "check the network or HF_ENDPOINT, then "
    what = "is not in the Hugging Face cache"
    if isinstance(exc, getattr(hf, "IncompleteSnapshotError", ())):
        what = "is only partly in the Hugging Face cache"
    nor = ", nor a folder here," if path_like else ""
    return ZooError(
        f"'{repo_id}@{rev}' {what} ({_cache_dir()}){nor} and {reason}; {todo}run "
        f"`zoo pull {repo_id}@{rev}` to download it"
    )


def _check_listing(files: list[str], where: str) -> None:
    """Refuse a repo that is not a zoo model before downloading anything from it."""
    if artifacts.WEIGHTS_FILE not in files:
        pickles = [f for f in files if f.endswith(PICKLE_SUFFIXES)]
        if pickles and not any(f.endswith(".safetensors") for f in files):
            raise ZooError(
                f"'{where}' holds its weights only in pickle files ({', '.join(pickles[:3])}); zoo "
                "loads safetensors only, because unpickling can run arbitrary code. Ask its owner "
                "for a model.safetensors"
            )
        raise ZooError(
            f"'{where}' has no {artifacts.WEIGHTS_FILE} (it holds: {', '.join(files[:8]) or 'nothing'}); "
            "zoo models are published with `zoo push`"
        )
    if artifacts.CONFIG_FILE not in files:
        raise ZooError(
            f"'{where}' has no {artifacts.CONFIG_FILE}, so it is not a zoo model (which model, task "
            "and config it is cannot be known); zoo models are published with `zoo push`"
        )


def _check_folder(folder: Path, where: str, foreign: bool = False) -> None:
    for name in (artifacts.CONFIG_FILE, artifacts.WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise ZooError(f"the downloaded copy of '{where}' has no {name} ({folder})")
    if (folder / artifacts.CONFIG_FILE).stat().st_size > MAX_CONFIG_BYTES:
        raise ZooError(f"'{where}' has a {artifacts.CONFIG_FILE} of more than 4 MiB; not read")
    config = artifacts.read_json(folder / artifacts.CONFIG_FILE)
    if foreign and foreign_format(config):
        return  # for an importer to read
    problem = config_problem(config)
    if problem:  # another library's repo, say: refused here, not half-used later
        raise ZooError(f"'{where}' is not a zoo model: its {artifacts.CONFIG_FILE} {problem}")


def verify_sha256(path: Path, expected: str, what: str) -> None:
    """Refuse weights whose sha256 is not the declared one (the file is left where it is)."""
    actual = artifacts.file_sha256(path)
    if actual != expected.strip().lower():
        raise ZooError(
            f"the weights of {what} have sha256 {actual}, but {expected} is declared; refusing to "
            "load them. The repo may have changed under that revision: pin a commit, or update the "
            "declared sha256 if the new weights are trusted"
        )


# -- push ------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PushResult:
    repo_url: str
    commit_url: str  # the new commit, or the branch's head when nothing changed
    revision: str
    files: list[str]  # uploaded: new or changed
    unchanged: list[str]  # already on the branch, byte for byte
    removed: list[str]  # artifact files the branch had and this run has not

    @property
    def changed(self) -> bool:
        return bool(self.files or self.removed)


def push(
    run: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    message: str | None = None,
    include_checkpoints: bool = False,
    token: str | None = None,
    force: bool = False,
    check: Callable[[Path], None] | None = None,
) -> PushResult:
    """Upload a run folder to a Hub repo (created if needed) in one commit.

    Uploads config.json, model.safetensors, tokenizer.json, metrics.jsonl, the pictures the task
    drew (a GAN's samples.png, a classifier's confusion.png) and a model card regenerated for
    ``repo_id`` that shows them; ``checkpoints/`` only with ``include_checkpoints``. The branch's
    artifact files then are this run's: one this run lacks (a tokenizer.json left by another
    model, checkpoints this run no longer has when they are pushed) is deleted in the same
    commit, and files the branch already has are not sent again. Other files in the repo are
    left alone. Nothing changed, no commit.

    ``repo_id`` may be written ``hf:org/name`` and name the branch (``org/name@dev``). Refused,
    before anything is sent: a run being trained; a run ``check(folder)`` refuses (it runs under
    the run's lock: ``zoo_core.artifact.push`` checks that the run is finished and loads); a
    branch whose config.json is not a zoo model's (another library's repo) unless ``force``.
    """
    _import_hub()
    folder = Path(run)
    repo_id, branch = parse_source(repo_id, revision)
    if folder.exists() and not folder.is_dir():
        raise ZooError(
            f"'{run}' is a file, not a run folder: give the folder `zoo train` wrote "
            f"('{folder.parent}' if this file is in it)"
        )
    config = RunConfig.read(folder)
    if not (folder / artifacts.WEIGHTS_FILE).is_file():
        raise ZooError(f"'{run}' has no {artifacts.WEIGHTS_FILE}: has its training finished?")
    if _offline():
        raise ZooError("HF_HUB_OFFLINE is set, and pushing needs the network; unset it")
    with contextlib.ExitStack() as stack:
        try:  # held while pushing, so that no training starts in the folder meanwhile
            stack.enter_context(artifacts.locked(folder))
        except ZooError:
            raise ZooError(f"'{run}' is still training; push it when it has finished") from None
        if check is not None:
            check(folder)
        return _push(
            folder, config, repo_id, branch, private, message, include_checkpoints, token, force
        )


def public_config(config: RunConfig) -> RunConfig:
    """``config`` as a Hub repo shows it: each absolute path in it (the data it trained on, where a
    task or a setting recorded it) cut to its last part, so that no user name or folder layout is
    published; and no data fingerprints, which mean something only beside the path they were
    taken at. Lists are left alone: they hold data (class names), not paths."""

    def public(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: public(item) for key, item in value.items()}
        if isinstance(value, str) and PurePosixPath(value).is_absolute():
            return PurePosixPath(value).name
        if isinstance(value, str) and PureWindowsPath(value).is_absolute():
            return PureWindowsPath(value).name
        return value

    data = config.to_json()
    for key in data:
        if key != "model_config":  # the model's own settings hold no paths
            data[key] = public(data[key])
    data["data_fingerprints"] = {}
    return RunConfig.from_json(data)


def _remote_config(api: Any, repo_id: str, revision: str, remote: dict[str, Any]) -> Any:
    """The config.json of ``revision`` as parsed JSON: None when there is none, ``...`` when it
    is not JSON."""
    if artifacts.CONFIG_FILE not in remote:
        return None
    path = api.hf_hub_download(repo_id, artifacts.CONFIG_FILE, revision=revision)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return ...


def _foreign_config(api: Any, repo_id: str, branch: str, remote: dict[str, Any]) -> str | None:
    """Why the branch's config.json is not a zoo model's, or None (none there, or a zoo one)."""
    config = _remote_config(api, repo_id, branch, remote)
    if config is None:
        return None
    return "is not JSON" if config is ... else config_problem(config)


def _remote_task(api: Any, repo_id: str, revision: str, remote: dict[str, Any]) -> str | None:
    """The task of the zoo model ``revision`` holds, or None (no zoo model there)."""
    config = _remote_config(api, repo_id, revision, remote)
    if config is None or config is ... or config_problem(config):
        return None
    return config["task"]


def _left_behind(path: str) -> bool:
    """A file a killed run left half-written: a hidden temporary folder of a checkpoint being
    saved (``.tmp-step-*``) or an atomic write's ``.NAME.XXXX.tmp``; never part of a run."""
    return any(part.startswith(".") or part.endswith(".tmp") for part in path.split("/"))


def _push(
    folder: Path,
    config: RunConfig,
    repo_id: str,
    branch: str,
    private: bool,
    message: str | None,
    include_checkpoints: bool,
    token: str | None,
    force: bool,
) -> PushResult:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub import errors as hf
    from huggingface_hub.hf_api import RepoFile

    contents: dict[str, bytes | Path] = {
        name: folder / name
        for name in artifacts.ARTIFACT_FILES
        if name != artifacts.CARD_FILE and (folder / name).is_file()
    }
    # The run folder keeps where its data was (resuming compares it); the Hub gets its name only.
    config = public_config(config)
    # The bytes write_json would write, so that pushing one run twice sends nothing new.
    text = json.dumps(config.to_json(), indent=2, ensure_ascii=False) + "\n"
    contents[artifacts.CONFIG_FILE] = text.encode("utf-8")
    checkpoints = folder / artifacts.CHECKPOINTS_DIR
    if include_checkpoints and checkpoints.is_dir():
        for path in sorted(p for p in checkpoints.rglob("*") if p.is_file()):
            name = path.relative_to(folder).as_posix()
            if not _left_behind(name):
                contents[name] = path
    for name in pictures(folder, config):  # shown on the card
        contents[name] = folder / name
    card = render_card(folder, config, repo_id, revision=branch)
    contents[artifacts.CARD_FILE] = card.encode("utf-8")
    api = HfApi(token=token)

    def listing(revision: str) -> dict[str, str]:
        """The files of ``revision`` and their blob ids (an LFS file's is its pointer's, which
        changes with its content)."""
        tree = api.list_repo_tree(repo_id, revision=revision, recursive=True)
        return {entry.path: entry.blob_id for entry in tree if isinstance(entry, RepoFile)}

    try:
        if not force:  # before anything is created: a refused push leaves the repo as it was
            try:
                existing = listing(branch)
            except (hf.RepositoryNotFoundError, hf.RevisionNotFoundError):
                existing = {}  # a new repo or branch
            foreign = _foreign_config(api, repo_id, branch, existing)
            if foreign is not None:
                raise ZooError(
                    f"'{repo_id}' ({branch}) holds another model: its {artifacts.CONFIG_FILE} "
                    f"{foreign}; push to a new repo or branch, or give --force to replace its files"
                )
        repo_url = api.create_repo(repo_id, private=private, exist_ok=True)
        if branch != "main":
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        # The deletions below are computed from this listing, so the commit is made on top of
        # the head it was taken at, or not at all: a push that landed meanwhile is not undone.
        head = api.repo_info(repo_id, revision=branch).sha
        remote = listing(head or branch)  # a new branch starts with main's files
        # The pictures a push put there: those of this run's task, and those of the task of the
        # run the branch holds (a GAN's samples.png, when a language model replaces it). Any
        # other picture was added by hand, and stays.
        drawn = set(task_pictures(config.task))
        if head is not None and (task := _remote_task(api, repo_id, head, remote)):
            drawn |= set(task_pictures(task))

        def ours(path: str) -> bool:  # a file a push of a run owns on the branch
            in_checkpoints = path.startswith(artifacts.CHECKPOINTS_DIR + "/")
            return (
                path in artifacts.ARTIFACT_FILES
                or path in drawn
                or (include_checkpoints and in_checkpoints)
            )

        # create_commit deletes only what it is told to: another run's artifact files on the
        # branch are named here, so that the branch holds this run alone.
        removed = sorted(path for path in remote if ours(path) and path not in contents)
        operations: list[Any] = [
            CommitOperationAdd(
                path_in_repo=name,
                path_or_fileobj=str(local) if isinstance(local, Path) else local,
            )
            for name, local in contents.items()
        ]
        operations += [CommitOperationDelete(path_in_repo=path) for path in removed]
        # create_commit leaves out each file the branch already has byte for byte (the Hub's
        # preupload answer names the blob there) and makes no commit when nothing is left,
        # returning the branch's head instead.
        info = api.create_commit(
            repo_id,
            operations,
            commit_message=message or f"Upload {config.model} with zoo",
            revision=branch,
            parent_commit=head,
        )
        after = listing(info.oid)  # what the branch holds now tells which files were sent
    except ZooError:
        raise
    except Exception as exc:
        _raise(exc, repo_id, branch, write=True)
    unchanged = [name for name in contents if name in remote and after.get(name) == remote[name]]
    upload = [name for name in contents if name not in unchanged]
    # The URLs are built on HF_ENDPOINT, which may carry credentials.
    urls = redact(str(repo_url)), redact(info.commit_url)
    return PushResult(*urls, branch, upload, unchanged, removed)
