"""The documentation cannot drift from the code: every hook, argument and spec field is in it."""

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from zoo_core import hookspecs, protocols
from zoo_core.registry import ModelSpec, StudySpec, TaskSpec, TokenizerSpec

ROOT = Path(__file__).resolve().parents[1]
HOOKS_DOC = ROOT / "docs" / "hooks.md"

HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if hasattr(fn, "zoo_spec")
)


def sections(path: Path) -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading."""
    out, current, in_code = {}, None, False
    for line in path.read_text().splitlines():
        in_code ^= line.startswith("```")
        heading = None if in_code else re.match(r"#+ (.*)", line)
        if heading:
            current = heading.group(1).strip()
            out[current] = ""
        elif current is not None:
            out[current] += line + "\n"
    return out


def test_the_hookspecs_are_found():
    assert {"register_models", "register_tasks", "register_tokenizers"} <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_and_argument_is_documented(hook):
    params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    titles = {re.sub(r"[`(].*", "", title.strip("`")): title for title in sections(HOOKS_DOC)}
    assert hook in titles, f"docs/hooks.md has no section for the hook {hook}"
    title = titles[hook]
    assert title == f"`{hook}({', '.join(params)})`", f"the heading of {hook} shows other arguments"
    body = sections(HOOKS_DOC)[title]
    for param in params:
        assert re.search(rf"\b{param}\b", body), f"{hook}: argument {param} is not described"
    for part in ("**When:**", "**What to pass:**", "**Example:**", f"def {hook}("):
        assert part in body, f"the section of {hook} lacks {part}"


@pytest.mark.parametrize("spec", [ModelSpec, TaskSpec, TokenizerSpec, StudySpec])
def test_every_spec_field_is_documented(spec):
    text = HOOKS_DOC.read_text()
    for field in dataclasses.fields(spec):
        assert f"| `{field.name}` |" in text, (
            f"docs/hooks.md does not describe {spec.__name__}.{field.name}"
        )


MODEL_SECTION = "What the zoo expects of a model"


def test_the_protocols_are_found():
    assert protocols.members(protocols.LanguageModel) == ["forward"]
    assert protocols.members(protocols.AdversarialPair) == [
        "discriminator",
        "generator",
        "latent_dim",
    ]
    assert "max_context" in protocols.OPTIONAL[protocols.LanguageModel]


@pytest.mark.parametrize("protocol", list(protocols.OPTIONAL), ids=lambda p: p.__name__)
def test_every_protocol_member_and_optional_attribute_is_documented(protocol):
    assert MODEL_SECTION in sections(HOOKS_DOC), f"docs/hooks.md has no section '{MODEL_SECTION}'"
    body = sections(HOOKS_DOC)[MODEL_SECTION]
    rows = {
        line.split("|")[1].strip(): line for line in body.splitlines() if line.startswith("| `")
    }
    assert f"`{protocol.__name__}`" in rows, f"no row for the kind {protocol.__name__}"
    for member in protocols.members(protocol):
        assert f"`{member}" in rows[f"`{protocol.__name__}`"], (
            f"the row of {protocol.__name__} does not describe its member {member}"
        )
    for name in protocols.OPTIONAL[protocol]:
        assert f"`{name}`" in rows, f"no row for the optional attribute {name}"
        kinds = rows[f"`{name}`"].split("|")[2]
        assert f"`{protocol.__name__}`" in kinds, f"the row of {name} omits {protocol.__name__}"
        # One accessor per attribute, so the name and its default live in protocols.py alone.
        assert callable(getattr(protocols, name)), f"protocols.py has no accessor {name}()"


def test_contributing_has_its_sections():
    titles = set(sections(ROOT / "CONTRIBUTING.md"))
    for title in (
        "Set-up",
        "Tests",
        "Lint",
        "Layout of the repository",
        "Writing a plugin",
        "How a task plugs into the Trainer",
    ):
        assert title in titles, f"CONTRIBUTING.md has no section '{title}'"
