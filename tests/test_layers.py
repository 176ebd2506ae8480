"""The layering of docs/architecture.md, enforced: import-linter's contracts (pyproject.toml
``[tool.importlinter]``), the imports import-linter cannot see (module paths in strings,
benchmarks/ outside the package) and thin Kedro node modules."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: import-linter depends on tomli there
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "crossrec"
NODES_MAX_LINES = 150
#: a library module longer than this holds more than one idea: split it by concept
MODULE_MAX_LINES = 500
#: nodes.py modules over the limit, on their way into the library. Each is
#: an expected failure; strict, so the entry must go as soon as its module is thin.
NODES_OVER_LIMIT: set[str] = set()
#: (benchmark, module) pairs allowed to import crossrec.pipelines: ingest has no library entry
#: point yet.
BENCHMARK_PIPELINE_IMPORTS: set[tuple[str, str]] = set()


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_import_contracts_hold() -> None:
    """``lint-imports`` on this checkout's sources; a broken contract fails with its report."""
    if importlib.util.find_spec("importlinter") is None:
        pytest.fail("import-linter is not installed: pip install -e '.[dev]'")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *sys.path])}
    cmd = [
        sys.executable,
        "-c",
        "import sys; from importlinter.cli import lint_imports_command; "
        "sys.exit(lint_imports_command())",
        "--no-logo",
        "--no-cache",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"lint-imports failed:\n{proc.stdout}\n{proc.stderr}"
    assert f"{len(_contracts())} kept, 0 broken" in proc.stdout, proc.stdout


def test_every_package_is_in_a_layer() -> None:
    """A new top-level package or module must be placed in the layers contract, not escape it."""
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    placed = {
        name.strip()
        for layer in layers["layers"]
        for name in layer.replace("|", ":").split(":")
        if name.strip()
    }
    present = {
        f"crossrec.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.name != "__init__.py")
    }
    assert present - placed == set(), f"add to [tool.importlinter] layers: {present - placed}"
    assert placed - present == set(), f"layers name missing modules: {placed - present}"


def test_block_schemas_point_at_the_library() -> None:
    """crossrec.config.BLOCKS imports by string (invisible to import-linter): each must
    resolve, and schemas belong to the library, not to crossrec.pipelines."""
    from crossrec.config import BLOCKS

    for block, target in BLOCKS.items():
        module, _, name = target.partition(":")
        assert not module.startswith("crossrec.pipelines"), f"{block}: {target}"
        assert hasattr(importlib.import_module(module), name), f"{block}: {target} not found"


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module)
    return modules


def test_benchmarks_use_the_library_not_pipeline_nodes() -> None:
    found = {
        (path.name, module)
        for path in sorted((ROOT / "benchmarks").glob("*.py"))
        for module in _imported_modules(path)
        if module == "crossrec.pipelines" or module.startswith("crossrec.pipelines.")
    }
    assert found <= BENCHMARK_PIPELINE_IMPORTS, found - BENCHMARK_PIPELINE_IMPORTS


def _node_modules() -> list:
    params = []
    for path in sorted(PACKAGE.glob("pipelines/*/nodes.py")):
        pipeline = path.parent.name
        marks = ()
        if pipeline in NODES_OVER_LIMIT:
            lines = len(path.read_text().splitlines())
            reason = (
                f"{pipeline}/nodes.py has {lines} lines > {NODES_MAX_LINES}: being thinned "
                "(NODES_OVER_LIMIT in tests/test_layers.py)"
            )
            marks = (pytest.mark.xfail(reason=reason, strict=True),)
        params.append(pytest.param(path, id=pipeline, marks=marks))
    return params


@pytest.mark.parametrize("path", _node_modules())
def test_node_modules_are_thin(path: Path) -> None:
    """Kedro nodes parse parameters and call the library; logic lives in the library."""
    lines = len(path.read_text().splitlines())
    assert lines <= NODES_MAX_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines (limit {NODES_MAX_LINES}): "
        "move the logic into the library package it belongs to"
    )


#: docs/architecture.md "How to add ..." section -> the test that runs its code
HOW_TO_TESTS = {
    "a fusion strategy": "tests/models/test_registries.py",
    "a loss": "tests/models/test_registries.py",
    "a user tower": "tests/models/test_registries.py",
    "a baseline": "tests/evaluation/test_registries.py",
    "an adapter": "tests/data/test_adapter_example.py",
}


def _how_to_blocks() -> dict[str, str]:
    """Python code of each ``### <title> (...)`` subsection of "How to add ...", by title."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("\n## How to add ...\n", 1)[1].split("\n## ", 1)[0]
    blocks = {}
    for part in section.split("\n### ")[1:]:
        title = part.split("\n", 1)[0].split(" (")[0].strip()
        blocks[title] = "\n".join(
            chunk.split("```", 1)[0] for chunk in part.split("```python\n")[1:]
        )
    return blocks


def _definitions(source: str) -> dict[str, str]:
    return {
        node.name: ast.dump(node)
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }


@pytest.mark.parametrize("title", sorted(HOW_TO_TESTS))
def test_how_to_examples_are_the_tested_code(title: str) -> None:
    """Each docs example defines exactly what its test registers and runs, and its imports
    resolve, so the docs cannot drift from working code."""
    block = _how_to_blocks()[title]
    documented = _definitions(block)
    tested = _definitions((ROOT / HOW_TO_TESTS[title]).read_text())
    assert documented, f"docs/architecture.md 'How to add {title}' has no python definition"
    for name, tree in documented.items():
        assert tested.get(name) == tree, (
            f"docs/architecture.md 'How to add {title}': {name} differs from {HOW_TO_TESTS[title]}"
        )
    for node in ast.parse(block).body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            exec(compile(ast.Module([node], []), "docs/architecture.md", "exec"), {})


def test_no_library_module_is_over_the_line_budget() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted(PACKAGE.rglob("*.py"))
        if (lines := len(path.read_text().splitlines())) > MODULE_MAX_LINES
    }
    assert not long, f"modules over {MODULE_MAX_LINES} lines: {long}"
