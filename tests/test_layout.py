"""The package layout as a contract: arrows point down, no cycles, nobody reaches into another
module's private names, and each distribution keeps to its own dependencies."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {
    "brainai_common": ROOT / "common" / "brainai_common",
    "brainai_engine": ROOT / "engine" / "brainai_engine",
    "brainai_operator": ROOT / "operator" / "brainai_operator",
}
# The engine's folders, lowest first: a module may import only from its own rank or below.
ENGINE_LAYERS = ["models", "core", "storage", "replication", "engine", "api", "tools", "cli"]
# What each distribution may import from the others.
ALLOWED = {
    "brainai_common": {"brainai_common"},
    "brainai_engine": {"brainai_common", "brainai_engine"},
    "brainai_operator": {"brainai_common", "brainai_operator"},
}
PRIVATE_OK = {"os._exit"}


def modules() -> dict[str, Path]:
    out = {}
    for package, path in PACKAGES.items():
        for file in path.rglob("*.py"):
            parts = [package, *file.relative_to(path).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = file
    return out


MODULES = modules()


def imports(name: str, file: Path) -> Iterator[tuple[str, list[str], int]]:
    """(imported module, names taken from it, line) for every import, wherever it is in the file."""
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in MODULES:
                    yield sub, [], node.lineno
                else:
                    yield base, [alias.name], node.lineno


def first_party_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, file in MODULES.items():
        for target, _, _ in imports(name, file):
            if target in MODULES and target != name:
                edges[name].add(target)
    return edges


def test_no_import_cycles() -> None:
    edges = first_party_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "brainai_engine" or len(parts) < 2:
        return None
    return ENGINE_LAYERS.index(parts[1]) if parts[1] in ENGINE_LAYERS else None


def test_engine_imports_point_down() -> None:
    assert {p.stem for p in PACKAGES["brainai_engine"].iterdir() if p.name != "__init__.py"} <= {
        *ENGINE_LAYERS,
        "__pycache__",
    }, "a new top-level engine module needs a place in ENGINE_LAYERS"
    upward = []
    for name, targets in first_party_edges().items():
        here = layer(name)
        for target in targets:
            there = layer(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{name} -> {target}")
    assert upward == []


def test_each_distribution_imports_only_what_it_depends_on() -> None:
    crossing = []
    for name, file in MODULES.items():
        own = name.split(".")[0]
        for target, _, line in imports(name, file):
            top = target.split(".")[0]
            if top in PACKAGES and top not in ALLOWED[own]:
                crossing.append(f"{file.relative_to(ROOT)}:{line} imports {target}")
    assert crossing == []


def test_http_client_only_in_the_engine_tools() -> None:
    """httpx is the `tools` extra: the serving path must not need it."""
    found = [
        f"{name}:{line}"
        for name, file in MODULES.items()
        for target, _, line in imports(name, file)
        if target.split(".")[0] == "httpx" and not name.startswith("brainai_engine.tools")
    ]
    assert found == []


@pytest.mark.parametrize("package", sorted(PACKAGES))
def test_no_reaching_into_private_names(package: str) -> None:
    reach = []
    for name, file in MODULES.items():
        if not name.startswith(package):
            continue
        for target, names, line in imports(name, file):
            reach += [
                f"{name}:{line} imports {target}.{n}"
                for n in names
                if n.startswith("_") and not n.endswith("__")
            ]
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__"):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                text = ast.unparse(node)
                if text not in PRIVATE_OK:
                    reach.append(f"{name}:{node.lineno} {text}")
    assert reach == []


def test_the_distributions_share_one_version() -> None:
    import tomllib

    from brainai_operator import __version__

    versions = {
        d: tomllib.loads((ROOT / d / "pyproject.toml").read_text())["project"]["version"]
        for d in ("common", "engine", "operator")
    }
    assert set(versions.values()) == {__version__}, versions
