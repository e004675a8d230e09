"""The import graph of src/lmrec: no cycles, and no import up the layer order (issue 17.2).

Every ``import`` counts, also inside functions; only imports under ``if TYPE_CHECKING:``
(annotations, never executed) are left out. The layers, bottom to top, are the ones
docs/architecture.md describes: a module may import its own layer and the layers below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: (layer, module prefixes), bottom first; the longest matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    (
        "base",
        (
            "lmrec",
            "lmrec._version",
            "lmrec.errors",
            "lmrec._atomic",
            "lmrec._optional",
            "lmrec._progress",
            "lmrec._checks",
            "lmrec._config_files",
            "lmrec._threads",
            "lmrec.ops",
        ),
    ),
    ("data", ("lmrec.data",)),
    ("text, train", ("lmrec.text", "lmrec.train")),
    (
        "metrics",
        (
            "lmrec.eval",
            "lmrec.eval.metrics",
            "lmrec.eval.ranking",
            "lmrec.eval.beyond",
            "lmrec.eval.pointwise",
            "lmrec.eval.bootstrap",
            "lmrec.eval.bias",
            "lmrec.eval.groups",
        ),
    ),
    ("models", ("lmrec.models",)),
    (
        "eval, retrieval, spark, privacy",
        (
            "lmrec.eval.protocol",
            "lmrec.eval.coldstart",
            "lmrec.eval.coldusers",
            "lmrec.retrieval",
            "lmrec.spark",
            "lmrec.privacy",
            "lmrec.testing",
        ),
    ),
    (
        "ranker, tune, serve",
        ("lmrec.ranker", "lmrec.tune", "lmrec.serve", "lmrec.demo", "lmrec.report"),
    ),
    ("cli", ("lmrec.cli", "lmrec.__main__")),
]
#: eval modules not listed above run models: they sit with the evaluation protocol.
DEFAULT_EVAL_LAYER = 5


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int:
    best, best_len = None, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    if (
        best == LAYERS.index(next(x for x in LAYERS if x[0] == "metrics"))
        and module not in LAYERS[3][1]
    ):
        return DEFAULT_EVAL_LAYER
    if best is None:
        raise AssertionError(f"{module} is in no layer; add it to LAYERS and docs/architecture.md")
    return best


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
            if name == "TYPE_CHECKING":
                for child in node.body:
                    skip.update(id(n) for n in ast.walk(child))
    return skip


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """lmrec modules imported anywhere in ``path`` (resolved to existing modules)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_nodes(tree)
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.startswith("lmrec") and name != own:
                found.add(name)
    # "from lmrec.x import y" where y is a module adds both lmrec.x and lmrec.x.y; keep the
    # most specific module per statement by dropping a package that is an ancestor of another.
    return {m for m in found if not any(o.startswith(m + ".") for o in found) or m == "lmrec"} - {
        "lmrec"
    }


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = sorted((SRC / "lmrec").rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def test_every_module_has_a_layer(graph):
    for module in graph:
        layer_of(module)


def test_no_import_goes_up_the_layers(graph):
    bad = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
        for m, targets in graph.items()
        for t in targets
        if layer_of(t) > layer_of(m)
    ]
    assert not bad, "imports up the layer order:\n" + "\n".join(sorted(bad))


def test_no_import_cycles(graph):
    """Tarjan's strongly connected components: every component must be a single module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checker_sees_function_local_imports(tmp_path):
    """A test that cannot fail is a defect: the walker must see imports inside functions."""
    f = tmp_path / "lmrec" / "data" / "x.py"
    f.parent.mkdir(parents=True)
    f.write_text("def g():\n    from lmrec.cli import main\n")
    global SRC
    saved, SRC = SRC, tmp_path
    try:
        assert imports_of(f, {"lmrec.cli", "lmrec.data.x"}) == {"lmrec.cli"}
    finally:
        SRC = saved
