"""The plugin manager: built-in plugins, entry points of group ``zoo``, and isolation of failures.

A plugin that fails to import, raises in a hook or registers a bad spec is reported once on
stderr and skipped whole, so the rest of the zoo keeps working. ``ZOO_STRICT_PLUGINS=1`` turns
every such report into an error; ``ZOO_LOAD_PLUGINS=a,b`` loads only the named entry points (set
but empty: built-ins only).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import re
import sys
from importlib import metadata
from typing import Any

import pluggy

from zoo_core import hookspecs
from zoo_core._version import __version__
from zoo_core.errors import ZooError
from zoo_core.registry import (
    Catalog,
    ImporterSpec,
    ModelSpec,
    PluginInfo,
    PretrainedWeights,
    StudySpec,
    TaskSpec,
    TokenizerSpec,
)

ENTRY_POINT_GROUP = "zoo"
BUILTIN_PLUGINS = {
    "builtin-tasks": "zoo_core.tasks",
    "builtin-tokenizers": "zoo_core.tokenizers",
    "builtin-studies": "zoo_core.studies",
}

hookimpl = pluggy.HookimplMarker("zoo")

pm = pluggy.PluginManager("zoo")
pm.add_hookspecs(hookspecs)

_infos: dict[str, PluginInfo] = {}
_load_errors: list[PluginInfo] = []  # plugins that never made it into pm
_errors: list[tuple[PluginInfo, str]] = []  # every report, in order, for strict mode
_failed: set[str] = set()  # plugins that raised or misregistered: none of their hooks are used
_loaded = False
_catalog: Catalog | None = None
# Errors that a plugin's code raises and that must not end the zoo: SystemExit too (a plugin that
# calls sys.exit() on a missing dependency); KeyboardInterrupt still stops everything.
_PLUGIN_ERRORS = (Exception, SystemExit)
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

# (hook name, kind, spec class, the spec's catalog table)
_REGISTER_HOOKS = (
    ("register_tasks", "task", TaskSpec, "tasks"),
    ("register_tokenizers", "tokenizer", TokenizerSpec, "tokenizers"),
    ("register_models", "model", ModelSpec, "models"),
    ("register_importers", "importer", ImporterSpec, "importers"),
    ("register_studies", "study", StudySpec, "studies"),
)


def _strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").lower() not in ("", "0", "false", "no", "off")


def _report(info: PluginInfo, message: str, outcome: str = "skipped") -> None:
    """Record a plugin's failure; warn now, or (strict) leave it to :func:`_raise_if_strict`."""
    info.errors.append(message)
    _errors.append((info, f"plugin '{info.name}' ({info.distribution}): {message}"))
    if outcome == "skipped" and _infos.get(info.name) is info:  # loaded: keep its hooks unused
        _failed.add(info.name)
    if not _strict():
        then = f"; {outcome}" if outcome else ""
        print(
            f"zoo: warning: plugin '{info.name}' ({info.distribution}) {message}{then} "
            "(ZOO_STRICT_PLUGINS=1 makes this an error)",
            file=sys.stderr,
        )


def _raise_if_strict(catalog: Catalog) -> None:
    """Under ``ZOO_STRICT_PLUGINS=1``, the first plugin failure, every time the zoo is used."""
    if not _strict():
        return
    present = [id(info) for info in catalog.plugins.values()]
    for info, error in _errors:
        if id(info) in present:
            raise ZooError(error)


def _error_line(exc: BaseException) -> str:
    """An exception as one line (pluggy, for one, gives its reason on a second line)."""
    text = " ".join(line.strip() for line in f"{type(exc).__name__}: {exc}".splitlines())
    return text if len(text) <= 300 else text[:297] + "..."


def _check_spec(spec: Any, kind: str) -> None:
    """A clear error for a spec whose fields are not what the zoo reads (TypeError, ValueError)."""
    label = f"{kind} '{spec.name}'" if isinstance(spec.name, str) else f"a {kind}"
    if not isinstance(spec.name, str) or not NAME_PATTERN.fullmatch(spec.name):
        raise ValueError(
            f"{label}: a name is letters, digits, '.', '_' and '-', starting with a letter or "
            f"digit, not {spec.name!r}"
        )
    code_field = {
        "model": "model",
        "task": "task",
        "tokenizer": "tokenizer",
        "importer": "importer",
        "study": "study",
    }[kind]
    code = getattr(spec, code_field)
    if not isinstance(code, str) or ":" not in code:
        raise TypeError(f"{label}: {code_field} must be a 'module:attr' string, not {code!r}")
    for text_field in ("summary", "family", "paper"):
        if not isinstance(getattr(spec, text_field, ""), str):
            raise TypeError(f"{label}: {text_field} must be a string")
    if kind == "importer":
        for text_field in ("format", "model_type"):
            if not isinstance(getattr(spec, text_field), str) or not getattr(spec, text_field):
                raise TypeError(f"{label}: {text_field} must be a non-empty string")
        return
    if kind == "study":
        minutes = spec.cpu_minutes
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes < 0:
            raise TypeError(f"{label}: cpu_minutes must be a number >= 0, not {minutes!r}")
        if not isinstance(spec.cuda, str):
            raise TypeError(f"{label}: cuda must be a string")
    if kind != "model":
        return
    tasks = spec.tasks
    if (
        not isinstance(tasks, (tuple, list))
        or not tasks
        or not all(isinstance(t, str) and t for t in tasks)
    ):
        raise TypeError(f"{label}: tasks must be a tuple of one or more task names, not {tasks!r}")
    for dict_field in ("defaults", "train_defaults", "pretrained"):
        value = getattr(spec, dict_field)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise TypeError(f"{label}: {dict_field} must be a dict with string keys")
    for tag, weights in spec.pretrained.items():
        if not isinstance(weights, PretrainedWeights):
            raise TypeError(f"{label}: pretrained['{tag}'] must be a PretrainedWeights")
    if not isinstance(spec.width, str):
        raise TypeError(f"{label}: width must be the name of a config field (a string)")
    factors = spec.width_multiple_of
    if not isinstance(factors, (tuple, list)) or not all(
        (isinstance(f, str) and f) or (type(f) is int and f > 0) for f in factors
    ):
        raise TypeError(
            f"{label}: width_multiple_of must be a tuple of positive whole numbers and config "
            f"field names, not {factors!r}"
        )
    tied = spec.tied_widths
    if not isinstance(tied, (tuple, list)) or not all(isinstance(f, str) and f for f in tied):
        raise TypeError(f"{label}: tied_widths must be a tuple of config field names, not {tied!r}")
    if (factors or tied) and not spec.width:
        raise ValueError(f"{label}: width_multiple_of and tied_widths need a width field")


def load_plugins() -> None:
    """Register the built-in plugins and the installed entry points, once per process."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name, module in BUILTIN_PLUGINS.items():
        pm.register(importlib.import_module(module), name=name)
        _infos[name] = PluginInfo(name, "zoo-core", __version__, builtin=True)

    allow = os.environ.get("ZOO_LOAD_PLUGINS")
    wanted = None if allow is None else {n.strip() for n in allow.split(",") if n.strip()}
    seen: dict[str, PluginInfo] = {}

    def dist_name(ep: metadata.EntryPoint) -> str:
        dist = getattr(ep, "dist", None)
        return dist.name if dist else ep.value

    entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in sorted(entry_points, key=lambda e: (e.name, dist_name(e))):
        if wanted is not None and ep.name not in wanted:
            continue
        dist = getattr(ep, "dist", None)
        info = PluginInfo(ep.name, dist_name(ep), dist.version if dist else "unknown")
        if ep.name in seen:
            first = seen[ep.name]
            if first.distribution != info.distribution:  # not one distribution found twice
                _load_errors.append(info)
                _report(
                    info,
                    f"has the entry-point name '{ep.name}' of {first.distribution} "
                    f"{first.version}, which is loaded; rename one of the two entry points",
                )
            continue
        seen[ep.name] = info
        try:
            plugin = ep.load()
        except _PLUGIN_ERRORS as exc:
            _load_errors.append(info)
            _report(info, f"failed to import: {_error_line(exc)}")
            continue
        try:  # pluggy refuses hooks whose arguments the spec lacks, and a name taken twice
            pm.register(plugin, name=ep.name)
        except _PLUGIN_ERRORS as exc:
            _load_errors.append(info)
            _report(info, f"cannot be registered: {_error_line(exc)}")
            continue
        _infos[ep.name] = info
    for name in sorted((wanted or set()) - set(seen)):
        print(
            f"zoo: warning: ZOO_LOAD_PLUGINS names '{name}', which is not installed",
            file=sys.stderr,
        )


def plugin_info(name: str) -> PluginInfo:
    """What is known of a registered plugin (a fixture-registered object gets a bare record)."""
    if name not in _infos:
        _infos[name] = PluginInfo(name, "(registered at run time)", "")
    return _infos[name]


def _plugin_order() -> list[str]:
    names = [name for name, _ in pm.list_name_plugin() if name is not None]
    builtins = [n for n in BUILTIN_PLUGINS if n in names]
    return builtins + [n for n in names if n not in BUILTIN_PLUGINS]


def _collect(name: str, plugin: Any) -> dict[str, list[Any]] | None:
    """Call one plugin's registration hooks; its specs, or None if it raised or misregistered."""
    info = plugin_info(name)
    staged: dict[str, list[Any]] = {}
    for hook_name, kind, spec_class, table in _REGISTER_HOOKS:
        impls = [i for i in getattr(pm.hook, hook_name).get_hookimpls() if i.plugin is plugin]
        if not impls:
            continue
        found: list[Any] = []

        def register(spec: Any, _cls: type = spec_class, _found: list = found, _k: str = kind):
            if not isinstance(spec, _cls):
                raise TypeError(f"register() takes a {_cls.__name__}, got {type(spec).__name__}")
            _check_spec(spec, _k)
            if any(s.name == spec.name for s in _found):
                raise ValueError(f"registers {_k} '{spec.name}' twice")
            extra = {"tasks": tuple(spec.tasks)} if _k == "model" else {}
            _found.append(dataclasses.replace(spec, plugin=name, **extra))

        try:
            impls[0].function(register=register)
        except _PLUGIN_ERRORS as exc:
            _report(info, f"raised in {hook_name}: {_error_line(exc)}")
            return None
        staged[table] = found
    return staged


def get_catalog() -> Catalog:
    """The catalog of every model, task and tokenizer; built on first use.

    Under ``ZOO_STRICT_PLUGINS=1`` a plugin that failed is an error here, on every call.
    """
    global _catalog
    if _catalog is None:
        _catalog = _build_catalog()
    _raise_if_strict(_catalog)
    return _catalog


def _build_catalog() -> Catalog:
    load_plugins()
    catalog = Catalog()
    for name in _plugin_order():
        plugin = pm.get_plugin(name)
        info = plugin_info(name)
        info.models, info.tasks, info.tokenizers = [], [], []
        info.importers, info.studies = [], []
        catalog.plugins[name] = info
        staged = None if name in _failed else _collect(name, plugin)
        if staged is None:
            continue
        for _, kind, _, table_name in _REGISTER_HOOKS:
            table = getattr(catalog, table_name)
            for spec in staged.get(table_name, []):
                _add(catalog, info, kind, table, table_name, spec)
    for info in _load_errors:  # beside a loaded plugin of the same entry-point name, if any
        key = (
            info.name if info.name not in catalog.plugins else f"{info.name} ({info.distribution})"
        )
        catalog.plugins[key] = info
    return catalog


def _add(
    catalog: Catalog, info: PluginInfo, kind: str, table: dict, table_name: str, spec: Any
) -> None:
    """Put one spec in the catalog, unless another plugin has its name."""
    name = info.name
    if (kind, spec.name) in catalog.conflicts:
        owners = catalog.conflicts[(kind, spec.name)]
        catalog.conflicts[(kind, spec.name)] += (name,)
        _report(
            info,
            f"registers {kind} '{spec.name}', already registered by plugins "
            f"{' and '.join(repr(o) for o in owners)}; none can be used until only one is left",
            outcome="",
        )
        return
    if spec.name not in table:
        table[spec.name] = spec
        getattr(info, table_name).append(spec.name)
        return
    first = table[spec.name].plugin
    if plugin_info(first).builtin:  # the zoo's own names stay the zoo's
        _report(
            info,
            f"registers {kind} '{spec.name}', which is built into the zoo; the zoo's is used",
            outcome="",
        )
        return
    del table[spec.name]
    catalog.conflicts[(kind, spec.name)] = (first, name)
    getattr(catalog.plugins[first], table_name).remove(spec.name)
    _report(
        info,
        f"registers {kind} '{spec.name}', already registered by plugin '{first}' "
        f"({plugin_info(first).distribution}); neither can be used until one is uninstalled",
        outcome="",
    )


def _drop(catalog: Catalog, info: PluginInfo) -> None:
    """Take a plugin that failed after the catalog was built out of it."""
    for _, _, _, table_name in _REGISTER_HOOKS:
        table = getattr(catalog, table_name)
        for spec_name in getattr(info, table_name):
            table.pop(spec_name, None)
        setattr(info, table_name, [])


def add_commands(cli: Any) -> None:
    """Let every plugin add its subcommands to the root click group.

    A plugin that failed in its registration hooks adds none; one that raises here loses the
    commands it added and its models, tasks and tokenizers. A command name that is taken (by the
    zoo or by another plugin) is not replaced.
    """
    global _catalog
    if _catalog is None:
        _catalog = _build_catalog()
    catalog = _catalog
    owners = {command: "the zoo" for command in cli.commands}
    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        name = impl.plugin_name
        info = plugin_info(name)
        if name in _failed:
            continue
        before = dict(cli.commands)
        try:
            impl.function(cli=cli)
        except _PLUGIN_ERRORS as exc:
            cli.commands.clear()
            cli.commands.update(before)
            _report(info, f"raised in register_commands: {_error_line(exc)}")
            _drop(catalog, info)
            continue
        for command in list(cli.commands):
            if command in before and cli.commands[command] is not before[command]:
                cli.commands[command] = before[command]
                owner = owners[command]
                owner = owner if owner == "the zoo" else f"plugin '{owner}'"
                _report(
                    info,
                    f"registers command '{command}', which {owner} already has; not added",
                    outcome="",
                )
        info.commands = sorted(set(cli.commands) - set(before))
        owners.update({command: name for command in info.commands})
    _raise_if_strict(catalog)


def reset_catalog() -> None:
    """Forget the built catalog, so the next use rebuilds it (after registering a plugin)."""
    global _catalog
    _catalog = None
    _failed.intersection_update(name for name, _ in pm.list_name_plugin())
