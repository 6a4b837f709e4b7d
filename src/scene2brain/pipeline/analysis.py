"""What an analysis is: the stages it adds to a run, the tables it writes, its report section.

An analysis (encoding, identification, the ground-truth checks of a simulation; later
decoding, RSA, sparse autoencoders ...) is one module under
:mod:`scene2brain.pipeline.analyses` that defines an :class:`Analysis` and one line in
that package's ``ANALYSES`` list that registers it. See ``docs/architecture.md``,
"How to add an analysis".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scene2brain.pipeline.graph import Ref, StageContext

if TYPE_CHECKING:
    from scene2brain.pipeline.plan import Plan
    from scene2brain.report.html import Block
    from scene2brain.results import Results


@dataclass(frozen=True)
class TableNeeds:
    """What an analysis's table writer reads: its own settings and the stage results it reads."""

    settings: dict[str, Any]
    inputs: list[Ref] = field(default_factory=list)


@dataclass(frozen=True)
class Analysis:
    """One analysis of a run.

    Attributes
    ----------
    name : str
        Unique; the key of its table settings in the ``tables`` stage.
    plan : callable ``(Plan) -> TableNeeds | None``
        Adds the analysis's stages to ``plan.graph`` (reading shared stages through
        ``plan``); returns what its table writer reads, or None when the configuration
        does not ask for the analysis.
    write_tables : callable ``(StageContext) -> None``
        Writes its tables into ``ctx.out`` (the run's ``tables/`` folder), reading
        ``ctx.settings`` (its own :attr:`TableNeeds.settings`) and ``ctx.input(stage_id)``.
        Analyses write in registration order, so a writer may read tables written
        before it.
    section : callable ``(Results) -> list[Block]``, optional
        Its part of the HTML report.
    """

    name: str
    plan: Callable[[Plan], TableNeeds | None]
    write_tables: Callable[[StageContext], None]
    section: Callable[[Results], list[Block]] | None = None
