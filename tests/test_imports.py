"""The import graph of ``swinfpga/`` has no circle.

Edges come from the source (ast), not from importing: every ``import`` / ``from ... import`` in a
module, at top level or inside a function (a lazy import is still a dependency), except under
``if TYPE_CHECKING:``.  ``from P import name`` points at ``P.name`` when that is a module, else at
``P``; importing a module also runs its enclosing packages' ``__init__``, so those are edges too
(except the importer's own enclosing packages, which are already being imported).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "swinfpga"


def _modules(pkg: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(pkg.rglob("*.py")):
        if "_data" in p.relative_to(pkg).parts:  # build copies of sim/ (not part of the package's code)
            continue
        parts = (pkg.name, *p.relative_to(pkg).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_pkg: bool) -> list[tuple[str, tuple[str, ...]]]:
    """(target, names) of every executed import statement; relative imports resolved."""
    out: list[tuple[str, tuple[str, ...]]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_pkg else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((target, tuple(a.name for a in node.names)))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph(pkg: Path = PKG) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (see the module docstring for the rules)."""
    mods = _modules(pkg)
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, path in mods.items():
        own_parents = {".".join(m.split(".")[:i]) for i in range(1, m.count(".") + 1)}
        if path.name == "__init__.py":
            own_parents.add(m)
        for target, names in _imports(ast.parse(path.read_text(), str(path)), m, path.name == "__init__.py"):
            hits = [f"{target}.{n}" for n in names if f"{target}.{n}" in mods] or [target]
            for t in hits:
                parts = t.split(".")
                for i in range(1, len(parts) + 1):
                    dep = ".".join(parts[:i])
                    if dep in mods and dep not in own_parents and dep != m:
                        graph[m].add(dep)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None (iterative DFS, deterministic order)."""
    color: dict[str, int] = dict.fromkeys(graph, 0)  # 0 new, 1 on stack, 2 done
    for root in sorted(graph):
        if color[root]:
            continue
        stack: list[tuple[str, list[str]]] = [(root, sorted(graph[root]))]
        color[root] = 1
        while stack:
            node, todo = stack[-1]
            if not todo:
                color[node] = 2
                stack.pop()
                continue
            nxt = todo.pop(0)
            if color.get(nxt, 2) == 1:
                path = [n for n, _ in stack]
                return path[path.index(nxt):] + [nxt]
            if color.get(nxt, 2) == 0:
                color[nxt] = 1
                stack.append((nxt, sorted(graph[nxt])))
    return None


def test_swinfpga_has_no_import_circle() -> None:
    graph = import_graph()
    assert len(graph) > 20 and "swinfpga.verify" in graph
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_back_ends_take_report_types_from_results() -> None:
    graph = import_graph()
    assert "swinfpga.results" in graph["swinfpga.backends.hls4ml.csim"]
    assert {"swinfpga.backends.hls4ml", "swinfpga.backends.rtl"} <= graph["swinfpga.verify"]
    assert graph["swinfpga.results"] == set(), "results must not import the rest of swinfpga"
    from swinfpga import results, verify

    assert verify.CsimReport is results.CsimReport and verify.compare_codes is results.compare_codes


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = root / "swinfpga" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root / "swinfpga"


@pytest.mark.parametrize("files,cycle", [
    # the old circle: verify imports a back end lazily, the back end imports verify's report types
    ({"__init__.py": "", "verify.py": "def f():\n    from .backends.a import g\n",
      "backends/__init__.py": "", "backends/a.py": "from ..verify import Report\n"},
     ["swinfpga.backends.a", "swinfpga.verify", "swinfpga.backends.a"]),
    # through a package __init__ that re-exports a submodule
    ({"__init__.py": "", "x.py": "from .p.q import z\n", "p/__init__.py": "from .r import y\n",
      "p/q.py": "z = 1\n", "p/r.py": "import swinfpga.x\n"},
     ["swinfpga.p", "swinfpga.p.r", "swinfpga.x", "swinfpga.p"]),
])
def test_cycle_finder_names_the_circle(tmp_path, files, cycle) -> None:
    assert find_cycle(import_graph(_write(tmp_path, files))) == cycle


def test_type_checking_imports_are_not_edges(tmp_path) -> None:
    pkg = _write(tmp_path, {"__init__.py": "", "a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                            "    from .b import B\n", "b.py": "from .a import x\n"})
    g = import_graph(pkg)
    assert g["swinfpga.a"] == set() and g["swinfpga.b"] == {"swinfpga.a"} and find_cycle(g) is None
