"""The stage graph of a run: stages that declare what they read, keys derived from the declarations.

A :class:`Stage` is a module-level function plus everything its result depends on:

- ``settings``: exactly the configuration values the function reads (it receives
  these and nothing else of the configuration, through :attr:`StageContext.settings`);
- ``inputs``: the upstream results it reads, as :class:`Ref` s (a stage, or one named
  output of a stage);
- ``outputs`` (optional): named parts of its result, each with settings of its own
  (a feature stage writes one part per layer), so that a reader of one part is keyed
  by that part alone;
- ``options``: values that change how, not what, it computes (batch size, device);
  they are passed to the function but are not part of any key.

Keys are digests of the scene2brain version, the function's qualified name, the settings
and the keys of the inputs, so a key changes when, and only when, a declared input or setting changes; the
key and the computation cannot drift apart. A :class:`StageGraph` is a plain ordered
mapping from :class:`StageId` to :class:`Stage`; an executor walks it (see
:mod:`scene2brain.pipeline.executor`), and stages never know which executor runs them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from scene2brain import __version__
from scene2brain.utils.files import text_digest


@dataclass(frozen=True, order=True)
class StageId:
    """Typed identity of a stage: its kind, and the subject and item it is about (if any).

    ``str(StageId("encode", "sim01", "effnet:head"))`` is ``"encode/sim01/effnet:head"``,
    the name shown in logs and ``run.json``.
    """

    kind: str
    subject: str = ""
    item: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.kind, self.subject, self.item) if part)

    def folder(self, root: Path) -> Path:
        """Default result folder: ``<root>/stages/<kind>/<subject>/<item>`` (unsafe characters replaced)."""
        parts = (re.sub(r"[^A-Za-z0-9_.=-]", "~", p) for p in (self.kind, self.subject, self.item) if p)
        return root.joinpath("stages", *parts)


@dataclass(frozen=True)
class Ref:
    """What a stage reads: a whole upstream stage, or one of its named outputs."""

    stage: StageId
    output: str | None = None

    def __str__(self) -> str:
        return f"{self.stage}#{self.output}" if self.output else str(self.stage)


@dataclass(frozen=True)
class Runtime:
    """What every stage may use without it being part of a key: the feature store, progress output."""

    store: Any = None
    progress: bool = False
    log: Callable[[str], None] | None = None


@dataclass
class StageContext:
    """What a stage's function receives."""

    out: Path
    settings: Mapping[str, Any]
    inputs: Mapping[Hashable, Path]
    options: Mapping[str, Any]
    runtime: Runtime
    outputs: tuple[str, ...] = ()

    def input(self, role: Hashable) -> Path:
        """Folder of the input ``role`` (of its named output, for a :class:`Ref` with an output)."""
        try:
            return self.inputs[role]
        except KeyError:
            raise KeyError(f"stage input {role!r} is not declared; declared: {list(self.inputs)}") from None

    def output(self, name: str) -> Path:
        """Folder of this stage's named output ``name`` (created)."""
        folder = self.out / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder


#: Stage option: the stage's work (a network's forward passes) gains from every core a worker has; an
#: executor that runs stages side by side gives it a whole worker (see :mod:`scene2brain.pipeline.dask_executor`).
WHOLE_WORKER = "whole_worker"


@dataclass(frozen=True)
class Stage:
    """One unit of work; see the module docstring."""

    id: StageId
    compute: Callable[[StageContext], None]
    settings: Mapping[str, Any] = field(default_factory=dict)
    inputs: Mapping[Hashable, Ref] = field(default_factory=dict)
    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    folder: Path | None = None

    def __post_init__(self) -> None:
        if "<locals>" in self.compute.__qualname__:
            raise ValueError(f"stage {self.id}: compute must be a module-level function, got {self.compute}")


def _digest(content: Any) -> str:
    return text_digest(json.dumps(content, sort_keys=True, default=str))


class StageGraph:
    """Stages in dependency order (inputs before the stages that read them), with their keys.

    Examples
    --------
    >>> from scene2brain.pipeline.graph import _example_compute as f
    >>> g = StageGraph()
    >>> a = g.add(Stage(StageId("a"), f, {"n": 1}))
    >>> b = g.add(Stage(StageId("b"), f, inputs={"a": Ref(a)}))
    >>> k = g.keys()
    >>> g2 = StageGraph([Stage(StageId("a"), f, {"n": 2}), Stage(StageId("b"), f, inputs={"a": Ref(a)})])
    >>> [k[Ref(s)] != g2.keys()[Ref(s)] for s in (a, b)]
    [True, True]
    """

    def __init__(self, stages: list[Stage] | None = None):
        self._stages: dict[StageId, Stage] = {}
        for stage in stages or []:
            self.add(stage)

    def add(self, stage: Stage) -> StageId:
        """Append a stage whose inputs are already in the graph; return its id."""
        if stage.id in self._stages:
            raise ValueError(f"stage {stage.id} is defined twice")
        for role, ref in stage.inputs.items():
            upstream = self._stages.get(ref.stage)
            if upstream is None:
                raise ValueError(f"stage {stage.id} reads {ref} ({role!r}), which is not defined before it")
            if ref.output is not None and ref.output not in upstream.outputs:
                raise ValueError(
                    f"stage {stage.id} reads output {ref.output!r} of {ref.stage}, which has {list(upstream.outputs)}"
                )
        self._stages[stage.id] = stage
        return stage.id

    def __contains__(self, stage_id: object) -> bool:
        return stage_id in self._stages

    def __getitem__(self, stage_id: StageId) -> Stage:
        return self._stages[stage_id]

    def __iter__(self) -> Iterator[Stage]:
        return iter(self._stages.values())

    def __len__(self) -> int:
        return len(self._stages)

    def ids(self) -> list[StageId]:
        return list(self._stages)

    def keys(self) -> dict[Ref, str]:
        """Key of every stage (``Ref(id)``) and of every named output (``Ref(id, name)``)."""
        keys: dict[Ref, str] = {}
        for stage in self._stages.values():
            base = {
                "version": __version__,  # a new release may compute a stage differently
                "compute": f"{stage.compute.__module__}.{stage.compute.__qualname__}",
                "settings": stage.settings,
                "inputs": {str(role): keys[ref] for role, ref in stage.inputs.items()},
            }
            keys[Ref(stage.id)] = _digest({**base, "outputs": stage.outputs})
            for name, settings in stage.outputs.items():
                keys[Ref(stage.id, name)] = _digest({**base, "output": {name: settings}})
        return keys

    def dependents(self, stage_id: StageId) -> set[StageId]:
        """Every stage that reads ``stage_id``, directly or through others."""
        found: set[StageId] = set()
        for stage in self._stages.values():
            if any(ref.stage == stage_id or ref.stage in found for ref in stage.inputs.values()):
                found.add(stage.id)
        return found


def _example_compute(ctx: StageContext) -> None:
    """A stage function for the docstring example: writes its settings."""
    (ctx.out / "settings.json").write_text(json.dumps(dict(ctx.settings)))


def frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A read-only view of ``mapping`` (what a stage function gets as its settings)."""
    return MappingProxyType(dict(mapping))
