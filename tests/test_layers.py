"""The import map of appliance/ (read with `ast`, nothing imported): layers point one way, no
module is part of an import cycle, no module imports another's `_private` name, and the
settings dataclasses are leaves."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "appliance"

#: Bottom to top: a module may import its own layer and the layers below it, never above.
#: A top-level module not named here (errors, files, images, ...) is in the base layer.
LAYERS: tuple[frozenset[str], ...] = tuple(frozenset(names.split()) for names in (
    "base fonts",                      # leaf helpers: errors, files, config, faults, images, ...
    "compute",                         # process pool, Dask session, per-worker model caches
    "faces search",                    # the analyzer; exact top-k
    "generator",                       # where drawn faces come from
    "corpus",                          # the corpus files: format, build, Corpus
    "parts",                           # camera, controls, printer
    "ticket",                          # what is printed
    "cartography conjure train",       # offline tools over a corpus or the generator
    "study",
    "settings",                        # appliance/settings.py: composes every section
    "runtime",                         # the machine, the service, the composition root
    "cli __main__",
))

#: Modules any layer may import: the settings dataclasses and the machine's states, which
#: import only the base layer (so `appliance.settings` composes them without the running parts).
LEAVES = frozenset({
    "appliance.corpus.settings", "appliance.faces.settings", "appliance.generator.settings",
    "appliance.parts.printer.settings", "appliance.parts.settings", "appliance.runtime.settings",
    "appliance.runtime.states", "appliance.search.settings", "appliance.ticket.settings",
})

#: Compiled extensions (setup.py builds appliance._NAME from ext/NAME.pyx): modules whose names
#: start with "_", not private names.
EXTENSIONS = frozenset(f"appliance._{pyx.stem}" for pyx in (ROOT / "ext").glob("*.pyx"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports(module: str) -> Iterator[tuple[str, str | None, int]]:
    """(imported module, imported name or None, line) for every import in `module`, at any
    depth (functions, TYPE_CHECKING blocks), relative ones resolved."""
    path = MODULES[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, None, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                yield source, alias.name, node.lineno


def target(source: str, name: str | None) -> str | None:
    """The module of appliance/ an import reads: `from a import b` reads module a.b if it is
    one, else module a (or the nearest package above it)."""
    if name is not None and f"{source}.{name}" in MODULES:
        return f"{source}.{name}"
    while source and source not in MODULES:
        source = source.rpartition(".")[0]
    return source or None


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module in MODULES:
        for source, name, _ in imports(module):
            if source.split(".")[0] != "appliance":
                continue
            found = target(source, name)
            if found and found != module:
                graph[module].add(found)
    return graph


def layer(module: str) -> int:
    parts = module.split(".")
    unit = parts[1] if len(parts) > 1 else "base"
    if len(parts) == 2 and not (PACKAGE / unit).is_dir() and unit not in ("settings", "__main__"):
        unit = "base"
    for rank, names in enumerate(LAYERS):
        if unit in names:
            return rank
    raise AssertionError(f"{module}: its package {unit!r} has no layer in LAYERS")


def upward_arrows(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets
                  if b not in LEAVES and layer(b) > layer(a))


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def private_imports() -> list[str]:
    """`from x import _name` across modules (a module's own privates stay its own)."""
    found = []
    for module in MODULES:
        for source, name, line in imports(module):
            if (source.split(".")[0] == "appliance" and name and name.startswith("_")
                    and not name.startswith("__") and f"{source}.{name}" not in EXTENSIONS):
                found.append(f"{module}:{line} imports {source}.{name}")
    return found


GRAPH = edges()


def test_the_import_map_has_no_cycle():
    assert cycles(GRAPH) == []


def test_layers_point_one_way():
    """Every module has a layer (a new package must be given one) and imports none above."""
    assert upward_arrows(GRAPH) == []


def test_no_module_imports_another_modules_private_name():
    assert private_imports() == []


def test_settings_dataclasses_are_leaves():
    """A settings module (and the states) imports only the base layer; `appliance.settings`
    composes only such leaves and reaches no part of the runtime but its settings."""
    for leaf in LEAVES:
        assert {b for b in GRAPH[leaf] if layer(b) > 0} == set(), leaf
    assert "appliance.settings" not in GRAPH["appliance.runtime.settings"]
    assert {b for b in GRAPH["appliance.settings"] if layer(b) > 0} <= LEAVES  # only leaves
    reached, todo = set(), ["appliance.settings"]
    while todo:
        for b in GRAPH[todo.pop()] - reached:
            reached.add(b)
            todo.append(b)
    assert {m for m in reached if m.startswith("appliance.runtime")} == {
        "appliance.runtime.settings"}


def test_the_map_sees_what_it_checks():
    """The checks above could not pass vacuously: known arrows and a planted cycle show up."""
    assert "appliance.faces.analyzer" in GRAPH["appliance.runtime.lookup"] | {
        b for b in GRAPH["appliance.runtime.appliance"]}
    assert "appliance.compute.dask_session" in GRAPH["appliance.corpus.cluster"]
    planted = {name: set(targets) for name, targets in GRAPH.items()}
    planted["appliance.compute.pool"].add("appliance.corpus.build")
    assert any("appliance.compute.pool" in c for c in cycles(planted))
    assert "appliance.compute.pool -> appliance.corpus.build" in upward_arrows(planted)
    setup = (ROOT / "setup.py").read_text()
    assert {"appliance._scan", "appliance._dither", "appliance._draw"} <= EXTENSIONS
    assert all(f'"{stem}"' in setup or f"ext/{stem}.pyx" in setup
               for stem in (extension.split("._")[1] for extension in EXTENSIONS))

