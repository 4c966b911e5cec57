"""Everything one running emulator shares between its routes: settings, state and services."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from orchestrator.emulator.faults import FaultEngine
from orchestrator.emulator.notify import Notifier
from orchestrator.emulator.state import State
from orchestrator.emulator.stats import Stats
from orchestrator.emulator.throttle import Throttler
from orchestrator.emulator.tokens import TokenService


@dataclass
class Settings:
    """How one emulator runs: the serve command's options (cli.py) and run_emulator's arguments
    (testing.py) both become this, and `argv()` turns it back into the command's flags."""

    time_scale: float = 1.0
    page_size: int = 10
    latency_ms: float = 0.0
    throttle: bool = False
    seed: int = 1
    operation_seconds: float = 120.0  # real-Azure-like duration of an application write, before scaling
    # Retry-After hint for operation polling, before scaling (no flag: not an option of `serve`).
    poll_seconds: float = field(default=10.0, metadata={"flag": None})
    token_lifetime: float = 3600.0  # not time-scaled
    state_file: Path | None = field(default=None, metadata={"flag": "--state"})
    state_dir: Path = field(default_factory=lambda: Path(".state/emulator"))

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Settings:
        """The settings among `values` (keyword arguments named like the fields); others default."""
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def argv(self) -> list[str]:
        """These settings as `orchestrator emulator serve` flags."""
        out: list[str] = []
        for f in fields(self):
            flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
            value = getattr(self, f.name)
            if flag is None or value is None:
                continue
            if isinstance(value, bool):
                out.append(flag if value else "--no-" + flag.removeprefix("--"))
            else:
                out += [flag, str(value)]
        return out


def scaled(seconds: float, time_scale: float) -> float:
    """An emulated duration in real seconds: the one place the time scale applies."""
    return max(0.0, seconds * time_scale)


class Runtime:
    def __init__(self, settings: Settings, state: State, faults: FaultEngine | None = None) -> None:
        self.settings = settings
        self.state = state
        # What /_emulator/reset goes back to, as JSON text: several times cheaper than a deepcopy.
        self.initial_state = json.dumps(state.to_json())
        self.initial_time_scale = settings.time_scale
        self.tokens = TokenService(secrets.token_bytes(32), settings.token_lifetime)
        self.stats = Stats()
        self.faults = faults or FaultEngine(settings.seed)
        self.throttler = Throttler()
        self.base_url = ""  # "https://127.0.0.1:PORT/" once listening
        self.ca_bundle: Path | None = None
        self.audiences: set[str] = set()
        self.notifier = Notifier(self)

    def scaled(self, seconds: float) -> float:
        """`seconds` of emulated time at the current time scale (POST /_emulator/time-scale moves it)."""
        return scaled(seconds, self.settings.time_scale)

    def set_base_url(self, host: str, port: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        self.base_url = f"https://{shown}:{port}/"
        # Audiences ARM accepts: this endpoint (any loopback spelling) and the public cloud's.
        auds = {self.base_url, f"https://localhost:{port}/", f"https://127.0.0.1:{port}/"}
        auds |= {"https://management.azure.com/", "https://management.core.windows.net/"}
        self.audiences = auds | {a.rstrip("/") for a in auds}

    def reset(self) -> None:
        self.state = State.from_json(json.loads(self.initial_state))
        self.stats = Stats()
        self.settings.time_scale = self.initial_time_scale
        self.faults.replace([])
        self.throttler.reset()
        self.notifier.reset()
