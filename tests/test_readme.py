"""The documentation's commands and links stay true: every `zoo ...` line names a subcommand
that exists and options it accepts, every relative link reaches a file, and the README stays
short enough to read."""

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import click
import pytest
from click.testing import CliRunner

from zoo_core.cli import cli
from zoo_core.plugins import add_commands

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_LIMIT = 12_000
DOCS = sorted(
    {
        README,
        *ROOT.glob("docs/*.md"),
        *ROOT.glob("plugins/*/README.md"),
        *ROOT.glob("plugins/*/docs/*.md"),
    }
)
SHELL_LANGUAGES = {"bash", "sh", "shell", "console"}
CHAIN = {";", "&&", "||", "|", "&"}
REDIRECT = {"<", ">", ">>", "&>"}
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


class Option(NamedTuple):
    """An --option of a documented command, and the (sub)command it is given to."""

    path: list[str]
    command: click.Command
    name: str


class Command(NamedTuple):
    """One `zoo` invocation found in a shell block: where it is and its arguments after `zoo`."""

    where: str
    line: str
    args: list[str]


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _shell_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, command line) of each fenced shell block, continuations joined."""
    language, pending, start = None, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fence = re.match(r"\s*```+\s*(\S*)", line)
        if fence:
            language = None if language is not None else fence.group(1).lower()
            continue
        if language not in SHELL_LANGUAGES:
            continue
        text = line.strip()
        if language == "console":
            if not pending and not text.startswith("$ "):
                continue  # output, not a command
        if not pending:
            start = number
            text = text.removeprefix("$ ")
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        yield start, pending + text
        pending = ""


def _invocations(line: str) -> Iterator[list[str]]:
    """The arguments after `zoo` of each command a shell line chains with ; && || or |."""
    line = re.sub(r"<([\w.-]+)>", r"\1", line)  # runs/<run>: a placeholder, not a redirect
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True  # '#' still starts a comment
    words: list[str] = []
    redirect = False
    for token in [*lexer, ";"]:
        if redirect:  # the file of < or >
            redirect = False
        elif token in REDIRECT:
            redirect = True
        elif token not in CHAIN:
            words.append(token)
        else:
            while words and ENV_ASSIGNMENT.match(words[0]):
                words.pop(0)  # OMP_NUM_THREADS=1 zoo ...
            if words[:1] == ["zoo"]:
                yield words[1:]
            for i in range(len(words) - 1):
                if words[i : i + 2] == ["-m", "zoo_core"]:  # python -m zoo_core, torchrun ...
                    yield words[i + 2 :]
            words = []


def _commands() -> list[Command]:
    found = []
    for path in DOCS:
        for number, line in _shell_lines(path):
            for args in _invocations(line):
                found.append(Command(f"{_rel(path)}:{number}", line, args))
    return found


COMMANDS = _commands()


@pytest.fixture(scope="module")
def root() -> Iterator[click.Group]:
    """The root group with the subcommands plugins add, as the `zoo` script builds it."""
    before = dict(cli.commands)
    add_commands(cli)
    try:
        yield cli
    finally:
        cli.commands.clear()
        cli.commands.update(before)


def _resolve(group: click.Group, args: list[str]) -> tuple[list[str], list[Option]]:
    """The subcommand path args name, and each --option with the command it is given to.

    Descends into subcommands while the words name them; a word that is not an option and not
    a subcommand of a group fails the test, as click would refuse it.
    """
    path: list[str] = []
    command: click.Command = group
    options = []
    descending = True
    for word in args:
        word = word.strip("[]")  # [--json]: an optional option, as usage lines write it
        if word.startswith("--"):
            options.append(Option(list(path), command, word.split("=", 1)[0]))
        elif word.startswith("-") or not descending:
            continue
        elif isinstance(command, click.Group):
            sub = command.get_command(click.Context(command), word)
            if sub is None:
                takes_arguments = any(isinstance(p, click.Argument) for p in command.params)
                assert takes_arguments, f"`zoo {' '.join(path)}` has no subcommand {word!r}"
                descending = False
            else:
                path.append(word)
                command = sub
        else:
            descending = False  # the first argument of a command
    return path, options


def _accepted(command: click.Command) -> set[str]:
    ctx = click.Context(command)
    names = set(command.get_help_option_names(ctx))
    for param in command.params:
        if isinstance(param, click.Option):
            names.update(param.opts)
            names.update(param.secondary_opts)
    return names


def test_the_docs_have_commands():
    assert len(COMMANDS) > 30
    assert any(c.args[:1] == ["train"] for c in COMMANDS)


@pytest.mark.parametrize(
    "command", COMMANDS, ids=[f"{c.where} zoo {' '.join(c.args)}" for c in COMMANDS]
)
def test_a_documented_command_exists_and_takes_its_options(root, command):
    path, options = _resolve(root, command.args)
    assert path or options, f"{command.where}: `{command.line}` names no subcommand"
    result = CliRunner().invoke(root, [*path, "--help"], prog_name="zoo")
    assert result.exit_code == 0, (
        f"{command.where}: `zoo {' '.join(path)} --help` failed: {result.output}"
    )
    for option in options:
        if option.command.context_settings.get("ignore_unknown_options"):
            continue  # it passes options on (to pip)
        accepted = _accepted(option.command)
        assert option.name in accepted, (
            f"{command.where}: `zoo {' '.join(option.path)}` has no option {option.name} "
            f"(it takes {', '.join(sorted(accepted))}): `{command.line}`"
        )


def test_the_readme_is_short():
    size = len(README.read_text())
    assert size <= README_LIMIT, f"README.md is {size:,} characters, more than {README_LIMIT:,}"


def _slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return {_slug(m.group(1)) for m in re.finditer(r"^#+ (.*)$", text, flags=re.M)}


def _links(path: Path) -> Iterator[tuple[str, str]]:
    """(link target, the text around it) of every relative link outside code."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    pattern = r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)"
    for match in re.finditer(pattern, text, flags=re.M):
        target = match.group(1) or match.group(2)
        if not re.match(r"[a-z][a-z0-9+.-]*:", target, flags=re.I):  # http:, mailto:, ...
            yield target, match.group(0)


LINKS = [(path, target) for path in DOCS for target, _ in _links(path)]


def test_the_docs_have_links():
    assert len(LINKS) > 10


@pytest.mark.parametrize(("path", "target"), LINKS, ids=[f"{_rel(p)} -> {t}" for p, t in LINKS])
def test_a_relative_link_reaches_a_file(path, target):
    file, _, anchor = target.partition("#")
    destination = (path.parent / file).resolve() if file else path
    assert destination.exists(), f"{_rel(path)} links to {target}, which does not exist"
    if anchor and destination.suffix == ".md":
        assert anchor in _anchors(destination), (
            f"{_rel(path)} links to {target}, but {file or _rel(path)} has no heading #{anchor}"
        )
