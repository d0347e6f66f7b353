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

# The layer rules of docs/architecture.md. ALLOWED: the only artlens modules a lower layer may import
# (a prefix allows a package and its modules). FORBIDDEN: what a higher layer may not import.
FRONT_ENDS = ("artlens.cli", "artlens.web", "artlens.demo")
DOMAINS = ("artlens.canvas", "artlens.paintings", "artlens.beneath")
LEAVES = ("artlens.errors", "artlens.provenance")
ALLOWED: dict[str, tuple[str, ...]] = {
    "artlens.errors": (),
    "artlens.provenance": ("artlens.errors",),
    "artlens.extras": ("artlens.errors",),
    # models/ is a leaf: architectures, losses, checkpoints; it knows no domain, training or front end.
    "artlens.models": LEAVES,
    "artlens.io": LEAVES,
    "artlens.synth": (*LEAVES, "artlens.io"),
    "artlens.catalog": LEAVES,
    "artlens.collect": (*LEAVES, "artlens.catalog", "artlens.io"),
    "artlens.engine": LEAVES,
    "artlens.devices": LEAVES,
    # report/ draws the domains' results: it may read their result types, nothing else of them.
    "artlens.report": (*LEAVES, "artlens.io", "artlens.models", "artlens.synth", "artlens.canvas.threads.result",
                       "artlens.canvas.matching", "artlens.paintings.images"),
}
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # The three domains never import each other, training, or a front end.
    "artlens.canvas": ("artlens.paintings", "artlens.beneath", "artlens.train", *FRONT_ENDS),
    "artlens.paintings": ("artlens.canvas", "artlens.beneath", "artlens.train", *FRONT_ENDS),
    "artlens.beneath": ("artlens.canvas", "artlens.paintings", "artlens.train", *FRONT_ENDS),
    "artlens.train": FRONT_ENDS,
    "artlens.web": ("artlens.cli", "artlens.demo"),
    "artlens.demo": ("artlens.cli", "artlens.web"),
}


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


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


def _violations(graph: dict[str, set[str]]) -> list[str]:
    broken = []
    for mod, targets in sorted(graph.items()):
        for target in sorted(targets):
            if any(_under(mod, layer) and not _under(target, layer) and not any(_under(target, a) for a in allowed)
                   for layer, allowed in ALLOWED.items()) or \
               any(_under(mod, layer) and any(_under(target, f) for f in forbidden)
                   for layer, forbidden in FORBIDDEN.items()):
                broken.append(f"{mod} imports {target}")
    return broken


def test_layers_import_only_what_they_may():
    broken = _violations(import_graph())
    assert not broken, "imports across layers (see docs/architecture.md):\n" + "\n".join(broken)


def test_the_rules_catch_a_forbidden_import():
    """The checker itself: a domain importing training, and models importing a domain, are caught."""
    graph = {"artlens.canvas.x": {"artlens.train.threads", "artlens.io.image"},
             "artlens.models.y": {"artlens.canvas.fabric", "artlens.errors", "artlens.models.registry"}}
    assert _violations(graph) == ["artlens.canvas.x imports artlens.train.threads",
                                  "artlens.models.y imports artlens.canvas.fabric"]
