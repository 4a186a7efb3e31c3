"""The plugin manager: built-in plugins, entry points of group ``zoo``, and isolation of failures.

A plugin that fails to import or raises in a hook is reported once on stderr and skipped, so the
rest of the zoo keeps working. ``ZOO_STRICT_PLUGINS=1`` turns every such report into an error;
``ZOO_LOAD_PLUGINS=a,b`` loads only the named entry points (set but empty: built-ins only).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from importlib import metadata
from typing import Any

import pluggy

from zoo_core import hookspecs
from zoo_core._version import __version__
from zoo_core.errors import ZooError
from zoo_core.registry import Catalog, ModelSpec, PluginInfo, TaskSpec, TokenizerSpec

ENTRY_POINT_GROUP = "zoo"
BUILTIN_PLUGINS = {"builtin-tasks": "zoo_core.tasks", "builtin-tokenizers": "zoo_core.tokenizers"}

hookimpl = pluggy.HookimplMarker("zoo")

pm = pluggy.PluginManager("zoo")
pm.add_hookspecs(hookspecs)

_infos: dict[str, PluginInfo] = {}
_load_errors: list[PluginInfo] = []  # plugins that never made it into pm
_loaded = False
_catalog: Catalog | None = None

# (hook name, kind, spec class, the spec's catalog table)
_REGISTER_HOOKS = (
    ("register_tasks", "task", TaskSpec, "tasks"),
    ("register_tokenizers", "tokenizer", TokenizerSpec, "tokenizers"),
    ("register_models", "model", ModelSpec, "models"),
)


def _strict() -> bool:
    return os.environ.get("ZOO_STRICT_PLUGINS", "").lower() not in ("", "0", "false", "no")


def _report(info: PluginInfo, message: str) -> None:
    info.errors.append(message)
    if _strict():
        raise ZooError(f"plugin '{info.name}' ({info.distribution}): {message}")
    print(
        f"zoo: warning: plugin '{info.name}' ({info.distribution}) {message}; skipped "
        "(ZOO_STRICT_PLUGINS=1 makes this an error)",
        file=sys.stderr,
    )


def _error_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


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
    seen: set[str] = set()
    for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in seen or (wanted is not None and ep.name not in wanted):
            continue
        seen.add(ep.name)
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            ep.name, dist.name if dist else ep.value, dist.version if dist else "unknown"
        )
        try:
            plugin = ep.load()
        except Exception as exc:
            _load_errors.append(info)
            _report(info, f"failed to import: {_error_line(exc)}")
            continue
        try:  # pluggy refuses hooks whose arguments the spec lacks, and a name taken twice
            pm.register(plugin, name=ep.name)
        except Exception as exc:
            _load_errors.append(info)
            _report(info, f"cannot be registered: {_error_line(exc)}")
            continue
        _infos[ep.name] = info
    for name in sorted((wanted or set()) - seen):
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
            if not spec.name or not isinstance(spec.name, str):
                raise ValueError(f"a {_k} needs a non-empty name")
            _found.append(dataclasses.replace(spec, plugin=name))

        try:
            impls[0].function(register=register)
        except Exception as exc:
            _report(info, f"raised in {hook_name}: {_error_line(exc)}")
            return None
        staged[table] = found
    return staged


def get_catalog() -> Catalog:
    """The catalog of every model, task and tokenizer; built on first use."""
    global _catalog
    if _catalog is not None:
        return _catalog
    load_plugins()
    catalog = Catalog()
    for info in _load_errors:
        catalog.plugins[info.name] = info
    for name in _plugin_order():
        plugin = pm.get_plugin(name)
        info = plugin_info(name)
        info.models, info.tasks, info.tokenizers = [], [], []
        catalog.plugins[name] = info
        staged = _collect(name, plugin)
        if staged is None:
            continue
        for _, kind, _, table_name in _REGISTER_HOOKS:
            table = getattr(catalog, table_name)
            for spec in staged.get(table_name, []):
                if (kind, spec.name) in catalog.conflicts:
                    catalog.conflicts[(kind, spec.name)] += (name,)
                    continue
                if spec.name in table:
                    first = table.pop(spec.name).plugin
                    catalog.conflicts[(kind, spec.name)] = (first, name)
                    getattr(catalog.plugins[first], table_name).remove(spec.name)
                    _report(
                        info,
                        f"registers {kind} '{spec.name}', already registered by "
                        f"plugin '{first}' ({plugin_info(first).distribution}); neither "
                        "can be used until one is uninstalled",
                    )
                    continue
                table[spec.name] = spec
                getattr(info, table_name).append(spec.name)
    _catalog = catalog
    return catalog


def add_commands(cli: Any) -> None:
    """Let every plugin add its subcommands to the root click group."""
    load_plugins()
    for impl in reversed(pm.hook.register_commands.get_hookimpls()):
        info = plugin_info(impl.plugin_name)
        before = set(cli.commands)
        try:
            impl.function(cli=cli)
        except Exception as exc:
            _report(info, f"raised in register_commands: {_error_line(exc)}")
        info.commands = sorted(set(cli.commands) - before)


def reset_catalog() -> None:
    """Forget the built catalog, so the next use rebuilds it (after registering a plugin)."""
    global _catalog
    _catalog = None
