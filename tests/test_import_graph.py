"""No import cycle among grutext's modules, and no internal module imports the top package.

Walks ``src/grutext`` with `ast`: module-level AND function-level imports count (a lazy import that
closes a cycle is still a cycle); only imports under ``if TYPE_CHECKING:`` are left out.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "grutext"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PKG.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, here: str, is_package: bool, known: set[str]) -> set[str]:
    """grutext modules `tree` imports (anywhere but under ``if TYPE_CHECKING:``)."""
    out: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "grutext":
                    out.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = here.split(".") if is_package else here.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] == "grutext":
                for alias in node.names:  # `from pkg import submodule` depends on the submodule
                    sub = f"{mod}.{alias.name}"
                    out.add(sub if sub in known else mod)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    known = set(mods)
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        deps = _imports(tree, name, path.name == "__init__.py", known)
        graph[name] = {d for d in deps if d in known and d != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = dfs(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = dfs(node)
            if found:
                return found
    return None


def test_the_graph_is_read():
    g = import_graph()
    assert "grutext.tasks.language_model.train" in g
    assert "grutext.artifact" in g["grutext.tasks.language_model.train"]
    assert "grutext.tasks" in g["grutext.artifact"]  # function-level imports are edges too:
    assert "grutext.tasks.classification.transfer" in g["grutext.tasks.classification.train"]


def test_cycle_finder_finds_a_lazy_cycle():
    src = "def f():\n    from grutext.b import x\n"
    deps = _imports(ast.parse(src), "grutext.a", False, {"grutext.a", "grutext.b"})
    assert deps == {"grutext.b"}
    assert find_cycle({"grutext.a": deps, "grutext.b": {"grutext.a"}}) == ["grutext.a", "grutext.b", "grutext.a"]
    hidden = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from grutext.b import x\n"
    assert _imports(ast.parse(hidden), "grutext.a", False, {"grutext.a", "grutext.b"}) == set()


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


# grutext/cli.py (`from grutext import __version__`) is being replaced by the cli/ package, which reads
# grutext.version; remove this entry when cli.py is gone.
PENDING: set[str] = set()


def test_no_internal_module_imports_the_top_package():
    graph = import_graph()
    offenders = sorted(n for n, deps in graph.items() if "grutext" in deps and n != "grutext" and n not in PENDING)
    assert offenders == [], f"import from the top package `grutext` (use grutext.version etc.): {offenders}"


DEPRECATED = {
    "grutext.lm",
    "grutext.pipeline",
    "grutext.models.classifier",
    "grutext.models.ensemble",
    "grutext.models.language_model",
    "grutext.models.transfer",
    "grutext.train.tasks",
}


def test_new_code_does_not_import_the_deprecated_paths():
    graph = import_graph()
    offenders = {
        n: sorted(deps & DEPRECATED) for n, deps in graph.items() if deps & DEPRECATED and n not in DEPRECATED | PENDING
    }
    assert offenders == {}, f"imports of deprecated re-export modules (import from grutext.tasks.*): {offenders}"
