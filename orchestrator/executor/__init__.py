"""The executor: applies a reviewed plan (or rolls a run back) through the `ArmGateway`."""

from __future__ import annotations

from orchestrator.executor.engine import Progress, WorkItem, plan_work
from orchestrator.executor.pacing import PacingPolicy
from orchestrator.executor.retrying import RetryPolicy
from orchestrator.executor.runs import run_plan, run_rollback
from orchestrator.executor.settings import CrashPoint, ExecutorSettings, Tolerance

__all__ = [
    "CrashPoint",
    "ExecutorSettings",
    "PacingPolicy",
    "Progress",
    "RetryPolicy",
    "Tolerance",
    "WorkItem",
    "plan_work",
    "run_plan",
    "run_rollback",
]
