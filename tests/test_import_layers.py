"""ppcls/ imports go one way, down the layers, with no cycle; read from the source with ``ast``.

The layers, bottom to top (a module may import its own layer and the ones below it):

0. ``ppcls.registry``, ``ppcls.utils.*`` (but ``utils.cli``), ``ppcls._resources`` (the shipped-file
   lookup; it imports nothing of ppcls) and ``ppcls.ops`` (custom operators with Paddle's kernels as
   the fallback: primitives like Paddle's own layers, importing only utils, used by arch's layers and by
   ``utils/flops.py``, which counts their MACs);
1. the components the registries fill: ``ppcls.arch``, ``ppcls.data``, ``ppcls.loss``,
   ``ppcls.optimizer``, ``ppcls.metric``;
2. ``ppcls.engine`` and ``ppcls.registry_imports`` (it imports every registering package, engine's
   postprocess included: whole-config validation, ``ppcls.engine.config``, needs them all);
3. what the user runs: ``ppcls`` itself (its ``__init__``: ``create_model``, ``Predictor``),
   ``ppcls.__main__``, ``ppcls.commands``, ``ppcls.predict``, ``ppcls._tools`` and ``ppcls.utils.cli``,
   the tools' shared command line (it loads whole configs, so it sits with the tools it serves).

Package ``__init__`` files are modules like the others. The graph holds every ``import`` and
``from ... import`` of a ppcls module, at the top of a module and inside functions alike (a function-level
import is a dependency that is only deferred); ``from package import name`` is an edge to the submodule
when ``name`` is one. Python's implicit import of a module's parent packages is not an edge.
A function-level import of a ppcls module needs an entry, with its reason, in
``ALLOWED_FUNCTION_IMPORTS``; deferred imports of optional packages (paddle2onnx, matplotlib,
visualdl, scikit-learn, deploy's backends) are not ppcls modules and are not checked here.
``tools/`` stands above all of ppcls and is not walked.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "ppcls"

# module-name prefix -> layer; the longest matching prefix wins ("ppcls" itself is only the root __init__,
# so a new top-level module or package fails test_every_module_has_a_layer until it is placed here)
LAYERS: dict[str, int] = {
    "ppcls.registry": 0,
    "ppcls.utils": 0,
    "ppcls._resources": 0,
    "ppcls.ops": 0,
    "ppcls.arch": 1,
    "ppcls.data": 1,
    "ppcls.loss": 1,
    "ppcls.optimizer": 1,
    "ppcls.metric": 1,
    "ppcls.engine": 2,
    "ppcls.registry_imports": 2,
    "ppcls": 3,
    "ppcls.__main__": 3,
    "ppcls.commands": 3,
    "ppcls.predict": 3,
    "ppcls._tools": 3,
    "ppcls.utils.cli": 3,
}
LAYER_NAMES = ("utils/registry/ops", "arch/data/loss/optimizer/metric", "engine", "tools and the package API")

# Function-level imports of ppcls modules that are allowed, (importer, imported) -> why. Any other one
# fails: import at the top of the module, or move the code to the layer where its imports belong.
ALLOWED_FUNCTION_IMPORTS: dict[tuple[str, str], str] = {
    # `import ppcls` stays light (no Paddle) as its docstring promises: the API loads on first use
    ("ppcls", "ppcls.arch"): "import ppcls stays light",
    ("ppcls", "ppcls.registry"): "import ppcls stays light",
    ("ppcls", "ppcls.predict"): "import ppcls stays light",
    # `ppcls train` imports tools/train.py (which installs its signal handlers) before anything imports Paddle
    ("ppcls.commands", "ppcls.utils.cli"): "Paddle is imported after the tool's signal handlers",
    # tools/train.py imports callbacks (its signal handlers) before Paddle, which arch imports
    ("ppcls.engine.callbacks", "ppcls.arch.freeze"): "tools/train.py imports callbacks before Paddle",
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    in_function: bool

    @property
    def where(self) -> str:
        return f"{self.importer.replace('.', '/')}.py:{self.line}"


def _modules(root: str) -> dict[str, str]:
    """Module name -> file, for every ``.py`` under the package (``__init__`` named by its package)."""
    out = {}
    for folder, dirs, files in os.walk(os.path.join(root, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                module = os.path.relpath(path, root)[:-3].replace(os.sep, ".")
                out[module.removesuffix(".__init__")] = path
    return out


def _targets(node: ast.Import | ast.ImportFrom, package: str, modules: dict[str, str]) -> list[str]:
    """The ppcls modules one import statement loads."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            parts = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join(parts + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
    return [name for name in dict.fromkeys(names) if name in modules]


def _walk(node: ast.AST, in_function: bool) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, in_function
        else:
            yield from _walk(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                         ast.Lambda)))


def collect_imports(root: str = REPO) -> tuple[dict[str, str], list[Import]]:
    modules = _modules(root)
    imports = []
    for module, path in modules.items():
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
        for node, in_function in _walk(tree, False):
            for target in _targets(node, package, modules):
                if target != module:
                    imports.append(Import(module, target, node.lineno, in_function))
    return modules, imports


def layer(module: str) -> int:
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        prefix = ".".join(parts[:n])
        if prefix in LAYERS:
            return LAYERS[prefix]
    if module == PACKAGE:
        return LAYERS[PACKAGE]
    raise KeyError(f"{module}: no layer for it in LAYERS; add its package")


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (as a path that returns to its start) per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_cycle_in(component, graph) for component in components]


def _cycle_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest path from the component's first module back to itself, inside the component."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    following.append(w)
        frontier = following
    raise AssertionError(f"no cycle through {start} in its component")  # a component always has one


@pytest.fixture(scope="module")
def imports() -> tuple[dict[str, str], list[Import]]:
    return collect_imports()


def test_no_import_cycle(imports):
    modules, found = imports
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in found:
        graph[imp.importer].add(imp.imported)
    cycles = [" -> ".join(cycle) for cycle in find_cycles(graph)]
    assert not cycles, "import cycles in ppcls/:\n" + "\n".join(cycles)


def test_every_module_has_a_layer(imports):
    modules, _ = imports
    unplaced = []
    for module in modules:
        try:
            layer(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


def test_imports_do_not_go_up_a_layer(imports):
    _, found = imports
    upward = [
        f"{imp.where}: {imp.importer} ({LAYER_NAMES[layer(imp.importer)]}) imports {imp.imported} "
        f"({LAYER_NAMES[layer(imp.imported)]})"
        for imp in found if layer(imp.imported) > layer(imp.importer)
    ]
    assert not upward, "imports going up a layer:\n" + "\n".join(upward)


def test_function_level_imports_are_allowed_ones(imports):
    _, found = imports
    inner = [imp for imp in found if imp.in_function]
    unlisted = [f"{imp.where}: {imp.importer} imports {imp.imported} inside a function"
                for imp in inner if (imp.importer, imp.imported) not in ALLOWED_FUNCTION_IMPORTS]
    assert not unlisted, (
        "function-level imports of ppcls modules (import at the top of the module, or move the code to the "
        "layer its imports belong to; a deferred import for a documented reason goes in "
        "ALLOWED_FUNCTION_IMPORTS):\n" + "\n".join(unlisted)
    )
    stale = sorted(set(ALLOWED_FUNCTION_IMPORTS) - {(imp.importer, imp.imported) for imp in inner})
    assert not stale, f"no longer imported inside a function, remove from ALLOWED_FUNCTION_IMPORTS: {stale}"


def test_walker_sees_both_kinds_of_import(tmp_path):
    """The walker resolves relative and absolute imports to modules and tells function-level ones apart."""
    pkg = tmp_path / PACKAGE
    (pkg / "engine").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "engine" / "__init__.py").write_text("from . import a\n")
    (pkg / "engine" / "a.py").write_text("from .b import thing\n\ndef f():\n    from ppcls.engine import b\n")
    (pkg / "engine" / "b.py").write_text("import ppcls.engine.a\n")
    modules, found = collect_imports(str(tmp_path))
    assert set(modules) == {"ppcls", "ppcls.engine", "ppcls.engine.a", "ppcls.engine.b"}
    assert {(i.importer, i.imported, i.in_function) for i in found} == {
        ("ppcls.engine", "ppcls.engine.a", False),
        ("ppcls.engine.a", "ppcls.engine.b", False),
        ("ppcls.engine.a", "ppcls.engine.b", True),
        ("ppcls.engine.b", "ppcls.engine.a", False),
    }
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in found:
        graph[imp.importer].add(imp.imported)
    assert find_cycles(graph) == [["ppcls.engine.a", "ppcls.engine.b", "ppcls.engine.a"]]
