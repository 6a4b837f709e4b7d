"""Progress display for long steps (rich), silent when asked."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


def track(items: Iterable[T], description: str, total: int | None = None, show: bool = True) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar on stderr when ``show`` is true."""
    if not show:
        yield from items
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, transient=False) as progress:
        yield from progress.track(items, total=total, description=description)
