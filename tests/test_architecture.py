"""The package's stages import only from stages before them (function-level imports included).

Data flows one way: ground floor (errors, config, glaciology, metrics) -> data -> figures ->
terrain fills and training patches -> the ice-flow simulator and its training set ->
networks -> training -> predictors -> physics -> baselines and peers -> per-glacier tasks ->
estimate -> evaluation, calibration, benchmarks -> commands. A module may import from its
own rank or a lower one, never from a higher one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "glacierbed"

#: module -> rank (stage); every module of the package must be listed
RANKS: dict[str, int] = {
    "glacierbed": 0, "glacierbed.errors": 0, "glacierbed.atomic": 0, "glacierbed.config": 0, "glacierbed.threads": 0,
    "glacierbed.glaciology": 1, "glacierbed.metrics": 1,
    "glacierbed.data": 2, "glacierbed.data.rasters": 2, "glacierbed.data.outlines": 2,
    "glacierbed.data.observations": 2, "glacierbed.data.registry": 2,
    "glacierbed.plots": 3,
    "glacierbed.fill": 1, "glacierbed.masks": 4, "glacierbed.dataset": 4,
    "glacierbed.simulate": 5, "glacierbed.simulated": 6,
    "glacierbed.model": 7, "glacierbed.inpainters": 7, "glacierbed.features": 7, "glacierbed.predictors": 8,
    "glacierbed.thickness_model": 9,
    "glacierbed.train": 10, "glacierbed.train_thickness": 10,
    "glacierbed.physics": 12, "glacierbed.calibration": 12,
    "glacierbed.catalogue": 13, "glacierbed.baselines": 13, "glacierbed.oggm_peer": 13,
    "glacierbed.workflow": 14, "glacierbed.outputs": 14,
    "glacierbed.estimate": 15,
    "glacierbed.evaluate": 16, "glacierbed.benchmark": 17, "glacierbed.measured": 18, "glacierbed.region": 18,
    "glacierbed.commands": 19, "glacierbed.commands.common": 19, "glacierbed.cli": 20,
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _rank(module: str) -> int:
    if module.startswith("glacierbed.commands."):
        return RANKS["glacierbed.commands"]
    while module not in RANKS and "." in module:
        module = module.rsplit(".", 1)[0]
    return RANKS[module]


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


MODULES = sorted(p for p in SRC.rglob("*.py"))


def test_every_module_has_a_rank() -> None:
    missing = [_module_name(p) for p in MODULES
               if not _module_name(p).startswith("glacierbed.commands.") and _module_name(p) not in RANKS]
    assert not missing, f"add these modules to RANKS: {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_imports_flow_one_way(path: Path) -> None:
    me = _module_name(path)
    bad = [f"line {line}: {me} (rank {_rank(me)}) imports {mod} (rank {_rank(mod)})"
           for line, mod in _imports(path) if me != "glacierbed" and _rank(mod) > _rank(me)]
    assert not bad, "\n".join(bad)


def test_large_stages_stay_small() -> None:
    """estimate, physics and evaluate each stay under ~400 lines (issue 13)."""
    for name in ("estimate", "physics", "evaluate"):
        n = len((SRC / f"{name}.py").read_text().splitlines())
        assert n <= 400, f"{name}.py has {n} lines"
