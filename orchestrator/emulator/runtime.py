"""Everything one running emulator shares between its routes: settings, state and services."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.emulator.faults import FaultEngine
from orchestrator.emulator.notify import Notifier
from orchestrator.emulator.state import State
from orchestrator.emulator.stats import Stats
from orchestrator.emulator.throttle import Throttler
from orchestrator.emulator.tokens import TokenService


@dataclass
class Settings:
    time_scale: float = 1.0
    page_size: int = 10
    latency_ms: float = 0.0
    throttle: bool = False
    seed: int = 1
    operation_seconds: float = 120.0  # real-Azure-like duration of an application write, before scaling
    poll_seconds: float = 10.0  # Retry-After hint for operation polling, before scaling
    token_lifetime: float = 3600.0  # not time-scaled
    state_file: Path | None = None
    state_dir: Path = field(default_factory=lambda: Path(".state/emulator"))


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
        return max(0.0, seconds * self.settings.time_scale)

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
