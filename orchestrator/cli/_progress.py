"""How a run shows its progress: live bars per wave and tenant on a terminal, else a line per wave."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from orchestrator.cli._common import err_console
from orchestrator.executor import Progress as AppProgress
from orchestrator.models import TERMINAL_APP_STATES, AppState, RunView

K = TypeVar("K", bound=Hashable)


class _Tally(Generic[K]):
    """Each app's state and the count of states per group, kept as events arrive: O(1) per event
    (a 10,000-app run sends ~40,000 of them; counting the group's apps again each time cost seconds)."""

    def __init__(self) -> None:
        self.states: dict[str, AppState] = {}
        self.group_of: dict[str, K] = {}
        self.counts: dict[K, Counter[AppState]] = {}
        self.unfinished: Counter[K] = Counter()

    def add(self, app_id: str, group: K, state: AppState) -> None:
        self.states[app_id] = state
        self.group_of[app_id] = group
        self.counts.setdefault(group, Counter())[state] += 1
        self.unfinished[group] += state not in TERMINAL_APP_STATES

    def move(self, app_id: str, state: AppState) -> K | None:
        """Record `app_id`'s new state; its group, or None when the app is not shown."""
        group = self.group_of.get(app_id)
        if group is None:
            return None
        old = self.states[app_id]
        self.states[app_id] = state
        counts = self.counts[group]
        counts[old] -= 1
        counts[state] += 1
        self.unfinished[group] += (state not in TERMINAL_APP_STATES) - (old not in TERMINAL_APP_STATES)
        return group

    def finished(self, group: K) -> int:
        return sum(n for s, n in self.counts[group].items() if s in TERMINAL_APP_STATES)


class LiveDisplay:
    """A rich progress bar per (wave, tenant) on a terminal; nothing otherwise (the logs tell the story)."""

    def __init__(self, view: RunView, wave_names: dict[int, str]) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}", markup=False),
            TimeElapsedColumn(),
            console=err_console,
            transient=False,
        )
        self.tasks: dict[tuple[int, str], TaskID] = {}
        self.tally: _Tally[tuple[int, str]] = _Tally()
        for app in view.apps:
            if app.wave is not None:
                self.tally.add(app.app_id, (app.wave, app.tenant_name or app.tenant_id), app.state)
        groups = self.tally.counts
        for key in sorted(groups):
            wave, tenant = key
            label = f"{wave_names.get(wave, str(wave))} · {tenant}"
            self.tasks[key] = self.progress.add_task(label, total=sum(groups[key].values()), detail="")
            self._refresh(key)

    def _refresh(self, key: tuple[int, str]) -> None:
        counts = self.tally.counts[key]
        detail = " ".join(f"{s.value}={n}" for s, n in sorted(counts.items()) if n and s != AppState.PENDING)
        self.progress.update(self.tasks[key], completed=self.tally.finished(key), detail=detail)

    def __call__(self, event: AppProgress) -> None:
        key = self.tally.move(event.app_id, event.state)
        if key is not None:
            self._refresh(key)

    @contextmanager
    def shown(self) -> Iterator[None]:
        with self.progress:
            yield


class WaveLines:
    """Without a terminal: one line per wave as it finishes (the logs say more at --log-level info)."""

    def __init__(self, view: RunView, wave_names: dict[int, str]) -> None:
        self.wave_names = wave_names
        self.tally: _Tally[int] = _Tally()
        for app in view.apps:
            if app.wave is not None:
                self.tally.add(app.app_id, app.wave, app.state)
        self.done: set[int] = {w for w in self.tally.counts if not self.tally.unfinished[w]}

    def __call__(self, event: AppProgress) -> None:
        wave = self.tally.move(event.app_id, event.state)
        if wave is None or wave in self.done or self.tally.unfinished[wave]:
            return
        self.done.add(wave)
        counts = self.tally.counts[wave]
        detail = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()) if n)
        name = self.wave_names.get(wave, str(wave))
        err_console.print(Text(f"wave {name}: done ({detail})"), soft_wrap=True)


Display = LiveDisplay | WaveLines


def display_for(preview: RunView, wave_names: dict[int, str]) -> Display:
    """Bars on a terminal, one line per finished wave otherwise."""
    if err_console.is_terminal:
        return LiveDisplay(preview, wave_names)
    return WaveLines(preview, wave_names)
