"""Published weights in another library's layout, converted once into an ordinary zoo artifact.

A Hub repo in the ``transformers`` layout (a ``config.json`` naming a ``model_type``, weights in
``model.safetensors``) is read by the importer a plugin registers for that model type
(``register_importers``): the core names no architecture. :func:`pull` downloads only
``hub.FOREIGN_FILES``, converts them into ``config.json``, ``model.safetensors``,
``tokenizer.json`` and a card, kept in the Hugging Face cache beside the repo's snapshots
(``models--ORG--NAME/zoo-import/COMMIT``), and later loads reuse that copy.

Everything in such a repo is a stranger's data: its JSON is bounded in size and checked by the
importer, its weights are checked against the model (built on the meta device) from the header
alone before a tensor is read, and no file it names is opened.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

from zoo_core import _config, artifacts, hub
from zoo_core._version import __version__
from zoo_core.card import write_card
from zoo_core.catalog import distribution, distribution_version, model_class, spec_distribution
from zoo_core.errors import ZooError, printable
from zoo_core.plugins import get_catalog
from zoo_core.registry import ForeignModel, Imported, resolve
from zoo_core.runconfig import RunConfig, build_task
from zoo_core.tokenizers.base import tokenizer_class

FORMAT = "transformers"
IMPORT_DIR = "zoo-import"  # beside snapshots/ in the repo's cache folder
PREPROCESSOR_FILE = "preprocessor_config.json"
MAX_JSON_BYTES = 4 << 20  # a config or preprocessor config; real ones are kilobytes
MAX_TOKENIZER_BYTES = 64 << 20  # GPT-2's tokenizer.json is 1.4 MiB; large vocabularies ~20 MiB


def pull(
    source: str,
    revision: str | None = None,
    *,
    sha256: str | None = None,
    token: str | None = None,
    what: str | None = None,
    folder_hint: bool = True,
) -> Path:
    """The local folder of Hub repo ``source`` as a zoo artifact: a zoo model's snapshot, or the
    converted copy of a repo in the ``transformers`` layout (converted on first use).

    ``sha256`` is checked against the repo's ``model.safetensors`` (for a converted repo: the
    file it was converted from). Other arguments are :func:`zoo_core.hub.pull`'s.
    """
    folder = hub.pull(
        source,
        revision,
        sha256=sha256,
        token=token,
        what=what,
        folder_hint=folder_hint,
        foreign=True,
    )
    config = artifacts.read_json(folder / artifacts.CONFIG_FILE)
    if hub.foreign_format(config) is None:
        return folder  # a zoo model
    repo_id, rev = hub.parse_source(source, revision)
    converted = converted_folder(folder)
    if (converted / artifacts.CONFIG_FILE).is_file():
        if _current(converted):
            return converted  # converted before, from this very commit, by this importer
        # Converted by another version of the plugin (whose importer may have changed): set
        # aside and removed, then converted again.
        stale = converted.with_name(f".{converted.name}.stale-{os.getpid()}")
        with contextlib.suppress(OSError):
            os.replace(converted, stale)
        shutil.rmtree(stale, ignore_errors=True)
    return convert(folder, converted, repo_id, rev)


def _current(converted: Path) -> bool:
    """Whether the copy in ``converted`` was made by the installed version of its plugin."""
    try:
        config = RunConfig.read(converted)
    except ZooError:
        return False
    return config.plugin_version == distribution_version(config.distribution)


def converted_folder(snapshot: Path) -> Path:
    """Where the converted copy of a repo's snapshot ``.../snapshots/COMMIT`` is kept."""
    return snapshot.parent.parent / IMPORT_DIR / snapshot.name


def _read_json(path: Path, where: str) -> dict[str, Any]:
    """A JSON object of the repo, bounded in size, or one line on why it is not one."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ZooError(f"'{where}' has a {path.name} of more than 4 MiB; not read")
    data = artifacts.read_json(path, f"{where}'s file")
    if not isinstance(data, dict):
        raise ZooError(f"'{where}' has a {path.name} that is not a JSON object")
    return data


def _installed_types() -> str:
    types = sorted({s.model_type for s in get_catalog().importers.values() if s.format == FORMAT})
    return ", ".join(types) or "none"


def read_foreign(folder: Path, repo_id: str, where: str) -> tuple[ForeignModel, Any]:
    """What an importer is handed of the snapshot ``folder``, and the importer's function."""
    config = _read_json(folder / artifacts.CONFIG_FILE, where)
    model_type = config.get("model_type")
    spec = get_catalog().importer_for(FORMAT, model_type)
    if spec is None:
        raise ZooError(
            f"'{where}' is not a zoo model: its {artifacts.CONFIG_FILE} is a "
            f"{printable(model_type, limit=40)} config of another library (transformers), and no "
            f"installed plugin imports model type '{printable(model_type, limit=40)}' (the "
            f"installed importers read: {_installed_types()}); `zoo plugins` lists what is installed"
        )
    function = resolve(spec.importer, f"importer '{spec.name}' of plugin '{spec.plugin}'")
    preprocessor = None
    if (folder / PREPROCESSOR_FILE).is_file():
        preprocessor = _read_json(folder / PREPROCESSOR_FILE, where)
    tokenizer = None
    path = folder / artifacts.TOKENIZER_FILE
    if path.is_file():
        if path.stat().st_size > MAX_TOKENIZER_BYTES:
            raise ZooError(f"'{where}' has a tokenizer.json of more than 64 MiB; not read")
        try:
            tokenizer = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ZooError(f"'{where}' has a tokenizer.json that is not UTF-8 text") from None
    header = artifacts.read_header(folder / artifacts.WEIGHTS_FILE)
    foreign = ForeignModel(repo_id, folder.name, config, header, preprocessor, tokenizer)
    return foreign, (spec, function)


def plan_import(foreign: ForeignModel, spec: Any, function: Any) -> Imported:
    """The importer's answer for ``foreign``; one line when it refuses or fails."""
    where = f"{foreign.repo}@{foreign.revision}"
    try:
        plan = function(foreign)
    except ZooError as exc:
        raise ZooError(f"cannot import '{where}': {exc}") from None
    except Exception as exc:  # a plugin's bug, or a config it did not expect: one line
        raise ZooError(
            f"importer '{spec.name}' of plugin '{spec.plugin}' failed on '{where}': "
            f"{type(exc).__name__}: {printable(exc)}"
        ) from None
    if not isinstance(plan, Imported):
        raise ZooError(
            f"importer '{spec.name}' of plugin '{spec.plugin}' returned "
            f"{type(plan).__name__}, not a zoo_core.Imported"
        )
    return plan


def _mapped(plan: Imported, name: str, tensor: Any, where: str) -> list[tuple[str, Any]]:
    """``plan.convert(name, tensor)``, checked to be (name, tensor) pairs."""
    import torch  # here, not above: `zoo list` imports no torch

    try:
        pairs = list(plan.convert(name, tensor))
    except ZooError as exc:
        raise ZooError(f"cannot import '{where}': {exc}") from None
    except Exception as exc:
        raise ZooError(
            f"the importer failed on tensor '{printable(name, 80)}' of '{where}': "
            f"{type(exc).__name__}: {printable(exc)}"
        ) from None
    for pair in pairs:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], torch.Tensor)
        ):
            raise ZooError(
                f"the importer of '{where}' mapped tensor '{printable(name, 80)}' to something "
                "other than (name, tensor) pairs"
            )
    return pairs


def convert(folder: Path, out: Path, repo_id: str, revision: str | None = None) -> Path:
    """Convert the ``transformers`` snapshot ``folder`` into a zoo artifact at ``out``.

    The model is built on the meta device; the importer maps meta tensors of the header's
    shapes first, so every name and shape is checked before a tensor is read. Then each
    foreign tensor is read, converted and kept, one at a time: one copy of the weights in
    memory, no random initialisation. ``out`` appears complete or not at all. ``revision``:
    the branch, tag or commit it was asked for, as errors name it (default: the commit).
    """
    import torch  # here, not above: `zoo list` imports no torch
    from safetensors import safe_open
    from safetensors.torch import _TYPES  # safetensors' own names of the dtypes it stores

    where = f"{repo_id}@{revision or folder.name}"
    foreign, (importer, function) = read_foreign(folder, repo_id, where)
    plan = plan_import(foreign, importer, function)
    catalog = get_catalog()
    spec = catalog.get("model", plan.model)
    if plan.task not in spec.tasks:
        raise ZooError(
            f"importer '{importer.name}' maps '{where}' to task '{plan.task}', which model "
            f"'{spec.name}' does not do"
        )
    cls = model_class(spec)
    model_cfg = _config.build(
        cls.config_class, {**spec.defaults, **plan.model_config}, f"model '{spec.name}' config"
    )
    weights = folder / artifacts.WEIGHTS_FILE
    with torch.device("meta"), artifacts.bounded_build(len(foreign.header), str(weights)):
        model = cls(model_cfg)
    expected = model.state_dict()
    header: dict[str, tuple[tuple[int, ...], str]] = {}
    for name, (shape, dtype) in foreign.header.items():
        if dtype not in _TYPES:
            raise ZooError(f"'{where}' holds tensor '{printable(name, 80)}' of dtype {dtype}")
        meta = torch.empty(shape, dtype=_TYPES[dtype], device="meta")
        for new, tensor in _mapped(plan, name, meta, where):
            if new in header:
                raise ZooError(f"the importer of '{where}' maps two tensors to '{new}'")
            header[new] = (tuple(tensor.shape), dtype)
    artifacts.check_header(model, header, f"{where} (converted)", dtypes=False)

    state: dict[str, Any] = {}
    for name in foreign.header:
        # One tensor at a time: the converted state is the only full copy held.
        with safe_open(str(weights), framework="pt") as f:
            tensor = f.get_tensor(name)
        for new, value in _mapped(plan, name, tensor, where):
            state[new] = value.to(expected[new].dtype).contiguous()
        del tensor
    origin = {
        "kind": "import",
        "source": repo_id,
        "revision": folder.name,
        "format": FORMAT,
        "model_type": foreign.config.get("model_type"),
        "importer": importer.name,
        "sha256": artifacts.file_sha256(weights),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with artifacts.new_folder(out) as tmp:
            artifacts.state_to_file(state, tmp / artifacts.WEIGHTS_FILE)
            state.clear()
            run_config = _run_config(spec, plan, model_cfg, origin)
            if plan.tokenizer:
                _save_tokenizer(plan, tmp, where)
            run_config.write(tmp)
            # The task as a load would build it: a state the model contradicts (a class count,
            # a vocabulary) is refused now, not at the first prediction.
            build_task(run_config, tmp, model_cfg, from_hub=True)
            write_card(tmp, run_config, repo_id)
    except (OSError, ZooError) as exc:
        if (out / artifacts.CONFIG_FILE).is_file():  # another process converted it meanwhile
            return out
        if isinstance(exc, ZooError):
            raise
        raise ZooError(f"cannot write the converted copy of '{where}' ({out}): {exc}") from None
    return out


def _run_config(spec: Any, plan: Imported, model_cfg: Any, origin: dict[str, Any]) -> RunConfig:
    dist = distribution(spec.plugin)
    return RunConfig(
        zoo_version=__version__,
        model=spec.name,
        family=spec.family,
        plugin=spec.plugin,
        distribution=dist,
        plugin_version=distribution_version(dist),
        task_distribution=spec_distribution("task", plan.task),
        tokenizer_distribution=spec_distribution("tokenizer", plan.tokenizer),
        task=plan.task,
        tokenizer=plan.tokenizer,
        model_config=_config.to_json(model_cfg),
        task_state=dict(plan.task_state),
        metrics={},  # finished: nothing is left to train, and nothing was measured here
        origin=origin,
    )


def _save_tokenizer(plan: Imported, folder: Path, where: str) -> None:
    cls = tokenizer_class(plan.tokenizer)
    try:
        tokenizer = cls.from_dict(dict(plan.tokenizer_data))
    except ZooError as exc:
        raise ZooError(f"cannot import the tokenizer of '{where}': {exc}") from None
    except Exception as exc:  # the tokenizers library's reasons for refusing a file
        raise ZooError(
            f"'{where}' has a tokenizer.json the {plan.tokenizer} tokenizer cannot read: "
            f"{printable(exc)}"
        ) from None
    tokenizer.name = plan.tokenizer
    artifacts.atomic_write(folder / artifacts.TOKENIZER_FILE, tokenizer.save)
