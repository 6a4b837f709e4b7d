"""Stages of a run: keyed results on disk that are computed once.

A stage has a name, the settings its result depends on, the upstream stages it reads
and a function that writes its result into a folder. Its key is a digest of its
settings and of its inputs' keys, so changing a setting changes the key of that stage
and of every stage downstream of it, and of nothing else. A stage whose folder holds a
``stage.json`` with the same key is skipped. Folders are written to a temporary place
and moved in whole, so an interrupted stage leaves either the previous result or none.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scene2brain.utils.files import atomic_path, text_digest

STAGE_FILE = "stage.json"


@dataclass
class StageContext:
    """What a stage's function gets: its output folder and where its inputs live."""

    out: Path
    inputs: dict[str, Path]
    pending: frozenset[str]

    def input(self, name: str) -> Path:
        """Folder of the upstream stage ``name``."""
        return self.inputs[name]


@dataclass
class Stage:
    """One unit of work.

    Attributes
    ----------
    name : str
        Unique, "/"-separated (e.g. ``"encode/sim01/effnet:head"``).
    settings : dict
        JSON-serialisable; everything besides the inputs that the result depends on.
    inputs : sequence of str
        Names of the stages it reads.
    compute : callable ``(StageContext) -> None``
        Writes the result into ``context.out``.
    folder : path, optional
        Where the result lives; by default ``<root>/stages/<name>``.
    """

    name: str
    settings: dict[str, Any]
    inputs: Sequence[str]
    compute: Callable[[StageContext], None]
    folder: Path | None = None


@dataclass
class StageReport:
    """What a call to :func:`run_stages` did."""

    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def stage_folder(root: Path, name: str) -> Path:
    """Default folder of a stage: its name's parts, with characters unsafe in file names replaced."""
    return root.joinpath("stages", *(re.sub(r"[^A-Za-z0-9_.=-]", "~", part) for part in name.split("/")))


def stage_keys(stages: Sequence[Stage]) -> dict[str, str]:
    """Key of every stage, in order; inputs must come before the stages that read them."""
    keys: dict[str, str] = {}
    for stage in stages:
        if stage.name in keys:
            raise ValueError(f"stage {stage.name!r} is defined twice")
        missing = [name for name in stage.inputs if name not in keys]
        if missing:
            raise ValueError(f"stage {stage.name!r} reads {missing}, which are not defined before it")
        ingredients = {"settings": stage.settings, "inputs": {name: keys[name] for name in stage.inputs}}
        keys[stage.name] = text_digest(json.dumps(ingredients, sort_keys=True, default=str))
    return keys


def read_stage_record(folder: Path) -> dict[str, Any] | None:
    """The ``stage.json`` of a finished stage folder, or None."""
    try:
        return json.loads((folder / STAGE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def run_stages(stages: Sequence[Stage], root: str | Path, log: Callable[[str], None] | None = None) -> StageReport:
    """Compute the stages whose results are missing or were made with other settings.

    Parameters
    ----------
    stages : sequence of Stage
        In dependency order.
    root : path
        The run's results folder.
    log : callable, optional
        Called with one line per computed stage.

    Returns
    -------
    StageReport
    """
    root = Path(root)
    report = StageReport(keys=stage_keys(stages))
    report.folders = {s.name: s.folder or stage_folder(root, s.name) for s in stages}
    pending = set()
    for stage in stages:
        record = read_stage_record(report.folders[stage.name])
        if record is None or record.get("key") != report.keys[stage.name]:
            pending.add(stage.name)
    for stage in stages:
        folder = report.folders[stage.name]
        if stage.name not in pending:
            report.skipped.append(stage.name)
            continue
        if log is not None:
            log(f"  computing {stage.name}")
        start = time.perf_counter()
        with atomic_path(folder, directory=True) as tmp:
            context = StageContext(tmp, {name: report.folders[name] for name in stage.inputs}, frozenset(pending))
            stage.compute(context)
            seconds = time.perf_counter() - start
            record = {
                "name": stage.name,
                "key": report.keys[stage.name],
                "settings": stage.settings,
                "inputs": {name: report.keys[name] for name in stage.inputs},
                "seconds": round(seconds, 3),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            (tmp / STAGE_FILE).write_text(json.dumps(record, indent=2, default=str))
        report.computed.append(stage.name)
        report.seconds[stage.name] = seconds
    return report
