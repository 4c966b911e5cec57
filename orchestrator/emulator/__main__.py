"""`python -m orchestrator.emulator serve ...`, until the main CLI mounts the emulator."""

from orchestrator.emulator.cli import app

app(prog_name="python -m orchestrator.emulator")
