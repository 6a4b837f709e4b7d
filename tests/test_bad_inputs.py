"""A table-driven catalogue of bad inputs: each must fail with a clear error, nothing computed lost.

The cases live in ``tests/bad_input_cases/`` (one module per area). For each: ``act`` must
raise the declared error type, the message must name the culprit and show no traceback,
a CLI failure must exit with the declared status, and the files ``setup`` wrote (earlier
results) must be byte-identical afterwards.
"""

import hashlib
import importlib
import pkgutil
from pathlib import Path

import bad_input_cases
import pytest
from bad_input_cases import AREAS, Case


def _cases() -> list[Case]:
    cases = []
    for module in pkgutil.iter_modules(bad_input_cases.__path__):
        cases += importlib.import_module(f"bad_input_cases.{module.name}").CASES
    return cases


CASES = _cases()


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def test_catalogue_size_and_ids():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(CASES) >= 40
    assert {c.id.split("/")[0] for c in CASES} <= set(AREAS)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input(case: Case, tmp_path: Path):
    before: dict[str, str] = {}
    if case.setup is not None:
        case.setup(tmp_path)
        before = _snapshot(tmp_path)
    with pytest.raises(case.error) as info:
        case.act(tmp_path)
    message = str(info.value)
    assert case.culprit.format(folder=tmp_path) in message, f"the message does not name {case.culprit!r}: {message}"
    assert "Traceback" not in message
    if case.exit_code is not None:
        assert info.value.exit_code == case.exit_code, message
    after = _snapshot(tmp_path)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"earlier results changed or removed: {changed[:5]}"
