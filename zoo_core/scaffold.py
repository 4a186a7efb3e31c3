"""Third-party plugins: write a new plugin package, install and uninstall plugins with the zoo's own
pip, and run the contract checks of :mod:`zoo_core.testing` over everything a plugin registers.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from string import Template

from zoo_core import artifacts, hookspecs
from zoo_core._redact import redact
from zoo_core._version import __version__
from zoo_core.catalog import left_out_note
from zoo_core.errors import ZooError
from zoo_core.plugins import get_catalog, pm
from zoo_core.registry import resolve
from zoo_core.testing import CheckResult, run_checks

NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_TEMPLATES = Path(__file__).parent / "templates" / "plugin"
# Names whose distribution `zoo-NAME` the zoo itself uses.
_RESERVED = {"core"}


# -- a new plugin ----------------------------------------------------------------------------------
def check_name(name: str) -> None:
    """Raise a ZooError unless ``name`` can name a plugin (lowercase words joined by dashes)."""
    if not NAME_PATTERN.fullmatch(name) or len(name) > 40:
        raise ZooError(
            f"'{name}' cannot name a plugin: use lowercase letters, digits and single dashes, "
            "starting with a letter (at most 40 characters), e.g. 'gru' or 'tiny-mlp'"
        )
    if name in _RESERVED:
        raise ZooError(f"'{name}' is reserved: the distribution zoo-{name} is the zoo itself")


def package_name(name: str) -> str:
    """The import name of plugin ``name``'s package: ``my-model`` -> ``zoo_my_model``."""
    return "zoo_" + name.replace("-", "_")


def _values(name: str) -> dict[str, str]:
    """What the templates fill in for plugin ``name``."""
    prefix = "".join(part.capitalize() for part in name.split("-"))
    return {
        "name": name,
        "dist": f"zoo-{name}",
        "package": package_name(name),
        "cls": f"{prefix}LanguageModel",
        "config": f"{prefix}Config",
        "core_version": __version__,
    }


def _files(package: str) -> dict[str, str]:
    """Each file of a new plugin -> the template it is written from."""
    return {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"{package}/__init__.py": "__init__.py.tmpl",
        f"{package}/model.py": "model.py.tmpl",
        f"{package}/study.py": "study.py.tmpl",
        # A file name of its own, so the tests of several plugins can run in one pytest session.
        f"tests/test_{package}.py": "test.py.tmpl",
    }


def new_plugin(name: str, folder: str | Path | None = None) -> Path:
    """Write a complete plugin package ``zoo-NAME`` into ``folder`` (default ``./zoo-NAME``).

    The folder must not exist or be empty. Nothing is left behind when writing fails.
    """
    check_name(name)
    target = Path(folder) if folder is not None else Path(f"zoo-{name}")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ZooError(f"'{target}' already exists and is not empty; choose another --dir")
    try:
        installed = metadata.distribution(f"zoo-{name}")
    except metadata.PackageNotFoundError:
        installed = None
    if installed is not None:
        raise ZooError(
            f"a distribution zoo-{name} is already installed ({installed.version}); choose another "
            f"name, or uninstall it first (zoo plugins uninstall zoo-{name})"
        )
    taken = [v for (ep_name, _), v in zoo_entry_points().items() if ep_name == name]
    if taken:
        raise ZooError(
            f"the plugin name '{name}' is already taken by {taken[0]}; two plugins of one name "
            "cannot both load, so choose another name"
        )
    _check_model_names_free(name)
    values = _values(name)
    rendered = {
        path: Template((_TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
        for path, template in _files(values["package"]).items()
    }
    try:
        with artifacts.new_folder(target) as staging:  # all or nothing
            for path, text in rendered.items():
                (staging / path).parent.mkdir(parents=True, exist_ok=True)
                (staging / path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ZooError(f"cannot write the plugin into '{target}': {exc.strerror}") from None
    return target


def _check_model_names_free(name: str) -> None:
    catalog = get_catalog()
    for model in (name, f"{name}-large"):
        if model in catalog.models:
            raise ZooError(
                f"a model named '{model}' is already registered by plugin "
                f"'{catalog.models[model].plugin}'; choose another name"
            )


# -- pip -------------------------------------------------------------------------------------------
class PipError(ZooError):
    """pip failed; ``returncode`` is its exit status."""

    def __init__(self, message: str, returncode: int):
        super().__init__(message)
        self.returncode = returncode


def zoo_entry_points() -> dict[tuple[str, str], str]:
    """Installed plugins: (entry-point name in group ``zoo``, distribution) ->
    ``"distribution version"``."""
    out = {}
    for ep in metadata.entry_points(group="zoo"):
        dist = getattr(ep, "dist", None)
        key = (ep.name, _normalise(dist.name) if dist else ep.value)
        out.setdefault(key, f"{dist.name} {dist.version}" if dist else ep.value)
    return out


def _normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503): zoo_Foo.bar -> zoo-foo-bar."""
    return re.sub(r"[-_.]+", "-", name).lower()


# The options of `pip uninstall` that name nothing to remove, as flags only: pip also reads a
# prefix of a long option (--requireme=) and a run of short ones (-yrFILE), so anything else
# could carry a requirements file whose names would go to pip unchecked.
_UNINSTALL_OPTIONS = {"--yes", "--quiet", "--verbose"}
_UNINSTALL_FLAGS = re.compile(r"-[yqv]+")


def uninstall_args(args: list[str]) -> list[str]:
    """``args`` for ``pip uninstall``, with each name checked to be an installed plugin's
    distribution first. A plugin's own name (``lstm``) stands for its distribution (``zoo-lstm``).
    The zoo itself and anything that is not a plugin are refused, so nothing else is removed;
    of pip's options only ``-y/--yes``, ``-q/--quiet`` and ``-v/--verbose`` pass."""
    for arg in args:
        if arg.startswith("-") and not (
            arg in _UNINSTALL_OPTIONS or _UNINSTALL_FLAGS.fullmatch(arg)
        ):
            raise ZooError(
                f"zoo plugins uninstall takes plugin names, not a requirements file or other pip "
                f"options ('{arg}'): of pip's options only -y/--yes, -q/--quiet and -v/--verbose "
                "pass; name the plugins (`zoo plugins` lists them)"
            )
    if not any(not a.startswith("-") for a in args):
        raise ZooError("name the plugins to uninstall (zoo-NAME); `zoo plugins` lists them")
    plugins: dict[str, str] = {"zoo-core": "zoo-core"}  # normalised name -> distribution
    for info in get_catalog().plugins.values():  # the built-in ones belong to zoo-core
        plugins.setdefault(_normalise(info.name), info.distribution or "zoo-core")
    for ep in metadata.entry_points(group="zoo"):  # loaded or not
        dist = getattr(ep, "dist", None)
        if dist is not None:
            plugins[_normalise(dist.name)] = dist.name
            plugins.setdefault(_normalise(ep.name), dist.name)
    out = []
    for arg in args:
        if arg.startswith("-"):  # pip's options
            out.append(arg)
            continue
        dist = plugins.get(_normalise(arg))
        if dist is not None and _normalise(dist) == "zoo-core":
            what = "" if _normalise(arg) == "zoo-core" else " built into zoo-core,"
            raise ZooError(
                f"'{arg}' is{what} the zoo itself, not a plugin; `pip uninstall zoo-core` "
                "removes the zoo"
            )
        if dist is None:
            raise ZooError(
                f"no installed plugin is named '{arg}'; `zoo plugins` lists them and their "
                "distributions. Nothing was uninstalled"
            )
        out.append(dist)
    return out


def pip(command: str, args: list[str]) -> None:
    """Run ``python -m pip COMMAND ARGS`` with the interpreter the zoo runs in.

    So plugins land in the environment the zoo runs from, whichever ``pip`` is first on PATH.
    ``uninstall`` does not ask for confirmation. A PipError carries pip's exit status.
    """
    if not args:
        raise ZooError(f"name what to {command}: a distribution (zoo-NAME), a path or a wheel")
    if importlib.util.find_spec("pip") is None:
        raise ZooError(
            f"pip is not installed in the zoo's environment ({sys.executable}); "
            f"install it with: {sys.executable} -m ensurepip"
        )
    yes = ["-y"] if command == "uninstall" and not {"-y", "--yes"} & set(args) else []
    cmd = [sys.executable, "-m", "pip", command, *yes, *args]
    returncode = subprocess.call(cmd)
    if returncode != 0:
        raise PipError(  # an --index-url may carry a token; pip hides it in its own output
            redact(
                f"pip {command} failed with exit code {returncode} (its messages are above); "
                f"the command was: {' '.join(cmd)}"
            ),
            returncode,
        )


# -- contract checks per plugin --------------------------------------------------------------------
@dataclass
class PluginReport:
    """The checks of one plugin: its own errors, and the contract checks of each model."""

    plugin: str
    distribution: str
    version: str
    errors: list[str] = field(default_factory=list)
    models: dict[str, list] = field(default_factory=dict)  # name -> [testing.CheckResult]

    @property
    def ok(self) -> bool:
        return not self.errors and all(r.ok for rs in self.models.values() for r in rs)


def _unknown_hooks(plugin: object) -> list[str]:
    """Hook implementations of a plugin that name no hook of the zoo (a typo is silent otherwise)."""
    known = {n for n in dir(hookspecs) if hasattr(getattr(hookspecs, n), "zoo_spec")}
    found = []
    for attr in dir(plugin):
        opts = getattr(getattr(plugin, attr, None), "zoo_impl", None)
        if isinstance(opts, dict):
            hook = opts.get("specname") or attr
            if hook not in known:
                found.append(
                    f"implements '{hook}', which is not a zoo hook (hooks: {', '.join(sorted(known))})"
                )
    return found


def check_plugins(name: str | None = None) -> list[PluginReport]:
    """Check one plugin (by plugin or distribution name) or every plugin: load errors, hook names,
    the code its tasks and tokenizers name, and every contract check of every model it registers.
    """
    catalog = get_catalog()
    infos = list(catalog.plugins.values())
    if name is not None:
        chosen = [i for i in infos if name in (i.name, i.distribution)]
        if not chosen:
            import difflib

            names = sorted({i.name for i in infos} | {i.distribution for i in infos})
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
            hint = f" Did you mean: {', '.join(close)}?" if close else ""
            note = left_out_note(name)
            if note:
                raise ZooError(f"plugin '{name}' is not loaded{note}")
            raise ZooError(f"no plugin named '{name}' is installed.{hint} See `zoo plugins`.")
        infos = chosen
    reports = []
    for info in infos:
        report = PluginReport(info.name, info.distribution, info.version, list(info.errors))
        plugin = pm.get_plugin(info.name)
        if plugin is not None:
            report.errors += _unknown_hooks(plugin)
        for kind, names in (
            ("task", info.tasks),
            ("tokenizer", info.tokenizers),
            ("importer", info.importers),
        ):
            for spec_name in names:
                spec = catalog.table(kind)[spec_name]
                try:
                    resolve(getattr(spec, kind), f"{kind} '{spec_name}' of plugin '{info.name}'")
                except Exception as exc:
                    report.errors.append(f"{type(exc).__name__}: {exc}")
        adds_commands = any(
            impl.plugin_name == info.name for impl in pm.hook.register_commands.get_hookimpls()
        )
        registered = info.models or info.tasks or info.tokenizers or info.importers or adds_commands
        if not registered and not report.errors and not info.builtin:
            report.errors.append(
                "registers nothing: are its hook functions decorated with @zoo_core.hookimpl, "
                "and do they call register() rather than return their specs?"
            )
        for model in info.models:
            try:
                report.models[model] = run_checks(model)
            except Exception as exc:  # a check kit failure is reported like a failed check
                report.models[model] = [CheckResult(model, "checks", False, f"{exc!r}")]
        reports.append(report)
    return reports
