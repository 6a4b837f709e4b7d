"""The layer rules: import-linter contracts in pyproject.toml ([tool.importlinter]), checked by the test command.

One contract orders the top-level packages (utils < data < features < evaluation < encoding
< representation < decoding < viz < report < pipeline < cli), one orders the modules of
``data/`` (loaders over storage over containers over image sources), and one keeps the
dataset loaders out of analysis and drawing code. Both layers contracts are exhaustive: a
new module must be placed in a layer.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import scene2brain

PACKAGE = Path(scene2brain.__file__).parent
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def lint_imports(config: Path, search_path: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with ``config`` on the ``scene2brain`` found first in ``search_path``, in a fresh Python."""
    code = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"
    env = {**os.environ, "PYTHONPATH": str(search_path), "COLUMNS": "250"}  # wide: no wrapped report lines
    return subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "--no-logo", str(config)],
        cwd=config.parent, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_package_keeps_its_import_contracts():
    result = lint_imports(PYPROJECT, PACKAGE.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def copy_of_the_package(tmp_path: Path) -> Path:
    """``tmp_path/src/scene2brain``: a copy of the package, with the contracts in ``tmp_path/pyproject.toml``."""
    shutil.copytree(PACKAGE, tmp_path / "src" / "scene2brain", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PYPROJECT, tmp_path / "pyproject.toml")
    return tmp_path / "src" / "scene2brain"


WRONG_IMPORTS = {
    # an upward import across the top-level layers
    "upward": (
        "utils/arrays.py",
        "\nfrom scene2brain.pipeline import run  # noqa\n",
        "Top-level layers",
        "scene2brain.utils.arrays -> scene2brain.pipeline.run",
    ),
    # the containers <-> storage cycle that the data/ layers forbid, even as an import inside a function
    "data cycle": (
        "data/containers.py",
        "\n\ndef _save(experiment, path):\n    from scene2brain.data.storage import save_experiment\n",
        "Layers of data/",
        "scene2brain.data.containers -> scene2brain.data.storage",
    ),
    # allowed by the layers (viz is above data), but drawing code must not reach into the loaders
    "loader in viz": (
        "viz/surface.py",
        "\nfrom scene2brain.data.datasets.algonauts import load_algonauts2023  # noqa\n",
        "Only the pipeline and the CLI use the dataset loaders",
        "scene2brain.viz.surface -> scene2brain.data.datasets.algonauts",
    ),
}


@pytest.mark.parametrize("case", WRONG_IMPORTS)
def test_a_wrong_import_breaks_the_contract_and_is_named(tmp_path, case):
    module, line, contract, named = WRONG_IMPORTS[case]
    path = copy_of_the_package(tmp_path) / module
    path.write_text(path.read_text() + line)
    result = lint_imports(tmp_path / "pyproject.toml", tmp_path / "src")
    assert result.returncode != 0, result.stdout + result.stderr
    assert f"{named} (l." in result.stdout, result.stdout
    assert any(row.startswith(contract) and row.endswith("BROKEN") for row in result.stdout.splitlines()), result.stdout


def test_a_module_outside_every_layer_breaks_the_contract(tmp_path):
    package = copy_of_the_package(tmp_path)
    for folder in (package, package / "data"):
        (folder / "unplaced.py").write_text('"""Belongs to no layer."""\n')
    result = lint_imports(tmp_path / "pyproject.toml", tmp_path / "src")
    assert result.returncode != 0, result.stdout + result.stderr
    assert "- scene2brain.unplaced" in result.stdout and "- scene2brain.data.unplaced" in result.stdout, result.stdout
