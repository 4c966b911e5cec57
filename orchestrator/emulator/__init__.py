"""An HTTPS emulator of the Entra ID token endpoint and the ARM routes the orchestrator uses.

Stands in for Azure the way Azurite does for Storage. Imports nothing from the orchestrator core.
"""
