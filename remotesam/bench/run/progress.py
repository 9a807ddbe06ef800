"""Progress bars for long runs (rich): count, throughput in samples/s, elapsed time and ETA.

Bars go to stderr and only on a terminal (or when forced), so logs and piped output stay clean.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

__all__ = ["Progress"]


class _Bar:
    """One bar; ``advance(n)`` after each batch."""

    def __init__(self, rich: Any, task_id: Any) -> None:
        self._rich = rich
        self._id = task_id

    def advance(self, n: int = 1) -> None:
        if self._rich is not None:
            self._rich.advance(self._id, n)


def _speed_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class SpeedColumn(ProgressColumn):
        """Samples per second, from rich's moving estimate."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} samples/s", style="cyan")

    return SpeedColumn()


class Progress:
    """Context manager handing out bars: ``with Progress() as p: bar = p.bar(desc, total)``.

    Args:
        enabled: ``None`` shows bars when stderr is a terminal; True/False force it.
    """

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._rich: Any = None

    def __enter__(self) -> Progress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                _speed_column(), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                console=Console(stderr=True), refresh_per_second=4,
            )
            self._rich.__enter__()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.__exit__(et, ev, tb)
            self._rich = None

    def bar(self, description: str, total: int) -> _Bar:
        """A new bar of ``total`` samples (a no-op bar when disabled)."""
        if self._rich is None:
            return _Bar(None, None)
        return _Bar(self._rich, self._rich.add_task(description, total=total))
