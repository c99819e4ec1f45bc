"""The layout rules of docs/architecture.md, checked on the source with ``ast``.

* no import cycle between fopa's modules (imports inside functions count too);
* the compiled layer (``fopa._kernels``) imports nothing from the rest of fopa;
* no private name (one leading underscore) is imported from, or read as an
  attribute of, another fopa module, except between the modules of the
  compiled layer;
* no module is longer than 600 lines.

The checkers take ``{module name: source}``, so they are tested on small
made-up packages as well (each rule is shown to fail).
"""

from __future__ import annotations

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "fopa"
MAX_LINES = 600
KERNELS = "fopa._kernels"


def _sources():
    out = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path.read_text(), path.name == "__init__.py")
    return out


def _resolve(module, is_package, level, target):
    """The absolute module named by a (possibly relative) import inside ``module``."""
    if level == 0:
        return target
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def _imports(sources):
    """Per module: (imported module, imported name or None, line) for every import."""
    out = {}
    for module, (text, is_package) in sources.items():
        found = []
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                found += [(alias.name, None, node.lineno) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(module, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in sources:  # "from package import module"
                        found.append((sub, None, node.lineno))
                    else:
                        found.append((target, alias.name, node.lineno))
        out[module] = [f for f in found if f[0] == "fopa" or f[0].startswith("fopa.")]
    return out


def _module_aliases(sources, imports):
    """Per module: local names bound to fopa modules (``from . import x``, ``import a as b``)."""
    out = {}
    for module, (text, _) in sources.items():
        names = {}
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    local = alias.asname or alias.name.split(".")[0]
                    names[local] = alias.name
        modules = {target for target, name, _ in imports[module] if name is None}
        out[module] = {
            local for local, full in names.items()
            if any(m == full or m.endswith("." + full) for m in modules)
        }  # fmt: skip
    return out


def import_cycles(sources):
    """Strongly connected groups of two or more modules (or a module importing itself)."""
    graph = {m: set() for m in sources}
    for module, found in _imports(sources).items():
        for target, _, _ in found:
            if target in graph:
                graph[module].add(target)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph[v]:
                cycles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_crossings(sources):
    """``(module, line, what)`` for every private name taken from another fopa module."""
    imports = _imports(sources)
    aliases = _module_aliases(sources, imports)
    bad = []
    for module, found in imports.items():
        inside_kernels = module.startswith(KERNELS)
        for target, name, line in found:
            if name is None or not _private(name) or target == module:
                continue
            if inside_kernels and target.startswith(KERNELS):
                continue
            bad.append((module, line, f"from {target} import {name}"))
    for module, (text, _) in sources.items():
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases[module] and _private(node.attr)):  # fmt: skip
                bad.append((module, node.lineno, f"{node.value.id}.{node.attr}"))
    return bad


def kernel_layer_violations(sources):
    """``(module, line, imported)`` for kernel modules importing fopa outside the layer."""
    bad = []
    for module, found in _imports(sources).items():
        if module.startswith(KERNELS):
            bad += [(module, line, t) for t, _, line in found if not t.startswith(KERNELS)]
    return bad


def long_modules(sources):
    """``(module, lines)`` for modules over :data:`MAX_LINES` lines."""
    return [(m, n) for m, (text, _) in sources.items() if (n := text.count("\n")) > MAX_LINES]


# the rules on fopa itself


def test_no_import_cycle():
    assert import_cycles(_sources()) == []


def test_no_private_name_crosses_modules():
    assert private_crossings(_sources()) == []


def test_the_compiled_layer_imports_nothing_above_it():
    sources = _sources()
    assert any(m.startswith(KERNELS) for m in sources)
    assert kernel_layer_violations(sources) == []


def test_no_module_over_600_lines():
    assert long_modules(_sources()) == []


# each checker on a made-up package, so that each can fail


def test_checkers_catch_what_they_are_for():
    cyclic = {
        "fopa": ("from .a import f\n", True),
        "fopa.a": ("def f():\n    from .b import g\n", False),  # a function-level import
        "fopa.b": ("from .a import f\n", False),
    }
    assert import_cycles(cyclic) == [["fopa.a", "fopa.b"]]
    assert import_cycles({"fopa": ("", True), "fopa.a": ("from . import a\n", False)}) == [
        ["fopa.a"]
    ]
    private = {
        "fopa": ("", True),
        "fopa.a": ("_x = 1\n", False),
        "fopa.b": ("from .a import _x\nfrom . import a\ny = a._x\n", False),
        "fopa._kernels": ("", True),
        "fopa._kernels.k": ("from .j import _h\n", False),  # allowed inside the layer
        "fopa._kernels.j": ("from ..a import _x\n", False),  # not allowed: crosses it
    }
    assert sorted(private_crossings(private)) == [
        ("fopa._kernels.j", 1, "from fopa.a import _x"),
        ("fopa.b", 1, "from fopa.a import _x"),
        ("fopa.b", 3, "a._x"),
    ]
    assert kernel_layer_violations(private) == [("fopa._kernels.j", 1, "fopa.a")]
    assert long_modules({"fopa.a": ("x = 1\n" * 601, False)}) == [("fopa.a", 601)]
    assert long_modules({"fopa.a": ("x = 1\n" * 600, False)}) == []


@pytest.mark.parametrize("name", ["fopa.activations", "fopa.sweeps.spec"])
def test_sources_are_found(name):
    assert name in _sources()
