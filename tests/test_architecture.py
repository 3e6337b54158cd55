"""The package's folders are its stages, and imports flow one way between them.

core -> data -> simulation -> models -> posterior -> pipeline -> evaluation -> commands -> cli.
A module may import from its own folder or a lower-ranked one (function-level imports
included), never from a higher one; inside a folder the imports form no cycle. Modules stay
small: at most 400 lines, no function over 60 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "glacierbed"

#: top-level folder (stage) -> rank
STAGES: dict[str, int] = {
    "core": 0, "data": 1, "simulation": 2, "models": 3, "posterior": 4,
    "pipeline": 5, "evaluation": 6, "commands": 7, "cli": 8,
}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _stage(module: str) -> str | None:
    """The top-level folder of a glacierbed module (None for the package itself)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and not parts[1].startswith("__") else None


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every glacierbed import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("glacierbed"):
            names = [node.module] if node.module != "glacierbed" else [f"glacierbed.{a.name}" for a in node.names]
            out += [(node.lineno, n) for n in names]
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("glacierbed")]
    return out


MODULES = sorted(SRC.rglob("*.py"))


def test_every_module_lives_in_a_stage() -> None:
    loose = [_module_name(p) for p in MODULES if _stage(_module_name(p)) not in (*STAGES, None)]
    assert not loose, f"modules outside the stage folders {list(STAGES)}: {loose}"


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_imports_flow_one_way(path: Path) -> None:
    me = _module_name(path)
    if _stage(me) is None:
        return  # glacierbed/__init__.py: lazy API exports
    bad = [f"line {line}: {me} ({_stage(me)}) imports {mod} ({_stage(mod)})"
           for line, mod in _imports(path)
           if _stage(mod) is not None and STAGES[_stage(mod)] > STAGES[_stage(me)]]
    assert not bad, "\n".join(bad)


def test_no_import_cycles_inside_a_stage() -> None:
    graph = {_module_name(p): {m for _, m in _imports(p) if m != _module_name(p)} for p in MODULES}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, ()):
            if nxt not in graph:
                continue
            assert state.get(nxt) != 1, "import cycle: " + " -> ".join(trail + [node, nxt])
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


@pytest.mark.parametrize("path", MODULES, ids=_module_name)
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: {len(text.splitlines())} lines"
    long = [f"{node.name} ({node.end_lineno - node.lineno + 1} lines)" for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"
