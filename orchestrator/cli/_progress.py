"""How a run shows its progress: live bars per wave and tenant on a terminal, else a line per wave."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from orchestrator.cli._common import err_console
from orchestrator.executor import Progress as AppProgress
from orchestrator.models import TERMINAL_APP_STATES, AppState, RunView


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
        self.tasks: dict[tuple[int | None, str], TaskID] = {}
        self.states: dict[str, AppState] = {}
        self.key_of: dict[str, tuple[int | None, str]] = {}
        groups: dict[tuple[int | None, str], list[str]] = {}
        for app in view.apps:
            if app.wave is None:
                continue
            group: tuple[int | None, str] = (app.wave, app.tenant_name or app.tenant_id)
            groups.setdefault(group, []).append(app.app_id)
            self.states[app.app_id] = app.state
            self.key_of[app.app_id] = group
        for key in sorted(groups, key=lambda k: (k[0] or 0, k[1])):
            wave, tenant = key[0], key[1]
            label = f"{wave_names.get(wave or 0, str(wave))} · {tenant}"
            self.tasks[key] = self.progress.add_task(label, total=len(groups[key]), detail="")
            self._refresh(key)

    def _refresh(self, key: tuple[int | None, str]) -> None:
        apps = [a for a, k in self.key_of.items() if k == key]
        counts = Counter(self.states[a] for a in apps)
        finished = sum(n for s, n in counts.items() if s in TERMINAL_APP_STATES)
        detail = " ".join(f"{s.value}={n}" for s, n in sorted(counts.items()) if n and s != AppState.PENDING)
        self.progress.update(self.tasks[key], completed=finished, detail=detail)

    def __call__(self, event: AppProgress) -> None:
        if event.app_id not in self.key_of:
            return
        self.states[event.app_id] = event.state
        self._refresh(self.key_of[event.app_id])

    @contextmanager
    def shown(self) -> Iterator[None]:
        with self.progress:
            yield


class WaveLines:
    """Without a terminal: one line per wave as it finishes (the logs say more at --log-level info)."""

    def __init__(self, view: RunView, wave_names: dict[int, str]) -> None:
        self.wave_names = wave_names
        self.states = {a.app_id: a.state for a in view.apps if a.wave is not None}
        self.wave_of = {a.app_id: a.wave for a in view.apps if a.wave is not None}
        self.done: set[int | None] = {w for w in set(self.wave_of.values()) if self._finished(w)}

    def _finished(self, wave: int | None) -> bool:
        return all(self.states[a] in TERMINAL_APP_STATES for a, w in self.wave_of.items() if w == wave)

    def __call__(self, event: AppProgress) -> None:
        if event.app_id not in self.wave_of:
            return
        self.states[event.app_id] = event.state
        wave = self.wave_of[event.app_id]
        if wave in self.done or not self._finished(wave):
            return
        self.done.add(wave)
        counts = Counter(s for a, s in self.states.items() if self.wave_of[a] == wave)
        detail = ", ".join(f"{n} {s.value}" for s, n in sorted(counts.items()))
        err_console.print(
            Text(f"wave {self.wave_names.get(wave or 0, str(wave))}: done ({detail})"), soft_wrap=True
        )


Display = LiveDisplay | WaveLines


def display_for(preview: RunView, wave_names: dict[int, str]) -> Display:
    """Bars on a terminal, one line per finished wave otherwise."""
    if err_console.is_terminal:
        return LiveDisplay(preview, wave_names)
    return WaveLines(preview, wave_names)
