"""The ARM edge: the only package that talks to the Azure SDK.

`AzureGateway` implements `orchestrator.gateway.ArmGateway` over the real async SDK clients;
`build_credential` makes one tenant-bound azure-identity credential from the fleet config.
"""

from __future__ import annotations

from orchestrator.arm.clients import RetrySettings
from orchestrator.arm.credentials import TenantCredential, build_credential
from orchestrator.arm.gateway import AzureGateway

__all__ = ["AzureGateway", "RetrySettings", "TenantCredential", "build_credential"]
