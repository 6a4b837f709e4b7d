"""Executors walk a :class:`~scene2brain.pipeline.graph.StageGraph`; the local one runs it in process.

A stage whose folder holds a ``stage.json`` with its current key is skipped. A stage
is computed in a temporary folder that is moved into place whole, so an interrupted
stage leaves the previous result or none. :func:`execute_stage` is the unit an executor
submits: it needs only the stage, its key, its input folders and the runtime, so a
distributed executor can ship it to a worker unchanged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scene2brain.pipeline.graph import Ref, Runtime, Stage, StageContext, StageGraph, StageId, frozen
from scene2brain.results import STAGE_FILE
from scene2brain.utils.files import atomic_path


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


def run_local(graph: StageGraph, root: str | Path, runtime: Runtime | None = None) -> StageReport:
    """Compute, in graph order and in this process, every stage whose result is missing or outdated."""
    root = Path(root)
    runtime = runtime or Runtime()
    keys = graph.keys()
    folders = stage_folders(graph, root)
    report = StageReport(
        keys={str(s.id): keys[Ref(s.id)] for s in graph}, folders={str(i): f for i, f in folders.items()}
    )
    for stage in graph:
        key = keys[Ref(stage.id)]
        record = read_stage_record(folders[stage.id])
        if record is not None and record.get("key") == key:
            report.skipped.append(str(stage.id))
            continue
        if runtime.log is not None:
            runtime.log(f"  computing {stage.id}")
        input_keys = {role: keys[ref] for role, ref in stage.inputs.items()}
        seconds = execute_stage(stage, key, folders[stage.id], input_folders(stage, folders), runtime, input_keys)
        report.computed.append(str(stage.id))
        report.seconds[str(stage.id)] = seconds
    return report
