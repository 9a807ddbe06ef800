"""Progress of long runs: rich bars on a terminal, plain lines in logs.

* stderr is a terminal (or ``enabled=True``): rich bars with count, samples/s, elapsed time and
  ETA.
* stderr is a file or a pipe (Slurm, CI): every ``interval`` seconds (default 30; ``--progress-
  interval N`` or the environment variable ``REMOTESAM_PROGRESS_INTERVAL``; 0 turns the lines
  off) one line per task that is still predicting::

      remotesam-bench: progress det.dior/test [tiny.safetensors]: 120/400 (30.0%), 2.50 samples/s,
      50.0 image-prompts/s, elapsed 0:00:48, ETA 0:01:52

  and at the end one line per task with its time, then one line with the run's time per task.
  Image-prompts are the (image, prompt) pairs the task's samples ask of the network (a sample
  of DIOR detection asks 20); tasks whose plugin only implements ``predict`` report samples/s.
* under ``torchrun`` rank 0 speaks for the job: every rank adds its counts to the process
  group's key-value store and rank 0's lines give the job's totals (its rich bars, on a
  terminal, count its own share).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

from remotesam.bench.errors import InputError

__all__ = ["DEFAULT_INTERVAL_S", "INTERVAL_ENV", "Progress", "format_duration",
           "progress_interval"]

#: Seconds between two progress lines in a log, unless configured.
DEFAULT_INTERVAL_S = 30.0
#: The environment variable that sets the interval (``--progress-interval`` wins).
INTERVAL_ENV = "REMOTESAM_PROGRESS_INTERVAL"


def progress_interval(value: float | None = None) -> float:
    """The interval in seconds: ``value``, else ``$REMOTESAM_PROGRESS_INTERVAL``, else 30.

    Raises:
        InputError: a negative value, or an environment value that is not a number.
    """
    if value is None:
        raw = os.environ.get(INTERVAL_ENV, "").strip()
        if not raw:
            return DEFAULT_INTERVAL_S
        try:
            value = float(raw)
        except ValueError:
            raise InputError(f"environment variable {INTERVAL_ENV}={raw!r}: expected seconds "
                             "between progress lines (a number; 0 turns them off)") from None
    if not value >= 0:  # also NaN
        raise InputError(f"progress interval {value!r}: expected seconds >= 0 (0 turns the "
                         "progress lines off)")
    return float(value)


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``"0:01:52"``)."""
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class _Bar:
    """One task's counter; ``advance(n, items)`` after each batch of ``n`` samples asking
    ``items`` image-prompts."""

    def __init__(self, owner: Progress, description: str, total: int, job_total: int,
                 key: str, task_id: Any = None) -> None:
        self._owner = owner
        self.description = description
        self.total = total
        self.job_total = job_total
        self.key = key
        self._id = task_id
        self.done = 0
        self.items = 0
        self.t_start = time.monotonic()
        self.t_end: float | None = None
        self.reported_done = False

    def advance(self, n: int = 1, items: int = 0) -> None:
        self.done += n
        self.items += items
        owner = self._owner
        if owner._rich is not None and self._id is not None:
            owner._rich.advance(self._id, n)
        owner._publish(self, n, items)
        if self.done >= self.total and self.t_end is None:
            self.t_end = time.monotonic()


def _speed_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class SpeedColumn(ProgressColumn):
        """Samples per second, from rich's moving estimate."""

        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:.1f} samples/s", style="cyan")

    return SpeedColumn()


def _default_store(ctx: Any) -> Any:
    """The ``torch.distributed`` key-value store of the job (None alone or when unavailable)."""
    if ctx is None or not getattr(ctx, "distributed", False):
        return None
    try:
        from torch.distributed import distributed_c10d

        return distributed_c10d._get_default_store()
    except Exception:
        return None


class Progress:
    """Context manager handing out bars: ``with Progress() as p: bar = p.bar(desc, total)``.

    Args:
        enabled: ``None`` shows rich bars when stderr is a terminal and log lines otherwise;
            True forces rich bars; False shows nothing.
        interval: seconds between log lines (:func:`progress_interval` resolves None).
        ctx: the :class:`~remotesam.bench.run.distributed.DistContext` under ``torchrun``: rank 0
            speaks for the job, the other ranks only add their counts.
        stream: where log lines go (default ``sys.stderr``).
    """

    def __init__(self, enabled: bool | None = None, *, interval: float | None = None,
                 ctx: Any = None, stream: TextIO | None = None) -> None:
        self._stream = stream
        out = stream or sys.stderr
        is_tty = bool(getattr(out, "isatty", lambda: False)())
        main = ctx is None or getattr(ctx, "is_main", True)
        self.interval = progress_interval(interval)
        self.enabled = is_tty if enabled is None else enabled
        self.rich = bool(main and self.enabled and (enabled is True or is_tty))
        self.lines = bool(main and enabled is not False and not self.rich and self.interval > 0)
        self._kv = _default_store(ctx) if enabled is not False else None
        self._rich: Any = None
        self._bars: list[_Bar] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    # -- context -----------------------------------------------------------------------------

    def __enter__(self) -> Progress:
        if self.rich:
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
        elif self.lines:
            self._thread = threading.Thread(target=self._loop, name="remotesam-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._rich is not None:
            self._rich.__exit__(et, ev, tb)
            self._rich = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if et is None:
                self._final()

    def bar(self, description: str, total: int, job_total: int | None = None,
            key: str | None = None) -> _Bar:
        """A new bar of ``total`` samples (this process's share).

        Args:
            job_total: the whole job's samples of this task (under ``torchrun``; default
                ``total``); rank 0's log lines count against it.
            key: identifies the task across ranks (default: ``description``).
        """
        task_id = (self._rich.add_task(description, total=total)
                   if self._rich is not None else None)
        b = _Bar(self, description, total, total if job_total is None else job_total,
                 key or description, task_id)
        with self._lock:
            self._bars.append(b)
        return b

    # -- counts across ranks -------------------------------------------------------------------

    def _publish(self, bar: _Bar, n: int, items: int) -> None:
        if self._kv is None:
            return
        try:
            self._kv.add(f"remotesam-progress/{bar.key}/done", int(n))
            if items:
                self._kv.add(f"remotesam-progress/{bar.key}/items", int(items))
        except Exception:
            self._kv = None  # the job's store went away: this process's counts only

    def _counts(self, bar: _Bar) -> tuple[int, int]:
        """``(samples done, image-prompts done)`` of the job (this process's alone)."""
        if self._kv is not None:
            try:
                return (int(self._kv.add(f"remotesam-progress/{bar.key}/done", 0)),
                        int(self._kv.add(f"remotesam-progress/{bar.key}/items", 0)))
            except Exception:
                self._kv = None
        return bar.done, bar.items

    # -- log lines -----------------------------------------------------------------------------

    def _write(self, line: str) -> None:
        out = self._stream or sys.stderr
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError):
            pass  # a closed log never stops the run

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                bars = list(self._bars)
            for b in bars:
                if b.reported_done:
                    continue
                self._report(b)

    def _report(self, b: _Bar) -> None:
        done, items = self._counts(b)
        total = b.job_total
        now = time.monotonic()
        elapsed = now - b.t_start
        rate = done / elapsed if elapsed > 0 else 0.0
        if done >= total:
            b.reported_done = True
            self._write(f"remotesam-bench: done {b.description}: {done}/{total} in "
                        f"{format_duration(elapsed)}" + self._rates(done, items, elapsed))
            return
        eta = format_duration((total - done) / rate) if rate > 0 else "unknown"
        pct = 100.0 * done / total if total else 100.0
        self._write(f"remotesam-bench: progress {b.description}: {done}/{total} ({pct:.1f}%)"
                    + self._rates(done, items, elapsed)
                    + f", elapsed {format_duration(elapsed)}, ETA {eta}")

    @staticmethod
    def _rates(done: int, items: int, elapsed: float) -> str:
        if elapsed <= 0:
            return ""
        text = f", {done / elapsed:.2f} samples/s"
        if items:
            text += f", {items / elapsed:.1f} image-prompts/s"
        return text

    def _final(self) -> None:
        with self._lock:
            bars = list(self._bars)
        if not bars:
            return
        now = time.monotonic()
        times = []
        for b in bars:
            if not b.reported_done:
                self._report(b)
            end = b.t_end if b.t_end is not None else now
            times.append(f"{b.description} {end - b.t_start:.1f} s")
        self._write(f"remotesam-bench: prediction time per task (wall {now - self._t0:.1f} s): "
                    + ", ".join(times))
