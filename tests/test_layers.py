"""The layer rule of DESIGN.md: a module imports only from its own layer or the layers below."""

import ast
from pathlib import Path

import scene2brain

# Lowest first. DESIGN.md puts report/ and viz/ in one layer; report draws with viz, so it sits just above.
RANK = {
    "utils": 0,
    "data": 1,
    "features": 2,
    "evaluation": 3,
    "encoding": 4,
    "representation": 5,
    "decoding": 6,
    "viz": 7,
    "report": 8,
    "pipeline": 9,
    "cli": 10,
    "__main__": 10,
}
PACKAGE = Path(scene2brain.__file__).parent


def _layer(module_path: Path) -> str | None:
    parts = module_path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0] if parts[0] in RANK else None


def _imported_layers(tree: ast.AST) -> set[str]:
    layers = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "scene2brain" and len(parts) > 1 and parts[1] in RANK:
                layers.add(parts[1])
    return layers


def test_imports_flow_downwards_only():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = _layer(path)
        if layer is None:
            continue
        for target in _imported_layers(ast.parse(path.read_text())):
            if RANK[target] > RANK[layer]:
                violations.append(f"{path.relative_to(PACKAGE)} ({layer}) imports {target}")
    assert not violations, "\n".join(violations)


def test_the_rule_detects_an_upward_import():
    tree = ast.parse("from scene2brain.pipeline.demo import run_demo\nimport scene2brain.utils.files")
    assert _imported_layers(tree) == {"pipeline", "utils"}
