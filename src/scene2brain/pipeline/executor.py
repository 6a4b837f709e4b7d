"""Executors walk a :class:`~scene2brain.pipeline.graph.StageGraph`; the local one runs it in process.

Two executors give the same results: :func:`run_local` (this module, the default) computes the
stages one after another in this process; :func:`~scene2brain.pipeline.dask_executor.run_dask`
computes independent stages in parallel on a Dask cluster.

A stage whose folder holds a ``stage.json`` with its current key is skipped. A stage
is computed in a temporary folder that is moved into place whole, so an interrupted
stage leaves the previous result or none. :func:`execute_stage` is the unit an executor
submits: it needs only the stage, its key, its input folders and the runtime, so a
distributed executor can ship it to a worker unchanged.

A failed run changes nothing: an executor moves a finished stage that it is about
to recompute aside (``.<folder>.prev``) instead of replacing it, removes those copies when
every stage has succeeded, and puts them back when one fails. A run killed before
either leaves them behind; :func:`recover_folder` (called by the next run, which holds
the folder's lock) puts them back too and removes the killed stages' temporaries.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scene2brain.pipeline.graph import Ref, Runtime, Stage, StageContext, StageGraph, StageId, frozen
from scene2brain.results import STAGE_FILE
from scene2brain.utils.files import atomic_path, remove_temporaries

PREVIOUS = ".prev"  # suffix of a finished stage folder moved aside while this run recomputes it


@dataclass
class StageReport:
    """What an executor did: computed and skipped stages (in graph order), keys, folders, seconds."""

    computed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    keys: dict[str, str] = field(default_factory=dict)
    folders: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def read_stage_record(folder: Path) -> dict[str, Any] | None:
    """The ``stage.json`` of a finished stage folder, or None."""
    try:
        return json.loads((folder / STAGE_FILE).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None


def stage_folders(graph: StageGraph, root: Path) -> dict[StageId, Path]:
    """Result folder of every stage."""
    return {stage.id: stage.folder or stage.id.folder(root) for stage in graph}


def input_folders(stage: Stage, folders: Mapping[StageId, Path]) -> dict[Hashable, Path]:
    """Folder of each declared input (a named output's subfolder for refs with an output)."""
    return {
        role: folders[ref.stage] / ref.output if ref.output else folders[ref.stage]
        for role, ref in stage.inputs.items()
    }


def execute_stage(
    stage: Stage, key: str, folder: Path, inputs: Mapping[Hashable, Path], runtime: Runtime, input_keys: Mapping
) -> float:
    """Compute one stage into ``folder`` (atomically) and record its key; return seconds taken."""
    start = time.perf_counter()
    with atomic_path(folder, directory=True) as tmp:
        context = StageContext(
            tmp, frozen(stage.settings), dict(inputs), frozen(stage.options), runtime, tuple(stage.outputs)
        )
        stage.compute(context)
        seconds = time.perf_counter() - start
        record = {
            "name": str(stage.id),
            "key": key,
            "settings": stage.settings,
            "inputs": {str(role): input_keys[role] for role in stage.inputs},
            "seconds": round(seconds, 3),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (tmp / STAGE_FILE).write_text(json.dumps(record, indent=2, default=str))
    return seconds


def _previous(folder: Path) -> Path:
    return folder.with_name(f".{folder.name}{PREVIOUS}")


def set_aside(folder: Path) -> Path | None:
    """Move a finished stage folder that is about to be recomputed aside; return where it went (None: nothing there).

    A copy that a killed run left aside and that was not recovered holds the earlier result:
    it is kept, and what is in ``folder`` is removed.
    """
    backup = _previous(folder)
    if backup.exists():
        if folder.exists():
            shutil.rmtree(folder)
        return backup
    if folder.exists():
        os.replace(folder, backup)
        return backup
    return None


def restore_folders(backups: list[tuple[Path, Path]]) -> None:
    """Put finished stage folders moved aside (``(folder, backup)`` pairs) back in place, latest first.

    What replaced a folder (a recomputed result) is removed.
    """
    for folder, backup in reversed(backups):
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(backup, folder)


def recover_folder(root: str | Path, folders: list[Path] | None = None) -> list[Path]:
    """Undo what a killed run left in a results folder; return the paths removed or restored.

    Stage folders that the killed run had moved aside (``.<folder>.prev``) go back in place,
    replacing what it recomputed, and its temporaries (``.<name>.XXXX.tmp``) are removed, in
    ``root/stages`` and in the other stage ``folders`` (the tables and the report). Only call
    it while holding the results folder's lock.
    """
    root = Path(root)
    parents = {root / "stages", *(Path(f).parent for f in folders or [])}
    found: list[Path] = []
    for parent in sorted(parents):
        if not parent.is_dir():
            continue
        walk = parent.rglob(f".*{PREVIOUS}") if parent == root / "stages" else parent.glob(f".*{PREVIOUS}")
        backups = [b for b in walk if b.is_dir()]
        # deepest first: a restored folder may hold restored folders of its own only in odd layouts
        for backup in sorted(backups, key=lambda p: len(p.parts), reverse=True):
            folder = backup.with_name(backup.name[1 : -len(PREVIOUS)])
            restore_folders([(folder, backup)])
            found.append(folder)
    found += remove_temporaries(root / "stages")
    for folder in folders or []:
        found += remove_temporaries(Path(folder).parent, recursive=False)
    return found


def run_local(
    graph: StageGraph,
    root: str | Path,
    runtime: Runtime | None = None,
    checks: Mapping[StageId, Callable[[], None]] | None = None,
) -> StageReport:
    """Compute, in graph order and in this process, every stage whose result is missing or outdated.

    If a stage fails, the finished stages this call recomputed are put back as they were
    (see the module docstring) and the error is raised.

    Parameters
    ----------
    graph : StageGraph
    root : path
        The results folder (stage folders default to ``root/stages/...``).
    runtime : Runtime, optional
    checks : mapping of StageId to callable, optional
        ``checks[id]()`` is called once stage ``id`` is done (computed or skipped), before
        the next stage; an error it raises fails the call like a failed stage (checks of
        what loaded data allow, before the work that reads it).
    """
    root = Path(root)
    runtime = runtime or Runtime()
    keys = graph.keys()
    folders = stage_folders(graph, root)
    report = StageReport(
        keys={str(s.id): keys[Ref(s.id)] for s in graph}, folders={str(i): f for i, f in folders.items()}
    )
    backups: list[tuple[Path, Path]] = []
    try:
        for stage in graph:
            key = keys[Ref(stage.id)]
            folder = folders[stage.id]
            record = read_stage_record(folder)
            if record is not None and record.get("key") == key:
                report.skipped.append(str(stage.id))
                if stage.id in (checks or {}):
                    checks[stage.id]()
                continue
            if runtime.log is not None:
                runtime.log(f"  computing {stage.id}")
            backup = set_aside(folder)
            if backup is not None:
                backups.append((folder, backup))
            input_keys = {role: keys[ref] for role, ref in stage.inputs.items()}
            seconds = execute_stage(stage, key, folder, input_folders(stage, folders), runtime, input_keys)
            report.computed.append(str(stage.id))
            report.seconds[str(stage.id)] = seconds
            if stage.id in (checks or {}):
                checks[stage.id]()
    except BaseException:
        restore_folders(backups)
        raise
    for _, backup in backups:
        shutil.rmtree(backup, ignore_errors=True)
    return report
