"""The layering of docs/ARCHITECTURE.md: no module imports a layer above it at import time.

Read from the source with ``ast`` (module-level imports only; imports inside functions
are how optional dependencies and upward calls stay lazy), so a violation is found
without importing anything.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Layer of each component (``unroll.<name>``, a module or a package), lowest first.
LAYERS = {
    0: ["errors", "quoting", "atomic", "limits", "datafiles", "losses"],
    1: ["ops"],
    2: ["graph"],
    3: ["presets", "init", "unrolled", "files", "interop", "tasks"],
    4: ["engine", "check"],
    5: ["models", "analysis", "training"],
    6: ["render", "plot", "explore", "gallery"],
    7: ["__init__", "__main__", "cli"],
}
LAYER = {name: layer for layer, names in LAYERS.items() for name in names}


def _modules():
    for path in sorted((ROOT / "unroll").rglob("*.py")):
        yield path, ("unroll", *path.relative_to(ROOT / "unroll").with_suffix("").parts)
    for path in sorted((ROOT / "cli").glob("*.py")):
        yield path, ("unroll", "cli", path.stem)


def _component(parts) -> str:
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path, parts: tuple) -> list[tuple[int, tuple]]:
    """``(line, imported module parts)`` of every module-level import of ``unroll``."""
    package = parts[:-1]
    found = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found += [(node.lineno, tuple(a.name.split("."))) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            module = (*base, *(node.module.split(".") if node.module else ()))
            if node.module:
                found.append((node.lineno, module))
            else:  # from .. import x: x may be a module of that package
                found += [(node.lineno, (*module, a.name)) for a in node.names]
    return [(line, m) for line, m in found if m[0] == "unroll"]


def test_every_component_has_a_layer():
    components = {_component(parts) for _, parts in _modules()}
    assert sorted(components - set(LAYER)) == []


@pytest.mark.parametrize("path,parts", list(_modules()), ids=lambda v: getattr(v, "name", ""))
def test_no_module_imports_a_layer_above_it(path, parts):
    own = LAYER[_component(parts)]
    for line, imported in _imports(path, parts):
        name = _component(imported)
        if name not in LAYER:  # a name of the package itself (from .. import bptt)
            name = "__init__"
        assert LAYER[name] <= own, (
            f"{path.relative_to(ROOT)}:{line} imports unroll.{'.'.join(imported[1:])} "
            f"(layer {LAYER[name]}, {name}) from layer {own} ({_component(parts)})"
        )
