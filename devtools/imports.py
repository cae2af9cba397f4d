"""The package's import graph, floor by floor: what ``tests/test_layout.py`` holds the code to.

    .venv/bin/python -m devtools.imports [CHECKOUT] [--json]

Every ``import`` in ``pipeline/`` counts, the ones inside functions too (a lazy import is still a
dependency). Each module stands on a floor (:data:`FLOORS`, bottom up); an import may point to its own
floor or below, never up, and two sibling packages on one floor (:data:`SIBLINGS`) do not import each
other. No two modules may import each other, directly or through others (a circle).

Prints the modules, lines, floors and imports, every arrow that runs up, every sibling arrow and every
circle; exits 1 if there is any. ``CHECKOUT`` defaults to this one (give another checkout to compare).
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

FLOORS: tuple[tuple[str, ...], ...] = (
    ("pipeline.types", "pipeline.times", "pipeline.resources"),
    ("pipeline.errors",),
    ("pipeline.urls", "pipeline.config", "pipeline.policy", "pipeline.safety"),
    ("pipeline.stages", "pipeline.sources"),
    ("pipeline.stores",),
    ("pipeline.run",),
    ("pipeline.dashboards", "pipeline.cli", "pipeline.__main__", "pipeline"),
)
"""Bottom up. A module's floor is that of the longest name here that is it or contains it."""
FLOOR_NAMES = ("leaves", "errors", "shared", "per-seed", "stores", "run", "surfaces")
SIBLINGS: frozenset[frozenset[str]] = frozenset({frozenset({"pipeline.stages", "pipeline.sources"})})
"""Packages on one floor that must not import each other: a per-seed transform reads no files, and a
source transforms nothing."""


@dataclass
class Graph:
    modules: dict[str, int] = field(default_factory=dict)  # module -> lines
    edges: set[tuple[str, str]] = field(default_factory=set)

    def floor(self, module: str) -> int:
        return floor_of(module)


@dataclass
class Summary:
    modules: int
    lines: int
    floors_used: int
    imports: int
    up: list[str]
    siblings: list[str]
    circles: list[list[str]]

    @property
    def clean(self) -> bool:
        return not (self.up or self.siblings or self.circles)


def floor_of(module: str) -> int:
    best, floor = -1, len(FLOORS) - 1
    for i, names in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best:
                best, floor = len(name), i
    return floor


def _package_of(module: str) -> str:
    """The floor entry a module belongs to (``pipeline.stages.images.urls`` -> ``pipeline.stages``)."""
    names = [n for floor in FLOORS for n in floor if module == n or module.startswith(n + ".")]
    return max(names, key=len) if names else module


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def build(root: Path) -> Graph:
    """The graph of ``root/pipeline``: every module and every import between two of them."""
    graph = Graph()
    files = sorted((root / "pipeline").rglob("*.py"))
    for path in files:
        graph.modules[_module_name(root, path)] = len(path.read_text(encoding="utf-8").splitlines())
    known = set(graph.modules)
    for path in files:
        me = _module_name(root, path)
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(me, path.name == "__init__.py", node)
                # ``from pipeline.run import flow`` imports the module ``pipeline.run.flow``
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != me and not (me == "pipeline.__main__" and target == "pipeline"):
                    graph.edges.add((me, target))
    return graph


def circles(graph: Graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    return sorted(out)


def summarize(graph: Graph) -> Summary:
    # a package's __init__ importing its own submodules is its face, not a dependency between floors
    edges = sorted((a, b) for a, b in graph.edges if not b.startswith(a + "."))
    up = [f"{a} -> {b}" for a, b in edges if floor_of(b) > floor_of(a)]
    siblings = [f"{a} -> {b}" for a, b in edges if frozenset({_package_of(a), _package_of(b)}) in SIBLINGS]
    return Summary(
        modules=len(graph.modules),
        lines=sum(graph.modules.values()),
        floors_used=len({floor_of(m) for m in graph.modules}),
        imports=len(edges),
        up=up,
        siblings=siblings,
        circles=circles(graph),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.imports", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkout", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    graph = build(Path(args.checkout))
    summary = summarize(graph)
    if args.json:
        print(json.dumps(asdict(summary), indent=2))
        return 0 if summary.clean else 1
    print(
        f"{summary.modules} modules, {summary.lines:,} lines, {summary.floors_used} floors, "
        f"{summary.imports} imports between modules"
    )
    for i, names in enumerate(FLOORS):
        here = sorted(m for m in graph.modules if floor_of(m) == i)
        print(f"  floor {i} {FLOOR_NAMES[i]:<9} {len(here):>3} modules: {', '.join(names)}")
    print(f"arrows that run up: {len(summary.up)}")
    for line in summary.up:
        print(f"  {line}")
    print(f"arrows between siblings: {len(summary.siblings)}")
    for line in summary.siblings:
        print(f"  {line}")
    print(f"circles: {len(summary.circles)}")
    for circle in summary.circles:
        print(f"  {' <-> '.join(circle)}")
    return 0 if summary.clean else 1


if __name__ == "__main__":
    sys.exit(main())
