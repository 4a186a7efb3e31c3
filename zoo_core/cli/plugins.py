"""Plugins: ``zoo plugins`` lists them; ``new``, ``install``, ``uninstall`` and ``check``."""

from __future__ import annotations

import click

from zoo_core.catalog import unloaded_plugins
from zoo_core.cli._output import fail, print_json, table
from zoo_core.plugins import get_catalog
from zoo_core.scaffold import (
    PipError,
    check_plugins,
    new_plugin,
    package_name,
    pip,
    uninstall_args,
    zoo_entry_points,
)


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """Installed plugins, their versions, what they register and load errors."""
    if ctx.invoked_subcommand is not None:
        return
    infos, skipped = list(get_catalog().plugins.values()), unloaded_plugins()
    if as_json:
        print_json(
            [{**vars(i), "loaded": True} for i in infos]
            + [{**vars(i), "loaded": False} for i in skipped]
        )
        return
    rows = [
        [i.name, i.distribution, i.version, "-", "not loaded (ZOO_LOAD_PLUGINS)"] for i in skipped
    ]
    for i in infos:
        registers = "; ".join(
            f"{kind}: {', '.join(names)}"
            for kind, names in (
                ("models", i.models),
                ("tasks", i.tasks),
                ("tokenizers", i.tokenizers),
                ("importers", i.importers),
                ("studies", i.studies),
                ("commands", i.commands),
            )
            if names
        )
        rows.append(
            [i.name, i.distribution, i.version, registers or "-", "; ".join(i.errors) or "ok"]
        )
    rows.sort(key=lambda row: (row[1] != "zoo-core", row[0]))  # built-ins first
    table(["plugin", "distribution", "version", "registers", "status"], rows)


@plugins.command("new")
@click.argument("name")
@click.option(
    "--dir", "folder", type=click.Path(), help="Folder to write into (default: ./zoo-NAME)."
)
def plugins_new(name: str, folder: str | None) -> None:
    """Write a new plugin package zoo-NAME: a model, its hooks, tests and a README."""
    path = new_plugin(name, folder)
    click.echo(f"wrote the plugin zoo-{name} (package {package_name(name)}) to {path}; next:")
    shown = path if path.is_absolute() else f"./{path}"  # pip reads a bare word as a project name
    click.echo(f"  zoo plugins install -e {shown}")
    click.echo(f"  zoo list '{name}*' && zoo train {name} && zoo plugins check {name}")
    click.echo(f"  python -m pytest {shown}/tests")


def _run_pip(command: str, args: tuple[str, ...]) -> None:
    """pip ``command`` ``args``, then which zoo plugins it installed or uninstalled."""
    before = zoo_entry_points()
    try:
        pip(command, list(args))
    except PipError as exc:
        fail(str(exc), exc.returncode)
    after = zoo_entry_points()
    for key in sorted(after):
        if before.get(key) != after[key]:
            click.echo(f"plugin '{key[0]}' ({after[key]}) installed")
            others = [v for (name, _), v in after.items() if name == key[0] and v != after[key]]
            if others:
                click.echo(
                    f"zoo: warning: {', '.join(others)} has a plugin named '{key[0]}' too; "
                    "only one of them loads: uninstall one, or rename its entry point",
                    err=True,
                )
    for key in sorted(set(before) - set(after)):
        click.echo(f"plugin '{key[0]}' ({before[key]}) uninstalled")


_PIP_ARGS = {"ignore_unknown_options": True}


@plugins.command("install", context_settings=_PIP_ARGS)
@click.argument("names", nargs=-1, type=click.UNPROCESSED)
def plugins_install(names: tuple[str, ...]) -> None:
    """pip install plugins (names, paths, wheels; pip's options pass through, e.g. -e, -U)
    into the environment the zoo runs in."""
    _run_pip("install", names)


@plugins.command("uninstall", context_settings=_PIP_ARGS)
@click.argument("names", nargs=-1, type=click.UNPROCESSED)
def plugins_uninstall(names: tuple[str, ...]) -> None:
    """pip uninstall plugins (their distributions, zoo-NAME, or plugin names) from the zoo's
    environment, without asking."""
    _run_pip("uninstall", tuple(uninstall_args(list(names))))


@plugins.command("check")
@click.argument("name", required=False)
def plugins_check(name: str | None) -> None:
    """Contract checks (forward, backward, save/load, metadata) of every model a plugin registers.

    NAME is a plugin or distribution name; without it, every plugin is checked.
    """
    reports = check_plugins(name)
    passed = failed = 0
    for report in reports:
        status = "pass" if report.ok else "FAIL"
        click.echo(f"{report.plugin} ({report.distribution} {report.version}): {status}")
        for error in report.errors:
            click.echo(f"  FAIL {error}")
        for model, results in report.models.items():
            bad = [r for r in results if not r.ok]
            failed, passed = failed + bool(bad), passed + (not bad)
            click.echo(
                f"  {'FAIL' if bad else 'pass'} {model}"
                + ("" if bad else f" ({len(results)} checks)")
            )
            for r in bad:
                click.echo(f"       {r.check}: {r.message.splitlines()[0] if r.message else ''}")
    broken = sum(bool(r.errors) for r in reports)
    click.echo(f"{passed} models passed, {failed} failed; {broken} plugins with errors")
    if failed or broken:
        click.get_current_context().exit(1)


COMMANDS = (plugins,)
