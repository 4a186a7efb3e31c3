"""The core's modules import one way: each only from the layers below it (pyproject.toml's
import-linter contract), and an import inside a function says on its line why it is there."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ROOT / "zoo_core"


def test_the_layers_contract_is_kept():
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    proc = subprocess.run(
        [exe, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def _local_imports() -> list[tuple[str, int, str]]:
    """(file, line, text) of every import of a zoo_core module made inside a function."""
    found = []
    for path in sorted(CORE.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for inner in ast.walk(node):
                if isinstance(inner, ast.ImportFrom):
                    names = [inner.module or ""]
                elif isinstance(inner, ast.Import):
                    names = [alias.name for alias in inner.names]
                else:
                    continue
                if any(name.split(".")[0] == "zoo_core" for name in names):
                    rel = path.relative_to(ROOT).as_posix()
                    found.append((rel, inner.lineno, lines[inner.lineno - 1]))
    return sorted(set(found))


def test_the_scan_finds_local_imports():
    # The CLI keeps torch out of `zoo list` this way: a scan that finds none is broken.
    assert any(file.startswith("zoo_core/cli") for file, _, _ in _local_imports())


@pytest.mark.parametrize(
    "file, line, text", _local_imports(), ids=[f"{f}:{n}" for f, n, _ in _local_imports()]
)
def test_a_function_local_import_says_why(file, line, text):
    assert "#" in text, (
        f"{file}:{line} imports a zoo_core module inside a function without a reason on the "
        "line; import it at the top of the module, or say why not (keeping torch out of "
        "`zoo list`)"
    )
