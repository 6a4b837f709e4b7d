"""The bad-input catalogue's cases, one module per area (collected by ``tests/test_bad_inputs.py``).

A :class:`Case` does one bad thing in a fresh folder and states what must happen: the
error type, a text the message must contain (the culprit: a file, a key, an argument,
a shape), and, through ``setup``, earlier results that must be byte-identical afterwards.
Each module of this package defines ``CASES: list[Case]``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AREAS = ("configuration", "cli", "images", "loaders", "containers", "estimators", "metrics", "runs")


@dataclass(frozen=True)
class Case:
    """One bad input.

    Attributes
    ----------
    id : str
        ``area/what``, e.g. ``images/palette-png``; the area is one of :data:`AREAS`.
    act : callable
        ``act(folder)`` does the bad thing inside ``folder`` (a fresh temporary folder) and
        must raise.
    error : exception type
        The type it must raise (a subclass is fine).
    culprit : str
        Text the message must contain; ``{folder}`` is replaced by the folder's path.
    setup : callable, optional
        ``setup(folder)`` writes earlier results before ``act``; every file it leaves
        must be byte-identical after ``act`` (nothing already computed is lost).
    exit_code : int, optional
        For CLI cases (``error=CLIFailure``): the exit status expected.
    """

    id: str
    act: Callable[[Path], Any]
    error: type[BaseException]
    culprit: str
    setup: Callable[[Path], Any] | None = None
    exit_code: int | None = None


class CLIFailure(Exception):
    """A CLI command that exited non-zero; ``str()`` is its whole output."""

    def __init__(self, exit_code: int, output: str):
        super().__init__(output)
        self.exit_code = exit_code


def cli(*args: str) -> str:
    """Run ``scene2brain ARGS`` in-process; raise :class:`CLIFailure` on a non-zero exit, else return the output."""
    from typer.testing import CliRunner

    from scene2brain.cli import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    output = result.output + (result.stderr if result.stderr_bytes else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        # an exception escaped the CLI's error boundary: a traceback for the user
        raise AssertionError(f"scene2brain {' '.join(args)} raised {result.exception!r} (a traceback)")
    if result.exit_code != 0:
        raise CLIFailure(result.exit_code, output)
    return output
