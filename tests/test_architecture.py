"""The layers of docs/architecture.md, checked on the source: who may import whom, and no import cycles.

Imports are read with :mod:`ast` (nothing is imported), including those inside functions: a lazy
import still ties two modules together. Imports under ``if TYPE_CHECKING:`` are left out, and so is a
module importing the package it belongs to (a package's ``__init__`` re-exports its own modules).
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Layer rules: modules under the key may not import anything under the listed prefixes.
FRONT_ENDS = ("artlens.cli", "artlens.web")
DOMAINS = ("artlens.canvas", "artlens.paintings", "artlens.beneath")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # models/ is a leaf: architectures, losses, checkpoints; it knows no domain, training or front end.
    "artlens.models": (*DOMAINS, "artlens.train", "artlens.catalog", "artlens.synth", "artlens.report",
                       "artlens.io", "artlens.engine", *FRONT_ENDS),
    "artlens.io": (*DOMAINS, "artlens.models", "artlens.train", "artlens.catalog", *FRONT_ENDS),
    "artlens.errors": ("artlens.",),
    # The three domains never import each other, training, or a front end.
    "artlens.canvas": ("artlens.paintings", "artlens.beneath", "artlens.train", *FRONT_ENDS),
    "artlens.paintings": ("artlens.canvas", "artlens.beneath", "artlens.train", *FRONT_ENDS),
    "artlens.beneath": ("artlens.canvas", "artlens.paintings", "artlens.train", *FRONT_ENDS),
    "artlens.train": FRONT_ENDS,
    "artlens.catalog": (*DOMAINS, "artlens.train", *FRONT_ENDS),
    "artlens.report": ("artlens.train", *FRONT_ENDS),
    "artlens.synth": (*DOMAINS, "artlens.train", *FRONT_ENDS),
}


def _modules() -> dict[str, Path]:
    mods = {}
    for path in (SRC / "artlens").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module → artlens modules it imports (anywhere in the file but under TYPE_CHECKING)."""
    mods = _modules()

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = defaultdict(set)
    for mod, path in mods.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_lines(tree)
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                # `from pkg import submodule` imports the submodule; `from pkg import name` the package.
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for target in targets:
                found = known(target) if target.startswith("artlens") else None
                if found and found != mod and not mod.startswith(found + "."):
                    graph[mod].add(found)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(set(graph) | {t for ts in graph.values() for t in ts}):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
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


def test_no_import_cycles():
    cycles = _cycles(import_graph())
    assert not cycles, "import cycles (lazy imports count):\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_layers_import_only_what_they_may():
    broken = []
    for mod, targets in sorted(import_graph().items()):
        for layer, forbidden in FORBIDDEN.items():
            if mod == layer or mod.startswith(layer + "."):
                broken += [f"{mod} imports {t}" for t in sorted(targets)
                           if any(t == f or t.startswith(f if f.endswith(".") else f + ".") for f in forbidden)]
    assert not broken, "imports across layers (see docs/architecture.md):\n" + "\n".join(broken)


def test_the_checker_sees_a_cycle_and_a_layer_break():
    graph = {"artlens.a": {"artlens.b"}, "artlens.b": {"artlens.c"}, "artlens.c": {"artlens.a"}, "artlens.d": set()}
    assert _cycles(graph) == [["artlens.a", "artlens.b", "artlens.c"]]
    assert "artlens.models.registry" in import_graph()  # the real tree was read
