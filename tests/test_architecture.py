"""The layers of ``remotesam.bench`` (docs/ARCHITECTURE.md), checked on every import.

Every ``import`` / ``from ... import`` of ``remotesam`` and ``plugins`` (``remotesam_plugins``),
inside functions and ``TYPE_CHECKING`` blocks too, is read with :mod:`ast` and checked against
the table :data:`LAYERS`, a copy of the table in docs/ARCHITECTURE.md. The test fails on an
import cycle, on an import a layer may not make, and on a private name (``_x``) imported from
another module.
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = "remotesam.bench"

#: (layer, module prefixes, the layers it may import besides itself), first match wins.
#: ``core`` is the model and everything of ``remotesam`` below the harness; every layer may
#: import it. ``run-face`` is the package ``remotesam.bench.run`` itself (its ``__init__``: the
#: Python API of a run), ``bench-face`` the package ``remotesam.bench`` (``evaluate``).
LAYERS: list[tuple[str, tuple[str, ...], frozenset[str]]] = [
    ("errors", (f"{BENCH}.errors",), frozenset()),
    ("api", (f"{BENCH}.api",), frozenset({"errors"})),
    ("kit", (f"{BENCH}.kit",), frozenset({"api"})),
    ("records", (f"{BENCH}.records",), frozenset({"errors", "api", "kit"})),
    ("run", (f"{BENCH}.run",), frozenset({"errors", "api", "kit", "records"})),
    ("reports", (f"{BENCH}.reports",), frozenset({"errors", "api", "kit", "records"})),
    ("gate", (f"{BENCH}.gate",), frozenset({"errors", "api", "kit", "records"})),
    ("data", (f"{BENCH}.data",), frozenset({"errors", "api", "kit", "records"})),
    ("cli", (f"{BENCH}.cli",),
     frozenset({"errors", "api", "kit", "records", "run-face", "reports", "gate", "data"})),
    ("bench-face", (BENCH, f"{BENCH}.__main__", f"{BENCH}.pytest_plugin"),
     frozenset({"errors", "records", "run-face", "gate", "cli"})),
    ("plugins", ("remotesam_plugins",), frozenset({"api", "kit"})),
    ("users", ("remotesam.testing", "remotesam.train"),
     frozenset({"errors", "api", "kit", "records", "run-face", "bench-face"})),
    ("core", ("remotesam",), frozenset()),
]
ALWAYS = frozenset({"core"})


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for top, name in (("remotesam", "remotesam"), ("plugins", "remotesam_plugins")):
        for p in sorted((ROOT / top).rglob("*.py")):
            parts = [name, *p.relative_to(ROOT / top).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = p
    return mods


MODULES = _modules()


def _bound_names(path: Path) -> set[str]:
    """Names a package's ``__init__`` binds at its top level (imports, defs, assignments)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom | ast.Import):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def _known(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(mod: str) -> list[tuple[str, list[str], int]]:
    """``(imported module, names taken from it, line)`` for every import in ``mod``."""
    path = MODULES[mod]
    is_pkg = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for a in node.names:
                t = _known(a.name)
                if t:
                    out.append((t, [], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod.split(".") if is_pkg else mod.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            t = _known(base)
            if t is None:
                continue
            bound = _bound_names(MODULES[t]) if MODULES[t].name == "__init__.py" else set()
            plain = []
            for a in node.names:
                sub = f"{t}.{a.name}" if t == base else ""
                if sub in MODULES and a.name not in bound:
                    out.append((sub, [], node.lineno))  # a submodule, imported by name
                else:
                    plain.append(a.name)
            if plain or not node.names:
                out.append((t, plain, node.lineno))
    return out


def _layer(mod: str) -> str:
    if mod == f"{BENCH}.run":
        return "run-face"
    for name, prefixes, _ in LAYERS:
        if any(mod == p or mod.startswith(p + ".") for p in prefixes):
            return name
    raise AssertionError(f"{mod} is in no layer of LAYERS")


ALLOWED = {name: allowed for name, _, allowed in LAYERS}
ALLOWED["run-face"] = ALLOWED["run"]


def _may_import(src: str, dst: str) -> bool:
    a, b = _layer(src), _layer(dst)
    if a == b or (a == "run-face" and b == "run") or (a == "run" and b == "run-face"):
        return True
    return b in ALLOWED[a] or b in ALWAYS


def test_every_module_is_in_a_layer() -> None:
    assert {_layer(m) for m in MODULES} >= {"errors", "api", "kit", "records", "run", "reports",
                                            "gate", "cli", "plugins", "core"}


def test_no_import_against_the_layer_order() -> None:
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line}: {m} ({_layer(m)}) imports {t} ({_layer(t)})"
           for m in MODULES for t, _, line in _imports(m)
           if t != m and not _may_import(m, t)]
    assert bad == [], "imports against docs/ARCHITECTURE.md:\n" + "\n".join(bad)


def test_no_private_name_crosses_modules() -> None:
    bad = [f"{MODULES[m].relative_to(ROOT)}:{line}: {m} imports {t}.{n}"
           for m in MODULES for t, names, line in _imports(m) if t != m
           for n in names if n.startswith("_") and not n.startswith("__")]
    assert bad == [], "private names imported from another module:\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in list(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    graph: dict[str, set[str]] = defaultdict(set)
    for m in MODULES:
        graph[m]
        face = MODULES[m].name == "__init__.py"
        for t, _, _ in _imports(m):
            # a package face re-exporting its own submodules is not a cycle
            if t != m and not (face and t.startswith(m + ".")):
                graph[m].add(t)
    assert _cycles(graph) == []


def test_the_table_mirrors_docs_architecture() -> None:
    """Every layer of :data:`LAYERS` has a row in docs/ARCHITECTURE.md's table with the same
    imports, so the document and the check cannot drift apart."""
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    rows = {}
    for line in text.splitlines():
        m = re.match(r"\|\s*`([\w-]+)`\s*\|[^|]*\|\s*([^|]*)\|", line)
        if m:
            rows[m.group(1)] = frozenset(re.findall(r"`([\w-]+)`", m.group(2)))
    for name, _, allowed in LAYERS:
        assert name in rows, f"docs/ARCHITECTURE.md has no row for layer {name!r}"
        assert rows[name] == allowed, (name, sorted(rows[name]), sorted(allowed))


@pytest.mark.parametrize("face", ["remotesam.bench", "remotesam.bench.api", "remotesam.bench.kit",
                                  "remotesam.bench.run", "remotesam.bench.cli"])
def test_public_faces_import(face: str) -> None:
    import importlib

    mod = importlib.import_module(face)
    assert mod.__all__ and all(hasattr(mod, n) for n in mod.__all__)
