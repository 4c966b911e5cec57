"""Test-wide fixtures: a clean environment so no test reaches a real Azure or reads a developer's setup."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_SCRUB_PREFIXES = ("AZURE_", "MSAL_", "ORCHESTRATOR_", "IDENTITY_", "MSI_")
_SCRUB_NAMES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import os

    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES) or name in _SCRUB_NAMES:
            monkeypatch.delenv(name, raising=False)
    # Loopback only: the emulator runs here, nothing else is reachable or wanted.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    yield


@pytest.fixture(scope="session", autouse=True)
def _sigint_as_on_a_terminal() -> Iterator[None]:
    """Ctrl-C reaches the commands the tests start, as on a terminal.

    A job a non-interactive shell starts in the background ignores SIGINT, its children inherit
    that, and Python then never raises KeyboardInterrupt: the Ctrl-C tests would see the command
    run to its end. A handled SIGINT is reset to the default in a child, an ignored one is not."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
