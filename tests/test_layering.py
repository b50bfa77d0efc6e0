"""Import layering of the package: a module imports only from its own layer or the layers below it.

    errors, io (lowest) < degrade, metrics, models, losses, data < infer, train < evaluate < report < commands, cli

Every ``import mrisr.X`` / ``from mrisr.X import ...`` counts, at module level (``TYPE_CHECKING`` blocks
included) and inside functions, so a deferred import cannot hide an upward dependency. The packages'
import graph must also have no cycle (within a layer either).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mrisr"

#: top-level module or package of mrisr -> layer (higher may import lower, never the reverse)
LAYERS: dict[str, int] = {
    "mrisr": 0,  # the package's __init__ (version)
    "errors": 0,
    "io": 0,
    "config": 0,  # typed conversion of YAML/overrides into dataclasses, used by data and train
    "pretrained": 0,  # shipped model files
    "degrade": 1,
    "metrics": 1,
    "models": 1,
    "losses": 1,
    "data": 1,
    "infer": 2,
    "train": 2,
    "evaluate": 3,
    "selfsr": 3,  # self-supervised through-plane SR: uses train-level code and infer.through_plane
    "report": 4,
    "commands": 5,
    "cli": 5,
    "__main__": 5,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top(module: str) -> str:
    """``mrisr.metrics.image`` -> ``metrics``; ``mrisr`` -> ``mrisr``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """``(line, imported mrisr module)`` of every import statement in ``path``, at any depth."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing package
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "mrisr" or name.startswith("mrisr.")]


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = sorted({_top(_module_name(p)) for p in _modules()} - set(LAYERS))
    assert not missing, f"give these a layer in tests/test_layering.py: {missing}"


def test_no_module_imports_a_higher_layer():
    violations = []
    for path in _modules():
        source = _module_name(path)
        for line, target in imports_of(path):
            if LAYERS.get(_top(target), -1) > LAYERS.get(_top(source), len(LAYERS)):
                violations.append(f"{source}:{line} ({_top(source)}) imports {target} ({_top(target)})")
    assert not violations, "\n".join(violations)


def test_packages_import_graph_has_no_cycle():
    graph: dict[str, set[str]] = {}
    for path in _modules():
        source = _top(_module_name(path))
        graph.setdefault(source, set()).update(_top(t) for _, t in imports_of(path) if _top(t) != source)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_imports_of_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    # the checker itself: a deferred import inside a function and a relative import are both found
    pkg = tmp_path / "mrisr" / "metrics"
    pkg.mkdir(parents=True)
    f = pkg / "image.py"
    f.write_text("from . import masks\n\ndef g():\n    from mrisr.report import html\n    import mrisr.cli\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path / "mrisr")
    assert sorted(imports_of(f)) == [(1, "mrisr.metrics"), (4, "mrisr.report"), (5, "mrisr.cli")]
    assert LAYERS[_top("mrisr.report")] > LAYERS[_top(_module_name(f))]  # what the layering test flags
