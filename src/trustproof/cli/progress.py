"""What `trustproof run` shows while the suite runs, on standard error.

On a terminal: a live line (a bar, done/total, failing so far, elapsed, ETA). Elsewhere (CI logs,
pipes), where a live line prints nothing: one plain line every `EVERY_SECONDS`, so a long run is
never silent. With ``-v``: one line per case as it finishes (verdict, case id). Scenarios announce
themselves by name. Every text is scrubbed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from trustproof.probes.model import CaseResult
from trustproof.scrub import scrub

EVERY_SECONDS = 10.0


@dataclass
class SuiteProgress:
    console: Console
    verbose: bool = False
    clock: Callable[[], float] = time.monotonic
    total: int | None = None
    done: int = 0
    failing: int = 0
    _started: float = field(default=0.0)
    _last_line: float = field(default=0.0)
    _live: Progress | None = None
    _task: int | None = None

    def __enter__(self) -> SuiteProgress:
        self._started = self._last_line = self.clock()
        if self.console.is_terminal:
            self._live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failing]} failing"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self._live.__enter__()
            self._task = self._live.add_task("probing", total=None, failing=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(None, None, None)

    def on_total(self, total: int) -> None:
        self.total = total
        if self._live is not None and self._task is not None:
            self._live.update(self._task, total=total)  # type: ignore[arg-type]
        else:
            self.console.print(f"probing: {total} cases", markup=False, highlight=False)

    def on_result(self, item: CaseResult) -> None:
        self.done += 1
        self.failing += not item.ok
        if self.verbose:
            self.console.print(
                f"{item.verdict.upper():17} {scrub(item.case.id)}", markup=False, highlight=False
            )
        if self._live is not None and self._task is not None:
            self._live.update(self._task, advance=1, failing=self.failing)  # type: ignore[arg-type]
        elif self.clock() - self._last_line >= EVERY_SECONDS:
            self.console.print(self.line(), markup=False, highlight=False)
            self._last_line = self.clock()

    def on_scenario(self, scenario_id: str) -> None:
        if self._live is not None and self._task is not None:
            self._live.update(self._task, description=f"scenario {scenario_id}")  # type: ignore[arg-type]
        else:
            self.console.print(f"scenario {scenario_id}", markup=False, highlight=False)

    def line(self) -> str:
        """``probing: 120/450 cases, 2 failing, 12 s, about 33 s left``."""
        elapsed = self.clock() - self._started
        of = f"/{self.total}" if self.total is not None else ""
        text = f"probing: {self.done}{of} cases, {self.failing} failing, {elapsed:.0f} s"
        if self.total and self.done:
            left = elapsed / self.done * (self.total - self.done)
            text += f", about {left:.0f} s left"
        return text
